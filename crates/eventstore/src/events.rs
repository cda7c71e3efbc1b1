//! Storing accepted events durably and idempotently, and the log the dispatcher reads them
//! from.
//!
//! ## What [`store_event`] guarantees
//!
//! - When it returns `Ok`, the event's record is stored and in the tenant's event log (an `Ok`
//!   is what lets the gateway answer 2xx; an `Err` means "try again", and trying again is safe).
//! - One record per tenant, `source` and publisher id, however many times and however
//!   concurrently the event is stored (within the retention period, see "Retention"): the
//!   record's key is derived from a hash of the two, so every writer of that event writes the
//!   same key.
//! - The dispatcher finds it: the log is read by sequence number from a cursor ([`pending`],
//!   [`advance`]), without scanning, and a reader never moves past an event that ends up
//!   stored (see "Gaps").
//!
//! ## The algorithm
//!
//! 0. The event's `source` is noted, so that the event can be found by its publisher's id alone
//!    ([`sources`](crate::sources); one read, except for the first event of a new source).
//! 1. `n = increment(t/<tenant>/r/event-claim/<hash>)`. Incrementing is atomic on every Spin
//!    backend, so exactly one caller sees `n == 1`. (A compare-and-swap against "absent" would
//!    not do: Spin's SQLite store performs it as an unconditional write, so every concurrent
//!    caller would "win".)
//! 2. `n == 1`, the owner: takes a sequence number `s` (`increment` of the tenant's counter)
//!    and writes, in one `set_many`, first the log entry `sequence s → id`, then the record
//!    (which carries `s`). Then it reads the log's cursor: if a reader has already given up on
//!    `s` (see "Gaps"), it files the event again under a new sequence number.
//! 3. `n > 1`, a duplicate: reads the record, polling for a bounded time ([`Patience`], about
//!    a second by default) while the owner writes it.
//!    - present: the record is written after its log entry, so the event is safe: answer
//!      "duplicate" with the stored record;
//!    - still absent: the owner died before writing (or its store call failed and it answered
//!      5xx). Take over: do step 2 ourselves.
//!
//! No step writes anything shared by two different events except the sequence counter, which
//! only ever changes by `increment`, and the tenant's source index, changed only by the first
//! event of a new source: concurrent publishes never retry each other's writes.
//!
//! ## Takeover
//!
//! Without a working create-if-absent, a takeover cannot be made exclusive: if the owner was
//! merely slow (stalled more than the patience between its claim and its write), both write the
//! record. They write the same key, so there is still one record (the last write wins; it may
//! carry the other writer's `received_at` and `sequence`), and the log holds the id under both
//! sequence numbers. Readers of the log skip an entry whose record carries another sequence,
//! so the event is read once.
//!
//! ## Gaps
//!
//! A sequence number is taken before its log entry is written, so a reader can find `s`
//! missing while later numbers are present: its writer is either still at work or died (and
//! never answered 2xx). [`pending`] stops at such a gap; once the gap has lasted
//! [`GAP_GRACE_MS`], it is skipped. A writer that was merely slow must not be lost, so both
//! sides write first and read second: the reader moves the cursor past the gap and then reads
//! the entry again (and moves the cursor back if it appeared); the writer writes its entry and
//! then reads the cursor (and files the event again if the cursor passed it). On a
//! linearizable store at least one of them sees the other.
//!
//! ## Sequence
//!
//! The tenant's sequence counter is only incremented, so sequence numbers are never reused;
//! a writer that dies after taking one leaves a gap.
//!
//! ## Retention
//!
//! Events are kept for the retention period, then removed with their claims and log entries
//! by [`purge_expired`](crate::purge_expired) (the [`retention`](crate::retention) module),
//! oldest first and never before the dispatcher has taken them. Deduplication per `source`
//! and publisher id therefore lasts as long as the event is retained: a publish after its event
//! was purged is a new event. Readers of the log start after the purged numbers.

use eventplane_core::keys::{
    self, EVENT_CLAIMS, EVENT_SEQUENCE, EVENTS_BY_SEQUENCE, PENDING_EVENTS,
};
use eventplane_core::{Error, EventId, Key, KvStore, KvStoreExt, MAX_INDEX_PAGE, TenantId};
use serde::{Deserialize, Serialize};

use crate::Patience;
use crate::event::{Identity, NewEvent, StoredEvent, identity};

/// The outcome of [`store_event`].
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The stored event (for a duplicate, the record stored first).
    pub event: StoredEvent,
    /// Whether the event was already stored by an earlier call.
    pub duplicate: bool,
}

/// Stores `event` for `tenant`, accepted at `now_ms` (Unix milliseconds), and files it in the
/// tenant's event log; idempotent per `source` and publisher id. Waits up to about a second for
/// a concurrent store of the same event. See the module docs.
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
    crate::sources::note_source(store, tenant, &event.source)?;
    if claim(store, tenant, &identity)? == 1 {
        return Ok(Stored {
            event: write_record(store, tenant, &identity, event, now_ms)?,
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
    Ok(Stored {
        event: write_record(store, tenant, &identity, event, now_ms)?,
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

/// How many times a writer files its event again because readers gave up on its sequence
/// number before it wrote (each time takes a new number; more than once needs a writer stalled
/// for [`GAP_GRACE_MS`] twice).
const MAX_REFILES: u32 = 3;

/// Step 2: takes a sequence number, writes the log entry and then the record, and files the
/// event again if a reader has already given up on that number.
pub(crate) fn write_record(
    store: &dyn KvStore,
    tenant: &TenantId,
    identity: &Identity,
    event: NewEvent,
    now_ms: u64,
) -> Result<StoredEvent, Error> {
    let mut stored = StoredEvent::new(identity.id.clone(), tenant.clone(), event, now_ms, 0);
    for _ in 0..=MAX_REFILES {
        stored.sequence = next_sequence(store, tenant)?;
        write_logged(store, tenant, &stored)?;
        if read_cursor(store, tenant)?.next <= stored.sequence {
            return Ok(stored);
        }
    }
    Err(Error::from(eventplane_core::StoreError::Backend(format!(
        "the event log of {tenant} kept moving past event {}; try again",
        stored.id
    ))))
}

fn next_sequence(store: &dyn KvStore, tenant: &TenantId) -> Result<u64, Error> {
    let sequence = store.increment(&keys::counter(tenant, EVENT_SEQUENCE), 1)?;
    u64::try_from(sequence)
        .map_err(|_| Error::internal(format!("the event sequence of {tenant} is negative")))
}

/// The log entry `sequence → id` of `tenant`.
pub(crate) fn log_key(tenant: &TenantId, sequence: u64) -> Key {
    keys::record(tenant, EVENTS_BY_SEQUENCE, &sequence.to_string())
}

/// Writes the log entry, then the record; in one call, and in that order should the backend
/// apply them one by one, so that a record never exists without its log entry.
fn write_logged(store: &dyn KvStore, tenant: &TenantId, stored: &StoredEvent) -> Result<(), Error> {
    let entry = serde_json::to_vec(&stored.id)
        .map_err(|err| Error::internal_with("cannot encode a log entry", err))?;
    let record = serde_json::to_vec(stored)
        .map_err(|err| Error::internal_with("cannot encode an event record", err))?;
    store.set_many(&[
        (log_key(tenant, stored.sequence), entry),
        (event_key(tenant, &stored.id), record),
    ])?;
    Ok(())
}

/// The stored event `id` of `tenant`, if any.
pub fn get_event(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &EventId,
) -> Result<Option<StoredEvent>, Error> {
    store.get_json(&event_key(tenant, id))
}

/// The key [`get_event`] reads (for readers that name it ahead).
pub fn event_key(tenant: &TenantId, id: &EventId) -> Key {
    keys::record_for(tenant, id)
}

// ---- the log, as the dispatcher reads it ---------------------------------------------------

/// How long a missing sequence number holds up readers of the log before they skip it, in
/// milliseconds. Writers take milliseconds between taking a number and writing its entry; a
/// writer that took longer still loses nothing (module docs, "Gaps").
pub const GAP_GRACE_MS: u64 = 5_000;

/// Where readers of a tenant's log are: every sequence number below `next` has been handed
/// over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCursor {
    /// The first sequence number not yet handed over.
    pub next: u64,
    /// Since when (Unix ms) `next` has been seen missing while later numbers were taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_since_ms: Option<u64>,
}

impl Default for LogCursor {
    fn default() -> Self {
        Self {
            next: 1,
            gap_since_ms: None,
        }
    }
}

fn cursor_key(tenant: &TenantId) -> Key {
    keys::record(tenant, PENDING_EVENTS, "cursor")
}

/// The dispatcher's cursor (the default when absent).
pub(crate) fn read_cursor(store: &dyn KvStore, tenant: &TenantId) -> Result<LogCursor, Error> {
    Ok(store.get_json(&cursor_key(tenant))?.unwrap_or_default())
}

/// An event waiting in the log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingEntry {
    /// Its sequence number.
    pub sequence: u64,
    /// The event.
    pub event_id: EventId,
}

/// What [`pending`] found: the entries to hand over, and where the cursor goes once they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingBatch {
    /// The events, in acceptance order.
    pub entries: Vec<PendingEntry>,
    /// The cursor as read.
    pub from: LogCursor,
    /// The cursor once `entries` are handed over (pass the batch to [`advance`]).
    pub to: LogCursor,
    /// Sequence numbers skipped as gaps (re-checked by [`advance`]).
    pub skipped: Vec<u64>,
}

/// Up to `limit` (1..=1000) events of `tenant`'s log from its cursor, in acceptance order; found
/// by sequence number, without scanning. Nothing changes until the batch is [`advance`]d, so a
/// reader that dies before that hands the same events over again (delivery is at least once).
pub fn pending(
    store: &dyn KvStore,
    tenant: &TenantId,
    limit: usize,
    now_ms: u64,
) -> Result<PendingBatch, Error> {
    let limit = limit.clamp(1, MAX_INDEX_PAGE);
    let from = read_cursor(store, tenant)?;
    let last =
        u64::try_from(store.increment(&keys::counter(tenant, EVENT_SEQUENCE), 0)?).unwrap_or(0);
    let mut batch = PendingBatch {
        entries: Vec::new(),
        to: from.clone(),
        from,
        skipped: Vec::new(),
    };
    let mut sequence = batch.from.next;
    while sequence <= last && batch.entries.len() < limit {
        match logged(store, tenant, sequence)? {
            Logged::Event(event_id) => batch.entries.push(PendingEntry { sequence, event_id }),
            Logged::Elsewhere => {}
            Logged::Missing => {
                // Only a gap at the cursor itself is timed (and maybe skipped); a later one
                // ends the batch and becomes the cursor.
                if sequence != batch.from.next {
                    batch.to = LogCursor {
                        next: sequence,
                        gap_since_ms: None,
                    };
                    return Ok(batch);
                }
                match batch.from.gap_since_ms {
                    Some(since) if now_ms.saturating_sub(since) >= GAP_GRACE_MS => {
                        batch.skipped.push(sequence);
                    }
                    Some(_) => return Ok(batch),
                    None => {
                        batch.to.gap_since_ms = Some(now_ms);
                        return Ok(batch);
                    }
                }
            }
        }
        sequence += 1;
        batch.to = LogCursor {
            next: sequence,
            gap_since_ms: None,
        };
    }
    Ok(batch)
}

enum Logged {
    /// The entry and its record are there.
    Event(EventId),
    /// The entry is there but its record carries another sequence number (a takeover filed
    /// the event twice): read it under that one.
    Elsewhere,
    /// No entry, or no record yet: a writer is at work or died.
    Missing,
}

fn logged(store: &dyn KvStore, tenant: &TenantId, sequence: u64) -> Result<Logged, Error> {
    let Some(id) = store.get_json::<EventId>(&log_key(tenant, sequence))? else {
        return Ok(Logged::Missing);
    };
    Ok(match get_event(store, tenant, &id)? {
        Some(event) if event.sequence == sequence => Logged::Event(id),
        Some(_) => Logged::Elsewhere,
        None => Logged::Missing,
    })
}

/// Moves `tenant`'s cursor as `batch` says, once its entries are handed over (durably: after
/// this, the log will not show them again). Returns `false` if another reader moved the cursor
/// first (the entries may then have been handed over twice, which at-least-once delivery
/// allows). A skipped gap whose entry appeared meanwhile moves the cursor back to it.
pub fn advance(
    store: &dyn KvStore,
    tenant: &TenantId,
    batch: &PendingBatch,
) -> Result<bool, Error> {
    if batch.to == batch.from {
        return Ok(true);
    }
    let key = cursor_key(tenant);
    let expected = store.get(&key)?;
    let current: LogCursor = match &expected {
        Some(bytes) => serde_json::from_slice(bytes)
            .map_err(|err| Error::internal_with(format!("the cursor {key} is unreadable"), err))?,
        None => LogCursor::default(),
    };
    if current != batch.from {
        return Ok(false);
    }
    let new = serde_json::to_vec(&batch.to)
        .map_err(|err| Error::internal_with("cannot encode the log cursor", err))?;
    if !store.compare_and_swap(&key, expected.as_deref(), &new)? {
        return Ok(false);
    }
    // Write first (the cursor), read second (the gaps): see the module docs, "Gaps".
    for &gap in &batch.skipped {
        if !matches!(logged(store, tenant, gap)?, Logged::Missing) {
            lower_cursor(store, tenant, gap)?;
            break;
        }
    }
    Ok(true)
}

/// Moves the cursor back to `sequence` if it is past it.
fn lower_cursor(store: &dyn KvStore, tenant: &TenantId, sequence: u64) -> Result<(), Error> {
    store.update_json(&cursor_key(tenant), |current: Option<LogCursor>| {
        let mut cursor = current.unwrap_or_default();
        if cursor.next > sequence {
            cursor = LogCursor {
                next: sequence,
                gap_since_ms: None,
            };
        }
        Ok(cursor)
    })?;
    Ok(())
}

/// A page of events in acceptance order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventPage {
    /// The events, by increasing sequence.
    pub events: Vec<StoredEvent>,
    /// Pass as `after_sequence` for the next page; equal to the one given when nothing is left
    /// (unless that one lies within the numbers retention purged: then the last of those).
    pub next_after: u64,
    /// Whether sequence numbers beyond `next_after` were already handed out when this page was
    /// read (more may follow).
    pub more: bool,
}

/// The first sequence number whose event was accepted at or after `ms` (Unix ms), found by
/// binary search over the event log (acceptance times follow sequence numbers, give or take
/// concurrent publishes in the same millisecond); one past the last if there is none. Only the
/// events retention has not purged are searched (the numbers after
/// [`purged_up_to`](crate::purged_up_to)), so a time before them gives the first number after
/// the purged ones.
pub fn first_sequence_at_or_after(
    store: &dyn KvStore,
    tenant: &TenantId,
    ms: u64,
) -> Result<u64, Error> {
    let last =
        u64::try_from(store.increment(&keys::counter(tenant, EVENT_SEQUENCE), 0)?).unwrap_or(0);
    let high = last.saturating_add(1);
    let purged = crate::retention::purged_up_to(store, tenant)?;
    let (mut low, mut high) = (purged.saturating_add(1).min(high), high);
    while low < high {
        let middle = low + (high - low) / 2;
        // The first stored event at or after `middle` (gaps and replaced entries skipped).
        let mut probe = middle;
        let mut found = None;
        while probe < high && found.is_none() {
            if let Logged::Event(id) = logged(store, tenant, probe)?
                && let Some(event) = get_event(store, tenant, &id)?
            {
                found = Some(event.received_at);
            } else {
                probe += 1;
            }
        }
        match found {
            Some(received_at) if received_at >= ms => high = middle,
            Some(_) => low = probe + 1,
            None => high = middle,
        }
    }
    Ok(low)
}

/// The most sequence numbers one [`events_since`] call looks at.
pub const MAX_SEQUENCES_PER_CALL: u64 = 5000;

/// Up to `limit` (1..=1000) of `tenant`'s events with a sequence greater than `after_sequence`,
/// in acceptance order (for replay). Gaps are skipped, and so are the numbers retention has
/// purged (up to [`purged_up_to`](crate::purged_up_to)): the page then starts after them, and
/// its `next_after` may be past `after_sequence` even when it is empty. An event whose write
/// was still under way when this ran is not included (it is delivered normally, not replayed).
pub fn events_since(
    store: &dyn KvStore,
    tenant: &TenantId,
    after_sequence: u64,
    limit: usize,
) -> Result<EventPage, Error> {
    let limit = limit.clamp(1, MAX_INDEX_PAGE);
    let last = store.increment(&keys::counter(tenant, EVENT_SEQUENCE), 0)?;
    let last = u64::try_from(last).unwrap_or(0);
    let after_sequence =
        after_sequence.max(crate::retention::purged_up_to(store, tenant)?.min(last));
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
