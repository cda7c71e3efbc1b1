//! `allowed_outbound_hosts`: parsing the entries and checking requests against them.
//!
//! How Spin uses the list (Spin's `spin-outbound-networking-config` and the outbound HTTP
//! factor):
//! - An outbound HTTP request with no authority, or whose host is `self.alt`, is a *self
//!   request* (to the app's own listener); it is allowed if an entry allows scheme `http` or
//!   `https` with host `*`, `self` or `self.alt` (the port is not checked):
//!   [`AllowedHosts::allows_self_requests`].
//! - Any other request is checked as a URL, `https` being assumed when the URL has no scheme:
//!   [`AllowedHosts::allows_url`]. TCP/UDP sockets are checked the same way with scheme
//!   `tcp`/`udp`.
//! - `http://<id>.spin.internal` is service chaining to component `<id>`. It needs an entry
//!   allowing that host (`http://<id>.spin.internal`, `http://*.spin.internal`, or a host `*`);
//!   `*.spin.internal` is expanded to one entry per component of the app, so it only allows
//!   existing components.
//! - `insecure:allow-all` is refused, as are entries with a path.
//! - Entries may be templates (`https://{{ api_host }}`); a template that resolves to `""`,
//!   `"http://"` or `"https://"` is skipped (an "optional endpoint").

mod entry;
#[cfg(test)]
mod tests;

pub use entry::{AllowedHost, HostRule, PortRule, SchemeRule, well_known_port};

use crate::manifest::Manifest;
use crate::variables::{ResolvedVariables, Template, TemplateError};

/// The domain suffix of service-chaining hosts.
pub const CHAINING_SUFFIX: &str = ".spin.internal";

/// An `allowed_outbound_hosts` entry Spin would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// A bare `*`, `:`, `?` or empty entry.
    #[error(
        "{0:?} is not an allowed outbound host format. Hosts must be in the form <scheme>://<host>[:<port>], with '*' wildcards allowed for each. If you intended to allow all outbound networking, you can use '*://*:*' - this will obviate all network sandboxing."
    )]
    NotAHostPattern(String),
    /// No `scheme://`.
    #[error("{0:?} does not contain a scheme (e.g., 'http://' or '*://')")]
    NoScheme(String),
    /// A path after the port.
    #[error("{0:?} has a path but is not allowed to")]
    HasPath(String),
    /// A bad port part.
    #[error("Invalid allowed host port {port:?}: {reason}")]
    InvalidPort {
        /// The port text.
        port: String,
        /// Why it is refused.
        reason: String,
    },
    /// A bad scheme part.
    #[error("Invalid allowed host scheme {scheme:?}: {reason}")]
    InvalidScheme {
        /// The scheme text.
        scheme: String,
        /// Why it is refused.
        reason: String,
    },
    /// A bad host part.
    #[error("Invalid allowed host {host:?}: {reason}")]
    InvalidHost {
        /// The host text.
        host: String,
        /// Why it is refused.
        reason: String,
    },
    /// The Spin 1 `insecure:allow-all` entry.
    #[error(
        "'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic"
    )]
    AllowAll,
    /// An entry that is not a valid template.
    #[error("{0}")]
    Template(#[from] TemplateError),
    /// A template whose value is not a valid entry.
    #[error("template {template:?} resolves to {resolved:?}, which is invalid: {source}")]
    InvalidResolved {
        /// The template, as written.
        template: String,
        /// What it resolved to.
        resolved: String,
        /// Why that is refused.
        source: Box<OutboundError>,
    },
}

/// A component's parsed `allowed_outbound_hosts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

impl AllowedHosts {
    /// Parses literal entries (templates already resolved). Refuses what Spin refuses at
    /// start-up. Does not expand `*.spin.internal`: see [`Self::expand_service_chaining`].
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, OutboundError> {
        reject_allow_all(entries)?;
        let entries = entries
            .iter()
            .map(|e| AllowedHost::parse(e.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }

    /// Parses entries that may be templates, resolving each `{{ name }}` with `lookup`
    /// (which returns the application variable's value). Templated entries resolving to
    /// `""`, `"http://"` or `"https://"` are skipped, as in Spin. `*.spin.internal` entries
    /// are expanded to the given component ids.
    pub fn resolve<S, E>(
        entries: &[S],
        mut lookup: impl FnMut(&str) -> Result<String, E>,
        component_ids: &[&str],
    ) -> Result<Self, E>
    where
        S: AsRef<str>,
        E: From<OutboundError>,
    {
        reject_allow_all(entries)?;
        let mut parsed = Vec::new();
        for entry in entries {
            let entry = entry.as_ref();
            let template = Template::parse(entry).map_err(OutboundError::from)?;
            if template.is_literal() {
                parsed.push(AllowedHost::parse(entry)?);
            } else {
                let resolved = template.render(&mut lookup)?;
                if let Some(host) = parse_resolved(&template, &resolved)? {
                    parsed.push(host);
                }
            }
        }
        Ok(Self { entries: parsed }.expand_service_chaining(component_ids))
    }

    /// Validates entries the way Spin does when loading the app: literal entries must parse;
    /// a templated entry is checked only if `default_of` can resolve all its names (Spin uses
    /// the variables' defaults and skips the check otherwise).
    pub fn validate<S: AsRef<str>>(
        entries: &[S],
        mut default_of: impl FnMut(&str) -> Option<String>,
    ) -> Result<(), OutboundError> {
        reject_allow_all(entries)?;
        for entry in entries {
            let entry = entry.as_ref();
            let template = Template::parse(entry)?;
            if template.is_literal() {
                AllowedHost::parse(entry)?;
            } else if let Ok(resolved) = template.render(|name| default_of(name).ok_or(())) {
                parse_resolved(&template, &resolved)?;
            }
        }
        Ok(())
    }

    /// Replaces each `*.spin.internal` entry by one `<id>.spin.internal` entry per component
    /// id (same scheme and port), as Spin does.
    pub fn expand_service_chaining(self, component_ids: &[&str]) -> Self {
        let mut entries = Vec::with_capacity(self.entries.len());
        for entry in self.entries {
            if matches!(&entry.host, HostRule::AnySubdomain(s) if s == CHAINING_SUFFIX) {
                for id in component_ids {
                    let mut one = entry.clone();
                    // Spin builds the domain without normalising it (no lower-casing).
                    one.host =
                        HostRule::Literal(url::Host::Domain(format!("{id}{CHAINING_SUFFIX}")));
                    entries.push(one);
                }
            } else {
                entries.push(entry);
            }
        }
        Self { entries }
    }

    /// A component's allowed hosts as Spin computes them when the component runs: templates
    /// resolved with the application variables, resolutions to `""`, `"http://"` or
    /// `"https://"` skipped, `*.spin.internal` expanded to the app's component ids.
    ///
    /// An error here (e.g. a template naming an undefined variable, which Spin does not catch
    /// at start-up) makes Spin refuse every outbound request of that component, logging the
    /// error; the host should do the same. An unknown component id gives an empty list.
    pub fn for_component(
        manifest: &Manifest,
        variables: &ResolvedVariables,
        component_id: &str,
    ) -> Result<AllowedHosts, OutboundError> {
        let Some(component) = manifest.component(component_id) else {
            return Ok(AllowedHosts::default());
        };
        let lookup = |name: &str| {
            variables.value(name).map(str::to_owned).ok_or_else(|| {
                OutboundError::Template(TemplateError::UnknownVariable(name.to_owned()))
            })
        };
        AllowedHosts::resolve(
            &component.allowed_outbound_hosts,
            lookup,
            &manifest.component_ids(),
        )
    }

    /// The parsed entries.
    pub fn entries(&self) -> &[AllowedHost] {
        &self.entries
    }

    /// Does any entry allow `scheme://host[:port]`? `host` is a URL host (`[::1]` for IPv6);
    /// `None` means the scheme's well-known port.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        self.entries.iter().any(|e| e.allows(scheme, host, port))
    }

    /// Is a request to this URL allowed? As in Spin, a URL that does not parse with a host is
    /// retried as `<default_scheme>://<url>` (e.g. `"example.com:443"` or a socket address
    /// with `"tcp"`), userinfo is tolerated, and an unparseable URL is refused. Use `"https"`
    /// for HTTP requests.
    pub fn allows_url(&self, url: &str, default_scheme: &str) -> bool {
        match parse_outbound_url(url, default_scheme) {
            Some((scheme, host, port)) => self.allows(&scheme, &host, port),
            None => false,
        }
    }

    /// Is an outbound HTTP request to this (absolute) URI allowed? This is Spin's check of
    /// `uri.to_string()` with default scheme `https`. Self requests (see
    /// [`is_self_request`]) must be checked with [`Self::allows_self_requests`] instead.
    pub fn allows_uri(&self, uri: &http::Uri) -> bool {
        self.allows_url(&uri.to_string(), "https")
    }

    /// Are relative requests with any of these schemes allowed (host `*`, `self` or
    /// `self.alt`, port ignored)?
    pub fn allows_relative(&self, schemes: &[&str]) -> bool {
        self.entries.iter().any(|e| {
            schemes.iter().any(|s| e.scheme_allows(s))
                && matches!(e.host, HostRule::Any | HostRule::ToSelf)
        })
    }

    /// Are self requests (outbound HTTP with no authority, or to `self.alt`) allowed? Spin
    /// checks them with schemes `http` and `https`.
    pub fn allows_self_requests(&self) -> bool {
        self.allows_relative(&["http", "https"])
    }

    /// Is service chaining to `component_id` (a request to
    /// `http://<component_id>.spin.internal`) allowed?
    pub fn allows_service_chaining(&self, component_id: &str) -> bool {
        self.allows("http", &format!("{component_id}{CHAINING_SUFFIX}"), None)
    }
}

/// If `host` (an authority's host, optionally with `:port`) is `<id>.spin.internal`, returns
/// `<id>` (Spin's `parse_service_chaining_target`: the id is everything before the first
/// dot, and the rest must be exactly `spin.internal`).
pub fn service_chaining_target(host: &str) -> Option<&str> {
    let host = host.trim();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let (first, rest) = host.split_once('.')?;
    (rest == &CHAINING_SUFFIX[1..]).then_some(first)
}

/// Is an outbound HTTP request to this URI a self request? (No authority, or host
/// `self.alt`; an empty host counts as no authority.)
pub fn is_self_request(uri: &http::Uri) -> bool {
    match uri.authority() {
        Some(a) => a.host() == "self.alt" || a.host().is_empty(),
        None => true,
    }
}

fn reject_allow_all<S: AsRef<str>>(entries: &[S]) -> Result<(), OutboundError> {
    if entries.len() == 1 && entries[0].as_ref() == "insecure:allow-all" {
        return Err(OutboundError::AllowAll);
    }
    Ok(())
}

fn parse_resolved(
    template: &Template,
    resolved: &str,
) -> Result<Option<AllowedHost>, OutboundError> {
    if resolved.is_empty() || resolved == "http://" || resolved == "https://" {
        return Ok(None);
    }
    AllowedHost::parse(resolved)
        .map(Some)
        .map_err(|e| OutboundError::InvalidResolved {
            template: template.to_string(),
            resolved: resolved.to_owned(),
            source: Box::new(e),
        })
}

/// `(scheme, host, port)` of an outbound URL, as Spin's `OutboundUrl::parse` sees it.
fn parse_outbound_url(url: &str, default_scheme: &str) -> Option<(String, String, Option<u16>)> {
    let encoded = encode_userinfo(url);
    let parsed = match url::Url::parse(&encoded) {
        Ok(u) if u.has_host() => u,
        _ => url::Url::parse(&format!("{default_scheme}://{encoded}")).ok()?,
    };
    let host = parsed.host_str()?.to_owned();
    Some((parsed.scheme().to_owned(), host, parsed.port()))
}

/// Percent-encodes the userinfo (everything before an `@` that comes before the path), so
/// passwords containing `#`, `/` or `:` do not break URL parsing.
fn encode_userinfo(url: &str) -> String {
    let Some(at) = url.find('@') else {
        return url.to_owned();
    };
    let start = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[start..].find('/').map_or(usize::MAX, |i| i + start);
    if at >= path_start || at < start {
        return url.to_owned();
    }
    let mut out = String::with_capacity(url.len() + 8);
    out.push_str(&url[..start]);
    for b in url[start..at].bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push_str(&url[at..]);
    out
}
