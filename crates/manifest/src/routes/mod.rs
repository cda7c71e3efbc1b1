//! HTTP routing with Spin's rules (Spin's `spin-http-routes` crate and the HTTP trigger).
//!
//! - A route is prefixed with `/` if it lacks one, and one trailing `/` is dropped; it is
//!   then joined to the base (Spin always uses base `/`), so `/`, `foo/` and `/foo` become
//!   `""`, `/foo`, `/foo`.
//! - `/...` at the end is a trailing wildcard that also matches the bare prefix (`/api/...`
//!   matches `/api`, `/api/`, `/api/x`, not `/apix`); a trailing `/*` works the same way.
//! - `:name` matches one path segment and is passed as `spin-path-match-<name>`.
//! - Exact routes beat wildcards; longer literal prefixes beat shorter ones; see
//!   [`pattern`] for the full precedence, copied from the `routefinder` crate Spin uses.
//! - Paths match with their leading and trailing slashes ignored: `/foo` matches `/foo/`.
//! - Two triggers with the same route *as written* are duplicates: Spin logs an error and the
//!   LAST one wins. Routes that differ only in spelling (`/foo` and `/foo/`) are not detected
//!   as duplicates: both are kept and the FIRST one wins.
//! - `route = { private = true }` is never routed; the component stays reachable through
//!   service chaining ([`RouteMatch::synthetic`]).
//! - Requests under `/.well-known/spin/` are answered by the runtime before routing:
//!   [`well_known`].

pub mod pattern;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use pattern::{OrderKey, Pattern};

use crate::manifest::{HttpRoute, Manifest};

/// The path prefix the Spin runtime reserves.
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// A route Spin refuses when it builds its router.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// A route that is not a valid pattern.
    #[error("Error parsing route {route} associated with component {component}: {reason}")]
    InvalidRoute {
        /// The route, joined to the base.
        route: String,
        /// The component it routes to.
        component: String,
        /// Why it is refused.
        reason: String,
    },
}

/// What the runtime serves under [`WELL_KNOWN_PREFIX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WellKnown {
    /// `/.well-known/spin/health`: `200` with body `OK`.
    Health,
    /// `/.well-known/spin/info`: `200`, `content-type: application/json`, body
    /// [`Manifest::app_info_json`].
    Info,
    /// Anything else under the prefix: `404`.
    NotFound,
}

/// Classifies a request path (`uri.path()`) under `/.well-known/spin/`; `None` means route
/// it normally.
pub fn well_known(path: &str) -> Option<WellKnown> {
    Some(match path.strip_prefix(WELL_KNOWN_PREFIX)? {
        "health" => WellKnown::Health,
        "info" => WellKnown::Info,
        _ => WellKnown::NotFound,
    })
}

#[derive(Debug, Clone)]
struct Entry {
    component_id: String,
    raw_route: String,
    based_route: String,
    pattern: Pattern,
}

/// The HTTP router.
#[derive(Debug, Clone, Default)]
pub struct Router {
    /// Routable entries, in the order they are tried.
    entries: Vec<Entry>,
}

/// A successful routing: the component and the values of the routing-dependent `spin-*`
/// request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The component that handles the request.
    pub component_id: String,
    /// The route joined to the base, as Spin stores it (`spin-matched-route`). For the root
    /// route `/` this is the empty string.
    pub matched_route: String,
    /// The route as written in the manifest (`spin-raw-component-route`).
    pub raw_route: String,
    /// The route as written, without a trailing `/...` (`spin-component-route`).
    pub component_route: String,
    /// `spin-base-path`: always `/`.
    pub base_path: String,
    /// The part of the path matched by the trailing wildcard (`spin-path-info`): `""` for an
    /// exact route and for the bare prefix, else starting with `/`, keeping a trailing `/`.
    pub path_info: String,
    /// `:name` captures, in route order (`spin-path-match-<name>`).
    pub params: Vec<(String, String)>,
}

impl Router {
    /// Builds the router from `(route, component id)` pairs in manifest order. `base` is
    /// the application base; Spin always passes `/`. Returns the router and the warnings Spin
    /// would log (duplicate routes, reserved routes).
    pub fn build(
        routes: &[(HttpRoute, String)],
        base: &str,
    ) -> Result<(Router, Vec<String>), RouteError> {
        struct Pending<'a> {
            raw_route: &'a str,
            based_route: String,
            component_id: &'a str,
        }
        // Insertion-ordered, keyed by the route as written; a duplicate replaces the value
        // but keeps the first position (an `IndexMap` in Spin).
        let mut pending: Vec<Pending> = Vec::new();
        let mut duplicates = Vec::new();
        for (route, component_id) in routes {
            let HttpRoute::Path(raw_route) = route else {
                continue;
            };
            let based_route = join_base(base, raw_route);
            match pending.iter_mut().find(|p| p.raw_route == raw_route) {
                Some(existing) => {
                    let route = if existing.based_route.is_empty() {
                        "/"
                    } else {
                        &existing.based_route
                    };
                    duplicates.push(format!(
                        "  {}: {route} (duplicate of {component_id})",
                        existing.component_id
                    ));
                    existing.based_route = based_route;
                    existing.component_id = component_id;
                }
                None => pending.push(Pending {
                    raw_route,
                    based_route,
                    component_id,
                }),
            }
        }

        let mut ordered: BTreeMap<OrderKey, Entry> = BTreeMap::new();
        for p in pending {
            let spec = match p.based_route.strip_suffix("/...") {
                Some(prefix) => format!("{prefix}/*"),
                None => p.based_route.clone(),
            };
            let pattern = Pattern::parse(&spec).map_err(|reason| RouteError::InvalidRoute {
                route: p.based_route.clone(),
                component: p.component_id.to_owned(),
                reason,
            })?;
            let entry = Entry {
                component_id: p.component_id.to_owned(),
                raw_route: p.raw_route.to_owned(),
                based_route: p.based_route,
                pattern: pattern.clone(),
            };
            ordered.insert(OrderKey(pattern), entry);
        }
        let entries: Vec<Entry> = ordered.into_values().collect();

        let mut warnings = Vec::new();
        if !duplicates.is_empty() {
            warnings.push(
                "The following component routes are duplicates and will never be used:".to_owned(),
            );
            warnings.extend(duplicates);
        }
        if entries
            .iter()
            .any(|e| e.based_route.starts_with(WELL_KNOWN_PREFIX))
        {
            warnings.push(format!(
                "Routes under {WELL_KNOWN_PREFIX} are handled by the Spin runtime and will never be reached"
            ));
        }
        Ok((Router { entries }, warnings))
    }

    /// Builds the router for a manifest's HTTP triggers, with base `/` as Spin does.
    pub fn from_manifest(manifest: &Manifest) -> Result<(Router, Vec<String>), RouteError> {
        Self::build(&manifest.http_routes(), "/")
    }

    /// Routes a request path (`uri.path()`, without the query). `None` means `404`.
    /// (Check [`well_known`] first, as Spin does.)
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        self.entries.iter().find_map(|e| {
            let captures = e.pattern.matches(path)?;
            let path_info = match captures.wildcard {
                None => String::new(),
                Some(w) => match (w.is_empty(), path.ends_with('/')) {
                    (true, false) => String::new(),
                    (true, true) => "/".to_owned(),
                    (false, false) => format!("/{w}"),
                    (false, true) => format!("/{w}/"),
                },
            };
            // Spin collects the captures in a map: for a repeated name the last value wins.
            let mut params: Vec<(String, String)> = Vec::new();
            for (name, value) in captures.params {
                params.retain(|(n, _)| *n != name);
                params.push((name, value));
            }
            Some(RouteMatch {
                component_id: e.component_id.clone(),
                matched_route: e.based_route.clone(),
                raw_route: e.raw_route.clone(),
                component_route: strip_wildcard(&e.raw_route).to_owned(),
                base_path: "/".to_owned(),
                path_info,
                params,
            })
        })
    }

    /// The routable routes in the order they are tried: `(route joined to base, component)`.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (e.based_route.as_str(), e.component_id.as_str()))
    }
}

impl RouteMatch {
    /// The match Spin synthesises for a service-chaining request to `component_id`
    /// (`http://<id>.spin.internal/<path>`): as if routed by `/...`, with the whole path as
    /// path info (`spin-component-route` is then empty).
    pub fn synthetic(component_id: &str, path: &str) -> Self {
        Self {
            component_id: component_id.to_owned(),
            matched_route: "/...".to_owned(),
            raw_route: "/...".to_owned(),
            component_route: String::new(),
            base_path: "/".to_owned(),
            path_info: path.to_owned(),
            params: Vec::new(),
        }
    }

    /// The `spin-*` headers Spin adds to the request, in Spin's order, with lower-case names:
    /// `spin-path-info`, `spin-full-url`, `spin-matched-route`, `spin-base-path`,
    /// `spin-raw-component-route`, `spin-component-route`, `spin-client-addr`, then one
    /// `spin-path-match-<name>` per parameter (name lower-cased, `_` → `-`).
    ///
    /// Spin appends these after the client's headers (a client-sent `spin-*` header is kept
    /// alongside) and silently drops any whose name or value is not a valid header.
    pub fn spin_headers(&self, full_url: &str, client_addr: SocketAddr) -> Vec<(String, String)> {
        let mut headers = vec![
            ("spin-path-info".to_owned(), self.path_info.clone()),
            ("spin-full-url".to_owned(), full_url.to_owned()),
            ("spin-matched-route".to_owned(), self.matched_route.clone()),
            ("spin-base-path".to_owned(), self.base_path.clone()),
            (
                "spin-raw-component-route".to_owned(),
                self.raw_route.clone(),
            ),
            (
                "spin-component-route".to_owned(),
                self.component_route.clone(),
            ),
            ("spin-client-addr".to_owned(), client_addr.to_string()),
        ];
        for (name, value) in &self.params {
            let name = format!("spin-path-match-{name}")
                .replace('_', "-")
                .to_ascii_lowercase();
            headers.push((name, value.clone()));
        }
        headers
    }
}

/// `spin-full-url` as Spin builds it: `<scheme>://<host><path and query>`, where the scheme
/// is the server's (`http` or `https`; `http` if unknown) and the host is the request's
/// `Host` header, or `localhost` without one (e.g. service-chained requests, whose `Host`
/// header Spin removes).
pub fn full_url(scheme: Option<&str>, host_header: Option<&str>, path_and_query: &str) -> String {
    format!(
        "{}://{}{path_and_query}",
        scheme.unwrap_or("http"),
        host_header.unwrap_or("localhost")
    )
}

fn strip_wildcard(route: &str) -> &str {
    route.strip_suffix("/...").unwrap_or(route)
}

/// `base` and `route` each lose one trailing `/`; `route` gains a leading `/` if missing.
fn join_base(base: &str, route: &str) -> String {
    let route = if route.starts_with('/') {
        route.to_owned()
    } else {
        format!("/{route}")
    };
    let base = base.strip_suffix('/').unwrap_or(base);
    let route = route.strip_suffix('/').unwrap_or(&route);
    format!("{base}{route}")
}
