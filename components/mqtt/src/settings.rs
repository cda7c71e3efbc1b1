//! The mqtt component's Spin variables.

use eventplane_core::{Error, TenantId};
use eventplane_ingest::config::Config;
use eventplane_ingest::mqtt::TopicPattern;
use eventplane_spin::request::{number_variable, variable};

/// What the mqtt component reads from its variables.
pub struct Settings {
    /// Publisher authentication's (`default_tenant`, `events_base_url`, `token_signing_key`,
    /// `oidc_*`, `max_event_bytes`).
    pub auth: Config,
    /// `default_tenant`, checked: the tenant of messages refused before their token verified.
    pub default_tenant: TenantId,
    /// `mqtt_topic`: the pattern whose `+` level names the application.
    pub topic: TopicPattern,
    /// `mqtt_address`: the broker rejection notices go to; empty: no notices.
    pub address: String,
    /// `mqtt_username`.
    pub username: String,
    /// `mqtt_password`.
    pub password: String,
    /// `mqtt_keep_alive_seconds`.
    pub keep_alive_seconds: u64,
    /// `mqtt_handoff_url` + the hand-off path: where the dispatcher takes accepted events.
    /// Spin runs its MQTT trigger in a process of its own, without service chaining, so the
    /// component reaches the dispatcher over the application's own HTTP address.
    pub handoff_url: String,
}

impl Settings {
    /// Reads the variables; a missing or malformed one is a deployment error.
    pub fn load() -> Result<Self, Error> {
        let auth = Config::load()?;
        let default_tenant = TenantId::new(auth.default_tenant.trim()).map_err(|e| {
            Error::internal(format!("the variable default_tenant is not a tenant: {e}"))
        })?;
        Ok(Self {
            default_tenant,
            auth,
            topic: TopicPattern::parse(&variable("mqtt_topic")?)?,
            address: variable("mqtt_address")?.trim().to_owned(),
            username: variable("mqtt_username")?,
            password: variable("mqtt_password")?,
            keep_alive_seconds: number_variable("mqtt_keep_alive_seconds")?,
            handoff_url: format!(
                "{}{}",
                variable("mqtt_handoff_url")?.trim().trim_end_matches('/'),
                eventplane_spin::handoff::HANDOFF_PATH
            ),
        })
    }
}
