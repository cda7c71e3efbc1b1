//! The fetcher component: fetches spec documents from `fetchRequest` URLs with their
//! credentials, and validates them as AsyncAPI. Private: reachable only by service chaining as
//! `http://fetcher.spin.internal`, from the registry.
//!
//! `POST /fetch` takes a [`FetchJob`] and answers `200` with a [`FetchOutcome`]: the document,
//! or a message saying why it could not be had. Only a bad call (no admin token, a body that
//! is not a job) gets an error status.
#![expect(
    unsafe_code,
    reason = "spin-sdk's #[http_component] expands to unsafe resource-handle conversions"
)]

mod fetch;

use eventplane_core::Error;
use eventplane_outbound::fetch::FETCH_PATH;
use eventplane_outbound::{FetchJob, FetchLimits};
use eventplane_spin::request::{number_variable, read_body, require_admin, tenant, variable};
use eventplane_spin::{Router, SpinStore, error_response, json_response, send_response};
use spin_sdk::http::{IncomingRequest, Method, Response, ResponseOutparam};
use spin_sdk::http_component;

/// The largest job accepted (a URL and credentials).
const MAX_JOB_BYTES: usize = 64 * 1024;

/// What the fetcher serves.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    /// Run one fetch job.
    Fetch,
}

fn routes() -> Router<Endpoint> {
    Router::new().route(&[Method::Post], FETCH_PATH, Endpoint::Fetch)
}

/// Answers one request, in one piece (see [`send_response`]).
#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    send_response(response_out, route(request).await);
}

/// The response to one request.
async fn route(request: IncomingRequest) -> Response {
    match routes().resolve_request(&request) {
        Ok(matched) => match matched.handler {
            Endpoint::Fetch => match serve_fetch(request).await {
                Ok(response) => response,
                Err(err) => error_response(&err),
            },
        },
        Err(response) => response,
    }
}

async fn serve_fetch(request: IncomingRequest) -> Result<Response, Error> {
    require_admin(&request, &variable("admin_token")?)?;
    let tenant = tenant(&request, &variable("default_tenant")?)?;
    let limits = FetchLimits {
        max_bytes: number_variable("fetch_max_bytes")?,
        timeout_ms: number_variable("fetch_timeout_ms")?,
        spec_max_bytes: number_variable("spec_max_bytes")?,
    };
    let body = read_body(request, MAX_JOB_BYTES).await?;
    let job: FetchJob = serde_json::from_slice(&body)
        .map_err(|e| Error::bad_request(format!("the body is not a fetch job: {e}")))?;
    let store = SpinStore::open_default()?;
    let outcome = fetch::run(&store, &tenant, &job, limits).await;
    Ok(json_response(200, &outcome))
}
