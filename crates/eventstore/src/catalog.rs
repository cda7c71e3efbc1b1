//! An application's event catalog, read from the registry's records.
//!
//! Reads, and decodes only the fields it needs from:
//! - `t/<tenant>/r/app-by-name/<name>` → `{"appId": …}`;
//! - `t/<tenant>/r/app/<app id>` (only whether it exists: a name whose application is being
//!   deleted has no catalog), read together with the index below;
//! - `t/<tenant>/i/app-apis/<app id>` → the ids of its event APIs;
//! - `t/<tenant>/r/api/<api id>` → `{"id": …, "catalog": [{name, version, payload_schema}]}`.

use eventplane_core::index::decode_members;
use eventplane_core::keys::{self, APPLICATION_EVENT_APIS, APPLICATIONS_BY_NAME};
use eventplane_core::{
    ApiId, AppId, Error, Key, KvStore, KvStoreExt, MAX_INDEX_PAGE, TenantId, decode_json,
};
use serde::Deserialize;
use serde_json::Value;

/// The event types an application registered, over all its event APIs.
#[derive(Debug, Clone, PartialEq)]
pub struct AppCatalog {
    /// The application's id.
    pub app_id: AppId,
    /// The application's name.
    pub app_name: String,
    /// Its event types, grouped by API in the order of the API ids, each API's entries in the
    /// order of its catalog.
    pub entries: Vec<CatalogEntry>,
}

/// One event type of an application's catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    /// The event API that declares it.
    pub api_id: ApiId,
    /// The event type's name, e.g. `order.created.v1`.
    pub name: String,
    /// Its version, e.g. `v1`.
    pub version: String,
    /// The JSON schema its data must satisfy, if the spec gives one.
    pub payload_schema: Option<Value>,
}

/// `t/<tenant>/r/app-by-name/<name>`, as the registry writes it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameHolder {
    app_id: AppId,
}

/// The parts of `t/<tenant>/r/api/<id>` the catalog needs.
#[derive(Deserialize)]
struct ApiRecord {
    id: ApiId,
    #[serde(default)]
    catalog: Vec<ApiCatalogEvent>,
}

#[derive(Deserialize)]
struct ApiCatalogEvent {
    name: String,
    version: String,
    #[serde(default)]
    payload_schema: Option<Value>,
}

/// The key naming the application `app_name` of `tenant`: the first read of [`load_catalog`],
/// for readers that fetch it ahead.
pub fn application_name_key(tenant: &TenantId, app_name: &str) -> Key {
    keys::record(tenant, APPLICATIONS_BY_NAME, app_name)
}

/// The keys [`load_catalog`] reads of the application `app_id` once it has its name: its record
/// and the index of its event APIs (for readers that fetch them ahead).
pub fn application_keys(tenant: &TenantId, app_id: &AppId) -> [Key; 2] {
    [
        keys::record_for(tenant, app_id),
        keys::owned_index(tenant, APPLICATION_EVENT_APIS, app_id.as_str()),
    ]
}

/// The catalog of the application named `app_name` in `tenant`; `None` if there is no such
/// application.
pub fn load_catalog(
    store: &dyn KvStore,
    tenant: &TenantId,
    app_name: &str,
) -> Result<Option<AppCatalog>, Error> {
    let by_name = application_name_key(tenant, app_name);
    let Some(holder) = store.get_json::<NameHolder>(&by_name)? else {
        return Ok(None);
    };
    // The record and the index in one read, then every API in one more.
    let [record, index] = application_keys(tenant, &holder.app_id);
    let [found, members] = <[_; 2]>::try_from(store.get_many(&[record, index.clone()])?)
        .map_err(|_| Error::internal("the store answered a read of two keys with another count"))?;
    if found.is_none() {
        return Ok(None);
    }
    let members = members
        .map(|value| decode_members(&index, &value))
        .transpose()?
        .unwrap_or_default();
    let api_keys = members
        .iter()
        .map(|member| {
            let api_id = member.parse::<ApiId>().map_err(|err| {
                Error::internal_with(format!("a member of {index} is not an API id"), err)
            })?;
            Ok(keys::record_for(tenant, &api_id))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let mut entries = Vec::new();
    // In batches no larger than an index page, so one read stays bounded.
    for chunk in api_keys.chunks(MAX_INDEX_PAGE) {
        for (key, api) in chunk.iter().zip(store.get_many(chunk)?) {
            // An API deleted since the index was read has no record: it is simply gone.
            let Some(bytes) = api else { continue };
            let api: ApiRecord = decode_json(key, &bytes)?;
            entries.extend(api.catalog.into_iter().map(|event| CatalogEntry {
                api_id: api.id.clone(),
                name: event.name,
                version: event.version,
                payload_schema: event.payload_schema,
            }));
        }
    }
    Ok(Some(AppCatalog {
        app_id: holder.app_id,
        app_name: app_name.to_owned(),
        entries,
    }))
}

impl AppCatalog {
    /// The entry named `name`, and of `version` when given.
    pub fn find(&self, name: &str, version: Option<&str>) -> Option<&CatalogEntry> {
        self.entries
            .iter()
            .find(|entry| entry.name == name && version.is_none_or(|v| entry.version == v))
    }
}
