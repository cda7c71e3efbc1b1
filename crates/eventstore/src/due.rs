//! Due queues: items bucketed by minute, found without scanning the store, safe on every Spin
//! backend. Generic over the queue's [`Kind`]; the event store's pending queue is one of them,
//! and the dispatcher can use the same functions for its retries.
//!
//! ## Layout
//!
//! An item due at time `t` is a member of the index `keys::due(tenant, kind, bucket)` of the
//! minute `bucket` containing `t`. The cursor `keys::due_cursor(tenant, kind)` holds a minute
//! such that every bucket before it is known to be empty; readers walk from the cursor up to
//! the current minute.
//!
//! ## Creating a bucket's index
//!
//! [`KvStoreExt::index_add`] on an absent key is a compare-and-swap against "absent", which
//! Spin's SQLite store performs as an unconditional write: two writers adding the first two
//! members of a fresh bucket at once could lose one. So a bucket's index is created only by
//! the writer whose `increment` of `keys::due_seed(tenant, kind, bucket)` returns 1 (it writes
//! the index holding its own member); everyone else waits for the index to exist and then only
//! changes it by compare-and-swap against its present value. If the elected writer died between
//! its increment and its write, the index never appears: after waiting, the others use the next
//! minute's bucket instead (at most [`MAX_FALLBACK_BUCKETS`] of them), which delays the item by
//! a minute but never loses it. Indexes of buckets are never deleted, so they are never
//! re-created.
//!
//! ## The cursor never skips an item
//!
//! A reader moves the cursor from `c` to `c + 1` only when bucket `c` is empty and lies before
//! the current minute, by compare-and-swap against the value it read, and then reads bucket
//! `c` again; a writer adds its member first and then makes sure the cursor is at most its
//! bucket (lowering it if not). Both sides write first and read second, so on a linearizable
//! store at least one of them sees the other: either the writer sees the moved cursor and
//! lowers it, or the reader's second read sees the member and lowers the cursor back. Lowering
//! the cursor is never wrong (it only makes readers look at buckets again).
//!
//! The first write of the cursor is a compare-and-swap against "absent", an unconditional
//! write on Spin's SQLite store; that is harmless here because the writer reads the cursor
//! again afterwards and lowers it again if someone else's larger value won.

use eventplane_core::keys::{self, DueBucket, Kind};
use eventplane_core::{
    Error, Key, KvStore, KvStoreExt, MAX_INDEX_PAGE, MAX_UPDATE_ATTEMPTS, TenantId,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use crate::Patience;

/// How many later buckets a writer tries when the writer elected to create a bucket's index
/// died before creating it.
pub const MAX_FALLBACK_BUCKETS: u64 = 3;

/// The most buckets one [`scan`] or [`advance`] looks at (a day of minutes), so that a call
/// stays bounded even when the cursor is far behind; the cursor's progress carries over.
pub const MAX_BUCKETS_PER_CALL: u64 = 1440;

/// One item of a due queue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DueItem {
    /// The bucket the item is filed under.
    pub bucket: DueBucket,
    /// The item (an id).
    pub member: String,
}

type Members = BTreeSet<String>;

/// Adds `member` to the queue `kind` in `bucket` (or, if that bucket's index cannot be created,
/// in one of the next [`MAX_FALLBACK_BUCKETS`] - 1 buckets). Returns the bucket used. Adding a
/// member that is already in that bucket changes nothing.
pub fn add(
    store: &dyn KvStore,
    tenant: &TenantId,
    kind: Kind,
    bucket: DueBucket,
    member: &str,
    patience: &Patience,
) -> Result<DueBucket, Error> {
    let mut candidate = bucket;
    for _ in 0..MAX_FALLBACK_BUCKETS {
        if add_to_bucket(store, tenant, kind, candidate, member, patience)? {
            ensure_cursor_at_most(store, tenant, kind, candidate)?;
            return Ok(candidate);
        }
        candidate = candidate.next();
    }
    Err(Error::internal(format!(
        "the due index of {kind} for minute {} and the next ones were never created",
        bucket.minute()
    )))
}

/// Adds `member` to one bucket's index; `Ok(false)` if the index does not exist and will not
/// (its elected creator died).
fn add_to_bucket(
    store: &dyn KvStore,
    tenant: &TenantId,
    kind: Kind,
    bucket: DueBucket,
    member: &str,
    patience: &Patience,
) -> Result<bool, Error> {
    let index = keys::due(tenant, kind, bucket);
    if add_to_existing(store, &index, member)? {
        return Ok(true);
    }
    if store.increment(&keys::due_seed(tenant, kind, bucket), 1)? == 1 {
        // Elected: nobody else writes this key until it exists.
        store.set_json(&index, &Members::from([member.to_owned()]))?;
        return Ok(true);
    }
    for round in 0..=patience.rounds {
        if add_to_existing(store, &index, member)? {
            return Ok(true);
        }
        if round < patience.rounds {
            (patience.sleep)(patience.pause);
        }
    }
    Ok(false)
}

/// Adds `member` to `index` by compare-and-swap if the index exists; `Ok(false)` if it does not.
fn add_to_existing(store: &dyn KvStore, index: &Key, member: &str) -> Result<bool, Error> {
    change_existing(store, index, |members| {
        members.insert(member.to_owned());
    })
}

/// Applies `f` to the members of `index` by compare-and-swap, only while the index exists
/// (never creating it); `Ok(false)` if it is absent.
fn change_existing(
    store: &dyn KvStore,
    index: &Key,
    mut f: impl FnMut(&mut Members),
) -> Result<bool, Error> {
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let Some(current) = store.get(index)? else {
            return Ok(false);
        };
        let mut members: Members = decode(index, &current)?;
        f(&mut members);
        let new = encode(index, &members)?;
        if new == current || store.compare_and_swap(index, Some(&current), &new)? {
            return Ok(true);
        }
        std::thread::yield_now();
    }
    Err(too_busy())
}

/// The queue's cursor: every bucket before it is known to be empty. `None` if nothing was ever
/// queued.
pub fn cursor(
    store: &dyn KvStore,
    tenant: &TenantId,
    kind: Kind,
) -> Result<Option<DueBucket>, Error> {
    store.get_json(&keys::due_cursor(tenant, kind))
}

/// Makes sure the cursor is at most `bucket`, lowering (or creating) it if not.
fn ensure_cursor_at_most(
    store: &dyn KvStore,
    tenant: &TenantId,
    kind: Kind,
    bucket: DueBucket,
) -> Result<(), Error> {
    let key = keys::due_cursor(tenant, kind);
    let new = encode(&key, &bucket)?;
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let current = store.get(&key)?;
        if let Some(bytes) = &current
            && decode::<DueBucket>(&key, bytes)? <= bucket
        {
            return Ok(());
        }
        // Whether or not this swap wins (on Spin's SQLite store a swap against "absent" always
        // does, even over someone else's write), the next round reads the cursor again.
        store.compare_and_swap(&key, current.as_deref(), &new)?;
    }
    Err(too_busy())
}

/// Moves the cursor past empty buckets before `now` (at most [`MAX_BUCKETS_PER_CALL`]).
pub fn advance(
    store: &dyn KvStore,
    tenant: &TenantId,
    kind: Kind,
    now: DueBucket,
) -> Result<(), Error> {
    advance_and_see(store, tenant, kind, now).map(|_| ())
}

/// [`advance`], returning the cursor where it was last read and left unchanged by this call
/// (`Some(None)`: there is no cursor), or `None` when the call cannot know it without reading
/// again (it moved the cursor back).
fn advance_and_see(
    store: &dyn KvStore,
    tenant: &TenantId,
    kind: Kind,
    now: DueBucket,
) -> Result<Option<Option<DueBucket>>, Error> {
    let key = keys::due_cursor(tenant, kind);
    for _ in 0..MAX_BUCKETS_PER_CALL {
        let Some(current) = store.get(&key)? else {
            return Ok(Some(None));
        };
        let bucket: DueBucket = decode(&key, &current)?;
        if bucket >= now || !bucket_is_empty(store, tenant, kind, bucket)? {
            return Ok(Some(Some(bucket)));
        }
        let next = encode(&key, &bucket.next())?;
        if !store.compare_and_swap(&key, Some(&current), &next)? {
            // Someone else moved it (forward or back): look again.
            continue;
        }
        // A writer may have added to the bucket after we looked and before we moved the
        // cursor, and read the cursor before we moved it: then only we can see its member.
        if !bucket_is_empty(store, tenant, kind, bucket)? {
            ensure_cursor_at_most(store, tenant, kind, bucket)?;
            return Ok(None);
        }
    }
    Ok(None)
}

fn bucket_is_empty(
    store: &dyn KvStore,
    tenant: &TenantId,
    kind: Kind,
    bucket: DueBucket,
) -> Result<bool, Error> {
    let members: Option<Members> = store.get_json(&keys::due(tenant, kind, bucket))?;
    Ok(members.is_none_or(|members| members.is_empty()))
}

/// Up to `limit` items (clamped to 1..=[`MAX_INDEX_PAGE`]) due up to the bucket `now`, oldest
/// bucket first, after moving the cursor past empty buckets. Items stay queued until
/// [`remove`]d.
pub fn scan(
    store: &dyn KvStore,
    tenant: &TenantId,
    kind: Kind,
    now: DueBucket,
    limit: usize,
) -> Result<Vec<DueItem>, Error> {
    let limit = limit.clamp(1, MAX_INDEX_PAGE);
    // The cursor as `advance` saw it, without reading it again where it can. A writer that
    // lowers it meanwhile has its item found by the next scan, as when it lowers it just
    // after a read.
    let start = match advance_and_see(store, tenant, kind, now)? {
        Some(seen) => seen,
        None => cursor(store, tenant, kind)?,
    };
    let Some(start) = start else {
        return Ok(Vec::new());
    };
    let mut items = Vec::new();
    for bucket in start
        .through(now)
        .take(usize::try_from(MAX_BUCKETS_PER_CALL).unwrap_or(usize::MAX))
    {
        let index = keys::due(tenant, kind, bucket);
        let mut after: Option<String> = None;
        loop {
            let page = store.index_page(&index, after.as_deref(), limit - items.len())?;
            items.extend(
                page.members
                    .into_iter()
                    .map(|member| DueItem { bucket, member }),
            );
            if items.len() >= limit {
                return Ok(items);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok(items)
}

/// Removes `item` from its bucket (never creating the bucket's index), then moves the cursor
/// past empty buckets before `now`. Returns whether the item was queued.
pub fn remove(
    store: &dyn KvStore,
    tenant: &TenantId,
    kind: Kind,
    item: &DueItem,
    now: DueBucket,
) -> Result<bool, Error> {
    let mut removed = false;
    change_existing(store, &keys::due(tenant, kind, item.bucket), |members| {
        removed = members.remove(&item.member);
    })?;
    advance(store, tenant, kind, now)?;
    Ok(removed)
}

fn decode<T: serde::de::DeserializeOwned>(key: &Key, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|err| Error::internal_with(format!("decoding the record at {key}"), err))
}

fn encode<T: Serialize>(key: &Key, value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value)
        .map_err(|err| Error::internal_with(format!("encoding the record at {key}"), err))
}

fn too_busy() -> Error {
    Error::conflict(format!(
        "too much concurrent activity on one queue; gave up after {MAX_UPDATE_ATTEMPTS} \
         attempts, try again"
    ))
}
