//! Implements Spin's outbound MQTT, `fermyon:spin/mqtt@2.0.0` (`spin_sdk::mqtt`).
//!
//! - `connection.open(address, username, password, keep-alive)`: the address must be allowed
//!   by the component's `allowed_outbound_hosts` (scheme `mqtt`, default port 1883), else
//!   `connection-failed`. As with Spin (whose client reads the address with rumqttc's
//!   `MqttOptions::parse_url`), it is `mqtt://host[:port]?client_id=<id>` (or `tcp://`), and
//!   `client_id` is required: anything else is `invalid-address` (the reason is logged). TLS
//!   (`mqtts://`) is not supported.
//! - Connections are shared: one per broker (`host:port`), username and password for the
//!   whole host, kept open (with keep-alive pings) and reconnected in the background with the
//!   usual back-off, so that an instance opening one does not connect again. The connection
//!   uses the client id (and keep-alive) of the first `open` that made it: instances that
//!   each pick a client id of their own (as they must on Spin, where every `open` connects)
//!   still share one connection. At most [`MAX_CONNECTIONS`] are kept; past that the least
//!   recently used idle one is closed, and when none is idle `open` answers
//!   `too-many-connections`.
//! - `publish` waits until every key-value write the instance could have seen is durable (as
//!   everything leaving an instance does, [`crate::kv_store`]), then for the broker: a QoS 0
//!   message once written to the connection, QoS 1 until `PUBACK`, QoS 2 until `PUBCOMP`. All
//!   of it (including waiting for a connection) is bounded by [`PUBLISH_TIMEOUT`]; past it
//!   the answer is `other(...)`, and `connection-failed(...)` when no connection could be
//!   made. A message whose connection drops before it is acknowledged fails the same way
//!   (the guest may publish it again).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rumqttc::{AsyncClient, ClientError, Event, Incoming, MqttOptions, Outgoing, QoS};
use tokio::sync::{oneshot, watch};
use wasmtime::component::Resource;

use crate::bindings::mqtt::{self, Error, Qos};
use crate::mqtt_common::{self, Backoff};
use crate::state::HostState;

/// How many shared connections the host keeps open at most.
pub const MAX_CONNECTIONS: usize = 64;

/// How long `publish` may take, from waiting for a connection to the broker's acknowledgement.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// How many publishes may wait for their connection's event loop at once.
const REQUEST_CAPACITY: usize = 1024;

/// The query keys rumqttc's `parse_url` accepts besides `client_id`: accepted (as Spin does)
/// and left at this host's settings.
const TUNING_KEYS: &[&str] = &[
    "keep_alive_secs",
    "clean_session",
    "max_incoming_packet_size_bytes",
    "max_outgoing_packet_size_bytes",
    "request_channel_capacity_num",
    "max_request_batch_num",
    "pending_throttle_usecs",
    "inflight_num",
    "conn_timeout_secs",
];

/// An open `connection` resource: a handle on a shared connection.
pub struct ConnectionHandle {
    connection: Arc<SharedConnection>,
}

/// The host's shared outbound MQTT connections.
#[derive(Default)]
pub(crate) struct Connections {
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<Key, (Arc<SharedConnection>, u64)>,
    /// Advances at every use: an entry's number says how recently it was used.
    clock: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// `mqtt://host:port`
    broker: String,
    username: String,
    password: String,
}

impl Connections {
    /// The shared connection for this key, opened (its background task started) if there is
    /// none; `None` when [`MAX_CONNECTIONS`] are open and all in use.
    fn get_or_open(
        &self,
        key: Key,
        options: impl FnOnce() -> MqttOptions,
    ) -> Option<Arc<SharedConnection>> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.clock += 1;
        let now = cache.clock;
        if let Some((connection, used)) = cache.entries.get_mut(&key) {
            *used = now;
            return Some(connection.clone());
        }
        if cache.entries.len() >= MAX_CONNECTIONS {
            // Only the cache holds an idle connection.
            let idle = cache
                .entries
                .iter()
                .filter(|(_, (connection, _))| Arc::strong_count(connection) == 1)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone());
            let idle = idle?;
            if let Some((evicted, _)) = cache.entries.remove(&idle) {
                tracing::debug!("closing the idle MQTT connection to {}", evicted.address);
            }
        }
        let connection = SharedConnection::open(key.broker.clone(), options());
        cache.entries.insert(key, (connection.clone(), now));
        Some(connection)
    }
}

/// One connection's state, as publishers see it.
#[derive(Clone)]
enum Link {
    /// Not connected (yet, or again): the last error, if an attempt failed.
    Connecting(Option<String>),
    /// Connected.
    Up(Arc<Session>),
}

/// A connection to a broker, kept up by a background task until dropped.
struct SharedConnection {
    /// `mqtt://host:port`, for messages.
    address: String,
    link: watch::Receiver<Link>,
    task: tokio::task::AbortHandle,
}

impl Drop for SharedConnection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why a message could not be handed to a session.
enum Refused {
    /// The session's connection is gone: wait for the next one.
    Dead(Vec<u8>),
    /// The message itself cannot be sent.
    Error(Error),
}

impl SharedConnection {
    fn open(address: String, options: MqttOptions) -> Arc<Self> {
        let (link_tx, link) = watch::channel(Link::Connecting(None));
        let task = tokio::spawn(maintain(address.clone(), options, link_tx)).abort_handle();
        Arc::new(Self {
            address,
            link,
            task,
        })
    }

    async fn publish(&self, topic: String, payload: Vec<u8>, qos: QoS) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + PUBLISH_TIMEOUT;
        let mut link = self.link.clone();
        let mut payload = payload;
        let reply = loop {
            let current = link.borrow_and_update().clone();
            let last_error = match current {
                Link::Up(session) => match session.submit(&topic, payload, qos) {
                    Ok(reply) => break reply,
                    Err(Refused::Error(e)) => return Err(e),
                    Err(Refused::Dead(back)) => {
                        payload = back;
                        None
                    }
                },
                Link::Connecting(last_error) => last_error,
            };
            if !matches!(
                tokio::time::timeout_at(deadline, link.changed()).await,
                Ok(Ok(()))
            ) {
                let why = last_error.unwrap_or_else(|| {
                    format!("not connected within {} s", PUBLISH_TIMEOUT.as_secs())
                });
                return Err(Error::ConnectionFailed(format!(
                    "cannot connect to {}: {why}",
                    self.address
                )));
            }
        };
        match tokio::time::timeout_at(deadline, reply).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(why))) => Err(Error::Other(why)),
            Ok(Err(_)) => Err(Error::Other(format!(
                "the connection to {} closed before the broker acknowledged the message",
                self.address
            ))),
            Err(_) => Err(Error::Other(format!(
                "the broker at {} did not acknowledge the message within {} s",
                self.address,
                PUBLISH_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// Keeps the connection up: connects, follows the broker's acknowledgements, reconnects
/// with back-off when the connection drops. Runs until aborted.
async fn maintain(address: String, options: MqttOptions, link: watch::Sender<Link>) {
    let mut backoff = Backoff::default();
    let mut reported: Option<String> = None;
    loop {
        // A fresh client and event loop per connection: nothing of a dead connection (its
        // queued requests, its packet ids) can leak into the next one.
        let (client, mut event_loop) = AsyncClient::new(options.clone(), REQUEST_CAPACITY);
        let error = match event_loop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                if reported.take().is_some() {
                    tracing::info!("outbound MQTT: connected to {address} again");
                }
                backoff.reset();
                let session = Arc::new(Session::new(client));
                link.send_replace(Link::Up(session.clone()));
                let error = loop {
                    match event_loop.poll().await {
                        Ok(event) => session.on_event(event),
                        Err(e) => break e,
                    }
                };
                let why = mqtt_common::describe(&error);
                session.close(&format!("the connection to {address} was lost: {why}"));
                why
            }
            Ok(other) => format!("unexpected first packet from the broker: {other:?}"),
            Err(error) => {
                if mqtt_common::is_refusal(&error) {
                    backoff.jump_to_max();
                }
                mqtt_common::describe(&error)
            }
        };
        if reported.as_deref() != Some(error.as_str()) {
            tracing::warn!("outbound MQTT: {address}: {error}; retrying");
            reported = Some(error.clone());
        }
        link.send_replace(Link::Connecting(Some(error)));
        tokio::time::sleep(backoff.next_wait()).await;
    }
}

/// A publisher waiting for its message's fate.
struct Waiter {
    qos: QoS,
    reply: oneshot::Sender<Result<(), String>>,
}

/// One connection's publishes in flight, matched to the broker's acknowledgements.
///
/// The event loop takes requests in the order they were queued and reports each publish it
/// writes (`Outgoing::Publish(packet id)`), so the oldest queued waiter is the one written;
/// from then on its packet id names it until `PUBACK` (QoS 1) or `PUBCOMP` (QoS 2).
struct Session {
    client: AsyncClient,
    state: Mutex<SessionState>,
}

#[derive(Default)]
struct SessionState {
    closed: Option<String>,
    queued: VecDeque<Waiter>,
    awaiting: HashMap<u16, Waiter>,
}

impl Session {
    fn new(client: AsyncClient) -> Self {
        Self {
            client,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a publish; the receiver answers once the broker has it.
    fn submit(
        &self,
        topic: &str,
        payload: Vec<u8>,
        qos: QoS,
    ) -> Result<oneshot::Receiver<Result<(), String>>, Refused> {
        let mut state = self.lock();
        if state.closed.is_some() {
            return Err(Refused::Dead(payload));
        }
        // Queued and sent under one lock: the queue's order is the event loop's.
        let (reply, answer) = oneshot::channel();
        match self.client.try_publish(topic, qos, false, payload) {
            Ok(()) => {
                state.queued.push_back(Waiter { qos, reply });
                Ok(answer)
            }
            Err(ClientError::TryRequest(_) | ClientError::Request(_))
                if !rumqttc::valid_topic(topic) =>
            {
                Err(Refused::Error(Error::Other(format!(
                    "{topic:?} is not a topic a message can be published to"
                ))))
            }
            Err(e) => Err(Refused::Error(Error::Other(format!(
                "cannot queue the message: {e}"
            )))),
        }
    }

    fn on_event(&self, event: Event) {
        let mut state = self.lock();
        match event {
            Event::Outgoing(Outgoing::Publish(packet_id)) => {
                if let Some(waiter) = state.queued.pop_front() {
                    if waiter.qos == QoS::AtMostOnce {
                        let _ = waiter.reply.send(Ok(()));
                    } else {
                        state.awaiting.insert(packet_id, waiter);
                    }
                }
            }
            Event::Incoming(Incoming::PubAck(ack)) => {
                if let Some(waiter) = state.awaiting.remove(&ack.pkid) {
                    let _ = waiter.reply.send(Ok(()));
                }
            }
            Event::Incoming(Incoming::PubComp(comp)) => {
                if let Some(waiter) = state.awaiting.remove(&comp.pkid) {
                    let _ = waiter.reply.send(Ok(()));
                }
            }
            _ => {}
        }
    }

    /// The connection is gone: every message not yet acknowledged fails with `why`.
    fn close(&self, why: &str) {
        let mut state = self.lock();
        state.closed = Some(why.to_owned());
        let state = &mut *state;
        let mut waiters: Vec<Waiter> = state.queued.drain(..).collect();
        waiters.extend(state.awaiting.drain().map(|(_, w)| w));
        for waiter in waiters {
            let _ = waiter.reply.send(Err(why.to_owned()));
        }
    }
}

/// Reads an outbound address as Spin's client does (rumqttc's `parse_url`): `mqtt://` or
/// `tcp://`, host, port (default 1883), a required `client_id` query parameter. The error says
/// why it is not usable.
fn parse_address(address: &str) -> Result<(String, u16, String), String> {
    let url = url::Url::parse(address).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "mqtt" | "tcp" => {}
        "mqtts" | "ssl" => {
            return Err("TLS (mqtts://) is not supported by eventplane".to_owned());
        }
        other => {
            return Err(format!(
                "the scheme {other}:// is not supported (mqtt:// or tcp://)"
            ));
        }
    }
    let host = match url.host_str() {
        Some(host) if !host.is_empty() => host.to_owned(),
        _ => return Err("no host".to_owned()),
    };
    let mut client_id = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "client_id" => client_id = Some(value.into_owned()),
            "clean_session" if value.parse::<bool>().is_err() => {
                return Err(format!("clean_session={value} is not true or false"));
            }
            "clean_session" => {}
            known if TUNING_KEYS.contains(&known) => {
                if value.parse::<u64>().is_err() {
                    return Err(format!("{known}={value} is not a number"));
                }
            }
            unknown => return Err(format!("unknown option {unknown:?}")),
        }
    }
    let client_id = client_id.ok_or_else(|| {
        "the address needs a client id (mqtt://host:port?client_id=<id>), as Spin requires"
            .to_owned()
    })?;
    let port = url
        .port()
        .unwrap_or(eventplane_manifest::mqtt::DEFAULT_PORT);
    Ok((host, port, client_id))
}

fn qos_of(qos: Qos) -> QoS {
    match qos {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
        Qos::ExactlyOnce => QoS::ExactlyOnce,
    }
}

impl mqtt::Host for HostState {}

impl mqtt::HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, Error>> {
        let component = &self.component.id;
        if !self.component.allowed_hosts.allows_url(&address, "mqtt") {
            tracing::warn!(%component, "denied MQTT connection to {address}: not in allowed_outbound_hosts");
            return Ok(Err(Error::ConnectionFailed(format!(
                "address {address} is not allowed by the component's allowed_outbound_hosts"
            ))));
        }
        let (host, port, client_id) = match parse_address(&address) {
            Ok(parts) => parts,
            Err(why) => {
                tracing::warn!(%component, "invalid MQTT address {address:?}: {why}");
                return Ok(Err(Error::InvalidAddress));
            }
        };
        let key = Key {
            broker: format!("mqtt://{host}:{port}"),
            username: username.clone(),
            password: password.clone(),
        };
        let keep_alive = Duration::from_secs(keep_alive_interval_in_secs);
        let Some(connection) = self.mqtt.get_or_open(key, || {
            mqtt_common::client_options(&client_id, &host, port, &username, &password, keep_alive)
        }) else {
            return Ok(Err(Error::TooManyConnections));
        };
        Ok(Ok(self.table.push(ConnectionHandle { connection })?))
    }

    async fn publish(
        &mut self,
        connection: Resource<ConnectionHandle>,
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
    ) -> wasmtime::Result<Result<(), Error>> {
        let connection = self.table.get(&connection)?.connection.clone();
        // Nothing the instance has seen leaves it before it is on disk (kv_store docs).
        if let Err(e) = self.kv.durable().await {
            tracing::error!(component = %self.component.id, "MQTT publish held back: {e}");
            return Ok(Err(Error::Other(format!(
                "the key-value store cannot make writes durable: {e}"
            ))));
        }
        Ok(connection.publish(topic, payload, qos_of(qos)).await)
    }

    async fn drop(&mut self, connection: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16, password: &str) -> Key {
        Key {
            broker: format!("mqtt://127.0.0.1:{port}"),
            username: "u".to_owned(),
            password: password.to_owned(),
        }
    }

    fn options(client_id: &str) -> MqttOptions {
        // Port 1: nothing answers there; the connections just keep retrying.
        MqttOptions::new(client_id, "127.0.0.1", 1)
    }

    /// One connection per broker and credentials, whatever client id each `open` asks for;
    /// idle ones make room for new ones, connections in use do not.
    #[tokio::test]
    async fn connections_are_shared_and_bounded() {
        let connections = Connections::default();
        let first = connections.get_or_open(key(1, "p"), || options("a"));
        let again = connections.get_or_open(key(1, "p"), || options("b"));
        assert!(matches!((&first, &again), (Some(a), Some(b)) if Arc::ptr_eq(a, b)));
        let other_password = connections.get_or_open(key(1, "q"), || options("a"));
        assert!(matches!((&first, &other_password), (Some(a), Some(b)) if !Arc::ptr_eq(a, b)));
        drop((again, other_password));

        let mut held = vec![first];
        for port in 2..=u16::try_from(MAX_CONNECTIONS).unwrap_or(u16::MAX) {
            held.push(connections.get_or_open(key(port, "p"), || options("c")));
        }
        // Full: the idle one (port 1, password q) made room; now all are in use.
        assert!(held.iter().all(Option::is_some));
        assert!(
            connections
                .get_or_open(key(999, "p"), || options("d"))
                .is_none()
        );
        held.pop();
        assert!(
            connections
                .get_or_open(key(999, "p"), || options("d"))
                .is_some()
        );
    }

    #[test]
    fn addresses_need_a_client_id_as_on_spin() {
        assert_eq!(
            parse_address("mqtt://localhost?client_id=a"),
            Ok(("localhost".into(), 1883, "a".into()))
        );
        assert_eq!(
            parse_address("tcp://10.1.2.3:1999?client_id=b&keep_alive_secs=5&clean_session=false"),
            Ok(("10.1.2.3".into(), 1999, "b".into()))
        );
        let refused = |a: &str, why: &str| {
            let err = parse_address(a).err().unwrap_or_default();
            assert!(err.contains(why), "{a}: {err}");
        };
        refused("mqtt://localhost:1883", "client id");
        refused("mqtts://localhost?client_id=a", "TLS");
        refused("http://localhost?client_id=a", "scheme");
        refused("mqtt://localhost?client_id=a&colour=red", "unknown option");
        refused(
            "mqtt://localhost?client_id=a&inflight_num=x",
            "not a number",
        );
        refused("localhost", "not a URL");
    }
}
