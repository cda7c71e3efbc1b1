//! The delivery of one event to one subscription: its state, created once, claimed with a lease
//! so that two workers never make the same attempt, and finished by the lease's holder.
//!
//! ## Life of a delivery
//!
//! [`ensure`] creates the state `Pending` (due now). A worker that wants to make the next
//! attempt [`claim`]s it: a compare-and-swap from the exact state it read to `Leased` (holder,
//! until when). Only one of two concurrent claimers can win that swap, so an attempt is never
//! made twice. The holder sends the event, then [`finish`]es with the policy's
//! [`Decision`]: `Succeeded`, `Pending` again (due after the backoff: a retry) or
//! `DeadLettered`, again by compare-and-swap from the state it claimed. A holder that dies
//! leaves a lease that expires; the next claim after that takes the delivery over, and the dead
//! holder's late `finish` then fails ([`Finished::LeaseLost`]) instead of overwriting the new
//! holder's state. [`restart`] puts a finished delivery back to `Pending` (redelivery of a dead
//! letter, replay), with a fresh retry budget.
//!
//! ## Creating the state once
//!
//! Spin's SQLite store performs a compare-and-swap against "absent" as an unconditional write,
//! so creation is decided by an `increment` of the delivery's seed key: the caller that gets `1`
//! writes the state, the others wait for it (about a second) and then read it. If the elected
//! creator died before writing, a waiter writes the initial state itself; two such waiters
//! write the same state, and at worst an attempt is made twice (delivery is at least once).

use eventplane_core::keys::{self, Kind};
use eventplane_core::{Error, EventId, Key, KvStore, KvStoreExt, SubscriptionId, TenantId};
use serde::{Deserialize, Serialize};

use crate::keys::{delivery, delivery_name};
use crate::policy::Decision;
use crate::records::{Attempt, Trigger};

/// How many attempts of one delivery its state keeps (the most recent).
pub const MAX_ATTEMPTS_KEPT: usize = 50;

/// Seeds electing the creator of a delivery's state (see the module docs).
pub const DELIVERY_SEEDS: Kind = Kind::new("sub-delivery-seed");

/// How many times [`ensure`] reads again while the elected creator writes, and the pause.
const CREATE_WAIT_ROUNDS: u32 = 200;
const CREATE_WAIT_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Waiting for its next attempt, due at `next_attempt_at_ms`.
    Pending,
    /// A worker holds the lease and is making an attempt.
    Leased,
    /// The sink took it.
    Succeeded,
    /// Given up: a dead letter.
    DeadLettered,
}

/// The worker making the current attempt, and until when it may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// An id the worker chose (random), so that its state differs from any other worker's.
    pub holder: String,
    /// When the lease expires (Unix ms).
    pub until_ms: u64,
}

/// The state of delivering one event to one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryState {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The event.
    pub event_id: EventId,
    /// Where it stands.
    pub status: Status,
    /// Attempts finished so far (all rounds).
    pub attempts: u32,
    /// The value of `attempts` when the current round (first delivery, a redelivery, a replay)
    /// began: the retry budget counts from there.
    pub round_start: u32,
    /// What starts the next attempt.
    pub next_trigger: Trigger,
    /// When the next attempt is due (Unix ms); meaningful while `Pending`.
    pub next_attempt_at_ms: u64,
    /// The current lease, while `Leased`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// The attempts made, oldest first (at most [`MAX_ATTEMPTS_KEPT`], the most recent). Kept
    /// in the state so that an attempt's record and its outcome are one write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<Attempt>,
}

impl DeliveryState {
    fn new(subscription: &SubscriptionId, event: &EventId, trigger: Trigger, now_ms: u64) -> Self {
        Self {
            subscription_id: subscription.clone(),
            event_id: event.clone(),
            status: Status::Pending,
            attempts: 0,
            round_start: 0,
            next_trigger: trigger,
            next_attempt_at_ms: now_ms,
            lease: None,
            log: Vec::new(),
        }
    }

    /// This state leased to `holder` from `now_ms` for `lease_ms`.
    fn leased(&self, holder: &str, now_ms: u64, lease_ms: u64) -> Self {
        Self {
            status: Status::Leased,
            lease: Some(Lease {
                holder: holder.to_owned(),
                until_ms: now_ms.saturating_add(lease_ms),
            }),
            ..self.clone()
        }
    }

    /// The number of the next attempt within its round (1 for the first), as the retry policy
    /// counts it.
    pub fn attempt_in_round(&self) -> u32 {
        self.attempts
            .saturating_sub(self.round_start)
            .saturating_add(1)
    }

    /// Whether a worker may claim it at `now_ms`: pending and due, or leased by a worker whose
    /// lease has expired.
    pub fn claimable(&self, now_ms: u64) -> bool {
        match self.status {
            Status::Pending => self.next_attempt_at_ms <= now_ms,
            Status::Leased => self.lease.as_ref().is_none_or(|l| l.until_ms <= now_ms),
            Status::Succeeded | Status::DeadLettered => false,
        }
    }
}

fn encode(key: &Key, state: &DeliveryState) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(state)
        .map_err(|err| Error::internal_with(format!("cannot encode {key}"), err))
}

fn decode(key: &Key, bytes: &[u8]) -> Result<DeliveryState, Error> {
    serde_json::from_slice(bytes)
        .map_err(|err| Error::internal_with(format!("{key} is not a delivery state"), err))
}

/// The delivery state of `event` to `subscription`, if any.
pub fn get(
    store: &dyn KvStore,
    tenant: &TenantId,
    subscription: &SubscriptionId,
    event: &EventId,
) -> Result<Option<DeliveryState>, Error> {
    store.get_json(&delivery(tenant, subscription, event))
}

/// The delivery state of `event` to `subscription`, created `Pending` (due at `now_ms`, started
/// by `trigger`) if it does not exist yet; exactly one caller creates it (module docs).
pub fn ensure(
    store: &dyn KvStore,
    tenant: &TenantId,
    subscription: &SubscriptionId,
    event: &EventId,
    trigger: Trigger,
    now_ms: u64,
) -> Result<DeliveryState, Error> {
    let initial = DeliveryState::new(subscription, event, trigger, now_ms);
    Ok(create_or_read(store, tenant, &initial, |state| state.clone())?.0)
}

/// Claims the first attempt of `event` to `subscription` for `holder` as [`claim`] does,
/// creating the delivery's state if it does not exist yet: the creator writes it already
/// leased to itself (one write instead of two). `None` as for [`claim`].
#[allow(clippy::too_many_arguments)]
pub fn ensure_claimed(
    store: &dyn KvStore,
    tenant: &TenantId,
    subscription: &SubscriptionId,
    event: &EventId,
    trigger: Trigger,
    holder: &str,
    now_ms: u64,
    lease_ms: u64,
) -> Result<Option<Claim>, Error> {
    let initial = DeliveryState::new(subscription, event, trigger, now_ms);
    let (state, created) = create_or_read(store, tenant, &initial, |state| {
        state.leased(holder, now_ms, lease_ms)
    })?;
    if created {
        let key = delivery(tenant, subscription, event);
        let bytes = encode(&key, &state)?;
        return Ok(Some(Claim {
            state,
            previous: initial,
            bytes,
        }));
    }
    claim(store, tenant, subscription, event, holder, now_ms, lease_ms)
}

/// The delivery's state, or, if it has none, `first(initial)` written by the caller elected
/// to create it (`true`: this caller created it).
fn create_or_read(
    store: &dyn KvStore,
    tenant: &TenantId,
    initial: &DeliveryState,
    first: impl FnOnce(&DeliveryState) -> DeliveryState,
) -> Result<(DeliveryState, bool), Error> {
    let (subscription, event) = (&initial.subscription_id, &initial.event_id);
    let key = delivery(tenant, subscription, event);
    if let Some(state) = store.get_json(&key)? {
        return Ok((state, false));
    }
    let seed = keys::record(tenant, DELIVERY_SEEDS, &delivery_name(subscription, event));
    if store.increment(&seed, 1)? == 1 {
        let state = first(initial);
        store.set_json(&key, &state)?;
        return Ok((state, true));
    }
    for _ in 0..CREATE_WAIT_ROUNDS {
        if let Some(state) = store.get_json(&key)? {
            return Ok((state, false));
        }
        std::thread::sleep(CREATE_WAIT_PAUSE);
    }
    // The elected creator died before writing (module docs).
    let bytes = encode(&key, initial)?;
    if store.compare_and_swap(&key, None, &bytes)? {
        return Ok((initial.clone(), false));
    }
    let state = store
        .get_json(&key)?
        .ok_or_else(|| Error::internal(format!("the delivery state {key} vanished")))?;
    Ok((state, false))
}

/// A delivery this worker holds the lease of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The state as claimed (`Leased` by this worker).
    pub state: DeliveryState,
    /// The state the claim replaced (a lease that expired belonged to someone else).
    pub previous: DeliveryState,
    bytes: Vec<u8>,
}

/// Claims the next attempt of `event` to `subscription` for `holder`, leased for `lease_ms`:
/// `None` if it is not claimable now (not due, finished, or leased by a live worker) or another
/// worker claimed it first.
pub fn claim(
    store: &dyn KvStore,
    tenant: &TenantId,
    subscription: &SubscriptionId,
    event: &EventId,
    holder: &str,
    now_ms: u64,
    lease_ms: u64,
) -> Result<Option<Claim>, Error> {
    let key = delivery(tenant, subscription, event);
    let Some(current) = store.get(&key)? else {
        return Ok(None);
    };
    let previous = decode(&key, &current)?;
    if !previous.claimable(now_ms) {
        return Ok(None);
    }
    let state = previous.leased(holder, now_ms, lease_ms);
    let bytes = encode(&key, &state)?;
    if !store.compare_and_swap(&key, Some(&current), &bytes)? {
        return Ok(None);
    }
    Ok(Some(Claim {
        state,
        previous,
        bytes,
    }))
}

/// What [`finish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// The state moved on; here it is.
    Updated(DeliveryState),
    /// The lease expired and another worker claimed the delivery: nothing was changed.
    LeaseLost,
}

/// Records the outcome of the attempt `claim` was for, as `decision` says, at `now_ms`, with
/// the attempt's record (`None`: no request was made, the event was gone).
pub fn finish(
    store: &dyn KvStore,
    tenant: &TenantId,
    claim: &Claim,
    decision: &Decision,
    now_ms: u64,
    record: Option<Attempt>,
) -> Result<Finished, Error> {
    let mut state = claim.state.clone();
    state.attempts = state.attempts.saturating_add(1);
    state.lease = None;
    if let Some(record) = record {
        state.log.push(record);
        let excess = state.log.len().saturating_sub(MAX_ATTEMPTS_KEPT);
        state.log.drain(..excess);
    }
    match decision {
        Decision::Done => state.status = Status::Succeeded,
        Decision::RetryAt(delay_ms) => {
            state.status = Status::Pending;
            state.next_trigger = Trigger::Retry;
            state.next_attempt_at_ms = now_ms.saturating_add(*delay_ms);
        }
        Decision::DeadLetter { .. } | Decision::DeadLetterAndPause { .. } => {
            state.status = Status::DeadLettered;
        }
    }
    let key = delivery(tenant, &state.subscription_id, &state.event_id);
    let bytes = encode(&key, &state)?;
    if store.compare_and_swap(&key, Some(&claim.bytes), &bytes)? {
        Ok(Finished::Updated(state))
    } else {
        Ok(Finished::LeaseLost)
    }
}

/// Starts a new round for a finished delivery (a redelivered dead letter, a replay): `Pending`,
/// due at `now_ms`, started by `trigger`, with a fresh retry budget. A delivery that never
/// existed is created; one not attempted yet is returned as it is. `None` while a round with
/// attempts is still under way (pending a retry, or leased).
pub fn restart(
    store: &dyn KvStore,
    tenant: &TenantId,
    subscription: &SubscriptionId,
    event: &EventId,
    trigger: Trigger,
    now_ms: u64,
) -> Result<Option<DeliveryState>, Error> {
    let key = delivery(tenant, subscription, event);
    let created = ensure(store, tenant, subscription, event, trigger, now_ms)?;
    if created.attempts == 0 && created.status == Status::Pending {
        return Ok(Some(created));
    }
    let Some(current) = store.get(&key)? else {
        return Err(Error::internal(format!(
            "the delivery state {key} vanished"
        )));
    };
    let mut state = decode(&key, &current)?;
    if !matches!(state.status, Status::Succeeded | Status::DeadLettered) {
        return Ok(None);
    }
    state.status = Status::Pending;
    state.round_start = state.attempts;
    state.next_trigger = trigger;
    state.next_attempt_at_ms = now_ms;
    let bytes = encode(&key, &state)?;
    if store.compare_and_swap(&key, Some(&current), &bytes)? {
        Ok(Some(state))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use eventplane_core::MemoryStore;

    use super::*;

    const NOW: u64 = 1_700_000_000_000;
    const LEASE: u64 = 60_000;

    fn ids() -> (TenantId, SubscriptionId, EventId) {
        (
            TenantId::new("acme").expect("tenant"),
            "sub_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f".parse().expect("sub"),
            "evt_00000000000000000000000000000001".parse().expect("evt"),
        )
    }

    /// Runs `f(i)` for `i` in `0..n` on `n` threads released together; the results in order.
    fn race<T: Send + 'static>(
        n: u64,
        f: impl Fn(u64) -> Result<T, Error> + Send + Sync + 'static,
    ) -> Result<Vec<T>, Error> {
        let f = Arc::new(f);
        let barrier = Arc::new(Barrier::new(usize::try_from(n).unwrap_or(1)));
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let (f, barrier) = (f.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("thread"))
            .collect()
    }

    #[test]
    fn concurrent_ensures_create_one_state() -> Result<(), Error> {
        let (t, s, e) = ids();
        let store = Arc::new(MemoryStore::spin_sqlite_like());
        let (shared, t2, s2, e2) = (store.clone(), t.clone(), s.clone(), e.clone());
        let states = race(16, move |i| {
            ensure(shared.as_ref(), &t2, &s2, &e2, Trigger::First, NOW + i)
        })?;
        assert!(states.windows(2).all(|w| w[0] == w[1]), "{states:?}");
        assert_eq!(get(store.as_ref(), &t, &s, &e)?, Some(states[0].clone()));
        Ok(())
    }

    #[test]
    fn of_two_concurrent_claims_exactly_one_wins() -> Result<(), Error> {
        for round in 0..32 {
            let (t, s, e) = ids();
            let store = Arc::new(MemoryStore::spin_sqlite_like());
            ensure(store.as_ref(), &t, &s, &e, Trigger::First, NOW)?;
            let claims = race(2, move |i| {
                claim(store.as_ref(), &t, &s, &e, &i.to_string(), NOW, LEASE)
            })?;
            assert_eq!(
                claims.iter().filter(|c| c.is_some()).count(),
                1,
                "round {round}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_lease_is_taken_over_only_once_it_expired_and_the_old_holder_cannot_finish()
    -> Result<(), Error> {
        let (t, s, e) = ids();
        let store = MemoryStore::spin_sqlite_like();
        ensure(&store, &t, &s, &e, Trigger::First, NOW)?;
        let first = claim(&store, &t, &s, &e, "a", NOW, LEASE)?.expect("claimed");
        assert_eq!(first.state.attempt_in_round(), 1);
        // The holder dies. Before the lease ends, nobody else may claim.
        assert!(claim(&store, &t, &s, &e, "b", NOW + LEASE - 1, LEASE)?.is_none());
        let second = claim(&store, &t, &s, &e, "b", NOW + LEASE, LEASE)?.expect("taken over");
        assert_eq!(
            second.previous.lease.as_ref().map(|l| l.holder.as_str()),
            Some("a")
        );
        // The first holder wakes up: its outcome must not overwrite the new holder's lease.
        assert_eq!(
            finish(&store, &t, &first, &Decision::Done, NOW + LEASE + 1, None)?,
            Finished::LeaseLost
        );
        let Finished::Updated(done) =
            finish(&store, &t, &second, &Decision::Done, NOW + LEASE + 2, None)?
        else {
            panic!("the holder finishes");
        };
        assert_eq!((done.status, done.attempts), (Status::Succeeded, 1));
        assert!(claim(&store, &t, &s, &e, "c", NOW + 10 * LEASE, LEASE)?.is_none());
        Ok(())
    }

    #[test]
    fn a_retry_is_claimable_when_due_and_counts_attempts() -> Result<(), Error> {
        let (t, s, e) = ids();
        let store = MemoryStore::spin_sqlite_like();
        ensure(&store, &t, &s, &e, Trigger::First, NOW)?;
        let first = claim(&store, &t, &s, &e, "a", NOW, LEASE)?.expect("claimed");
        let Finished::Updated(pending) =
            finish(&store, &t, &first, &Decision::RetryAt(5_000), NOW, None)?
        else {
            panic!("finished");
        };
        assert_eq!(pending.status, Status::Pending);
        assert_eq!(pending.next_trigger, Trigger::Retry);
        assert_eq!(pending.next_attempt_at_ms, NOW + 5_000);
        assert!(claim(&store, &t, &s, &e, "b", NOW + 4_999, LEASE)?.is_none());
        let second = claim(&store, &t, &s, &e, "b", NOW + 5_000, LEASE)?.expect("due");
        assert_eq!(second.state.attempt_in_round(), 2);
        Ok(())
    }

    #[test]
    fn restart_gives_a_dead_letter_a_new_round() -> Result<(), Error> {
        let (t, s, e) = ids();
        let store = MemoryStore::spin_sqlite_like();
        ensure(&store, &t, &s, &e, Trigger::First, NOW)?;
        let first = claim(&store, &t, &s, &e, "a", NOW, LEASE)?.expect("claimed");
        let dead = Decision::DeadLetter {
            reason: "HTTP 400".into(),
        };
        finish(&store, &t, &first, &dead, NOW, None)?;
        let again = restart(&store, &t, &s, &e, Trigger::Redeliver, NOW + 1)?.expect("restarted");
        assert_eq!(
            (again.status, again.next_trigger),
            (Status::Pending, Trigger::Redeliver)
        );
        assert_eq!((again.attempts, again.attempt_in_round()), (1, 1));
        // While that round runs, another restart changes nothing.
        assert!(restart(&store, &t, &s, &e, Trigger::Replay, NOW + 2)?.is_none());
        // A delivery that never existed starts at once.
        let other: EventId = "evt_00000000000000000000000000000002".parse().expect("evt");
        let fresh = restart(&store, &t, &s, &other, Trigger::Replay, NOW)?.expect("created");
        assert_eq!(fresh.next_trigger, Trigger::Replay);
        Ok(())
    }
}
