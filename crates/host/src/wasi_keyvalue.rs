//! Implements `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2` over the same stores as
//! `fermyon:spin/key-value`, as Spin does: a bucket is a store label.

use wasmtime::component::Resource;

use crate::bindings::wasi_store::{self, Error, KeyResponse};
use crate::bindings::{atomics, batch};
use crate::state::HostState;

/// An open bucket: a store label the component was granted.
pub struct BucketHandle {
    pub(crate) label: String,
}

/// A compare-and-swap in progress: the value the swap is conditional on.
pub struct CasHandle {
    label: String,
    key: String,
    /// The value read when the operation was created or last asked for its `current` value.
    observed: Option<Vec<u8>>,
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

impl HostState {
    fn bucket_label(&self, bucket: &Resource<BucketHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(bucket)?.label.clone())
    }

    async fn new_cas(
        &mut self,
        label: String,
        key: String,
    ) -> wasmtime::Result<Result<Resource<CasHandle>, Error>> {
        let observed = match self.kv.get(&label, &key).await {
            Ok(v) => v,
            Err(e) => return Ok(Err(other(e))),
        };
        Ok(Ok(self.table.push(CasHandle {
            label,
            key,
            observed,
        })?))
    }
}

impl wasi_store::Host for HostState {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<BucketHandle>, Error>> {
        if !self.component.key_value_stores.contains(&identifier) {
            return Ok(Err(Error::AccessDenied));
        }
        if self.open_stores >= crate::state::MAX_OPEN_STORES {
            return Ok(Err(Error::Other("store table full".into())));
        }
        self.open_stores += 1;
        Ok(Ok(self.table.push(BucketHandle { label: identifier })?))
    }
}

impl wasi_store::HostBucket for HostState {
    async fn get(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let label = self.bucket_label(&bucket)?;
        Ok(self.kv.get(&label, &key).await.map_err(other))
    }

    async fn set(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.bucket_label(&bucket)?;
        Ok(self.kv.set(&label, &key, value).await.map_err(other))
    }

    async fn delete(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.bucket_label(&bucket)?;
        Ok(self.kv.delete(&label, &key).await.map_err(other))
    }

    async fn exists(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let label = self.bucket_label(&bucket)?;
        Ok(self.kv.exists(&label, &key).await.map_err(other))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<BucketHandle>,
        _cursor: Option<String>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        // Like Spin, all keys come back in one page: there is never a continuation cursor.
        let label = self.bucket_label(&bucket)?;
        Ok(self
            .kv
            .keys(&label)
            .await
            .map(|keys| KeyResponse { keys, cursor: None })
            .map_err(other))
    }

    async fn drop(&mut self, bucket: Resource<BucketHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        self.open_stores = self.open_stores.saturating_sub(1);
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let label = self.bucket_label(&bucket)?;
        Ok(self.kv.increment(&label, &key, delta).await.map_err(other))
    }

    async fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let CasHandle {
            label,
            key,
            observed,
        } = self.table.delete(cas)?;
        match self
            .kv
            .compare_and_swap(&label, &key, observed, value)
            .await
        {
            Ok(true) => Ok(Ok(())),
            // The WIT asks for a fresh handle, already updated to the latest value, so that the
            // guest can retry at once.
            Ok(false) => match self.new_cas(label, key).await? {
                Ok(fresh) => Ok(Err(atomics::CasError::CasFailed(fresh))),
                Err(e) => Ok(Err(atomics::CasError::StoreError(e))),
            },
            Err(e) => Ok(Err(atomics::CasError::StoreError(other(e)))),
        }
    }
}

impl atomics::HostCas for HostState {
    async fn new(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<CasHandle>, Error>> {
        let label = self.bucket_label(&bucket)?;
        self.new_cas(label, key).await
    }

    async fn current(
        &mut self,
        cas: Resource<CasHandle>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        // What `new` read: the swap is conditional on exactly that value, so the guest decides
        // on what the swap will compare against, and a change since then fails the swap. (Spin
        // reads here instead, since its `new` reads nothing; reading twice would cost every
        // compare-and-swap one more round trip on Redis.)
        Ok(Ok(self.table.get(&cas)?.observed.clone()))
    }

    async fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, Error>> {
        let label = self.bucket_label(&bucket)?;
        Ok(match self.kv.get_many(&label, &keys).await {
            Ok(values) => Ok(keys.into_iter().zip(values).collect()),
            Err(e) => Err(other(e)),
        })
    }

    async fn set_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.bucket_label(&bucket)?;
        Ok(self.kv.set_many(&label, key_values).await.map_err(other))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.bucket_label(&bucket)?;
        Ok(self.kv.delete_many(&label, keys).await.map_err(other))
    }
}
