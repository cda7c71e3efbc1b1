//! The fetcher component: fetches specs from `fetchRequest` URLs, parses and validates AsyncAPI,
//! and keeps the event catalog. Private: reachable only as `http://fetcher.spin.internal`.
//!
//! A thin Spin HTTP adapter: it resolves the request against its route table and maps the
//! outcome to a response; the logic lives in the crates under `crates/`.
#![expect(
    unsafe_code,
    reason = "spin-sdk's #[http_component] expands to unsafe resource-handle conversions"
)]

use std::convert::Infallible;

use eventplane_spin::Router;
use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::http_component;

/// The fetcher's route table. Empty until its first feature lands: every request gets a
/// JSON 404 (or a 405 once a path is routed for other methods).
fn routes() -> Router<Infallible> {
    Router::new()
}

/// Handles one request. The body is not read here: a handler reads it (with its size limit)
/// only once the route is known.
#[http_component]
async fn handle(request: IncomingRequest) -> Response {
    match routes().resolve_request(&request) {
        Ok(matched) => match *matched.handler {},
        Err(response) => response,
    }
}
