//! The gateway's own Spin variables: Pub/Sub push verification (publisher authentication's
//! are `eventplane_ingest::config`).

use eventplane_core::Error;
use eventplane_spin::request::variable;

/// How Pub/Sub push requests are verified (`pubsub_push_*`).
pub struct PushConfig {
    /// `pubsub_push_issuer`: the `iss` of push tokens (Google's, `https://accounts.google.com`).
    pub issuer: String,
    /// `pubsub_push_jwks_url`: the issuer's public keys.
    pub jwks_url: String,
    /// `pubsub_push_audience`: the `aud` push tokens must name; empty: the push endpoint's own
    /// URL, which is what Pub/Sub puts there when the subscription names no audience.
    pub audience: String,
    /// `pubsub_push_service_account`: the `email` push tokens must name; empty: push is off.
    pub service_account: String,
}

impl PushConfig {
    /// Reads the `pubsub_push_*` variables; issuer and JWKS URL must be set.
    pub fn load() -> Result<Self, Error> {
        let config = Self {
            issuer: variable("pubsub_push_issuer")?.trim().to_owned(),
            jwks_url: variable("pubsub_push_jwks_url")?.trim().to_owned(),
            audience: variable("pubsub_push_audience")?.trim().to_owned(),
            service_account: variable("pubsub_push_service_account")?.trim().to_owned(),
        };
        if config.issuer.is_empty() || config.jwks_url.is_empty() {
            return Err(Error::internal(
                "pubsub_push_issuer and pubsub_push_jwks_url must be set to accept Pub/Sub pushes",
            ));
        }
        Ok(config)
    }
}
