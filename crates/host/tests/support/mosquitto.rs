//! A `mosquitto` MQTT broker of a test's own, on a free loopback port with its own config
//! file, log and persistence in a temporary directory (so a restarted broker keeps QoS 1
//! sessions and their queued messages), stopped on drop. The host's tests and the end-to-end
//! tests both use this one file.
//!
//! The broker is found on `MOSQUITTO`, on `PATH`, or at `/usr/sbin/mosquitto` (where Debian's
//! package puts it: `scripts/servers.sh` installs it); where there is none,
//! [`Mosquitto::start`] answers `None` after saying so on stderr, so that the test can skip,
//! except under `CI=true`, where that is an error. Password files are made with
//! `mosquitto_passwd` (`MOSQUITTO_PASSWD`, `PATH`, or beside the broker in `/usr/bin`).

#![allow(dead_code, reason = "each test crate uses a part of it")]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting broker may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How a broker is set up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `(username, password)` pairs; when any is given anonymous clients are refused.
    pub users: Vec<(String, String)>,
    /// The text of an ACL file (`user x` / `topic readwrite y` lines), if any.
    pub acl: Option<String>,
}

/// A running (or stopped, between [`Mosquitto::stop`] and [`Mosquitto::start_again`])
/// `mosquitto`.
pub struct Mosquitto {
    binary: PathBuf,
    child: Option<Child>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

/// The first of `env`, `PATH` and `fallback` that names a file.
fn find(env: &str, name: &str, fallback: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from(fallback)).filter(|p| p.is_file()))
}

/// Says the broker is missing: an error under `CI=true`, else a note on stderr.
fn missing(what: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        std::env::var("CI").as_deref() != Ok("true"),
        "no {what} (scripts/servers.sh installs it)"
    );
    eprintln!("skipped: no {what}");
    Ok(())
}

impl Mosquitto {
    /// Starts a broker for anonymous clients and waits until it accepts connections; `Ok(None)`
    /// (said on stderr) when there is no `mosquitto` and this is not CI.
    pub fn start() -> anyhow::Result<Option<Self>> {
        Self::start_with(&Options::default())
    }

    /// Starts a broker set up as `options` says (see [`Mosquitto::start`]).
    pub fn start_with(options: &Options) -> anyhow::Result<Option<Self>> {
        let Some(binary) = find("MOSQUITTO", "mosquitto", "/usr/sbin/mosquitto") else {
            missing("mosquitto on MOSQUITTO, PATH or /usr/sbin")?;
            return Ok(None);
        };
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let dir = tempfile::tempdir()?;
        let mut config = format!(
            "listener {port} 127.0.0.1\n\
             allow_anonymous {anonymous}\n\
             persistence true\n\
             persistence_location {dir}/\n\
             persistence_file mosquitto.db\n\
             autosave_interval 1\n\
             max_queued_messages 1000000\n\
             log_dest file {dir}/mosquitto.log\n\
             log_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
             connection_messages true\n\
             user root\n",
            port = addr.port(),
            anonymous = options.users.is_empty(),
            dir = dir.path().display(),
        );
        if !options.users.is_empty() {
            let Some(passwd) = find(
                "MOSQUITTO_PASSWD",
                "mosquitto_passwd",
                "/usr/bin/mosquitto_passwd",
            ) else {
                missing("mosquitto_passwd on MOSQUITTO_PASSWD, PATH or /usr/bin")?;
                return Ok(None);
            };
            let file = dir.path().join("passwd");
            std::fs::write(&file, "")?;
            for (user, password) in &options.users {
                let status = Command::new(&passwd)
                    .arg("-b")
                    .arg(&file)
                    .arg(user)
                    .arg(password)
                    .stdout(Stdio::null())
                    .status()
                    .map_err(|e| anyhow::anyhow!("running {}: {e}", passwd.display()))?;
                anyhow::ensure!(status.success(), "mosquitto_passwd failed: {status}");
            }
            config.push_str(&format!("password_file {}\n", file.display()));
        }
        if let Some(acl) = &options.acl {
            let file = dir.path().join("acl");
            std::fs::write(&file, acl)?;
            config.push_str(&format!("acl_file {}\n", file.display()));
        }
        std::fs::write(dir.path().join("mosquitto.conf"), config)?;
        let mut broker = Self {
            binary,
            child: None,
            addr,
            dir,
        };
        broker.start_again()?;
        Ok(Some(broker))
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops the broker (SIGTERM: it saves its persistence file and exits).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
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

    /// Starts the broker (again) on the same port, config and persistence, and waits until it
    /// accepts connections.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        self.stop();
        let config = self.dir.path().join("mosquitto.conf");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("running {}: {e}", self.binary.display()))?;
        let child = self.child.insert(child);
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("mosquitto exited ({status}):\n{}", self.log_text());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        anyhow::bail!("mosquitto did not accept connections:\n{}", self.log_text())
    }

    /// The broker's directory (config, log, persistence).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the broker logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}
