//! Implements `fermyon:spin/key-value@2.0.0` over the application's stores ([`crate::stores`]).

use wasmtime::component::Resource;

use crate::bindings::key_value::{self, Error};
use crate::state::HostState;

/// An open store: the label the guest opened, checked against `key_value_stores`.
pub struct StoreHandle {
    pub(crate) label: String,
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

impl HostState {
    fn store_label(&self, store: &Resource<StoreHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(store)?.label.clone())
    }
}

impl key_value::Host for HostState {}

impl key_value::HostStore for HostState {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<StoreHandle>, Error>> {
        // Spin answers access-denied for any label the component was not granted, whether or
        // not such a store exists; only granted labels are ever checked for existence.
        if !self.component.key_value_stores.contains(&label) {
            return Ok(Err(Error::AccessDenied));
        }
        if self.open_stores >= crate::state::MAX_OPEN_STORES {
            return Ok(Err(Error::StoreTableFull));
        }
        self.open_stores += 1;
        Ok(Ok(self.table.push(StoreHandle { label })?))
    }

    async fn get(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let label = self.store_label(&store)?;
        Ok(self.kv.get(&label, &key).await.map_err(other))
    }

    async fn set(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.store_label(&store)?;
        Ok(self.kv.set(&label, &key, value).await.map_err(other))
    }

    async fn delete(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.store_label(&store)?;
        Ok(self.kv.delete(&label, &key).await.map_err(other))
    }

    async fn exists(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let label = self.store_label(&store)?;
        Ok(self.kv.exists(&label, &key).await.map_err(other))
    }

    async fn get_keys(
        &mut self,
        store: Resource<StoreHandle>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let label = self.store_label(&store)?;
        Ok(self.kv.keys(&label).await.map_err(other))
    }

    async fn drop(&mut self, store: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        self.open_stores = self.open_stores.saturating_sub(1);
        Ok(())
    }
}
