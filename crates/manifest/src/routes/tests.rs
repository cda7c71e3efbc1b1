use super::*;

fn router(routes: &[(&str, &str)]) -> anyhow::Result<(Router, Vec<String>)> {
    let routes: Vec<(HttpRoute, String)> = routes
        .iter()
        .map(|(route, id)| {
            let route = if *route == "private" {
                HttpRoute::Private
            } else {
                HttpRoute::Path((*route).to_owned())
            };
            (route, (*id).to_owned())
        })
        .collect();
    Ok(Router::build(&routes, "/")?)
}

#[test]
fn route_precedence_matches_spin() -> anyhow::Result<()> {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [(&'a str, Option<&'a str>)]);
    let cases: &[Case] = &[
        // Exact routes.
        (
            &[("/foo", "foo"), ("/foo/bar", "foobar")],
            &[
                ("/foo", Some("foo")),
                ("/foo/bar", Some("foobar")),
                ("/foo/baz", None),
                ("/fo", None),
                ("/foobar", None),
                ("/", None),
            ],
        ),
        // Trailing and doubled slashes are ignored on both sides.
        (
            &[("/foo/", "foo"), ("bar", "bar")],
            &[
                ("/foo", Some("foo")),
                ("/foo/", Some("foo")),
                ("//foo//", Some("foo")),
                ("/bar", Some("bar")),
                ("/bar/", Some("bar")),
            ],
        ),
        // The root wildcard matches everything, including `/`.
        (
            &[("/...", "all")],
            &[
                ("/", Some("all")),
                ("/foo/bar", Some("all")),
                ("/abc/", Some("all")),
            ],
        ),
        // Exact beats wildcard, whatever the order.
        (
            &[("/...", "wild"), ("/one", "one")],
            &[
                ("/one", Some("one")),
                ("/one/", Some("one")),
                ("/two", Some("wild")),
            ],
        ),
        (
            &[("/...", "wild"), ("/", "root")],
            &[("/", Some("root")), ("/x", Some("wild"))],
        ),
        // `/x/...` matches the bare prefix but not a longer word; the exact route wins.
        (
            &[("/api/...", "api"), ("/api", "api-exact")],
            &[
                ("/api", Some("api-exact")),
                ("/api/", Some("api-exact")),
                ("/api/x", Some("api")),
                ("/apix", None),
            ],
        ),
        (
            &[("/api/...", "api")],
            &[
                ("/api", Some("api")),
                ("/api/", Some("api")),
                ("/apix", None),
            ],
        ),
        // Longest wildcard prefix wins, in either order.
        (
            &[
                ("/one/...", "1"),
                ("/one/two/...", "12"),
                ("/one/two/three/...", "123"),
            ],
            &[
                ("/one/two/three/four", Some("123")),
                ("/one/two/three", Some("123")),
                ("/one/two/x", Some("12")),
                ("/one/twox", Some("1")),
                ("/one", Some("1")),
            ],
        ),
        (
            &[
                ("/one/two/three/...", "123"),
                ("/one/two/...", "12"),
                ("/one/...", "1"),
            ],
            &[
                ("/one/two/three/four", Some("123")),
                ("/one/two", Some("12")),
            ],
        ),
        // Literal beats parameter beats wildcard.
        (
            &[
                ("/users/...", "any"),
                ("/users/:id", "one"),
                ("/users/me", "me"),
            ],
            &[
                ("/users/me", Some("me")),
                ("/users/42", Some("one")),
                ("/users/42/posts", Some("any")),
                ("/users", Some("any")),
            ],
        ),
        // A parameter needs a non-empty segment.
        (
            &[("/users/:id", "one")],
            &[("/users", None), ("/users/", None)],
        ),
        // Dots: `/:name.json` is more specific than `/:name`.
        (
            &[("/:name", "plain"), ("/:name.json", "json")],
            &[("/data.json", Some("json")), ("/data", Some("plain"))],
        ),
        (
            &[("/...", "wild"), ("/index.html", "index")],
            &[
                ("/index.html", Some("index")),
                ("/indexxhtml", Some("wild")),
            ],
        ),
        // Duplicates of the same written route: the last one wins.
        (
            &[("/foo", "first"), ("/foo", "second")],
            &[("/foo", Some("second"))],
        ),
        // Differently written but equivalent routes are both kept: the first one wins.
        (
            &[("/foo", "first"), ("/foo/", "second"), ("foo", "third")],
            &[("/foo", Some("first"))],
        ),
        // Private routes are not routable.
        (
            &[("private", "hidden"), ("/visible", "visible")],
            &[
                ("/visible", Some("visible")),
                ("/hidden", None),
                ("/", None),
            ],
        ),
        // Routes are case-sensitive.
        (&[("/Foo", "foo")], &[("/Foo", Some("foo")), ("/foo", None)]),
    ];
    for (routes, expectations) in cases {
        let (r, _) = router(routes)?;
        for (path, expected) in *expectations {
            let got = r.route(path).map(|m| m.component_id);
            assert_eq!(
                got.as_deref(),
                *expected,
                "routes {routes:?}, path {path:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn duplicate_routes_warn_like_spin_and_last_wins() -> anyhow::Result<()> {
    let (r, warnings) = router(&[
        ("/", "first-root"),
        ("/", "second-root"),
        ("/foo", "a"),
        ("/foo", "b"),
        ("/foo", "c"),
        ("/whee/...", "w1"),
        ("/whee/...", "w2"),
    ])?;
    assert_eq!(
        warnings,
        [
            "The following component routes are duplicates and will never be used:",
            "  first-root: / (duplicate of second-root)",
            "  a: /foo (duplicate of b)",
            "  b: /foo (duplicate of c)",
            "  w1: /whee/... (duplicate of w2)",
        ]
    );
    assert_eq!(
        r.route("/foo").map(|m| m.component_id).as_deref(),
        Some("c")
    );
    assert_eq!(
        r.route("/").map(|m| m.component_id).as_deref(),
        Some("second-root")
    );
    assert_eq!(r.routes().count(), 3);
    Ok(())
}

#[test]
fn reserved_routes_are_warned_about() -> anyhow::Result<()> {
    let (_, warnings) = router(&[("/.well-known/spin/...", "c")])?;
    assert_eq!(
        warnings,
        [
            "Routes under /.well-known/spin/ are handled by the Spin runtime and will never be reached"
        ]
    );
    let (_, warnings) = router(&[("/.well-known/spindle/...", "c")])?;
    assert!(warnings.is_empty());
    assert_eq!(
        well_known("/.well-known/spin/health"),
        Some(WellKnown::Health)
    );
    assert_eq!(well_known("/.well-known/spin/info"), Some(WellKnown::Info));
    assert_eq!(
        well_known("/.well-known/spin/health/"),
        Some(WellKnown::NotFound)
    );
    assert_eq!(well_known("/.well-known/spin"), None);
    Ok(())
}

#[test]
fn path_info_keeps_trailing_slash_like_spin() -> anyhow::Result<()> {
    let (r, _) = router(&[("/test/...", "c"), ("/exact", "e")])?;
    for (path, info) in [
        ("/test", ""),
        ("/test/", "/"),
        ("/test/hello", "/hello"),
        ("/test/hello/", "/hello/"),
        ("/test/a/b/c", "/a/b/c"),
        ("/exact", ""),
    ] {
        let m = r
            .route(path)
            .ok_or_else(|| anyhow::anyhow!("{path} unrouted"))?;
        assert_eq!(m.path_info, info, "{path}");
    }
    let (r, _) = router(&[("/...", "c")])?;
    let path_info = |p: &str| r.route(p).map(|m| m.path_info);
    assert_eq!(path_info("/1/2/3").as_deref(), Some("/1/2/3"));
    assert_eq!(path_info("/").as_deref(), Some("/"));
    Ok(())
}

#[test]
fn route_match_has_spin_header_values() -> anyhow::Result<()> {
    let (r, _) = router(&[
        ("/foo/:userid/...", "dummy"),
        ("/", "root"),
        ("/x/*", "star"),
    ])?;
    let m = r
        .route("/foo/42/bar")
        .ok_or_else(|| anyhow::anyhow!("unrouted"))?;
    let addr: SocketAddr = "127.0.0.1:8777".parse()?;
    let url = full_url(
        Some("https"),
        Some("fermyon.dev"),
        "/foo/42/bar?key1=value1",
    );
    assert_eq!(
        m.spin_headers(&url, addr),
        [
            ("spin-path-info", "/bar"),
            (
                "spin-full-url",
                "https://fermyon.dev/foo/42/bar?key1=value1"
            ),
            ("spin-matched-route", "/foo/:userid/..."),
            ("spin-base-path", "/"),
            ("spin-raw-component-route", "/foo/:userid/..."),
            ("spin-component-route", "/foo/:userid"),
            ("spin-client-addr", "127.0.0.1:8777"),
            ("spin-path-match-userid", "42"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );

    // The root route's matched route is the empty string, as in Spin.
    let root = r.route("/").ok_or_else(|| anyhow::anyhow!("unrouted"))?;
    assert_eq!(root.matched_route, "");
    assert_eq!(root.raw_route, "/");
    assert_eq!(root.component_route, "/");

    // A `/*` route is a wildcard too, but only `/...` is stripped from the component route.
    let star = r.route("/x/y").ok_or_else(|| anyhow::anyhow!("unrouted"))?;
    assert_eq!(
        (star.path_info.as_str(), star.component_route.as_str()),
        ("/y", "/x/*")
    );
    Ok(())
}

#[test]
fn parameter_header_names_are_lowercase_with_dashes() -> anyhow::Result<()> {
    let (r, _) = router(&[("/:user_ID/:a/:a", "c")])?;
    let m = r
        .route("/u/1/2")
        .ok_or_else(|| anyhow::anyhow!("unrouted"))?;
    assert_eq!(
        m.params,
        [
            ("user_ID".to_owned(), "u".to_owned()),
            ("a".to_owned(), "2".to_owned())
        ]
    );
    let headers = m.spin_headers("http://localhost/u/1/2", "[::1]:9".parse()?);
    assert!(headers.contains(&("spin-path-match-user-id".to_owned(), "u".to_owned())));
    assert!(headers.contains(&("spin-client-addr".to_owned(), "[::1]:9".to_owned())));
    Ok(())
}

#[test]
fn service_chaining_match_is_synthetic_wildcard() {
    let m = RouteMatch::synthetic("backend", "/api/x");
    let headers = m.spin_headers(
        &full_url(Some("http"), None, "/api/x?q=1"),
        "0.0.0.0:0".parse().unwrap(),
    );
    assert_eq!(
        headers[0],
        ("spin-path-info".to_owned(), "/api/x".to_owned())
    );
    assert_eq!(headers[1].1, "http://localhost/api/x?q=1");
    assert_eq!(headers[2].1, "/...");
    assert_eq!(
        headers[5],
        ("spin-component-route".to_owned(), String::new())
    );
    assert_eq!(headers[6].1, "0.0.0.0:0");
}

#[test]
fn invalid_routes_are_refused_like_spin() {
    for (route, reason) in [
        ("/foo/:", "params must be named"),
        ("/foo/*rest", "it doesn't need a name"),
        ("/foo/*/bar", "wildcard must be the last segment"),
    ] {
        let err = router(&[(route, "c")]).expect_err(route);
        assert!(err.to_string().contains(reason), "{route}: {err}");
        assert!(
            err.to_string().contains("associated with component c"),
            "{err}"
        );
    }
}

#[test]
fn base_is_joined_to_routes() -> anyhow::Result<()> {
    let routes = [(HttpRoute::Path("/foo/...".into()), "c".to_owned())];
    let (r, _) = Router::build(&routes, "/base/")?;
    let m = r
        .route("/base/foo/x")
        .ok_or_else(|| anyhow::anyhow!("unrouted"))?;
    assert_eq!(m.matched_route, "/base/foo/...");
    assert_eq!(m.raw_route, "/foo/...");
    assert!(r.route("/foo/x").is_none());
    Ok(())
}

#[test]
fn patterns_split_like_routefinder() -> Result<(), String> {
    use pattern::{Pattern, Segment};
    let p = Pattern::parse("/index.html")?;
    assert_eq!(
        p.segments(),
        [
            Segment::Exact("index.".into()),
            Segment::Exact("html".into())
        ]
    );
    let p = Pattern::parse("/:name.json")?;
    assert_eq!(
        p.segments(),
        [
            Segment::Param("name".into()),
            Segment::Dot,
            Segment::Exact("json".into())
        ]
    );
    let p = Pattern::parse("//a//b/")?;
    assert_eq!(
        p.segments(),
        [
            Segment::Exact("a".into()),
            Segment::Slash,
            Segment::Exact("b".into())
        ]
    );
    assert!(Pattern::parse("")?.segments().is_empty());
    Ok(())
}
