//! The OAuth 2.0 client-credentials grant (RFC 6749 §4.4) as a client: the token request, the
//! token response, and when a token may be reused.
//!
//! The client authenticates with HTTP Basic, its id and secret each form-encoded first
//! (RFC 6749 §2.3.1). A token is reused until [`REFRESH_MARGIN_SECONDS`] before it expires; a
//! token whose response has no `expires_in` is used once.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{basic_header, form_encode};

/// A cached token is not used in its last 30 seconds: a call made with it must still reach the
/// server before it expires.
pub const REFRESH_MARGIN_SECONDS: u64 = 30;

/// The form body of a token request.
pub const TOKEN_REQUEST_BODY: &str = "grant_type=client_credentials";

/// The form body of a client-credentials token request, with the `scope` parameter when one is
/// asked for (RFC 6749 §4.4.2).
pub fn token_request_body(scope: Option<&str>) -> String {
    match scope.filter(|scope| !scope.is_empty()) {
        Some(scope) => format!("{TOKEN_REQUEST_BODY}&scope={}", form_encode(scope)),
        None => TOKEN_REQUEST_BODY.to_owned(),
    }
}

/// The `Authorization` header of a token request (RFC 6749 §2.3.1).
pub fn client_authorization(client_id: &str, client_secret: &str) -> String {
    basic_header(&form_encode(client_id), &form_encode(client_secret))
}

/// A token obtained from a token endpoint, as cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The access token.
    pub access_token: String,
    /// When it expires (Unix seconds), if the server said.
    pub expires_at: Option<u64>,
}

impl Token {
    /// Whether the token may still be used at `now` (Unix seconds).
    pub fn reusable_at(&self, now: u64) -> bool {
        self.expires_at
            .is_some_and(|expires_at| now.saturating_add(REFRESH_MARGIN_SECONDS) < expires_at)
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
}

/// Reads a token endpoint's answer received at `now` (Unix seconds): the token, or a message
/// saying what is wrong with the answer.
pub fn parse_token_response(
    token_url: &str,
    status: u16,
    body: &[u8],
    now: u64,
) -> Result<Token, String> {
    if !(200..300).contains(&status) {
        let detail = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .map(|error| format!(" ({error})"))
            .unwrap_or_default();
        return Err(format!(
            "the token endpoint {token_url} answered HTTP {status}{detail}"
        ));
    }
    let response: TokenResponse = serde_json::from_slice(body)
        .map_err(|e| format!("the token endpoint {token_url} sent invalid JSON: {e}"))?;
    let access_token = response
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("the token endpoint {token_url} sent no access_token"))?;
    if let Some(token_type) = response.token_type
        && !token_type.eq_ignore_ascii_case("bearer")
    {
        return Err(format!(
            "the token endpoint {token_url} sent a token of type `{token_type}`; only Bearer tokens are supported"
        ));
    }
    // Some servers send `expires_in` as a string.
    let expires_in = match response.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Ok(Token {
        access_token,
        expires_at: expires_in.map(|seconds| now.saturating_add(seconds)),
    })
}

/// The name under which tokens of one client at one endpoint are cached: a SHA-256 of the
/// endpoint, the client id and the secret (so a changed secret never reuses an old token, and
/// the cache key reveals nothing).
pub fn cache_name(
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    scope: Option<&str>,
) -> String {
    let mut hash = Sha256::new();
    let scope = scope.unwrap_or_default();
    for part in [token_url, client_id, client_secret, scope] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_authorization_form_encodes_before_base64() {
        // "a b:c:d" would be ambiguous without encoding the id's reserved characters.
        assert_eq!(
            client_authorization("a:b", "c d"),
            basic_header("a%3Ab", "c%20d")
        );
    }

    #[test]
    fn a_token_is_reused_until_shortly_before_it_expires() {
        let token = parse_token_response(
            "https://t",
            200,
            br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
            1000,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(token.expires_at, Some(4600));
        assert!(token.reusable_at(1000));
        assert!(token.reusable_at(4569));
        assert!(!token.reusable_at(4570));
        let no_expiry = parse_token_response("https://t", 200, br#"{"access_token":"abc"}"#, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!no_expiry.reusable_at(0));
        let string_expiry = parse_token_response(
            "https://t",
            200,
            br#"{"access_token":"abc","expires_in":"60"}"#,
            0,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(string_expiry.expires_at, Some(60));
    }

    #[test]
    fn bad_token_responses_say_what_is_wrong() {
        let cases: [(u16, &[u8], &str); 4] = [
            (
                401,
                br#"{"error":"invalid_client"}"#,
                "answered HTTP 401 (invalid_client)",
            ),
            (200, b"<html>", "sent invalid JSON"),
            (200, br#"{"token_type":"Bearer"}"#, "sent no access_token"),
            (
                200,
                br#"{"access_token":"a","token_type":"mac"}"#,
                "only Bearer tokens",
            ),
        ];
        for (status, body, expected) in cases {
            let err = parse_token_response("https://t", status, body, 0)
                .err()
                .unwrap_or_default();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn cache_names_differ_per_secret_and_scope_and_hide_the_secret() {
        let a = cache_name("https://t", "id", "s1", None);
        assert_ne!(a, cache_name("https://t", "id", "s2", None));
        assert_ne!(
            cache_name("https://t", "ab", "c", None),
            cache_name("https://t", "a", "bc", None)
        );
        assert_ne!(a, cache_name("https://t", "id", "s1", Some("read")));
        assert_ne!(
            cache_name("https://t", "id", "s1", Some("a")),
            cache_name("https://t", "id", "s1", Some("b"))
        );
        assert_eq!(a.len(), 64);
        assert!(!a.contains("s1"));
    }

    #[test]
    fn the_token_request_asks_for_the_scope_only_when_there_is_one() {
        assert_eq!(token_request_body(None), "grant_type=client_credentials");
        assert_eq!(
            token_request_body(Some("")),
            "grant_type=client_credentials"
        );
        assert_eq!(
            token_request_body(Some("events.write orders:read")),
            "grant_type=client_credentials&scope=events.write%20orders%3Aread"
        );
    }
}
