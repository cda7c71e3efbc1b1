//! A fake Google Cloud Pub/Sub: the REST API (v1) of one subscription, served over real HTTP on
//! a loopback port, so that eventplane's external event bus can be tested end to end.
//!
//! It serves the subscription `projects/<project>/subscriptions/<subscription>`, attached to a
//! topic the test can change:
//!
//! - `GET /v1/projects/<p>/subscriptions/<s>`: the subscription resource;
//! - `POST …:pull` (`{"maxMessages": N, "returnImmediately": true}`): at most `N` messages not
//!   currently leased, each leased for the ack deadline and handed out again (a new `ackId`,
//!   `deliveryAttempt` one more) once its lease expires unacknowledged; `{}` when there is none;
//! - `POST …:acknowledge` (`{"ackIds": [...]}`): acknowledges the messages of the current
//!   leases; unknown and expired ack ids are ignored, as Google does;
//! - `POST …:modifyAckDeadline` (`{"ackIds": [...], "ackDeadlineSeconds": S}`): extends a lease,
//!   or ends it (`0`, a "nack");
//! - anything else under `/v1/projects/…/subscriptions/…`: `404` with Google's error shape
//!   (`{"error": {"code", "message", "status"}}`).
//!
//! Every request is recorded (method, path, headers, body, when, and the status answered).
//! Failures can be injected at any time (the next `k` pulls, acknowledges or subscription reads
//! answer a status; answers can be delayed), and an [`AckHook`] sees the messages of every
//! acknowledge, to check that they were already processed (a failed check is a violation).
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use eventplane_tests::pubsub::{FakePubSub, binary_cloudevent};
//! let bus = FakePubSub::start("p", "s", "t").await?;
//! let id = bus.publish(binary_cloudevent(
//!     "o-1",
//!     "/applications/shop",
//!     "order.created.v1",
//!     serde_json::json!({"orderId": "o-1"}),
//! ));
//! // ... point eventplane at bus.subscription_url(), tick ...
//! assert_eq!(bus.acknowledged(), [id]);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::{Received, Reply, TestServer};

/// A message as the publisher sent it to the topic: data and attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishedMessage {
    /// The message's data (sent base64-encoded on the wire).
    pub data: Vec<u8>,
    /// The message's attributes.
    pub attributes: BTreeMap<String, String>,
}

impl PublishedMessage {
    /// A message with `data` and `attributes`.
    pub fn new(data: impl Into<Vec<u8>>, attributes: &[(&str, &str)]) -> Self {
        Self {
            data: data.into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// Attribute `name`, if set.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    /// The same message with attribute `name` set to `value`.
    #[must_use]
    pub fn with_attribute(mut self, name: &str, value: &str) -> Self {
        self.attributes.insert(name.to_owned(), value.to_owned());
        self
    }

    /// The same message without attribute `name`.
    #[must_use]
    pub fn without_attribute(mut self, name: &str) -> Self {
        self.attributes.remove(name);
        self
    }

    /// The CloudEvents `source` and `id` the message carries: the `ce-source` and `ce-id`
    /// attributes (binary mode), or, when `content-type` is `application/cloudevents+json`
    /// (structured mode), the `source` and `id` of the JSON data.
    pub fn cloudevent_source_and_id(&self) -> Option<(String, String)> {
        let structured = self
            .attribute("content-type")
            .is_some_and(|t| t.starts_with("application/cloudevents+json"));
        if structured {
            let event: Value = serde_json::from_slice(&self.data).ok()?;
            return Some((
                event.get("source")?.as_str()?.to_owned(),
                event.get("id")?.as_str()?.to_owned(),
            ));
        }
        Some((
            self.attribute("ce-source")?.to_owned(),
            self.attribute("ce-id")?.to_owned(),
        ))
    }
}

/// A binary-mode CloudEvent as a Pub/Sub message: attributes `ce-specversion: 1.0`, `ce-id`,
/// `ce-source`, `ce-type` and `content-type: application/json`; the data is `data` as JSON.
pub fn binary_cloudevent(id: &str, source: &str, type_name: &str, data: Value) -> PublishedMessage {
    PublishedMessage::new(
        data.to_string(),
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", id),
            ("ce-source", source),
            ("ce-type", type_name),
            ("content-type", "application/json"),
        ],
    )
}

/// A structured-mode CloudEvent as a Pub/Sub message: attribute
/// `content-type: application/cloudevents+json`; the data is the whole event as JSON (with
/// `datacontenttype: application/json` and `data`).
pub fn structured_cloudevent(
    id: &str,
    source: &str,
    type_name: &str,
    data: Value,
) -> PublishedMessage {
    let event = json!({
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": type_name,
        "datacontenttype": "application/json",
        "data": data,
    });
    PublishedMessage::new(
        event.to_string(),
        &[("content-type", "application/cloudevents+json")],
    )
}

/// What a request to the fake was, by its path and method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `GET` of the subscription resource.
    GetSubscription,
    /// `POST …:pull`.
    Pull,
    /// `POST …:acknowledge`.
    Acknowledge,
    /// `POST …:modifyAckDeadline`.
    ModifyAckDeadline,
    /// Anything else (answered `404`).
    Other,
}

/// A request the fake received, and what it answered.
#[derive(Debug, Clone)]
pub struct PubSubRequest {
    /// What it was.
    pub kind: RequestKind,
    /// Method.
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Headers, lower-case names.
    pub headers: HashMap<String, String>,
    /// Body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
    /// The status answered.
    pub status: u16,
}

impl PubSubRequest {
    /// Header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The `authorization` header, if sent.
    pub fn authorization(&self) -> Option<&str> {
        self.header("authorization")
    }

    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One pull that handed out messages, and how far their acknowledgement got: the time from
/// the pull to the acknowledge of the last of them.
#[derive(Debug, Clone)]
pub struct Batch {
    /// When the pull arrived.
    pub pulled_at: Instant,
    /// The messages handed out (`messageId`s).
    pub message_ids: Vec<String>,
    /// How many of them were acknowledged under the lease of this pull.
    pub acked: usize,
    /// When the latest of those acknowledges arrived.
    pub last_ack_at: Option<Instant>,
}

impl Batch {
    /// Pull → acknowledge of the whole batch, once every message of it was acknowledged
    /// under this pull's lease.
    pub fn duration(&self) -> Option<Duration> {
        if self.acked < self.message_ids.len() {
            return None;
        }
        self.last_ack_at
            .map(|at| at.saturating_duration_since(self.pulled_at))
    }
}

/// Checks the messages of one acknowledge (before they count as acknowledged); an `Err` is
/// recorded as a violation.
pub type AckHook = Arc<dyn Fn(&[PublishedMessage]) -> Result<(), String> + Send + Sync>;

/// The current lease of a message.
#[derive(Debug, Clone)]
struct Lease {
    ack_id: String,
    until: Instant,
    /// Index in `State::batches`.
    batch: usize,
}

#[derive(Debug, Clone)]
struct Message {
    id: String,
    published: PublishedMessage,
    publish_time: String,
    acked: bool,
    lease: Option<Lease>,
    /// How many times it was handed out.
    deliveries: u32,
}

impl Message {
    fn leased_at(&self, now: Instant) -> bool {
        self.lease.as_ref().is_some_and(|l| l.until > now)
    }
}

/// An injected failure: the next `remaining` requests of a kind answer `status`.
#[derive(Debug, Clone, Copy)]
struct Failure {
    remaining: usize,
    status: u16,
}

impl Failure {
    /// The status to fail with now, using up one failure.
    fn take(slot: &mut Option<Self>) -> Option<u16> {
        let failure = slot.as_mut()?;
        if failure.remaining == 0 {
            *slot = None;
            return None;
        }
        failure.remaining -= 1;
        Some(failure.status)
    }
}

struct State {
    project: String,
    subscription: String,
    topic: String,
    ack_deadline: Duration,
    messages: Vec<Message>,
    by_id: HashMap<String, usize>,
    next_ack: u64,
    requests: Vec<PubSubRequest>,
    fail_pulls: Option<Failure>,
    fail_acks: Option<Failure>,
    fail_gets: Option<Failure>,
    delay: Duration,
    required_authorization: Option<String>,
    hook: Option<AckHook>,
    hook_calls: usize,
    violations: Vec<String>,
    batches: Vec<Batch>,
    ack_log: Vec<(Instant, String)>,
}

impl State {
    fn subscription_name(&self) -> String {
        format!(
            "projects/{}/subscriptions/{}",
            self.project, self.subscription
        )
    }
}

/// A fake Google Cloud Pub/Sub serving one subscription; see the module docs.
pub struct FakePubSub {
    server: TestServer,
    state: Arc<Mutex<State>>,
}

/// The first message id handed out (Google's are decimal numbers).
const FIRST_MESSAGE_ID: u64 = 17_000_000_000_001;

impl FakePubSub {
    /// Serves `projects/<project>/subscriptions/<subscription>`, attached to `topic` (a full
    /// name `projects/<p>/topics/<t>`, or a short name put in `project`), with a 10 s ack
    /// deadline.
    pub async fn start(project: &str, subscription: &str, topic: &str) -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(State {
            project: project.to_owned(),
            subscription: subscription.to_owned(),
            topic: full_topic(project, topic),
            ack_deadline: Duration::from_secs(10),
            messages: Vec::new(),
            by_id: HashMap::new(),
            next_ack: 1,
            requests: Vec::new(),
            fail_pulls: None,
            fail_acks: None,
            fail_gets: None,
            delay: Duration::ZERO,
            required_authorization: None,
            hook: None,
            hook_calls: 0,
            violations: Vec::new(),
            batches: Vec::new(),
            ack_log: Vec::new(),
        }));
        let shared = state.clone();
        let server = TestServer::start_with(move |request| handle(&shared, request)).await?;
        Ok(Self { server, state })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// `http://127.0.0.1:<port>/v1/projects/<p>/subscriptions/<s>`: what to register as the
    /// external subscription's `url`.
    pub fn subscription_url(&self) -> String {
        let name = self.subscription_name();
        self.server.url(&format!("/v1/{name}"))
    }

    /// `projects/<p>/subscriptions/<s>`.
    pub fn subscription_name(&self) -> String {
        self.lock().subscription_name()
    }

    /// The topic the subscription is attached to now (`projects/<p>/topics/<t>`).
    pub fn topic(&self) -> String {
        self.lock().topic.clone()
    }

    /// Attaches the subscription to `topic` (full or short name, as in [`start`](Self::start)).
    pub fn set_topic(&self, topic: &str) {
        let mut state = self.lock();
        state.topic = full_topic(&state.project, topic);
    }

    /// Leases handed out from now on last `deadline` (also shown as the subscription's
    /// `ackDeadlineSeconds`, rounded up).
    pub fn set_ack_deadline(&self, deadline: Duration) {
        self.lock().ack_deadline = deadline;
    }

    /// Publishes `message` to the topic (and so to this subscription); its `messageId`.
    pub fn publish(&self, message: PublishedMessage) -> String {
        let mut state = self.lock();
        let index = state.messages.len();
        let id = (FIRST_MESSAGE_ID + index as u64).to_string();
        state.messages.push(Message {
            id: id.clone(),
            published: message,
            publish_time: rfc3339_millis(SystemTime::now()),
            acked: false,
            lease: None,
            deliveries: 0,
        });
        state.by_id.insert(id.clone(), index);
        id
    }

    /// Publishes every message of `messages`; their `messageId`s, in order.
    pub fn publish_all(&self, messages: impl IntoIterator<Item = PublishedMessage>) -> Vec<String> {
        messages.into_iter().map(|m| self.publish(m)).collect()
    }

    /// The message published as `message_id`, if any.
    pub fn message(&self, message_id: &str) -> Option<PublishedMessage> {
        let state = self.lock();
        let index = *state.by_id.get(message_id)?;
        Some(state.messages[index].published.clone())
    }

    /// The `messageId`s of every message published, in order.
    pub fn published(&self) -> Vec<String> {
        self.lock().messages.iter().map(|m| m.id.clone()).collect()
    }

    /// The `messageId`s acknowledged, in the order of their acknowledgement.
    pub fn acknowledged(&self) -> Vec<String> {
        self.lock()
            .ack_log
            .iter()
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// When each message was acknowledged (the arrival of the acknowledge), in order.
    pub fn ack_log(&self) -> Vec<(Instant, String)> {
        self.lock().ack_log.clone()
    }

    /// How many messages were published and not acknowledged.
    pub fn outstanding(&self) -> usize {
        self.lock().messages.iter().filter(|m| !m.acked).count()
    }

    /// How many times the message `message_id` was handed out by a pull.
    pub fn deliveries(&self, message_id: &str) -> u32 {
        let state = self.lock();
        state
            .by_id
            .get(message_id)
            .map_or(0, |&i| state.messages[i].deliveries)
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<PubSubRequest> {
        self.lock().requests.clone()
    }

    /// The requests of `kind` received so far.
    pub fn requests_of(&self, kind: RequestKind) -> Vec<PubSubRequest> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.kind == kind)
            .cloned()
            .collect()
    }

    /// The pulls that handed out messages, with their acknowledgement progress.
    pub fn batches(&self) -> Vec<Batch> {
        self.lock().batches.clone()
    }

    /// The next `k` pulls answer `status` with Google's error body (`k == 0`: none).
    pub fn fail_pulls(&self, k: usize, status: u16) {
        self.lock().fail_pulls = Some(Failure {
            remaining: k,
            status,
        });
    }

    /// The next `k` acknowledges answer `status` and acknowledge nothing.
    pub fn fail_acks(&self, k: usize, status: u16) {
        self.lock().fail_acks = Some(Failure {
            remaining: k,
            status,
        });
    }

    /// The next `k` reads of the subscription resource answer `status`.
    pub fn fail_gets(&self, k: usize, status: u16) {
        self.lock().fail_gets = Some(Failure {
            remaining: k,
            status,
        });
    }

    /// Ends every injected failure.
    pub fn clear_failures(&self) {
        let mut state = self.lock();
        state.fail_pulls = None;
        state.fail_acks = None;
        state.fail_gets = None;
    }

    /// Every answer is sent `delay` after the request arrived (what it does happens at once).
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Answers `401 UNAUTHENTICATED` to any request whose `authorization` header is not
    /// exactly `value` (`None`: no check, the default).
    pub fn require_authorization(&self, value: Option<&str>) {
        self.lock().required_authorization = value.map(str::to_owned);
    }

    /// Ends every lease now: the messages handed out and not acknowledged can be pulled again
    /// (with new ack ids), and acknowledges of the old ack ids are ignored.
    pub fn expire_leases(&self) {
        for message in &mut self.lock().messages {
            message.lease = None;
        }
    }

    /// Calls `hook` on each acknowledge with the messages it acknowledges, before they count as
    /// acknowledged; an `Err` is recorded as a violation (the acknowledge still succeeds).
    pub fn on_ack(
        &self,
        hook: impl Fn(&[PublishedMessage]) -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.lock().hook = Some(Arc::new(hook));
    }

    /// How many times the [`on_ack`](Self::on_ack) hook was called.
    pub fn ack_checks(&self) -> usize {
        self.lock().hook_calls
    }

    /// What the [`on_ack`](Self::on_ack) hook refused.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn full_topic(project: &str, topic: &str) -> String {
    if topic.contains('/') {
        topic.to_owned()
    } else {
        format!("projects/{project}/topics/{topic}")
    }
}

/// Google's canonical status name for an HTTP status.
fn google_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

/// `status` with Google's error body.
fn google_error(status: u16, message: &str) -> Reply {
    json_reply(
        status,
        &json!({"error": {"code": status, "message": message, "status": google_status(status)}}),
    )
}

fn json_reply(status: u16, body: &Value) -> Reply {
    Reply::new(status, body.to_string()).header("content-type", "application/json; charset=UTF-8")
}

/// Answers one request, and records it.
fn handle(shared: &Mutex<State>, request: &Received) -> Reply {
    let at = Instant::now();
    let path = request.path_only().replace("%3A", ":").replace("%3a", ":");
    let (prefix, required, delay) = {
        let state = lock(shared);
        (
            format!("/v1/{}", state.subscription_name()),
            state.required_authorization.clone(),
            state.delay,
        )
    };
    let kind = match (request.method.as_str(), path.strip_prefix(&prefix)) {
        ("GET", Some("")) => RequestKind::GetSubscription,
        ("POST", Some(":pull")) => RequestKind::Pull,
        ("POST", Some(":acknowledge")) => RequestKind::Acknowledge,
        ("POST", Some(":modifyAckDeadline")) => RequestKind::ModifyAckDeadline,
        _ => RequestKind::Other,
    };
    let reply = if kind != RequestKind::Other
        && required.is_some()
        && request.header("authorization") != required.as_deref()
    {
        google_error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, \
             login cookie or other valid authentication credential.",
        )
    } else {
        match kind {
            RequestKind::GetSubscription => get_subscription(shared),
            RequestKind::Pull => pull(shared, request, at),
            RequestKind::Acknowledge => acknowledge(shared, request, at),
            RequestKind::ModifyAckDeadline => modify_ack_deadline(shared, request, at),
            RequestKind::Other => not_found(&path),
        }
    };
    lock(shared).requests.push(PubSubRequest {
        kind,
        method: request.method.clone(),
        path: request.path.clone(),
        headers: request.headers.clone(),
        body: request.body.clone(),
        at,
        status: reply.status,
    });
    if delay.is_zero() {
        reply
    } else {
        reply.after(delay)
    }
}

fn not_found(path: &str) -> Reply {
    let resource = path
        .rsplit_once("/subscriptions/")
        .map(|(_, name)| name.split(':').next().unwrap_or(name))
        .unwrap_or(path);
    google_error(404, &format!("Resource not found (resource={resource})."))
}

fn get_subscription(shared: &Mutex<State>) -> Reply {
    let mut state = lock(shared);
    if let Some(status) = Failure::take(&mut state.fail_gets) {
        return google_error(status, "injected failure reading the subscription");
    }
    let seconds = state.ack_deadline.as_secs_f64().ceil().max(1.0) as u64;
    json_reply(
        200,
        &json!({
            "name": state.subscription_name(),
            "topic": state.topic,
            "pushConfig": {},
            "ackDeadlineSeconds": seconds,
            "messageRetentionDuration": "604800s",
            "state": "ACTIVE",
        }),
    )
}

/// An integer field that may be sent as a JSON number or, as proto3 JSON allows, a string.
fn int_field(body: &Value, name: &str) -> Option<i64> {
    match body.get(name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn string_list(body: &Value, name: &str) -> Option<Vec<String>> {
    body.get(name)?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn pull(shared: &Mutex<State>, request: &Received, now: Instant) -> Reply {
    let mut state = lock(shared);
    if let Some(status) = Failure::take(&mut state.fail_pulls) {
        return google_error(status, "injected failure pulling messages");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return google_error(400, "Invalid JSON payload received.");
    };
    let max = match int_field(&body, "maxMessages") {
        Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => return google_error(400, "The value for max_messages must be > 0."),
    };
    let until = now + state.ack_deadline;
    let batch = state.batches.len();
    let mut received = Vec::new();
    let mut handed = Vec::new();
    let mut next_ack = state.next_ack;
    for message in &mut state.messages {
        if received.len() == max {
            break;
        }
        if message.acked || message.leased_at(now) {
            continue;
        }
        message.deliveries += 1;
        let ack_id = format!("ack-{next_ack:08}-{}-{}", message.id, message.deliveries);
        next_ack += 1;
        message.lease = Some(Lease {
            ack_id: ack_id.clone(),
            until,
            batch,
        });
        let mut wire = Map::new();
        if !message.published.data.is_empty() {
            wire.insert(
                "data".into(),
                Value::String(STANDARD.encode(&message.published.data)),
            );
        }
        if !message.published.attributes.is_empty() {
            wire.insert("attributes".into(), json!(message.published.attributes));
        }
        wire.insert("messageId".into(), json!(message.id));
        wire.insert("publishTime".into(), json!(message.publish_time));
        received.push(json!({
            "ackId": ack_id,
            "message": wire,
            "deliveryAttempt": message.deliveries,
        }));
        handed.push(message.id.clone());
    }
    state.next_ack = next_ack;
    if received.is_empty() {
        return json_reply(200, &json!({}));
    }
    state.batches.push(Batch {
        pulled_at: now,
        message_ids: handed,
        acked: 0,
        last_ack_at: None,
    });
    json_reply(200, &json!({ "receivedMessages": received }))
}

/// The indexes of the messages whose current, unexpired lease has one of `ack_ids` (an ack id
/// names its message: `ack-<serial>-<messageId>-<delivery>`).
fn leased(state: &State, ack_ids: &[String], now: Instant) -> Vec<usize> {
    let mut found: Vec<usize> = ack_ids
        .iter()
        .filter_map(|ack_id| {
            let message_id = ack_id.split('-').nth(2)?;
            let index = *state.by_id.get(message_id)?;
            let message = &state.messages[index];
            let current = message
                .lease
                .as_ref()
                .is_some_and(|l| l.until > now && l.ack_id == *ack_id);
            (current && !message.acked).then_some(index)
        })
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

fn acknowledge(shared: &Mutex<State>, request: &Received, now: Instant) -> Reply {
    let (ack_ids, messages, hook) = {
        let mut state = lock(shared);
        if let Some(status) = Failure::take(&mut state.fail_acks) {
            return google_error(status, "injected failure acknowledging messages");
        }
        let body = serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null);
        let Some(ack_ids) = string_list(&body, "ackIds") else {
            return google_error(400, "ackIds must be a list of ack ids.");
        };
        let found = leased(&state, &ack_ids, now);
        let messages: Vec<(String, PublishedMessage)> = found
            .iter()
            .map(|&i| {
                let m = &state.messages[i];
                (m.id.clone(), m.published.clone())
            })
            .collect();
        (ack_ids, messages, state.hook.clone())
    };
    // The hook may take its time (it may read a database): it runs without the lock.
    if let Some(hook) = hook
        && !messages.is_empty()
    {
        let published: Vec<PublishedMessage> = messages.iter().map(|(_, m)| m.clone()).collect();
        let verdict = hook(&published);
        let mut state = lock(shared);
        state.hook_calls += 1;
        if let Err(why) = verdict {
            let ids: Vec<&str> = messages.iter().map(|(id, _)| id.as_str()).collect();
            state
                .violations
                .push(format!("acknowledge of {ids:?}: {why}"));
        }
    }
    let mut state = lock(shared);
    // Leases may have ended meanwhile (expire_leases): look them up again.
    for i in leased(&state, &ack_ids, now) {
        let message = &mut state.messages[i];
        message.acked = true;
        let lease = message.lease.take();
        let id = message.id.clone();
        if let Some(batch) = lease.and_then(|l| state.batches.get_mut(l.batch)) {
            batch.acked += 1;
            batch.last_ack_at = Some(now);
        }
        state.ack_log.push((now, id));
    }
    json_reply(200, &json!({}))
}

fn modify_ack_deadline(shared: &Mutex<State>, request: &Received, now: Instant) -> Reply {
    let mut state = lock(shared);
    let body = serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null);
    let (Some(ack_ids), Some(seconds)) = (
        string_list(&body, "ackIds"),
        int_field(&body, "ackDeadlineSeconds"),
    ) else {
        return google_error(400, "ackIds and ackDeadlineSeconds are required.");
    };
    if !(0..=600).contains(&seconds) {
        return google_error(
            400,
            "The value for ack_deadline_seconds must be between 0 and 600.",
        );
    }
    for i in leased(&state, &ack_ids, now) {
        let message = &mut state.messages[i];
        if seconds == 0 {
            message.lease = None;
        } else if let Some(lease) = message.lease.as_mut() {
            lease.until = now + Duration::from_secs(seconds.unsigned_abs());
        }
    }
    json_reply(200, &json!({}))
}

/// `t` as RFC 3339 UTC with milliseconds, as Google writes `publishTime`:
/// `2026-12-04T07:00:00.123Z`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    const SOURCE: &str = "/applications/shop";

    struct Client {
        http: reqwest::Client,
        base: String,
    }

    impl Client {
        fn new(bus: &FakePubSub) -> Self {
            Self {
                http: reqwest::Client::new(),
                base: bus.subscription_url(),
            }
        }

        async fn get(&self) -> anyhow::Result<(u16, Value)> {
            read(self.http.get(&self.base).send().await?).await
        }

        async fn post(&self, verb: &str, body: Value) -> anyhow::Result<(u16, Value)> {
            read(
                self.http
                    .post(format!("{}:{verb}", self.base))
                    .json(&body)
                    .send()
                    .await?,
            )
            .await
        }

        async fn pull(&self, max: u64) -> anyhow::Result<Vec<Value>> {
            let (status, body) = self
                .post(
                    "pull",
                    json!({"maxMessages": max, "returnImmediately": true}),
                )
                .await?;
            anyhow::ensure!(status == 200, "pull: {status} {body}");
            Ok(body["receivedMessages"]
                .as_array()
                .cloned()
                .unwrap_or_default())
        }

        async fn ack(&self, ack_ids: &[&str]) -> anyhow::Result<u16> {
            Ok(self
                .post("acknowledge", json!({"ackIds": ack_ids}))
                .await?
                .0)
        }
    }

    async fn read(response: reqwest::Response) -> anyhow::Result<(u16, Value)> {
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text)?))
    }

    fn ack_ids(received: &[Value]) -> Vec<&str> {
        received
            .iter()
            .filter_map(|r| r["ackId"].as_str())
            .collect()
    }

    fn message_ids(received: &[Value]) -> Vec<&str> {
        received
            .iter()
            .filter_map(|r| r["message"]["messageId"].as_str())
            .collect()
    }

    #[tokio::test]
    async fn the_subscription_resource_and_unknown_ones() -> anyhow::Result<()> {
        let bus = FakePubSub::start("p", "s", "t").await?;
        assert_eq!(bus.subscription_name(), "projects/p/subscriptions/s");
        assert!(bus.subscription_url().starts_with("http://127.0.0.1:"));
        assert!(
            bus.subscription_url()
                .ends_with("/v1/projects/p/subscriptions/s")
        );
        let client = Client::new(&bus);
        let (status, body) = client.get().await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["name"], "projects/p/subscriptions/s");
        assert_eq!(body["topic"], "projects/p/topics/t");
        assert_eq!(body["ackDeadlineSeconds"], 10);
        assert_eq!(body["pushConfig"], json!({}));

        bus.set_topic("projects/p/topics/other");
        assert_eq!(client.get().await?.1["topic"], "projects/p/topics/other");

        let http = reqwest::Client::new();
        for url in [
            bus.url("/v1/projects/p/subscriptions/nope"),
            bus.url("/v1/projects/q/subscriptions/s"),
            bus.url("/v1/projects/p/subscriptions/nope:pull"),
        ] {
            let request = if url.ends_with(":pull") {
                http.post(&url).json(&json!({"maxMessages": 1}))
            } else {
                http.get(&url)
            };
            let (status, body) = read(request.send().await?).await?;
            assert_eq!(status, 404, "{url}: {body}");
            assert_eq!(body["error"]["code"], 404, "{body}");
            assert_eq!(body["error"]["status"], "NOT_FOUND", "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("Resource not found")),
                "{body}"
            );
        }
        let kinds: Vec<RequestKind> = bus.requests().iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                RequestKind::GetSubscription,
                RequestKind::GetSubscription,
                RequestKind::Other,
                RequestKind::Other,
                RequestKind::Other
            ]
        );
        Ok(())
    }

    #[tokio::test]
    async fn pull_leases_ack_acknowledges_and_expired_leases_are_redelivered() -> anyhow::Result<()>
    {
        let bus = FakePubSub::start("p", "s", "projects/p/topics/t").await?;
        let client = Client::new(&bus);
        assert_eq!(
            client.post("pull", json!({"maxMessages": 10})).await?.1,
            json!({}),
            "nothing yet"
        );

        let ids = bus.publish_all([
            binary_cloudevent("e-1", SOURCE, "order.created.v1", json!({"orderId": "e-1"})),
            structured_cloudevent("e-2", SOURCE, "order.created.v1", json!({"orderId": "e-2"})),
            binary_cloudevent("e-3", SOURCE, "order.created.v1", json!({"orderId": "e-3"})),
        ]);
        assert_eq!(bus.published(), ids);
        assert_eq!(bus.outstanding(), 3);

        // At most maxMessages, in publish order, with the wire shape of Google's answer.
        let first = client.pull(2).await?;
        assert_eq!(message_ids(&first), [ids[0].as_str(), ids[1].as_str()]);
        let m = &first[0];
        assert_eq!(m["deliveryAttempt"], 1);
        assert_eq!(m["message"]["attributes"]["ce-id"], "e-1");
        assert_eq!(
            m["message"]["attributes"]["content-type"],
            "application/json"
        );
        let data = STANDARD.decode(m["message"]["data"].as_str().unwrap_or_default())?;
        assert_eq!(
            serde_json::from_slice::<Value>(&data)?,
            json!({"orderId": "e-1"})
        );
        let time = m["message"]["publishTime"].as_str().unwrap_or_default();
        assert!(
            time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{time}"
        );
        let structured =
            STANDARD.decode(first[1]["message"]["data"].as_str().unwrap_or_default())?;
        let event: Value = serde_json::from_slice(&structured)?;
        assert_eq!(
            (event["id"].clone(), event["data"]["orderId"].clone()),
            (json!("e-2"), json!("e-2"))
        );
        assert_eq!(
            first[1]["message"]["attributes"],
            json!({"content-type": "application/cloudevents+json"})
        );

        // Leased messages are not handed out again; the third is.
        let second = client.pull(10).await?;
        assert_eq!(message_ids(&second), [ids[2].as_str()]);
        assert_eq!(
            client.post("pull", json!({"maxMessages": 10})).await?.1,
            json!({})
        );

        // Acknowledge the first; unknown ack ids are ignored.
        assert_eq!(
            client.ack(&[ack_ids(&first)[0], "no-such-ack-id"]).await?,
            200
        );
        assert_eq!(bus.acknowledged(), [ids[0].clone()]);
        assert_eq!(bus.outstanding(), 2);

        // The leases expire: the rest comes again with new ack ids and one more attempt.
        bus.expire_leases();
        let again = client.pull(10).await?;
        assert_eq!(message_ids(&again), [ids[1].as_str(), ids[2].as_str()]);
        assert!(again.iter().all(|r| r["deliveryAttempt"] == 2), "{again:?}");
        assert_ne!(ack_ids(&again)[0], ack_ids(&first)[1]);
        // The expired ack id acknowledges nothing; the new ones do.
        assert_eq!(client.ack(&[ack_ids(&first)[1]]).await?, 200);
        assert_eq!(bus.outstanding(), 2);
        assert_eq!(client.ack(&ack_ids(&again)).await?, 200);
        assert_eq!(bus.acknowledged(), ids);
        assert_eq!(bus.outstanding(), 0);
        assert_eq!(bus.deliveries(&ids[1]), 2);
        assert_eq!(bus.deliveries(&ids[0]), 1);
        assert_eq!(
            client.post("pull", json!({"maxMessages": 10})).await?.1,
            json!({})
        );

        // Batches: the first pull's lease only got its first message acknowledged.
        let batches = bus.batches();
        assert_eq!(batches.len(), 3, "{batches:?}");
        assert_eq!(batches[0].acked, 1);
        assert!(batches[0].duration().is_none());
        assert!(batches[2].duration().is_some());
        Ok(())
    }

    #[tokio::test]
    async fn a_lease_ends_by_itself_after_the_ack_deadline() -> anyhow::Result<()> {
        let bus = FakePubSub::start("p", "s", "t").await?;
        bus.set_ack_deadline(Duration::from_millis(300));
        let client = Client::new(&bus);
        let id = bus.publish(binary_cloudevent("e-1", SOURCE, "t", json!({})));
        let first = client.pull(5).await?;
        assert_eq!(message_ids(&first), [id.as_str()]);
        assert!(client.pull(5).await?.is_empty());
        tokio::time::sleep(Duration::from_millis(400)).await;
        // The late acknowledge is ignored; the message comes again.
        assert_eq!(client.ack(&ack_ids(&first)).await?, 200);
        assert_eq!(bus.outstanding(), 1);
        let again = client.pull(5).await?;
        assert_eq!(again[0]["deliveryAttempt"], 2);
        // modifyAckDeadline 0 hands it back at once.
        let (status, _) = client
            .post(
                "modifyAckDeadline",
                json!({"ackIds": ack_ids(&again), "ackDeadlineSeconds": 0}),
            )
            .await?;
        assert_eq!(status, 200);
        let third = client.pull(5).await?;
        assert_eq!(third[0]["deliveryAttempt"], 3);
        assert_eq!(client.ack(&ack_ids(&third)).await?, 200);
        assert_eq!(bus.acknowledged(), [id]);
        Ok(())
    }

    #[tokio::test]
    async fn injected_failures_answer_googles_error_and_change_nothing() -> anyhow::Result<()> {
        let bus = FakePubSub::start("p", "s", "t").await?;
        let client = Client::new(&bus);
        let id = bus.publish(binary_cloudevent("e-1", SOURCE, "t", json!({})));

        bus.fail_gets(1, 500);
        let (status, body) = client.get().await?;
        assert_eq!(
            (status, body["error"]["status"].clone()),
            (500, json!("INTERNAL")),
            "{body}"
        );
        assert_eq!(client.get().await?.0, 200, "one failure only");

        bus.fail_pulls(2, 503);
        for _ in 0..2 {
            let (status, body) = client.post("pull", json!({"maxMessages": 5})).await?;
            assert_eq!(status, 503, "{body}");
            assert_eq!(
                body["error"],
                json!({"code": 503, "message": body["error"]["message"], "status": "UNAVAILABLE"})
            );
        }
        assert_eq!(bus.deliveries(&id), 0, "a failed pull hands out nothing");
        let pulled = client.pull(5).await?;
        assert_eq!(message_ids(&pulled), [id.as_str()]);

        bus.fail_acks(1, 503);
        assert_eq!(client.ack(&ack_ids(&pulled)).await?, 503);
        assert_eq!(
            bus.outstanding(),
            1,
            "a failed acknowledge acknowledges nothing"
        );
        assert_eq!(
            client.ack(&ack_ids(&pulled)).await?,
            200,
            "the lease still holds"
        );
        assert_eq!(bus.outstanding(), 0);

        bus.fail_pulls(100, 429);
        assert_eq!(client.post("pull", json!({"maxMessages": 1})).await?.0, 429);
        bus.clear_failures();
        assert_eq!(client.post("pull", json!({"maxMessages": 1})).await?.0, 200);
        assert_eq!(client.post("pull", json!({"maxMessages": 0})).await?.0, 400);

        // Every request is on record with what it was answered.
        let statuses: Vec<(RequestKind, u16)> =
            bus.requests().iter().map(|r| (r.kind, r.status)).collect();
        assert_eq!(
            statuses,
            [
                (RequestKind::GetSubscription, 500),
                (RequestKind::GetSubscription, 200),
                (RequestKind::Pull, 503),
                (RequestKind::Pull, 503),
                (RequestKind::Pull, 200),
                (RequestKind::Acknowledge, 503),
                (RequestKind::Acknowledge, 200),
                (RequestKind::Pull, 429),
                (RequestKind::Pull, 200),
                (RequestKind::Pull, 400),
            ]
        );
        Ok(())
    }

    #[tokio::test]
    async fn requests_are_recorded_with_headers_and_authorization_can_be_required()
    -> anyhow::Result<()> {
        let bus = FakePubSub::start("p", "s", "t").await?;
        bus.require_authorization(Some("Bearer good"));
        let http = reqwest::Client::new();
        let url = format!("{}:pull", bus.subscription_url());
        let body = json!({"maxMessages": 3, "returnImmediately": true});
        let refused = http.post(&url).json(&body).send().await?;
        assert_eq!(refused.status(), 401);
        let accepted = http
            .post(&url)
            .bearer_auth("good")
            .json(&body)
            .send()
            .await?;
        assert_eq!(accepted.status(), 200);
        let requests = bus.requests_of(RequestKind::Pull);
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].authorization(), None);
        assert_eq!(requests[1].authorization(), Some("Bearer good"));
        assert_eq!(requests[1].json(), body);
        assert_eq!(requests[1].method, "POST");
        assert!(requests[1].path.ends_with("/subscriptions/s:pull"));
        assert!(requests[0].at <= requests[1].at);
        // An escaped colon is the same method.
        let escaped = format!("{}%3Apull", bus.subscription_url());
        let answer = http
            .post(&escaped)
            .bearer_auth("good")
            .json(&body)
            .send()
            .await?;
        assert_eq!(answer.status(), 200);
        Ok(())
    }

    #[tokio::test]
    async fn the_ack_hook_sees_each_acknowledge_and_records_violations() -> anyhow::Result<()> {
        let bus = FakePubSub::start("p", "s", "t").await?;
        bus.on_ack(|messages| {
            for message in messages {
                let (source, id) = message
                    .cloudevent_source_and_id()
                    .ok_or("not a CloudEvent")?;
                if id.starts_with("bad") {
                    return Err(format!("{source} {id} not stored"));
                }
            }
            Ok(())
        });
        let client = Client::new(&bus);
        bus.publish(binary_cloudevent("good-1", SOURCE, "t", json!({})));
        bus.publish(structured_cloudevent("bad-2", SOURCE, "t", json!({})));
        let pulled = client.pull(10).await?;
        assert_eq!(client.ack(&ack_ids(&pulled)[..1]).await?, 200);
        assert!(bus.violations().is_empty());
        assert_eq!(client.ack(&ack_ids(&pulled)[1..]).await?, 200);
        let violations = bus.violations();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("bad-2"), "{violations:?}");
        assert_eq!(bus.ack_checks(), 2);
        // The acknowledge itself went through.
        assert_eq!(bus.outstanding(), 0);
        // An acknowledge of nothing does not call the hook.
        assert_eq!(client.ack(&["nothing"]).await?, 200);
        assert_eq!(bus.ack_checks(), 2);
        Ok(())
    }

    #[tokio::test]
    async fn answers_can_be_delayed() -> anyhow::Result<()> {
        let bus = FakePubSub::start("p", "s", "t").await?;
        bus.set_delay(Duration::from_millis(200));
        let started = Instant::now();
        assert_eq!(Client::new(&bus).get().await?.0, 200);
        assert!(started.elapsed() >= Duration::from_millis(200));
        Ok(())
    }

    #[test]
    fn cloudevent_helpers_and_times() {
        let binary = binary_cloudevent("e-1", SOURCE, "order.created.v1", json!({"a": 1}));
        assert_eq!(binary.attribute("ce-specversion"), Some("1.0"));
        assert_eq!(binary.attribute("ce-type"), Some("order.created.v1"));
        assert_eq!(binary.data, br#"{"a":1}"#);
        assert_eq!(
            binary.cloudevent_source_and_id(),
            Some((SOURCE.to_owned(), "e-1".to_owned()))
        );
        let structured = structured_cloudevent("e-2", SOURCE, "order.created.v1", json!({"a": 1}));
        assert_eq!(
            structured.cloudevent_source_and_id(),
            Some((SOURCE.to_owned(), "e-2".to_owned()))
        );
        assert_eq!(
            binary
                .clone()
                .without_attribute("ce-id")
                .cloudevent_source_and_id(),
            None
        );

        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // 2000-02-29
        assert_eq!(rfc3339_millis(t), "2000-02-29T00:00:00.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_796_367_600); // 2026-12-04T07:00:00Z
        assert_eq!(rfc3339_millis(t), "2026-12-04T07:00:00.000Z");
    }
}
