//! Storing accepted events durably and idempotently, and the pending queue.
//!
//! ## What [`store_event`] guarantees
//!
//! - When it returns `Ok`, the event's record is stored and on the pending queue (an `Ok` is
//!   what lets the gateway answer 2xx; an `Err` means "try again", and trying again is safe).
//! - One record per tenant, `source` and publisher id, however many times and however
//!   concurrently the event is stored: the record's key is derived from a hash of the two, so
//!   every writer of that event writes the same key.
//! - One pending-queue entry in the ordinary case (see "Takeover" for the rare exception); the
//!   dispatcher delivers at least once, so an extra entry for the same event id is harmless.
//!
//! ## The algorithm
//!
//! 1. `n = increment(t/<tenant>/r/event-claim/<hash>)`. Incrementing is atomic on every Spin
//!    backend, so exactly one caller sees `n == 1`. (A compare-and-swap against "absent" would
//!    not do: Spin's SQLite store performs it as an unconditional write, so every concurrent
//!    caller would "win".)
//! 2. `n == 1`, the owner: takes a sequence number (`increment` of the tenant's counter), records
//!    `sequence → id`, writes the record with `queued: false`, adds the id to the pending queue
//!    (the bucket of its sequence number), then marks the record `queued: true` (by
//!    compare-and-swap against the record it wrote).
//! 3. `n > 1`, a duplicate: reads the record, polling for a bounded time ([`Patience`], about
//!    a second by default) while the owner writes it.
//!    - present and queued: the event is safe; answer "duplicate" with the stored record;
//!    - present, not queued: the owner died (or is still working) between writing and queuing;
//!      add it to the queue (idempotent: same id, same sequence, same bucket, a set) and mark it
//!      queued, then
//!      answer "duplicate";
//!    - still absent: the owner died before writing (or its store call failed and it answered
//!      5xx). Take over: do step 2 ourselves.
//!
//! Each step leaves a state from which any later call of the same publish finishes the job, so
//! an instance dying anywhere never leaves "success answered, event not stored": the caller
//! that dies never answered, and a retry (the publisher's) completes the record and the queue
//! entry.
//!
//! ## Takeover
//!
//! Without a working create-if-absent, a takeover cannot be made exclusive: if the owner was
//! merely slow (stalled more than the patience between its claim and its write), both write the
//! record. They write the same key, so there is still one record (the last write wins; it may
//! carry the other writer's `received_at` and `sequence`), and each queues the same id, in the
//! bucket of its own sequence number (so possibly twice; delivery is at least once anyway). Replay ([`events_since`]) skips a
//! `sequence → id` entry whose record carries another sequence, so replay still yields the
//! event once. All waiting duplicates may take over at once; the same reasoning holds.
//!
//! ## Sequence
//!
//! The tenant's sequence counter is only incremented, so sequence numbers are never reused;
//! a writer that dies after taking one leaves a gap.

use eventplane_core::keys::{
    self, DueBucket, EVENT_CLAIMS, EVENT_SEQUENCE, EVENTS_BY_SEQUENCE, PENDING_EVENTS,
};
use eventplane_core::{Error, EventId, KvStore, KvStoreExt, MAX_INDEX_PAGE, TenantId};

use crate::Patience;
use crate::due::{self, DueItem};
use crate::event::{Identity, NewEvent, StoredEvent, identity};

/// The outcome of [`store_event`].
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The stored event (for a duplicate, the record stored first).
    pub event: StoredEvent,
    /// Whether the event was already stored by an earlier call.
    pub duplicate: bool,
}

/// Stores `event` for `tenant`, accepted at `now_ms` (Unix milliseconds), and puts it on the
/// pending queue; idempotent per `source` and publisher id. Waits up to about a second for a
/// concurrent store of the same event. See the module docs.
pub fn store_event(
    store: &dyn KvStore,
    tenant: &TenantId,
    event: NewEvent,
    now_ms: u64,
) -> Result<Stored, Error> {
    store_event_with(store, tenant, event, now_ms, &Patience::default())
}

/// [`store_event`], waiting for a concurrent store as `patience` says.
pub fn store_event_with(
    store: &dyn KvStore,
    tenant: &TenantId,
    event: NewEvent,
    now_ms: u64,
    patience: &Patience,
) -> Result<Stored, Error> {
    let identity = identity(&event.source, &event.event_id)?;
    if claim(store, tenant, &identity)? == 1 {
        let stored = write_record(store, tenant, &identity, event, now_ms)?;
        let stored = enqueue(store, tenant, stored, patience)?;
        return Ok(Stored {
            event: stored,
            duplicate: false,
        });
    }
    for round in 0..=patience.rounds {
        if let Some(existing) = get_event(store, tenant, &identity.id)? {
            if existing.source != event.source || existing.event_id != event.event_id {
                return Err(Error::internal(format!(
                    "two events share the id {}: a hash collision",
                    identity.id
                )));
            }
            let existing = if existing.queued {
                existing
            } else {
                enqueue(store, tenant, existing, patience)?
            };
            return Ok(Stored {
                event: existing,
                duplicate: true,
            });
        }
        if round < patience.rounds {
            (patience.sleep)(patience.pause);
        }
    }
    // The caller that claimed the event never wrote it: take over (module docs, "Takeover").
    let stored = write_record(store, tenant, &identity, event, now_ms)?;
    let stored = enqueue(store, tenant, stored, patience)?;
    Ok(Stored {
        event: stored,
        duplicate: false,
    })
}

/// Step 1: increments the event's claim; `1` for the first caller.
pub(crate) fn claim(
    store: &dyn KvStore,
    tenant: &TenantId,
    identity: &Identity,
) -> Result<i64, Error> {
    Ok(store.increment(&keys::record(tenant, EVENT_CLAIMS, &identity.hash), 1)?)
}

/// Step 2a: takes a sequence number and writes the record, not yet queued.
pub(crate) fn write_record(
    store: &dyn KvStore,
    tenant: &TenantId,
    identity: &Identity,
    event: NewEvent,
    now_ms: u64,
) -> Result<StoredEvent, Error> {
    let sequence = store.increment(&keys::counter(tenant, EVENT_SEQUENCE), 1)?;
    let sequence = u64::try_from(sequence)
        .map_err(|_| Error::internal(format!("the event sequence of {tenant} is negative")))?;
    let stored = StoredEvent::new(identity.id.clone(), tenant.clone(), event, now_ms, sequence);
    // Only this writer has this sequence number, so a plain write is safe.
    store.set_json(
        &keys::record(tenant, EVENTS_BY_SEQUENCE, &sequence.to_string()),
        &stored.id,
    )?;
    store.set_json(&keys::record_for(tenant, &stored.id), &stored)?;
    Ok(stored)
}

/// Step 2b: adds the event to the pending queue (idempotent) and marks its record queued.
pub(crate) fn enqueue(
    store: &dyn KvStore,
    tenant: &TenantId,
    event: StoredEvent,
    patience: &Patience,
) -> Result<StoredEvent, Error> {
    due::add(
        store,
        tenant,
        PENDING_EVENTS,
        bucket_of(event.sequence),
        event.id.as_str(),
        patience,
    )?;
    let key = keys::record_for(tenant, &event.id);
    store.update_json(&key, |current: Option<StoredEvent>| match current {
        Some(mut current) => {
            current.queued = true;
            Ok(current)
        }
        None => Err(Error::internal(format!("the event record {key} vanished"))),
    })
}

/// How many consecutive sequence numbers share one bucket of the pending queue. Buckets are
/// small so that adding to one stays cheap however fast events arrive (a bucket is one set,
/// rewritten on every add), and writers of different buckets never contend.
pub const PENDING_BUCKET_EVENTS: u64 = 32;

/// How many buckets past the current one the queue is read: a writer whose bucket's elected
/// creator died files its event a bucket or more further on (see `due::add`).
const SCAN_AHEAD: u64 = 3;

/// The pending-queue bucket of a sequence number.
pub fn bucket_of(sequence: u64) -> DueBucket {
    DueBucket::from_minute(sequence / PENDING_BUCKET_EVENTS)
}

/// The last bucket the queue is read up to: the current sequence's bucket, plus
/// [`SCAN_AHEAD`].
fn scan_limit(store: &dyn KvStore, tenant: &TenantId) -> Result<DueBucket, Error> {
    let last = store.increment(&keys::counter(tenant, EVENT_SEQUENCE), 0)?;
    let last = u64::try_from(last).unwrap_or(0);
    Ok(DueBucket::from_minute(
        bucket_of(last).minute().saturating_add(SCAN_AHEAD),
    ))
}

/// The stored event `id` of `tenant`, if any.
pub fn get_event(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &EventId,
) -> Result<Option<StoredEvent>, Error> {
    store.get_json(&keys::record_for(tenant, id))
}

/// An event waiting on the pending queue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingEntry {
    /// The event.
    pub event_id: EventId,
    /// The bucket it is filed under (its sequence / [`PENDING_BUCKET_EVENTS`]; pass the entry
    /// back to [`ack`]).
    pub bucket: DueBucket,
}

/// Up to `limit` (1..=1000) events waiting on `tenant`'s pending queue, oldest bucket (lowest
/// sequence numbers) first; found without scanning the store. Entries stay until [`ack`]ed, so
/// a dispatcher that dies before acking sees them again.
pub fn pending(
    store: &dyn KvStore,
    tenant: &TenantId,
    limit: usize,
) -> Result<Vec<PendingEntry>, Error> {
    let items = due::scan(
        store,
        tenant,
        PENDING_EVENTS,
        scan_limit(store, tenant)?,
        limit.min(MAX_INDEX_PAGE),
    )?;
    items
        .into_iter()
        .map(|item| {
            let event_id = item.member.parse::<EventId>().map_err(|err| {
                Error::internal_with(
                    format!("a pending entry of {tenant} is not an event id"),
                    err,
                )
            })?;
            Ok(PendingEntry {
                event_id,
                bucket: item.bucket,
            })
        })
        .collect()
}

/// Takes `entry` off the pending queue (and moves the queue's cursor past empty buckets).
/// Returns whether it was there.
pub fn ack(store: &dyn KvStore, tenant: &TenantId, entry: &PendingEntry) -> Result<bool, Error> {
    let item = DueItem {
        bucket: entry.bucket,
        member: entry.event_id.to_string(),
    };
    due::remove(
        store,
        tenant,
        PENDING_EVENTS,
        &item,
        scan_limit(store, tenant)?,
    )
}

/// A page of events in acceptance order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventPage {
    /// The events, by increasing sequence.
    pub events: Vec<StoredEvent>,
    /// Pass as `after_sequence` for the next page; equal to the one given when nothing is left.
    pub next_after: u64,
    /// Whether sequence numbers beyond `next_after` were already handed out when this page was
    /// read (more may follow).
    pub more: bool,
}

/// The most sequence numbers one [`events_since`] call looks at.
pub const MAX_SEQUENCES_PER_CALL: u64 = 5000;

/// Up to `limit` (1..=1000) of `tenant`'s events with a sequence greater than `after_sequence`,
/// in acceptance order (for replay). Gaps are skipped. An event whose write was still under
/// way when this ran is not included (it is delivered normally, not replayed).
pub fn events_since(
    store: &dyn KvStore,
    tenant: &TenantId,
    after_sequence: u64,
    limit: usize,
) -> Result<EventPage, Error> {
    let limit = limit.clamp(1, MAX_INDEX_PAGE);
    let last = store.increment(&keys::counter(tenant, EVENT_SEQUENCE), 0)?;
    let last = u64::try_from(last).unwrap_or(0);
    let end = last.min(after_sequence.saturating_add(MAX_SEQUENCES_PER_CALL));
    let mut page = EventPage {
        next_after: after_sequence,
        ..EventPage::default()
    };
    let mut sequence = after_sequence;
    while sequence < end && page.events.len() < limit {
        sequence += 1;
        page.next_after = sequence;
        let by_sequence = keys::record(tenant, EVENTS_BY_SEQUENCE, &sequence.to_string());
        let Some(id) = store.get_json::<EventId>(&by_sequence)? else {
            continue;
        };
        if let Some(event) = get_event(store, tenant, &id)?
            && event.sequence == sequence
        {
            page.events.push(event);
        }
    }
    page.more = page.next_after < last;
    Ok(page)
}
