//! The [`SpecFetcher`] of the application: the private fetcher component, called by service
//! chaining (`http://fetcher.spin.internal/fetch`).

use std::time::Duration;

use eventplane_core::TenantId;
use eventplane_outbound::fetch::{FETCH_PATH, human_duration};
use eventplane_outbound::{FetchJob, FetchOutcome};
use eventplane_registry_api::SpecFetcher;
use eventplane_spin::client;
use eventplane_spin::timer::{block_on, timeout};
use spin_sdk::http::Method;

/// The fetcher's base URL.
const FETCHER: &str = "http://fetcher.spin.internal";

/// How much longer than the fetcher's own deadline the registry waits for its answer.
const GRACE: Duration = Duration::from_secs(5);

/// The largest answer read from the fetcher: a spec document as JSON text, escaped.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Calls the fetcher component.
pub struct ChainedFetcher {
    /// The admin token, which the fetcher also checks.
    pub admin_token: String,
    /// `fetch_timeout_ms`: the fetcher's deadline.
    pub fetch_timeout: Duration,
}

impl SpecFetcher for ChainedFetcher {
    fn fetch(&self, tenant: &TenantId, job: &FetchJob) -> FetchOutcome {
        block_on(self.call(tenant, job))
    }
}

impl ChainedFetcher {
    async fn call(&self, tenant: &TenantId, job: &FetchJob) -> FetchOutcome {
        let body = match serde_json::to_vec(job) {
            Ok(body) => body,
            Err(e) => return FetchOutcome::failed(format!("cannot encode the fetch job: {e}")),
        };
        let headers = [
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "authorization".to_owned(),
                format!("Bearer {}", self.admin_token),
            ),
            ("tenant".to_owned(), tenant.to_string()),
        ];
        let url = format!("{FETCHER}{FETCH_PATH}");
        let limit = self.fetch_timeout + GRACE;
        let reply = match timeout(
            limit,
            client::send(Method::Post, &url, &headers, body, MAX_ANSWER_BYTES),
        )
        .await
        {
            Some(Ok(reply)) => reply,
            Some(Err(e)) => {
                eprintln!("registry: calling the fetcher failed: {e}");
                return FetchOutcome::failed(format!("the fetcher could not be called: {e}"));
            }
            None => {
                return FetchOutcome::failed(format!(
                    "the fetcher did not answer within {}",
                    human_duration(u64::try_from(limit.as_millis()).unwrap_or(u64::MAX))
                ));
            }
        };
        if reply.status != 200 {
            eprintln!(
                "registry: the fetcher answered HTTP {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            return FetchOutcome::failed(format!(
                "the fetcher answered HTTP {}; see the application's log",
                reply.status
            ));
        }
        serde_json::from_slice(&reply.body).unwrap_or_else(|e| {
            FetchOutcome::failed(format!("the fetcher's answer is not an outcome: {e}"))
        })
    }
}
