//! The work loop against a scripted transport and the in-memory store: outcomes, retries on a
//! moving clock, dead letters, pausing, and two concurrent ticks.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use eventplane_core::{KvStoreExt, MemoryStore, TenantId};
use eventplane_eventstore::{EventData, NewEvent, store_event};
use serde_json::{Value, json};

use super::*;
use crate::{SubscriptionInput, create};

const T0: u64 = 1_700_000_000_000;
/// Seven days, the default.
const RETENTION_MS: u64 = 7 * 24 * 3_600_000;

/// Answers each URL's requests from a script (then `200`), and records every request.
#[derive(Default)]
struct Script {
    answers: Mutex<HashMap<String, VecDeque<Response>>>,
    sent: Mutex<Vec<Outgoing>>,
}

impl Script {
    fn answer(&self, url: &str, responses: Vec<Response>) {
        self.answers
            .lock()
            .expect("lock")
            .insert(url.to_owned(), responses.into());
    }
    fn sent_to(&self, url: &str) -> Vec<Outgoing> {
        let sent = self.sent.lock().expect("lock");
        sent.iter().filter(|r| r.url == url).cloned().collect()
    }
}

impl Transport for Script {
    fn oauth2_authorization(&self, _auth: &SinkAuth) -> Result<String, String> {
        Ok("Bearer from-oauth".into())
    }
    fn send(&self, request: &Outgoing, _timeout_ms: u64) -> Response {
        self.sent.lock().expect("lock").push(request.clone());
        self.answers
            .lock()
            .expect("lock")
            .get_mut(&request.url)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Response::Status {
                status: 200,
                retry_after: None,
                body: b"ok".to_vec(),
            })
    }
}

fn status(code: u16) -> Response {
    Response::Status {
        status: code,
        retry_after: None,
        body: format!("status {code}").into_bytes(),
    }
}

struct World {
    store: MemoryStore,
    tenant: TenantId,
    script: Script,
    clock: AtomicU64,
    random: AtomicU64,
}

impl World {
    fn new() -> Self {
        Self::on(MemoryStore::spin_sqlite_like())
    }
    fn on(store: MemoryStore) -> Self {
        Self {
            store,
            tenant: "acme".parse().expect("tenant"),
            script: Script::default(),
            clock: AtomicU64::new(T0),
            random: AtomicU64::new(1),
        }
    }
    fn set_time(&self, ms: u64) {
        self.clock.store(ms, Ordering::SeqCst);
    }
    fn env(&self) -> (impl Fn() -> u64 + '_, impl Fn() -> u64 + '_) {
        (
            || self.clock.load(Ordering::SeqCst),
            // Jitter 0.5 (no change) in the high bits, a fresh holder id in the low ones.
            || (1u64 << 63) | self.random.fetch_add(1, Ordering::SeqCst),
        )
    }
    fn tick(&self) -> Counts {
        self.with_env(|env| tick(env, 5_000)).expect("tick")
    }
    fn subscribe(&self, body: Value) -> Subscription {
        let input = SubscriptionInput::parse(&body).expect("valid subscription");
        create(&self.store, &self.tenant, input, [9; 32], T0)
            .expect("created")
            .subscription
    }
    fn publish(&self, id: &str, type_name: &str) -> StoredEvent {
        let event = NewEvent {
            application: "shop".into(),
            app_id: "app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f".parse().expect("app"),
            source: "/applications/shop".into(),
            event_id: id.into(),
            type_name: type_name.into(),
            type_version: Some("v1".into()),
            spec_version: "1.0".into(),
            time: None,
            datacontenttype: Some("application/json".into()),
            dataschema: None,
            subject: None,
            extensions: [("region".to_owned(), json!("eu"))].into(),
            data: EventData::Json(json!({"orderId": id})),
        };
        store_event(
            &self.store,
            &self.tenant,
            event,
            self.clock.load(Ordering::SeqCst),
        )
        .expect("stored")
        .event
    }
    fn attempts(&self, sub: &Subscription, event: &StoredEvent) -> Vec<Attempt> {
        store::attempts(&self.store, &self.tenant, &sub.id, &event.id).expect("attempts")
    }
}

fn sink(url: &str) -> Value {
    json!({"name": "s", "sink": {"url": url}, "filter": {"application": "shop"}})
}

#[test]
fn an_event_is_delivered_once_to_each_matching_subscription() {
    let w = World::new();
    let a = w.subscribe(sink("https://a.example/in"));
    let b = w.subscribe(json!({"name": "b", "sink": {"url": "https://b.example/in"},
                               "filter": {"typePrefix": "order.", "attributes": {"region": "eu"}}}));
    w.subscribe(json!({"name": "c", "sink": {"url": "https://c.example/in"},
                       "filter": {"typeSuffix": ".v2"}}));
    let event = w.publish("1", "order.created.v1");
    let counts = w.tick();
    assert_eq!((counts.events, counts.deliveries), (1, 2));
    assert_eq!((counts.attempts, counts.succeeded), (2, 2));
    for (sub, url) in [(&a, "https://a.example/in"), (&b, "https://b.example/in")] {
        let sent = w.script.sent_to(url);
        assert_eq!(sent.len(), 1, "{url}");
        assert_eq!(sent[0].header("ce-id"), Some("1"));
        assert_eq!(sent[0].header("webhook-id"), Some(event.id.as_str()));
        let log = w.attempts(sub, &event);
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].outcome, AttemptOutcome::Succeeded);
        assert_eq!(log[0].trigger, Trigger::First);
        assert_eq!(log[0].response_status, Some(200));
    }
    assert!(w.script.sent_to("https://c.example/in").is_empty());
    // Nothing left to do.
    assert_eq!(w.tick(), Counts::default());
}

#[test]
fn failures_are_retried_after_the_backoff_until_one_succeeds() {
    let w = World::new();
    let sub = w.subscribe(sink("https://a.example/in"));
    w.script.answer(
        "https://a.example/in",
        vec![status(503), status(503), status(200)],
    );
    let event = w.publish("1", "order.created.v1");
    assert_eq!(w.tick().retried, 1);
    // The first retry is due after PT5S (jitter 0.5: exactly), the second after 10 s more.
    w.set_time(T0 + 4_999);
    assert_eq!(w.tick().attempts, 0);
    w.set_time(T0 + 5_000);
    assert_eq!(w.tick().retried, 1);
    w.set_time(T0 + 15_000);
    assert_eq!(w.tick().succeeded, 1);
    let log = w.attempts(&sub, &event);
    let summary: Vec<_> = log
        .iter()
        .map(|a| (a.attempt, a.response_status, a.trigger))
        .collect();
    assert_eq!(
        summary,
        [
            (1, Some(503), Trigger::First),
            (2, Some(503), Trigger::Retry),
            (3, Some(200), Trigger::Retry)
        ]
    );
    assert_eq!(
        log[0].next_attempt_at.map(Timestamp::unix_ms),
        Some(T0 + 5_000)
    );
    assert_eq!(log[0].response_body.as_deref(), Some("status 503"));
}

#[test]
fn retry_after_on_429_sets_the_next_attempt() {
    let w = World::new();
    let sub = w.subscribe(sink("https://a.example/in"));
    w.script.answer(
        "https://a.example/in",
        vec![Response::Status {
            status: 429,
            retry_after: Some("2".into()),
            body: Vec::new(),
        }],
    );
    let event = w.publish("1", "order.created.v1");
    w.tick();
    w.set_time(T0 + 1_999);
    assert_eq!(w.tick().attempts, 0);
    w.set_time(T0 + 2_000);
    assert_eq!(w.tick().succeeded, 1);
    assert_eq!(w.attempts(&sub, &event).len(), 2);
}

#[test]
fn a_400_is_dead_lettered_at_once_and_sent_to_the_dead_letter_sink() {
    let w = World::new();
    let sub = w.subscribe(json!({"name": "s", "sink": {"url": "https://a.example/in"},
        "filter": {"application": "shop"},
        "delivery": {"deadLetterSink": {"url": "https://dlq.example/in"}}}));
    w.script.answer("https://a.example/in", vec![status(400)]);
    let event = w.publish("1", "order.created.v1");
    let counts = w.tick();
    assert_eq!((counts.attempts, counts.dead_lettered), (1, 1));
    w.set_time(T0 + 3_600_000);
    assert_eq!(w.tick().attempts, 0, "no retry");
    let dlq = w.script.sent_to("https://dlq.example/in");
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].header("ce-deliveryattempts"), Some("1"));
    assert!(
        dlq[0]
            .header("ce-deadletterreason")
            .is_some_and(|r| r.contains("400")),
        "{dlq:?}"
    );
    let state = delivery::get(&w.store, &w.tenant, &sub.id, &event.id).expect("state");
    assert_eq!(
        state.map(|s| s.status),
        Some(delivery::Status::DeadLettered)
    );
}

#[test]
fn exhausted_retries_end_as_a_dead_letter_and_410_pauses() {
    let w = World::new();
    let sub = w.subscribe(json!({"name": "s", "sink": {"url": "https://a.example/in"},
        "filter": {"application": "shop"}, "delivery": {"retry": 1}}));
    w.script.answer(
        "https://a.example/in",
        vec![Response::Timeout, Response::Connection],
    );
    let event = w.publish("1", "order.created.v1");
    w.tick();
    w.set_time(T0 + 60_000);
    assert_eq!(w.tick().dead_lettered, 1);
    let classes: Vec<_> = w
        .attempts(&sub, &event)
        .iter()
        .map(|a| a.error_class.map(|c| c.as_str()))
        .collect();
    assert_eq!(classes, [Some("timeout"), Some("connection")]);

    let gone = w.subscribe(sink("https://gone.example/in"));
    w.script
        .answer("https://gone.example/in", vec![status(410)]);
    w.publish("2", "order.created.v1");
    w.tick();
    let paused = store::get(&w.store, &w.tenant, &gone.id).expect("subscription");
    assert!(!paused.is_active());
}

#[test]
fn two_concurrent_ticks_make_each_attempt_once() {
    concurrent_ticks_make_each_attempt_once(MemoryStore::spin_sqlite_like());
}

#[test]
fn two_concurrent_ticks_make_each_attempt_once_when_every_swap_reports_failure() {
    concurrent_ticks_make_each_attempt_once(MemoryStore::spin_redis_like());
}

fn concurrent_ticks_make_each_attempt_once(store: MemoryStore) {
    let w = Arc::new(World::on(store));
    w.subscribe(sink("https://a.example/in"));
    for i in 0..20 {
        w.publish(&i.to_string(), "order.created.v1");
    }
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (w, barrier) = (w.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                w.tick()
            })
        })
        .collect();
    let succeeded: u64 = threads
        .into_iter()
        .map(|t| t.join().expect("thread").succeeded)
        .sum();
    let mut ids: Vec<String> = w
        .script
        .sent_to("https://a.example/in")
        .iter()
        .filter_map(|r| r.header("ce-id").map(str::to_owned))
        .collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!((before, ids.len(), succeeded), (20, 20, 20));
}

#[test]
fn a_redelivered_dead_letter_gets_a_new_round() {
    let w = World::new();
    let sub = w.subscribe(sink("https://a.example/in"));
    w.script.answer("https://a.example/in", vec![status(400)]);
    let event = w.publish("1", "order.created.v1");
    w.tick();
    let redelivered = redeliver(
        &w.store,
        &w.tenant,
        &sub.id,
        &event.id,
        Trigger::Redeliver,
        T0,
    )
    .expect("redeliver");
    assert!(redelivered);
    assert_eq!(w.tick().succeeded, 1);
    let triggers: Vec<_> = w.attempts(&sub, &event).iter().map(|a| a.trigger).collect();
    assert_eq!(triggers, [Trigger::First, Trigger::Redeliver]);
}

#[test]
fn replay_files_matching_events_since_a_time_in_acceptance_order() {
    let w = World::new();
    let all = w.subscribe(sink("https://a.example/in"));
    for i in 0..6u64 {
        w.set_time(T0 + i * 1_000);
        let type_name = if i % 2 == 0 {
            "order.created.v1"
        } else {
            "order.cancelled.v1"
        };
        w.publish(&i.to_string(), type_name);
    }
    w.tick();
    assert_eq!(w.script.sent_to("https://a.example/in").len(), 6);
    // A subscription created afterwards, for created orders only, replays from the third event.
    let created = w.subscribe(
        json!({"name": "created", "sink": {"url": "https://b.example/in"},
                                     "filter": {"types": ["order.created.v1"]}}),
    );
    let outcome = replay(
        &w.store,
        &w.tenant,
        &created,
        T0 + 2_000,
        Some(T0 + 5_000),
        None,
        T0,
    )
    .expect("replay");
    assert_eq!((outcome.replayed, outcome.examined), (2, 3), "{outcome:?}");
    assert_eq!(outcome.continue_after_sequence, None);
    // Replaying the first subscription re-sends everything from T0 + 3 s, in order.
    let again = replay(&w.store, &w.tenant, &all, T0 + 3_000, None, None, T0).expect("replay");
    assert_eq!(again.replayed, 3);
    w.tick();
    let ids = |url: &str| -> Vec<String> {
        w.script
            .sent_to(url)
            .iter()
            .filter_map(|r| r.header("ce-id").map(str::to_owned))
            .collect()
    };
    assert_eq!(ids("https://b.example/in"), ["2", "4"]);
    assert_eq!(
        ids("https://a.example/in"),
        ["0", "1", "2", "3", "4", "5", "3", "4", "5"]
    );
    let triggers: Vec<_> = w
        .attempts(&created, &w.publish("2", "order.created.v1"))
        .iter()
        .map(|a| a.trigger)
        .collect();
    assert_eq!(triggers, [Trigger::Replay]);
}

impl World {
    fn with_env<T>(&self, work: impl FnOnce(&Env<'_>) -> T) -> T {
        let (now, random) = self.env();
        let env = Env {
            store: &self.store,
            tenant: &self.tenant,
            transport: &self.script,
            now_ms: &now,
            random: &random,
            lease_ms: 60_000,
            retention_ms: RETENTION_MS,
        };
        work(&env)
    }
    fn hand_off(&self, event: Option<&EventId>) -> Result<Counts, Error> {
        self.with_env(|env| deliver_event(env, event, 10, T0 + 1_000_000))
    }
    /// The members of the retry queue's buckets from `T0` to an hour later.
    fn queued(&self) -> Vec<String> {
        let start = bucket_of(T0);
        (0..60)
            .scan(start, |bucket, _| {
                let this = *bucket;
                *bucket = bucket.next();
                Some(this)
            })
            .flat_map(|bucket| {
                self.store
                    .get_json::<std::collections::BTreeSet<String>>(&eventplane_core::keys::due(
                        &self.tenant,
                        RETRIES,
                        bucket,
                    ))
                    .expect("read")
                    .unwrap_or_default()
            })
            .collect()
    }
}

#[test]
fn a_handed_off_event_is_attempted_at_once_without_the_due_queue() {
    let w = World::new();
    let sub = w.subscribe(sink("https://a.example/in"));
    let event = w.publish("1", "order.created.v1");
    let counts = w.hand_off(Some(&event.id)).expect("delivered");
    assert_eq!((counts.deliveries, counts.succeeded), (1, 1));
    assert_eq!(w.attempts(&sub, &event).len(), 1);
    assert!(
        w.queued().is_empty(),
        "a delivered first attempt is never queued"
    );
    // The tick that later takes the event from the log sends nothing again and queues nothing.
    let later = w.tick();
    assert_eq!((later.events, later.deliveries, later.attempts), (1, 0, 0));
    assert!(w.queued().is_empty());
    assert_eq!(w.script.sent_to("https://a.example/in").len(), 1);
    // A second hand-off of the same event (a retried request) sends nothing either.
    let again = w.hand_off(Some(&event.id)).expect("again");
    assert_eq!(again.attempts, 0);
    let missing: EventId = "evt_00000000000000000000000000000009".parse().expect("id");
    assert_eq!(
        w.hand_off(Some(&missing)).expect_err("unknown").status(),
        404
    );
}

#[test]
fn a_handed_off_event_that_fails_is_queued_for_its_retry() {
    let w = World::new();
    w.script.answer("https://a.example/in", vec![status(503)]);
    let sub = w.subscribe(sink("https://a.example/in"));
    let event = w.publish("1", "order.created.v1");
    let counts = w.hand_off(Some(&event.id)).expect("attempted");
    assert_eq!((counts.attempts, counts.retried), (1, 1));
    assert_eq!(w.queued().len(), 1);
    // Default backoff PT5S: due five seconds later, made by a tick (or a hand-off's drain).
    w.set_time(T0 + 5_000);
    let drained = w.hand_off(None).expect("drain");
    assert_eq!((drained.attempts, drained.succeeded), (1, 1));
    assert_eq!(w.attempts(&sub, &event).len(), 2);
    assert!(w.queued().is_empty());
}

#[test]
fn a_hand_off_that_died_mid_attempt_is_finished_by_the_tick_after_its_lease() {
    let w = World::new();
    let sub = w.subscribe(sink("https://a.example/in"));
    let event = w.publish("1", "order.created.v1");
    // The hand-off created the state and claimed it, then its instance died.
    delivery::ensure(&w.store, &w.tenant, &sub.id, &event.id, Trigger::First, T0).expect("state");
    delivery::claim(&w.store, &w.tenant, &sub.id, &event.id, "dead", T0, 60_000)
        .expect("claim")
        .expect("claimed");
    // The tick files it for when the lease expires, and sends nothing before.
    let first = w.tick();
    assert_eq!((first.events, first.deliveries, first.attempts), (1, 1, 0));
    w.set_time(T0 + 30_000);
    assert_eq!(w.tick().attempts, 0);
    w.set_time(T0 + 61_000);
    let after = w.tick();
    assert_eq!((after.attempts, after.succeeded), (1, 1));
    assert_eq!(w.script.sent_to("https://a.example/in").len(), 1);
}

#[test]
fn a_hand_off_whose_event_no_subscription_receives_only_drains() {
    let w = World::new();
    w.script.answer("https://a.example/in", vec![status(503)]);
    let sub = w.subscribe(json!({
        "name": "orders",
        "sink": {"url": "https://a.example/in"},
        "filter": {"typePrefix": "order."},
    }));
    let order = w.publish("1", "order.created.v1");
    w.hand_off(Some(&order.id)).expect("attempted");
    let other = w.publish("2", "invoice.paid.v1");
    w.set_time(T0 + 5_000);
    let counts = w.hand_off(Some(&other.id)).expect("drained");
    assert_eq!(
        (counts.deliveries, counts.attempts, counts.succeeded),
        (0, 1, 1)
    );
    assert_eq!(w.attempts(&sub, &order).len(), 2);
}

#[test]
fn expired_events_go_with_their_finished_deliveries_and_unfinished_ones_end_as_dead_letters() {
    let w = World::new();
    w.script
        .answer("https://b.example/in", vec![status(503), status(503)]);
    let a = w.subscribe(sink("https://a.example/in"));
    let b = w.subscribe(sink("https://b.example/in"));
    let c = w.subscribe(sink("https://c.example/in"));
    let event = w.publish("1", "order.created.v1");
    let first = w.tick();
    assert_eq!((first.succeeded, first.retried), (2, 1));
    store::delete(&w.store, &w.tenant, &c.id, T0 + 1_000).expect("deleted");
    let deleted_index =
        eventplane_core::keys::index(&w.tenant, crate::retention::DELETED_SUBSCRIPTIONS);
    let listed = |w: &World| {
        eventplane_core::index::all_members(&w.store, &deleted_index).expect("deleted list")
    };
    assert_eq!(listed(&w).len(), 1);

    // One millisecond before the retention period ends, nothing goes.
    let early =
        crate::retention::purge(&w.store, &w.tenant, RETENTION_MS, T0 + RETENTION_MS - 1, 10);
    assert_eq!(early.expect("purge").events, 0);
    assert!(
        get_event(&w.store, &w.tenant, &event.id)
            .expect("read")
            .is_some()
    );

    w.set_time(T0 + RETENTION_MS);
    let purged = w.tick();
    assert_eq!(purged.purged, 1);
    assert!(
        get_event(&w.store, &w.tenant, &event.id)
            .expect("read")
            .is_none()
    );
    for finished in [&a, &c] {
        assert!(
            delivery::get(&w.store, &w.tenant, &finished.id, &event.id)
                .expect("read")
                .is_none()
        );
        assert!(w.attempts(finished, &event).is_empty());
    }
    // b was waiting for a retry: that attempt found the event gone and ended it visibly.
    assert_eq!(purged.dead_lettered, 1);
    let dead = store::dead_letter(&w.store, &w.tenant, &b.id, &event.id).expect("dead letter");
    assert!(dead.reason.contains("no longer retained"), "{dead:?}");
    // The deleted subscription stays listed for one more retention period from its deletion.
    assert_eq!(listed(&w).len(), 1);
    w.set_time(T0 + 1_000 + RETENTION_MS + 1);
    w.tick();
    assert!(listed(&w).is_empty());
    // That dead letter stays: it is what tells the user the event was never delivered.
    assert_eq!(w.tick().purged, 0);
    assert!(store::dead_letter(&w.store, &w.tenant, &b.id, &event.id).is_ok());
}
