//! The Spin variables publisher authentication reads (the gateway's and MQTT's).

use eventplane_core::Error;
use eventplane_spin::request::{number_variable, variable};

/// One trusted external OpenID Connect issuer.
#[derive(Debug, Clone)]
pub struct Oidc {
    /// `oidc_issuer`: the `iss` of its tokens.
    pub issuer: String,
    /// `oidc_jwks_url`: where its public keys are.
    pub jwks_url: String,
    /// `oidc_audience`: the `aud` its tokens must name.
    pub audience: String,
    /// `oidc_app_claim`: the claim naming the application.
    pub app_claim: String,
}

/// What publishing reads from its variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// `default_tenant`.
    pub default_tenant: String,
    /// `events_base_url`: our tokens' issuer is `<base>/oauth`, their audience `<base>/events`.
    pub events_base_url: String,
    /// `token_signing_key`: empty when the key is generated and stored.
    pub token_signing_key: String,
    /// The external issuer, when `oidc_issuer` is set.
    pub oidc: Option<Oidc>,
    /// `max_event_bytes`.
    pub max_event_bytes: u64,
}

impl Config {
    /// Reads the variables; a missing or malformed one is a deployment error (500, logged).
    pub fn load() -> Result<Self, Error> {
        let issuer = variable("oidc_issuer")?;
        let oidc = if issuer.trim().is_empty() {
            None
        } else {
            let oidc = Oidc {
                issuer: issuer.trim().to_owned(),
                jwks_url: variable("oidc_jwks_url")?.trim().to_owned(),
                audience: variable("oidc_audience")?.trim().to_owned(),
                app_claim: variable("oidc_app_claim")?.trim().to_owned(),
            };
            if oidc.jwks_url.is_empty() || oidc.audience.is_empty() || oidc.app_claim.is_empty() {
                return Err(Error::internal(
                    "oidc_issuer is set, so oidc_jwks_url, oidc_audience and oidc_app_claim must be too",
                ));
            }
            Some(oidc)
        };
        Ok(Self {
            default_tenant: variable("default_tenant")?,
            events_base_url: variable("events_base_url")?
                .trim()
                .trim_end_matches('/')
                .to_owned(),
            token_signing_key: variable("token_signing_key")?,
            oidc,
            max_event_bytes: number_variable("max_event_bytes")?,
        })
    }

    /// The `iss` of our tokens.
    pub fn our_issuer(&self) -> String {
        format!("{}/oauth", self.events_base_url)
    }

    /// The `aud` of our tokens.
    pub fn our_audience(&self) -> String {
        format!("{}/events", self.events_base_url)
    }
}
