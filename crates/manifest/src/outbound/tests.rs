use super::*;

fn hosts(entries: &[&str]) -> Result<AllowedHosts, OutboundError> {
    AllowedHosts::parse(entries)
}

#[test]
fn allowed_hosts_match_spin_rules() -> Result<(), OutboundError> {
    // (entries, url, allowed?) — URLs are checked with default scheme "https", as outbound
    // HTTP does; socket addresses use their own scheme.
    let cases: &[(&[&str], &str, bool)] = &[
        // Default ports.
        (&["http://example.com"], "http://example.com", true),
        (
            &["http://example.com"],
            "http://example.com:80/path?q",
            true,
        ),
        (&["http://example.com"], "http://example.com:8080", false),
        (&["http://example.com"], "https://example.com", false),
        (&["https://example.com"], "https://example.com:443/x", true),
        (&["https://example.com"], "example.com", true),
        (&["https://example.com"], "http://example.com:443", false),
        (&["https://example.com:443"], "https://example.com", true),
        (
            &["http://example.com:8080"],
            "http://example.com:8080/",
            true,
        ),
        (&["http://example.com/"], "http://example.com", true),
        // Host names are case-insensitive; schemes compare exactly.
        (&["https://EXAMPLE.com"], "https://example.COM", true),
        (&["HTTPS://example.com:443"], "https://example.com", false),
        // Any scheme / host / port.
        (&["*://*:*"], "http://anything.at.all:1234", true),
        (&["*://*:*"], "redis://127.0.0.1", true),
        (&["*://example.com:*"], "ftp://example.com:21", true),
        (&["https://*"], "https://anything.example", true),
        (&["https://*"], "https://anything.example:444", false),
        (&["http://*:*"], "https://x.com", false),
        // Subdomain wildcards match subdomains only.
        (&["https://*.example.com"], "https://a.example.com", true),
        (
            &["https://*.example.com"],
            "https://a.b.example.com/x",
            true,
        ),
        (&["https://*.example.com"], "https://example.com", false),
        (&["https://*.example.com"], "https://myexample.com", false),
        (&["http://*.Example.COM"], "http://foo.example.com", true),
        (
            &["http://*.example2.com:8383"],
            "http://a.example2.com",
            false,
        ),
        // Port ranges exclude their end.
        (
            &["http://localhost:8000..8002"],
            "http://localhost:8000",
            true,
        ),
        (
            &["http://localhost:8000..8002"],
            "http://localhost:8001",
            true,
        ),
        (
            &["http://localhost:8000..8002"],
            "http://localhost:8002",
            false,
        ),
        // Other well-known ports.
        (&["redis://cache.local"], "redis://cache.local:6379", true),
        (&["postgres://db"], "postgres://db", true),
        (&["mysql://db"], "mysql://user:pa#ss@db", true),
        (&["mqtt://broker"], "mqtt://broker:1883", true),
        // IP literals and networks.
        (&["http://127.0.0.1:3000"], "http://127.0.0.1:3000", true),
        (&["http://[::1]"], "http://[::1]/x", true),
        (&["http://[::1]"], "http://[::2]", false),
        (&["*://10.0.0.0/8:*"], "tcp://10.1.2.3:99", true),
        (&["*://127.0.0.1/24:63551"], "tcp://127.0.0.9:63551", true),
        (&["*://127.0.0.1/24:63551"], "tcp://127.0.1.1:63551", false),
        (&["http://2001:db8::/32"], "http://[2001:db8:abcd::1]", true),
        (&["http://2001:db8::/32"], "http://[2001:db9::1]", false),
        // Sockets are checked as `tcp://addr` / `udp://addr`.
        (&["tcp://127.0.0.1:5000"], "127.0.0.1:5000", false),
        // `self` does not allow absolute URLs.
        (&["http://self"], "http://localhost", false),
        // Nothing allowed by default; garbage URLs are refused.
        (&[], "https://example.com", false),
        (&["*://*:*"], "exa mple.com", false),
        // Like Spin, an unparseable URL is retried with the default scheme in front.
        (&["https://http"], "http://[::1", true),
    ];
    for (entries, url, expected) in cases {
        let allowed = hosts(entries)?;
        assert_eq!(
            allowed.allows_url(url, "https"),
            *expected,
            "{entries:?} vs {url}"
        );
    }
    let uri: http::Uri = "https://api.example.com/v1?x=1".parse().unwrap();
    assert!(hosts(&["https://api.example.com"])?.allows_uri(&uri));
    assert!(!hosts(&["http://api.example.com"])?.allows_uri(&uri));
    let tcp = hosts(&["tcp://127.0.0.1:5000"])?;
    assert!(tcp.allows_url("127.0.0.1:5000", "tcp"));
    assert!(!tcp.allows_url("127.0.0.1:5001", "tcp"));
    Ok(())
}

#[test]
fn spin_refuses_these_entries() {
    for bad in [
        "*",
        "",
        "example.com",
        "example.com:8080",
        "http://example.com/path",
        "http://example.com:8080/p",
        "http://*.example.com/p",
        "http://example.com//",
        "http://example.com:notaport",
        "http://example.com:99999",
        "http://example.com:8080..70000",
        "http://*.example.com:8080..",
        "http://*.*.example.com",
        "http://exa*mple.com",
        "http://*.",
        "http://*.127.0.0.1",
        "http://*.[::1]",
        "http://example%.com",
        "http://exa[mple.com",
        "http://example.com:80:90",
        "http://[::1]/foo",
        "http://[::1",
        "http://{a,b}.com",
        "{http,https}://a.com",
        "ht-tp://a.com",
        "*://example.com",
        "custom://example.com",
        "http://example.com:{80,443}",
    ] {
        assert!(
            AllowedHost::parse(bad).is_err(),
            "{bad:?} should be refused"
        );
    }
    assert_eq!(
        AllowedHost::parse("http://example.com:99999")
            .unwrap_err()
            .to_string(),
        "Invalid allowed host port \"99999\": port \"99999\" is not a number"
    );
    assert!(
        AllowedHost::parse("example.com")
            .unwrap_err()
            .to_string()
            .contains("does not contain a scheme")
    );
}

#[test]
fn spin_accepts_these_entries() -> Result<(), OutboundError> {
    for good in [
        "http://example.com",
        " https://example.com/ ",
        "*://*:*",
        "http://self",
        "https://self.alt:*",
        "http://[::1]:8000..9000",
        "http://ff00::/8",
        "http://2001:db8::/32:443",
        "mqtt://broker:*",
        "postgres://db:5432",
        "http://ex%61mple.com",
        "http://xn--caf-dma.com",
    ] {
        AllowedHost::parse(good)?;
    }
    Ok(())
}

#[test]
fn insecure_allow_all_is_refused() {
    assert_eq!(hosts(&["insecure:allow-all"]), Err(OutboundError::AllowAll));
    // With other entries it is simply not a valid entry.
    assert!(matches!(
        hosts(&["insecure:allow-all", "https://a.com"]),
        Err(OutboundError::NoScheme(_))
    ));
}

#[test]
fn self_requests_need_self_or_any_host_with_http_scheme() -> Result<(), OutboundError> {
    for (entries, expected) in [
        (&["http://self"][..], true),
        (&["https://self.alt"][..], true),
        (&["*://self:*"][..], true),
        (&["http://*:*"][..], true),
        (&["*://*:*"][..], true),
        (&["http://self:8080"][..], true),
        (&["redis://self:1"][..], false),
        (&["http://localhost:3000"][..], false),
        (&["https://*.example.com"][..], false),
        (&[][..], false),
    ] {
        assert_eq!(
            hosts(entries)?.allows_self_requests(),
            expected,
            "{entries:?}"
        );
    }
    let to = |s: &str| s.parse::<http::Uri>().unwrap();
    assert!(is_self_request(&to("/local/path")));
    assert!(is_self_request(&to("http://self.alt/x")));
    assert!(!is_self_request(&to("http://self/x")));
    assert!(!is_self_request(&to("https://example.com/")));
    Ok(())
}

#[test]
fn service_chaining_follows_spin() -> Result<(), OutboundError> {
    let ids = ["first", "second"];
    let wildcard = AllowedHosts::parse(&["http://*.spin.internal"])?.expand_service_chaining(&ids);
    assert_eq!(wildcard.entries().len(), 2);
    assert!(wildcard.allows_service_chaining("first"));
    assert!(wildcard.allows_service_chaining("second"));
    assert!(!wildcard.allows_service_chaining("third"));
    assert!(!wildcard.allows_url("https://first.spin.internal", "https"));

    let one = AllowedHosts::parse(&["http://first.spin.internal"])?;
    assert!(one.entries()[0].is_for_service_chaining());
    assert!(one.allows_service_chaining("first"));
    assert!(!one.allows_service_chaining("second"));

    let any = AllowedHosts::parse(&["*://*:*"])?.expand_service_chaining(&ids);
    assert!(any.allows_service_chaining("anything"));

    assert_eq!(
        service_chaining_target("backend.spin.internal"),
        Some("backend")
    );
    assert_eq!(
        service_chaining_target("backend.spin.internal:80"),
        Some("backend")
    );
    assert_eq!(service_chaining_target("a.b.spin.internal"), None);
    assert_eq!(service_chaining_target("spin.internal"), None);
    assert_eq!(service_chaining_target("example.com"), None);
    Ok(())
}

#[test]
fn templated_entries_resolve_and_empty_ones_are_skipped() -> Result<(), OutboundError> {
    let values = |name: &str| -> Result<String, OutboundError> {
        Ok(match name {
            "host" => "api.example.com",
            "port" => "8443",
            _ => "",
        }
        .to_owned())
    };
    let entries = [
        "https://{{ host }}:{{ port }}",
        "https://{{ empty }}",
        "{{ empty }}",
        "http://{{empty}}",
        "http://*.spin.internal",
    ];
    let resolved = AllowedHosts::resolve(&entries, values, &["a"])?;
    assert_eq!(resolved.entries().len(), 2);
    assert!(resolved.allows_url("https://api.example.com:8443/", "https"));
    assert!(!resolved.allows_url("https://api.example.com/", "https"));
    assert!(resolved.allows_service_chaining("a"));

    // One template gives one entry: a value listing several hosts is not split (here it
    // becomes the single, odd but valid, host "a.com,b.com").
    let several = |_: &str| -> Result<String, OutboundError> { Ok("a.com,b.com".to_owned()) };
    let one = AllowedHosts::resolve(&["https://{{ hosts }}"], several, &[])?;
    assert_eq!(one.entries().len(), 1);
    assert!(!one.allows_url("https://a.com", "https"));
    let spaced = |_: &str| -> Result<String, OutboundError> { Ok("a.com b.com".to_owned()) };
    let err = AllowedHosts::resolve(&["https://{{ hosts }}"], spaced, &[]).unwrap_err();
    assert!(
        matches!(err, OutboundError::InvalidResolved { .. }),
        "{err}"
    );
    Ok(())
}

#[test]
fn validation_uses_defaults_only_when_available() {
    let defaults = |name: &str| match name {
        "good" => Some("example.com".to_owned()),
        "bad" => Some("zoinks, Scooby!".to_owned()),
        _ => None,
    };
    assert!(AllowedHosts::validate(&["http://{{ good }}"], defaults).is_ok());
    assert!(AllowedHosts::validate(&["http://{{ required_or_unknown }}"], defaults).is_ok());
    let err = AllowedHosts::validate(&["http://{{ bad }}"], defaults).unwrap_err();
    assert!(
        err.to_string().contains("template \"http://{{ bad }}\""),
        "{err}"
    );
    assert!(AllowedHosts::validate(&["http://{{ unterminated"], defaults).is_err());
    assert!(AllowedHosts::validate(&["nope"], defaults).is_err());
}
