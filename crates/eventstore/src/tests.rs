//! Tests of storing events and of the event log, including crashes between steps (simulated
//! by running the internal steps partially) and concurrency on both store flavours.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use eventplane_core::keys::{self, EVENTS_BY_SEQUENCE, PENDING_EVENTS};
use eventplane_core::{
    CasHookStore, Error, KvStore, KvStoreExt, MemoryStore, StoreError, TenantId,
};
use serde_json::json;

use crate::event::identity;
use crate::events::{claim, write_record};
use crate::{
    EventData, GAP_GRACE_MS, LogCursor, NewEvent, Patience, PendingEntry, advance, events_since,
    get_event, pending, store_event, store_event_with,
};

/// 2023-11-14T22:13:20Z in Unix milliseconds (minute 28333333).
pub(crate) const NOW: u64 = 1_700_000_000_000;

pub(crate) fn tenant() -> TenantId {
    TenantId::new("acme").expect("tenant")
}

pub(crate) fn event(id: &str) -> NewEvent {
    NewEvent {
        application: "shop".into(),
        app_id: "app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f"
            .parse()
            .expect("app id"),
        source: "/applications/shop".into(),
        event_id: id.into(),
        type_name: "order.created.v1".into(),
        type_version: Some("v1".into()),
        spec_version: "1.0".into(),
        time: Some("2023-11-14T22:13:19Z".into()),
        datacontenttype: Some("application/json".into()),
        dataschema: None,
        subject: None,
        extensions: [("traceparent".to_owned(), json!("00-abc-01"))].into(),
        data: EventData::Json(json!({"orderId": id})),
    }
}

pub(crate) fn stores() -> [(&'static str, MemoryStore); 3] {
    [
        ("plain", MemoryStore::new()),
        ("spin-sqlite-like", MemoryStore::spin_sqlite_like()),
        ("spin-redis-like", MemoryStore::spin_redis_like()),
    ]
}

/// Every `(sequence, event id)` the log hands over from its start, as the dispatcher reads it.
fn queued(store: &dyn KvStore) -> Result<Vec<(u64, String)>, Error> {
    Ok(pending(store, &tenant(), 1000, NOW)?
        .entries
        .into_iter()
        .map(|e| (e.sequence, e.event_id.to_string()))
        .collect())
}

/// How many log entries exist, read straight from the store.
pub(crate) fn log_entries(store: &MemoryStore) -> usize {
    store
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("t/acme/r/event-by-seq/"))
        .count()
}

pub(crate) fn event_records(store: &MemoryStore) -> Vec<String> {
    store
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("t/acme/r/evt/"))
        .collect()
}

#[test]
fn storing_the_same_event_twice_keeps_one_record() -> Result<(), Error> {
    for (flavour, store) in stores() {
        let first = store_event(&store, &tenant(), event("1"), NOW)?;
        assert!(!first.duplicate, "{flavour}");
        assert_eq!(first.event.received_at, NOW);
        assert_eq!(first.event.sequence, 1);
        let mut changed = event("1");
        changed.data = EventData::Text("something else".into());
        let second = store_event(&store, &tenant(), changed, NOW + 1000)?;
        assert!(second.duplicate, "{flavour}");
        assert_eq!(second.event, first.event, "{flavour}");
        assert_eq!(event_records(&store).len(), 1, "{flavour}");
        assert_eq!(queued(&store)?.len(), 1, "{flavour}");
        assert_eq!(
            get_event(&store, &tenant(), &first.event.id)?,
            Some(first.event)
        );
    }
    Ok(())
}

#[test]
fn different_sources_with_the_same_id_are_different_events() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let a = store_event(&store, &tenant(), event("1"), NOW)?;
    let mut other = event("1");
    other.source = "/applications/erp".into();
    let b = store_event(&store, &tenant(), other, NOW)?;
    assert!(!b.duplicate);
    assert_ne!(a.event.id, b.event.id);
    assert_eq!(event_records(&store).len(), 2);
    Ok(())
}

#[test]
fn sixty_four_concurrent_identical_stores_keep_one_record_and_one_log_entry() -> Result<(), Error> {
    let patience = Patience {
        rounds: 2000,
        pause: Duration::from_millis(1),
        sleep: std::thread::sleep,
    };
    for round in 0..4 {
        for (flavour, store) in stores() {
            let store = Arc::new(store);
            let barrier = Arc::new(Barrier::new(64));
            let threads: Vec<_> = (0..64)
                .map(|_| {
                    let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        barrier.wait();
                        store_event_with(store.as_ref(), &tenant(), event("same"), NOW, &patience)
                    })
                })
                .collect();
            let mut results = Vec::new();
            for thread in threads {
                results.push(thread.join().expect("thread panicked")?);
            }
            let context = format!("round {round}, {flavour}");
            assert_eq!(
                results.iter().filter(|r| !r.duplicate).count(),
                1,
                "{context}"
            );
            let sequences: BTreeSet<u64> = results.iter().map(|r| r.event.sequence).collect();
            assert_eq!(sequences.len(), 1, "{context}");
            assert_eq!(event_records(&store).len(), 1, "{context}");
            let stored =
                get_event(store.as_ref(), &tenant(), &results[0].event.id)?.expect("stored");
            assert_eq!(
                queued(store.as_ref())?,
                [(stored.sequence, stored.id.to_string())],
                "{context}"
            );
            assert_eq!(log_entries(&store), 1, "{context}");
        }
    }
    Ok(())
}

#[test]
fn sixty_four_concurrent_different_events_are_all_stored_and_queued() -> Result<(), Error> {
    for (flavour, store) in stores() {
        let store = Arc::new(store);
        let barrier = Arc::new(Barrier::new(64));
        let threads: Vec<_> = (0..64)
            .map(|i| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    store_event(store.as_ref(), &tenant(), event(&format!("e{i}")), NOW)
                })
            })
            .collect();
        let mut sequences = BTreeSet::new();
        for thread in threads {
            let stored = thread.join().expect("thread panicked")?;
            assert!(!stored.duplicate);
            sequences.insert(stored.event.sequence);
        }
        assert_eq!(sequences, (1..=64).collect(), "{flavour}");
        assert_eq!(event_records(&store).len(), 64, "{flavour}");
        let logged = queued(store.as_ref())?;
        assert_eq!(
            logged.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            (1..=64).collect::<Vec<_>>(),
            "{flavour}: in acceptance order"
        );
    }
    Ok(())
}

#[test]
fn a_claim_whose_owner_died_before_writing_is_taken_over() -> Result<(), Error> {
    for (flavour, store) in stores() {
        let id = identity("/applications/shop", "1")?;
        assert_eq!(claim(&store, &tenant(), &id)?, 1); // ...and the owner dies here.
        static SLEEPS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let patience = Patience {
            rounds: 5,
            pause: Duration::from_secs(3600),
            sleep: |_| {
                SLEEPS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            },
        };
        let before = SLEEPS.load(std::sync::atomic::Ordering::SeqCst);
        let retry = store_event_with(&store, &tenant(), event("1"), NOW, &patience)?;
        assert!(SLEEPS.load(std::sync::atomic::Ordering::SeqCst) - before >= 5);
        assert!(!retry.duplicate, "{flavour}");
        assert_eq!(retry.event.id, id.id);
        assert_eq!(
            get_event(&store, &tenant(), &id.id)?,
            Some(retry.event.clone())
        );
        assert_eq!(queued(&store)?.len(), 1, "{flavour}");
        // A third attempt is a plain duplicate.
        let third = store_event(&store, &tenant(), event("1"), NOW)?;
        assert!(third.duplicate);
        assert_eq!(third.event, retry.event);
    }
    Ok(())
}

#[test]
fn a_log_entry_whose_record_was_never_written_is_taken_over() -> Result<(), Error> {
    for (flavour, store) in stores() {
        let id = identity("/applications/shop", "1")?;
        assert_eq!(claim(&store, &tenant(), &id)?, 1);
        // The owner took sequence 1 and wrote the log entry, but not the record (a backend
        // that applies set_many one key at a time), and died.
        let sequence = store.increment(&keys::counter(&tenant(), keys::EVENT_SEQUENCE), 1)?;
        store.set_json(&keys::record(&tenant(), EVENTS_BY_SEQUENCE, "1"), &id.id)?;
        assert_eq!(sequence, 1);
        assert!(
            queued(&store)?.is_empty(),
            "{flavour}: no record, nothing handed over"
        );

        let retry = store_event_with(&store, &tenant(), event("1"), NOW, &Patience::no_sleep(0))?;
        assert!(!retry.duplicate, "{flavour}");
        assert_eq!(retry.event.sequence, 2);
        // The log hands it over once, under the sequence its record carries.
        assert_eq!(queued(&store)?, [(2, id.id.to_string())], "{flavour}");
    }
    Ok(())
}

#[test]
fn a_slow_owner_and_a_takeover_still_leave_one_record() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let id = identity("/applications/shop", "1")?;
    claim(&store, &tenant(), &id)?; // The owner stalls here...
    let takeover = store_event_with(&store, &tenant(), event("1"), NOW, &Patience::no_sleep(2))?;
    assert!(!takeover.duplicate);
    // ...and wakes up, finishing its steps over the takeover's.
    let late = write_record(&store, &tenant(), &id, event("1"), NOW + 10)?;
    assert_eq!(event_records(&store).len(), 1);
    assert_eq!(get_event(&store, &tenant(), &id.id)?, Some(late.clone()));
    // Both writers logged the id, each under its own sequence number; the log hands it over
    // once, under the sequence the record carries.
    assert_eq!(log_entries(&store), 2);
    assert_eq!(queued(&store)?, [(late.sequence, id.id.to_string())]);
    // Replay yields it once, under the sequence its record carries.
    let page = events_since(&store, &tenant(), 0, 10)?;
    assert_eq!(page.events, [late]);
    Ok(())
}

#[test]
fn sequences_increase_and_are_never_reused() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let mut last = 0;
    for i in 0..10 {
        let stored = store_event(&store, &tenant(), event(&format!("e{i}")), NOW + i)?;
        assert!(stored.event.sequence > last);
        last = stored.event.sequence;
        // Duplicates take no sequence number.
        store_event(&store, &tenant(), event(&format!("e{i}")), NOW + i)?;
    }
    assert_eq!(last, 10);
    // A writer that dies after taking a number leaves a gap, never a reuse.
    let id = identity("/applications/shop", "dies")?;
    claim(&store, &tenant(), &id)?;
    store.increment(&keys::counter(&tenant(), keys::EVENT_SEQUENCE), 1)?;
    let next = store_event(&store, &tenant(), event("next"), NOW + 20)?;
    assert_eq!(next.event.sequence, 12);
    Ok(())
}

#[test]
fn events_since_pages_in_acceptance_order_and_skips_gaps() -> Result<(), Error> {
    let store = MemoryStore::new();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            store_event(&store, &tenant(), event(&format!("e{i}")), NOW)?
                .event
                .id,
        );
        if i == 2 {
            // A gap: a sequence number taken by a writer that died.
            store.increment(&keys::counter(&tenant(), keys::EVENT_SEQUENCE), 1)?;
        }
    }
    let first = events_since(&store, &tenant(), 0, 2)?;
    assert_eq!(
        first
            .events
            .iter()
            .map(|e| e.id.clone())
            .collect::<Vec<_>>(),
        ids[..2]
    );
    assert!(first.more);
    let rest = events_since(&store, &tenant(), first.next_after, 10)?;
    assert_eq!(
        rest.events.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        ids[2..]
    );
    assert_eq!(rest.next_after, 6);
    assert!(!rest.more);
    let nothing = events_since(&store, &tenant(), 6, 10)?;
    assert!(nothing.events.is_empty() && !nothing.more && nothing.next_after == 6);
    Ok(())
}

#[test]
fn pending_reads_the_log_in_order_and_advance_moves_the_cursor() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let t = tenant();
    let empty = pending(&store, &t, 10, NOW)?;
    assert!(empty.entries.is_empty());
    assert!(advance(&store, &t, &empty)?);

    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            store_event(&store, &t, event(&i.to_string()), NOW)?
                .event
                .id,
        );
    }
    let first = pending(&store, &t, 3, NOW)?;
    assert_eq!(
        first.entries,
        (1..=3)
            .map(|s| PendingEntry {
                sequence: s,
                event_id: ids[s as usize - 1].clone()
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(first.to.next, 4);
    // Until advanced, the same batch comes again; a stale batch cannot advance.
    assert_eq!(pending(&store, &t, 3, NOW)?, first);
    assert!(advance(&store, &t, &first)?);
    assert!(!advance(&store, &t, &first)?, "someone else's cursor");
    let rest = pending(&store, &t, 100, NOW)?;
    assert_eq!(
        rest.entries.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [4, 5, 6, 7]
    );
    assert!(advance(&store, &t, &rest)?);
    assert!(pending(&store, &t, 100, NOW)?.entries.is_empty());
    // A later event is found again.
    let late = store_event(&store, &t, event("late"), NOW)?.event.id;
    let found = pending(&store, &t, 10, NOW)?;
    assert_eq!(
        found
            .entries
            .iter()
            .map(|e| e.event_id.clone())
            .collect::<Vec<_>>(),
        [late]
    );
    Ok(())
}

#[test]
fn a_gap_holds_readers_for_the_grace_period_then_is_skipped() -> Result<(), Error> {
    for (flavour, store) in stores() {
        let t = tenant();
        store_event(&store, &t, event("a"), NOW)?;
        // A writer takes sequence 2 and dies before writing anything.
        store.increment(&keys::counter(&t, keys::EVENT_SEQUENCE), 1)?;
        let c = store_event(&store, &t, event("c"), NOW)?.event;

        let batch = pending(&store, &t, 10, NOW)?;
        assert_eq!(batch.entries.len(), 1, "{flavour}: stops at the gap");
        assert!(advance(&store, &t, &batch)?);
        // At the gap: the first reader starts the clock.
        let waiting = pending(&store, &t, 10, NOW)?;
        assert!(waiting.entries.is_empty());
        assert_eq!(waiting.to.gap_since_ms, Some(NOW));
        assert!(advance(&store, &t, &waiting)?);
        let still = pending(&store, &t, 10, NOW + GAP_GRACE_MS - 1)?;
        assert!(
            still.entries.is_empty(),
            "{flavour}: within the grace period"
        );
        assert!(advance(&store, &t, &still)?);
        // After it, the gap is skipped.
        let after = pending(&store, &t, 10, NOW + GAP_GRACE_MS)?;
        assert_eq!(after.skipped, [2]);
        assert_eq!(
            after.entries,
            [PendingEntry {
                sequence: 3,
                event_id: c.id.clone()
            }],
            "{flavour}"
        );
        assert!(advance(&store, &t, &after)?);
        assert_eq!(
            store.get_json::<LogCursor>(&keys::record(&t, PENDING_EVENTS, "cursor"))?,
            Some(LogCursor {
                next: 4,
                gap_since_ms: None
            })
        );
    }
    Ok(())
}

#[test]
fn a_writer_the_readers_gave_up_on_files_its_event_again() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let t = tenant();
    // Readers skipped sequences 1 and 2 (their writers were too slow)...
    store.set_json(
        &keys::record(&t, PENDING_EVENTS, "cursor"),
        &LogCursor {
            next: 3,
            gap_since_ms: None,
        },
    )?;
    // ...so a writer that got 1 files its event again until it gets a number not yet passed.
    let stored = store_event(&store, &t, event("slow"), NOW)?.event;
    assert_eq!(stored.sequence, 3);
    assert_eq!(queued(&store)?, [(3, stored.id.to_string())]);
    Ok(())
}

#[test]
fn the_cursor_never_moves_past_an_entry_written_while_it_moves() -> Result<(), Error> {
    // Just before the reader's compare-and-swap of the log cursor past the gap, the gap's slow
    // writer finishes: it read the cursor before it moved (so it does not file again), and only
    // the reader's second look can catch the entry.
    let fired = AtomicBool::new(false);
    let store = CasHookStore::new(MemoryStore::new(), |inner, key, _, new| {
        let cursor = keys::record(&tenant(), PENDING_EVENTS, "cursor");
        if *key == cursor
            && new.windows(8).any(|w| w == b"\"next\":3")
            && !fired.swap(true, Ordering::SeqCst)
        {
            let backend = |e: String| StoreError::Backend(e);
            let id = identity("/applications/shop", "racer").map_err(|e| backend(e.to_string()))?;
            let mut slow =
                crate::event::StoredEvent::new(id.id.clone(), tenant(), event("racer"), NOW, 1);
            slow.sequence = 1;
            let entry = serde_json::to_vec(&id.id).map_err(|e| backend(e.to_string()))?;
            let record = serde_json::to_vec(&slow).map_err(|e| backend(e.to_string()))?;
            inner.set(&keys::record(&tenant(), EVENTS_BY_SEQUENCE, "1"), &entry)?;
            inner.set(&keys::record_for(&tenant(), &id.id), &record)?;
        }
        Ok(None)
    });
    let t = tenant();
    // Sequence 1 is taken by a slow writer; 2 is stored; the gap at 1 has outlived the grace.
    store.increment(&keys::counter(&t, keys::EVENT_SEQUENCE), 1)?;
    store_event(&store, &t, event("b"), NOW)?;
    store.inner.set_json(
        &keys::record(&t, PENDING_EVENTS, "cursor"),
        &LogCursor {
            next: 1,
            gap_since_ms: Some(NOW - GAP_GRACE_MS),
        },
    )?;
    let batch = pending(&store, &t, 10, NOW)?;
    assert_eq!(batch.skipped, [1]);
    assert!(advance(&store, &t, &batch)?);
    assert!(fired.load(Ordering::SeqCst));
    // The reader saw the late entry and moved the cursor back to it.
    let again = pending(&store, &t, 10, NOW)?;
    assert_eq!(
        again.entries.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2]
    );
    Ok(())
}

#[test]
fn unknown_events_are_absent_and_other_tenants_see_nothing() -> Result<(), Error> {
    let store = MemoryStore::new();
    let stored = store_event(&store, &tenant(), event("1"), NOW)?;
    let other = TenantId::new("other").expect("tenant");
    assert_eq!(get_event(&store, &other, &stored.event.id)?, None);
    assert!(pending(&store, &other, 10, NOW)?.entries.is_empty());
    let unknown = identity("/applications/shop", "never")?.id;
    assert_eq!(get_event(&store, &tenant(), &unknown)?, None);
    Ok(())
}

#[test]
fn the_first_sequence_at_or_after_a_time_is_found_across_gaps() -> Result<(), Error> {
    let store = MemoryStore::new();
    let t = tenant();
    assert_eq!(crate::first_sequence_at_or_after(&store, &t, NOW)?, 1);
    for i in 0..20u64 {
        store_event(&store, &t, event(&i.to_string()), NOW + i * 10)?;
        if i % 3 == 0 {
            // A gap: a writer that took a number and died.
            store.increment(&keys::counter(&t, keys::EVENT_SEQUENCE), 1)?;
        }
    }
    let events = events_since(&store, &t, 0, 1000)?.events;
    for probe in [
        NOW - 1,
        NOW,
        NOW + 5,
        NOW + 10,
        NOW + 95,
        NOW + 190,
        NOW + 191,
    ] {
        let expected = events
            .iter()
            .find(|e| e.received_at >= probe)
            .map_or(events.last().map_or(1, |e| e.sequence + 1), |e| e.sequence);
        let found = crate::first_sequence_at_or_after(&store, &t, probe)?;
        // Gaps before the first match may be included: the next stored event is the answer.
        let next = events
            .iter()
            .find(|e| e.sequence >= found)
            .map(|e| e.sequence);
        assert_eq!(next.unwrap_or(found), expected, "at {probe}");
    }
    Ok(())
}
