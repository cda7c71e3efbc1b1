//! The registry component: applications, event API definitions, their versions and auth data,
//! webhooks to applications (`/graphql`), and publisher tokens (`/oauth/token`,
//! `/oauth/jwks.json`).
//!
//! A thin Spin HTTP adapter: GraphQL over HTTP (auth, tenant, content negotiation, limits)
//! around the schema of `eventplane-registry-api`, then delivery of the webhook notifications
//! the request queued.
#![expect(
    unsafe_code,
    reason = "spin-sdk's #[http_component] expands to unsafe resource-handle conversions"
)]

mod bus;
mod config;
mod fetcher;
mod graphql;
mod oauth;
mod webhooks;

use eventplane_spin::{Router, send_response};
use spin_sdk::http::{IncomingRequest, Method, Response, ResponseOutparam};
use spin_sdk::http_component;

/// What the registry serves.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    /// GraphQL over HTTP (and GraphiQL for browsers).
    GraphQl,
    /// The OAuth 2.0 token endpoint.
    Token,
    /// The public keys of our access tokens.
    Jwks,
}

fn routes() -> Router<Endpoint> {
    Router::new()
        .route(&[Method::Get, Method::Post], "/graphql", Endpoint::GraphQl)
        .route(&[Method::Post], "/oauth/token", Endpoint::Token)
        .route(&[Method::Get], "/oauth/jwks.json", Endpoint::Jwks)
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
            Endpoint::GraphQl => graphql::serve(request).await,
            Endpoint::Token => oauth::token(request).await,
            Endpoint::Jwks => oauth::jwks(),
        },
        Err(response) => response,
    }
}
