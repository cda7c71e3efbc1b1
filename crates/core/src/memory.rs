//! An in-memory [`KvStore`] for unit tests.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::keys::Key;
use crate::store::{KvStore, StoreError, swap_landed};

/// A [`KvStore`] in a `Mutex<BTreeMap>`: linearizable, shareable across threads, and encoding
/// counters as Spin's default (SQLite) store does, as 8-byte little-endian `i64`s.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Whether a compare-and-swap against "absent" overwrites unconditionally.
    absent_cas_overwrites: bool,
    /// Whether every compare-and-swap reports failure, and the result is read back.
    swaps_report_failure: bool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose compare-and-swap behaves like Spin's SQLite store (3.x/4.x): a
    /// swap expecting "absent" is an unconditional write, so it always "succeeds". Code that
    /// must stay correct on that backend is tested against this.
    pub fn spin_sqlite_like() -> Self {
        Self {
            absent_cas_overwrites: true,
            ..Self::default()
        }
    }

    /// An empty store whose compare-and-swap behaves like Spin 4.0.2's Redis store seen through
    /// eventplane's Spin adapter: the swap is strict, but it always reports failure (see
    /// [`swap_landed`]), so the adapter reads the key back to learn whether it landed, with the
    /// store unlocked in between as it is on a real server.
    pub fn spin_redis_like() -> Self {
        Self {
            swaps_report_failure: true,
            ..Self::default()
        }
    }

    /// All keys, in order (for assertions about what was written).
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic in another test thread must not turn every later call into a panic.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl KvStore for MemoryStore {
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().get(key.as_str()).cloned())
    }

    fn set(&self, key: &Key, value: &[u8]) -> Result<(), StoreError> {
        self.lock().insert(key.as_str().to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.lock().remove(key.as_str());
        Ok(())
    }

    fn exists(&self, key: &Key) -> Result<bool, StoreError> {
        Ok(self.lock().contains_key(key.as_str()))
    }

    fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let mut entries = self.lock();
        let overwrite = self.absent_cas_overwrites && expected.is_none();
        let swapped = overwrite || entries.get(key.as_str()).map(Vec::as_slice) == expected;
        if swapped {
            entries.insert(key.as_str().to_owned(), new.to_vec());
        }
        drop(entries);
        if self.swaps_report_failure {
            std::thread::yield_now();
            return swap_landed(self, key, new);
        }
        Ok(swapped)
    }

    fn increment(&self, key: &Key, delta: i64) -> Result<i64, StoreError> {
        let mut entries = self.lock();
        let current = match entries.get(key.as_str()) {
            None => 0,
            Some(bytes) => {
                let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                    StoreError::Backend(format!("the value at {key} is not a counter"))
                })?;
                i64::from_le_bytes(bytes)
            }
        };
        let new = current
            .checked_add(delta)
            .ok_or_else(|| StoreError::Backend(format!("the counter at {key} would overflow")))?;
        entries.insert(key.as_str().to_owned(), new.to_le_bytes().to_vec());
        Ok(new)
    }
}

/// A [`MemoryStore`] whose compare-and-swap first calls a hook, for tests that stage a race at
/// the exact moment of a swap. The hook gets the inner store, the key, the expected and the new
/// value; it may change the inner store (another writer getting there first), and it answers
/// `Some(outcome)` to decide the swap itself or `None` to let it happen as usual.
pub struct CasHookStore<F> {
    /// The store every call goes to.
    pub inner: MemoryStore,
    hook: F,
}

impl<F> CasHookStore<F>
where
    F: Fn(&MemoryStore, &Key, Option<&[u8]>, &[u8]) -> Result<Option<bool>, StoreError>,
{
    /// `inner` with `hook` before each compare-and-swap.
    pub fn new(inner: MemoryStore, hook: F) -> Self {
        Self { inner, hook }
    }
}

impl<F> KvStore for CasHookStore<F>
where
    F: Fn(&MemoryStore, &Key, Option<&[u8]>, &[u8]) -> Result<Option<bool>, StoreError>,
{
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
        match (self.hook)(&self.inner, key, expected, new)? {
            Some(outcome) => Ok(outcome),
            None => self.inner.compare_and_swap(key, expected, new),
        }
    }
    fn increment(&self, key: &Key, delta: i64) -> Result<i64, StoreError> {
        self.inner.increment(key, delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;
    use crate::keys::{self, Kind};

    fn key(name: &str) -> Key {
        let tenant = TenantId::new("test").expect("tenant");
        keys::record(&tenant, Kind::new("thing"), name)
    }

    #[test]
    fn the_spin_sqlite_like_store_overwrites_on_a_cas_against_absent() -> Result<(), StoreError> {
        let strict = MemoryStore::new();
        assert!(strict.compare_and_swap(&key("k"), None, b"a")?);
        assert!(!strict.compare_and_swap(&key("k"), None, b"b")?);

        let sqlite = MemoryStore::spin_sqlite_like();
        assert!(sqlite.compare_and_swap(&key("k"), None, b"a")?);
        assert!(sqlite.compare_and_swap(&key("k"), None, b"b")?);
        assert_eq!(sqlite.get(&key("k"))?.as_deref(), Some(&b"b"[..]));
        // A swap against a present value stays conditional.
        assert!(!sqlite.compare_and_swap(&key("k"), Some(b"a"), b"c")?);
        Ok(())
    }

    #[test]
    fn basic_operations() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        assert!(store.is_empty());
        assert_eq!(store.get(&key("a"))?, None);
        store.set(&key("a"), b"1")?;
        assert!(store.exists(&key("a"))?);
        assert_eq!(store.get(&key("a"))?, Some(b"1".to_vec()));
        assert_eq!(store.keys(), ["t/test/r/thing/a"]);
        store.delete(&key("a"))?;
        store.delete(&key("a"))?;
        assert!(!store.exists(&key("a"))?);
        assert_eq!(store.len(), 0);
        Ok(())
    }

    #[test]
    fn compare_and_swap_checks_the_expected_value() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        assert!(!store.compare_and_swap(&key("a"), Some(b"x"), b"y")?);
        assert!(store.compare_and_swap(&key("a"), None, b"x")?);
        assert!(!store.compare_and_swap(&key("a"), None, b"z")?);
        assert!(!store.compare_and_swap(&key("a"), Some(b"y"), b"z")?);
        assert!(store.compare_and_swap(&key("a"), Some(b"x"), b"y")?);
        assert_eq!(store.get(&key("a"))?, Some(b"y".to_vec()));
        Ok(())
    }

    #[test]
    fn increment_counts_from_zero_and_rejects_non_counters() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        assert_eq!(store.increment(&key("n"), 5)?, 5);
        assert_eq!(store.increment(&key("n"), -2)?, 3);
        assert_eq!(store.increment(&key("n"), 0)?, 3);
        store.set(&key("s"), b"text")?;
        assert!(store.increment(&key("s"), 1).is_err());
        store.set(&key("max"), &i64::MAX.to_le_bytes())?;
        assert!(store.increment(&key("max"), 1).is_err());
        Ok(())
    }
}
