//! The real application, from the repository's `spin.toml`.

use eventplane_tests::{TestApp, json, workspace_root};

use crate::e2e_test;

fn builder(state: &tempfile::TempDir) -> eventplane_tests::TestAppBuilder {
    TestApp::builder(&workspace_root().join("spin.toml"))
        .state_dir(state.path())
        .env("SPIN_VARIABLE_ADMIN_TOKEN", "test-admin-token")
}

e2e_test! {
    async fn each_public_route_reaches_its_component() -> anyhow::Result<()> {
        let state = tempfile::tempdir()?;
        let app = builder(&state).start().await?;
        let client = reqwest::Client::new();
        // The registry's GraphQL endpoint answers; without the admin token it is a 401.
        let response = client.get(app.url("/graphql")).send().await?;
        assert_eq!(response.status(), 401);
        let (_, body) = json(response).await?;
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        for (method, path) in [
            ("PUT", "/graphql"),
            ("GET", "/oauth/token"),
            ("GET", "/oauth/nope"),
            ("POST", "/events/x"),
            ("DELETE", "/subscriptions"),
            ("PATCH", "/subscriptions/sub_123"),
            ("GET", "/dispatcher/tick"),
        ] {
            let response = client
                .request(method.parse()?, app.url(path))
                .send()
                .await?;
            assert_eq!(
                response.headers().get("content-type").map(|v| v.to_str().unwrap_or("")),
                Some("application/json"),
                "{method} {path} should be answered by a component"
            );
            let (status, body) = json(response).await?;
            assert!(status == 404 || status == 405, "{method} {path}: {status} {body}");
            let code = body["error"]["code"].as_str().unwrap_or_default();
            assert!(
                code == "NOT_FOUND" || code == "METHOD_NOT_ALLOWED",
                "{method} {path}: {body}"
            );
            assert!(body["error"]["message"].as_str().is_some(), "{body}");
        }
        app.stop().await
    }
}

e2e_test! {
    async fn unrouted_paths_get_the_hosts_404_and_the_fetcher_is_private() -> anyhow::Result<()> {
        let state = tempfile::tempdir()?;
        let app = builder(&state).start().await?;
        let client = reqwest::Client::new();
        for path in ["/nope", "/fetcher", "/", "/graphql/extra", "/dispatcher/tick/more"] {
            let response = client.get(app.url(path)).send().await?;
            assert_eq!(response.status(), 404, "{path}");
            assert_eq!(response.text().await?, "", "{path}: the host's 404 has no body");
        }
        let app_routes = builder(&state).load().await?.routes();
        assert!(
            app_routes.iter().all(|(_, component)| component != "fetcher"),
            "the fetcher must have no public route: {app_routes:?}"
        );
        assert!(app_routes.iter().any(|(_, c)| c == "registry"));
        app.stop().await
    }
}

e2e_test! {
    async fn start_up_fails_without_the_admin_token() -> anyhow::Result<()> {
        let state = tempfile::tempdir()?;
        let err = TestApp::builder(&workspace_root().join("spin.toml"))
            .state_dir(state.path())
            .load()
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("loading without admin_token should fail"))?;
        assert!(format!("{err:#}").contains("admin_token"), "{err:#}");
        Ok(())
    }
}
