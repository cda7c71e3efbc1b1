//! The registry's Spin variables.

use eventplane_registry_api::RegistryConfig;

/// What the registry reads from its variables.
pub struct Config {
    /// `admin_token`: the bearer token of the management API.
    pub admin_token: String,
    /// `default_tenant`: the tenant of requests without a `Tenant` header.
    pub default_tenant: String,
    /// `events_base_url`, `spec_max_bytes`, `mqtt_address` and `mqtt_topic`.
    pub registry: RegistryConfig,
    /// `fetch_timeout_ms`: how long the fetcher may take for one fetch.
    pub fetch_timeout: std::time::Duration,
}

/// How much a GraphQL request body may exceed the largest spec it can carry (the query text,
/// the other fields of the input, JSON escaping of the spec itself is bounded by the caller).
pub const REQUEST_OVERHEAD_BYTES: usize = 64 * 1024;

fn var(name: &str) -> Result<String, String> {
    spin_sdk::variables::get(name).map_err(|e| format!("variable {name}: {e}"))
}

impl Config {
    /// Reads the variables; a missing or malformed one is our fault (a deployment error).
    pub fn load() -> Result<Self, String> {
        let spec_max_bytes = var("spec_max_bytes")?;
        let spec_max_bytes = spec_max_bytes
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("variable spec_max_bytes is not a number: {spec_max_bytes:?}"))?;
        let fetch_timeout_ms = var("fetch_timeout_ms")?;
        let fetch_timeout_ms = fetch_timeout_ms.trim().parse::<u64>().map_err(|_| {
            format!("variable fetch_timeout_ms is not a number: {fetch_timeout_ms:?}")
        })?;
        Ok(Self {
            fetch_timeout: std::time::Duration::from_millis(fetch_timeout_ms),
            admin_token: var("admin_token")?,
            default_tenant: var("default_tenant")?,
            registry: RegistryConfig {
                events_base_url: var("events_base_url")?,
                spec_max_bytes,
                mqtt_address: var("mqtt_address")?,
                mqtt_topic: var("mqtt_topic")?,
            },
        })
    }

    /// The largest request body accepted on `/graphql`.
    pub fn max_request_bytes(&self) -> usize {
        self.registry.spec_max_bytes.saturating_mul(2) + REQUEST_OVERHEAD_BYTES
    }
}
