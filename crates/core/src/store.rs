//! The key-value port and what is built on it.
//!
//! [`KvStore`] is the small set of operations every backend provides (Spin's store in the
//! components, [`MemoryStore`](crate::MemoryStore) in tests). [`KvStoreExt`] adds JSON records,
//! read-modify-write by compare-and-swap, and indexes, for every `KvStore`.
//!
//! Spin runs many instances of a component at once, so a shared key is never changed by a plain
//! get-then-set: [`KvStoreExt::update_json`] and the index operations use compare-and-swap and
//! retry a bounded number of times, then fail with [`Error::Conflict`] rather than overwrite.

use std::collections::BTreeSet;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::keys::Key;

/// How many times a read-modify-write is attempted before giving up with [`Error::Conflict`].
///
/// Every failed attempt means another writer changed the key in between, so the store made
/// progress; the bound only stops a writer that keeps losing under heavy contention.
pub const MAX_UPDATE_ATTEMPTS: u32 = 128;

/// The largest page [`KvStoreExt::index_page`] returns.
pub const MAX_INDEX_PAGE: usize = 1000;

/// A failure of the key-value backend itself (never "not found": that is `Ok(None)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store label is not defined.
    #[error("key-value store `{0}` does not exist")]
    NoSuchStore(String),
    /// The component may not use the store.
    #[error("access to key-value store `{0}` is denied")]
    AccessDenied(String),
    /// Anything else the backend reports (I/O, limits, a value of the wrong shape, ...).
    #[error("{0}")]
    Backend(String),
}

/// The key-value operations eventplane needs. Synchronous, `&self`, one key at a time.
pub trait KvStore {
    /// The value of `key`, or `None` if it is absent.
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StoreError>;

    /// Sets `key` to `value`, unconditionally.
    fn set(&self, key: &Key, value: &[u8]) -> Result<(), StoreError>;

    /// Removes `key`; removing an absent key is not an error.
    fn delete(&self, key: &Key) -> Result<(), StoreError>;

    /// Whether `key` is present.
    fn exists(&self, key: &Key) -> Result<bool, StoreError>;

    /// Sets `key` to `new` only if its current value is `expected` (`None`: only if absent).
    /// Returns whether it swapped; `Ok(false)` means someone else's value is there.
    fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError>;

    /// Atomically adds `delta` to the counter at `key` (absent counts as 0) and returns the new
    /// value. The stored encoding is the backend's own: read counters only with
    /// `increment(key, 0)`, never with `get`.
    fn increment(&self, key: &Key, delta: i64) -> Result<i64, StoreError>;

    /// The values of several keys, in the order given (`None`: absent), in one call (one round
    /// trip where the backend offers a batch read). The values are read together, but not as of
    /// one instant: use it for keys whose reads are independent of each other.
    fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|key| self.get(key)).collect()
    }

    /// A hint that `keys` are about to be read: a store that reads in batches
    /// ([`ReadAhead`](crate::ReadAhead)) fetches them with its next read that goes to the
    /// backend, so that code which can name its next reads early (a delivery names the event,
    /// the subscriptions and their delivery states) saves round trips without knowing what it
    /// runs on. Other stores ignore it, which is the default.
    fn will_read(&self, keys: &[Key]) {
        let _ = keys;
    }

    /// Sets several keys in one call (one round trip where the backend offers a batch).
    /// Backends may apply them all at once or one by one in the order given; callers must not
    /// rely on either: a failure part-way may leave the first ones written.
    fn set_many(&self, entries: &[(Key, Vec<u8>)]) -> Result<(), StoreError> {
        for (key, value) in entries {
            self.set(key, value)?;
        }
        Ok(())
    }
}

/// Whether a compare-and-swap that reported failure landed after all: `key` now holds exactly
/// `new`. Backends call this when a swap reports failure, so that a failed swap is told apart
/// from a lost race on a backend that cannot tell them apart itself.
///
/// Spin 4.0.2's Redis store is one: its swap ends with `UNWATCH <key>`, which Redis refuses
/// (`UNWATCH` takes no argument), so every swap reports failure, whether its `MULTI`/`SET`/`EXEC`
/// wrote or lost the race. Reading back tells them apart:
///
/// - the key holds our value: our write landed (or another writer wrote the very same bytes,
///   which leaves the key exactly as we wanted it): success;
/// - anything else: our write did not land, or it landed and another writer has changed the key
///   since (whose compare-and-swap read our value, so built on it). Either way the caller reads
///   again and, for a read-modify-write, applies its change to what it finds. Every change
///   eventplane makes by compare-and-swap is safe to apply twice: members are added to and
///   removed from sets, fields are set to values, state moves are checked against the state
///   found (a lease names its holder, a finish expects the exact leased state), and counters use
///   `increment`.
pub fn swap_landed<S: KvStore + ?Sized>(
    store: &S,
    key: &Key,
    new: &[u8],
) -> Result<bool, StoreError> {
    Ok(store.get(key)?.as_deref() == Some(new))
}

/// One page of an index, in member order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexPage {
    /// The members on this page.
    pub members: Vec<String>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<String>,
}

/// JSON records, compare-and-swap updates and indexes on top of any [`KvStore`].
pub trait KvStoreExt: KvStore {
    /// Reads and decodes the JSON record at `key`. A record that does not decode is our fault
    /// (500), since only we write records.
    fn get_json<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>, Error> {
        self.get(key)?
            .map(|bytes| decode_json(key, &bytes))
            .transpose()
    }

    /// Encodes `value` as JSON and stores it at `key`, unconditionally. Use only for keys that
    /// no one else writes concurrently; otherwise use [`update_json`](Self::update_json).
    fn set_json<T: Serialize>(&self, key: &Key, value: &T) -> Result<(), Error> {
        Ok(self.set(key, &encode(key, value)?)?)
    }

    /// Read-modify-write of the JSON record at `key` by compare-and-swap: `f` gets the current
    /// value (`None` if absent) and returns the new one, or an error to abort without writing.
    /// On a lost race `f` is called again with the fresh value, up to [`MAX_UPDATE_ATTEMPTS`]
    /// times, then [`Error::Conflict`]. Returns the value written (or kept, if unchanged).
    fn update_json<T, F>(&self, key: &Key, mut f: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Result<T, Error>,
    {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let current = self.get(key)?;
            let decoded = current
                .as_deref()
                .map(|bytes| decode_json::<T>(key, bytes))
                .transpose()?;
            let updated = f(decoded)?;
            let new = encode(key, &updated)?;
            if current.as_deref() == Some(new.as_slice()) {
                return Ok(updated);
            }
            if self.compare_and_swap(key, current.as_deref(), &new)? {
                return Ok(updated);
            }
            std::thread::yield_now();
        }
        Err(Error::conflict(format!(
            "too much concurrent activity on one resource; gave up after {MAX_UPDATE_ATTEMPTS} \
             attempts, try again"
        )))
    }

    /// Adds `member` to the index at `index`; returns whether it was new.
    fn index_add(&self, index: &Key, member: &str) -> Result<bool, Error> {
        let mut added = false;
        self.update_json(index, |members: Option<BTreeSet<String>>| {
            let mut members = members.unwrap_or_default();
            added = members.insert(member.to_owned());
            Ok(members)
        })?;
        Ok(added)
    }

    /// Removes `member` from the index at `index`; returns whether it was there.
    fn index_remove(&self, index: &Key, member: &str) -> Result<bool, Error> {
        if !self.exists(index)? {
            return Ok(false);
        }
        let mut removed = false;
        self.update_json(index, |members: Option<BTreeSet<String>>| {
            let mut members = members.unwrap_or_default();
            removed = members.remove(member);
            Ok(members)
        })?;
        Ok(removed)
    }

    /// Whether `member` is in the index at `index`.
    fn index_contains(&self, index: &Key, member: &str) -> Result<bool, Error> {
        let members: Option<BTreeSet<String>> = self.get_json(index)?;
        Ok(members.is_some_and(|members| members.contains(member)))
    }

    /// Up to `limit` members (clamped to 1..=[`MAX_INDEX_PAGE`]) in ascending order, starting
    /// after the member `after` (exclusive; `None` from the start). An absent index is empty.
    fn index_page(
        &self,
        index: &Key,
        after: Option<&str>,
        limit: usize,
    ) -> Result<IndexPage, Error> {
        let limit = limit.clamp(1, MAX_INDEX_PAGE);
        let members: BTreeSet<String> = match self.get(index)? {
            Some(value) => crate::index::decode_members(index, &value)?,
            None => BTreeSet::new(),
        };
        let mut remaining = match after {
            Some(after) => members
                .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => members.range::<str, _>(..),
        };
        let page: Vec<String> = remaining.by_ref().take(limit).cloned().collect();
        let next = match remaining.next() {
            Some(_) => page.last().cloned(),
            None => None,
        };
        Ok(IndexPage {
            members: page,
            next,
        })
    }
}

impl<S: KvStore + ?Sized> KvStoreExt for S {}

/// Decodes the JSON record `bytes` read at `key` (a record that does not decode is our fault:
/// 500, since only we write records).
pub fn decode_json<T: DeserializeOwned>(key: &Key, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|err| Error::internal_with(format!("decoding the record at {key}"), err))
}

fn encode<T: Serialize>(key: &Key, value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value)
        .map_err(|err| Error::internal_with(format!("encoding the record at {key}"), err))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::Arc;

    use serde::Deserialize;

    use super::*;
    use crate::ids::TenantId;
    use crate::keys::{self, Kind};
    use crate::memory::MemoryStore;

    const THINGS: Kind = Kind::new("thing");

    fn key(name: &str) -> Key {
        keys::record(&TenantId::new("test").expect("tenant"), THINGS, name)
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Counter {
        n: u64,
    }

    #[test]
    fn json_round_trips_and_absent_is_none() -> Result<(), Error> {
        let store = MemoryStore::new();
        assert_eq!(store.get_json::<Counter>(&key("a"))?, None);
        store.set_json(&key("a"), &Counter { n: 3 })?;
        assert_eq!(store.get_json(&key("a"))?, Some(Counter { n: 3 }));
        Ok(())
    }

    #[test]
    fn undecodable_record_is_an_internal_error() -> Result<(), Error> {
        let store = MemoryStore::new();
        store.set(&key("a"), b"not json")?;
        let err = store.get_json::<Counter>(&key("a")).unwrap_err();
        assert_eq!(err.status(), 500);
        Ok(())
    }

    #[test]
    fn update_json_creates_then_modifies() -> Result<(), Error> {
        let store = MemoryStore::new();
        let bump = |c: Option<Counter>| {
            Ok(Counter {
                n: c.map_or(0, |c| c.n) + 1,
            })
        };
        assert_eq!(store.update_json(&key("a"), bump)?, Counter { n: 1 });
        assert_eq!(store.update_json(&key("a"), bump)?, Counter { n: 2 });
        Ok(())
    }

    #[test]
    fn update_json_aborts_without_writing_when_f_fails() -> Result<(), Error> {
        let store = MemoryStore::new();
        let result = store.update_json(&key("a"), |_: Option<Counter>| {
            Err(Error::not_found("nothing to update"))
        });
        assert_eq!(result.unwrap_err().status(), 404);
        assert!(!store.exists(&key("a"))?);
        Ok(())
    }

    #[test]
    fn update_json_gives_up_with_conflict_instead_of_overwriting() -> Result<(), Error> {
        // Every compare-and-swap loses, as if another writer always got there first.
        let attempts = Cell::new(0);
        let store = crate::CasHookStore::new(MemoryStore::new(), |_, _, _, _| {
            attempts.set(attempts.get() + 1);
            Ok(Some(false))
        });
        store.set_json(&key("a"), &Counter { n: 7 })?;
        let err = store
            .update_json(&key("a"), |_: Option<Counter>| Ok(Counter { n: 0 }))
            .unwrap_err();
        assert_eq!(err.code(), "CONFLICT");
        assert_eq!(attempts.get(), MAX_UPDATE_ATTEMPTS);
        assert_eq!(store.get_json(&key("a"))?, Some(Counter { n: 7 }));
        Ok(())
    }

    #[test]
    fn concurrent_update_json_loses_no_increment() -> Result<(), Error> {
        let store = Arc::new(MemoryStore::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || -> Result<(), Error> {
                    for _ in 0..100 {
                        store.update_json(&key("counter"), |c: Option<Counter>| {
                            Ok(Counter {
                                n: c.map_or(0, |c| c.n) + 1,
                            })
                        })?;
                    }
                    Ok(())
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread panicked")?;
        }
        assert_eq!(store.get_json(&key("counter"))?, Some(Counter { n: 800 }));
        Ok(())
    }

    #[test]
    fn concurrent_index_adds_lose_no_member() -> Result<(), Error> {
        concurrent_index_adds(MemoryStore::new(), true)
    }

    /// On a store whose swaps all report failure, a swap that landed and was then built on by
    /// another writer before the read-back looks lost, so the add runs again and finds its
    /// member there (reporting it as not new): the set is still exact.
    #[test]
    fn concurrent_index_adds_lose_no_member_when_every_swap_reports_failure() -> Result<(), Error> {
        concurrent_index_adds(MemoryStore::spin_redis_like(), false)
    }

    fn concurrent_index_adds(store: MemoryStore, exact_reports: bool) -> Result<(), Error> {
        let store = Arc::new(store);
        let index = key("index");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (store, index) = (Arc::clone(&store), index.clone());
                std::thread::spawn(move || -> Result<(), Error> {
                    for i in 0..50 {
                        let added = store.index_add(&index, &format!("m{t}-{i:02}"))?;
                        assert!(added || !exact_reports);
                    }
                    Ok(())
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread panicked")?;
        }
        let page = store.index_page(&index, None, MAX_INDEX_PAGE)?;
        assert_eq!(page.members.len(), 400);
        assert_eq!(page.next, None);
        for t in 0..8 {
            for i in 0..50 {
                assert!(store.index_contains(&index, &format!("m{t}-{i:02}"))?);
            }
        }
        Ok(())
    }

    #[test]
    fn index_add_and_remove_report_changes() -> Result<(), Error> {
        let store = MemoryStore::new();
        let index = key("index");
        assert!(!store.index_remove(&index, "a")?);
        assert!(store.index_add(&index, "a")?);
        assert!(!store.index_add(&index, "a")?);
        assert!(store.index_contains(&index, "a")?);
        assert!(store.index_remove(&index, "a")?);
        assert!(!store.index_remove(&index, "a")?);
        assert!(!store.index_contains(&index, "a")?);
        Ok(())
    }

    #[test]
    fn index_pages_follow_the_cursor() -> Result<(), Error> {
        let store = MemoryStore::new();
        let index = key("index");
        for member in ["e", "a", "d", "b", "c"] {
            store.index_add(&index, member)?;
        }
        let first = store.index_page(&index, None, 2)?;
        assert_eq!(first.members, ["a", "b"]);
        let second = store.index_page(&index, first.next.as_deref(), 2)?;
        assert_eq!(second.members, ["c", "d"]);
        let last = store.index_page(&index, second.next.as_deref(), 2)?;
        assert_eq!(
            last,
            IndexPage {
                members: vec!["e".into()],
                next: None
            }
        );
        let exact = store.index_page(&index, None, 5)?;
        assert_eq!(exact.next, None);
        assert_eq!(
            store.index_page(&key("absent"), None, 10)?,
            IndexPage::default()
        );
        assert_eq!(store.index_page(&index, None, 0)?.members, ["a"]);
        Ok(())
    }
}
