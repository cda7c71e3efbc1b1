//! The application on real Spin, for the checks and benchmarks that compare eventplane's host
//! with the runtime users deploy.
//!
//! Spin is found on `SPIN_BIN` (a path) or `PATH`. Where it is absent, whatever needs it is
//! skipped, saying so ([`spin_binary`] answers `None`); nothing in the test command requires it.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use eventplane_tests::spin::{SpinApp, spin_binary};
//! let Some(spin) = spin_binary() else {
//!     eprintln!("skipped: no spin on PATH or SPIN_BIN");
//!     return Ok(());
//! };
//! let state = tempfile::tempdir()?;
//! let app = SpinApp::start(&spin, &eventplane_tests::workspace_root().join("spin.toml"),
//!     state.path(), &[("SPIN_VARIABLE_ADMIN_TOKEN", "secret")]).await?;
//! println!("{}", app.url("/graphql"));
//! app.stop().await
//! # }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::process::{Child, Command};

/// How long `spin up` may take to serve (it compiles every component on its first run).
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// The `spin` binary: `SPIN_BIN` if it is set (and names a file), else `spin` on `PATH`.
pub fn spin_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SPIN_BIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join("spin"))
        .find(|candidate| candidate.is_file())
}

/// An application served by a runtime in a process of its own (`spin up`, or `eventplane up`
/// with [`AppProcess::eventplane_up`]) on a free loopback port; stopped on drop.
///
/// `spin up` serves through a child process (`spin trigger http`) that outlives a `SIGKILL` of
/// its parent, so it is always stopped with `SIGTERM`, which it passes on.
pub struct AppProcess {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    /// What runs, for messages: `spin up` or `eventplane up`.
    what: &'static str,
}

/// An application served by `spin up` (see [`AppProcess`]).
pub type SpinApp = AppProcess;

impl AppProcess {
    /// Runs `spin up` for `manifest` with its state (key-value store, logs) in `state_dir`,
    /// the environment of this process without its `SPIN_VARIABLE_*` entries plus `env`, and
    /// waits until it serves. Its output goes to `state_dir/spin-up.log`.
    pub async fn start(
        spin: &Path,
        manifest: &Path,
        state_dir: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::start_with(spin, manifest, state_dir, env, &[]).await
    }

    /// [`start`](Self::start) with more arguments for `spin up` (e.g. a runtime config).
    pub async fn start_with(
        spin: &Path,
        manifest: &Path,
        state_dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> anyhow::Result<Self> {
        Self::up(spin, "spin up", manifest, state_dir, env, args).await
    }

    /// `eventplane up` (the program at `binary`, e.g. a test binary running
    /// `eventplane_host::cli::main`) serving `manifest` with its state in `state_dir`, the
    /// compile cache shared by the tests ([`crate::cache_dir`]), the environment of this process
    /// without its `SPIN_VARIABLE_*` entries plus `env`, and more arguments `args` (e.g.
    /// `--runtime-config-file`). Its output goes to `state_dir/eventplane-up.log`.
    pub async fn eventplane_up(
        binary: &Path,
        manifest: &Path,
        state_dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let cache = crate::cache_dir();
        let cache = cache.to_string_lossy();
        let args = [&["--cache-dir", cache.as_ref()], args].concat();
        Self::up(binary, "eventplane up", manifest, state_dir, env, &args).await
    }

    /// `<program> up -f <manifest> --listen <free port> --state-dir <state_dir> <args>`, both
    /// runtimes taking these the same way, with `env` as the only `SPIN_VARIABLE_*`s; output to
    /// `state_dir/<what, dashed>.log`.
    async fn up(
        program: &Path,
        what: &'static str,
        manifest: &Path,
        state_dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(state_dir)?;
        let addr = free_port()?;
        let log = state_dir.join(format!("{}.log", what.replace(' ', "-")));
        let output = std::fs::File::create(&log)?;
        let mut command = Command::new(program);
        command
            .arg("up")
            .arg("-f")
            .arg(manifest)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--state-dir")
            .arg(state_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SPIN_VARIABLE_") {
                command.env_remove(name);
            }
        }
        // The application's own address, where the mqtt component (spin-mqtt.toml) hands
        // accepted events to the dispatcher, unless the caller says otherwise.
        if !env.iter().any(|(name, _)| *name == HANDOFF_VARIABLE) {
            command.env(HANDOFF_VARIABLE, format!("http://{addr}"));
        }
        command.envs(env.iter().copied());
        let child = command.spawn().with_context(|| format!("running {what}"))?;
        let mut app = Self {
            child,
            addr,
            log,
            what,
        };
        app.wait_until_serving().await?;
        Ok(app)
    }

    /// Kills the process with `SIGKILL`, as a crash would (for `eventplane up`; `spin up`'s
    /// trigger process would survive it), and waits for it.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    async fn wait_until_serving(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("{} exited ({status}):\n{}", self.what, self.log_text());
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!(
            "{} did not serve within {} s:\n{}",
            self.what,
            START_TIMEOUT.as_secs(),
            self.log_text()
        )
    }

    /// What the process printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the process (and `spin up`'s trigger process) and waits for it to exit; kills it
    /// if it has not exited within 10 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.terminate();
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => drop(status?),
            Err(_) => {
                self.child.start_kill()?;
                self.child.wait().await?;
            }
        }
        Ok(())
    }

    /// Sends `SIGTERM` to the process, if it is still running.
    fn terminate(&mut self) {
        if let (Ok(None), Some(pid)) = (self.child.try_wait(), self.child.id()) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A loopback address with a port nothing listens on now.
/// The variable naming the address the mqtt component hands accepted events off to: the
/// application's own (see `spin-mqtt.toml`).
pub const HANDOFF_VARIABLE: &str = "SPIN_VARIABLE_MQTT_HANDOFF_URL";

fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}
