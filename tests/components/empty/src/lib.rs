//! A component that answers every request `200 ok` and does nothing else: the baseline for the
//! host benchmark (the request body is not even read).
#![expect(
    unsafe_code,
    reason = "spin-sdk's #[http_component] expands to unsafe resource-handle conversions"
)]

use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::http_component;

/// Answers `200 ok`.
#[http_component]
fn handle(_request: IncomingRequest) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body("ok")
        .build()
}
