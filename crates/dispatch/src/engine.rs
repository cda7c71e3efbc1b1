//! The dispatcher's work, over any [`KvStore`] and a [`Transport`] that sends requests (the
//! component's is Spin's outbound HTTP; tests script one).
//!
//! - [`accept_pending`] reads the tenant's event log from its cursor and, for each event and
//!   each active subscription whose filter it passes, creates the delivery's state and files it
//!   on the due queue ([`RETRIES`](crate::keys::RETRIES)), *before* moving the log's cursor:
//!   nothing lives only in memory, and a worker that dies in between only makes the next one
//!   do the same again (creation is idempotent).
//! - [`run_due`] walks the due queue (by minute, from its cursor: no scan of the store) and makes
//!   each due attempt: claim with a lease, send, record the attempt, then retry later, finish,
//!   or dead-letter (posting to the dead-letter sink, pausing the subscription on `410`).
//! - [`tick`] does both within a time budget.

use eventplane_core::keys::{self, DueBucket};
use eventplane_core::{Error, EventId, KvStore, SubscriptionId, TenantId};
use eventplane_eventstore::due::{self, DueItem};
use eventplane_eventstore::{Patience, StoredEvent, advance, event_key, get_event, pending};
use serde::Serialize;
use serde_json::json;

use crate::delivery::{self, Claim, Finished};
use crate::filter::FilterSubject;
use crate::keys::{RETRIES, delivery as delivery_key, due_member, parse_due_member};
use crate::model::{SinkAuth, Subscription};
use crate::outgoing::{Outgoing, build};
use crate::policy::{AttemptResult, Decision, classify, decide};
use crate::records::{
    Attempt, AttemptOutcome, CloudEventRef, DeadLetter, Trigger, response_excerpt,
};
use crate::store::{self, active_for_reading_ahead, add_dead_letter};
use crate::time::Timestamp;

/// What a [`Transport`] got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The sink answered.
    Status {
        /// The status code.
        status: u16,
        /// Its `Retry-After` header, if any.
        retry_after: Option<String>,
        /// The start of its body (at least the first KiB, if it was that long).
        body: Vec<u8>,
    },
    /// No answer within the timeout.
    Timeout,
    /// No connection (refused, unresolvable, reset before an answer).
    Connection,
    /// Another transport failure (a host the application may not call, a broken response).
    Transport(String),
}

/// Sends delivery requests.
pub trait Transport {
    /// The `Authorization` value for an OAuth 2.0 sink: a token from its token endpoint
    /// (reused until it expires), or why none could be had.
    fn oauth2_authorization(&self, auth: &SinkAuth) -> Result<String, String>;
    /// Sends `request` and waits at most `timeout_ms` for the answer.
    fn send(&self, request: &Outgoing, timeout_ms: u64) -> Response;
}

/// What the dispatcher works with.
pub struct Env<'a> {
    /// The key-value store.
    pub store: &'a dyn KvStore,
    /// The tenant whose work this is.
    pub tenant: &'a TenantId,
    /// How requests go out.
    pub transport: &'a dyn Transport,
    /// The clock (Unix ms).
    pub now_ms: &'a dyn Fn() -> u64,
    /// Random numbers (for jitter and lease holders).
    pub random: &'a dyn Fn() -> u64,
    /// How long a claimed attempt is leased (`delivery_lease_seconds`).
    pub lease_ms: u64,
    /// How long events are kept (`event_retention_hours`); see [`crate::retention`].
    pub retention_ms: u64,
}

impl Env<'_> {
    fn now(&self) -> u64 {
        (self.now_ms)()
    }

    fn jitter(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let unit = ((self.random)() >> 11) as f64 / (1u64 << 53) as f64;
        unit
    }
}

/// What a call did, for the tick's JSON answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Events taken from the log.
    pub events: u64,
    /// Deliveries filed (event × matching subscription).
    pub deliveries: u64,
    /// Attempts made.
    pub attempts: u64,
    /// Attempts that delivered.
    pub succeeded: u64,
    /// Attempts that failed and were scheduled again.
    pub retried: u64,
    /// Deliveries given up (dead letters).
    pub dead_lettered: u64,
    /// Events removed because their retention period had passed.
    pub purged: u64,
}

impl Counts {
    fn add(&mut self, other: Self) {
        self.events += other.events;
        self.deliveries += other.deliveries;
        self.attempts += other.attempts;
        self.succeeded += other.succeeded;
        self.retried += other.retried;
        self.dead_lettered += other.dead_lettered;
        self.purged += other.purged;
    }
}

fn bucket_of(ms: u64) -> DueBucket {
    DueBucket::containing(ms / 1000)
}

/// Files the deliveries of one stored event that `subscriptions` (the tenant's active ones)
/// receive: creates each delivery's state (`Pending`, if it has none yet) and, unless it is
/// finished already (the gateway's hand-off usually delivered it), puts it on the due queue
/// when its next attempt is due (or its lease expires). Returns the due items filed.
pub fn file_event(
    env: &Env<'_>,
    event: &StoredEvent,
    subscriptions: &[Subscription],
    trigger: Trigger,
) -> Result<Vec<DueItem>, Error> {
    let subject = FilterSubject::from_event(event);
    let now = env.now();
    let mut filed = Vec::new();
    for subscription in subscriptions {
        if !subscription.filter.matches(&subject) {
            continue;
        }
        let state = delivery::ensure(
            env.store,
            env.tenant,
            &subscription.id,
            &event.id,
            trigger,
            now,
        )?;
        let due_at = match state.status {
            delivery::Status::Succeeded | delivery::Status::DeadLettered => continue,
            delivery::Status::Pending => state.next_attempt_at_ms,
            delivery::Status::Leased => state.lease.as_ref().map_or(now, |lease| lease.until_ms),
        };
        filed.push(file_due(
            env.store,
            env.tenant,
            event,
            &subscription.id,
            due_at.max(now),
        )?);
    }
    Ok(filed)
}

/// The hand-off of a just-accepted event (`None`: only the drain): makes the first attempt of
/// each of its deliveries at once, then up to `drain` other due attempts before `deadline_ms`.
/// `404` if the event is not stored.
///
/// A first attempt goes on the due queue only if it has to be retried: at a thousand events a
/// second, filing every delivery there first would make every hand-off rewrite the same
/// minute's bucket. Nothing is lost if this worker dies half-way: the delivery's state is in
/// the store before the attempt, and the tick takes every event from the event log
/// ([`accept_pending`]) and files whatever is not finished.
pub fn deliver_event(
    env: &Env<'_>,
    event_id: Option<&EventId>,
    drain: usize,
    deadline_ms: u64,
) -> Result<Counts, Error> {
    let mut counts = Counts::default();
    if let Some(event_id) = event_id {
        // The event and the subscriptions (and the retry queue's cursor, for the drain after)
        // in one round trip on a store that reads ahead; the subscriptions' records with their
        // delivery states in a second. The cursor read this early is as good as one read
        // later: a retry queued meanwhile is found by the next drain or tick.
        let mut next_reads = vec![
            event_key(env.tenant, event_id),
            crate::keys::subscriptions(env.tenant),
        ];
        if drain > 0 {
            next_reads.push(keys::due_cursor(env.tenant, RETRIES));
        }
        env.store.will_read(&next_reads);
        let Some(event) = get_event(env.store, env.tenant, event_id)? else {
            return Err(Error::not_found(format!(
                "the event {event_id} is not stored"
            )));
        };
        let subscriptions = active_for_reading_ahead(
            env.store,
            env.tenant,
            &FilterSubject::from_event(&event),
            &|subscription| Some(delivery_key(env.tenant, subscription, &event.id)),
        )?;
        for subscription in &subscriptions {
            counts.deliveries += 1;
            let holder = format!("{:016x}", (env.random)());
            let now = env.now();
            let claimed = delivery::ensure_claimed(
                env.store,
                env.tenant,
                &subscription.id,
                &event.id,
                Trigger::First,
                &holder,
                now,
                env.lease_ms,
            )?;
            // `None`: finished already, or another worker is on it (it owns what follows).
            if let Some(claim) = claimed {
                let slot = Slot {
                    member: due_member(event.sequence, &subscription.id, &event.id),
                    bucket: None,
                };
                counts.add(make_attempt(env, subscription, &event, &claim, &slot, now)?);
            }
        }
    }
    if drain > 0 && env.now() < deadline_ms {
        counts.add(run_due(env, drain, deadline_ms)?);
    }
    Ok(counts)
}

/// Takes up to `limit` events from the tenant's event log and files their deliveries, then
/// moves the log's cursor past them.
pub fn accept_pending(env: &Env<'_>, limit: usize) -> Result<Counts, Error> {
    let batch = pending(env.store, env.tenant, limit, env.now())?;
    let mut counts = Counts::default();
    if batch.entries.is_empty() {
        return Ok(counts);
    }
    let subscriptions = store::active(env.store, env.tenant)?;
    for entry in &batch.entries {
        // An event whose record is gone (retention) has nothing left to deliver.
        if let Some(event) = get_event(env.store, env.tenant, &entry.event_id)? {
            counts.deliveries +=
                file_event(env, &event, &subscriptions, Trigger::First)?.len() as u64;
            counts.events += 1;
        }
    }
    advance(env.store, env.tenant, &batch)?;
    Ok(counts)
}

/// Makes the due attempts of the tenant's due queue, at most `limit`, stopping once `now`
/// passes `deadline_ms`.
pub fn run_due(env: &Env<'_>, limit: usize, deadline_ms: u64) -> Result<Counts, Error> {
    let items = due::scan(env.store, env.tenant, RETRIES, bucket_of(env.now()), limit)?;
    let mut counts = Counts::default();
    for item in items {
        if env.now() >= deadline_ms {
            break;
        }
        counts.add(attempt_item(env, &item)?);
    }
    Ok(counts)
}

/// Removes expired events (at most [`MAX_PURGE_PER_CALL`](crate::retention::MAX_PURGE_PER_CALL)),
/// then accepts pending events and makes due attempts until `budget_ms` has passed.
pub fn tick(env: &Env<'_>, budget_ms: u64) -> Result<Counts, Error> {
    let deadline = env.now().saturating_add(budget_ms);
    let purged = crate::retention::purge(
        env.store,
        env.tenant,
        env.retention_ms,
        env.now(),
        crate::retention::MAX_PURGE_PER_CALL,
    )?;
    let mut counts = Counts {
        purged: purged.events,
        ..Counts::default()
    };
    loop {
        let accepted = accept_pending(env, 100)?;
        counts.add(accepted);
        let ran = run_due(env, 100, deadline)?;
        counts.add(ran);
        if env.now() >= deadline || (accepted.events == 0 && ran.attempts == 0) {
            return Ok(counts);
        }
    }
}

/// Where a delivery about to be attempted is on the due queue.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    /// Its member in the due queue ([`due_member`]).
    member: String,
    /// The bucket it is filed in; `None` if it is not on the queue (a hand-off's first attempt).
    bucket: Option<DueBucket>,
}

/// Takes the delivery off the due queue, if it is on it.
fn drop_slot(env: &Env<'_>, slot: &Slot) -> Result<(), Error> {
    if let Some(bucket) = slot.bucket {
        let item = DueItem {
            bucket,
            member: slot.member.clone(),
        };
        due::remove(env.store, env.tenant, RETRIES, &item, bucket_of(env.now()))?;
    }
    Ok(())
}

/// Makes the attempt a due item stands for, if it is due and nobody else is making it.
pub fn attempt_item(env: &Env<'_>, item: &DueItem) -> Result<Counts, Error> {
    let slot = Slot {
        member: item.member.clone(),
        bucket: Some(item.bucket),
    };
    let Some((subscription_id, event_id)) = parse_due_member(&item.member) else {
        return drop_slot(env, &slot).map(|()| Counts::default());
    };
    attempt(env, &subscription_id, &event_id, &slot)
}

/// Makes the next attempt of delivering `event_id` to `subscription_id`, if it is due and
/// nobody else is making it; `slot` says where it is on the due queue.
fn attempt(
    env: &Env<'_>,
    subscription_id: &SubscriptionId,
    event_id: &EventId,
    slot: &Slot,
) -> Result<Counts, Error> {
    let state = delivery::get(env.store, env.tenant, subscription_id, event_id)?;
    let finished = state.as_ref().is_none_or(|s| {
        matches!(
            s.status,
            delivery::Status::Succeeded | delivery::Status::DeadLettered
        )
    });
    if finished {
        return drop_slot(env, slot).map(|()| Counts::default());
    }
    let subscription = match store::get(env.store, env.tenant, subscription_id) {
        Ok(subscription) => subscription,
        Err(Error::NotFound(_)) => return drop_slot(env, slot).map(|()| Counts::default()),
        Err(err) => return Err(err),
    };
    if !subscription.is_active() {
        // Paused: the delivery waits on the queue until the subscription resumes.
        if slot.bucket.is_none() {
            queue(env, slot, env.now())?;
        }
        return Ok(Counts::default());
    }
    let holder = format!("{:016x}", (env.random)());
    let now = env.now();
    let Some(claim) = delivery::claim(
        env.store,
        env.tenant,
        subscription_id,
        event_id,
        &holder,
        now,
        env.lease_ms,
    )?
    else {
        return Ok(Counts::default()); // not due yet, or someone else is on it
    };
    let Some(event) = get_event(env.store, env.tenant, event_id)? else {
        let reason = "the event is no longer retained".to_owned();
        let decision = Decision::DeadLetter { reason };
        return conclude(
            env,
            slot,
            &subscription,
            None,
            &claim,
            &decision,
            None,
            None,
            now,
        );
    };
    make_attempt(env, &subscription, &event, &claim, slot, now)
}

/// Sends the attempt `claim` holds (made from `now`) and records its outcome.
fn make_attempt(
    env: &Env<'_>,
    subscription: &Subscription,
    event: &StoredEvent,
    claim: &Claim,
    slot: &Slot,
    now: u64,
) -> Result<Counts, Error> {
    let sent = send(env, subscription, event);
    let done = env.now();
    let (result, body) = match &sent {
        Response::Status {
            status,
            retry_after,
            body,
        } => (
            AttemptResult::Response {
                status: *status,
                retry_after: retry_after.as_deref(),
            },
            Some(body.as_slice()),
        ),
        Response::Timeout => (AttemptResult::Timeout, None),
        Response::Connection => (AttemptResult::Connection, None),
        Response::Transport(_) => (AttemptResult::Transport, None),
    };
    let classified = classify(&result, done);
    let decision = decide(
        &subscription.delivery,
        claim.state.attempt_in_round(),
        &classified,
        env.jitter(),
    );
    let next_attempt_at = match decision {
        Decision::RetryAt(delay) => Some(Timestamp::from_unix_ms(done.saturating_add(delay))),
        _ => None,
    };
    let record = Attempt {
        event_id: event.id.clone(),
        cloud_event: Some(CloudEventRef::of(event)),
        attempt: claim.state.attempts.saturating_add(1),
        outcome: if matches!(decision, Decision::Done) {
            AttemptOutcome::Succeeded
        } else {
            AttemptOutcome::Failed
        },
        response_status: classified.status,
        duration_ms: done.saturating_sub(now),
        error_class: classified.error_class,
        response_body: body.and_then(response_excerpt),
        next_attempt_at,
        trigger: claim.state.next_trigger,
        at: Timestamp::from_unix_ms(now),
    };
    conclude(
        env,
        slot,
        subscription,
        Some(event),
        claim,
        &decision,
        Some(record),
        classified.status,
        done,
    )
}

/// The request for `event` to the subscription's sink, sent.
fn send(env: &Env<'_>, subscription: &Subscription, event: &StoredEvent) -> Response {
    let authorization = match &subscription.sink.auth {
        None => None,
        Some(auth) => match auth.static_authorization() {
            Some(value) => Some(value),
            None => match env.transport.oauth2_authorization(auth) {
                Ok(value) => Some(value),
                Err(message) => return Response::Transport(message),
            },
        },
    };
    let timestamp = env.now() / 1000;
    let request = build(
        &subscription.sink.url,
        subscription,
        event,
        timestamp,
        authorization.as_deref(),
        &[],
    );
    env.transport
        .send(&request, subscription.delivery.timeout_ms)
}

/// Records what follows an attempt: the delivery's new state, the due queue, and for a dead
/// letter its record, the dead-letter sink and (on `410`) the paused subscription.
#[allow(clippy::too_many_arguments)]
fn conclude(
    env: &Env<'_>,
    slot: &Slot,
    subscription: &Subscription,
    event: Option<&StoredEvent>,
    claim: &Claim,
    decision: &Decision,
    record: Option<Attempt>,
    last_status: Option<u16>,
    now: u64,
) -> Result<Counts, Error> {
    let mut counts = Counts {
        attempts: u64::from(event.is_some()),
        ..Counts::default()
    };
    // A retry is filed before the state says so: a worker dying in between leaves a lease that
    // expires while the delivery is on the queue (an item filed for nothing is dropped later).
    let moved = match decision {
        Decision::RetryAt(delay) => {
            let due_at = now.saturating_add(*delay);
            let moves = slot.bucket != Some(bucket_of(due_at));
            if moves {
                queue(env, slot, due_at)?;
            }
            moves
        }
        _ => false,
    };
    let state = match delivery::finish(env.store, env.tenant, claim, decision, now, record)? {
        Finished::Updated(state) => state,
        // Our lease expired and another worker took over: it owns what follows.
        Finished::LeaseLost => return Ok(counts),
    };
    match decision {
        Decision::Done => {
            counts.succeeded += 1;
            drop_slot(env, slot)?;
        }
        Decision::RetryAt(_) => {
            counts.retried += 1;
            if moved {
                drop_slot(env, slot)?;
            }
        }
        Decision::DeadLetter { reason } | Decision::DeadLetterAndPause { reason } => {
            counts.dead_lettered += 1;
            let dead = DeadLetter {
                event_id: state.event_id.clone(),
                cloud_event: event.map(CloudEventRef::of).or_else(|| {
                    state
                        .log
                        .iter()
                        .rev()
                        .find_map(|attempt| attempt.cloud_event.clone())
                }),
                subscription_id: subscription.id.clone(),
                reason: reason.clone(),
                attempts: state.attempts.saturating_sub(state.round_start),
                last_status,
                at: Timestamp::from_unix_ms(now),
            };
            add_dead_letter(env.store, env.tenant, &dead)?;
            if let (Some(sink), Some(event)) = (&subscription.delivery.dead_letter_sink, event) {
                post_dead_letter(env, subscription, sink, event, &dead);
            }
            if matches!(decision, Decision::DeadLetterAndPause { .. }) {
                store::pause(
                    env.store,
                    env.tenant,
                    &subscription.id,
                    Some(reason.clone()),
                    now,
                )?;
            }
            drop_slot(env, slot)?;
        }
    }
    Ok(counts)
}

/// Files the delivery on the due queue in the bucket of `due_ms`.
fn queue(env: &Env<'_>, slot: &Slot, due_ms: u64) -> Result<DueBucket, Error> {
    due::add(
        env.store,
        env.tenant,
        RETRIES,
        bucket_of(due_ms),
        &slot.member,
        &Patience::default(),
    )
}

/// Posts a dead letter to the subscription's dead-letter sink, once (its failure is only
/// recorded in the dead letter's attempts log, never retried: the dead letter stays queryable
/// and redeliverable either way).
fn post_dead_letter(
    env: &Env<'_>,
    subscription: &Subscription,
    sink: &crate::model::DeadLetterSink,
    event: &StoredEvent,
    dead: &DeadLetter,
) {
    let authorization = match &sink.auth {
        None => None,
        Some(auth) => match auth.static_authorization() {
            Some(value) => Some(value),
            None => env.transport.oauth2_authorization(auth).ok(),
        },
    };
    let extensions = [
        ("deadletterreason", json!(dead.reason)),
        ("deliveryattempts", json!(dead.attempts)),
    ];
    let request = build(
        &sink.url,
        subscription,
        event,
        env.now() / 1000,
        authorization.as_deref(),
        &extensions,
    );
    let _ = env
        .transport
        .send(&request, subscription.delivery.timeout_ms);
}

/// Puts the delivery of `event` to `subscription` on the due queue, due at `now_ms`; the item
/// as filed.
fn file_due(
    store: &dyn KvStore,
    tenant: &TenantId,
    event: &StoredEvent,
    subscription: &SubscriptionId,
    now_ms: u64,
) -> Result<DueItem, Error> {
    let member = due_member(event.sequence, subscription, &event.id);
    let bucket = due::add(
        store,
        tenant,
        RETRIES,
        bucket_of(now_ms),
        &member,
        &Patience::default(),
    )?;
    Ok(DueItem { bucket, member })
}

/// Delivers `event` to `subscription` again (a dead letter's redelivery, a replay): a new round,
/// due at `now_ms`, made by the next tick. `false` if a round is still under way (it will
/// deliver the event anyway). `404` if the event is no longer stored.
pub fn redeliver(
    store: &dyn KvStore,
    tenant: &TenantId,
    subscription: &SubscriptionId,
    event: &EventId,
    trigger: Trigger,
    now_ms: u64,
) -> Result<bool, Error> {
    let Some(stored) = get_event(store, tenant, event)? else {
        return Err(Error::not_found(format!(
            "the event {event} is not stored (any more)"
        )));
    };
    let restarted = delivery::restart(store, tenant, subscription, event, trigger, now_ms)?;
    if restarted.is_none() {
        return Ok(false);
    }
    file_due(store, tenant, &stored, subscription, now_ms)?;
    Ok(true)
}

/// The most events one [`replay`] call looks at; the answer says where to continue.
pub const MAX_REPLAY_EVENTS: usize = 1000;

/// What [`replay`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    /// Events that matched the subscription's filter and were filed again.
    pub replayed: u64,
    /// Matching events whose delivery was still under way (left to it).
    pub in_progress: u64,
    /// Events looked at.
    pub examined: u64,
    /// When more events remain: pass this as `afterSequence` to continue.
    pub continue_after_sequence: Option<u64>,
}

/// Files again, in acceptance order, the stored events accepted from `since_ms` (Unix ms) until
/// `until_ms` (exclusive; `None`: up to now) that `subscription`'s filter accepts; at most
/// [`MAX_REPLAY_EVENTS`] per call, starting after `after_sequence` when continuing.
pub fn replay(
    store: &dyn KvStore,
    tenant: &TenantId,
    subscription: &Subscription,
    since_ms: u64,
    until_ms: Option<u64>,
    after_sequence: Option<u64>,
    now_ms: u64,
) -> Result<Replayed, Error> {
    let start = match after_sequence {
        Some(after) => after,
        None => eventplane_eventstore::first_sequence_at_or_after(store, tenant, since_ms)?
            .saturating_sub(1),
    };
    let page = eventplane_eventstore::events_since(store, tenant, start, MAX_REPLAY_EVENTS)?;
    let mut outcome = Replayed {
        replayed: 0,
        in_progress: 0,
        examined: 0,
        continue_after_sequence: None,
    };
    for event in &page.events {
        if until_ms.is_some_and(|until| event.received_at >= until) {
            return Ok(outcome);
        }
        outcome.examined += 1;
        if event.received_at < since_ms
            || !subscription
                .filter
                .matches(&FilterSubject::from_event(event))
        {
            continue;
        }
        if redeliver(
            store,
            tenant,
            &subscription.id,
            &event.id,
            Trigger::Replay,
            now_ms,
        )? {
            outcome.replayed += 1;
        } else {
            outcome.in_progress += 1;
        }
    }
    if page.more {
        outcome.continue_after_sequence = Some(page.next_after);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests;
