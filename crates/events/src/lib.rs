//! eventplane's publishing domain, free of Spin and of I/O, tested natively.
//!
//! The gateway component (and the registry's token endpoint) are thin adapters around this crate:
//!
//! - [`cloudevents`]: CloudEvents 1.0 over HTTP: binary, structured and batch mode parsing and
//!   validation into one [`Event`] model;
//! - [`legacy`]: Kyma's legacy publish body, its response and error shapes, and its conversion to
//!   an [`Event`];
//! - [`token`]: our ES256/RS256 access tokens, JWKS documents, and the verification of tokens from
//!   trusted issuers (ours and external OpenID Connect issuers), with the 401/403 mapping;
//! - [`credentials`]: publisher client credentials (generation, salted hashing, verification) and
//!   the OAuth2 client-credentials token request and its errors;
//! - [`catalog`]: finding an event's entry in an application's catalog and validating its payload
//!   against the entry's JSON schema;
//! - [`limits`]: the event size limit.
//!
//! ```
//! use eventplane_events::catalog::{Catalog, CatalogEntry, PayloadCheck};
//! use eventplane_events::token::{self, AccessClaims, SigningKey, TrustedIssuer, Verifier};
//! use eventplane_events::{cloudevents, limits};
//!
//! // The registry issues a token to application "shop" …
//! let key = SigningKey::generate()?;
//! let claims = AccessClaims::publish("https://ep.example", "gateway", "cli_1", "acme", "shop",
//!                                    1_750_000_000, token::DEFAULT_TOKEN_TTL_SECONDS);
//! let jwt = token::issue(&key, &claims)?;
//!
//! // … and the gateway authenticates, parses and validates a structured event.
//! let verifier = Verifier::new(vec![TrustedIssuer::ours("https://ep.example", "gateway", key.jwks(), None)]);
//! let publisher = verifier.verify(token::bearer_token(Some(&format!("Bearer {jwt}")))?, 1_750_000_100)?;
//! let body = br#"{"specversion":"1.0","id":"1","source":"/applications/shop",
//!                 "type":"order.created.v1","data":{"orderId":"42"}}"#;
//! limits::check_size(body.len(), limits::DEFAULT_MAX_EVENT_BYTES)?;
//! let event = cloudevents::from_structured(body)?;
//! token::authorize_source(&publisher, &event.source)?;
//! let entries = [CatalogEntry {
//!     name: "order.created.v1".into(),
//!     version: "v1".into(),
//!     payload_schema: Some(serde_json::json!({"type": "object", "required": ["orderId"]})),
//! }];
//! assert_eq!(Catalog::new(&entries).validate(&event, None)?, PayloadCheck::Valid);
//! # Ok::<(), eventplane_core::Error>(())
//! ```
//!
//! Nothing here reads a clock: functions that need the time take `now` (Unix seconds).
//! Randomness (key and secret generation, legacy event ids) comes from the operating system
//! (`wasi:random` on `wasm32-wasip2`).
#![deny(missing_docs)]

pub mod catalog;
pub mod cloudevents;
pub mod credentials;
pub mod legacy;
pub mod limits;
pub mod signing;
pub mod token;

mod fastpath;
mod uri;

pub use catalog::{CatalogEntry, CatalogError};
pub use cloudevents::{ContentMode, Event, EventData};
pub use legacy::{LegacyError, LegacyEvent, LegacyResponse};
pub use token::{AuthError, Jwks, Publisher, SigningKey, TrustedIssuer, Verifier};
