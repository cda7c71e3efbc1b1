//! eventplane's shared building blocks, free of any Spin dependency and tested natively:
//!
//! - [`ids`]: prefixed, validated id newtypes ([`AppId`] `app_…`, [`EventId`] `evt_…`, …) and
//!   [`TenantId`];
//! - [`keys`]: the one module that builds key-value keys, all tenant-scoped;
//! - [`store`]: the key-value port [`KvStore`], and [`KvStoreExt`] on top of it (JSON records,
//!   compare-and-swap updates, indexes);
//! - [`index`]: indexes and records that are never recreated by accident, and the safe first
//!   creation of a tenant-wide index (one elected writer), on any `KvStore`;
//! - [`memory`]: [`MemoryStore`], the in-memory `KvStore` for tests;
//! - [`random`]: random bytes from the operating system, for secrets;
//! - [`error`]: the project's [`Error`] and its one mapping to HTTP status, code and body.
//!
//! ```
//! use eventplane_core::{keys, AppId, Error, KvStoreExt, MemoryStore, TenantId};
//!
//! const APPS: keys::Kind = keys::Kind::new("apps");
//!
//! let store = MemoryStore::new();
//! let tenant: TenantId = "acme".parse()?;
//! let app = AppId::new();
//!
//! store.set_json(&keys::record_for(&tenant, &app), &serde_json::json!({"name": "shop"}))?;
//! store.index_add(&keys::index(&tenant, APPS), app.as_str())?;
//!
//! let page = store.index_page(&keys::index(&tenant, APPS), None, 10)?;
//! assert_eq!(page.members, [app.to_string()]);
//!
//! let missing = Error::not_found(format!("no application {app}"));
//! assert_eq!((missing.status(), missing.code()), (404, "NOT_FOUND"));
//! # Ok::<(), Error>(())
//! ```
#![deny(missing_docs)]

pub mod auth;
pub mod error;
pub mod ids;
pub mod index;
pub mod keys;
pub mod memory;
pub mod random;
pub mod read_ahead;
pub mod store;

pub use error::{Error, FieldError};
pub use ids::{
    ApiId, AppId, AttemptId, ClientId, EventId, NotificationId, ParseIdError, PrefixedId,
    SubscriptionId, TenantId, WebhookId,
};
pub use keys::Key;
pub use memory::{CasHookStore, MemoryStore};
pub use read_ahead::ReadAhead;
pub use store::{
    IndexPage, KvStore, KvStoreExt, MAX_INDEX_PAGE, MAX_UPDATE_ATTEMPTS, StoreError, decode_json,
    swap_landed,
};
