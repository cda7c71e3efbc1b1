//! eventplane's registration API: the GraphQL schema (compatible with Kyma Compass's Director)
//! through which applications register themselves, their webhooks and the events they emit.
//!
//! - [`schema()`] builds the [`RegistrySchema`]; every request carries a [`RequestScope`] (the
//!   store, the tenant, the [`RegistryConfig`] and a [`Clock`]);
//! - errors carry `extensions.code` ([`ErrorCode`]), mapped from [`eventplane_core::Error`] in
//!   one place ([`to_graphql_error`]);
//! - configuration changes are written to a webhook outbox that the caller drains after the
//!   request ([`pending_notifications`], [`record_delivery`]): resolvers never do HTTP.
//!
//! ```
//! use std::sync::Arc;
//! use eventplane_core::{MemoryStore, TenantId};
//! use eventplane_registry_api::{schema, RegistryConfig, RequestScope};
//!
//! let schema = schema();
//! let scope = RequestScope::new(
//!     Arc::new(MemoryStore::new()),
//!     TenantId::new("acme")?,
//!     RegistryConfig::default(),
//! );
//! let request = scope.attach(
//!     r#"mutation { createApplication(in: {name: "shop"}) {
//!         name eventingConfiguration { defaultURL } } }"#,
//! );
//! let response = futures::executor::block_on(schema.execute(request));
//! assert!(response.errors.is_empty(), "{:?}", response.errors);
//! assert_eq!(
//!     response.data.into_json()?["createApplication"]["eventingConfiguration"]["defaultURL"],
//!     "http://127.0.0.1:3000/events/shop/v1/events"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod applications;
mod auth;
mod bus;
mod context;
mod credentials;
mod errors;
mod event_apis;
mod lifecycle;
mod model;
mod names;
mod outbox;
mod pagination;
mod scalars;
mod schema;
mod time;
mod validate;
mod webhooks;

pub use auth::{Auth, Credential, CsrfTokenAuth, SECRET_MASK};
pub use context::{
    BusChecker, Clock, DEFAULT_SPEC_MAX_BYTES, FixedClock, NoBusChecker, NoFetcher, RegistryConfig,
    RequestScope, SharedStore, SpecFetcher, SystemClock,
};
pub use credentials::{TokenSettings, issue_token};
pub use errors::{ErrorCode, ErrorCodes, to_graphql_error};
pub use outbox::{
    DeliveryOutcome, DeliveryStatus, MAX_DELIVERY_ATTEMPTS, MAX_PENDING_BATCH, Notification,
    pending_notifications, record_delivery,
};
pub use scalars::{HttpHeaders, QueryParams};
pub use schema::{Mutation, Query, RegistrySchema, schema};
pub use time::Timestamp;
