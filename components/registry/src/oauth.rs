//! The OAuth 2.0 token endpoint (`POST /oauth/token`, client-credentials grant) and the public
//! keys of our tokens (`GET /oauth/jwks.json`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventplane_core::Error;
use eventplane_events::credentials::{
    OAuthError, OAuthErrorCode, TOKEN_RESPONSE_HEADERS, parse_token_request,
};
use eventplane_events::signing;
use eventplane_registry_api::{TokenSettings, issue_token};
use eventplane_spin::request::{header, number_variable, read_body, tenant, variable};
use eventplane_spin::{SpinStore, error_response, json_response};
use spin_sdk::http::{IncomingRequest, Response};

/// The largest token request read.
const MAX_TOKEN_REQUEST_BYTES: usize = 8 * 1024;

fn sleep(duration: Duration) {
    std::thread::sleep(duration);
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `POST /oauth/token`.
pub async fn token(request: IncomingRequest) -> Response {
    match issue(request).await {
        Ok(response) => response,
        Err(err) => oauth_error(&err),
    }
}

async fn issue(request: IncomingRequest) -> Result<Response, OAuthError> {
    let unavailable = |e: Error| {
        eprintln!("registry: token endpoint: {e}");
        OAuthError::new(
            OAuthErrorCode::TemporarilyUnavailable,
            "the token endpoint is unavailable; try again",
        )
    };
    let tenant = tenant(&request, &variable("default_tenant").map_err(unavailable)?)
        .map_err(|e| OAuthError::new(OAuthErrorCode::InvalidRequest, e.public_message()))?;
    let content_type = header(&request, "content-type");
    let authorization = header(&request, "authorization");
    let body = read_body(request, MAX_TOKEN_REQUEST_BYTES)
        .await
        .map_err(|e| OAuthError::new(OAuthErrorCode::InvalidRequest, e.public_message()))?;
    let token_request =
        parse_token_request(content_type.as_deref(), authorization.as_deref(), &body)?;
    let store = SpinStore::open_default().map_err(|e| unavailable(e.into()))?;
    let key = signing::signing_key(
        &store,
        &variable("token_signing_key").map_err(unavailable)?,
        &sleep,
    )
    .map_err(unavailable)?;
    let settings = TokenSettings::for_base_url(
        &variable("events_base_url").map_err(unavailable)?,
        number_variable("token_ttl_seconds").map_err(unavailable)?,
    );
    let answer = issue_token(&store, &tenant, &token_request, &key, &settings, unix_now())?;
    let mut response = json_response(200, &answer);
    for (name, value) in TOKEN_RESPONSE_HEADERS {
        response.set_header(name, value);
    }
    Ok(response)
}

fn oauth_error(err: &OAuthError) -> Response {
    let mut response = json_response(err.status(), &err.body());
    for (name, value) in TOKEN_RESPONSE_HEADERS {
        response.set_header(name, value);
    }
    if let Some(challenge) = err.www_authenticate() {
        response.set_header("www-authenticate", challenge);
    }
    response
}

/// `GET /oauth/jwks.json`: the public keys that verify our access tokens.
pub fn jwks() -> Response {
    let keys = SpinStore::open_default()
        .map_err(Error::from)
        .and_then(|store| signing::public_keys(&store, &variable("token_signing_key")?, &sleep));
    match keys {
        Ok(keys) => {
            let mut response = json_response(200, &keys);
            response.set_header("cache-control", "public, max-age=300");
            response
        }
        Err(err) => error_response(&err),
    }
}
