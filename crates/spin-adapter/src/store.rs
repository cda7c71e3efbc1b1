//! [`KvStore`] on a Spin key-value store.
//!
//! Every operation goes through `wasi:keyvalue@0.2.0-draft2` (`store`, `atomics`, `batch`),
//! which Spin implements on every backend over the same stores as `fermyon:spin/key-value`.
//! One interface means one open per instance: Spin's Redis store sends a `PING` (a round trip)
//! on every open.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use eventplane_core::{Key, KvStore, StoreError, swap_landed};
use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store as wasi_store};

/// A Spin key-value store, opened by label (the component must list it in
/// `key_value_stores`).
pub struct SpinStore {
    label: String,
    bucket: wasi_store::Bucket,
}

impl SpinStore {
    /// Opens the store `label`.
    pub fn open(label: &str) -> Result<Self, StoreError> {
        let bucket = wasi_store::open(label).map_err(|err| wasi_error(label, err))?;
        Ok(Self {
            label: label.to_owned(),
            bucket,
        })
    }

    /// Opens the store `default`.
    pub fn open_default() -> Result<Self, StoreError> {
        Self::open("default")
    }

    fn wasi_error(&self, err: wasi_store::Error) -> StoreError {
        wasi_error(&self.label, err)
    }
}

fn wasi_error(label: &str, err: wasi_store::Error) -> StoreError {
    match err {
        wasi_store::Error::NoSuchStore => StoreError::NoSuchStore(label.to_owned()),
        wasi_store::Error::AccessDenied => StoreError::AccessDenied(label.to_owned()),
        wasi_store::Error::Other(message) => StoreError::Backend(message),
    }
}

impl KvStore for SpinStore {
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
        self.bucket
            .get(key.as_str())
            .map_err(|err| self.wasi_error(err))
    }

    fn set(&self, key: &Key, value: &[u8]) -> Result<(), StoreError> {
        self.bucket
            .set(key.as_str(), value)
            .map_err(|err| self.wasi_error(err))
    }

    fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.bucket
            .delete(key.as_str())
            .map_err(|err| self.wasi_error(err))
    }

    fn exists(&self, key: &Key) -> Result<bool, StoreError> {
        self.bucket
            .exists(key.as_str())
            .map_err(|err| self.wasi_error(err))
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
            atomics::Cas::new(&self.bucket, key.as_str()).map_err(|err| self.wasi_error(err))?;
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
        atomics::increment(&self.bucket, key.as_str(), delta).map_err(|err| self.wasi_error(err))
    }

    /// Through `wasi:keyvalue/batch` (`MGET` on Redis): one host call for two keys or more.
    ///
    /// Spin 4.0.2's Redis store cannot read in batch (its `get-many` sends `KEYS` with the keys,
    /// which Redis refuses for two keys or more, and misreads for one): after a batch read fails,
    /// this instance reads one key at a time, so a failure costs one round trip per request.
    fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.len() >= 2 && !BATCH_READS_FAIL.load(Ordering::Relaxed) {
            let names: Vec<String> = keys.iter().map(|key| key.as_str().to_owned()).collect();
            match batch::get_many(&self.bucket, &names) {
                Ok(found) => {
                    // Backends may leave absent keys out, and need not keep the order.
                    let found: HashMap<String, Option<Vec<u8>>> = found.into_iter().collect();
                    return Ok(keys
                        .iter()
                        .map(|key| found.get(key.as_str()).cloned().flatten())
                        .collect());
                }
                Err(_) => BATCH_READS_FAIL.store(true, Ordering::Relaxed),
            }
        }
        keys.iter().map(|key| self.get(key)).collect()
    }

    /// Through `wasi:keyvalue/batch`: one host call (eventplane's host commits the keys
    /// together; Spin's backends may apply them one by one, in order).
    fn set_many(&self, entries: &[(Key, Vec<u8>)]) -> Result<(), StoreError> {
        let pairs: Vec<(String, Vec<u8>)> = entries
            .iter()
            .map(|(key, value)| (key.as_str().to_owned(), value.clone()))
            .collect();
        batch::set_many(&self.bucket, &pairs).map_err(|err| self.wasi_error(err))
    }
}

/// Set once a batch read failed in this instance: the store cannot read in batch (or is down,
/// and then one-key reads fail as well).
static BATCH_READS_FAIL: AtomicBool = AtomicBool::new(false);

/// The GraphQL schema and other shared services hold the store as
/// `Arc<dyn KvStore + Send + Sync>`; this fails to compile if `SpinStore` stops being both.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SpinStore>();
};
