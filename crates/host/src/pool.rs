//! Connection reuse for outbound plain-HTTP requests.
//!
//! Spin's outbound HTTP pools connections by default (`connection_pooling`, on unless the
//! runtime config turns it off), so a component that calls the same host again does not open
//! a new TCP connection each time. This does the same for `http://` destinations: an HTTP/1.1
//! connection goes back to the application's pool once its response body has been read to the
//! end, and the next request to that `host:port` takes it. At most
//! [`MAX_IDLE_PER_AUTHORITY`] idle connections are kept per `host:port`; a connection the
//! server closed is dropped when it is next taken. `https://` requests keep a connection each
//! (wasmtime-wasi-http's default sender).
//!
//! Timeouts follow the request's options as the default sender does: `connect_timeout` for
//! the TCP connect and handshake, `first_byte_timeout` for the response head (both 600 s when
//! unset). A response body whose reading stalls is left to the caller's own deadline.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions};

use crate::outbound::Body;

/// The most idle connections kept per `host:port`.
pub const MAX_IDLE_PER_AUTHORITY: usize = 64;

/// The timeouts used when a request's options set none (as wasmtime-wasi-http's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a pooled connection may take to become ready for its next request before a new
/// one is opened instead.
const READY_WAIT: Duration = Duration::from_secs(1);

/// The application's idle outbound connections, by `host:port`.
#[derive(Default)]
pub(crate) struct ConnectionPool {
    idle: Mutex<HashMap<String, Vec<SendRequest<Body>>>>,
}

impl ConnectionPool {
    fn take(&self, authority: &str) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let senders = idle.get_mut(authority)?;
        while let Some(sender) = senders.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn give_back(&self, authority: String, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let senders = idle.entry(authority).or_default();
        if senders.len() < MAX_IDLE_PER_AUTHORITY {
            senders.push(sender);
        }
    }

    /// How many idle connections are pooled for `authority` (for tests).
    #[cfg(test)]
    fn idle(&self, authority: &str) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(authority)
            .map_or(0, Vec::len)
    }
}

/// `host:port` of an `http://` URI (port 80 when it names none).
fn authority_of(uri: &http::Uri) -> Result<String, Error> {
    let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
    Ok(match authority.port() {
        Some(_) => authority.to_string(),
        None => format!("{authority}:80"),
    })
}

/// Opens a new HTTP/1.1 connection to `authority`; its I/O runs on its own task.
async fn connect(authority: &str, timeout: Duration) -> Result<SendRequest<Body>, Error> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(authority)).await {
        Ok(stream) => stream.map_err(Error::Connect)?,
        Err(_) => return Err(Error::ConnectionTimeout),
    };
    let (sender, connection) = tokio::time::timeout(
        timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("outbound connection ended: {e}");
        }
    });
    Ok(sender)
}

/// A pooled connection ready for a request, or a new one.
async fn checkout(
    pool: &ConnectionPool,
    authority: &str,
    connect_timeout: Duration,
) -> Result<SendRequest<Body>, Error> {
    while let Some(mut sender) = pool.take(authority) {
        if let Ok(Ok(())) = tokio::time::timeout(READY_WAIT, sender.ready()).await {
            return Ok(sender);
        }
    }
    connect(authority, connect_timeout).await
}

/// Sends `request` (an `http://` URI) over a pooled connection, or a new one; the response's
/// body gives the connection back to `pool` once read to the end.
pub(crate) async fn send(
    pool: Arc<ConnectionPool>,
    mut request: http::Request<Body>,
    options: Option<RequestOptions>,
) -> Result<http::Response<Body>, Error> {
    let authority = authority_of(request.uri())?;
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    // The request line carries only the path (origin form), as for any non-proxy request.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .to_owned();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;

    let mut sender = checkout(&pool, &authority, connect_timeout).await?;
    let mut fresh = false;
    let response = loop {
        let attempt = tokio::time::timeout(first_byte_timeout, sender.try_send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?;
        match attempt {
            Ok(response) => break response,
            // A pooled connection the server closed meanwhile, before the request went out:
            // send it once more on a new connection.
            Err(mut failed) if !fresh => match failed.take_message() {
                Some(unsent) => {
                    request = unsent;
                    sender = connect(&authority, connect_timeout).await?;
                    fresh = true;
                }
                None => return Err(Error::from(failed.into_error())),
            },
            Err(failed) => return Err(Error::from(failed.into_error())),
        }
    };
    let (parts, incoming) = response.into_parts();
    let mut body = PooledBody {
        incoming,
        give_back: Some((pool, authority, sender)),
    };
    if hyper::body::Body::is_end_stream(&body.incoming) {
        body.release();
    }
    Ok(http::Response::from_parts(parts, body.boxed_unsync()))
}

/// A response body that gives its connection back to the pool once read to the end (a body
/// dropped before that closes the connection with it).
struct PooledBody {
    incoming: hyper::body::Incoming,
    give_back: Option<(Arc<ConnectionPool>, String, SendRequest<Body>)>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some((pool, authority, sender)) = self.give_back.take() {
            pool.give_back(authority, sender);
        }
    }
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        let polled = Pin::new(&mut self.incoming).poll_frame(cx);
        match polled {
            Poll::Ready(None) => {
                self.release();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if self.incoming.is_end_stream() {
                    self.release();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.give_back = None;
                Poll::Ready(Some(Err(Error::from(e))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Empty, Full};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;

    use super::*;

    /// A server answering `hello` to every request; counts the connections it accepted.
    async fn server() -> anyhow::Result<(String, Arc<AtomicUsize>)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let authority = listener.local_addr()?.to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"hello"),
                        )))
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok((authority, accepted))
    }

    fn get(authority: &str) -> http::Request<Body> {
        let body = Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync();
        http::Request::get(format!("http://{authority}/x"))
            .body(body)
            .expect("request")
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_response_was_read() -> anyhow::Result<()> {
        let (authority, accepted) = server().await?;
        let pool = Arc::new(ConnectionPool::default());
        for _ in 0..5 {
            let response = send(pool.clone(), get(&authority), None).await?;
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await?.to_bytes();
            assert_eq!(&body[..], b"hello");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.idle(&authority), 1);
        Ok(())
    }

    #[tokio::test]
    async fn concurrent_requests_open_connections_and_an_unread_body_keeps_its_own()
    -> anyhow::Result<()> {
        let (authority, accepted) = server().await?;
        let pool = Arc::new(ConnectionPool::default());
        let first = send(pool.clone(), get(&authority), None).await?;
        let second = send(pool.clone(), get(&authority), None).await?;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        drop(first); // never read: its connection is not pooled
        second.into_body().collect().await?;
        assert_eq!(pool.idle(&authority), 1);
        Ok(())
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let pool = Arc::new(ConnectionPool::default());
        // Port 9 on loopback: nothing listens there.
        let err = send(pool, get("127.0.0.1:9"), None)
            .await
            .expect_err("refused");
        assert!(matches!(err, Error::Connect(_)), "{err:?}");
    }
}
