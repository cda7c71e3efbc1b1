//! Tests of retention: what a purge removes and keeps, where it stops, and concurrent purges.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use eventplane_core::keys::{
    self, EVENT_CLAIMS, EVENT_SEQUENCE, EVENTS_BY_SEQUENCE, PENDING_EVENTS,
};
use eventplane_core::{
    CasHookStore, Error, EventId, Key, KvStore, KvStoreExt, MemoryStore, StoreError,
};

use super::{Purged, purge_expired, purged_up_to};
use crate::event::identity;
use crate::events::{claim, write_record};
use crate::tests::{NOW, event, event_records, log_entries, stores, tenant};
use crate::{
    LogCursor, Patience, StoredEvent, advance, events_since, first_sequence_at_or_after, get_event,
    pending, store_event, store_event_with,
};

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;
const RETENTION: u64 = 7 * DAY;

/// Stores `event(id)` accepted at `at`.
fn publish(store: &dyn KvStore, id: &str, at: u64) -> Result<StoredEvent, Error> {
    let stored = store_event(store, &tenant(), event(id), at)?;
    assert!(!stored.duplicate, "{id} was new");
    Ok(stored.event)
}

/// Lets the dispatcher take every event up to (excluding) `next`.
fn dispatch_until(store: &dyn KvStore, next: u64) -> Result<(), Error> {
    store.set_json(
        &keys::record(&tenant(), PENDING_EVENTS, "cursor"),
        &LogCursor {
            next,
            gap_since_ms: None,
        },
    )
}

/// Lets the dispatcher take everything in the log, as it does.
fn dispatch_all(store: &dyn KvStore) -> Result<(), Error> {
    let batch = pending(store, &tenant(), 1000, NOW)?;
    assert!(advance(store, &tenant(), &batch)?);
    Ok(())
}

/// A gap: a sequence number taken by a writer that died.
fn take_a_number(store: &dyn KvStore) -> Result<u64, Error> {
    let n = store.increment(&keys::counter(&tenant(), EVENT_SEQUENCE), 1)?;
    Ok(u64::try_from(n).expect("positive"))
}

fn claim_key(id: &str) -> Result<Key, Error> {
    let identity = identity("/applications/shop", id)?;
    Ok(keys::record(&tenant(), EVENT_CLAIMS, &identity.hash))
}

fn entry_key(sequence: u64) -> Key {
    keys::record(&tenant(), EVENTS_BY_SEQUENCE, &sequence.to_string())
}

fn ids(events: &[StoredEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_id.clone()).collect()
}

/// Whether the event `id` left nothing behind: no record, no claim.
fn gone(store: &dyn KvStore, id: &str) -> Result<bool, Error> {
    let event_id = identity("/applications/shop", id)?.id;
    Ok(get_event(store, &tenant(), &event_id)?.is_none() && !store.exists(&claim_key(id)?)?)
}

#[test]
fn expired_events_go_with_their_claims_and_log_entries_and_younger_ones_stay() -> Result<(), Error>
{
    for (flavour, store) in stores() {
        let old: Vec<StoredEvent> = (0..3)
            .map(|i| publish(&store, &format!("old{i}"), NOW + i))
            .collect::<Result<_, _>>()?;
        let young = publish(&store, "young", NOW + 2 * DAY)?;
        dispatch_all(&store)?;
        assert_eq!(purged_up_to(&store, &tenant())?, 0);

        // Not yet: the oldest is exactly one retention period old only at NOW + RETENTION.
        let early = purge_expired(&store, &tenant(), RETENTION, NOW + RETENTION - 1, 100)?;
        assert_eq!(early, Purged::default(), "{flavour}");

        let now = NOW + RETENTION + 1;
        let done = purge_expired(&store, &tenant(), RETENTION, now, 100)?;
        assert_eq!(done.events, 2, "{flavour}: expired at or before now");
        assert_eq!(done.purged, old[..2], "{flavour}");
        assert_eq!(done.up_to_sequence, 2);
        assert!(!done.more, "{flavour}: stopped at a young event");
        assert!(gone(&store, "old0")? && gone(&store, "old1")?, "{flavour}");
        assert!(!store.exists(&entry_key(1))? && !store.exists(&entry_key(2))?);
        // The rest is untouched.
        for kept in [&old[2], &young] {
            assert_eq!(get_event(&store, &tenant(), &kept.id)?.as_ref(), Some(kept));
            assert!(store.exists(&entry_key(kept.sequence))?);
            assert!(store.exists(&claim_key(&kept.event_id)?)?);
        }
        assert_eq!(purged_up_to(&store, &tenant())?, 2);

        let later = purge_expired(&store, &tenant(), RETENTION, NOW + 2 * DAY + RETENTION, 100)?;
        assert_eq!(ids(&later.purged), ["old2", "young"], "{flavour}");
        assert_eq!(later.up_to_sequence, 4);
        assert!(event_records(&store).is_empty() && log_entries(&store) == 0);
        // Only the counters, the cursors and the sources noted (kept: they are few) remain.
        let (sources, rest): (Vec<String>, Vec<String>) = store
            .keys()
            .into_iter()
            .partition(|key| key.contains("event-source"));
        assert_eq!(sources.len(), 3, "index, its seed, one marker: {sources:?}");
        assert_eq!(
            rest,
            [
                "t/acme/n/event-seq",
                "t/acme/r/event-pending/cursor",
                "t/acme/r/event-pending/purged"
            ],
            "{flavour}"
        );
    }
    Ok(())
}

#[test]
fn a_purge_never_reaches_the_dispatchers_cursor() -> Result<(), Error> {
    for (flavour, store) in stores() {
        for i in 0..5 {
            publish(&store, &i.to_string(), NOW)?;
        }
        let far = NOW + 10 * RETENTION;
        assert_eq!(
            purge_expired(&store, &tenant(), RETENTION, far, 100)?,
            Purged::default(),
            "{flavour}: nothing taken, nothing purged"
        );
        dispatch_until(&store, 3)?;
        let done = purge_expired(&store, &tenant(), RETENTION, far, 100)?;
        assert_eq!(ids(&done.purged), ["0", "1"], "{flavour}");
        assert_eq!(done.up_to_sequence, 2);
        assert!(!done.more);
        // The events not yet taken are all there, and the dispatcher still gets them.
        let batch = pending(&store, &tenant(), 100, far)?;
        assert_eq!(
            batch.entries.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            [3, 4, 5],
            "{flavour}"
        );
        for entry in &batch.entries {
            assert!(get_event(&store, &tenant(), &entry.event_id)?.is_some());
        }
    }
    Ok(())
}

#[test]
fn gaps_are_passed_once_a_later_event_expired() -> Result<(), Error> {
    for (flavour, store) in stores() {
        publish(&store, "a", NOW)?; // 1
        take_a_number(&store)?; // 2: a gap
        // 3: an entry whose writer died before writing the record.
        let orphan = identity("/applications/shop", "orphan")?.id;
        assert_eq!(take_a_number(&store)?, 3);
        store.set_json(&entry_key(3), &orphan)?;
        publish(&store, "b", NOW + 1)?; // 4
        take_a_number(&store)?; // 5: a gap before a young event
        publish(&store, "c", NOW + 3 * DAY)?; // 6
        dispatch_until(&store, 7)?;

        let now = NOW + RETENTION + 1;
        let done = purge_expired(&store, &tenant(), RETENTION, now, 100)?;
        assert_eq!(ids(&done.purged), ["a", "b"], "{flavour}");
        assert!(
            !store.exists(&entry_key(3))?,
            "{flavour}: the orphan entry is deleted"
        );
        // Gap 5 is held: nothing after it has expired yet.
        assert_eq!(done.up_to_sequence, 4, "{flavour}");
        assert!(!done.more);
        assert_eq!(
            purge_expired(&store, &tenant(), RETENTION, now, 100)?,
            Purged {
                up_to_sequence: 4,
                ..Purged::default()
            }
        );

        let later = purge_expired(&store, &tenant(), RETENTION, NOW + 3 * DAY + RETENTION, 100)?;
        assert_eq!(ids(&later.purged), ["c"], "{flavour}");
        assert_eq!(later.up_to_sequence, 6);
        assert_eq!(log_entries(&store), 0);
    }
    Ok(())
}

#[test]
fn a_gap_or_orphan_entry_before_the_dispatchers_cursor_is_held() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    publish(&store, "a", NOW)?; // 1
    let orphan = identity("/applications/shop", "slow")?.id;
    take_a_number(&store)?; // 2: entry written, record not (yet)
    store.set_json(&entry_key(2), &orphan)?;
    take_a_number(&store)?; // 3: nothing written (yet)
    dispatch_until(&store, 4)?; // the dispatcher gave up on both after the grace period
    let done = purge_expired(&store, &tenant(), RETENTION, NOW + 10 * RETENTION, 100)?;
    assert_eq!(ids(&done.purged), ["a"]);
    assert_eq!(done.up_to_sequence, 1);
    assert!(
        store.exists(&entry_key(2))?,
        "a writer may still be at work: nothing proves otherwise"
    );
    Ok(())
}

#[test]
fn the_limit_bounds_a_call_and_more_says_to_call_again() -> Result<(), Error> {
    for (flavour, store) in stores() {
        for i in 0..5 {
            publish(&store, &i.to_string(), NOW)?;
            // Gaps do not count against the limit.
            take_a_number(&store)?;
        }
        publish(&store, "young", NOW + RETENTION)?;
        dispatch_until(&store, 12)?;
        let now = NOW + RETENTION;
        let mut calls = Vec::new();
        loop {
            let done = purge_expired(&store, &tenant(), RETENTION, now, 2)?;
            calls.push((ids(&done.purged), done.up_to_sequence, done.more));
            if !done.more {
                break;
            }
        }
        let expect = |purged: &[&str], up_to, more| {
            (
                purged.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                up_to,
                more,
            )
        };
        assert_eq!(
            calls,
            [
                expect(&["0", "1"], 3, true),
                expect(&["2", "3"], 7, true),
                // The last expired one, then the young one ends the walk.
                expect(&["4"], 9, false),
            ],
            "{flavour}"
        );
        // A limit of 0 is taken as 1; the gap before the young event does not count.
        let last = purge_expired(&store, &tenant(), RETENTION, now + RETENTION, 0)?;
        assert_eq!(ids(&last.purged), ["young"]);
        assert!(!last.more);
        assert_eq!(purged_up_to(&store, &tenant())?, 11);
    }
    Ok(())
}

#[test]
fn a_purged_event_published_again_is_a_new_event() -> Result<(), Error> {
    for (flavour, store) in stores() {
        let first = publish(&store, "1", NOW)?;
        assert!(store_event(&store, &tenant(), event("1"), NOW + DAY)?.duplicate);
        dispatch_all(&store)?;
        let now = NOW + RETENTION;
        assert_eq!(
            purge_expired(&store, &tenant(), RETENTION, now, 10)?.purged,
            std::slice::from_ref(&first)
        );
        let again = store_event(&store, &tenant(), event("1"), now)?;
        assert!(!again.duplicate, "{flavour}: the dedupe window has ended");
        assert_eq!(again.event.id, first.id);
        assert_eq!(again.event.sequence, 2);
        assert_eq!(again.event.received_at, now);
        let batch = pending(&store, &tenant(), 10, now)?;
        assert_eq!(
            batch.entries.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            [2],
            "{flavour}: delivered again"
        );
        // ...and deduplicated again from then on.
        assert!(store_event(&store, &tenant(), event("1"), now + 1)?.duplicate);
    }
    Ok(())
}

#[test]
fn readers_of_the_log_see_only_the_kept_events() -> Result<(), Error> {
    for (flavour, store) in stores() {
        let mut kept = Vec::new();
        for i in 0..10u64 {
            let at = NOW + i * DAY;
            let stored = publish(&store, &i.to_string(), at)?;
            if i >= 4 {
                kept.push(stored);
            }
            if i % 3 == 0 {
                take_a_number(&store)?;
            }
        }
        dispatch_until(&store, 12)?;
        let now = NOW + 3 * DAY + RETENTION;
        let done = purge_expired(&store, &tenant(), RETENTION, now, 100)?;
        assert_eq!(ids(&done.purged), ["0", "1", "2", "3"], "{flavour}");
        assert_eq!(done.up_to_sequence, 5);

        let all = events_since(&store, &tenant(), 0, 1000)?;
        assert_eq!(all.events, kept, "{flavour}");
        assert!(!all.more);
        // Paging from the start skips the purged numbers.
        let first = events_since(&store, &tenant(), 0, 2)?;
        assert_eq!(first.events, kept[..2]);
        assert!(first.more);
        let rest = events_since(&store, &tenant(), first.next_after, 1000)?;
        assert_eq!(rest.events, kept[2..]);

        for (probe, expected) in [
            (NOW, kept[0].sequence),
            (NOW + 2 * DAY, kept[0].sequence),
            (NOW + 4 * DAY, kept[0].sequence),
            (NOW + 5 * DAY, kept[1].sequence),
            (NOW + 9 * DAY, kept[5].sequence),
            // None: one past the last stored event (the trailing gap 14).
            (NOW + 10 * DAY, 14),
        ] {
            let found = first_sequence_at_or_after(&store, &tenant(), probe)?;
            // A gap before the match may be included: the next stored event is the answer.
            let next = kept
                .iter()
                .find(|e| e.sequence >= found)
                .map(|e| e.sequence);
            assert_eq!(next.unwrap_or(found), expected, "{flavour}: at {probe}");
        }
        // The dispatcher carries on from its cursor.
        let batch = pending(&store, &tenant(), 100, now)?;
        assert_eq!(
            batch.entries.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            [12, 13],
            "{flavour}"
        );
    }
    Ok(())
}

#[test]
fn purging_twice_is_idempotent() -> Result<(), Error> {
    for (flavour, store) in stores() {
        for i in 0..4 {
            publish(&store, &i.to_string(), NOW)?;
        }
        publish(&store, "young", NOW + RETENTION)?;
        dispatch_all(&store)?;
        let now = NOW + RETENTION;
        let first = purge_expired(&store, &tenant(), RETENTION, now, 100)?;
        assert_eq!(first.events, 4);
        let keys = store.keys();
        let second = purge_expired(&store, &tenant(), RETENTION, now, 100)?;
        assert_eq!(
            second,
            Purged {
                up_to_sequence: 4,
                ..Purged::default()
            },
            "{flavour}"
        );
        assert_eq!(store.keys(), keys, "{flavour}: nothing changed");
        // A cursor set back (two first purges on Spin's SQLite store) only re-walks.
        store.delete(&keys::record(&tenant(), PENDING_EVENTS, "purged"))?;
        let again = purge_expired(&store, &tenant(), RETENTION, now, 100)?;
        assert_eq!(again.events, 0, "{flavour}");
        assert_eq!(
            again.up_to_sequence, 0,
            "{flavour}: held until the next expiry"
        );
        let later = purge_expired(&store, &tenant(), RETENTION, now + RETENTION, 100)?;
        assert_eq!(ids(&later.purged), ["young"]);
        assert_eq!(later.up_to_sequence, 5);
    }
    Ok(())
}

#[test]
fn an_event_filed_twice_by_a_takeover_is_purged_once_with_both_entries() -> Result<(), Error> {
    for (flavour, store) in stores() {
        let id = identity("/applications/shop", "1")?;
        claim(&store, &tenant(), &id)?; // The owner stalls here...
        let takeover =
            store_event_with(&store, &tenant(), event("1"), NOW, &Patience::no_sleep(2))?;
        assert!(!takeover.duplicate);
        // ...and wakes up, finishing its steps over the takeover's.
        let late = write_record(&store, &tenant(), &id, event("1"), NOW + 10)?;
        assert_eq!(log_entries(&store), 2);
        publish(&store, "young", NOW + RETENTION)?;
        dispatch_all(&store)?;

        let done = purge_expired(&store, &tenant(), RETENTION, NOW + RETENTION + 10, 100)?;
        assert_eq!(done.purged, [late], "{flavour}: reported once");
        assert_eq!(done.up_to_sequence, 2);
        assert!(gone(&store, "1")?);
        assert_eq!(log_entries(&store), 1, "{flavour}: only the young event's");
    }
    Ok(())
}

#[test]
fn an_entry_of_a_young_event_filed_again_is_deleted_once_settled() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    publish(&store, "old", NOW)?; // 1
    // Entry 2 names an event whose record carries 3 (filed again); that event is young.
    let young = publish(&store, "young", NOW + 3 * DAY)?;
    assert_eq!(young.sequence, 2);
    let mut refiled = young.clone();
    refiled.sequence = 3;
    take_a_number(&store)?;
    store.set_json(&entry_key(3), &young.id)?;
    store.set_json(&keys::record_for(&tenant(), &young.id), &refiled)?;
    publish(&store, "old-too", NOW)?; // 4: accepted with `old` (a slow publish)
    dispatch_all(&store)?;

    let done = purge_expired(&store, &tenant(), RETENTION, NOW + RETENTION, 100)?;
    assert_eq!(
        ids(&done.purged),
        ["old"],
        "stops at the young event's own entry"
    );
    assert_eq!(done.up_to_sequence, 1);
    assert!(
        store.exists(&entry_key(2))?,
        "held until an expired event follows"
    );
    assert_eq!(
        get_event(&store, &tenant(), &young.id)?,
        Some(refiled),
        "the young event is kept"
    );

    let later = purge_expired(&store, &tenant(), RETENTION, NOW + 3 * DAY + RETENTION, 100)?;
    assert_eq!(ids(&later.purged), ["young", "old-too"]);
    assert_eq!(later.up_to_sequence, 4);
    assert_eq!(log_entries(&store), 0);
    assert!(gone(&store, "young")?);
    Ok(())
}

#[test]
fn a_stale_purge_never_deletes_an_event_published_again() -> Result<(), Error> {
    // Just before this purge marks the record, another purge removes that event and the
    // publisher publishes it again (a new record under the same key).
    let fired = AtomicBool::new(false);
    let store = CasHookStore::new(MemoryStore::spin_sqlite_like(), |inner, key, _, _| {
        let backend = |e: Error| StoreError::Backend(e.to_string());
        let id = identity("/applications/shop", "1").map_err(backend)?;
        if *key == keys::record_for(&tenant(), &id.id) && !fired.swap(true, Ordering::SeqCst) {
            let other =
                purge_expired(inner, &tenant(), RETENTION, NOW + RETENTION, 1).map_err(backend)?;
            assert_eq!(other.events, 1);
            let again =
                store_event(inner, &tenant(), event("1"), NOW + RETENTION).map_err(backend)?;
            assert!(!again.duplicate);
        }
        Ok(None)
    });
    publish(&store.inner, "1", NOW)?;
    dispatch_all(&store.inner)?;
    let stale = purge_expired(&store, &tenant(), RETENTION, NOW + RETENTION, 10)?;
    assert!(fired.load(Ordering::SeqCst));
    assert_eq!(stale.events, 0, "its record changed: it stops");
    assert!(stale.more);
    // The new event is whole: record, claim and log entry, and the dispatcher gets it.
    let id: EventId = identity("/applications/shop", "1")?.id;
    let new = get_event(&store, &tenant(), &id)?.expect("kept");
    assert_eq!(new.sequence, 2);
    assert!(store.exists(&claim_key("1")?)?);
    let batch = pending(&store, &tenant(), 10, NOW + RETENTION)?;
    assert_eq!(batch.entries.len(), 1);
    assert_eq!(batch.entries[0].sequence, 2);
    Ok(())
}

#[test]
fn a_record_another_purge_is_deleting_is_left_to_it() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let stored = publish(&store, "1", NOW)?;
    dispatch_all(&store)?;
    // Another purge marked the record and is about to delete it (or died doing so).
    let key = keys::record_for(&tenant(), &stored.id);
    let mut marked = store.get(&key)?.expect("record");
    marked.push(b' ');
    store.set(&key, &marked)?;
    assert_eq!(
        get_event(&store, &tenant(), &stored.id)?,
        Some(stored.clone())
    );

    let done = purge_expired(&store, &tenant(), RETENTION, NOW + RETENTION, 10)?;
    assert_eq!(done.purged, [stored]);
    assert_eq!(done.up_to_sequence, 1);
    assert!(!store.exists(&claim_key("1")?)? && log_entries(&store) == 0);
    assert_eq!(
        store.get(&key)?,
        Some(marked),
        "left to the purge that marked it"
    );
    Ok(())
}

#[test]
fn concurrent_purges_remove_every_expired_event_and_keep_the_young() -> Result<(), Error> {
    for (flavour, store) in stores() {
        let store = Arc::new(store);
        for i in 0..200 {
            publish(store.as_ref(), &format!("old{i}"), NOW + i)?;
        }
        for i in 0..20 {
            publish(store.as_ref(), &format!("young{i}"), NOW + RETENTION)?;
        }
        dispatch_all(store.as_ref())?;
        let now = NOW + RETENTION + 1000;
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                std::thread::spawn(move || -> Result<Vec<String>, Error> {
                    barrier.wait();
                    let mut purged = Vec::new();
                    loop {
                        let done = purge_expired(store.as_ref(), &tenant(), RETENTION, now, 7)?;
                        purged.extend(ids(&done.purged));
                        if !done.more {
                            return Ok(purged);
                        }
                    }
                })
            })
            .collect();
        let mut reported = BTreeSet::new();
        for thread in threads {
            reported.extend(thread.join().expect("thread panicked")?);
        }
        // Between them, the calls reported exactly the old ones.
        let last = purge_expired(store.as_ref(), &tenant(), RETENTION, now, 1000)?;
        reported.extend(ids(&last.purged));
        let old: BTreeSet<String> = (0..200).map(|i| format!("old{i}")).collect();
        assert_eq!(reported, old, "{flavour}");
        if flavour == "plain" {
            assert_eq!(last.up_to_sequence, 200);
        } else {
            // Two first writes of the cursor may both win there, leaving it lower: it only
            // holds until the next event expires.
            assert!(last.up_to_sequence <= 200, "{flavour}");
        }
        for i in 0..200 {
            assert!(gone(store.as_ref(), &format!("old{i}"))?, "{flavour}");
        }
        assert_eq!(event_records(&store).len(), 20, "{flavour}");
        assert_eq!(log_entries(&store), 20, "{flavour}");
        assert_eq!(
            events_since(store.as_ref(), &tenant(), 0, 1000)?
                .events
                .len(),
            20
        );
        let young = purge_expired(store.as_ref(), &tenant(), RETENTION, now + RETENTION, 1000)?;
        assert_eq!(young.events, 20, "{flavour}");
        assert_eq!(young.up_to_sequence, 220, "{flavour}");
    }
    Ok(())
}
