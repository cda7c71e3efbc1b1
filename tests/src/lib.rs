//! Test support for eventplane's end-to-end tests: start an application (the real `spin.toml`
//! or a small manifest written by a test) in `eventplane-host` on a loopback port, talk to it
//! over real HTTP, stop it; and small real HTTP servers for components to call.

pub mod bench;
#[path = "../../crates/host/tests/support/mosquitto.rs"]
pub mod mosquitto;
pub mod mqtt;
pub mod pubsub;
#[path = "../../crates/host/tests/support/redis_server.rs"]
pub mod redis;
pub mod spin;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context as _;
use bytes::Bytes;
use eventplane_host::{Application, LoadOptions};
use http_body_util::{BodyExt as _, Full};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The workspace root (where `spin.toml` lives).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The built WebAssembly component of package `crate_name` (e.g. `eventplane_test_probe`).
/// Fails with the command to run when it has not been built.
pub fn wasm(crate_name: &str) -> anyhow::Result<PathBuf> {
    let path = workspace_root()
        .join("target/wasm32-wasip2/release")
        .join(format!("{crate_name}.wasm"));
    anyhow::ensure!(
        path.exists(),
        "{} is missing: build the components first with ./scripts/test.sh (or \
         cargo build --target wasm32-wasip2 --release -p <package>)",
        path.display()
    );
    Ok(path)
}

/// The compile cache shared by every test run, so each component compiles once.
pub fn cache_dir() -> PathBuf {
    workspace_root().join("target/eventplane-test-cache")
}

/// A running application.
pub struct TestApp {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// Warnings the host reported while loading.
    pub warnings: Vec<String>,
}

/// Builder for a [`TestApp`].
pub struct TestAppBuilder {
    opts: LoadOptions,
}

impl TestAppBuilder {
    /// Sets `SPIN_VARIABLE_<NAME>`-style environment for variable overrides.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.opts.env.insert(key.to_string(), value.to_string());
        self
    }

    /// Uses `dir` for the key-value database.
    pub fn state_dir(mut self, dir: &Path) -> Self {
        self.opts.state_dir = Some(dir.to_path_buf());
        self
    }

    /// Reads the runtime config file at `path` (Spin's `--runtime-config-file`).
    pub fn runtime_config(mut self, path: &Path) -> Self {
        self.opts.runtime_config_file = Some(path.to_path_buf());
        self
    }

    /// Loads the application (compiling components off the async runtime) without serving it.
    pub async fn load(self) -> anyhow::Result<Application> {
        let opts = self.opts;
        tokio::task::spawn_blocking(move || Application::load(opts)).await?
    }

    /// Loads and serves the application on a free loopback port.
    /// The mqtt component's hand-off address (`mqtt_handoff_url`, see `spin-mqtt.toml`) is
    /// the served address unless the environment names one.
    pub async fn start(mut self) -> anyhow::Result<TestApp> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let handoff = spin::HANDOFF_VARIABLE.to_owned();
        self.opts
            .env
            .entry(handoff)
            .or_insert_with(|| format!("http://{addr}"));
        let app = self.load().await?;
        let warnings = app.warnings().to_vec();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(listener, async move {
            let _ = rx.await;
        }));
        Ok(TestApp {
            addr,
            shutdown: Some(tx),
            task: Some(task),
            warnings,
        })
    }
}

impl TestApp {
    /// An application from `manifest`, with an empty environment (no `SPIN_VARIABLE_*` leaks
    /// in from the machine) and the shared compile cache.
    pub fn builder(manifest: &Path) -> TestAppBuilder {
        let mut opts = LoadOptions::new(manifest);
        opts.env = HashMap::new();
        opts.cache_dir = Some(cache_dir());
        TestAppBuilder { opts }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A manifest written into a temporary directory by a test.
pub struct TempManifest {
    /// The directory holding `spin.toml` (and `.spin/` by default).
    pub dir: tempfile::TempDir,
}

impl TempManifest {
    /// Writes `toml` as `spin.toml`; `{probe}`, `{empty}` and `{storeops}` are replaced by the
    /// paths of the test components.
    pub fn new(toml: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let text = toml
            .replace("{probe}", &wasm_str("eventplane_test_probe")?)
            .replace("{empty}", &wasm_str("eventplane_test_empty")?)
            .replace("{storeops}", &wasm_str("eventplane_test_storeops")?);
        std::fs::write(dir.path().join("spin.toml"), text)?;
        Ok(Self { dir })
    }

    /// Path of the manifest.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("spin.toml")
    }
}

fn wasm_str(name: &str) -> anyhow::Result<String> {
    Ok(wasm(name)?.display().to_string())
}

/// A request a [`TestServer`] received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, lower-case names.
    pub headers: HashMap<String, String>,
    /// Body.
    pub body: Vec<u8>,
}

/// What a [`TestServer`] answers to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// Headers (a name may repeat, e.g. `set-cookie`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// How long to wait before answering.
    pub delay: std::time::Duration,
}

impl Reply {
    /// `status` with `body`.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: std::time::Duration::ZERO,
        }
    }

    /// The same reply with one more header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same reply, sent after `delay`.
    #[must_use]
    pub fn after(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl Received {
    /// The path without the query.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }

    /// Header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// How a [`TestServer`] answers: a function of the request.
pub type Handler = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

/// A real HTTP server on a loopback port that answers every request through a handler (or with
/// a fixed status and body), and records what it received.
pub struct TestServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Starts a server answering `status` with `body`.
    pub async fn start(status: u16, reply_body: &'static str) -> anyhow::Result<Self> {
        Self::start_with(move |_| Reply::new(status, reply_body)).await
    }

    /// Starts a server answering each request with `handler`'s reply.
    pub async fn start_with(
        handler: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let handler: Handler = Arc::new(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let log = log.clone();
                            let handler = handler.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let request = Received {
                                    method: parts.method.to_string(),
                                    path: parts
                                        .uri
                                        .path_and_query()
                                        .map(|p| p.to_string())
                                        .unwrap_or_default(),
                                    headers: parts
                                        .headers
                                        .iter()
                                        .map(|(k, v)| {
                                            (k.to_string(), v.to_str().unwrap_or("").to_string())
                                        })
                                        .collect(),
                                    body: body.to_vec(),
                                };
                                let reply = handler(&request);
                                log.lock().expect("log lock").push(request);
                                if !reply.delay.is_zero() {
                                    tokio::time::sleep(reply.delay).await;
                                }
                                let mut response =
                                    hyper::Response::new(Full::new(Bytes::from(reply.body)));
                                *response.status_mut() = http::StatusCode::from_u16(reply.status)
                                    .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                                for (name, value) in &reply.headers {
                                    if let (Ok(name), Ok(value)) = (
                                        http::HeaderName::from_bytes(name.as_bytes()),
                                        http::HeaderValue::from_str(value),
                                    ) {
                                        response.headers_mut().append(name, value);
                                    }
                                }
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            received,
            task,
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What the server has received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("log lock").clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads a JSON response body, with the status and raw text in the error when it is not JSON.
pub async fn json(response: reqwest::Response) -> anyhow::Result<(u16, serde_json::Value)> {
    let status = response.status().as_u16();
    let text = response.text().await?;
    let value = serde_json::from_str(&text)
        .with_context(|| format!("status {status}, body is not JSON: {text:?}"))?;
    Ok((status, value))
}

/// Everything the host has logged in this test process (at `info` and above), captured so that
/// tests can check what an operator would see. Installs the capturing subscriber on first use.
pub fn host_logs() -> String {
    let buffer = LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(buffer.clone());
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buffer
    });
    String::from_utf8_lossy(&buffer.lock().expect("log lock")).into_owned()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
