//! A `redis-server` of a test's own, on a free loopback port with its own directory and its
//! append-only file on (every write synced), stopped on drop. The host's tests and the
//! end-to-end tests (`eventplane_tests::redis`) both use this one file.
//!
//! The server is found on `REDIS_SERVER` or `PATH` (`scripts/servers.sh` installs Debian's
//! package); where there is none, [`RedisServer::start`] answers `None` after saying so on
//! stderr, so that the test can skip, except under `CI=true`, where that is an error.

#![allow(dead_code, reason = "each test crate uses a part of it")]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting server may take to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running (or stopped, between [`RedisServer::stop`] and [`RedisServer::start_again`])
/// `redis-server`.
pub struct RedisServer {
    binary: PathBuf,
    child: Option<Child>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

/// The `redis-server` binary: `REDIS_SERVER`, else the first on `PATH`.
fn redis_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("REDIS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

impl RedisServer {
    /// Starts a server and waits until it answers; `Ok(None)` (said on stderr) when there is
    /// no `redis-server` and this is not CI.
    pub fn start() -> anyhow::Result<Option<Self>> {
        let Some(binary) = redis_binary() else {
            anyhow::ensure!(
                std::env::var("CI").as_deref() != Ok("true"),
                "no redis-server on REDIS_SERVER or PATH (scripts/servers.sh installs it)"
            );
            eprintln!("skipped: no redis-server on REDIS_SERVER or PATH");
            return Ok(None);
        };
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut server = Self {
            binary,
            child: None,
            addr,
            dir: tempfile::tempdir()?,
        };
        server.start_again()?;
        Ok(Some(server))
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Stops the server (SIGTERM: it writes its append-only file and exits).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // A paused server must go on to handle the SIGTERM.
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(child.id().to_string())
            .status();
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the server with `SIGKILL`, as a crash would (no shutdown, no final write), and
    /// waits for it; [`start_again`](Self::start_again) brings it back from its files.
    pub fn crash(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Writes a Spin runtime config pointing the store `default` at this server into `dir`;
    /// its path.
    pub fn runtime_config(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join("runtime-config.toml");
        let toml = format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
            self.url()
        );
        std::fs::write(&path, toml)?;
        Ok(path)
    }

    /// Starts the server (again) on the same port and directory, and waits until it answers.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        self.stop();
        let child = spawn(&self.binary, self.dir.path(), self.addr)?;
        let child = self.child.insert(child);
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("redis-server exited ({status}):\n{}", self.log_text());
            }
            if ping(self.addr) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        anyhow::bail!("redis-server did not answer PING:\n{}", self.log_text())
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// Lets a [paused](Self::pause) server go on (SIGCONT).
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let child = self
            .child
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("not running"))?;
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill {signal} failed");
        Ok(())
    }

    /// How many times each command was sent to the server since it started (`INFO
    /// commandstats`: run, or refused before it ran), by lower-case name: what the store
    /// operations of a request cost in round trips.
    pub fn command_calls(&self) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"INFO commandstats\r\n")?;
        // A bulk string: `$<length>\r\n<text>\r\n`.
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        let length = loop {
            let n = stream.read(&mut buf)?;
            anyhow::ensure!(n > 0, "redis-server closed the connection");
            text.extend_from_slice(&buf[..n]);
            if let Some(end) = text.windows(2).position(|w| w == b"\r\n") {
                let header = std::str::from_utf8(&text[..end])?;
                let length: usize = header
                    .strip_prefix('$')
                    .ok_or_else(|| anyhow::anyhow!("INFO answered {header:?}"))?
                    .parse()?;
                break end + 2 + length;
            }
        };
        while text.len() < length {
            let n = stream.read(&mut buf)?;
            anyhow::ensure!(n > 0, "redis-server closed the connection");
            text.extend_from_slice(&buf[..n]);
        }
        let mut calls = std::collections::BTreeMap::new();
        for line in String::from_utf8_lossy(&text).lines() {
            // cmdstat_get:calls=12,usec=...
            let Some((name, stats)) = line
                .strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            // Commands refused before they ran (e.g. with the wrong number of arguments) are
            // `rejected_calls`, not `calls`: a round trip all the same.
            let count: u64 = stats
                .split(',')
                .filter_map(|field| {
                    field
                        .strip_prefix("calls=")
                        .or_else(|| field.strip_prefix("rejected_calls="))
                })
                .filter_map(|n| n.parse::<u64>().ok())
                .sum();
            calls.insert(name.to_owned(), count);
        }
        Ok(calls)
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
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
        .map_err(|e| anyhow::anyhow!("running {}: {e}", binary.display()))
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
