//! Tests of storing events and of the pending queue, including crashes between steps
//! (simulated by running the internal steps partially) and concurrency on both store flavours.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use eventplane_core::keys::{self, DueBucket, PENDING_EVENTS};
use eventplane_core::{Error, Key, KvStore, KvStoreExt, MemoryStore, StoreError, TenantId};
use serde_json::json;

use crate::event::identity;
use crate::events::{PENDING_BUCKET_EVENTS, bucket_of, claim, enqueue, write_record};
use crate::{
    EventData, NewEvent, Patience, PendingEntry, ack, due, events_since, get_event, pending,
    store_event, store_event_with,
};

/// 2023-11-14T22:13:20Z in Unix milliseconds (minute 28333333).
const NOW: u64 = 1_700_000_000_000;
const MINUTE: u64 = 60_000;

fn tenant() -> TenantId {
    TenantId::new("acme").expect("tenant")
}

fn event(id: &str) -> NewEvent {
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

fn stores() -> [(&'static str, MemoryStore); 2] {
    [
        ("plain", MemoryStore::new()),
        ("spin-sqlite-like", MemoryStore::spin_sqlite_like()),
    ]
}

/// Every `(bucket key, member)` of the pending queue, read straight from the store.
fn queued(store: &MemoryStore) -> Result<Vec<(String, String)>, Error> {
    let prefix = "t/acme/due/event-pending/";
    let mut all = Vec::new();
    for key in store.keys().into_iter().filter(|k| k.starts_with(prefix)) {
        let minute: u64 = key[prefix.len()..].parse().expect("minute");
        let index = keys::due(&tenant(), PENDING_EVENTS, DueBucket::from_minute(minute));
        let members: BTreeSet<String> = store.get_json(&index)?.unwrap_or_default();
        all.extend(members.into_iter().map(|m| (key.clone(), m)));
    }
    Ok(all)
}

fn event_records(store: &MemoryStore) -> Vec<String> {
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
        assert!(first.event.queued);
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
fn sixty_four_concurrent_identical_stores_keep_one_record_and_one_queue_entry() -> Result<(), Error>
{
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
            assert!(stored.queued, "{context}");
            assert_eq!(
                queued(&store)?,
                [(
                    format!(
                        "t/acme/due/event-pending/{}",
                        bucket_of(stored.sequence).minute()
                    ),
                    stored.id.to_string()
                )],
                "{context}"
            );
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
        assert_eq!(queued(&store)?.len(), 64, "{flavour}");
        assert_eq!(
            pending(store.as_ref(), &tenant(), 1000)?.len(),
            64,
            "{flavour}"
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
        assert!(retry.event.queued);
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
fn a_record_whose_owner_died_before_queuing_is_queued_by_the_retry() -> Result<(), Error> {
    for (flavour, store) in stores() {
        let id = identity("/applications/shop", "1")?;
        assert_eq!(claim(&store, &tenant(), &id)?, 1);
        let written = write_record(&store, &tenant(), &id, event("1"), NOW)?;
        assert!(!written.queued); // ...and the owner dies here.
        assert!(pending(&store, &tenant(), 10)?.is_empty());

        let retry = store_event_with(
            &store,
            &tenant(),
            event("1"),
            NOW + 500,
            &Patience::no_sleep(0),
        )?;
        assert!(retry.duplicate, "{flavour}");
        assert!(retry.event.queued);
        assert_eq!(retry.event.sequence, written.sequence);
        assert_eq!(retry.event.received_at, NOW);
        assert_eq!(queued(&store)?.len(), 1, "{flavour}");
        assert_eq!(
            pending(&store, &tenant(), 10)?,
            [PendingEntry {
                event_id: id.id.clone(),
                bucket: bucket_of(written.sequence)
            }]
        );
    }
    Ok(())
}

#[test]
fn a_record_queued_but_not_marked_is_not_queued_twice() -> Result<(), Error> {
    for (flavour, store) in stores() {
        let id = identity("/applications/shop", "1")?;
        claim(&store, &tenant(), &id)?;
        let written = write_record(&store, &tenant(), &id, event("1"), NOW)?;
        due::add(
            &store,
            &tenant(),
            PENDING_EVENTS,
            bucket_of(written.sequence),
            id.id.as_str(),
            &Patience::no_sleep(0),
        )?; // ...and the owner dies before marking the record queued.
        let retry = store_event(&store, &tenant(), event("1"), NOW + 3 * MINUTE)?;
        assert!(retry.duplicate);
        assert!(retry.event.queued);
        assert_eq!(retry.event.sequence, written.sequence);
        assert_eq!(queued(&store)?.len(), 1, "{flavour}");
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
    let late = enqueue(&store, &tenant(), late, &Patience::no_sleep(0))?;
    assert_eq!(event_records(&store).len(), 1);
    assert_eq!(get_event(&store, &tenant(), &id.id)?, Some(late.clone()));
    // Each writer queued the id under its own sequence number: at most two entries for one
    // event, which at-least-once delivery tolerates.
    let entries = queued(&store)?;
    assert!(!entries.is_empty() && entries.len() <= 2, "{entries:?}");
    assert!(
        entries
            .iter()
            .all(|(_, member)| *member == id.id.to_string())
    );
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
fn pending_walks_the_buckets_from_the_cursor_and_ack_advances_it() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let t = tenant();
    let cursor = |store: &MemoryStore| due::cursor(store, &t, PENDING_EVENTS);
    assert!(pending(&store, &t, 10)?.is_empty());
    assert_eq!(cursor(&store)?, None);

    // Enough events to fill two buckets and start a third.
    let n = 2 * PENDING_BUCKET_EVENTS + 3;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            store_event(&store, &t, event(&i.to_string()), NOW)?
                .event
                .id,
        );
    }
    assert_eq!(cursor(&store)?, Some(bucket_of(1)));

    // Oldest first, limited.
    let first = pending(&store, &t, 5)?;
    assert_eq!(
        first.iter().map(|e| e.bucket).collect::<Vec<_>>(),
        vec![bucket_of(1); 5]
    );
    let all = pending(&store, &t, 1000)?;
    assert_eq!(all.len() as u64, n);
    let mut listed: Vec<_> = all.iter().map(|e| e.event_id.clone()).collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);

    // Acking a whole bucket moves the cursor past it; acking twice is a no-op.
    for entry in all.iter().filter(|e| e.bucket == bucket_of(1)) {
        assert!(ack(&store, &t, entry)?);
        assert!(!ack(&store, &t, entry)?);
    }
    assert_eq!(cursor(&store)?, Some(bucket_of(PENDING_BUCKET_EVENTS)));
    for entry in &all {
        ack(&store, &t, entry)?;
    }
    assert!(pending(&store, &t, 10)?.is_empty());

    // A later event is found again.
    let late = store_event(&store, &t, event("late"), NOW)?.event.id;
    let found = pending(&store, &t, 10)?;
    assert_eq!(
        found.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>(),
        [late]
    );
    Ok(())
}

#[test]
fn a_bucket_whose_elected_creator_died_is_skipped_for_the_next() -> Result<(), Error> {
    for (flavour, store) in stores() {
        let t = tenant();
        let m = bucket_of(1);
        // The writer elected to create bucket m's index dies right after its election.
        assert_eq!(
            store.increment(&keys::due_seed(&t, PENDING_EVENTS, m), 1)?,
            1
        );
        let stored = store_event_with(&store, &t, event("1"), NOW, &Patience::no_sleep(3))?;
        assert!(stored.event.queued);
        let next = pending(&store, &t, 10)?;
        assert_eq!(
            next,
            [PendingEntry {
                event_id: stored.event.id,
                bucket: m.next()
            }],
            "{flavour}"
        );
    }
    Ok(())
}

/// A store that, just before the first compare-and-swap of the pending queue's cursor, lets a
/// "writer" add a member to the bucket the cursor is about to leave: the writer read the cursor
/// before it moved, so only the reader's second look can catch the member.
struct RacingWriter {
    inner: MemoryStore,
    fired: std::sync::atomic::AtomicBool,
}

impl KvStore for RacingWriter {
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn set(&self, key: &Key, value: &[u8]) -> Result<(), StoreError> {
        self.inner.set(key, value)
    }
    fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.inner.delete(key)
    }
    fn exists(&self, key: &Key) -> Result<bool, StoreError> {
        self.inner.exists(key)
    }
    fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let cursor = keys::due_cursor(&tenant(), PENDING_EVENTS);
        if *key == cursor && !self.fired.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let bucket = keys::due(&tenant(), PENDING_EVENTS, DueBucket::from_minute(0));
            let member = identity("/applications/shop", "racer")
                .map_err(|e| StoreError::Backend(e.to_string()))?
                .id;
            self.inner
                .index_add(&bucket, member.as_str())
                .map_err(|e| StoreError::Backend(e.to_string()))?;
        }
        self.inner.compare_and_swap(key, expected, new)
    }
    fn increment(&self, key: &Key, delta: i64) -> Result<i64, StoreError> {
        self.inner.increment(key, delta)
    }
}

#[test]
fn the_cursor_never_moves_past_a_member_added_while_it_moves() -> Result<(), Error> {
    let store = RacingWriter {
        inner: MemoryStore::new(),
        fired: false.into(),
    };
    let t = tenant();
    let m = DueBucket::from_minute(0);
    // An empty but existing bucket m, and the cursor on it.
    store.inner.set_json(
        &keys::due(&t, PENDING_EVENTS, m),
        &BTreeSet::<String>::new(),
    )?;
    store
        .inner
        .set_json(&keys::due_cursor(&t, PENDING_EVENTS), &m)?;
    let found = pending(&store, &t, 10)?;
    assert!(store.fired.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].bucket, m);
    assert_eq!(due::cursor(&store, &t, PENDING_EVENTS)?, Some(m));
    Ok(())
}

#[test]
fn unknown_events_are_absent_and_other_tenants_see_nothing() -> Result<(), Error> {
    let store = MemoryStore::new();
    let stored = store_event(&store, &tenant(), event("1"), NOW)?;
    let other = TenantId::new("other").expect("tenant");
    assert_eq!(get_event(&store, &other, &stored.event.id)?, None);
    assert!(pending(&store, &other, 10)?.is_empty());
    let unknown = identity("/applications/shop", "never")?.id;
    assert_eq!(get_event(&store, &tenant(), &unknown)?, None);
    Ok(())
}
