//! A real MQTT client for the tests and the MQTT benchmark: publishes at QoS 0/1 and counts the
//! broker's acknowledgements, subscribes and keeps what arrives, and reconnects by itself when
//! the broker goes away and comes back (its session is kept: `clean_session = false`, so
//! publishes not yet acknowledged are sent again).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::task::JoinHandle;

/// The largest packet the client sends or takes (the tests publish oversized events on purpose).
pub const MAX_PACKET_BYTES: usize = 4 << 20;

/// A message the client received.
#[derive(Debug, Clone)]
pub struct Message {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl Message {
    /// The payload as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or(serde_json::Value::Null)
    }
}

/// A connected client; its event loop runs on a task of its own until the client is dropped.
pub struct MqttClient {
    client: AsyncClient,
    acked: Arc<AtomicU64>,
    published: AtomicU64,
    connected: Arc<AtomicU64>,
    received: Arc<Mutex<Vec<Message>>>,
    task: JoinHandle<()>,
}

/// The host and port of `mqtt://host:port`.
fn host_port(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .with_context(|| format!("not an mqtt:// URL: {url}"))?;
    let rest = rest.split(['/', '?']).next().unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "1883"));
    Ok((host.to_owned(), port.parse()?))
}

impl MqttClient {
    /// Connects to the broker at `url` (`mqtt://host:port`) as `client_id`, anonymously.
    pub async fn connect(url: &str, client_id: &str) -> anyhow::Result<Self> {
        Self::connect_as(url, client_id, None).await
    }

    /// Connects to the broker at `url` as `client_id`, with `credentials` if given, and waits
    /// for the broker's `CONNACK` (up to 10 s).
    pub async fn connect_as(
        url: &str,
        client_id: &str,
        credentials: Option<(&str, &str)>,
    ) -> anyhow::Result<Self> {
        let (host, port) = host_port(url)?;
        let mut options = MqttOptions::new(client_id, host, port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(false)
            .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES)
            .set_inflight(1000);
        if let Some((user, password)) = credentials {
            options.set_credentials(user, password);
        }
        let (client, mut events) = AsyncClient::new(options, 10_000);
        let acked = Arc::new(AtomicU64::new(0));
        let connected = Arc::new(AtomicU64::new(0));
        let received: Arc<Mutex<Vec<Message>>> = Arc::default();
        let task = {
            let (acked, connected, received) = (acked.clone(), connected.clone(), received.clone());
            tokio::spawn(async move {
                loop {
                    match events.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            connected.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) => {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Event::Incoming(Packet::Publish(publish))) => {
                            received.lock().expect("lock").push(Message {
                                topic: publish.topic.clone(),
                                payload: publish.payload.to_vec(),
                                at: Instant::now(),
                            });
                        }
                        Ok(_) => {}
                        // The broker went away: the next poll reconnects.
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            })
        };
        let this = Self {
            client,
            acked,
            published: AtomicU64::new(0),
            connected,
            received,
            task,
        };
        this.wait_connected(1, Duration::from_secs(10)).await?;
        Ok(this)
    }

    /// Waits until the client has connected `times` times in all (reconnections count).
    pub async fn wait_connected(&self, times: u64, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while self.connected.load(Ordering::SeqCst) < times {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the MQTT client did not connect (#{times}) within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Publishes `payload` to `topic` at `qos` (queued: see [`wait_acked`](Self::wait_acked)).
    pub async fn publish(&self, topic: &str, payload: Vec<u8>, qos: QoS) -> anyhow::Result<()> {
        self.client.publish(topic, qos, false, payload).await?;
        if qos != QoS::AtMostOnce {
            self.published.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Publishes at QoS 1 and waits until the broker acknowledged every QoS 1 publish so far.
    pub async fn publish_acked(&self, topic: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        self.publish(topic, payload, QoS::AtLeastOnce).await?;
        self.wait_acked(Duration::from_secs(15)).await
    }

    /// Waits until the broker acknowledged every QoS ≥ 1 publish made so far.
    pub async fn wait_acked(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let (acked, published) = (
                self.acked.load(Ordering::SeqCst),
                self.published.load(Ordering::SeqCst),
            );
            if acked >= published {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the broker acknowledged {acked} of {published} publishes within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Subscribes to `filter` at QoS 1 and waits a moment for the subscription to be in place.
    pub async fn subscribe(&self, filter: &str) -> anyhow::Result<()> {
        self.client.subscribe(filter, QoS::AtLeastOnce).await?;
        // SUBACK is not tracked: a short pause is enough on loopback.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(())
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Message> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until at least `count` messages were received (up to `within`); all of them.
    pub async fn wait_received(
        &self,
        count: usize,
        within: Duration,
    ) -> anyhow::Result<Vec<Message>> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count {
                return Ok(received);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "received {} of {count} MQTT messages within {within:?}: {:?}",
                received.len(),
                received
                    .iter()
                    .map(|m| (&m.topic, String::from_utf8_lossy(&m.payload)))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for MqttClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}
