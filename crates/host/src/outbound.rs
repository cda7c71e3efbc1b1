//! Outbound HTTP (`wasi:http/outgoing-handler`) with Spin's rules.
//!
//! Every request a component sends passes through [`OutboundHooks::send_request`], which:
//! - refuses, with `HttpRequestDenied` as Spin does, any destination not listed in the
//!   component's `allowed_outbound_hosts`;
//! - dispatches `http://<component-id>.spin.internal/...` (service chaining) to that component
//!   in-process, private components included;
//! - dispatches relative URLs ("self" requests, also `http://self.alt/...`) to the application's
//!   own router in-process;
//! - sends everything else to the network, reusing `http://` connections as Spin's connection
//!   pooling does (see [`crate::pool`]);
//! - sends nothing before every key-value write the instance could have seen is on disk
//!   (see [`crate::kv_store`]): not the request's head, and not any frame of a body the
//!   instance streams after it.

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiHttpHooks};

use crate::app::{AppRuntime, ComponentRuntime};
use crate::durable_body::DurableBody;
use crate::stores::StoreSession;

/// The body type wasmtime-wasi-http uses for requests and responses crossing the host.
pub type Body = wasmtime_wasi_http::WasiBody;

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<Body>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

/// The outbound HTTP policy of one component instance.
pub struct OutboundHooks {
    app: Arc<AppRuntime>,
    component: Arc<ComponentRuntime>,
    /// The instance's key-value session: a request waits until what it has seen is durable.
    kv: StoreSession,
}

impl OutboundHooks {
    pub(crate) fn new(
        app: Arc<AppRuntime>,
        component: Arc<ComponentRuntime>,
        kv: StoreSession,
    ) -> Self {
        Self { app, component, kv }
    }
}

/// Where an outbound request goes.
#[derive(Debug, PartialEq, Eq)]
enum Destination {
    /// A relative URL: the application itself.
    SelfApp,
    /// `http://<id>.spin.internal`: a component of the application.
    Component(String),
    /// Anywhere else.
    Network,
}

fn destination(uri: &http::Uri) -> Destination {
    match uri.authority().map(|a| a.host()) {
        // wasmtime-wasi-http turns a relative URL into one with an empty host.
        None | Some("") | Some("self.alt") => Destination::SelfApp,
        Some(host) => match host.strip_suffix(".spin.internal") {
            Some(id) => Destination::Component(id.to_string()),
            None => Destination::Network,
        },
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<Body>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let app = self.app.clone();
        let component = self.component.clone();
        let kv = self.kv.clone();
        Box::new(async move {
            // Nothing the instance has seen leaves it before it is on disk (kv_store docs).
            kv.durable().await.map_err(|e| {
                tracing::error!(component = %component.id, "outbound request held back: {e}");
                Error::InternalError(Some(e.to_string()))
            })?;
            // A body the instance streams goes out frame by frame: each waits for the writes
            // the instance made meanwhile.
            let request = request.map(|body| DurableBody::new(body, kv).boxed_unsync());
            send(app, component, request, options).await
        })
    }
}

fn done() -> Box<dyn Future<Output = Result<(), Error>> + Send> {
    Box::new(async { Ok(()) })
}

async fn send(
    app: Arc<AppRuntime>,
    component: Arc<ComponentRuntime>,
    mut request: http::Request<Body>,
    options: Option<RequestOptions>,
) -> Result<
    (
        http::Response<Body>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
> {
    let allowed = &component.allowed_hosts;
    let destination = destination(request.uri());
    if destination != Destination::Network {
        // Spin drops the Host header of requests it handles itself: the callee then sees no
        // Host, as on Spin (its spin-full-url says `localhost`).
        request.headers_mut().remove(http::header::HOST);
    }
    match destination {
        Destination::SelfApp => {
            if !allowed.allows_self_requests() {
                tracing::warn!(component = %component.id, "denied self request to {}", request.uri());
                return Err(Error::HttpRequestDenied);
            }
            let path = request
                .uri()
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
            *request.uri_mut() = http::Uri::builder()
                .scheme("http")
                .authority(app.self_authority())
                .path_and_query(path)
                .build()
                .map_err(|_| Error::HttpRequestUriInvalid)?;
            let response = app.handle_chained(request, None).await;
            Ok((response, done()))
        }
        Destination::Component(id) => {
            if !allowed.allows_uri(request.uri()) {
                tracing::warn!(component = %component.id, "denied request to {}: not in allowed_outbound_hosts", request.uri());
                return Err(Error::HttpRequestDenied);
            }
            if !app.has_http_component(&id) {
                return Err(Error::DestinationNotFound);
            }
            let response = app.handle_chained(request, Some(&id)).await;
            Ok((response, done()))
        }
        Destination::Network => {
            if !allowed.allows_uri(request.uri()) {
                tracing::warn!(component = %component.id, "denied request to {}: not in allowed_outbound_hosts", request.uri());
                return Err(Error::HttpRequestDenied);
            }
            if request.uri().scheme() == Some(&http::uri::Scheme::HTTP) {
                let response = crate::pool::send(app.connections.clone(), request, options).await?;
                return Ok((response, done()));
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_follow_spin_naming() {
        let d = |s: &str| destination(&s.parse().unwrap());
        assert_eq!(d("/path"), Destination::SelfApp);
        assert_eq!(d("http://self.alt/x"), Destination::SelfApp);
        assert_eq!(
            d("http://fetcher.spin.internal/x"),
            Destination::Component("fetcher".into())
        );
        assert_eq!(d("https://example.com/"), Destination::Network);
    }
}
