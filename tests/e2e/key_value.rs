//! Key-value stores: Spin's SQLite file, durability across restarts, atomic compare-and-swap
//! under concurrency, and the `key_value_stores` allow-list.

use eventplane_tests::{TempManifest, TestApp, json};

use crate::e2e_test;

const PROBE_APP: &str = r#"
spin_manifest_version = 2

[application]
name = "kv-probe"

[[trigger.http]]
route = "/nokv/..."
component = "nokv"

[[trigger.http]]
route = "/..."
component = "probe"

[component.probe]
source = "{probe}"
key_value_stores = ["default"]

[component.nokv]
source = "{probe}"
"#;

e2e_test! {
    async fn key_value_data_survives_a_host_restart() -> anyhow::Result<()> {
        let m = TempManifest::new(PROBE_APP)?;
        let client = reqwest::Client::new();
        let app = TestApp::builder(&m.path()).start().await?;
        let put = client.put(app.url("/_probe/kv/default/greeting")).body("hello").send().await?;
        assert_eq!(put.status(), 204);
        app.stop().await?;

        assert!(
            m.dir.path().join(".spin").join(eventplane_host::DB_FILE_NAME).exists(),
            "the store lives where Spin keeps it: .spin/sqlite_key_value.db beside spin.toml"
        );

        let app = TestApp::builder(&m.path()).start().await?;
        let get = client.get(app.url("/_probe/kv/default/greeting")).send().await?;
        assert_eq!(get.status(), 200);
        assert_eq!(get.text().await?, "hello");
        // The same data is visible through wasi:keyvalue.
        let get = client.get(app.url("/_probe/wkv/default/greeting")).send().await?;
        assert_eq!(get.text().await?, "hello");
        app.stop().await
    }
}

e2e_test! {
    async fn eight_clients_times_100_cas_increments_end_at_800() -> anyhow::Result<()> {
        let m = TempManifest::new(PROBE_APP)?;
        let app = TestApp::builder(&m.path()).start().await?;
        let mut clients = Vec::new();
        for _ in 0..8 {
            let url = app.url("/_probe/cas-incr/default/counter");
            clients.push(tokio::spawn(async move {
                // One client (one connection) each: the eight run truly in parallel.
                let client = reqwest::Client::new();
                let mut retries = 0u64;
                for _ in 0..100 {
                    let (status, body) = json(client.post(&url).send().await?).await?;
                    anyhow::ensure!(status == 200, "cas-incr answered {status}: {body}");
                    retries += body["retries"].as_u64().unwrap_or(0);
                }
                Ok::<_, anyhow::Error>(retries)
            }));
        }
        let mut retries = 0;
        for client in clients {
            retries += client.await??;
        }
        let value = reqwest::get(app.url("/_probe/kv/default/counter")).await?.text().await?;
        assert_eq!(value, "800", "no increment may be lost ({retries} CAS retries happened)");
        app.stop().await
    }
}

e2e_test! {
    async fn concurrent_atomic_increments_are_not_lost() -> anyhow::Result<()> {
        let m = TempManifest::new(PROBE_APP)?;
        let app = TestApp::builder(&m.path()).start().await?;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let url = app.url("/_probe/incr/default/hits?delta=1");
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                for _ in 0..50 {
                    let (status, body) = json(client.post(&url).send().await?).await?;
                    anyhow::ensure!(status == 200, "incr answered {status}: {body}");
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        let (_, body) = json(reqwest::Client::new().post(app.url("/_probe/incr/default/hits?delta=0")).send().await?).await?;
        assert_eq!(body["value"], 400);
        app.stop().await
    }
}

e2e_test! {
    async fn a_component_cannot_open_a_store_it_was_not_granted() -> anyhow::Result<()> {
        let m = TempManifest::new(PROBE_APP)?;
        let app = TestApp::builder(&m.path()).start().await?;
        let client = reqwest::Client::new();
        for path in [
            "/nokv/_probe/kv/default/k",
            "/nokv/_probe/wkv/default/k",
            "/_probe/kv/other/k",
            "/_probe/wkv/other/k",
        ] {
            let (status, body) = json(client.get(app.url(path)).send().await?).await?;
            assert_eq!(status, 409, "{path}: {body}");
            assert_eq!(body["kv_error"], "access-denied", "{path}");
        }
        app.stop().await
    }
}

e2e_test! {
    async fn a_store_label_spin_does_not_define_stops_start_up() -> anyhow::Result<()> {
        let m = TempManifest::new(&PROBE_APP.replace(
            r#"key_value_stores = ["default"]"#,
            r#"key_value_stores = ["default", "audit"]"#,
        ))?;
        let err = TestApp::builder(&m.path()).load().await.err().ok_or_else(|| anyhow::anyhow!("should fail"))?;
        let message = format!("{err:#}");
        assert!(message.contains("audit") && message.contains("probe"), "{message}");
        Ok(())
    }
}
