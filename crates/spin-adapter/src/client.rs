//! Calls out over HTTP, with the bounds every call needs: a body read only up to a limit, a
//! clear error when Spin denies the host, and the credentials of an
//! [`eventplane_outbound::RequestAuth`] applied (OAuth tokens cached in the store).
//!
//! Deadlines are the caller's: wrap a call, or a series of calls, in
//! [`timeout`](crate::timer::timeout).

use std::time::{SystemTime, UNIX_EPOCH};

use eventplane_core::{KvStore, KvStoreExt, TenantId, keys};
use eventplane_outbound::auth::{basic_header, header_pairs};
use eventplane_outbound::{Credential, RequestAuth, csrf, oauth};
use futures::StreamExt as _;
use spin_sdk::http::{ErrorCode, IncomingResponse, Method, Request, SendError};

/// An HTTP response, read.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a call got no usable response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The component may not reach the URL (`allowed_outbound_hosts`).
    Denied {
        /// The URL.
        url: String,
    },
    /// The body went past the limit; reading stopped there.
    TooLarge {
        /// The URL.
        url: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// No response: DNS, connection, TLS or protocol failure.
    Unreachable {
        /// The URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied { url } => write!(
                f,
                "{url} is not an allowed outbound host of this component (allowed_outbound_hosts)"
            ),
            Self::TooLarge { url, limit } => {
                write!(f, "{}", eventplane_outbound::fetch::too_large(*limit, url))
            }
            Self::Unreachable { url, detail } => write!(f, "cannot reach {url}: {detail}"),
        }
    }
}

/// Sends one request and reads the response body up to `max_bytes`.
pub async fn send(
    method: Method,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    max_bytes: usize,
) -> Result<Reply, CallError> {
    exchange(method, url, headers, body, max_bytes, false).await
}

/// Sends one request and keeps only the first `keep_bytes` of the response body (the rest is
/// not read): for answers whose status matters and whose body is only shown.
pub async fn send_keeping_head(
    method: Method,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    keep_bytes: usize,
) -> Result<Reply, CallError> {
    exchange(method, url, headers, body, keep_bytes, true).await
}

async fn exchange(
    method: Method,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    max_bytes: usize,
    truncate: bool,
) -> Result<Reply, CallError> {
    let mut request = Request::builder();
    request.method(method).uri(url).body(body);
    for (name, value) in headers {
        request.header(name.as_str(), value.as_str());
    }
    let response: IncomingResponse = spin_sdk::http::send(request.build())
        .await
        .map_err(|e| send_error(url, e))?;
    let status = response.status();
    let headers = crate::request::header_pairs(response.headers().entries());
    let mut stream = response.take_body_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| CallError::Unreachable {
            url: url.to_owned(),
            detail: format!("the response body broke off: {e:?}"),
        })?;
        if body.len() + chunk.len() > max_bytes {
            if truncate {
                let room = max_bytes - body.len();
                body.extend_from_slice(&chunk[..room]);
                break;
            }
            return Err(CallError::TooLarge {
                url: url.to_owned(),
                limit: max_bytes,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn send_error(url: &str, error: SendError) -> CallError {
    match error {
        SendError::Http(ErrorCode::HttpRequestDenied) => CallError::Denied {
            url: url.to_owned(),
        },
        SendError::Http(ErrorCode::HttpRequestUriInvalid) => CallError::Unreachable {
            url: url.to_owned(),
            detail: "the URL is invalid".to_owned(),
        },
        SendError::Http(ErrorCode::DnsError(e)) => CallError::Unreachable {
            url: url.to_owned(),
            detail: format!(
                "DNS lookup failed ({})",
                e.rcode.unwrap_or_else(|| "no answer".to_owned())
            ),
        },
        SendError::Http(ErrorCode::ConnectionRefused) => CallError::Unreachable {
            url: url.to_owned(),
            detail: "connection refused".to_owned(),
        },
        other => CallError::Unreachable {
            url: url.to_owned(),
            detail: other.to_string(),
        },
    }
}

/// The largest answer read from a token endpoint.
const TOKEN_RESPONSE_MAX_BYTES: usize = 64 * 1024;

/// What an authenticated call must carry: its URL (with the extra query parameters) and
/// headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// The URL to call.
    pub url: String,
    /// The headers to send.
    pub headers: Vec<(String, String)>,
}

/// Applies `auth` to a call of `url`: fetches the CSRF token first when asked, obtains (or
/// reuses) an OAuth token, and adds the credential, headers and query parameters. OAuth
/// tokens are cached in `store` under the tenant. Errors are messages for the user.
pub async fn authorize(
    store: &dyn KvStore,
    tenant: &TenantId,
    auth: &RequestAuth,
    url: &str,
) -> Result<Authorized, String> {
    let mut authorized = credential_headers(store, tenant, auth, url).await?;
    if let Some(csrf_auth) = &auth.csrf {
        let endpoint = Box::pin(credential_headers(
            store,
            tenant,
            &csrf_auth.auth,
            &csrf_auth.token_endpoint_url,
        ))
        .await?;
        let mut headers = endpoint.headers;
        headers.push((csrf::HEADER.to_owned(), csrf::FETCH.to_owned()));
        let reply = send(
            Method::Get,
            &endpoint.url,
            &headers,
            Vec::new(),
            TOKEN_RESPONSE_MAX_BYTES,
        )
        .await
        .map_err(|e| format!("CSRF token request failed: {e}"))?;
        let token = csrf::parse_token_response(&endpoint.url, reply.status, &reply.headers)?;
        authorized.headers.extend(token.headers());
    }
    Ok(authorized)
}

/// The credential, headers and query parameters of `auth` (its CSRF part aside).
async fn credential_headers(
    store: &dyn KvStore,
    tenant: &TenantId,
    auth: &RequestAuth,
    url: &str,
) -> Result<Authorized, String> {
    let mut headers = header_pairs(&auth.headers);
    match &auth.credential {
        None => {}
        Some(Credential::Basic { username, password }) => {
            headers.push(("authorization".to_owned(), basic_header(username, password)));
        }
        Some(Credential::OAuth {
            client_id,
            client_secret,
            url: token_url,
        }) => {
            let token =
                oauth_token(store, tenant, token_url, client_id, client_secret, None).await?;
            headers.push(("authorization".to_owned(), format!("Bearer {token}")));
        }
    }
    Ok(Authorized {
        url: auth.apply_query(url),
        headers,
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An access token for the client: the cached one while it is good, else a new one from
/// `token_url` (RFC 6749 §4.4, asking for `scope` when given), cached per client and scope when
/// the server says when it expires.
pub async fn oauth_token(
    store: &dyn KvStore,
    tenant: &TenantId,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    scope: Option<&str>,
) -> Result<String, String> {
    let key = keys::record(
        tenant,
        keys::OAUTH_TOKENS,
        &oauth::cache_name(token_url, client_id, client_secret, scope),
    );
    let now = unix_now();
    if let Ok(Some(cached)) = store.get_json::<oauth::Token>(&key)
        && cached.reusable_at(now)
    {
        return Ok(cached.access_token);
    }
    let headers = vec![
        (
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("accept".to_owned(), "application/json".to_owned()),
        (
            "authorization".to_owned(),
            oauth::client_authorization(client_id, client_secret),
        ),
    ];
    let reply = send(
        Method::Post,
        token_url,
        &headers,
        oauth::token_request_body(scope).into_bytes(),
        TOKEN_RESPONSE_MAX_BYTES,
    )
    .await
    .map_err(|e| format!("OAuth token request failed: {e}"))?;
    let token = oauth::parse_token_response(token_url, reply.status, &reply.body, now)?;
    if token.expires_at.is_some()
        && let Err(e) = store.set_json(&key, &token)
    {
        // Only a lost cache entry: the next call asks for a new token.
        eprintln!("cannot cache the OAuth token of {token_url}: {e}");
    }
    Ok(token.access_token)
}
