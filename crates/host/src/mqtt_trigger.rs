//! Spin's MQTT trigger (the `trigger-mqtt` plugin): each `[[trigger.mqtt]]` entry subscribes to
//! its topic on the broker of `[application.trigger.mqtt]` and calls its component's
//! `handle-message` export (`spin:mqtt-trigger/spin-mqtt`) once per message, in a fresh
//! instance, as the plugin does. Where the plugin acknowledges every message on receipt,
//! `eventplane up` acknowledges a message only once the component has handled it, so that a
//! failed message is delivered again (at least once, for QoS 1 and 2):
//!
//! - **Connection.** One MQTT 3.1.1 client per entry, with a client id unique to the process
//!   and entry (`eventplane-<component>-<entry>-<random>`: two hosts on one broker do not
//!   take each other's place), `clean_session = false` (the broker keeps the subscription
//!   and the unacknowledged messages across reconnections), manual acknowledgements, and the
//!   manifest's keep-alive. It subscribes with the entry's QoS after every (re)connection.
//! - **Concurrency.** Up to [`MQTT_INSTANCES_PER_TRIGGER`] messages of an entry are handled at
//!   once. Acknowledgements (`PUBACK` for QoS 1, `PUBREC` for QoS 2) go out strictly in the
//!   order the messages arrived, as MQTT 3.1.1 requires: a message is acknowledged once it and
//!   every earlier one have been handled — handled meaning the component returned `Ok` and
//!   its key-value writes are durable.
//! - **Failure.** A message the component fails on (returns an error, traps, or takes longer
//!   than [`MESSAGE_TIMEOUT`]) is logged with its topic and not acknowledged. The entry then
//!   stops taking messages, lets the ones in flight finish, acknowledges what can be, and
//!   disconnects; after a back-off (100 ms doubling to 5 s while messages keep failing) it
//!   reconnects with the same client id, and the broker sends every unacknowledged message
//!   again, the failed one first. Later messages handled meanwhile may so be handled twice
//!   (at least once). A QoS 0 message that fails is lost (logged).
//! - **Connection loss.** The entry reconnects with back-off (100 ms doubling to 5 s) forever,
//!   logging a problem once when it starts or changes, not at every attempt; a broker that
//!   refuses the credentials is retried every 5 s. None of this stops the HTTP server, and a
//!   broker down at start-up is just retried.
//! - **Shutdown.** Messages in flight get [`crate::server::SHUTDOWN_GRACE`] to finish; then
//!   the entry disconnects and ends its broker session (a clean-session connection with the
//!   same client id), since no later process will use that client id.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use eventplane_manifest::Manifest;
use eventplane_manifest::mqtt::{BrokerAddress, MqttQos, check_topic_filter};
use eventplane_manifest::variables::ResolvedVariables;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, Outgoing, Publish, QoS, SubAck,
    SubscribeReasonCode,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use wasmtime::component::Linker;
use wasmtime::{Engine, Store, UpdateDeadline};

use crate::app::{AppRuntime, ComponentRuntime};
use crate::bindings::mqtt_trigger::SpinMqttPre;
use crate::bindings::mqtt_trigger::spin::mqtt_trigger::spin_mqtt_types::{
    Error as GuestError, Metadata,
};
use crate::engine::{EPOCH_TICK, MQTT_INSTANCES_PER_TRIGGER};
use crate::mqtt_common::{self, Backoff};
use crate::state::HostState;

/// How long a component may take over one message before it counts as failed.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// How many messages an entry holds (in flight or waiting) before it drops QoS 0 messages:
/// QoS 1 and 2 ones are bounded by the broker, which sends no more than its in-flight window
/// before they are acknowledged.
const MAX_WAITING: usize = 4096;

/// The request queue of each client (acknowledgements and the subscription).
const REQUEST_CAPACITY: usize = 1024;

/// How long ending a session (or a disconnection) may take at shutdown.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);

/// The application's MQTT triggers, resolved and linked.
pub(crate) struct MqttTriggers {
    broker: BrokerAddress,
    username: String,
    password: String,
    keep_alive: Duration,
    /// The trigger engine ([`crate::engine::new_trigger_engine`]).
    engine: Engine,
    entries: Vec<Arc<Entry>>,
}

/// One `[[trigger.mqtt]]` entry, ready to run.
pub(crate) struct Entry {
    /// Its position among the entries, from 1.
    index: usize,
    id: Option<String>,
    component: Arc<ComponentRuntime>,
    pre: SpinMqttPre<HostState>,
    /// The topic filter, templates resolved.
    topic: String,
    qos: MqttQos,
}

impl Entry {
    /// How logs name the entry: `[[trigger.mqtt]] #2 (id `x`)`.
    fn name(&self) -> String {
        match &self.id {
            Some(id) => format!("[[trigger.mqtt]] #{} (id `{id}`)", self.index),
            None => format!("[[trigger.mqtt]] #{}", self.index),
        }
    }
}

/// What `eventplane up` prints about one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttSubscription {
    /// The component it calls.
    pub component: String,
    /// The topic filter it subscribes to.
    pub topic: String,
    /// Its QoS (0, 1 or 2).
    pub qos: u8,
}

impl MqttTriggers {
    /// Resolves and checks the MQTT triggers of `manifest` and links their components on a
    /// trigger engine (through `linker_for`, which gives the host's imports for an engine);
    /// `None` when there are none. An address or topic that is not usable once its templates
    /// are resolved is an error, naming the table.
    pub(crate) fn load(
        manifest: &Manifest,
        variables: &ResolvedVariables,
        components: &HashMap<String, Arc<ComponentRuntime>>,
        linker_for: impl Fn(&Engine) -> anyhow::Result<Linker<HostState>>,
        cache_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Option<Self>> {
        let Some(settings) = &manifest.mqtt else {
            return Ok(None);
        };
        if manifest.mqtt_triggers.is_empty() {
            return Ok(None);
        }
        let render = |field: &str, template: &str| {
            variables
                .render(template)
                .with_context(|| format!("[application.trigger.mqtt] `{field}`"))
        };
        let address = render("address", &settings.address)?;
        let broker = BrokerAddress::parse(&address)
            .map_err(|e| anyhow::anyhow!("[application.trigger.mqtt] `address`: {e}"))?;
        let username = render("username", &settings.username)?;
        let password = render("password", &settings.password)?;

        let entry_count = u32::try_from(manifest.mqtt_triggers.len()).unwrap_or(u32::MAX);
        let engine = crate::engine::new_trigger_engine(
            entry_count.saturating_mul(MQTT_INSTANCES_PER_TRIGGER),
        )?;
        let linker = linker_for(&engine)?;
        let mut pres: HashMap<&str, SpinMqttPre<HostState>> = HashMap::new();
        let mut entries = Vec::new();
        for (position, trigger) in manifest.mqtt_triggers.iter().enumerate() {
            let index = position + 1;
            let name = match &trigger.id {
                Some(id) => format!("[[trigger.mqtt]] #{index} (id `{id}`)"),
                None => format!("[[trigger.mqtt]] #{index}"),
            };
            let topic = variables
                .render(&trigger.topic)
                .with_context(|| format!("{name} `topic`"))?;
            check_topic_filter(&topic).map_err(|e| anyhow::anyhow!("{name} `topic`: {e}"))?;
            let Some(component) = components.get(&trigger.component) else {
                anyhow::bail!(
                    "{name} uses component `{}`, which is not defined",
                    trigger.component
                );
            };
            let pre = match pres.get(trigger.component.as_str()) {
                Some(pre) => pre.clone(),
                None => {
                    let pre = link(&engine, &linker, manifest, &trigger.component, cache_dir)?;
                    pres.insert(&trigger.component, pre.clone());
                    pre
                }
            };
            entries.push(Arc::new(Entry {
                index,
                id: trigger.id.clone(),
                component: component.clone(),
                pre,
                topic,
                qos: trigger.qos,
            }));
        }
        Ok(Some(Self {
            broker,
            username,
            password,
            keep_alive: Duration::from_secs(u64::from(settings.keep_alive_interval)),
            engine,
            entries,
        }))
    }

    /// The broker, as `mqtt://host:port`.
    pub(crate) fn broker(&self) -> String {
        self.broker.to_string()
    }

    /// What each entry subscribes to, in manifest order.
    pub(crate) fn subscriptions(&self) -> Vec<MqttSubscription> {
        self.entries
            .iter()
            .map(|entry| MqttSubscription {
                component: entry.component.id.clone(),
                topic: entry.topic.clone(),
                qos: entry.qos.level(),
            })
            .collect()
    }
}

/// Compiles `component_id` for the trigger engine and links it with the host's imports.
fn link(
    engine: &Engine,
    linker: &Linker<HostState>,
    manifest: &Manifest,
    component_id: &str,
    cache_dir: Option<&std::path::Path>,
) -> anyhow::Result<SpinMqttPre<HostState>> {
    let spec = manifest
        .component(component_id)
        .ok_or_else(|| anyhow::anyhow!("component `{component_id}` is not defined"))?;
    let component = crate::engine::load_component(engine, &spec.source, cache_dir)?;
    let mut linker = linker.clone();
    let stubbed = crate::traps::stub_unimplemented_imports(engine, &mut linker, &component)?;
    if !stubbed.is_empty() {
        tracing::info!(component = %component_id, "imports not provided by eventplane (calls trap): {}", stubbed.join(", "));
    }
    linker
        .instantiate_pre(&component)
        .and_then(SpinMqttPre::new)
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!(
                "component {component_id:?} cannot be called by the MQTT trigger: it must export `handle-message` of spin:mqtt-trigger/spin-mqtt@3.0.0"
            )
        })
}

/// Runs every MQTT trigger of `app` until `shutdown` turns `true`, then lets the messages in
/// flight finish (within the shutdown grace) and returns. Returns at once when the
/// application has no MQTT triggers.
pub(crate) async fn run(app: Arc<AppRuntime>, shutdown: watch::Receiver<bool>) {
    let Some(triggers) = app.mqtt.clone() else {
        return;
    };
    // Advances the epoch, so that a guest that never calls the host still yields now and then
    // (and its message can time out). A thread of its own: a busy guest holds a runtime
    // worker, and with it whatever tasks wait in that worker's queue.
    let ticking = Arc::new(AtomicBool::new(true));
    let ticker = {
        let engine = triggers.engine.clone();
        let ticking = ticking.clone();
        std::thread::Builder::new()
            .name("mqtt-epoch".to_owned())
            .spawn(move || {
                while ticking.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
    };
    if let Err(e) = &ticker {
        tracing::warn!("no epoch ticker ({e}): a busy component cannot be timed out");
    }
    let mut listeners = JoinSet::new();
    for entry in &triggers.entries {
        let listener = Listener::new(app.clone(), triggers.clone(), entry.clone());
        listeners.spawn(listener.run(shutdown.clone()));
    }
    while listeners.join_next().await.is_some() {}
    ticking.store(false, Ordering::Relaxed);
}

/// How one connection of an entry ended.
enum Outcome {
    /// Asked to stop.
    Shutdown,
    /// No connection or no subscription: the error, and whether the broker refused us.
    Unavailable { error: String, refused: bool },
    /// Connected, then the connection dropped after `lasted`.
    Lost { error: String, lasted: Duration },
    /// A message failed: reconnect, so that the broker delivers it again.
    Failed,
}

/// What the event loop's task reports.
enum Polled {
    Publish(Publish),
    SubAck(SubAck),
    Lost(ConnectionError),
}

/// Where a message is in its handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Waiting,
    Running,
    Done,
    Failed,
}

struct Slot {
    publish: Publish,
    progress: Progress,
}

/// One entry's subscription, for the life of the host.
struct Listener {
    app: Arc<AppRuntime>,
    triggers: Arc<MqttTriggers>,
    entry: Arc<Entry>,
    client_id: String,
    /// Packet ids of QoS 2 messages acknowledged (`PUBREC`) but not yet released by the broker
    /// (`PUBREL`): a new client must know them, since the broker may release them after a
    /// reconnection.
    unreleased: Arc<Mutex<HashSet<u16>>>,
    /// Waits after messages fail.
    failure_backoff: Backoff,
}

impl Listener {
    fn new(app: Arc<AppRuntime>, triggers: Arc<MqttTriggers>, entry: Arc<Entry>) -> Self {
        let client_id = format!(
            "eventplane-{}-{}-{:012x}",
            entry.component.id,
            entry.index,
            random_u64() & 0xffff_ffff_ffff
        );
        Self {
            app,
            triggers,
            entry,
            client_id,
            unreleased: Arc::default(),
            failure_backoff: Backoff::default(),
        }
    }

    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Backoff::default();
        let mut reported: Option<String> = None;
        let mut connected_once = false;
        let name = self.entry.name();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let wait = match self
                .connection(&mut shutdown, &mut reported, &mut connected_once)
                .await
            {
                Outcome::Shutdown => break,
                Outcome::Unavailable { error, refused } => {
                    if reported.as_deref() != Some(error.as_str()) {
                        if refused {
                            tracing::error!(trigger = %name, "MQTT broker {}: {error}; retrying every {} s", self.triggers.broker, mqtt_common::MAX_BACKOFF.as_secs());
                        } else {
                            tracing::warn!(trigger = %name, "MQTT broker {}: {error}; retrying", self.triggers.broker);
                        }
                        reported = Some(error);
                    }
                    if refused {
                        backoff.jump_to_max();
                    }
                    backoff.next_wait()
                }
                Outcome::Lost { error, lasted } => {
                    // A connection that drops soon after it was made (again and again, say)
                    // is reported once and retried with a growing back-off.
                    if lasted >= mqtt_common::MAX_BACKOFF {
                        backoff.reset();
                    }
                    if lasted >= mqtt_common::MAX_BACKOFF
                        || reported.as_deref() != Some(error.as_str())
                    {
                        tracing::warn!(trigger = %name, "MQTT broker {}: connection lost: {error}; reconnecting", self.triggers.broker);
                    }
                    reported = Some(error);
                    backoff.next_wait()
                }
                Outcome::Failed => {
                    backoff.reset();
                    self.failure_backoff.next_wait()
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
        }
        if connected_once {
            self.end_session().await;
        }
    }

    /// Connects, subscribes and handles messages until the connection ends.
    async fn connection(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
        reported: &mut Option<String>,
        connected_once: &mut bool,
    ) -> Outcome {
        let name = self.entry.name();
        let mut options = self.options();
        options.set_clean_session(false).set_manual_acks(true);
        let (client, mut event_loop) = AsyncClient::new(options, REQUEST_CAPACITY);
        self.restore_unreleased(&mut event_loop);
        let connected = tokio::select! {
            polled = event_loop.poll() => polled,
            _ = shutdown.changed() => return Outcome::Shutdown,
        };
        match connected {
            Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                if !ack.session_present {
                    // A new session: the broker releases nothing of an older one.
                    lock(&self.unreleased).clear();
                }
            }
            Ok(other) => {
                return Outcome::Unavailable {
                    error: format!("unexpected first packet from the broker: {other:?}"),
                    refused: false,
                };
            }
            Err(e) => {
                return Outcome::Unavailable {
                    error: mqtt_common::describe(&e),
                    refused: mqtt_common::is_refusal(&e),
                };
            }
        }
        let qos = mqtt_common::qos_of_level(self.entry.qos.level());
        if let Err(e) = client.try_subscribe(self.entry.topic.clone(), qos) {
            return Outcome::Unavailable {
                error: format!("cannot subscribe to {:?}: {e}", self.entry.topic),
                refused: false,
            };
        }
        let connected_at = tokio::time::Instant::now();
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let poller = AbortOnDrop(tokio::spawn(poll(
            event_loop,
            events_tx,
            self.unreleased.clone(),
        )));

        // Messages are numbered from 0 in arrival order; `window[i]` is number `front + i`.
        let mut window: VecDeque<Slot> = VecDeque::new();
        let mut front = 0usize;
        // The first message not started yet.
        let mut next_start = 0usize;
        let mut running: JoinSet<(usize, anyhow::Result<()>)> = JoinSet::new();
        let mut failed = false;
        let mut dropped = 0u64;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    self.finish(&mut window, &mut front, &mut running, &client, true).await;
                    disconnect(&client, poller).await;
                    return Outcome::Shutdown;
                }
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    if self.record(joined, &mut window, front) {
                        failed = true;
                    }
                }
                polled = events.recv() => match polled {
                    Some(Polled::Publish(publish)) => {
                        if failed {
                            // Not acknowledged: the broker sends it again after reconnection.
                            continue;
                        }
                        if window.len() >= MAX_WAITING && publish.qos == QoS::AtMostOnce {
                            if dropped == 0 {
                                tracing::warn!(trigger = %name, "more than {MAX_WAITING} messages waiting: dropping QoS 0 messages");
                            }
                            dropped += 1;
                            continue;
                        }
                        window.push_back(Slot { publish, progress: Progress::Waiting });
                    }
                    Some(Polled::SubAck(ack)) => {
                        if ack.return_codes.iter().any(|code| matches!(code, SubscribeReasonCode::Failure)) {
                            self.finish(&mut window, &mut front, &mut running, &client, false).await;
                            disconnect(&client, poller).await;
                            return Outcome::Unavailable {
                                error: format!("the broker refused the subscription to {:?} (not allowed by its ACL?)", self.entry.topic),
                                refused: true,
                            };
                        }
                        if reported.take().is_some() || !*connected_once {
                            tracing::info!(trigger = %name, component = %self.entry.component.id, "subscribed to {:?} on {} (QoS {})", self.entry.topic, self.triggers.broker, self.entry.qos.level());
                        }
                        *connected_once = true;
                    }
                    Some(Polled::Lost(e)) => {
                        let lasted = connected_at.elapsed();
                        self.finish(&mut window, &mut front, &mut running, &client, false).await;
                        return Outcome::Lost { error: mqtt_common::describe(&e), lasted };
                    }
                    None => {
                        let lasted = connected_at.elapsed();
                        self.finish(&mut window, &mut front, &mut running, &client, false).await;
                        return Outcome::Lost {
                            error: "the connection's event loop stopped".to_owned(),
                            lasted,
                        };
                    }
                },
            }
            self.acknowledge(&mut window, &mut front, &client).await;
            if failed {
                if running.is_empty() {
                    disconnect(&client, poller).await;
                    return Outcome::Failed;
                }
                continue;
            }
            if dropped > 0 && window.len() < MAX_WAITING / 2 {
                tracing::warn!(trigger = %name, "dropped {dropped} QoS 0 messages while too many were waiting");
                dropped = 0;
            }
            // Start what the concurrency allows, in arrival order.
            while running.len() < MQTT_INSTANCES_PER_TRIGGER as usize {
                let Some(slot) = next_start
                    .checked_sub(front)
                    .and_then(|index| window.get_mut(index))
                else {
                    break;
                };
                slot.progress = Progress::Running;
                let number = next_start;
                let publish = slot.publish.clone();
                let app = self.app.clone();
                let engine = self.triggers.engine.clone();
                let entry = self.entry.clone();
                running.spawn(async move {
                    let outcome = tokio::time::timeout(
                        MESSAGE_TIMEOUT,
                        deliver(&app, &engine, &entry, &publish),
                    )
                    .await
                    .unwrap_or_else(|_| {
                        Err(anyhow::anyhow!(
                            "the component did not finish within {} s",
                            MESSAGE_TIMEOUT.as_secs()
                        ))
                    });
                    (number, outcome)
                });
                next_start += 1;
            }
        }
    }

    /// Records a finished message; `true` when it failed and must be delivered again.
    fn record(
        &mut self,
        joined: Result<(usize, anyhow::Result<()>), tokio::task::JoinError>,
        window: &mut VecDeque<Slot>,
        front: usize,
    ) -> bool {
        let name = self.entry.name();
        let (number, outcome) = match joined {
            Ok(finished) => finished,
            Err(e) => {
                // The task panicked or was cancelled: its message is unknown, so all of them
                // are delivered again.
                tracing::error!(trigger = %name, "a message handler stopped: {e}");
                return true;
            }
        };
        let Some(slot) = number.checked_sub(front).and_then(|i| window.get_mut(i)) else {
            return false;
        };
        let topic = &slot.publish.topic;
        match outcome {
            Ok(()) => {
                slot.progress = Progress::Done;
                self.failure_backoff.reset();
                false
            }
            Err(e) if slot.publish.qos == QoS::AtMostOnce => {
                tracing::error!(trigger = %name, component = %self.entry.component.id, %topic, "QoS 0 message lost: {e:#}");
                slot.progress = Progress::Done;
                false
            }
            Err(e) => {
                tracing::error!(trigger = %name, component = %self.entry.component.id, %topic, "message not handled, to be delivered again: {e:#}");
                slot.progress = Progress::Failed;
                true
            }
        }
    }

    /// Acknowledges the handled messages at the front of the window, in arrival order.
    async fn acknowledge(
        &self,
        window: &mut VecDeque<Slot>,
        front: &mut usize,
        client: &AsyncClient,
    ) {
        while window
            .front()
            .is_some_and(|slot| slot.progress == Progress::Done)
        {
            let Some(slot) = window.pop_front() else {
                break;
            };
            *front += 1;
            // An error means the connection is gone: the broker sends it again anyway.
            let _ = client.ack(&slot.publish).await;
        }
    }

    /// Waits for the messages in flight (all of them, or within the shutdown grace when
    /// `shutting_down`), acknowledging what can be; starts nothing new.
    async fn finish(
        &mut self,
        window: &mut VecDeque<Slot>,
        front: &mut usize,
        running: &mut JoinSet<(usize, anyhow::Result<()>)>,
        client: &AsyncClient,
        shutting_down: bool,
    ) {
        let deadline = tokio::time::Instant::now()
            + if shutting_down {
                crate::server::SHUTDOWN_GRACE
            } else {
                MESSAGE_TIMEOUT + Duration::from_secs(1)
            };
        let mut failed = false;
        while !running.is_empty() {
            match tokio::time::timeout_at(deadline, running.join_next()).await {
                Ok(Some(joined)) => failed |= self.record(joined, window, *front),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(trigger = %self.entry.name(), "{} messages still in flight; stopping them", running.len());
                    running.abort_all();
                    break;
                }
            }
            if !failed {
                self.acknowledge(window, front, client).await;
            }
        }
    }

    fn options(&self) -> rumqttc::MqttOptions {
        mqtt_common::client_options(
            &self.client_id,
            &self.triggers.broker.host,
            self.triggers.broker.port,
            &self.triggers.username,
            &self.triggers.password,
            self.triggers.keep_alive,
        )
    }

    /// Tells a new client which QoS 2 messages the broker may still release.
    fn restore_unreleased(&self, event_loop: &mut EventLoop) {
        let unreleased: Vec<u16> = lock(&self.unreleased).iter().copied().collect();
        for packet_id in unreleased {
            // What the client notes of an incoming QoS 2 publish is its packet id: the one way
            // to note it without the publish itself.
            let mut publish = Publish::new("", QoS::ExactlyOnce, Vec::new());
            publish.pkid = packet_id;
            let _ = event_loop
                .state
                .handle_incoming_packet(Incoming::Publish(publish));
        }
        event_loop.state.events.clear();
    }

    /// Ends the broker session of this client id (nobody will resume it): connects with a
    /// clean session and disconnects. Best effort.
    async fn end_session(&self) {
        let mut options = self.options();
        options.set_clean_session(true);
        let (client, mut event_loop) = AsyncClient::new(options, 8);
        let goodbye = async {
            if let Ok(Event::Incoming(Incoming::ConnAck(_))) = event_loop.poll().await {
                let _ = client.try_disconnect();
                while let Ok(event) = event_loop.poll().await {
                    if event == Event::Outgoing(Outgoing::Disconnect) {
                        break;
                    }
                }
            }
        };
        if tokio::time::timeout(GOODBYE_TIMEOUT, goodbye)
            .await
            .is_err()
        {
            tracing::debug!(trigger = %self.entry.name(), "could not end the MQTT session of {}", self.client_id);
        }
    }
}

/// Follows the connection: hands publishes and subscription answers to the listener, keeps
/// track of QoS 2 releases, and reports the connection's end.
async fn poll(
    mut event_loop: EventLoop,
    events: mpsc::UnboundedSender<Polled>,
    unreleased: Arc<Mutex<HashSet<u16>>>,
) {
    loop {
        let polled = match event_loop.poll().await {
            Ok(Event::Incoming(Incoming::Publish(publish))) => Polled::Publish(publish),
            Ok(Event::Incoming(Incoming::SubAck(ack))) => Polled::SubAck(ack),
            Ok(Event::Outgoing(Outgoing::PubRec(packet_id))) => {
                lock(&unreleased).insert(packet_id);
                continue;
            }
            Ok(Event::Outgoing(Outgoing::PubComp(packet_id))) => {
                lock(&unreleased).remove(&packet_id);
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                let _ = events.send(Polled::Lost(e));
                return;
            }
        };
        if events.send(polled).is_err() {
            return;
        }
    }
}

/// Sends `DISCONNECT` (after every acknowledgement queued before it) and waits a little for
/// the event loop to write it; then stops the event loop.
async fn disconnect(client: &AsyncClient, mut poller: AbortOnDrop) {
    if client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(GOODBYE_TIMEOUT, &mut poller.0).await;
    }
}

/// Handles one message in a fresh instance: `Ok` once the component has returned `Ok` and its
/// key-value writes are durable.
async fn deliver(
    app: &Arc<AppRuntime>,
    engine: &Engine,
    entry: &Entry,
    publish: &Publish,
) -> anyhow::Result<()> {
    let state = HostState::new(app, &entry.component);
    let kv = state.kv.clone();
    let mut store = Store::new(engine, state);
    // Yield to the executor at every epoch tick, so that a timeout can stop a busy guest.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
    let instance = entry
        .pre
        .instantiate_async(&mut store)
        .await
        .map_err(anyhow::Error::from)
        .context("cannot instantiate the component")?;
    let message = publish.payload.to_vec();
    let metadata = Metadata {
        topic: publish.topic.clone(),
    };
    let answer = store
        .run_concurrent(async move |accessor| {
            instance
                .call_handle_message(accessor, message, metadata)
                .await
        })
        .await
        .and_then(|called| called)
        .map_err(anyhow::Error::from)
        .context("the component failed")?;
    if let Err(GuestError::Other(why)) = answer {
        anyhow::bail!("the component returned an error: {why}");
    }
    kv.durable().await.map_err(|e| {
        anyhow::anyhow!("the component's key-value writes cannot be made durable: {e}")
    })
}

/// A task stopped when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A random number from the standard library's per-process random hash keys.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}
