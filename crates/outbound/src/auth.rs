//! The credentials a call presents.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// What is shown instead of a secret (in `Debug` output and in API responses).
pub const SECRET_MASK: &str = "********";

/// Header names (any case) mapped to their values; several values of one name are sent as one
/// comma-separated header.
pub type Headers = BTreeMap<String, Vec<String>>;

/// Query parameter names mapped to their values; each value is sent as its own `name=value`.
pub type QueryParams = BTreeMap<String, Vec<String>>;

/// A credential, secrets in clear (eventplane must present them). `Debug` masks the secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Credential {
    /// HTTP basic authentication (RFC 7617).
    Basic {
        /// The user name.
        username: String,
        /// The password (a secret).
        password: String,
    },
    /// OAuth 2.0 client credentials: a token from `url` is sent as `Bearer`.
    #[serde(rename = "oauth")]
    OAuth {
        /// The client id.
        client_id: String,
        /// The client secret (a secret).
        client_secret: String,
        /// The token endpoint.
        url: String,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => debug_basic(f, username),
            Self::OAuth { client_id, url, .. } => f
                .debug_struct("OAuth")
                .field("client_id", client_id)
                .field("client_secret", &SECRET_MASK)
                .field("url", url)
                .finish(),
        }
    }
}

/// Writes a basic credential for `Debug` as `Basic { username: "…", password: "********" }`:
/// the password is never shown, whichever type holds it.
pub fn debug_basic(f: &mut fmt::Formatter<'_>, username: &str) -> fmt::Result {
    f.debug_struct("Basic")
        .field("username", &username)
        .field("password", &SECRET_MASK)
        .finish()
}

/// How to authenticate one call.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RequestAuth {
    /// The credential to present, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
    /// Headers to add.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: Headers,
    /// Query parameters to add.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query_params: QueryParams,
    /// A CSRF token to fetch before the call, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<CsrfAuth>,
}

/// Fetch a CSRF token from `token_endpoint_url`, with its own credential, before the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsrfAuth {
    /// Where to fetch the token.
    pub token_endpoint_url: String,
    /// How to authenticate the token request (its CSRF part is ignored).
    pub auth: Box<RequestAuth>,
}

impl RequestAuth {
    /// The extra headers as `(lower-case name, value)` pairs, several values joined by `, `.
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        header_pairs(&self.headers)
    }

    /// `url` with the extra query parameters appended.
    pub fn apply_query(&self, url: &str) -> String {
        with_query(url, &self.query_params)
    }
}

/// `headers` as `(lower-case name, value)` pairs, several values joined by `, `.
pub fn header_pairs(headers: &Headers) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, values)| (name.to_ascii_lowercase(), values.join(", ")))
        .collect()
}

/// `url` with `params` appended to its query (before any `#fragment`), form-encoded.
pub fn with_query(url: &str, params: &QueryParams) -> String {
    if params.values().all(Vec::is_empty) {
        return url.to_owned();
    }
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let mut out = base.to_owned();
    for (name, values) in params {
        for value in values {
            out.push(if out.contains('?') { '&' } else { '?' });
            out.push_str(&form_encode(name));
            out.push('=');
            out.push_str(&form_encode(value));
        }
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// The `Authorization` value of HTTP basic authentication.
pub fn basic_header(username: &str, password: &str) -> String {
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {credentials}")
}

/// `application/x-www-form-urlencoded` encoding of one name or value (every byte but the
/// unreserved ones percent-encoded).
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_encoded_and_go_before_the_fragment() {
        let mut params = QueryParams::new();
        params.insert("api key".into(), vec!["a&b=c".into(), "2".into()]);
        params.insert("v".into(), vec!["1".into()]);
        assert_eq!(
            with_query("https://x.example/spec?x=1#top", &params),
            "https://x.example/spec?x=1&api%20key=a%26b%3Dc&api%20key=2&v=1#top"
        );
        assert_eq!(
            with_query("https://x.example/spec", &QueryParams::new()),
            "https://x.example/spec"
        );
        let mut only_v = QueryParams::new();
        only_v.insert("v".into(), vec!["1".into()]);
        assert_eq!(
            with_query("https://x.example/spec", &only_v),
            "https://x.example/spec?v=1"
        );
    }

    #[test]
    fn headers_join_values_and_lower_case_names() {
        let mut headers = Headers::new();
        headers.insert("X-Shop-Key".into(), vec!["a".into(), "b".into()]);
        assert_eq!(
            header_pairs(&headers),
            vec![("x-shop-key".to_owned(), "a, b".to_owned())]
        );
    }

    #[test]
    fn basic_is_base64_of_user_colon_password() {
        assert_eq!(
            basic_header("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn debug_masks_secrets() {
        let basic = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        let oauth = Credential::OAuth {
            client_id: "c".into(),
            client_secret: "hunter2".into(),
            url: "https://t".into(),
        };
        for credential in [basic, oauth] {
            let shown = format!("{credential:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains(SECRET_MASK), "{shown}");
        }
    }

    #[test]
    fn credential_json_is_tagged_by_type() {
        let oauth = Credential::OAuth {
            client_id: "c".into(),
            client_secret: "s".into(),
            url: "https://t".into(),
        };
        let json = serde_json::to_value(&oauth).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"type": "oauth", "client_id": "c", "client_secret": "s", "url": "https://t"})
        );
    }
}
