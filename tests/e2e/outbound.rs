//! Outbound HTTP: `allowed_outbound_hosts`, service chaining to private components, and
//! relative ("self") requests.

use eventplane_tests::{TempManifest, TestApp, TestServer, json};
use serde_json::json as j;

use crate::e2e_test;

async fn fetch(app: &TestApp, via: &str, url: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let response = reqwest::Client::new()
        .post(app.url(&format!("{via}/_probe/fetch")))
        .json(&j!({ "url": url, "method": "GET" }))
        .send()
        .await?;
    json(response).await
}

e2e_test! {
    async fn only_allowed_outbound_hosts_are_reachable() -> anyhow::Result<()> {
        let allowed = TestServer::start(200, "from upstream").await?;
        let other = TestServer::start(200, "should never be reached").await?;
        let m = TempManifest::new(&format!(
            r#"
spin_manifest_version = 2
[application]
name = "outbound"
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "{{probe}}"
allowed_outbound_hosts = ["http://127.0.0.1:{}"]
"#,
            allowed.addr().port()
        ))?;
        let app = TestApp::builder(&m.path()).start().await?;

        let (status, body) = fetch(&app, "", &allowed.url("/hello?x=1")).await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], 200);
        assert_eq!(body["body"], "from upstream");
        assert_eq!(allowed.received().len(), 1);
        assert_eq!(allowed.received()[0].path, "/hello?x=1");

        let (status, body) = fetch(&app, "", &other.url("/")).await?;
        assert_eq!(status, 502, "{body}");
        assert!(body["send_error"].as_str().unwrap_or("").contains("HttpRequestDenied"), "{body}");
        assert!(other.received().is_empty(), "a denied request must not leave the host");

        // Another scheme or a name for the same address is a different host.
        let (status, body) = fetch(&app, "", &format!("http://localhost:{}/", allowed.addr().port())).await?;
        assert_eq!(status, 502, "{body}");
        app.stop().await
    }
}

const CHAINING_APP: &str = r#"
spin_manifest_version = 2

[application]
name = "chaining"

[[trigger.http]]
route = "/front/..."
component = "front"

[[trigger.http]]
route = "/other/..."
component = "other"

[[trigger.http]]
route = { private = true }
component = "back"

[component.front]
source = "{probe}"
allowed_outbound_hosts = ["http://back.spin.internal", "http://self"]
[component.front.variables]
id = "front"

[component.back]
source = "{probe}"
[component.back.variables]
id = "back"

[component.other]
source = "{probe}"
[component.other.variables]
id = "other"
"#;

e2e_test! {
    async fn service_chaining_reaches_a_private_component() -> anyhow::Result<()> {
        let m = TempManifest::new(CHAINING_APP)?;
        let app = TestApp::builder(&m.path()).start().await?;

        let (status, body) = fetch(&app, "/front", "http://back.spin.internal/hello").await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], 200);
        let inner: serde_json::Value = serde_json::from_str(body["body"].as_str().unwrap_or(""))?;
        assert_eq!(inner["id"], "back");
        assert_eq!(inner["path"], "/hello");
        // Spin drops the Host of a chained request, so the callee sees `localhost` in its full URL.
        assert_eq!(inner["headers"]["spin-full-url"], "http://localhost/hello");
        assert_eq!(inner["headers"]["spin-client-addr"], "0.0.0.0:0");

        // The private component has no route of its own.
        let response = reqwest::get(app.url("/back/hello")).await?;
        assert_eq!(response.status(), 404);

        // Chaining is subject to allowed_outbound_hosts like any request.
        let (status, body) = fetch(&app, "/front", "http://other.spin.internal/").await?;
        assert_eq!(status, 502, "{body}");
        assert!(body["send_error"].as_str().unwrap_or("").contains("HttpRequestDenied"), "{body}");
        let (status, body) = fetch(&app, "/other", "http://back.spin.internal/").await?;
        assert_eq!(status, 502, "{body}");
        app.stop().await
    }
}

e2e_test! {
    async fn relative_urls_are_self_requests_routed_in_process() -> anyhow::Result<()> {
        let m = TempManifest::new(CHAINING_APP)?;
        let app = TestApp::builder(&m.path()).start().await?;
        let (status, body) = fetch(&app, "/front", "/other/x").await?;
        assert_eq!(status, 200, "{body}");
        let inner: serde_json::Value = serde_json::from_str(body["body"].as_str().unwrap_or(""))?;
        assert_eq!(inner["id"], "other");
        // `other` may not make self requests: it did not list "http://self".
        let (status, body) = fetch(&app, "/other", "/front/x").await?;
        assert_eq!(status, 502, "{body}");
        app.stop().await
    }
}

e2e_test! {
    async fn allowed_outbound_hosts_can_come_from_variables() -> anyhow::Result<()> {
        let upstream = TestServer::start(200, "templated").await?;
        let m = TempManifest::new(
            r#"
spin_manifest_version = 2
[application]
name = "templated-hosts"
[variables]
upstream = { required = true }
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "{probe}"
allowed_outbound_hosts = ["{{ upstream }}"]
"#,
        )?;
        let app = TestApp::builder(&m.path())
            .env("SPIN_VARIABLE_UPSTREAM", &format!("http://127.0.0.1:{}", upstream.addr().port()))
            .start()
            .await?;
        let (status, body) = fetch(&app, "", &upstream.url("/x")).await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["body"], "templated");
        let (status, body) = fetch(&app, "", "http://127.0.0.1:1/").await?;
        assert_eq!(status, 502, "{body}");
        app.stop().await
    }
}
