//! A tiny method + path router shared by all components.
//!
//! The routing decision ([`Router::resolve`]) is a pure function of (method, path), so the
//! 404/405 behaviour is unit-tested natively. What a route leads to is up to the component: `H`
//! is usually an enum of its endpoints, or [`std::convert::Infallible`] while it has none.

use eventplane_core::Error;
use spin_sdk::http::Method;

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Must equal the path segment.
    Literal(String),
    /// Matches any non-empty path segment and captures it under this name.
    Param(String),
}

/// A parsed route pattern: `/literal/{param}` with an optional trailing `/...` that matches any
/// rest of the path (including nothing), like Spin's wildcard routes.
#[derive(Debug, Clone)]
struct Pattern {
    segments: Vec<Segment>,
    wildcard: bool,
}

impl Pattern {
    fn parse(pattern: &str) -> Self {
        let Some(body) = pattern.strip_prefix('/') else {
            panic!("route pattern {pattern:?} must start with `/`");
        };
        let mut parts: Vec<&str> = body.split('/').collect();
        let wildcard = parts.last() == Some(&"...");
        if wildcard {
            parts.pop();
        }
        let segments = parts
            .into_iter()
            .map(|part| match part.strip_prefix('{') {
                Some(rest) => {
                    let name = rest
                        .strip_suffix('}')
                        .filter(|name| !name.is_empty() && !name.contains(['{', '}', '/']));
                    let Some(name) = name else {
                        panic!("route pattern {pattern:?} has a malformed parameter {part:?}");
                    };
                    Segment::Param(name.to_owned())
                }
                None if part.contains(['{', '}']) || part == "..." => {
                    panic!("route pattern {pattern:?}: {part:?} is not a valid segment");
                }
                None => Segment::Literal(part.to_owned()),
            })
            .collect();
        Self { segments, wildcard }
    }

    /// The captured parameters if `path` matches.
    fn matches(&self, path: &str) -> Option<Params> {
        let body = path.strip_prefix('/')?;
        let mut parts = body.split('/');
        let mut params = Params::default();
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(_) if part.is_empty() => return None,
                Segment::Param(name) => params.values.push((name.clone(), part.to_owned())),
            }
        }
        let rest: Vec<&str> = parts.collect();
        if self.wildcard {
            params.rest = Some(rest.join("/"));
        } else if !rest.is_empty() {
            return None;
        }
        Some(params)
    }
}

/// Values captured from the path: `{name}` segments and the `/...` rest. Raw, as they appear in
/// the path (not percent-decoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    values: Vec<(String, String)>,
    rest: Option<String>,
}

impl Params {
    /// The segment captured by `{name}`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// What a trailing `/...` matched, without its leading `/` (`""` if nothing).
    pub fn rest(&self) -> Option<&str> {
        self.rest.as_deref()
    }
}

/// A route that matched: the handler and what the path captured.
#[derive(Debug)]
pub struct Matched<'a, H> {
    /// The handler of the first route matching both method and path.
    pub handler: &'a H,
    /// Parameters captured from the path.
    pub params: Params,
}

#[derive(Debug)]
struct Route<H> {
    methods: Vec<Method>,
    pattern: Pattern,
    handler: H,
}

/// A route table: (method set, path pattern) → handler, tried in order.
#[derive(Debug)]
pub struct Router<H> {
    routes: Vec<Route<H>>,
}

impl<H> Default for Router<H> {
    fn default() -> Self {
        Self { routes: Vec::new() }
    }
}

impl<H> Router<H> {
    /// Resolves an incoming request by its method and path (the query is ignored): the matched
    /// route, or the JSON 404/405 response to send back. The body is not read.
    pub fn resolve_request(
        &self,
        request: &spin_sdk::http::IncomingRequest,
    ) -> Result<Matched<'_, H>, spin_sdk::http::Response> {
        let path_with_query = request.path_with_query().unwrap_or_default();
        self.resolve(&request.method(), path_of(&path_with_query))
            .map_err(|err| crate::error_response(&err))
    }

    /// An empty table: every path is a 404.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route for `methods` on `pattern` (`/apps/{app}/events`, `/events/...`).
    ///
    /// # Panics
    /// If `pattern` is malformed (does not start with `/`, has an unclosed or empty `{}`, or a
    /// `...` that is not the last segment): route tables are fixed code, so this is a bug.
    pub fn route(mut self, methods: &[Method], pattern: &str, handler: H) -> Self {
        self.routes.push(Route {
            methods: methods.to_vec(),
            pattern: Pattern::parse(pattern),
            handler,
        });
        self
    }

    /// Decides what a request goes to: the first route matching method and path; otherwise a
    /// 405 [`Error::MethodNotAllowed`] listing the methods of the routes matching the path;
    /// otherwise a 404 [`Error::NotFound`] naming method and path.
    pub fn resolve(&self, method: &Method, path: &str) -> Result<Matched<'_, H>, Error> {
        let mut allowed: Vec<String> = Vec::new();
        for route in &self.routes {
            let Some(params) = route.pattern.matches(path) else {
                continue;
            };
            if route.methods.contains(method) {
                return Ok(Matched {
                    handler: &route.handler,
                    params,
                });
            }
            for method in &route.methods {
                let method = method.to_string();
                if !allowed.contains(&method) {
                    allowed.push(method);
                }
            }
        }
        if allowed.is_empty() {
            Err(Error::not_found(format!("no route for {method} {path}")))
        } else {
            Err(Error::method_not_allowed(method.to_string(), path, allowed))
        }
    }
}

/// The path of a `path?query` string (what `IncomingRequest::path_with_query` returns).
pub fn path_of(path_with_query: &str) -> &str {
    path_with_query
        .split_once('?')
        .map_or(path_with_query, |(path, _)| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Endpoint {
        Graphql,
        GetApp,
        DeleteApp,
        Events,
        Root,
    }

    fn table() -> Router<Endpoint> {
        Router::new()
            .route(&[Method::Get, Method::Post], "/graphql", Endpoint::Graphql)
            .route(&[Method::Get], "/apps/{app}", Endpoint::GetApp)
            .route(&[Method::Delete], "/apps/{app}", Endpoint::DeleteApp)
            .route(&[Method::Post], "/events/...", Endpoint::Events)
            .route(&[Method::Get], "/", Endpoint::Root)
    }

    fn resolve(method: Method, path: &str) -> Result<(Endpoint, Params), Error> {
        let table = table();
        let matched = table.resolve(&method, path)?;
        Ok((*matched.handler, matched.params))
    }

    #[test]
    fn exact_routes_match_their_methods() -> Result<(), Error> {
        assert_eq!(resolve(Method::Get, "/graphql")?.0, Endpoint::Graphql);
        assert_eq!(resolve(Method::Post, "/graphql")?.0, Endpoint::Graphql);
        assert_eq!(resolve(Method::Get, "/")?.0, Endpoint::Root);
        Ok(())
    }

    #[test]
    fn parameters_are_captured_and_method_picks_among_routes() -> Result<(), Error> {
        let (endpoint, params) = resolve(Method::Get, "/apps/app_1")?;
        assert_eq!(
            (endpoint, params.get("app")),
            (Endpoint::GetApp, Some("app_1"))
        );
        let (endpoint, params) = resolve(Method::Delete, "/apps/app_2")?;
        assert_eq!(
            (endpoint, params.get("app")),
            (Endpoint::DeleteApp, Some("app_2"))
        );
        assert_eq!(params.get("other"), None);
        Ok(())
    }

    #[test]
    fn wildcard_matches_any_rest_including_nothing() -> Result<(), Error> {
        for (path, rest) in [
            ("/events", ""),
            ("/events/", ""),
            ("/events/shop", "shop"),
            ("/events/shop/v1/events", "shop/v1/events"),
        ] {
            let (endpoint, params) = resolve(Method::Post, path)?;
            assert_eq!(
                (endpoint, params.rest()),
                (Endpoint::Events, Some(rest)),
                "{path}"
            );
        }
        assert_eq!(resolve(Method::Post, "/eventsx").unwrap_err().status(), 404);
        Ok(())
    }

    #[test]
    fn unknown_path_is_a_404_naming_method_and_path() {
        for (method, path) in [
            (Method::Get, "/nope"),
            (Method::Get, "/graphql/x"),
            (Method::Get, "/apps"),
            (Method::Get, "/apps/"),
            (Method::Get, "/apps/a/b"),
            (Method::Get, ""),
            (Method::Get, "graphql"),
        ] {
            let err = resolve(method, path).unwrap_err();
            assert_eq!((err.status(), err.code()), (404, "NOT_FOUND"), "{path}");
            assert_eq!(err.public_message(), format!("no route for GET {path}"));
        }
    }

    #[test]
    fn known_path_with_wrong_method_is_a_405_with_allow() {
        let err = resolve(Method::Put, "/apps/app_1").unwrap_err();
        assert_eq!((err.status(), err.code()), (405, "METHOD_NOT_ALLOWED"));
        assert_eq!(err.headers(), vec![("allow", "GET, DELETE".to_owned())]);

        let err = resolve(Method::Other("PURGE".into()), "/graphql").unwrap_err();
        assert_eq!(err.status(), 405);
        assert_eq!(err.headers(), vec![("allow", "GET, POST".to_owned())]);
        assert!(
            err.public_message()
                .starts_with("method PURGE is not allowed on /graphql")
        );
    }

    #[test]
    fn empty_table_answers_404_to_everything() {
        let table: Router<std::convert::Infallible> = Router::new();
        for method in [Method::Get, Method::Post, Method::Delete] {
            let err = table.resolve(&method, "/graphql").unwrap_err();
            assert_eq!(err.code(), "NOT_FOUND");
        }
    }

    #[test]
    fn first_matching_route_wins() -> Result<(), Error> {
        let table =
            Router::new()
                .route(&[Method::Get], "/a/{x}", 1)
                .route(&[Method::Get], "/a/b", 2);
        assert_eq!(*table.resolve(&Method::Get, "/a/b")?.handler, 1);
        Ok(())
    }

    #[test]
    #[should_panic(expected = "must start with")]
    fn patterns_must_be_absolute() {
        let _ = Router::new().route(&[Method::Get], "graphql", ());
    }

    #[test]
    #[should_panic(expected = "malformed parameter")]
    fn parameters_must_be_closed() {
        let _ = Router::new().route(&[Method::Get], "/apps/{app", ());
    }

    #[test]
    #[should_panic(expected = "not a valid segment")]
    fn wildcard_must_be_last() {
        let _ = Router::new().route(&[Method::Get], "/a/.../b", ());
    }

    #[test]
    fn query_is_not_part_of_the_path() {
        assert_eq!(path_of("/graphql?query=x"), "/graphql");
        assert_eq!(path_of("/graphql"), "/graphql");
        assert_eq!(path_of("/a?b?c"), "/a");
    }
}
