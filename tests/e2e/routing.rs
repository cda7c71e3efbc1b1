//! Route precedence and the spin-* headers, as Spin routes: exact routes beat wildcards, the
//! longest wildcard prefix wins, duplicates warn and the last one wins.

use eventplane_tests::{TempManifest, TestApp, json};

use crate::e2e_test;

fn component(id: &str, route: &str) -> String {
    format!(
        r#"
[[trigger.http]]
route = "{route}"
component = "{id}"

[component.{id}]
source = "{{probe}}"
[component.{id}.variables]
id = "{id}"
"#
    )
}

fn routing_app() -> String {
    let mut toml = String::from("spin_manifest_version = 2\n[application]\nname = \"routing\"\n");
    for (id, route) in [
        ("catch-all", "/..."),
        ("api", "/api/..."),
        ("api-exact", "/api/exact"),
        ("api-deep", "/api/deep/..."),
        ("user", "/users/:id"),
        ("first", "/dup"),
    ] {
        toml.push_str(&component(id, route));
    }
    // A second trigger for the same route: Spin warns and the last one wins.
    toml.push_str("\n[[trigger.http]]\nroute = \"/dup\"\ncomponent = \"second\"\n[component.second]\nsource = \"{probe}\"\n[component.second.variables]\nid = \"second\"\n");
    toml
}

e2e_test! {
    async fn route_precedence_matches_spin() -> anyhow::Result<()> {
        let m = TempManifest::new(&routing_app())?;
        let app = TestApp::builder(&m.path()).start().await?;
        assert!(
            app.warnings.iter().any(|w| w.contains("/dup")),
            "duplicate routes must be reported: {:?}",
            app.warnings
        );
        let client = reqwest::Client::new();
        for (path, expected) in [
            ("/", "catch-all"),
            ("/anything/else", "catch-all"),
            ("/api", "api"),
            ("/api/", "api"),
            ("/api/other", "api"),
            ("/api/exact", "api-exact"),
            ("/api/exact/more", "api"),
            ("/api/deep", "api-deep"),
            ("/api/deep/x/y", "api-deep"),
            ("/apix", "catch-all"),
            ("/users/42", "user"),
            ("/dup", "second"),
        ] {
            let (status, body) = json(client.get(app.url(path)).send().await?).await?;
            assert_eq!(status, 200, "{path}: {body}");
            assert_eq!(body["id"], expected, "{path} should reach {expected}: {body}");
        }
        app.stop().await
    }
}

e2e_test! {
    async fn components_get_the_spin_headers() -> anyhow::Result<()> {
        let m = TempManifest::new(&routing_app())?;
        let app = TestApp::builder(&m.path()).start().await?;
        let (_, body) = json(reqwest::get(app.url("/api/deep/x/y?q=1")).await?).await?;
        let h = &body["headers"];
        assert_eq!(h["spin-full-url"], app.url("/api/deep/x/y?q=1"));
        assert_eq!(h["spin-path-info"], "/x/y");
        assert_eq!(h["spin-matched-route"], "/api/deep/...");
        assert_eq!(h["spin-raw-component-route"], "/api/deep/...");
        assert_eq!(h["spin-component-route"], "/api/deep");
        assert_eq!(h["spin-base-path"], "/");
        let client_addr = h["spin-client-addr"].as_str().unwrap_or("");
        assert!(client_addr.starts_with("127.0.0.1:"), "{client_addr}");

        let (_, body) = json(reqwest::get(app.url("/users/42")).await?).await?;
        assert_eq!(body["headers"]["spin-path-match-id"], "42", "{body}");
        assert_eq!(body["headers"]["spin-path-info"], "");

        // A client cannot forge the routing headers.
        let (_, body) = json(
            reqwest::Client::new()
                .get(app.url("/api/exact"))
                .header("spin-path-info", "/forged")
                .send()
                .await?,
        )
        .await?;
        assert_eq!(body["headers"]["spin-path-info"], "");
        app.stop().await
    }
}
