//! Publisher client credentials and the OAuth2 client-credentials token request.
//!
//! # Credentials
//!
//! [`generate`] mints a client id (`cli_…`, [`ClientId`]) and a secret: [`SECRET_PREFIX`] followed
//! by 32 random bytes in base64url (256 bits). Only [`hash_secret`]'s output is stored:
//! `sha256$<salt>$<hex>`, the salt being 16 random bytes (base64url) and the digest SHA-256 of
//! salt ‖ secret. A single fast hash is enough here because the secret is random with 256 bits of
//! entropy (a slow password hash protects low-entropy passwords, which these are not); the salt
//! keeps equal secrets from having equal hashes. [`verify_secret`] compares in constant time.
//!
//! # Token requests (RFC 6749 §4.4, client authentication §2.3.1)
//!
//! [`parse_token_request`] reads `POST /oauth/token`: a form body
//! (`application/x-www-form-urlencoded`) with `grant_type=client_credentials` and an optional
//! `scope`, the client authenticating **either** with HTTP Basic (id and secret form-urlencoded,
//! then base64) **or** with `client_id`/`client_secret` body parameters, not both. Parameters may
//! not repeat (§3.2). Problems are [`OAuthError`]s with the §5.2 codes.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use eventplane_core::auth::constant_time_eq;
use eventplane_core::{ClientId, Error};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::token::SCOPE_PUBLISH;

/// The prefix of client secrets (easy to recognise in a leak scanner).
pub const SECRET_PREFIX: &str = "eps_";
/// Random bytes in a client secret.
pub const SECRET_BYTES: usize = 32;
/// Random bytes of a stored hash's salt.
pub const SALT_BYTES: usize = 16;
/// The scheme tag of stored secret hashes.
pub const HASH_SCHEME: &str = "sha256";
/// The only grant type accepted.
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
/// The content type of token requests.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
/// Headers every token response (success or error) must carry (RFC 6749 §5.1).
pub const TOKEN_RESPONSE_HEADERS: [(&str, &str); 2] =
    [("cache-control", "no-store"), ("pragma", "no-cache")];

/// New client credentials: the id and the secret (shown once, never stored in clear).
pub fn generate() -> Result<(ClientId, String), Error> {
    let bytes = eventplane_core::random::bytes::<SECRET_BYTES>()?;
    Ok((
        ClientId::new(),
        format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)),
    ))
}

fn digest(salt: &[u8], secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// The storable hash of `secret`: `sha256$<salt>$<hex digest>` with a fresh random salt.
pub fn hash_secret(secret: &str) -> Result<String, Error> {
    let salt = eventplane_core::random::bytes::<SALT_BYTES>()?;
    Ok(format!(
        "{HASH_SCHEME}${}${}",
        URL_SAFE_NO_PAD.encode(salt),
        digest(&salt, secret)
    ))
}

/// Whether `secret` matches `stored` (from [`hash_secret`]); a malformed `stored` never matches.
/// The digests are compared in constant time.
pub fn verify_secret(secret: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(HASH_SCHEME), Some(salt), Some(expected), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(salt) = URL_SAFE_NO_PAD.decode(salt) else {
        return false;
    };
    constant_time_eq(digest(&salt, secret).as_bytes(), expected.as_bytes())
}

/// The error codes of RFC 6749 §5.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// The request is malformed (missing or repeated parameter, wrong content type, two client
    /// authentication methods).
    InvalidRequest,
    /// Client authentication failed (unknown client, wrong secret, no authentication).
    InvalidClient,
    /// The grant is invalid.
    InvalidGrant,
    /// The client may not use this grant type (e.g. revoked credentials of a deleted
    /// application).
    UnauthorizedClient,
    /// The grant type is not `client_credentials`.
    UnsupportedGrantType,
    /// The requested scope is not `events:publish`.
    InvalidScope,
    /// The server failed (e.g. the token could not be signed): 500.
    ServerError,
    /// The server cannot answer now (e.g. the store is unavailable): 503.
    TemporarilyUnavailable,
}

impl OAuthErrorCode {
    /// The code as sent in `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// A token-endpoint error (RFC 6749 §5.2): `{"error", "error_description"}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    /// The §5.2 code.
    pub code: OAuthErrorCode,
    /// What is wrong, for people.
    pub description: String,
}

impl OAuthError {
    /// An error with this code.
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// `invalid_client`: client authentication failed (`401`, with a Basic challenge).
    pub fn invalid_client() -> Self {
        Self::new(
            OAuthErrorCode::InvalidClient,
            "client authentication failed",
        )
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, description)
    }

    /// `401` for `invalid_client`, `500` for `server_error`, `503` for
    /// `temporarily_unavailable`, `400` for the rest.
    pub fn status(&self) -> u16 {
        match self.code {
            OAuthErrorCode::InvalidClient => 401,
            OAuthErrorCode::ServerError => 500,
            OAuthErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }

    /// `Basic realm="eventplane"` for `invalid_client`, the one `401`: HTTP requires a challenge
    /// on every `401` (RFC 9110 §11.6.1), and Basic is the scheme RFC 6749 §5.2 names for a
    /// token endpoint, whether or not the client tried it.
    pub fn www_authenticate(&self) -> Option<String> {
        (self.code == OAuthErrorCode::InvalidClient)
            .then(|| format!("Basic realm=\"{}\"", crate::token::REALM))
    }

    /// The body: `{"error": code, "error_description": description}`.
    pub fn body(&self) -> Value {
        json!({"error": self.code.as_str(), "error_description": self.description})
    }
}

/// A well-formed client-credentials token request (the credentials are not checked yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The client id as sent.
    pub client_id: String,
    /// The client secret as sent.
    pub client_secret: String,
    /// The scope to grant: always [`SCOPE_PUBLISH`] (the default when none is requested).
    pub scope: String,
    /// Whether the client authenticated with HTTP Basic.
    pub basic_auth: bool,
}

/// The successful answer (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// The granted scope.
    pub scope: String,
}

impl TokenResponse {
    /// A bearer token answer granting [`SCOPE_PUBLISH`].
    pub fn bearer(access_token: impl Into<String>, expires_in: u64) -> Self {
        Self {
            access_token: access_token.into(),
            token_type: "Bearer".to_owned(),
            expires_in,
            scope: SCOPE_PUBLISH.to_owned(),
        }
    }
}

/// The client id and secret of an `Authorization: Basic` header, form-urldecoded (RFC 6749
/// §2.3.1). `Ok(None)` when the header is absent or uses another scheme.
fn basic_credentials(authorization: Option<&str>) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let (scheme, encoded) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let malformed = || OAuthError {
        description: "malformed Basic credentials".into(),
        ..OAuthError::invalid_client()
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |text: &str| -> String {
        form_urlencoded::parse(format!("x={text}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// Parses a token request (see the module doc). `content_type` and `authorization` are the
/// request's headers, `body` its body.
pub fn parse_token_request(
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<TokenRequest, OAuthError> {
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|ct| ct.trim().to_ascii_lowercase());
    if media.as_deref() != Some(FORM_CONTENT_TYPE) {
        return Err(OAuthError::invalid_request(format!(
            "the request body must be {FORM_CONTENT_TYPE}"
        )));
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(body) {
        if params.iter().any(|(seen, _)| *seen == name) {
            return Err(OAuthError::invalid_request(format!(
                "the parameter {name} is repeated"
            )));
        }
        params.push((name.into_owned(), value.into_owned()));
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };

    match param("grant_type") {
        None => return Err(OAuthError::invalid_request("grant_type is required")),
        Some(GRANT_CLIENT_CREDENTIALS) => {}
        Some(other) => {
            return Err(OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                format!("the grant type {other:?} is not supported; use client_credentials"),
            ));
        }
    }

    let basic = basic_credentials(authorization)?;
    let (client_id, client_secret, basic_auth) = match (
        basic,
        param("client_id"),
        param("client_secret"),
    ) {
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method: the Basic header or the body parameters, \
                 not both",
            ));
        }
        (Some((id, _)), Some(body_id), None) if body_id != id => {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the Basic credentials",
            ));
        }
        (Some((id, secret)), _, None) => (id, secret, true),
        (None, Some(id), Some(secret)) => (id.to_owned(), secret.to_owned(), false),
        (None, _, _) => return Err(OAuthError::invalid_client()),
    };
    if client_id.is_empty() || client_secret.is_empty() {
        return Err(OAuthError::invalid_client());
    }

    if let Some(scope) = param("scope") {
        let unknown: Vec<&str> = scope
            .split_whitespace()
            .filter(|s| *s != SCOPE_PUBLISH)
            .collect();
        if !unknown.is_empty() {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                format!(
                    "unknown scope {}; the only scope is {SCOPE_PUBLISH}",
                    unknown.join(" ")
                ),
            ));
        }
    }
    Ok(TokenRequest {
        client_id,
        client_secret,
        scope: SCOPE_PUBLISH.to_owned(),
        basic_auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn basic(id: &str, secret: &str) -> String {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
        )
    }

    #[test]
    fn generated_credentials() -> Result<(), Error> {
        let (id, secret) = generate()?;
        assert!(id.as_str().starts_with("cli_"));
        let body = secret.strip_prefix("eps_").unwrap_or_default();
        assert_eq!(URL_SAFE_NO_PAD.decode(body).map(|b| b.len()).ok(), Some(32));
        assert_ne!(generate()?.1, secret);
        Ok(())
    }

    #[test]
    fn hashes_are_salted_and_verify() -> Result<(), Error> {
        let (_, secret) = generate()?;
        let a = hash_secret(&secret)?;
        let b = hash_secret(&secret)?;
        assert_ne!(a, b);
        assert!(a.starts_with("sha256$"));
        assert!(!a.contains(&secret));
        assert!(verify_secret(&secret, &a) && verify_secret(&secret, &b));
        assert!(!verify_secret("eps_wrong", &a));
        assert!(!verify_secret(&secret[..secret.len() - 1], &a));
        for malformed in ["", "sha256$", "md5$x$y", &format!("{a}$x"), "sha256$!!$00"] {
            assert!(!verify_secret(&secret, malformed), "{malformed:?}");
        }
        Ok(())
    }

    #[test]
    fn basic_and_body_authentication() -> Result<(), OAuthError> {
        let header = basic("cli_1", "s+e:c r%t");
        let req = parse_token_request(
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            Some(&header),
            b"grant_type=client_credentials",
        )?;
        assert_eq!(
            (req.client_id.as_str(), req.client_secret.as_str()),
            ("cli_1", "s+e:c r%t")
        );
        assert!(req.basic_auth);
        assert_eq!(req.scope, "events:publish");

        let req = parse_token_request(
            FORM,
            None,
            b"grant_type=client_credentials&client_id=cli_2&client_secret=a%2Bb&scope=events%3Apublish",
        )?;
        assert_eq!(
            (req.client_id.as_str(), req.client_secret.as_str()),
            ("cli_2", "a+b")
        );
        assert!(!req.basic_auth);

        // client_id repeated in the body alongside Basic is tolerated when equal
        let req = parse_token_request(
            FORM,
            Some(&basic("cli_1", "s")),
            b"grant_type=client_credentials&client_id=cli_1",
        )?;
        assert_eq!(req.client_id, "cli_1");
        Ok(())
    }

    fn code(result: Result<TokenRequest, OAuthError>) -> (&'static str, u16, bool) {
        match result {
            Ok(req) => panic!("accepted: {req:?}"),
            Err(err) => (
                err.code.as_str(),
                err.status(),
                err.www_authenticate().is_some(),
            ),
        }
    }

    #[test]
    fn errors_per_rfc_6749() {
        let grant = b"grant_type=client_credentials&client_id=c&client_secret=s";
        assert_eq!(
            code(parse_token_request(Some("application/json"), None, grant)),
            ("invalid_request", 400, false)
        );
        assert_eq!(
            code(parse_token_request(None, None, grant)),
            ("invalid_request", 400, false)
        );
        assert_eq!(
            code(parse_token_request(
                FORM,
                None,
                b"client_id=c&client_secret=s"
            )),
            ("invalid_request", 400, false)
        );
        assert_eq!(
            code(parse_token_request(
                FORM,
                None,
                b"grant_type=password&client_id=c&client_secret=s"
            )),
            ("unsupported_grant_type", 400, false)
        );
        assert_eq!(
            code(parse_token_request(FORM, None, b"grant_type=client_credentials&grant_type=client_credentials&client_id=c&client_secret=s")),
            ("invalid_request", 400, false)
        );
        assert_eq!(
            code(parse_token_request(FORM, Some(&basic("c", "s")), grant)),
            ("invalid_request", 400, false)
        );
        assert_eq!(
            code(parse_token_request(
                FORM,
                Some(&basic("c", "s")),
                b"grant_type=client_credentials&client_id=d"
            )),
            ("invalid_request", 400, false)
        );
        assert_eq!(
            code(parse_token_request(
                FORM,
                None,
                b"grant_type=client_credentials"
            )),
            ("invalid_client", 401, true)
        );
        assert_eq!(
            code(parse_token_request(
                FORM,
                None,
                b"grant_type=client_credentials&client_id=c"
            )),
            ("invalid_client", 401, true)
        );
        assert_eq!(
            code(parse_token_request(
                FORM,
                Some("Basic !!!"),
                b"grant_type=client_credentials"
            )),
            ("invalid_client", 401, true)
        );
        assert_eq!(
            code(parse_token_request(
                FORM,
                Some(&format!("Basic {}", STANDARD.encode("nocolon"))),
                b"grant_type=client_credentials"
            )),
            ("invalid_client", 401, true)
        );
        assert_eq!(
            code(parse_token_request(
                FORM,
                Some(&basic("", "s")),
                b"grant_type=client_credentials"
            )),
            ("invalid_client", 401, true)
        );
        assert_eq!(
            code(parse_token_request(
                FORM,
                None,
                b"grant_type=client_credentials&client_id=c&client_secret=s&scope=admin"
            )),
            ("invalid_scope", 400, false)
        );
    }

    #[test]
    fn error_bodies_and_headers() {
        let err = OAuthError::invalid_client();
        assert_eq!(err.status(), 401);
        assert_eq!(
            err.www_authenticate().as_deref(),
            Some("Basic realm=\"eventplane\"")
        );
        assert_eq!(
            err.body(),
            json!({"error": "invalid_client", "error_description": "client authentication failed"})
        );
        let err = OAuthError::new(OAuthErrorCode::UnauthorizedClient, "revoked");
        assert_eq!(
            (err.status(), err.to_string()),
            (400, "unauthorized_client: revoked".into())
        );
        assert_eq!(OAuthErrorCode::InvalidGrant.as_str(), "invalid_grant");
    }

    #[test]
    fn token_response_shape() -> Result<(), serde_json::Error> {
        assert_eq!(
            serde_json::to_value(TokenResponse::bearer("jwt", 900))?,
            json!({"access_token": "jwt", "token_type": "Bearer", "expires_in": 900, "scope": "events:publish"})
        );
        Ok(())
    }
}
