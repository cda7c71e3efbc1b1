//! Application variables: defaults, `SPIN_VARIABLE_*` overrides, component templates, and a
//! missing required variable stopping start-up.

use eventplane_tests::{TempManifest, TestApp, json};

use crate::e2e_test;

const VARS_APP: &str = r#"
spin_manifest_version = 2

[application]
name = "vars-probe"

[variables]
greeting = { default = "hello" }
target = { required = true }
api_key = { required = true, secret = true }

[[trigger.http]]
route = "/..."
component = "probe"

[component.probe]
source = "{probe}"

[component.probe.variables]
id = "probe"
message = "{{ greeting }}, {{ target }}!"
key = "{{ api_key }}"
"#;

async fn var(app: &TestApp, name: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    json(reqwest::get(app.url(&format!("/_probe/var/{name}"))).await?).await
}

e2e_test! {
    async fn variables_resolve_from_defaults_and_env_overrides() -> anyhow::Result<()> {
        let m = TempManifest::new(VARS_APP)?;
        let app = TestApp::builder(&m.path())
            .env("SPIN_VARIABLE_TARGET", "world")
            .env("SPIN_VARIABLE_API_KEY", "s3cret")
            .start()
            .await?;
        assert_eq!(var(&app, "message").await?.1["value"], "hello, world!");
        assert_eq!(var(&app, "key").await?.1["value"], "s3cret");
        app.stop().await?;

        let app = TestApp::builder(&m.path())
            .env("SPIN_VARIABLE_TARGET", "world")
            .env("SPIN_VARIABLE_API_KEY", "s3cret")
            .env("SPIN_VARIABLE_GREETING", "hi")
            .start()
            .await?;
        assert_eq!(var(&app, "message").await?.1["value"], "hi, world!");
        app.stop().await
    }
}

e2e_test! {
    async fn a_component_sees_only_its_declared_variables() -> anyhow::Result<()> {
        let m = TempManifest::new(VARS_APP)?;
        let app = TestApp::builder(&m.path())
            .env("SPIN_VARIABLE_TARGET", "world")
            .env("SPIN_VARIABLE_API_KEY", "s3cret")
            .start()
            .await?;
        // `greeting` is an application variable, but the component did not declare it.
        let (status, body) = var(&app, "greeting").await?;
        assert_eq!(status, 404);
        assert!(body["var_error"].as_str().unwrap_or("").starts_with("undefined"), "{body}");
        let (status, body) = var(&app, "Not-A-Name").await?;
        assert_eq!(status, 404);
        assert!(body["var_error"].as_str().unwrap_or("").starts_with("invalid-name"), "{body}");
        app.stop().await
    }
}

e2e_test! {
    async fn a_missing_required_variable_stops_start_up_naming_it() -> anyhow::Result<()> {
        let m = TempManifest::new(VARS_APP)?;
        let err = TestApp::builder(&m.path())
            .env("SPIN_VARIABLE_TARGET", "world")
            .load()
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("start-up should fail without api_key"))?;
        assert!(format!("{err:#}").contains("api_key"), "{err:#}");
        Ok(())
    }
}
