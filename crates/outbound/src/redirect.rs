//! Redirects: which answers redirect, and where to.
//!
//! Spin's outbound HTTP does not follow redirects, so callers do, at most [`MAX_REDIRECTS`]
//! times; each target is an ordinary outbound request, so it must be a host the component may
//! reach (`allowed_outbound_hosts`).

/// How many redirects a fetch follows.
pub const MAX_REDIRECTS: usize = 3;

/// Whether `status` redirects to its `Location`.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The absolute URL `location` points to, relative to `base` (RFC 3986 §5.2, for the forms
/// servers send: absolute, scheme-relative, absolute-path and relative-path references).
pub fn resolve(base: &str, location: &str) -> Result<String, String> {
    let location = location.trim();
    if location.is_empty() {
        return Err("the redirect has an empty Location".to_owned());
    }
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(location.to_owned());
    }
    if location.contains("://") || lower.starts_with("javascript:") || lower.starts_with("data:") {
        return Err(format!(
            "the redirect goes to `{location}`, which is not an http(s) URL"
        ));
    }
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| format!("`{base}` is not an absolute URL"))?;
    if let Some(authority_and_path) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{authority_and_path}"));
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if location.starts_with('/') {
        return Ok(format!("{scheme}://{authority}{location}"));
    }
    let path = &rest[authority_end..];
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    if location.starts_with('?') {
        return Ok(format!("{scheme}://{authority}{path}{location}"));
    }
    let directory = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let directory = if directory.is_empty() { "/" } else { directory };
    Ok(format!("{scheme}://{authority}{directory}{location}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_request_url() {
        let base = "http://specs.example:8080/v1/apis/shop.yaml?x=1";
        let cases = [
            ("https://other.example/a", "https://other.example/a"),
            ("//cdn.example/s.yaml", "http://cdn.example/s.yaml"),
            ("/v2/shop.yaml", "http://specs.example:8080/v2/shop.yaml"),
            (
                "shop-2.yaml",
                "http://specs.example:8080/v1/apis/shop-2.yaml",
            ),
            ("?x=2", "http://specs.example:8080/v1/apis/shop.yaml?x=2"),
        ];
        for (location, expected) in cases {
            assert_eq!(
                resolve(base, location).as_deref(),
                Ok(expected),
                "{location}"
            );
        }
        assert_eq!(
            resolve("http://h.example", "a").as_deref(),
            Ok("http://h.example/a")
        );
    }

    #[test]
    fn non_http_targets_are_refused() {
        for location in ["", "ftp://x/y", "file:///etc/passwd", "javascript:alert(1)"] {
            assert!(resolve("http://h/a", location).is_err(), "{location}");
        }
    }

    #[test]
    fn only_redirect_statuses_redirect() {
        assert!(is_redirect(302) && is_redirect(308));
        assert!(!is_redirect(200) && !is_redirect(304) && !is_redirect(300));
    }
}
