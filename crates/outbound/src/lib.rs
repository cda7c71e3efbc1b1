//! The calls eventplane makes to the outside world, as plain data and pure functions: no Spin,
//! no I/O. The Spin side (`eventplane-spin`'s `client`) performs the calls these describe.
//!
//! - [`auth`]: the credentials a call presents ([`RequestAuth`]: Basic or OAuth2 client
//!   credentials, extra headers and query parameters, an optional CSRF token to fetch first);
//! - [`oauth`]: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4) and when a token may be
//!   reused;
//! - [`csrf`]: the CSRF-token handshake (`X-CSRF-Token: Fetch`, then the token and the cookies);
//! - [`redirect`]: which responses redirect and where to;
//! - [`url`]: which URLs may be called at all (absolute `http`/`https` with a host);
//! - [`fetch`]: the fetcher's wire protocol ([`FetchJob`] in, [`FetchOutcome`] out), its
//!   limits, and the messages a person reads when a fetch fails.
#![deny(missing_docs)]

pub mod auth;
pub mod csrf;
pub mod fetch;
pub mod oauth;
pub mod redirect;
pub mod url;

pub use auth::{Credential, CsrfAuth, RequestAuth};
pub use fetch::{FetchJob, FetchLimits, FetchMode, FetchOutcome, FetchedFormat};
