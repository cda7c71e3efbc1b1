//! The gateway component: accepts published events (`/events/...`), authenticates publishers,
//! validates events against the application's catalog and stores them durably before it
//! answers.
//!
//! - `POST /events/publish`: CloudEvents 1.0 (binary, structured, batch) → `202`;
//! - `POST /events/{application}/v1/events`: Kyma's legacy format → `200`;
//! - `GET /events/{application}/v1/events/subscribed`: the subscribed event types;
//! - `POST /events/{application}/pubsub`: Google Cloud Pub/Sub push requests ([`push`]).
#![expect(
    unsafe_code,
    reason = "spin-sdk's #[http_component] expands to unsafe resource-handle conversions"
)]

mod config;
mod publish;
mod push;

use eventplane_ingest::handoff::HandOff;
use eventplane_spin::{Router, send_response};
use spin_sdk::http::{IncomingRequest, Method, Response, ResponseOutparam};
use spin_sdk::http_component;

/// What the gateway serves.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    /// CloudEvents.
    Publish,
    /// Kyma's legacy format.
    Legacy,
    /// The subscribed event types.
    Subscribed,
    /// Google Cloud Pub/Sub push.
    Push,
}

fn routes() -> Router<Endpoint> {
    Router::new()
        .route(&[Method::Post], "/events/publish", Endpoint::Publish)
        .route(
            &[Method::Post],
            "/events/{application}/v1/events",
            Endpoint::Legacy,
        )
        .route(
            &[Method::Get],
            "/events/{application}/v1/events/subscribed",
            Endpoint::Subscribed,
        )
        .route(
            &[Method::Post],
            "/events/{application}/pubsub",
            Endpoint::Push,
        )
}

/// Handles one request: answers the publisher first, then hands accepted events that have
/// subscribers to the dispatcher (the publisher does not wait for delivery).
#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    let (response, hand_off) = serve(request).await;
    send_response(response_out, response);
    if let Some(hand_off) = hand_off {
        hand_off.send().await;
    }
}

async fn serve(request: IncomingRequest) -> (Response, Option<HandOff>) {
    let routes = routes();
    let (endpoint, application) = match routes.resolve_request(&request) {
        Ok(matched) => (
            *matched.handler,
            matched
                .params
                .get("application")
                .unwrap_or_default()
                .to_owned(),
        ),
        Err(response) => return (response, None),
    };
    match endpoint {
        Endpoint::Publish => publish::cloudevents(request).await,
        Endpoint::Legacy => publish::legacy(request, &application).await,
        Endpoint::Subscribed => (publish::subscribed(request, &application).await, None),
        Endpoint::Push => push::push(request, &application).await,
    }
}
