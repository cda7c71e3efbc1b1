//! Spin's MQTT trigger and outbound MQTT in `eventplane up`, against a real broker (a
//! `mosquitto` of each test's own) with a real client (rumqttc): the mqttprobe test component
//! handles the messages (recording each in the key-value store, failing `fail-once:` payloads
//! the first time, publishing for `publish:<topic>`), and the probe component serves the store
//! over HTTP (`/probe/_probe/kv/default/<key>`) so that the tests can watch it.

#[path = "support/mosquitto.rs"]
mod mosquitto;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mosquitto::{Mosquitto, Options};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, Outgoing, QoS};

/// How long a test waits for what it expects before failing.
const PATIENCE: Duration = Duration::from_secs(60);

fn wasm(name: &str) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run ./scripts/build-components.sh",
        path.display()
    );
    Ok(path)
}

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/eventplane-test-cache")
}

/// Writes `spin.toml` in `dir`: `body` (triggers, variables) plus the components `mqttprobe`
/// (outbound MQTT allowed to `allowed`, its `mqtt_address` variable from the application
/// variable `outbound`), `mqttprobe-denied` (no outbound hosts), and `probe` on `/probe/...`,
/// all on the store `default`.
fn write_manifest(dir: &Path, body: &str, allowed: &str) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("spin.toml");
    let mqttprobe = wasm("eventplane_test_mqttprobe")?;
    let probe = wasm("eventplane_test_probe")?;
    std::fs::write(
        &manifest,
        format!(
            r#"spin_manifest_version = 2
[application]
name = "mqtt-test"
{body}
[component.mqttprobe]
source = "{mqttprobe}"
key_value_stores = ["default"]
allowed_outbound_hosts = [{allowed}]
variables = {{ mqtt_address = "{{{{ outbound }}}}" }}

[component.mqttprobe-denied]
source = "{mqttprobe}"
key_value_stores = ["default"]
variables = {{ mqtt_address = "{{{{ outbound }}}}" }}

[component.probe]
source = "{probe}"
key_value_stores = ["default"]
"#,
            mqttprobe = mqttprobe.display(),
            probe = probe.display(),
            allowed = if allowed.is_empty() {
                String::new()
            } else {
                format!("{allowed:?}")
            },
        ),
    )?;
    Ok(manifest)
}

/// The usual test application: `[[trigger.mqtt]]` entries (TOML) on the broker in the
/// variable `broker`, and the probe on `/probe/...`.
fn app_body(entries: &str) -> String {
    format!(
        r#"
[variables]
broker = {{ required = true }}
outbound = {{ default = "" }}
root = {{ default = "probe" }}

[application.trigger.mqtt]
address = "{{{{ broker }}}}"
username = ""
password = ""
keep_alive_interval = "5"

{entries}

[[trigger.http]]
route = "/probe/..."
component = "probe"
"#
    )
}

/// A running `eventplane up`, killed on drop; what it prints is collected as it comes.
struct Up {
    child: Child,
    /// `http://127.0.0.1:<port>`, when it serves HTTP.
    base: Option<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    http: reqwest::blocking::Client,
}

fn collect(stream: impl std::io::Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            if let Ok(mut text) = into.lock() {
                text.push_str(&line);
            }
            line.clear();
        }
    });
}

impl Up {
    /// Starts `eventplane up` on `manifest` with the `SPIN_VARIABLE_*` in `env` (and info
    /// logs, or `EVENTPLANE_TEST_LOG`'s filter), and waits until it has printed its MQTT
    /// triggers.
    fn start(manifest: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_eventplane"));
        command
            .args(["up", "--listen", "127.0.0.1:0", "--from"])
            .arg(manifest)
            .arg("--cache-dir")
            .arg(cache_dir())
            .env(
                "EVENTPLANE_LOG",
                std::env::var("EVENTPLANE_TEST_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn()?;
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().expect("piped stdout"), stdout.clone());
        collect(child.stderr.take().expect("piped stderr"), stderr.clone());
        let mut up = Self {
            child,
            base: None,
            stdout,
            stderr,
            http: reqwest::blocking::Client::new(),
        };
        let deadline = Instant::now() + PATIENCE;
        while !up.printed().contains("MQTT triggers on ") {
            if let Some(status) = up.child.try_wait()? {
                std::thread::sleep(Duration::from_millis(100));
                anyhow::bail!("exited ({status}): {}{}", up.printed(), up.logged());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "no MQTT triggers printed: {}",
                up.printed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        up.base = up.printed().lines().find_map(|line| {
            line.trim()
                .strip_prefix("Serving ")
                .map(|url| url.to_owned())
        });
        Ok(up)
    }

    fn printed(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn logged(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Polls `done` every 20 ms until it holds, for at most [`PATIENCE`].
    fn wait_until(
        &self,
        what: &str,
        mut done: impl FnMut(&Self) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if done(self)? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        anyhow::bail!(
            "timed out waiting for {what}\nstdout:\n{}\nstderr:\n{}",
            self.printed(),
            self.logged()
        )
    }

    /// Waits until the host has logged `text` at least `times` times.
    fn wait_for_log(&self, text: &str, times: usize) -> anyhow::Result<()> {
        self.wait_until(&format!("{times} × {text:?} in the log"), |up| {
            Ok(up.logged().matches(text).count() >= times)
        })
    }

    /// The value of `key` in the store `default`, read through the probe.
    fn kv(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let base = self
            .base
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("this application serves no HTTP"))?;
        let response = self
            .http
            .get(format!("{base}/probe/_probe/kv/default/{key}"))
            .timeout(Duration::from_secs(10))
            .send()?;
        match response.status().as_u16() {
            200 => Ok(Some(response.bytes()?.to_vec())),
            404 => Ok(None),
            status => anyhow::bail!("GET {key}: {status} {}", response.text()?),
        }
    }

    /// How many times mqttprobe was given `payload`.
    fn deliveries(&self, payload: &str) -> anyhow::Result<u64> {
        self.counter(&format!("count/{payload}"))
    }

    /// A counter of mqttprobe's (0 when absent).
    fn counter(&self, key: &str) -> anyhow::Result<u64> {
        match self.kv(key)? {
            None => Ok(0),
            Some(bytes) => {
                let bytes: [u8; 8] = bytes
                    .try_into()
                    .map_err(|b: Vec<u8>| anyhow::anyhow!("count is {} bytes", b.len()))?;
                Ok(u64::from_le_bytes(bytes))
            }
        }
    }

    /// Waits until every payload has been delivered at least once.
    fn wait_for_deliveries(&self, payloads: &[String]) -> anyhow::Result<()> {
        let mut missing: Vec<&String> = payloads.iter().collect();
        self.wait_until(&format!("{} deliveries", payloads.len()), |up| {
            let mut still = Vec::new();
            for payload in &missing {
                if up.deliveries(payload)? == 0 {
                    still.push(*payload);
                }
            }
            missing = still;
            Ok(missing.is_empty())
        })
    }

    /// Stops the host with Ctrl-C (SIGINT); what it logged.
    fn stop(mut self) -> anyhow::Result<String> {
        Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(exit) = self.child.try_wait()? {
                break exit;
            }
            anyhow::ensure!(Instant::now() < deadline, "did not stop: {}", self.logged());
            std::thread::sleep(Duration::from_millis(20));
        };
        // Let the readers take the last lines.
        std::thread::sleep(Duration::from_millis(100));
        anyhow::ensure!(exit.success(), "exit status {exit}: {}", self.logged());
        anyhow::ensure!(
            self.printed().contains("Shut down cleanly"),
            "{}",
            self.printed()
        );
        Ok(self.logged())
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(host, port)` of `mqtt://host:port`.
fn host_port(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url
        .strip_prefix("mqtt://")
        .ok_or_else(|| anyhow::anyhow!("not mqtt://: {url}"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("no port: {url}"))?;
    Ok((host.to_owned(), port.parse()?))
}

fn client_options(url: &str, name: &str) -> anyhow::Result<MqttOptions> {
    let (host, port) = host_port(url)?;
    static CLIENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = format!(
        "test-{name}-{}-{}",
        std::process::id(),
        CLIENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut options = MqttOptions::new(id, host, port);
    // mosquitto takes up to 20 unreleased QoS 2 messages from a client at a time (its
    // `max_inflight_messages`), and drops the rest while telling an MQTT 3.1.1 client nothing.
    options
        .set_max_packet_size(1 << 20, 1 << 20)
        .set_inflight(10);
    Ok(options)
}

/// Publishes `(topic, payload)` messages at `qos` with a client of its own, and waits until
/// the broker has acknowledged all of them.
fn publish(url: &str, messages: &[(String, String)], qos: QoS) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (client, mut event_loop) =
            AsyncClient::new(client_options(url, "pub")?, messages.len() + 16);
        for (topic, payload) in messages {
            client
                .publish(topic.clone(), qos, false, payload.clone().into_bytes())
                .await?;
        }
        let mut confirmed = 0;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while confirmed < messages.len() {
            let event = tokio::time::timeout_at(deadline, event_loop.poll()).await??;
            match (qos, event) {
                (QoS::AtMostOnce, Event::Outgoing(Outgoing::Publish(_)))
                | (QoS::AtLeastOnce, Event::Incoming(Incoming::PubAck(_)))
                | (QoS::ExactlyOnce, Event::Incoming(Incoming::PubComp(_))) => confirmed += 1,
                _ => {}
            }
        }
        client.disconnect().await?;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Ok(event) = event_loop.poll().await {
                if event == Event::Outgoing(Outgoing::Disconnect) {
                    break;
                }
            }
        })
        .await;
        anyhow::Ok(())
    })
}

/// `count` messages `<prefix>-<n>` to `topic`.
fn batch(topic: &str, prefix: &str, count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|n| (topic.to_owned(), format!("{prefix}-{n}")))
        .collect()
}

/// `(topic, payload)` of the messages a [`Subscriber`] received, in order.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A client subscribed to a topic filter, collecting what it receives.
struct Subscriber {
    received: Received,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Subscriber {
    /// Subscribes (QoS 1) and waits for the broker's `SUBACK`.
    fn start(url: &str, filter: &str) -> anyhow::Result<Self> {
        let options = client_options(url, "sub")?;
        let filter = filter.to_owned();
        let received: Received = Arc::default();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let into = received.clone();
        std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let (client, mut event_loop) = AsyncClient::new(options, 16);
                if client.subscribe(filter, QoS::AtLeastOnce).await.is_err() {
                    return;
                }
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        event = event_loop.poll() => match event {
                            Ok(Event::Incoming(Incoming::SubAck(_))) => {
                                let _ = ready_tx.send(());
                            }
                            Ok(Event::Incoming(Incoming::Publish(publish))) => {
                                if let Ok(mut received) = into.lock() {
                                    received.push((publish.topic.clone(), publish.payload.to_vec()));
                                }
                            }
                            Ok(_) => {}
                            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                        },
                    }
                }
            });
        });
        ready.recv_timeout(PATIENCE)?;
        Ok(Self {
            received,
            stop: Some(stop),
        })
    }

    /// Waits until a message arrived on `topic`; its payload.
    fn wait_for(&self, topic: &str) -> anyhow::Result<Vec<u8>> {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(received) = self.received.lock()
                && let Some((_, payload)) = received.iter().find(|(t, _)| t == topic)
            {
                return Ok(payload.clone());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        anyhow::bail!("nothing arrived on {topic}")
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `eventplane up` on `manifest` must fail; what it said on stderr.
fn refused(manifest: &Path, env: &[(&str, &str)]) -> anyhow::Result<String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eventplane"));
    command
        .args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(manifest)
        .arg("--cache-dir")
        .arg(cache_dir());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output()?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    anyhow::ensure!(!output.status.success(), "started: {stderr}");
    Ok(stderr)
}

const ONE_ENTRY: &str = r#"
[[trigger.mqtt]]
component = "mqttprobe"
topic = "{{ root }}/+/in"
qos = "1"
"#;

/// What the plugin's manifest tables refuse, `eventplane up` refuses at start-up with a
/// message naming the table and the problem; so does an address that resolves to a scheme
/// it cannot use.
#[test]
fn bad_mqtt_tables_are_refused_at_start_up() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let good = app_body(ONE_ENTRY);
    let broker = ("SPIN_VARIABLE_BROKER", "mqtt://127.0.0.1:1");
    let cases: [(&str, &str, &str); 5] = [
        (
            "keep_alive_interval = \"5\"",
            "keep_alive_interval = \"5\"\nclean_session = \"false\"",
            "invalid [application.trigger.mqtt]: unknown field `clean_session`",
        ),
        (
            "[application.trigger.mqtt]",
            "[application.trigger.elsewhere]",
            "the application has [[trigger.mqtt]] entries but no [application.trigger.mqtt] table",
        ),
        (
            "qos = \"1\"",
            "qos = \"at-least-once\"",
            "invalid `mqtt` trigger config for [[trigger.mqtt]] #1: `qos` must be \"0\", \"1\" or \"2\"",
        ),
        (
            "address = \"{{ broker }}\"",
            "address = \"mqtts://127.0.0.1:8883\"",
            "TLS connections (mqtts://) are not supported by eventplane",
        ),
        (
            "qos = \"1\"",
            "qos = \"1\"\nretain = \"yes\"",
            "[[trigger.mqtt]] #1: unknown field `retain`",
        ),
    ];
    for (from, to, expected) in cases {
        let manifest = write_manifest(dir.path(), &good.replacen(from, to, 1), "")?;
        let stderr = refused(&manifest, &[broker])?;
        assert!(stderr.contains(expected), "{to}: {stderr}");
    }
    // A scheme that only shows once the template is resolved.
    let manifest = write_manifest(dir.path(), &good, "")?;
    let stderr = refused(
        &manifest,
        &[("SPIN_VARIABLE_BROKER", "ws://127.0.0.1:8000")],
    )?;
    assert!(
        stderr.contains("[application.trigger.mqtt] `address`")
            && stderr.contains("the ws:// scheme is not supported"),
        "{stderr}"
    );
    // A component without the trigger's export.
    let manifest = write_manifest(
        dir.path(),
        &good.replace("component = \"mqttprobe\"", "component = \"probe\""),
        "",
    )?;
    let stderr = refused(&manifest, &[broker])?;
    assert!(
        stderr.contains("component \"probe\" cannot be called by the MQTT trigger"),
        "{stderr}"
    );
    Ok(())
}

/// QoS 1 messages published to topics the entry's wildcard filter (a template) matches reach
/// the component with their concrete topic; others do not. A component computing for a while
/// (and so interrupted at every epoch tick) is not disturbed by it.
#[test]
fn messages_reach_the_component_with_their_topic() -> anyhow::Result<()> {
    let Some(broker) = Mosquitto::start()? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let manifest = write_manifest(dir.path(), &app_body(ONE_ENTRY), "")?;
    let url = broker.url();
    let up = Up::start(&manifest, &[("SPIN_VARIABLE_BROKER", &url)])?;
    assert!(
        up.printed().contains(&format!(
            "MQTT triggers on {url}:\n  mqttprobe: probe/+/in (QoS 1)"
        )),
        "{}",
        up.printed()
    );
    up.wait_for_log("subscribed to \"probe/+/in\"", 1)?;
    let messages = vec![
        ("probe/x/out".to_owned(), "elsewhere".to_owned()),
        ("probe/a/in".to_owned(), "hello-a".to_owned()),
        ("probe/b/in".to_owned(), "hello-b".to_owned()),
        ("probe/c/in".to_owned(), "busy:300".to_owned()),
    ];
    publish(&url, &messages, QoS::AtLeastOnce)?;
    up.wait_for_deliveries(&[
        "hello-a".to_owned(),
        "hello-b".to_owned(),
        "busy:300".to_owned(),
    ])?;
    assert_eq!(
        up.kv("msg/probe/a/in/hello-a")?.as_deref(),
        Some(&b"hello-a"[..])
    );
    assert_eq!(
        up.kv("msg/probe/b/in/hello-b")?.as_deref(),
        Some(&b"hello-b"[..])
    );
    assert_eq!(up.deliveries("elsewhere")?, 0);
    assert_eq!(up.deliveries("busy:300")?, 1);
    let logged = up.stop()?;
    assert!(!logged.contains("ERROR"), "{logged}");
    Ok(())
}

/// A message the component fails on is not acknowledged: it is delivered again (and then
/// handled), and the messages after it are all handled too — at QoS 1 and at QoS 2.
#[test]
fn a_failed_message_is_delivered_again_and_none_after_it_is_lost() -> anyhow::Result<()> {
    let Some(broker) = Mosquitto::start()? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let entries = format!(
        "{ONE_ENTRY}\n[[trigger.mqtt]]\nid = \"exactly-once\"\ncomponent = \"mqttprobe\"\ntopic = \"qos2/in\"\nqos = \"2\"\n"
    );
    let manifest = write_manifest(dir.path(), &app_body(&entries), "")?;
    let url = broker.url();
    let up = Up::start(&manifest, &[("SPIN_VARIABLE_BROKER", &url)])?;
    up.wait_for_log("subscribed to", 2)?;

    for (topic, qos) in [
        ("probe/f/in", QoS::AtLeastOnce),
        ("qos2/in", QoS::ExactlyOnce),
    ] {
        let level = qos as u8;
        let failing = format!("fail-once:q{level}");
        let mut messages = vec![(topic.to_owned(), failing.clone())];
        messages.extend(batch(topic, &format!("after-q{level}"), 50));
        publish(&url, &messages, qos)?;
        let payloads: Vec<String> = messages.iter().map(|(_, p)| p.clone()).collect();
        up.wait_for_deliveries(&payloads)?;
        up.wait_until("the failed message delivered again", |up| {
            Ok(up.deliveries(&failing)? >= 2)
        })?;
        assert!(
            up.logged()
                .contains("message not handled, to be delivered again")
                && up.logged().contains(topic),
            "{}",
            up.logged()
        );
    }
    up.stop()?;
    Ok(())
}

/// The broker may be down: at start-up (HTTP is served all the same, and the trigger
/// connects once the broker is up) and later (the trigger reconnects, and its session — kept
/// by the broker across its restart — gets the messages published meanwhile). A broker that
/// stays down is reported once, not at every attempt.
#[test]
fn the_trigger_rides_out_a_broker_down_at_start_and_restarted() -> anyhow::Result<()> {
    let Some(mut broker) = Mosquitto::start()? else {
        return Ok(());
    };
    broker.stop();
    let dir = tempfile::tempdir()?;
    let manifest = write_manifest(dir.path(), &app_body(ONE_ENTRY), "")?;
    let url = broker.url();
    let up = Up::start(&manifest, &[("SPIN_VARIABLE_BROKER", &url)])?;
    up.wait_for_log("retrying", 1)?;
    // HTTP is served while the broker is down.
    assert_eq!(up.kv("nothing-yet")?, None);
    std::thread::sleep(Duration::from_secs(2));
    let reports = up.logged().matches("retrying").count();
    assert_eq!(reports, 1, "one report while down:\n{}", up.logged());

    broker.start_again()?;
    up.wait_for_log("subscribed to", 1)?;
    let first = batch("probe/r/in", "first", 100);
    publish(&url, &first, QoS::AtLeastOnce)?;
    up.wait_for_deliveries(&first.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>())?;

    // Restarted: messages published while the trigger has not reconnected yet are queued in
    // its session (persisted by the broker) and delivered once it is back.
    broker.stop();
    up.wait_for_log("connection lost", 1)?;
    broker.start_again()?;
    let second = batch("probe/r/in", "second", 200);
    publish(&url, &second, QoS::AtLeastOnce)?;
    up.wait_for_deliveries(&second.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>())?;
    up.stop()?;
    Ok(())
}

/// A broker refusing the credentials is reported clearly (once) and retried, without
/// stopping the host; with the right ones the trigger is subscribed and handles messages.
#[test]
fn credentials_are_checked_by_the_broker() -> anyhow::Result<()> {
    let options = Options {
        users: vec![("device".to_owned(), "s3cret".to_owned())],
        acl: None,
    };
    let Some(broker) = Mosquitto::start_with(&options)? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let body = app_body(ONE_ENTRY)
        .replace("username = \"\"", "username = \"device\"")
        .replace("password = \"\"", "password = \"{{ password }}\"")
        .replace(
            "root = { default = \"probe\" }",
            "root = { default = \"probe\" }\npassword = { required = true, secret = true }",
        );
    let manifest = write_manifest(dir.path(), &body, "")?;
    let url = broker.url();
    let wrong = Up::start(
        &manifest,
        &[
            ("SPIN_VARIABLE_BROKER", &url),
            ("SPIN_VARIABLE_PASSWORD", "guess"),
        ],
    )?;
    // mosquitto answers "not authorized" (MQTT 3.1.1 return code 5) to a wrong password.
    wrong.wait_for_log("the broker refused the connection", 1)?;
    assert_eq!(wrong.kv("nothing-yet")?, None);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        wrong
            .logged()
            .matches("the broker refused the connection")
            .count(),
        1,
        "{}",
        wrong.logged()
    );
    wrong.stop()?;

    let right = Up::start(
        &manifest,
        &[
            ("SPIN_VARIABLE_BROKER", &url),
            ("SPIN_VARIABLE_PASSWORD", "s3cret"),
        ],
    )?;
    right.wait_for_log("subscribed to", 1)?;
    let messages = batch("probe/c/in", "authenticated", 3);
    let (host, port) = host_port(&url)?;
    // The test's own publisher needs the credentials too.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut options = MqttOptions::new("test-authenticated-pub", host, port);
        options.set_credentials("device", "s3cret");
        let (client, mut event_loop) = AsyncClient::new(options, 16);
        for (topic, payload) in &messages {
            client
                .publish(
                    topic.clone(),
                    QoS::AtLeastOnce,
                    false,
                    payload.clone().into_bytes(),
                )
                .await?;
        }
        let mut acked = 0;
        while acked < messages.len() {
            if let Event::Incoming(Incoming::PubAck(_)) =
                tokio::time::timeout(PATIENCE, event_loop.poll()).await??
            {
                acked += 1;
            }
        }
        anyhow::Ok(())
    })?;
    right.wait_for_deliveries(&messages.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>())?;
    right.stop()?;
    Ok(())
}

/// `spin_sdk::mqtt` publishes through the host to the broker (a subscriber receives it) when
/// the address is in the component's `allowed_outbound_hosts`, and is refused otherwise.
#[test]
fn outbound_publish_reaches_subscribers_and_needs_allowed_hosts() -> anyhow::Result<()> {
    let Some(broker) = Mosquitto::start()? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let entries = r#"
[[trigger.mqtt]]
component = "mqttprobe"
topic = "out/allowed"
qos = "1"

[[trigger.mqtt]]
component = "mqttprobe-denied"
topic = "out/denied"
qos = "1"
"#;
    let url = broker.url();
    let manifest = write_manifest(dir.path(), &app_body(entries), &url)?;
    let outbound = format!("{url}?client_id=mqttprobe-outbound");
    let up = Up::start(
        &manifest,
        &[
            ("SPIN_VARIABLE_BROKER", &url),
            ("SPIN_VARIABLE_OUTBOUND", &outbound),
        ],
    )?;
    up.wait_for_log("subscribed to", 2)?;
    let subscriber = Subscriber::start(&url, "replies/#")?;
    publish(
        &url,
        &[
            ("out/allowed".to_owned(), "publish:replies/one".to_owned()),
            ("out/allowed".to_owned(), "publish:replies/two".to_owned()),
            ("out/denied".to_owned(), "publish:replies/never".to_owned()),
        ],
        QoS::AtLeastOnce,
    )?;
    assert_eq!(subscriber.wait_for("replies/one")?, b"ok");
    assert_eq!(subscriber.wait_for("replies/two")?, b"ok");
    up.wait_until("the denied publish recorded", |up| {
        Ok(up.kv("error/publish:replies/never")?.is_some())
    })?;
    let error = up.kv("error/publish:replies/never")?.unwrap_or_default();
    let error = String::from_utf8_lossy(&error);
    assert!(
        error.starts_with("connection-failed:") && error.contains("not allowed"),
        "{error}"
    );
    assert_eq!(up.kv("error/publish:replies/one")?, None);
    up.stop()?;
    Ok(())
}

/// An application of MQTT triggers alone runs from `--from <manifest>` (as `spin up --from`),
/// serving no HTTP; its component's work is seen through what it publishes.
#[test]
fn an_mqtt_only_application_runs_from_its_manifest() -> anyhow::Result<()> {
    let Some(broker) = Mosquitto::start()? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let url = broker.url();
    let body = app_body(ONE_ENTRY).replace(
        "[[trigger.http]]\nroute = \"/probe/...\"\ncomponent = \"probe\"\n",
        "",
    );
    let manifest = write_manifest(dir.path(), &body, &url)?;
    let renamed = dir.path().join("spin-mqtt.toml");
    std::fs::rename(&manifest, &renamed)?;
    let outbound = format!("{url}?client_id=mqtt-only");
    let up = Up::start(
        &renamed,
        &[
            ("SPIN_VARIABLE_BROKER", &url),
            ("SPIN_VARIABLE_OUTBOUND", &outbound),
        ],
    )?;
    assert!(up.base.is_none(), "{}", up.printed());
    assert!(!up.printed().contains("Serving"), "{}", up.printed());
    up.wait_for_log("subscribed to", 1)?;
    let subscriber = Subscriber::start(&url, "done/#")?;
    publish(
        &url,
        &[("probe/only/in".to_owned(), "publish:done/it".to_owned())],
        QoS::AtLeastOnce,
    )?;
    assert_eq!(subscriber.wait_for("done/it")?, b"ok");
    up.stop()?;
    Ok(())
}
