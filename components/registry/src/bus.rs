//! The [`BusChecker`] of the application: the dispatcher component, called by service chaining
//! (`http://dispatcher.spin.internal/dispatcher/bus/check`), checks a just-registered event
//! API's external subscriptions against the bus and records the outcome in their state.

use std::time::Duration;

use eventplane_core::{ApiId, TenantId};
use eventplane_registry_api::BusChecker;
use eventplane_spin::client;
use eventplane_spin::timer::{block_on, timeout};
use spin_sdk::http::Method;

/// The dispatcher's check endpoint.
const CHECK_URL: &str = "http://dispatcher.spin.internal/dispatcher/bus/check";

/// How long the registry waits for the check (each bus call has its own 10 s limit; a slower
/// check still ends in the subscription's state, and the next tick checks again).
const CHECK_TIMEOUT: Duration = Duration::from_secs(12);

/// Asks the dispatcher to check external subscriptions.
pub struct ChainedBusChecker {
    /// The admin token, which the dispatcher checks.
    pub admin_token: String,
}

impl BusChecker for ChainedBusChecker {
    fn check(&self, tenant: &TenantId, api: &ApiId) {
        let headers = [
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "authorization".to_owned(),
                format!("Bearer {}", self.admin_token),
            ),
            ("tenant".to_owned(), tenant.to_string()),
        ];
        let body = serde_json::json!({ "apiId": api }).to_string().into_bytes();
        let call = client::send(Method::Post, CHECK_URL, &headers, body, 64 * 1024);
        match block_on(timeout(CHECK_TIMEOUT, call)) {
            Some(Ok(reply)) if reply.status == 200 => {}
            Some(Ok(reply)) => eprintln!(
                "registry: checking the external subscriptions of {api}: the dispatcher \
                 answered HTTP {}",
                reply.status
            ),
            Some(Err(e)) => {
                eprintln!("registry: checking the external subscriptions of {api}: {e}");
            }
            None => eprintln!(
                "registry: checking the external subscriptions of {api} took over {} s",
                CHECK_TIMEOUT.as_secs()
            ),
        }
    }
}
