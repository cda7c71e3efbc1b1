//! The dispatcher component: subscriptions (`/subscriptions/...`) and their delivery with
//! retries and dead letters, driven by `POST /dispatcher/tick` (see [`deliver`]).
//!
//! A thin Spin HTTP adapter: it resolves the request against its route table, checks the admin
//! token and the tenant as the registry does, reads the body (at most
//! [`MAX_BODY_BYTES`](eventplane_dispatch::api::MAX_BODY_BYTES)), and runs the operation with
//! [`eventplane_dispatch::api::execute`] on the key-value store.
#![expect(
    unsafe_code,
    reason = "spin-sdk's #[http_component] expands to unsafe resource-handle conversions"
)]

mod bus;
mod deliver;

use std::time::{Duration, Instant};

use eventplane_core::{Error, EventId};
use eventplane_dispatch::Timestamp;
use eventplane_dispatch::api::{self, Endpoint, MAX_BODY_BYTES, Operation, Reply};
use eventplane_spin::request::{
    header, number_variable, read_body, require_admin, tenant, variable,
};
use eventplane_spin::timer::block_on;
use eventplane_spin::{Router, SpinStore, error_response, handoff, json_response, send_response};
use spin_sdk::http::{IncomingRequest, Method, Response, ResponseOutparam};
use spin_sdk::http_component;

/// The dispatcher's route table, built from [`api::ROUTES`] (the table the OpenAPI document is
/// checked against).
fn routes() -> Router<Endpoint> {
    api::ROUTES
        .iter()
        .fold(Router::new(), |router, (method, pattern, endpoint)| {
            let method = match *method {
                "GET" => Method::Get,
                "PUT" => Method::Put,
                "DELETE" => Method::Delete,
                _ => Method::Post,
            };
            router.route(&[method], pattern, *endpoint)
        })
}

/// The hand-off of an accepted event: `POST /dispatcher/deliver` with the admin token, the
/// `Tenant` header and `{"eventId": "evt_…"}` (or `{}`: no event, only the drain of due work
/// that every publish brings). The gateway reaches it by service chaining
/// (`http://dispatcher.spin.internal`); the mqtt component, whose trigger Spin runs without
/// service chaining, over the application's own HTTP address (`mqtt_handoff_url`).
pub use eventplane_spin::handoff::HANDOFF_PATH;

/// The registry's request to check the external subscriptions of an event API it just
/// stored, by service chaining only: `POST http://dispatcher.spin.internal/dispatcher/bus/check`
/// with the admin token, the `Tenant` header and `{"apiId": "api_…"}`.
pub const BUS_CHECK_PATH: &str = "/dispatcher/bus/check";

/// Answers one request, in one piece (see [`send_response`]).
#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    send_response(response_out, route(request).await);
}

/// The response to one request. The body is read only once the route is known.
async fn route(request: IncomingRequest) -> Response {
    if request.method() == Method::Post {
        let path = request.path_with_query().unwrap_or_default();
        if path == HANDOFF_PATH {
            return match run_hand_off(request).await {
                Ok(counts) => json_response(200, &counts),
                Err(err) => error_response(&err),
            };
        }
        if path == BUS_CHECK_PATH {
            return match run_bus_check(request).await {
                Ok(answer) => json_response(200, &answer),
                Err(err) => error_response(&err),
            };
        }
    }
    let (endpoint, id, event_id) = match routes().resolve_request(&request) {
        Ok(matched) => (
            *matched.handler,
            matched.params.get("id").map(segment),
            matched.params.get("eventId").map(segment),
        ),
        Err(response) => return response,
    };
    let operation = match endpoint {
        Endpoint::Api(operation) => operation,
        Endpoint::OpenApi => {
            return Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(api::OPENAPI)
                .build();
        }
        Endpoint::Tick => {
            return match run_tick(&request) {
                Ok(counts) => json_response(200, &counts),
                Err(err) => error_response(&err),
            };
        }
    };
    match serve(request, operation, id, event_id).await {
        Ok(reply) => response(&reply),
        Err(err) => error_response(&err),
    }
}

/// The value a path segment stands for: percent-decoded (a CloudEvents id `a/b` comes as
/// `a%2Fb`), or the segment as it is where that is not UTF-8.
fn segment(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_or_else(|_| raw.to_owned(), |text| text.into_owned())
}

/// `POST /dispatcher/tick[?budgetMs=N]`: pulls the tenant's external subscriptions (for at most
/// half the budget) and hands the events stored to parallel deliveries (unless
/// `delivery_handoff` is `false`), then its pending events and due attempts, for at most `N` ms
/// in all
/// (default [`deliver::DEFAULT_TICK_BUDGET_MS`], at most [`deliver::MAX_TICK_BUDGET_MS`]);
/// answers the counts, the pulling's under `bus`.
fn run_tick(request: &IncomingRequest) -> Result<serde_json::Value, Error> {
    require_admin(request, &variable("admin_token")?)?;
    let tenant = tenant(request, &variable("default_tenant")?)?;
    let path = request.path_with_query().unwrap_or_default();
    let query = path.split_once('?').map_or("", |(_, query)| query);
    let mut budget = deliver::DEFAULT_TICK_BUDGET_MS;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == "budgetMs" {
            budget = value.parse().map_err(|_| {
                Error::invalid("budgetMs", "must be a whole number of milliseconds")
            })?;
        }
    }
    let store = SpinStore::open_default()?;
    let budget = budget.min(deliver::MAX_TICK_BUDGET_MS);
    let started = deliver::now_ms();
    let max_event_bytes: u64 = number_variable("max_event_bytes")?;
    let pulled = bus::pull(
        &store,
        &tenant,
        max_event_bytes,
        &deliver::now_ms,
        started.saturating_add(budget / 2),
    )?;
    let mut handed_off = 0;
    if !pulled.events.is_empty() && handoff::enabled() {
        // Their first attempts run in parallel, as for published events, not one after the
        // other in this tick. None starts past the budget: the rest stay in the event log,
        // which the tick's own pass (or the next tick) delivers.
        let events: Vec<Option<EventId>> = pulled.events.iter().cloned().map(Some).collect();
        let left_ms = budget.saturating_sub(deliver::now_ms().saturating_sub(started));
        let deadline = Instant::now() + Duration::from_millis(left_ms);
        handed_off = block_on(handoff::hand_off(&tenant, &events, Some(deadline)));
    }
    let spent = deliver::now_ms().saturating_sub(started);
    let counts = deliver::tick(&store, &tenant, budget.saturating_sub(spent))?;
    let mut answer = serde_json::to_value(counts)
        .map_err(|e| Error::internal_with("encoding the tick's counts", e))?;
    if let Some(fields) = answer.as_object_mut() {
        let mut bus = serde_json::to_value(pulled)
            .map_err(|e| Error::internal_with("encoding the tick's counts", e))?;
        if let Some(bus) = bus.as_object_mut() {
            bus.insert("handedOff".to_owned(), handed_off.into());
        }
        fields.insert("bus".to_owned(), bus);
    }
    Ok(answer)
}

/// The registry's check of an API's external subscriptions (see [`BUS_CHECK_PATH`]).
async fn run_bus_check(request: IncomingRequest) -> Result<serde_json::Value, Error> {
    require_admin(&request, &variable("admin_token")?)?;
    let tenant = tenant(&request, &variable("default_tenant")?)?;
    let body = read_body(request, 4096).await?;
    let body = api::parse_json(&body)?;
    let api_id = body
        .get("apiId")
        .and_then(|id| id.as_str())
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| Error::invalid("apiId", "must be an event API id (api_…)"))?;
    let store = SpinStore::open_default()?;
    let max_event_bytes: u64 = number_variable("max_event_bytes")?;
    bus::check_api(&store, &tenant, &api_id, max_event_bytes, deliver::now_ms())
}

/// The hand-off (see [`HANDOFF_PATH`]).
async fn run_hand_off(
    request: IncomingRequest,
) -> Result<eventplane_dispatch::engine::Counts, Error> {
    require_admin(&request, &variable("admin_token")?)?;
    let tenant = tenant(&request, &variable("default_tenant")?)?;
    let body = read_body(request, 4096).await?;
    let body = api::parse_json(&body)?;
    let event = match body.get("eventId").filter(|id| !id.is_null()) {
        None => None,
        Some(id) => Some(
            id.as_str()
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| Error::invalid("eventId", "must be an event id (evt_…)"))?,
        ),
    };
    let store = SpinStore::open_default()?;
    deliver::hand_off(store, &tenant, event.as_ref())
}

/// Authenticates, scopes to the tenant, reads the body and runs `operation`.
async fn serve(
    request: IncomingRequest,
    operation: Operation,
    id: Option<String>,
    event_id: Option<String>,
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
        event_id: event_id.as_deref(),
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
