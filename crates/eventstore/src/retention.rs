//! Retention: removing the events accepted longer ago than the retention period.
//!
//! [`purge_expired`] walks the tenant's event log in sequence order from a purge cursor and
//! removes each expired event: its record, its claim and its log entry. It is called
//! repeatedly (the dispatcher's tick), a bounded amount of work per call, and several calls may
//! run at once.
//!
//! ## The purge cursor
//!
//! `t/<tenant>/r/event-pending/purged` holds the highest sequence number purged so far (a JSON
//! number; absent means 0). Every sequence number up to it has been dealt with, so readers of
//! the log start after it ([`events_since`](crate::events_since),
//! [`first_sequence_at_or_after`](crate::first_sequence_at_or_after)); [`purged_up_to`] reads
//! it.
//!
//! ## The walk
//!
//! A call looks at the sequence numbers after the purge cursor, in order, and never at or past
//! the dispatcher's log cursor ([`LogCursor::next`](crate::LogCursor)): an event the
//! dispatcher has not taken yet is never purged, however old. For each sequence number `s`:
//!
//! - a log entry whose record carries `s`: if the record's `received_at + retention_ms` is
//!   after `now_ms`, the walk stops (events are in acceptance order, give or take concurrent
//!   publishes); otherwise the event is removed, in this order: the record, then its claim,
//!   then the log entry;
//! - a log entry whose record carries another sequence number (a takeover or a re-filing left
//!   the id under two numbers, see the [`events`](crate::events) module docs): only the entry
//!   is deleted (if the record has expired; otherwise as below); the event lives on under the
//!   number its record carries;
//! - no log entry (a gap: a writer that died after taking the number, or an event purged
//!   already), or an entry without a record (a writer that died half-way): nothing to remove
//!   yet, but see "Gaps" below.
//!
//! The cursor then moves forward to the last number dealt with, by compare-and-swap against
//! the value read at the start. If the swap fails, another call moved the cursor meanwhile:
//! what this call did stands (every step is idempotent), and the swap is tried again against
//! the fresh value unless that is already as far (any value the cursor held was a number up
//! to which everything was dealt with, so the larger of two is right).
//!
//! The first write of the cursor is a compare-and-swap against "absent", which Spin's SQLite
//! store performs as an unconditional write, so two first calls may both "win" and the cursor
//! may even end up at the smaller of their values. That is harmless: a cursor that is too low
//! only makes a later call walk numbers that were purged already, which it finds without log
//! entries and passes over (once an expired event after them proves them settled, see
//! "Gaps").
//!
//! ## Gaps
//!
//! A number without a log entry, with an entry but no record, or with an entry whose record
//! carries another number and has not expired, is only passed once the walk has found an
//! expired event after it: that event took its number after the gap's writer took its own, at
//! least the retention period ago, so the gap's writer (a request, which lasts seconds) is long
//! finished or dead, and can no longer write that number's entry or record. Until then the
//! purge cursor stays before the gap, and such entries are only deleted once passed. The
//! dispatcher's cursor alone is no such proof: it passes a gap after
//! [`GAP_GRACE_MS`](crate::GAP_GRACE_MS) and may move back to it if a slow writer's entry
//! appears (the [`events`](crate::events) module docs, "Gaps"). This assumes the retention
//! period is much longer than any request (it is hours or days).
//!
//! ## Concurrent purges
//!
//! Deleting is idempotent, so two calls walking the same numbers at once do no harm, with one
//! exception the walk guards against: between a call's read of a record and its delete, another
//! call could purge the event, and the publisher could then publish the same `source` and id
//! again (a new event, see "Dedupe window"), whose record has the same key. The record is
//! therefore not deleted blindly: the call first replaces it, by compare-and-swap against the
//! bytes it read, with the same JSON followed by a space (which reads back unchanged), and only
//! the call whose swap succeeded deletes it. A call that finds the record already marked so
//! leaves the record to the call that marked it and removes only the claim and the log entry
//! (should that call have died in between, the record stays behind: readable by id, in no log,
//! and overwritten if the event is published again). A call whose swap fails stops there.
//!
//! ## Dedupe window
//!
//! Deleting an event's claim ends its deduplication: a publish of the same `source` and id
//! after its event was purged is accepted as a new event (a new record under a new sequence
//! number, delivered again). The dedupe window is therefore the retention period.
//!
//! ## Cost
//!
//! One call deals with at most `limit` expired log entries (each up to four writes), and walks
//! at most [`MAX_SEQUENCES_PER_CALL`] sequence numbers in all; gaps do not count against
//! `limit`, so that any `limit` makes progress past them. (A run of more than
//! `MAX_SEQUENCES_PER_CALL` unsettled numbers in a row would hold the purge; gaps are rare and
//! each one also holds the dispatcher for [`GAP_GRACE_MS`](crate::GAP_GRACE_MS).)

use eventplane_core::keys::{self, EVENT_CLAIMS, PENDING_EVENTS};
use eventplane_core::{
    Error, EventId, Key, KvStore, KvStoreExt, MAX_INDEX_PAGE, MAX_UPDATE_ATTEMPTS, TenantId,
};

use crate::event::{StoredEvent, identity};
use crate::events::{MAX_SEQUENCES_PER_CALL, log_key, read_cursor};

/// What one [`purge_expired`] call did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Purged {
    /// How many events were purged (the length of `purged`).
    pub events: u64,
    /// The purged events, in sequence order, so that the caller can remove its own data about
    /// them. An event that two concurrent calls purge may be reported by both.
    pub purged: Vec<StoredEvent>,
    /// The purge cursor as this call left it: every sequence number up to it has been dealt
    /// with.
    pub up_to_sequence: u64,
    /// Whether the call stopped before reaching an unexpired event or the dispatcher's cursor
    /// (because of `limit`, [`MAX_SEQUENCES_PER_CALL`] or a concurrent purge), so that more
    /// events may have expired: call again.
    pub more: bool,
}

/// The key of the purge cursor: `t/<tenant>/r/event-pending/purged`.
fn purge_cursor_key(tenant: &TenantId) -> Key {
    keys::record(tenant, PENDING_EVENTS, "purged")
}

/// The purge cursor as stored (for the compare-and-swap) and its value (0 when absent).
fn read_purge_cursor(
    store: &dyn KvStore,
    tenant: &TenantId,
) -> Result<(Option<Vec<u8>>, u64), Error> {
    let key = purge_cursor_key(tenant);
    let bytes = store.get(&key)?;
    let value = match &bytes {
        Some(bytes) => serde_json::from_slice(bytes).map_err(|err| {
            Error::internal_with(format!("the purge cursor {key} is unreadable"), err)
        })?,
        None => 0,
    };
    Ok((bytes, value))
}

/// The highest sequence number of `tenant`'s event log that retention has dealt with (0 when
/// nothing was purged yet): the events still stored all have greater numbers.
pub fn purged_up_to(store: &dyn KvStore, tenant: &TenantId) -> Result<u64, Error> {
    Ok(read_purge_cursor(store, tenant)?.1)
}

/// The byte appended to a record by the call that is about to delete it ("Concurrent purges"
/// in the module docs); `serde_json` never ends a record with whitespace.
const MARK: u8 = b' ';

/// Removes up to `limit` (1..=1000) of `tenant`'s events accepted `retention_ms` or more
/// before `now_ms` (Unix ms), oldest first, with their claims and log entries; never an event
/// the dispatcher has not taken from the log yet. Idempotent and safe to run concurrently; call
/// again while [`Purged::more`]. See the module docs.
pub fn purge_expired(
    store: &dyn KvStore,
    tenant: &TenantId,
    retention_ms: u64,
    now_ms: u64,
    limit: usize,
) -> Result<Purged, Error> {
    let limit = limit.clamp(1, MAX_INDEX_PAGE);
    let (expected, start) = read_purge_cursor(store, tenant)?;
    // The dispatcher's cursor: the first number not yet handed over.
    let dispatched = read_cursor(store, tenant)?.next;
    let end = dispatched.min(
        start
            .saturating_add(MAX_SEQUENCES_PER_CALL)
            .saturating_add(1),
    );

    let mut purged = Vec::new();
    // The last number dealt with; the entries to delete once something proves them settled.
    let mut done = start;
    let mut unsettled = Vec::new();
    let mut expired_seen = 0;
    let mut more = false;
    let mut sequence = start;
    loop {
        sequence = sequence.saturating_add(1);
        if sequence >= end {
            // At the dispatcher's cursor (done), or at MAX_SEQUENCES_PER_CALL (more, unless
            // nothing was settled: calling again would then do the same).
            more = end < dispatched && done > start;
            break;
        }
        if expired_seen == limit {
            more = true;
            break;
        }
        let entry = log_key(tenant, sequence);
        let Some(id) = store.get_json::<EventId>(&entry)? else {
            continue; // A gap: held until an expired event follows (module docs, "Gaps").
        };
        let record = read_record(store, tenant, &id)?;
        let expired = record
            .as_ref()
            .is_some_and(|(_, event)| event.received_at.saturating_add(retention_ms) <= now_ms);
        let own = record
            .as_ref()
            .is_some_and(|(_, event)| event.sequence == sequence);
        let Some((bytes, event)) = record.filter(|_| expired) else {
            if own {
                break; // The oldest event still retained.
            }
            // No record, or one under another number: the entry goes once settled.
            unsettled.push(entry);
            continue;
        };
        // An expired event: everything before it is settled (module docs, "Gaps").
        expired_seen += 1;
        for stale in unsettled.drain(..) {
            store.delete(&stale)?;
        }
        if own {
            if !remove(store, tenant, &bytes, &event)? {
                more = true;
                break;
            }
            purged.push(event);
        }
        // Then the entry (alone, if the record carries another number: the event lives on
        // under that one).
        store.delete(&entry)?;
        done = sequence;
    }

    let up_to_sequence = move_cursor(store, tenant, expected, start, done)?;
    Ok(Purged {
        events: purged.len() as u64,
        purged,
        up_to_sequence,
        more,
    })
}

/// Moves the purge cursor from `current` (stored as `expected`) forward to `done`, unless
/// another call moved it there or further meanwhile; returns the cursor as left.
///
/// Every value the cursor ever held was a number up to which everything was dealt with, so
/// moving it to the larger of two such numbers is always right. A swap lost to another call
/// is retried against the fresh value, a bounded number of times (each loss means another
/// call made progress; the next call catches up in any case).
fn move_cursor(
    store: &dyn KvStore,
    tenant: &TenantId,
    mut expected: Option<Vec<u8>>,
    mut current: u64,
    done: u64,
) -> Result<u64, Error> {
    let new = serde_json::to_vec(&done)
        .map_err(|err| Error::internal_with("cannot encode the purge cursor", err))?;
    if expected.is_none() {
        // Spin's SQLite store writes over any value when expecting "absent": look again, so
        // that only a call racing within these few milliseconds can set the cursor back.
        (expected, current) = read_purge_cursor(store, tenant)?;
    }
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        if current >= done {
            return Ok(current);
        }
        if store.compare_and_swap(&purge_cursor_key(tenant), expected.as_deref(), &new)? {
            return Ok(done);
        }
        (expected, current) = read_purge_cursor(store, tenant)?;
    }
    Ok(current)
}

/// The record of `id` as stored (for the compare-and-swap) and decoded.
fn read_record(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &EventId,
) -> Result<Option<(Vec<u8>, StoredEvent)>, Error> {
    let key = keys::record_for(tenant, id);
    let Some(bytes) = store.get(&key)? else {
        return Ok(None);
    };
    let event = serde_json::from_slice(&bytes)
        .map_err(|err| Error::internal_with(format!("decoding the record at {key}"), err))?;
    Ok(Some((bytes, event)))
}

/// Deletes `event`'s record if it is still `bytes` (or leaves it to the call that marked it),
/// then its claim. `false` if the record changed since it was read: nothing was deleted.
fn remove(
    store: &dyn KvStore,
    tenant: &TenantId,
    bytes: &[u8],
    event: &StoredEvent,
) -> Result<bool, Error> {
    let record = keys::record_for(tenant, &event.id);
    if bytes.last() != Some(&MARK) {
        let mut marked = bytes.to_vec();
        marked.push(MARK);
        if !store.compare_and_swap(&record, Some(bytes), &marked)? {
            return Ok(false);
        }
        store.delete(&record)?;
    }
    let identity = identity(&event.source, &event.event_id)?;
    store.delete(&keys::record(tenant, EVENT_CLAIMS, &identity.hash))?;
    Ok(true)
}

#[cfg(test)]
mod tests;
