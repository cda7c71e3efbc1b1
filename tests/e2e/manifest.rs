//! Manifests Spin refuses are refused at start-up, with a message naming the problem.

use eventplane_tests::{TempManifest, TestApp, host_logs};

use crate::e2e_test;

async fn load_error(toml: &str) -> anyhow::Result<String> {
    let m = TempManifest::new(toml)?;
    match TestApp::builder(&m.path()).load().await {
        Ok(_) => anyhow::bail!("the manifest should have been refused:\n{toml}"),
        Err(e) => Ok(format!("{e:#}")),
    }
}

const HEADER: &str = "spin_manifest_version = 2\n[application]\nname = \"refused\"\n";

e2e_test! {
    async fn a_trigger_naming_an_unknown_component_is_refused() -> anyhow::Result<()> {
        let message = load_error(&format!(
            "{HEADER}[[trigger.http]]\nroute = \"/...\"\ncomponent = \"ghost\"\n[component.probe]\nsource = \"{{probe}}\"\n"
        ))
        .await?;
        assert!(message.contains("ghost"), "{message}");
        Ok(())
    }
}

e2e_test! {
    async fn a_template_naming_an_undefined_variable_is_refused() -> anyhow::Result<()> {
        let message = load_error(&format!(
            "{HEADER}[[trigger.http]]\nroute = \"/...\"\ncomponent = \"probe\"\n[component.probe]\nsource = \"{{probe}}\"\n[component.probe.variables]\nx = \"{{{{ nowhere }}}}\"\n"
        ))
        .await?;
        assert!(message.contains("nowhere"), "{message}");
        Ok(())
    }
}

e2e_test! {
    async fn a_missing_source_file_is_refused() -> anyhow::Result<()> {
        let message = load_error(&format!(
            "{HEADER}[[trigger.http]]\nroute = \"/...\"\ncomponent = \"probe\"\n[component.probe]\nsource = \"does/not/exist.wasm\"\n"
        ))
        .await?;
        assert!(message.contains("does/not/exist.wasm"), "{message}");
        Ok(())
    }
}

e2e_test! {
    async fn a_component_importing_an_interface_the_host_lacks_traps_naming_it() -> anyhow::Result<()> {
        let m = TempManifest::new(&format!(
            "{HEADER}[[trigger.http]]\nroute = \"/...\"\ncomponent = \"probe\"\n[component.probe]\nsource = \"{{probe}}\"\n"
        ))?;
        host_logs(); // start capturing before the app runs
        let app = TestApp::builder(&m.path()).start().await?;
        // The probe imports Spin's SQLite interface, which eventplane does not implement: the
        // component still loads and serves, and only the call that needs SQLite fails.
        let response = reqwest::get(app.url("/_probe/sqlite")).await?;
        assert_eq!(response.status(), 500);
        let logs = host_logs();
        assert!(
            logs.lines().any(|l| l.contains("eventplane does not implement `") && l.contains("sqlite")),
            "the trap must name the interface: {logs}"
        );
        let response = reqwest::get(app.url("/hello")).await?;
        assert_eq!(response.status(), 200);
        app.stop().await
    }
}
