//! What a request runs against: the store, the tenant, the configuration and the clock.
//!
//! The caller builds one [`RequestScope`] per request and attaches it to the GraphQL request
//! ([`RequestScope::attach`]); resolvers find it in the context. async-graphql keeps context
//! data behind `Send + Sync + 'static`, hence the bounds on the store and the clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_graphql::{Context, Request};
use eventplane_core::{ApiId, Error, KvStore, TenantId};
use eventplane_outbound::{FetchJob, FetchOutcome};

use crate::time::Timestamp;

/// The key-value store as the schema takes it.
pub type SharedStore = Arc<dyn KvStore + Send + Sync>;

/// Where "now" comes from; tests inject a [`FixedClock`].
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system clock (`std::time::SystemTime`, which WASI provides).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let seconds = match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(elapsed) => i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
            Err(before_epoch) => {
                i64::try_from(before_epoch.duration().as_secs()).map_or(i64::MIN, |s| -s)
            }
        };
        Timestamp::from_unix_seconds(seconds)
    }
}

/// A clock that says what it is told, for tests.
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    /// A clock standing at `unix_seconds`.
    pub fn at(unix_seconds: i64) -> Self {
        Self(AtomicI64::new(unix_seconds))
    }

    /// Moves the clock to `unix_seconds`.
    pub fn set(&self, unix_seconds: i64) {
        self.0.store(unix_seconds, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_seconds(self.0.load(Ordering::SeqCst))
    }
}

/// Fetches spec documents for fetch requests: in the application, the fetcher component by
/// service chaining. A port, so that resolvers stay synchronous and testable.
pub trait SpecFetcher: Send + Sync {
    /// Runs `job` for `tenant`. Never an error: a failed fetch is an outcome with a message.
    fn fetch(&self, tenant: &TenantId, job: &FetchJob) -> FetchOutcome;
}

/// No fetcher configured: every fetch fails, saying so.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFetcher;

impl SpecFetcher for NoFetcher {
    fn fetch(&self, _tenant: &TenantId, _job: &FetchJob) -> FetchOutcome {
        FetchOutcome::failed("fetching specs is not configured in this deployment")
    }
}

/// Checks an event API's external subscriptions against the bus right after they are
/// registered (in the application, the dispatcher by service chaining), recording the outcome
/// in each subscription's state. A port, like [`SpecFetcher`].
pub trait BusChecker: Send + Sync {
    /// Checks the external subscriptions of API `api` of `tenant`. Never an error: the outcome
    /// is in the subscriptions' state.
    fn check(&self, tenant: &TenantId, api: &ApiId);
}

/// No bus checker configured: subscriptions are first checked by the dispatcher's next tick.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBusChecker;

impl BusChecker for NoBusChecker {
    fn check(&self, _tenant: &TenantId, _api: &ApiId) {}
}

/// The default of `spec_max_bytes` (1 MiB).
pub const DEFAULT_SPEC_MAX_BYTES: usize = 1024 * 1024;

/// The registry's configuration (Spin variables `events_base_url`, `spec_max_bytes`,
/// `mqtt_address` and `mqtt_topic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Base of the URLs handed to applications, e.g. `https://events.example.com`.
    pub events_base_url: String,
    /// The largest inline spec document accepted, in bytes.
    pub spec_max_bytes: usize,
    /// The MQTT broker applications may publish to; empty: none.
    pub mqtt_address: String,
    /// The MQTT topic pattern whose `+` level names the publishing application.
    pub mqtt_topic: String,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            events_base_url: "http://127.0.0.1:3000".to_owned(),
            spec_max_bytes: DEFAULT_SPEC_MAX_BYTES,
            mqtt_address: String::new(),
            mqtt_topic: eventplane_ingest::mqtt::DEFAULT_TOPIC.to_owned(),
        }
    }
}

impl RegistryConfig {
    /// Where the application `name` publishes events:
    /// `<events_base_url>/events/<name>/v1/events`.
    pub fn default_events_url(&self, application_name: &str) -> String {
        format!(
            "{}/events/{application_name}/v1/events",
            self.events_base_url.trim_end_matches('/')
        )
    }
}

/// Everything one request runs against. Attach it to every request with
/// [`attach`](Self::attach).
#[derive(Clone)]
pub struct RequestScope {
    /// The shared key-value store.
    pub store: SharedStore,
    /// The tenant every read and write is scoped to.
    pub tenant: TenantId,
    /// The configuration.
    pub config: RegistryConfig,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Who fetches specs of fetch requests.
    pub fetcher: Arc<dyn SpecFetcher>,
    /// Who checks external subscriptions once registered.
    pub bus_checker: Arc<dyn BusChecker>,
}

impl RequestScope {
    /// A scope on the system clock.
    pub fn new(store: SharedStore, tenant: TenantId, config: RegistryConfig) -> Self {
        Self {
            store,
            tenant,
            config,
            clock: Arc::new(SystemClock),
            fetcher: Arc::new(NoFetcher),
            bus_checker: Arc::new(NoBusChecker),
        }
    }

    /// The same scope with another bus checker.
    #[must_use]
    pub fn with_bus_checker(mut self, checker: Arc<dyn BusChecker>) -> Self {
        self.bus_checker = checker;
        self
    }

    /// The same scope with another spec fetcher.
    #[must_use]
    pub fn with_fetcher(mut self, fetcher: Arc<dyn SpecFetcher>) -> Self {
        self.fetcher = fetcher;
        self
    }

    /// The same scope on another clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// `request` with this scope attached as context data.
    pub fn attach(self, request: impl Into<Request>) -> Request {
        request.into().data(self)
    }

    /// The scope attached to the request being resolved.
    pub(crate) fn of<'a>(ctx: &'a Context<'_>) -> Result<&'a Self, Error> {
        ctx.data::<Self>()
            .map_err(|_| Error::internal("the request has no RequestScope attached"))
    }

    /// The store, as the `KvStore` trait object.
    pub(crate) fn store(&self) -> &(dyn KvStore + Send + Sync) {
        self.store.as_ref()
    }

    /// The current instant.
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_url_joins_base_and_name_without_double_slash() {
        let mut config = RegistryConfig::default();
        assert_eq!(
            config.default_events_url("shop"),
            "http://127.0.0.1:3000/events/shop/v1/events"
        );
        config.events_base_url = "https://events.example.com/".to_owned();
        assert_eq!(
            config.default_events_url("shop"),
            "https://events.example.com/events/shop/v1/events"
        );
    }

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let clock = FixedClock::at(10);
        assert_eq!(clock.now().unix_seconds(), 10);
        clock.set(20);
        assert_eq!(clock.now().unix_seconds(), 20);
        assert!(SystemClock.now().unix_seconds() > 1_700_000_000);
    }
}
