//! [`KvStore`] on a Spin key-value store.
//!
//! Plain operations use `fermyon:spin/key-value` (`spin_sdk::key_value::Store`);
//! compare-and-swap and increment use `wasi:keyvalue/atomics@0.2.0-draft2`, which Spin
//! implements on every backend over the same stores.

use std::sync::OnceLock;

use eventplane_core::{Key, KvStore, StoreError, swap_landed};
use spin_sdk::key_value;
use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store as wasi_store};

/// A Spin key-value store, opened by label (the component must list it in
/// `key_value_stores`).
pub struct SpinStore {
    label: String,
    store: key_value::Store,
    /// The same store through `wasi:keyvalue`, opened on first atomic operation.
    bucket: OnceLock<wasi_store::Bucket>,
}

impl SpinStore {
    /// Opens the store `label`.
    pub fn open(label: &str) -> Result<Self, StoreError> {
        let store = key_value::Store::open(label).map_err(|err| spin_error(label, err))?;
        Ok(Self {
            label: label.to_owned(),
            store,
            bucket: OnceLock::new(),
        })
    }

    /// Opens the store `default`.
    pub fn open_default() -> Result<Self, StoreError> {
        Self::open("default")
    }

    fn bucket(&self) -> Result<&wasi_store::Bucket, StoreError> {
        if let Some(bucket) = self.bucket.get() {
            return Ok(bucket);
        }
        let bucket = wasi_store::open(&self.label).map_err(|err| self.wasi_error(err))?;
        Ok(self.bucket.get_or_init(|| bucket))
    }

    fn spin_error(&self, err: key_value::Error) -> StoreError {
        spin_error(&self.label, err)
    }

    fn wasi_error(&self, err: wasi_store::Error) -> StoreError {
        match err {
            wasi_store::Error::NoSuchStore => StoreError::NoSuchStore(self.label.clone()),
            wasi_store::Error::AccessDenied => StoreError::AccessDenied(self.label.clone()),
            wasi_store::Error::Other(message) => StoreError::Backend(message),
        }
    }
}

fn spin_error(label: &str, err: key_value::Error) -> StoreError {
    match err {
        key_value::Error::NoSuchStore => StoreError::NoSuchStore(label.to_owned()),
        key_value::Error::AccessDenied => StoreError::AccessDenied(label.to_owned()),
        key_value::Error::StoreTableFull => {
            StoreError::Backend("too many key-value stores are open".to_owned())
        }
        key_value::Error::Other(message) => StoreError::Backend(message),
    }
}

impl KvStore for SpinStore {
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
        self.store
            .get(key.as_str())
            .map_err(|err| self.spin_error(err))
    }

    fn set(&self, key: &Key, value: &[u8]) -> Result<(), StoreError> {
        self.store
            .set(key.as_str(), value)
            .map_err(|err| self.spin_error(err))
    }

    fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.store
            .delete(key.as_str())
            .map_err(|err| self.spin_error(err))
    }

    fn exists(&self, key: &Key) -> Result<bool, StoreError> {
        self.store
            .exists(key.as_str())
            .map_err(|err| self.spin_error(err))
    }

    /// Compare-and-swap through `wasi:keyvalue/atomics`.
    ///
    /// Caveats:
    /// - Spin's SQLite backend (3.x/4.x) performs the swap after a `current()` of "absent" as
    ///   an unconditional write, so two instances creating the same key at once may both
    ///   succeed there (Redis and eventplane's host are strict). Code that must create a key
    ///   exactly once should not depend on `expected = None` alone on that backend.
    /// - Spin 4.0.2's Redis backend reports every swap as failed, whether it wrote or not; a
    ///   swap that reports failure is therefore read back, and counts as done if the key holds
    ///   the new value ([`swap_landed`]).
    fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let cas =
            atomics::Cas::new(self.bucket()?, key.as_str()).map_err(|err| self.wasi_error(err))?;
        // `current` also pins the version `swap` compares against (Spin's stores remember the
        // value read here), so it must be called even though we know what we expect.
        let current = cas.current().map_err(|err| self.wasi_error(err))?;
        if current.as_deref() != expected {
            return Ok(false);
        }
        match atomics::swap(cas, new) {
            Ok(()) => Ok(true),
            // Spin 4.0.2's Redis store reports every swap as failed, written or not: read back
            // (see `swap_landed`).
            Err(atomics::CasError::CasFailed(_)) => swap_landed(self, key, new),
            Err(atomics::CasError::StoreError(err)) => {
                let err = self.wasi_error(err);
                if swap_landed(self, key, new)? {
                    Ok(true)
                } else {
                    Err(err)
                }
            }
        }
    }

    fn increment(&self, key: &Key, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(self.bucket()?, key.as_str(), delta).map_err(|err| self.wasi_error(err))
    }

    /// Through `wasi:keyvalue/batch`: one host call (eventplane's host commits the keys
    /// together; Spin's backends may apply them one by one, in order).
    fn set_many(&self, entries: &[(Key, Vec<u8>)]) -> Result<(), StoreError> {
        let pairs: Vec<(String, Vec<u8>)> = entries
            .iter()
            .map(|(key, value)| (key.as_str().to_owned(), value.clone()))
            .collect();
        batch::set_many(self.bucket()?, &pairs).map_err(|err| self.wasi_error(err))
    }
}

/// The GraphQL schema and other shared services hold the store as
/// `Arc<dyn KvStore + Send + Sync>`; this fails to compile if `SpinStore` stops being both.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SpinStore>();
};
