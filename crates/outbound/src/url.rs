//! The URLs eventplane calls: absolute `http` or `https` URLs with a host ([`http_host`]), and
//! why a URL is not one ([`UrlProblem`]).

use std::fmt;

/// Why a text is not an absolute `http`/`https` URL with a host. `Display` says it the way a
/// field error does (`has no host`); callers may put the URL before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlProblem {
    /// Longer than the limit (in bytes) given.
    TooLong(usize),
    /// It contains white space or control characters.
    Whitespace,
    /// It is not `scheme://…`.
    NotAbsolute,
    /// Its scheme (as written) is neither `http` nor `https`.
    Scheme(String),
    /// A `[` without its `]`, or something other than `:port` after the `]`.
    MalformedHost,
    /// The host is empty.
    NoHost,
    /// The port is empty or not a number from 0 to 65535.
    InvalidPort,
}

impl fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong(max) => write!(f, "must be at most {max} bytes"),
            Self::Whitespace => f.write_str("must not contain whitespace or control characters"),
            Self::NotAbsolute => f.write_str("must be an absolute http or https URL"),
            Self::Scheme(scheme) => write!(f, "the scheme must be http or https, not {scheme:?}"),
            Self::MalformedHost => f.write_str("has a malformed host"),
            Self::NoHost => f.write_str("has no host"),
            Self::InvalidPort => f.write_str("has an invalid port"),
        }
    }
}

impl std::error::Error for UrlProblem {}

/// The host of `url` (as written; an IPv6 address without its brackets) if `url` is an
/// absolute `http` or `https` URL (scheme in any case) of at most `max_bytes` bytes, without
/// white space or control characters, with a non-empty host and, if it has one, a decimal
/// port that fits 16 bits. User information before an `@` is allowed.
pub fn http_host(url: &str, max_bytes: usize) -> Result<&str, UrlProblem> {
    if url.len() > max_bytes {
        return Err(UrlProblem::TooLong(max_bytes));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlProblem::Whitespace);
    }
    let (scheme, rest) = url.split_once("://").ok_or(UrlProblem::NotAbsolute)?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(UrlProblem::Scheme(scheme.to_owned()));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').ok_or(UrlProblem::MalformedHost)?;
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(after.strip_prefix(':').ok_or(UrlProblem::MalformedHost)?),
                ),
            }
        }
        None => match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    if host.is_empty() {
        return Err(UrlProblem::NoHost);
    }
    if let Some(port) = port
        && (port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err())
    {
        return Err(UrlProblem::InvalidPort);
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_http_urls() {
        for (url, host) in [
            ("http://example.com", "example.com"),
            ("HTTPS://user:pw@Example.com:8443/a?b=c#d", "Example.com"),
            ("http://[::1]:3000/x", "::1"),
            ("http://[::1]", "::1"),
            ("http://127.0.0.1:0", "127.0.0.1"),
        ] {
            assert_eq!(http_host(url, 100), Ok(host), "{url}");
        }
    }

    #[test]
    fn problems_of_other_texts() {
        for (url, problem) in [
            ("", UrlProblem::NotAbsolute),
            ("example.com/x", UrlProblem::NotAbsolute),
            ("ftp://x", UrlProblem::Scheme("ftp".into())),
            ("http://", UrlProblem::NoHost),
            ("http:///path", UrlProblem::NoHost),
            ("http://:80", UrlProblem::NoHost),
            ("http://a b", UrlProblem::Whitespace),
            ("http://x/\u{7f}", UrlProblem::Whitespace),
            ("http://[::1/", UrlProblem::MalformedHost),
            ("http://[::1]x/", UrlProblem::MalformedHost),
            ("http://x:", UrlProblem::InvalidPort),
            ("http://x:+80", UrlProblem::InvalidPort),
            ("http://x:70000", UrlProblem::InvalidPort),
            ("http://x/aaaaaaaaaa", UrlProblem::TooLong(15)),
        ] {
            assert_eq!(http_host(url, 15), Err(problem), "{url}");
        }
        assert_eq!(UrlProblem::NoHost.to_string(), "has no host");
    }
}
