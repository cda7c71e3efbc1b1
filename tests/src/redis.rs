//! A `redis-server` of the tests' own, on a free loopback port with its own directory and its
//! append-only file on, stopped on drop.
//!
//! The server comes from Debian's `redis-server` package, which the test command installs when
//! it is missing (`scripts/servers.sh`). Found on `REDIS_SERVER` or `PATH`; where it is absent,
//! [`RedisServer::start`] answers `None` so the test can skip, saying so, except under `CI=true`,
//! where a missing server is an error.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// How long a starting server may take to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `redis-server`.
pub struct RedisServer {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

/// The `redis-server` binary: `REDIS_SERVER`, else the first on `PATH`.
pub fn redis_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("REDIS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

impl RedisServer {
    /// Starts a server and waits until it answers; `Ok(None)` (after saying so on stderr) when
    /// there is no `redis-server` and this is not CI.
    pub async fn start() -> anyhow::Result<Option<Self>> {
        let Some(binary) = redis_binary() else {
            anyhow::ensure!(
                std::env::var("CI").as_deref() != Ok("true"),
                "no redis-server on REDIS_SERVER or PATH (scripts/servers.sh installs it)"
            );
            eprintln!("skipped: no redis-server on REDIS_SERVER or PATH");
            return Ok(None);
        };
        let dir = tempfile::tempdir()?;
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut server = Self {
            child: spawn(&binary, dir.path(), addr)?,
            addr,
            dir,
        };
        server.wait_until_ready().await?;
        Ok(Some(server))
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Writes a Spin runtime config pointing the store `default` at this server into `dir`;
    /// its path.
    pub fn runtime_config(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join("runtime-config.toml");
        std::fs::write(
            &path,
            format!(
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
                self.url()
            ),
        )?;
        Ok(path)
    }

    /// Kills the server with `SIGKILL`, as a crash would (no shutdown, no final write), and
    /// waits for it; [`restart`](Self::restart) brings it back.
    pub fn crash(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Stops the server if it runs (`SIGTERM`, which writes the append-only file) and starts it
    /// again on the same port and directory, from what its files hold.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.terminate();
        let binary = redis_binary().context("redis-server vanished")?;
        self.child = spawn(&binary, self.dir.path(), self.addr)?;
        self.wait_until_ready().await
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("redis-server exited ({status}):\n{}", self.log_text());
            }
            if ping(self.addr) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("redis-server did not answer PING:\n{}", self.log_text())
    }

    fn terminate(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return; // not running
        }
        // SIGTERM: redis-server flushes its append-only file and exits.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn spawn(binary: &Path, dir: &Path, addr: SocketAddr) -> anyhow::Result<Child> {
    Command::new(binary)
        .args(["--bind", "127.0.0.1", "--port"])
        .arg(addr.port().to_string())
        .arg("--dir")
        .arg(dir)
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ])
        .args(["--daemonize", "no", "--logfile"])
        .arg(dir.join("redis.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", binary.display()))
}

/// Whether the server at `addr` answers `PING` with `+PONG`.
fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}
