//! eventplane's ports implemented with spin-sdk, shared by the components:
//!
//! - [`SpinStore`]: [`eventplane_core::KvStore`] on a Spin key-value store (compare-and-swap
//!   and increment through `wasi:keyvalue/atomics`);
//! - [`error_response`] and [`json_response`]: the one mapping from
//!   [`eventplane_core::Error`] to an HTTP response, and JSON bodies;
//! - [`client`]: calls out over HTTP with a body limit and credentials applied, and
//!   [`timer`]: sleeps, deadlines and blocking on a future;
//! - [`handoff`]: handing accepted events to the dispatcher by service chaining;
//! - [`request`]: headers, the body up to a limit, the admin token, the tenant, variables;
//! - [`Router`]: the method + path route table every component answers with (unknown path →
//!   JSON 404, known path with another method → JSON 405 with `Allow`).
//!
//! A component resolves the request against its table and maps the outcome:
//!
//! ```
//! use eventplane_spin::{error_response, Router};
//! use spin_sdk::http::Method;
//!
//! #[derive(Clone, Copy)]
//! enum Endpoint { Tick }
//!
//! let routes = Router::new().route(&[Method::Post], "/dispatcher/tick", Endpoint::Tick);
//! let response = match routes.resolve(&Method::Get, "/dispatcher/tick") {
//!     Ok(matched) => match matched.handler {
//!         Endpoint::Tick => unreachable!("GET is not routed"),
//!     },
//!     Err(err) => error_response(&err),
//! };
//! assert_eq!(*response.status(), 405);
//! assert_eq!(response.header("allow").and_then(|v| v.as_str()), Some("POST"));
//! ```
#![deny(missing_docs)]

pub mod client;
pub mod handoff;
pub mod request;
mod response;
mod router;
mod store;
pub mod timer;

pub use response::{error_response, framed, json_response, send_response};
pub use router::{Matched, Params, Router, path_of};
pub use store::SpinStore;
