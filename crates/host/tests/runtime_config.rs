//! `eventplane up --runtime-config-file` as a user runs it, with the storeops test component
//! (`POST /get,incr,set,setmany`, `POST /swap`) on the store `default`: a Redis store, a
//! `spin` store at a path of its own, and the files it refuses to start with.

#[path = "support/redis_server.rs"]
mod redis_server;

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use redis_server::RedisServer;

fn storeops_wasm() -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-wasip2/release/eventplane_test_storeops.wasm");
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run ./scripts/build-components.sh",
        path.display()
    );
    Ok(path)
}

/// A manifest in `dir` serving storeops on `/...` with the stores `labels`.
fn write_manifest(dir: &Path, labels: &[&str]) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("spin.toml");
    let labels: Vec<String> = labels.iter().map(|l| format!("{l:?}")).collect();
    std::fs::write(
        &manifest,
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"rc\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"storeops\"\n\
             [component.storeops]\nsource = \"{}\"\nkey_value_stores = [{}]\n",
            storeops_wasm()?.display(),
            labels.join(", ")
        ),
    )?;
    Ok(manifest)
}

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/eventplane-test-cache")
}

fn eventplane_up(manifest: &Path, runtime_config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eventplane"));
    command
        .args(["up", "--listen", "127.0.0.1:0", "--manifest"])
        .arg(manifest)
        .arg("--runtime-config-file")
        .arg(runtime_config)
        .arg("--cache-dir")
        .arg(cache_dir());
    command
}

/// A running `eventplane up`, stopped with Ctrl-C (SIGINT) on drop.
struct Up {
    child: Child,
    base: String,
    /// Kept open: the host prints on it until it stops.
    stdout: BufReader<ChildStdout>,
    stderr: ChildStderr,
}

impl Up {
    fn start(manifest: &Path, runtime_config: &Path) -> anyhow::Result<Self> {
        let mut child = eventplane_up(manifest, runtime_config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut stderr = child.stderr.take().expect("piped stderr");
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut printed = String::new();
        let base = loop {
            anyhow::ensure!(Instant::now() < deadline, "no Serving line: {printed}");
            let mut line = String::new();
            if stdout.read_line(&mut line)? == 0 {
                let mut errors = String::new();
                stderr.read_to_string(&mut errors)?;
                anyhow::bail!("exited early: {printed}{errors}");
            }
            printed.push_str(&line);
            if let Some(url) = line.trim().strip_prefix("Serving ") {
                break url.to_string();
            }
        };
        Ok(Self {
            child,
            base,
            stdout,
            stderr,
        })
    }

    /// `POST <path>`: the status and the body.
    fn post(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let response = reqwest::blocking::Client::new()
            .post(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(30))
            .send()?;
        Ok((response.status().as_u16(), response.text()?))
    }

    /// Stops the host; what it printed on stderr.
    fn stop(mut self) -> anyhow::Result<String> {
        Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status()?;
        let mut printed = String::new();
        self.stdout.read_to_string(&mut printed)?;
        let exit = self.child.wait()?;
        anyhow::ensure!(printed.contains("Shut down cleanly"), "{printed}");
        let mut errors = String::new();
        self.stderr.read_to_string(&mut errors)?;
        anyhow::ensure!(exit.success(), "exit status {exit}: {errors}");
        Ok(errors)
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `default` on Redis: the component's operations land in the server (a counter as a Redis
/// integer), compare-and-swap is exact, no SQLite file is made; while the server is down the
/// component sees the store's error (and answers it), and once it is back the same host uses
/// it again.
#[test]
fn default_on_redis_serves_from_the_server_and_survives_its_restart() -> anyhow::Result<()> {
    let Some(mut server) = RedisServer::start()? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let manifest = write_manifest(dir.path(), &["default"])?;
    let config = server.runtime_config(dir.path())?;
    let up = Up::start(&manifest, &config)?;
    assert_eq!(up.post("/get,incr,seq,set,setmany")?, (200, "5\n".into()));
    assert_eq!(up.post("/seq")?, (200, "1\n".into()));
    assert_eq!(up.post("/swap")?, (200, "swap=ok holds=new\n".into()));

    let mut redis = redis::Client::open(server.url())?.get_connection()?;
    let sequence: Option<String> = redis::cmd("GET")
        .arg("storeops/sequence")
        .query(&mut redis)?;
    assert_eq!(
        sequence.as_deref(),
        Some("2"),
        "INCRBY keeps a Redis integer"
    );
    let keys: Vec<String> = redis::cmd("KEYS").arg("storeops/*").query(&mut redis)?;
    assert!(keys.contains(&"storeops/shared".to_owned()), "{keys:?}");
    assert!(
        keys.iter().any(|k| k.ends_with("/log")),
        "set-many: {keys:?}"
    );
    drop(redis);
    assert!(
        !dir.path().join(".spin").exists(),
        "no SQLite file for a store on Redis"
    );

    server.stop();
    let started = Instant::now();
    let (status, body) = up.post("/set")?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains(&format!(
            "the key-value store `default` ({}) did not answer",
            server.url()
        )),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    server.start_again()?;
    assert_eq!(up.post("/set")?, (200, "1\n".into()));
    assert_eq!(up.post("/seq")?, (200, "1\n".into()));
    let stderr = up.stop()?;
    assert!(
        stderr.contains(&format!(
            "key-value store \"default\": Redis {}",
            server.url()
        )),
        "{stderr}"
    );
    Ok(())
}

/// A `spin` store with a relative `path` lives there, beside the runtime config file, in
/// Spin's layout; nothing goes to the state directory.
#[test]
fn a_spin_store_lives_at_its_path_beside_the_runtime_config() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = write_manifest(dir.path(), &["default"])?;
    std::fs::create_dir(dir.path().join("config"))?;
    let config = dir.path().join("config/runtime-config.toml");
    std::fs::write(
        &config,
        "[key_value_store.default]\ntype = \"spin\"\npath = \"data/kv.db\"\n",
    )?;
    let up = Up::start(&manifest, &config)?;
    assert_eq!(up.post("/set,seq")?, (200, "2\n".into()));
    let stderr = up.stop()?;
    let file = dir.path().join("config/data/kv.db");
    assert!(stderr.contains("kv.db"), "{stderr}");
    let db = rusqlite::Connection::open(&file)?;
    let counter: Vec<u8> = db.query_row(
        "SELECT value FROM spin_key_value WHERE store = 'default' AND key = 'storeops/sequence'",
        [],
        |row| row.get(0),
    )?;
    assert_eq!(counter, 1i64.to_le_bytes());
    assert!(!dir.path().join(".spin").exists());
    Ok(())
}

/// What `eventplane up` prints on stderr when it refuses to start with `runtime_config`.
fn refused(manifest: &Path, runtime_config: &Path) -> anyhow::Result<String> {
    let output = eventplane_up(manifest, runtime_config).output()?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    anyhow::ensure!(!output.status.success(), "started: {stderr}");
    Ok(stderr)
}

/// Every file it cannot honour stops `eventplane up` before it serves, with one line naming
/// the file, the table and the problem.
#[test]
fn up_refuses_a_runtime_config_it_cannot_honour() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = write_manifest(dir.path(), &["default", "cache"])?;
    let config = dir.path().join("rc.toml");
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            "[key_value_store.cache]\ntype = \"azure_cosmos\"\n".into(),
            vec!["[key_value_store.cache]".into(), "\"azure_cosmos\"".into()],
        ),
        (
            "[key_value_store.cache]\ntype = \"redis\"\n".into(),
            vec!["[key_value_store.cache]".into(), "needs a `url`".into()],
        ),
        (
            "[key_value_store.cache]\ntype = \"spin\"\n[key_value_store.other]\ntype = \"spin\"\n"
                .into(),
            vec![
                "[key_value_store.other]".into(),
                "lists \"other\" in its key_value_stores".into(),
            ],
        ),
        (
            // `cache` is listed by the component but not defined.
            "[key_value_store.default]\ntype = \"spin\"\n".into(),
            vec![
                "unknown key_value_stores label \"cache\" for component \"storeops\"".into(),
                "has no [key_value_store.cache]".into(),
            ],
        ),
        (
            format!(
                "[key_value_store.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{closed_port}\"\n"
            ),
            vec![
                "[key_value_store.cache]".into(),
                format!("Redis at redis://127.0.0.1:{closed_port} does not answer"),
            ],
        ),
        (
            "[sqlite_database.default]\ntype = \"spin\"\n".into(),
            vec!["`sqlite_database` is not supported by eventplane up".into()],
        ),
        (
            "[key_value_store.cache\n".into(),
            vec!["invalid TOML".into()],
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&config, &text)?;
        let stderr = refused(&manifest, &config)?;
        if !expected[0].starts_with("unknown key_value_stores") {
            assert!(
                stderr.contains(&format!(
                    "Error: runtime config file {}: ",
                    config.display()
                )),
                "{text}: {stderr}"
            );
        }
        for part in expected {
            assert!(stderr.contains(&part), "{text}: {stderr} lacks {part}");
        }
    }
    let missing = dir.path().join("missing.toml");
    let stderr = refused(&manifest, &missing)?;
    assert!(
        stderr.contains(&format!(
            "cannot read runtime config file {}",
            missing.display()
        )),
        "{stderr}"
    );
    Ok(())
}
