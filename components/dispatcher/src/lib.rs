//! The dispatcher component: subscriptions (`/subscriptions/...`); later delivery with retries,
//! attempts, dead letters and replay, driven by `/dispatcher/tick` (not routed yet: a JSON 404).
//!
//! A thin Spin HTTP adapter: it resolves the request against its route table, checks the admin
//! token and the tenant as the registry does, reads the body (at most
//! [`MAX_BODY_BYTES`](eventplane_dispatch::api::MAX_BODY_BYTES)), and runs the operation with
//! [`eventplane_dispatch::api::execute`] on the key-value store.
#![expect(
    unsafe_code,
    reason = "spin-sdk's #[http_component] expands to unsafe resource-handle conversions"
)]

use eventplane_core::Error;
use eventplane_dispatch::Timestamp;
use eventplane_dispatch::api::{self, MAX_BODY_BYTES, Operation, Reply};
use eventplane_spin::request::{header, read_body, require_admin, tenant, variable};
use eventplane_spin::{Router, SpinStore, error_response, json_response};
use spin_sdk::http::{IncomingRequest, Method, Response};
use spin_sdk::http_component;

/// The dispatcher's route table: the subscriptions API.
fn routes() -> Router<Operation> {
    Router::new()
        .route(&[Method::Post], "/subscriptions", Operation::Create)
        .route(&[Method::Get], "/subscriptions", Operation::List)
        .route(&[Method::Get], "/subscriptions/{id}", Operation::Get)
        .route(&[Method::Put], "/subscriptions/{id}", Operation::Replace)
        .route(&[Method::Delete], "/subscriptions/{id}", Operation::Delete)
        .route(
            &[Method::Post],
            "/subscriptions/{id}/pause",
            Operation::Pause,
        )
        .route(
            &[Method::Post],
            "/subscriptions/{id}/resume",
            Operation::Resume,
        )
}

/// Handles one request. The body is read only once the route is known.
#[http_component]
async fn handle(request: IncomingRequest) -> Response {
    let (operation, id) = match routes().resolve_request(&request) {
        Ok(matched) => (
            *matched.handler,
            matched.params.get("id").map(str::to_owned),
        ),
        Err(response) => return response,
    };
    match serve(request, operation, id).await {
        Ok(reply) => response(&reply),
        Err(err) => error_response(&err),
    }
}

/// Authenticates, scopes to the tenant, reads the body and runs `operation`.
async fn serve(
    request: IncomingRequest,
    operation: Operation,
    id: Option<String>,
) -> Result<Reply, Error> {
    require_admin(&request, &variable("admin_token")?)?;
    let tenant = tenant(&request, &variable("default_tenant")?)?;
    operation.check_content_type(header(&request, "content-type").as_deref())?;
    let path_with_query = request.path_with_query().unwrap_or_default();
    let query = path_with_query
        .split_once('?')
        .map_or("", |(_, query)| query)
        .to_owned();
    let body = if operation.reads_body() {
        read_body(request, MAX_BODY_BYTES).await?
    } else {
        Vec::new()
    };
    let store = SpinStore::open_default()?;
    let request = api::Request {
        operation,
        id: id.as_deref(),
        query: &query,
        body: &body,
    };
    api::execute(
        &store,
        &tenant,
        request,
        Timestamp::now().unix_ms(),
        eventplane_core::random::bytes,
    )
}

/// The HTTP response of `reply`.
fn response(reply: &Reply) -> Response {
    let mut response = match &reply.body {
        Some(body) => json_response(reply.status, body),
        None => Response::builder().status(reply.status).build(),
    };
    if let Some(location) = &reply.location {
        response.set_header("location", location.as_str());
    }
    response
}
