//! The wasmtime-free part of eventplane's Spin host: reading a Spin application manifest
//! (`spin.toml`, manifest version 2) and applying Spin's rules for HTTP routing, variables
//! and outbound networking, exactly as the Spin CLI would.
//!
//! - [`manifest`]: [`load`] / [`parse`] a manifest into a validated [`Manifest`];
//!   [`check_sources`] checks the component files exist.
//! - [`routes`]: the HTTP [`Router`] and the `spin-*` request headers.
//! - [`variables`]: application variables (`SPIN_VARIABLE_<NAME>` or default) and each
//!   component's `fermyon:spin/variables` view.
//! - [`outbound`]: `allowed_outbound_hosts` checks, including self requests and service
//!   chaining.
//! - [`mqtt`]: Spin's MQTT trigger: `[application.trigger.mqtt]`, `[[trigger.mqtt]]`, broker
//!   addresses and topic filters.
//!
//! ```
//! use std::collections::HashMap;
//! use std::path::Path;
//!
//! let manifest = eventplane_manifest::parse(
//!     r#"
//!     spin_manifest_version = 2
//!     [application]
//!     name = "hello"
//!     [variables]
//!     greeting = { default = "hi" }
//!     [[trigger.http]]
//!     route = "/hello/..."
//!     component = "hello"
//!     [component.hello]
//!     source = "hello.wasm"
//!     allowed_outbound_hosts = ["https://*.example.com"]
//!     variables = { message = "{{ greeting }}, world" }
//!     "#,
//!     Path::new("/app"),
//! )?;
//!
//! let (router, warnings) = eventplane_manifest::Router::from_manifest(&manifest)?;
//! assert!(warnings.is_empty());
//! let matched = router.route("/hello/there").expect("routed");
//! assert_eq!(matched.component_id, "hello");
//! assert_eq!(matched.path_info, "/there");
//!
//! let env = HashMap::from([("SPIN_VARIABLE_GREETING".to_owned(), "hello".to_owned())]);
//! let vars = eventplane_manifest::variables::resolve(&manifest, &env)?;
//! assert_eq!(vars.component("hello").get("message")?, "hello, world");
//!
//! let hosts = eventplane_manifest::AllowedHosts::for_component(&manifest, &vars, "hello")?;
//! assert!(hosts.allows_url("https://api.example.com/v1", "https"));
//! assert!(!hosts.allows_url("http://api.example.com/v1", "https"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod manifest;
pub mod mqtt;
pub mod outbound;
pub mod routes;
pub mod variables;

pub use manifest::{
    Application, BuildConfig, Component, FileMount, HttpRoute, HttpTrigger, Manifest,
    ManifestError, Variable, check_sources, load, parse,
};
pub use outbound::{AllowedHosts, OutboundError};
pub use routes::{RouteError, RouteMatch, Router};
pub use variables::{ResolvedVariables, VariableError, VariablesError};
