//! Reading requests: headers, the body up to a limit, the admin token and the tenant.

use eventplane_core::auth::bearer_matches;
use eventplane_core::{Error, TenantId};
use futures::StreamExt as _;
use spin_sdk::http::IncomingRequest;

/// The first value of header `name`, as text (invalid UTF-8 replaced).
pub fn header(request: &IncomingRequest, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .into_iter()
        .next()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Header fields as `(lower-case name, value)` pairs, in order (invalid UTF-8 replaced).
pub fn header_pairs(entries: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
    entries
        .into_iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect()
}

/// All headers of the request, as [`header_pairs`].
pub fn headers(request: &IncomingRequest) -> Vec<(String, String)> {
    header_pairs(request.headers().entries())
}

/// Reads the body, refusing it (413, naming the limit) past `limit` bytes without reading
/// the rest.
pub async fn read_body(request: IncomingRequest, limit: usize) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    let mut stream = std::pin::pin!(request.into_body_stream());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::bad_request(format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(Error::payload_too_large(limit as u64));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Checks `Authorization: Bearer <admin token>` (401 otherwise).
pub fn require_admin(request: &IncomingRequest, admin_token: &str) -> Result<(), Error> {
    if bearer_matches(header(request, "authorization").as_deref(), admin_token) {
        Ok(())
    } else {
        Err(Error::unauthorized(
            "a valid `Authorization: Bearer <admin token>` header is required",
        ))
    }
}

/// The tenant of the request: its `Tenant` header, else `default_tenant` (400 if invalid).
pub fn tenant(request: &IncomingRequest, default_tenant: &str) -> Result<TenantId, Error> {
    let text = header(request, "tenant").unwrap_or_else(|| default_tenant.to_owned());
    TenantId::new(text.trim()).map_err(|e| Error::invalid("Tenant", e.to_string()))
}

/// Spin variable `name` (its absence is a deployment error: 500, logged).
pub fn variable(name: &str) -> Result<String, Error> {
    spin_sdk::variables::get(name)
        .map_err(|e| Error::internal(format!("reading the variable {name}: {e}")))
}

/// Spin variable `name` as an on/off switch: `false` is off, any other value on, and an
/// absent or unreadable variable is `default`.
pub fn switch_variable(name: &str, default: bool) -> bool {
    variable(name).map_or(default, |value| value.trim() != "false")
}

/// Spin variable `name` as a number.
pub fn number_variable<T: std::str::FromStr>(name: &str) -> Result<T, Error> {
    let text = variable(name)?;
    text.trim()
        .parse()
        .map_err(|_| Error::internal(format!("the variable {name} is not a number: {text:?}")))
}
