//! One `allowed_outbound_hosts` entry: `<scheme>://<host>[:<port>]`.
//!
//! Rules (Spin's `spin-outbound-networking-config` `AllowedHostConfig`):
//! - scheme: `*` (any) or letters only; `{a,b}` lists are refused.
//! - host: `*` (any), `self` / `self.alt` (relative requests to the app itself), `*.domain`
//!   (any subdomain, not the domain itself), an IP network in CIDR form (`10.0.0.0/8`), or a
//!   literal host parsed as a URL host (lower-cased, IDNA, IPv4 forms, `[v6]`). A single
//!   trailing `/` is tolerated; any other path is refused.
//! - port: omitted means the scheme's well-known port (http 80, https 443, postgres 5432,
//!   mysql 3306, redis 6379, mqtt 1883; any other scheme, including `*`, must give a port),
//!   `*` (any), a number, or a range `a..b` which, as in Spin, EXCLUDES `b`.

use std::net::IpAddr;

use super::OutboundError;

/// The scheme part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemeRule {
    /// `*://`
    Any,
    /// One scheme, compared exactly (case-sensitively) with the request's scheme.
    Exact(String),
}

/// The host part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    /// `*`
    Any,
    /// `*.example.com`, stored as the suffix `.example.com`.
    AnySubdomain(String),
    /// `self` or `self.alt`: relative requests to the application itself.
    ToSelf,
    /// A literal host.
    Literal(url::Host),
    /// An IP network: address with host bits cleared, and prefix length.
    Cidr(IpAddr, u8),
}

/// The port part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRule {
    /// `:*`
    Any,
    /// One port (given, or the scheme's well-known port).
    Port(u16),
    /// `start..end`, end excluded.
    Range(u16, u16),
}

/// A parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    pub(super) original: String,
    pub(super) scheme: SchemeRule,
    pub(super) host: HostRule,
    pub(super) port: PortRule,
}

/// The well-known port Spin assumes for a scheme when none is given.
pub fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    /// Parses one literal entry (no templates).
    pub fn parse(entry: &str) -> Result<Self, OutboundError> {
        let text = entry.trim();
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(match text {
                "*" | ":" | "" | "?" => OutboundError::NotAHostPattern(text.to_owned()),
                _ => OutboundError::NoScheme(text.to_owned()),
            });
        };
        let (host, port) = split_host_port(text, rest)?;
        let port_rule = parse_port(port, scheme).map_err(|reason| OutboundError::InvalidPort {
            port: port.to_owned(),
            reason,
        })?;
        let scheme_rule = parse_scheme(scheme).map_err(|reason| OutboundError::InvalidScheme {
            scheme: scheme.to_owned(),
            reason,
        })?;
        let host_rule = parse_host(host).map_err(|reason| OutboundError::InvalidHost {
            host: host.to_owned(),
            reason,
        })?;
        Ok(Self {
            original: entry.to_owned(),
            scheme: scheme_rule,
            host: host_rule,
            port: port_rule,
        })
    }

    /// The entry as written.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The scheme rule.
    pub fn scheme(&self) -> &SchemeRule {
        &self.scheme
    }

    /// The host rule.
    pub fn host(&self) -> &HostRule {
        &self.host
    }

    /// The port rule.
    pub fn port(&self) -> &PortRule {
        &self.port
    }

    /// True if this entry targets service chaining (`<id>.spin.internal` or
    /// `*.spin.internal`).
    pub fn is_for_service_chaining(&self) -> bool {
        match &self.host {
            HostRule::Literal(url::Host::Domain(d)) => d.ends_with(super::CHAINING_SUFFIX),
            HostRule::AnySubdomain(suffix) => suffix == super::CHAINING_SUFFIX,
            _ => false,
        }
    }

    pub(super) fn scheme_allows(&self, scheme: &str) -> bool {
        match &self.scheme {
            SchemeRule::Any => true,
            SchemeRule::Exact(s) => s == scheme,
        }
    }

    /// Does this entry allow a request to `scheme://host[:port]`? `host` is a URL host string
    /// (`[::1]` for IPv6); a missing port means the scheme's well-known port.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        self.scheme_allows(scheme) && self.host_allows(host) && self.port_allows(port, scheme)
    }

    fn host_allows(&self, host: &str) -> bool {
        let Ok(host) = url::Host::parse(host) else {
            return false;
        };
        match (&self.host, &host) {
            (HostRule::Any, _) => true,
            (HostRule::AnySubdomain(suffix), url::Host::Domain(d)) => d.ends_with(suffix.as_str()),
            (HostRule::Literal(literal), _) => *literal == host,
            (HostRule::Cidr(net, prefix), url::Host::Ipv4(ip)) => {
                in_network(*net, *prefix, IpAddr::V4(*ip))
            }
            (HostRule::Cidr(net, prefix), url::Host::Ipv6(ip)) => {
                in_network(*net, *prefix, IpAddr::V6(*ip))
            }
            _ => false,
        }
    }

    fn port_allows(&self, port: Option<u16>, scheme: &str) -> bool {
        let wanted = match (&self.port, port.or_else(|| well_known_port(scheme))) {
            (PortRule::Any, _) => return true,
            (_, None) => return false,
            (_, Some(p)) => p,
        };
        match self.port {
            PortRule::Port(p) => p == wanted,
            PortRule::Range(start, end) => (start..end).contains(&wanted),
            PortRule::Any => true,
        }
    }
}

/// Splits `host[:port][/]` the way Spin does: the part after the last `:` is a port only if
/// the whole remainder is not itself a valid host (so `[::1]` and `ff00::/8` stay hosts).
fn split_host_port<'a>(entry: &str, rest: &'a str) -> Result<(&'a str, &'a str), OutboundError> {
    match rest.rsplit_once(':') {
        None => Ok((rest, "")),
        Some((host, "")) => Ok((host, "")),
        Some((host, tail)) => {
            if parse_host(rest).is_ok() {
                return Ok((rest, ""));
            }
            let port = match tail.split_once('/') {
                Some((_, path)) if !path.is_empty() => {
                    return Err(OutboundError::HasPath(entry.to_owned()));
                }
                Some((port, _)) => port,
                None => tail,
            };
            Ok((host, port))
        }
    }
}

fn parse_port(port: &str, scheme: &str) -> Result<PortRule, String> {
    if port.is_empty() {
        return well_known_port(scheme).map(PortRule::Port).ok_or_else(|| {
            format!(
                "no port was provided and the scheme {scheme:?} does not have a known default port number"
            )
        });
    }
    if port == "*" {
        return Ok(PortRule::Any);
    }
    if port.starts_with('{') {
        return Err("port lists are not yet supported".to_owned());
    }
    if let Some((start, end)) = port.split_once("..") {
        let bad = || format!("port range {port:?} contains non-number");
        let start = start.parse().map_err(|_| bad())?;
        let end = end.parse().map_err(|_| bad())?;
        return Ok(PortRule::Range(start, end));
    }
    port.parse()
        .map(PortRule::Port)
        .map_err(|_| format!("port {port:?} is not a number"))
}

fn parse_scheme(scheme: &str) -> Result<SchemeRule, String> {
    if scheme == "*" {
        return Ok(SchemeRule::Any);
    }
    if scheme.starts_with('{') {
        return Err("scheme lists are not supported".to_owned());
    }
    if scheme.chars().any(|c| !c.is_alphabetic()) {
        return Err("only alphabetic characters are allowed".to_owned());
    }
    Ok(SchemeRule::Exact(scheme.to_owned()))
}

fn parse_host(host: &str) -> Result<HostRule, String> {
    let host = host.trim();
    match host {
        "*" => return Ok(HostRule::Any),
        "self" | "self.alt" => return Ok(HostRule::ToSelf),
        _ => {}
    }
    if host.starts_with('{') {
        return Err(if host.ends_with('}') {
            "host lists are not yet supported".to_owned()
        } else {
            "unterminated host list".to_owned()
        });
    }
    if let Some((net, prefix)) = parse_cidr(host) {
        return Ok(HostRule::Cidr(net, prefix));
    }
    let host = host.strip_suffix('/').unwrap_or(host);
    if host.contains('/') {
        return Err("must not include a path".to_owned());
    }
    if let Some(domain) = host.strip_prefix("*.") {
        if domain.contains('*') {
            return Err("wildcards are allowed only as prefixes".to_owned());
        }
        return match url::Host::parse(domain) {
            Ok(url::Host::Domain(d)) => Ok(HostRule::AnySubdomain(format!(".{d}"))),
            Ok(_) => Err("wildcard suffix must be a domain".to_owned()),
            Err(e) => Err(format!("invalid wildcard host \"*.{domain}\": {e}")),
        };
    }
    if host.contains('*') {
        return Err("wildcards are allowed only as subdomains".to_owned());
    }
    url::Host::parse(host)
        .map(HostRule::Literal)
        .map_err(|e| e.to_string())
}

/// `addr/prefix` with a plain IPv4 or (unbracketed) IPv6 address; host bits are cleared.
fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = text.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > bits {
        return None;
    }
    Some((mask(addr, prefix), prefix))
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & m).into())
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & m).into())
        }
    }
}

fn in_network(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    net.is_ipv4() == ip.is_ipv4() && mask(ip, prefix) == net
}
