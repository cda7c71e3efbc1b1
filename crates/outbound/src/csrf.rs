//! The CSRF-token handshake some spec servers (SAP systems among them) require: a `GET` of the
//! token endpoint with `X-CSRF-Token: Fetch` answers the token in the same header and sets
//! session cookies; the real call then sends the token and those cookies.

/// The header carrying the token both ways.
pub const HEADER: &str = "x-csrf-token";

/// The value asking for a token.
pub const FETCH: &str = "Fetch";

/// What the real call must send: the token and the session cookies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfToken {
    /// The token.
    pub token: String,
    /// The `Cookie` header value built from the `Set-Cookie` headers, if any were set.
    pub cookie: Option<String>,
}

impl CsrfToken {
    /// The headers to add to the real call.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![(HEADER.to_owned(), self.token.clone())];
        if let Some(cookie) = &self.cookie {
            headers.push(("cookie".to_owned(), cookie.clone()));
        }
        headers
    }
}

/// Reads the token endpoint's answer (headers with lower-case names).
pub fn parse_token_response(
    endpoint: &str,
    status: u16,
    headers: &[(String, String)],
) -> Result<CsrfToken, String> {
    if !(200..300).contains(&status) {
        return Err(format!(
            "the CSRF token endpoint {endpoint} answered HTTP {status}"
        ));
    }
    let token = headers
        .iter()
        .find(|(name, _)| name == HEADER)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|token| !token.is_empty() && !token.eq_ignore_ascii_case("required"))
        .ok_or_else(|| format!("the CSRF token endpoint {endpoint} sent no X-CSRF-Token header"))?;
    let cookies: Vec<&str> = headers
        .iter()
        .filter(|(name, _)| name == "set-cookie")
        .filter_map(|(_, value)| value.split(';').next())
        .map(str::trim)
        .filter(|pair| pair.contains('='))
        .collect();
    Ok(CsrfToken {
        token,
        cookie: (!cookies.is_empty()).then(|| cookies.join("; ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    #[test]
    fn the_token_and_the_cookie_pairs_are_taken() {
        let token = parse_token_response(
            "https://t",
            200,
            &[
                h("x-csrf-token", "tok-1"),
                h("set-cookie", "SESSION=abc; Path=/; HttpOnly"),
                h("set-cookie", "route=r1"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(token.token, "tok-1");
        assert_eq!(token.cookie.as_deref(), Some("SESSION=abc; route=r1"));
        assert_eq!(
            token.headers(),
            vec![
                h("x-csrf-token", "tok-1"),
                h("cookie", "SESSION=abc; route=r1")
            ]
        );
    }

    #[test]
    fn a_missing_token_or_a_failure_is_an_error() {
        assert!(parse_token_response("https://t", 200, &[]).is_err());
        assert!(parse_token_response("https://t", 200, &[h("x-csrf-token", "Required")]).is_err());
        let err = parse_token_response("https://t", 403, &[h("x-csrf-token", "t")])
            .err()
            .unwrap_or_default();
        assert!(err.contains("HTTP 403"), "{err}");
    }
}
