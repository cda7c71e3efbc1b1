//! Reading ahead: several independent reads of one request made in one round trip.
//!
//! On Redis every store operation is a round trip, and with `appendfsync always` each round
//! trip waits for the server's next sync, reads included. A publish reads some ten keys whose
//! names it knows (or can predict) long before it needs their values: the signing key, the
//! verified-token cache, the application's name, its record and event APIs, the source
//! marker, the subscriptions. [`ReadAhead`] lets the code that knows the names say so
//! ([`ReadAhead::want`]); the next read that has to go to the store then fetches the wanted
//! keys with it, in one [`KvStore::get_many`], and later reads of those keys are answered from
//! what was fetched.
//!
//! What a read ahead returns is what a read of the key returned a moment earlier, so it only
//! serves keys whose reads do not depend on this request's own writes. It never returns a value
//! older than a write made through it: each write drops what was fetched of its keys. Each
//! fetched value answers one read; a second read of the key goes to the store, so a retry loop
//! (a compare-and-swap that lost, a value read back to check a swap) always sees fresh values.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::keys::Key;
use crate::store::{KvStore, StoreError};

/// A [`KvStore`] that fetches wanted keys together with the next read that goes to the store
/// it reads through.
pub struct ReadAhead<S> {
    inner: S,
    /// Keys to fetch with the next read that goes to the store.
    wanted: RefCell<Vec<Key>>,
    /// Values fetched ahead and not read yet.
    fetched: RefCell<HashMap<Key, Option<Vec<u8>>>>,
}

impl<S: KvStore> ReadAhead<S> {
    /// Reads through to `inner`, with nothing wanted yet.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            wanted: RefCell::new(Vec::new()),
            fetched: RefCell::new(HashMap::new()),
        }
    }

    /// Asks for `keys` to be fetched with the next read that goes to the store. A key already
    /// fetched or wanted is not asked for twice.
    pub fn want(&self, keys: impl IntoIterator<Item = Key>) {
        let fetched = self.fetched.borrow();
        let mut wanted = self.wanted.borrow_mut();
        for key in keys {
            if !fetched.contains_key(&key) && !wanted.contains(&key) {
                wanted.push(key);
            }
        }
    }

    /// The value fetched ahead for `key` and not read yet (`Some(None)`: fetched, absent),
    /// left for the read it was fetched for: for code that names its next reads from a value
    /// another part of the request reads later.
    pub fn peek(&self, key: &Key) -> Option<Option<Vec<u8>>> {
        self.fetched.borrow().get(key).cloned()
    }

    /// The store read through.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The fetched value of `key`, which it then forgets.
    fn take(&self, key: &Key) -> Option<Option<Vec<u8>>> {
        self.fetched.borrow_mut().remove(key)
    }

    /// Forgets `key`, fetched or wanted: it was written.
    fn forget(&self, key: &Key) {
        self.fetched.borrow_mut().remove(key);
        self.wanted.borrow_mut().retain(|wanted| wanted != key);
    }

    /// Reads `keys` (none of them fetched) from the store, with every wanted key.
    fn fetch(&self, keys: &[Key]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let wanted: Vec<Key> = std::mem::take(&mut *self.wanted.borrow_mut())
            .into_iter()
            .filter(|key| !keys.contains(key))
            .collect();
        if wanted.is_empty() {
            return match keys {
                [key] => Ok(vec![self.inner.get(key)?]),
                _ => self.inner.get_many(keys),
            };
        }
        let all: Vec<Key> = keys.iter().chain(&wanted).cloned().collect();
        let mut values = match self.inner.get_many(&all) {
            Ok(values) => values,
            Err(err) => {
                // Nothing was fetched: want the keys again for the next read.
                self.want(wanted);
                return Err(err);
            }
        };
        let ahead = values.split_off(keys.len());
        self.fetched
            .borrow_mut()
            .extend(wanted.into_iter().zip(ahead));
        Ok(values)
    }
}

impl<S: KvStore> KvStore for ReadAhead<S> {
    fn will_read(&self, keys: &[Key]) {
        self.want(keys.iter().cloned());
    }

    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(value) = self.take(key) {
            return Ok(value);
        }
        Ok(self.fetch(std::slice::from_ref(key))?.pop().flatten())
    }

    fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut values: Vec<Option<Option<Vec<u8>>>> = keys.iter().map(|k| self.take(k)).collect();
        let missing: Vec<Key> = keys
            .iter()
            .zip(&values)
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| key.clone())
            .collect();
        if !missing.is_empty() {
            let mut read = self.fetch(&missing)?.into_iter();
            for value in values.iter_mut().filter(|value| value.is_none()) {
                *value = Some(read.next().flatten());
            }
        }
        Ok(values.into_iter().map(Option::flatten).collect())
    }

    fn exists(&self, key: &Key) -> Result<bool, StoreError> {
        if let Some(value) = self.take(key) {
            return Ok(value.is_some());
        }
        if self.wanted.borrow().is_empty() {
            return self.inner.exists(key);
        }
        Ok(self
            .fetch(std::slice::from_ref(key))?
            .pop()
            .flatten()
            .is_some())
    }

    fn set(&self, key: &Key, value: &[u8]) -> Result<(), StoreError> {
        self.forget(key);
        self.inner.set(key, value)
    }

    fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.forget(key);
        self.inner.delete(key)
    }

    fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        self.forget(key);
        self.inner.compare_and_swap(key, expected, new)
    }

    fn increment(&self, key: &Key, delta: i64) -> Result<i64, StoreError> {
        self.forget(key);
        self.inner.increment(key, delta)
    }

    fn set_many(&self, entries: &[(Key, Vec<u8>)]) -> Result<(), StoreError> {
        for (key, _) in entries {
            self.forget(key);
        }
        self.inner.set_many(entries)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::keys;
    use crate::memory::MemoryStore;

    /// Counts the calls that reach the store; fails every batch read if `batch_fails` (like a
    /// store that is down).
    struct Counting {
        inner: MemoryStore,
        calls: Cell<u32>,
        batch_fails: bool,
    }

    impl Counting {
        fn new() -> Self {
            Self {
                inner: MemoryStore::new(),
                calls: Cell::new(0),
                batch_fails: false,
            }
        }

        fn calls(&self) -> u32 {
            self.calls.get()
        }

        fn call(&self) {
            self.calls.set(self.calls.get() + 1);
        }
    }

    impl KvStore for Counting {
        fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
            self.call();
            self.inner.get(key)
        }
        fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
            self.call();
            if self.batch_fails {
                return Err(StoreError::Backend("down".into()));
            }
            keys.iter().map(|key| self.inner.get(key)).collect()
        }
        fn set(&self, key: &Key, value: &[u8]) -> Result<(), StoreError> {
            self.call();
            self.inner.set(key, value)
        }
        fn delete(&self, key: &Key) -> Result<(), StoreError> {
            self.call();
            self.inner.delete(key)
        }
        fn exists(&self, key: &Key) -> Result<bool, StoreError> {
            self.call();
            self.inner.exists(key)
        }
        fn compare_and_swap(
            &self,
            key: &Key,
            expected: Option<&[u8]>,
            new: &[u8],
        ) -> Result<bool, StoreError> {
            self.call();
            self.inner.compare_and_swap(key, expected, new)
        }
        fn increment(&self, key: &Key, delta: i64) -> Result<i64, StoreError> {
            self.call();
            self.inner.increment(key, delta)
        }
    }

    fn key(name: &str) -> Key {
        keys::system(keys::SIGNING_KEYS, name)
    }

    #[test]
    fn wanted_keys_come_with_the_next_read_in_one_call() -> Result<(), StoreError> {
        let ahead = ReadAhead::new(Counting::new());
        let store = ahead.inner();
        store.inner.set(&key("a"), b"1")?;
        store.inner.set(&key("c"), b"3")?;
        ahead.want([key("b"), key("c")]);
        assert_eq!(store.calls(), 0, "wanting reads nothing");
        assert_eq!(ahead.get(&key("a"))?, Some(b"1".to_vec()));
        assert_eq!(store.calls(), 1);
        assert_eq!(ahead.get(&key("b"))?, None);
        assert!(ahead.exists(&key("c"))?);
        assert_eq!(store.calls(), 1, "b and c were fetched with a");
        Ok(())
    }

    #[test]
    fn code_that_only_knows_a_kv_store_can_name_its_next_reads() -> Result<(), StoreError> {
        let ahead = ReadAhead::new(Counting::new());
        ahead.inner().inner.set(&key("b"), b"2")?;
        let store: &dyn KvStore = &ahead;
        store.will_read(&[key("b"), key("c")]);
        assert_eq!(store.get(&key("a"))?, None);
        assert_eq!(store.get(&key("b"))?, Some(b"2".to_vec()));
        assert_eq!(store.get(&key("c"))?, None);
        assert_eq!(ahead.inner().calls(), 1, "b and c were fetched with a");
        // A store that does not read ahead ignores the hint.
        let plain = MemoryStore::new();
        plain.will_read(&[key("b")]);
        assert_eq!(plain.get(&key("b"))?, None);
        Ok(())
    }

    #[test]
    fn peeking_leaves_the_fetched_value_for_its_read() -> Result<(), StoreError> {
        let ahead = ReadAhead::new(Counting::new());
        ahead.inner().inner.set(&key("index"), b"[1]")?;
        ahead.want([key("index"), key("absent")]);
        assert_eq!(ahead.peek(&key("index")), None, "nothing fetched yet");
        ahead.get(&key("a"))?;
        assert_eq!(ahead.peek(&key("index")), Some(Some(b"[1]".to_vec())));
        assert_eq!(ahead.peek(&key("absent")), Some(None));
        assert_eq!(ahead.get(&key("index"))?, Some(b"[1]".to_vec()));
        assert_eq!(
            ahead.inner().calls(),
            1,
            "the peeked value answered the read"
        );
        assert_eq!(ahead.peek(&key("index")), None, "used up");
        Ok(())
    }

    #[test]
    fn a_fetched_value_answers_one_read_and_never_outlives_a_write() -> Result<(), StoreError> {
        let ahead = ReadAhead::new(Counting::new());
        let store = ahead.inner();
        store.inner.set(&key("a"), b"old")?;
        ahead.want([key("a"), key("b")]);
        ahead.get(&key("x"))?;
        // Someone else changes `a`: the first read sees what was fetched, the next one the
        // store's value.
        store.inner.set(&key("a"), b"new")?;
        assert_eq!(ahead.get(&key("a"))?, Some(b"old".to_vec()));
        assert_eq!(ahead.get(&key("a"))?, Some(b"new".to_vec()));
        // A write through the read-ahead drops what was fetched of its key.
        ahead.set(&key("b"), b"mine")?;
        assert_eq!(ahead.get(&key("b"))?, Some(b"mine".to_vec()));
        ahead.want([key("n")]);
        assert_eq!(ahead.increment(&key("n"), 2)?, 2);
        let calls = store.calls();
        ahead.get(&key("y"))?;
        assert_eq!(store.calls(), calls + 1);
        assert!(
            ahead.fetched.borrow().is_empty(),
            "n was not fetched after its write"
        );
        Ok(())
    }

    #[test]
    fn get_many_mixes_fetched_and_read_values_in_order() -> Result<(), StoreError> {
        let ahead = ReadAhead::new(Counting::new());
        let store = ahead.inner();
        for (name, value) in [("a", "1"), ("b", "2"), ("c", "3")] {
            store.inner.set(&key(name), value.as_bytes())?;
        }
        ahead.want([key("b")]);
        ahead.get(&key("z"))?;
        let values = ahead.get_many(&[key("a"), key("b"), key("missing"), key("c")])?;
        assert_eq!(
            values,
            [
                Some(b"1".to_vec()),
                Some(b"2".to_vec()),
                None,
                Some(b"3".to_vec())
            ]
        );
        assert_eq!(store.calls(), 2);
        Ok(())
    }

    #[test]
    fn a_failed_fetch_fails_the_read_and_keeps_the_keys_wanted() -> Result<(), StoreError> {
        let ahead = ReadAhead::new(Counting {
            batch_fails: true,
            ..Counting::new()
        });
        ahead.inner().inner.set(&key("b"), b"2")?;
        ahead.want([key("b")]);
        assert!(ahead.get(&key("a")).is_err());
        assert_eq!(ahead.wanted.borrow().as_slice(), [key("b")]);
        Ok(())
    }
}
