//! The application on real Spin, as users run it (`spin up` with the repository's `spin.toml`):
//! registration, credentials, publishing (with its dedupe), delivery to a subscriber, the tick
//! and an external bus (Pub/Sub pull), on Spin's default SQLite store and on Redis through a
//! runtime config file; and the minimal reproduction of Spin 4.0.2's Redis compare-and-swap
//! defect that eventplane works around.
//! Spin is found on `SPIN_BIN` or `PATH`, Redis on `REDIS_SERVER` or `PATH`; where one is
//! absent these tests are skipped, saying so on stderr.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eventplane_tests::bench::{ADMIN, Served, counting_subscriber, graphql, register_shop};
use eventplane_tests::pubsub::{FakePubSub, binary_cloudevent};
use eventplane_tests::redis::RedisServer;
use eventplane_tests::spin::{SpinApp, spin_binary};
use eventplane_tests::{TempManifest, workspace_root};
use serde_json::json as j;

use crate::e2e_test;

e2e_test! {
    async fn publishing_and_delivery_work_on_real_spin() -> anyhow::Result<()> {
        let Some(spin) = spin() else {
            return Ok(());
        };
        every_flow(&spin, &[]).await
    }
}

e2e_test! {
    async fn every_flow_works_on_real_spin_with_redis() -> anyhow::Result<()> {
        let Some((spin, redis)) = spin_and_redis()? else {
            return Ok(());
        };
        // The runtime config users deploy with, pointed at this test's Redis.
        let shipped = std::fs::read_to_string(workspace_root().join("deploy/runtime-config.redis.toml"))?;
        anyhow::ensure!(shipped.contains("redis://127.0.0.1:6379"), "{shipped}");
        let config_dir = tempfile::tempdir()?;
        let config = config_dir.path().join("runtime-config.toml");
        std::fs::write(&config, shipped.replace("redis://127.0.0.1:6379", &redis.url()))?;
        let config = config.to_string_lossy();
        every_flow(&spin, &["--runtime-config-file", &config]).await
    }
}

e2e_test! {
    async fn spin_4_0_2s_redis_store_reports_a_swap_that_wrote_as_failed() -> anyhow::Result<()> {
        let Some((spin, redis)) = spin_and_redis()? else {
            return Ok(());
        };
        let manifest = TempManifest::new(
            "spin_manifest_version = 2\n[application]\nname = \"swap\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"storeops\"\n\
             [component.storeops]\nsource = \"{storeops}\"\nkey_value_stores = [\"default\"]\n",
        )?;
        let sqlite = swap_report(&spin, &manifest, &[]).await?;
        assert_eq!(sqlite, "swap=ok holds=new", "Spin's SQLite store swaps correctly");
        let config = redis.runtime_config(manifest.dir.path())?;
        let config = config.to_string_lossy();
        let on_redis = swap_report(&spin, &manifest, &["--runtime-config-file", &config]).await?;
        // The swap wrote, and said it failed. Should a later Spin fix it, this says so (and the
        // README's known issue can go).
        assert_eq!(on_redis, "swap=cas-failed holds=new", "Spin's Redis store");
        Ok(())
    }
}

/// The `spin` binary; `None` (skipped, saying so) where there is none.
fn spin() -> Option<PathBuf> {
    let spin = spin_binary();
    if spin.is_none() {
        eprintln!("skipped: no spin on SPIN_BIN or PATH");
    }
    spin
}

/// The `spin` binary and a Redis of the test's own; `None` (skipped, saying so) without either.
fn spin_and_redis() -> anyhow::Result<Option<(PathBuf, RedisServer)>> {
    let Some(spin) = spin() else {
        return Ok(None);
    };
    Ok(RedisServer::start()?.map(|redis| (spin, redis)))
}

/// What the storeops component's `POST /swap` answers on `spin up` with `args`.
async fn swap_report(
    spin: &Path,
    manifest: &TempManifest,
    args: &[&str],
) -> anyhow::Result<String> {
    let state = tempfile::tempdir()?;
    let app = SpinApp::start_with(spin, &manifest.path(), state.path(), &[], args).await?;
    let answer = reqwest::Client::new().post(app.url("/swap")).send().await?;
    let status = answer.status();
    let text = answer.text().await?.trim().to_owned();
    anyhow::ensure!(status == 200, "{status} {text}: {}", app.log_text());
    app.stop().await?;
    Ok(text)
}

/// Registration, credentials, publishing with its dedupe and validation, delivery by the
/// hand-off, the tick, and an external bus (Pub/Sub pull), on `spin up` of the repository's
/// `spin.toml` with `args`.
async fn every_flow(spin: &Path, args: &[&str]) -> anyhow::Result<()> {
    let state = tempfile::tempdir()?;
    let (subscriber, arrivals) = counting_subscriber().await?;
    let app = SpinApp::start_with(
        spin,
        &workspace_root().join("spin.toml"),
        state.path(),
        &[
            ("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN),
            ("SPIN_VARIABLE_DELIVERY_ALLOWED_HOSTS", "http://127.0.0.1:*"),
            ("SPIN_VARIABLE_WEBHOOK_ALLOWED_HOSTS", "http://127.0.0.1:*"),
        ],
        args,
    )
    .await?;
    let http = reqwest::Client::new();
    let token = register_shop(&http, &app as &dyn Served, &subscriber.url("/in")).await?;

    let event = j!({"specversion": "1.0", "id": "spin-1", "source": "/applications/bench-shop",
            "type": "order.created.v1", "data": {"orderId": "o-1"}});
    for duplicate in [false, true] {
        let answer = http
            .post(app.url("/events/publish"))
            .bearer_auth(&token)
            .header("content-type", "application/cloudevents+json")
            .body(event.to_string())
            .send()
            .await?;
        assert_eq!(answer.status(), 202, "{}", app.log_text());
        // One piece with a known length: no chunked framing (eventplane_spin::send_response).
        let length = answer.headers().get("content-length").cloned();
        let body = answer.bytes().await?;
        assert_eq!(
            length.as_ref().and_then(|l| l.to_str().ok()),
            Some(body.len().to_string().as_str())
        );
        let body: serde_json::Value = serde_json::from_slice(&body)?;
        assert_eq!(body["duplicate"], duplicate, "{body}");
    }
    let bad = http
        .post(app.url("/events/publish"))
        .bearer_auth(&token)
        .header("content-type", "application/cloudevents+json")
        .body(
            j!({"specversion": "1.0", "id": "spin-2", "source": "/applications/bench-shop",
                "type": "order.created.v1", "data": {"orderId": 7}})
            .to_string(),
        )
        .send()
        .await?;
    assert_eq!(bad.status(), 422);

    let deadline = Instant::now() + Duration::from_secs(30);
    while !arrivals.lock().expect("lock").contains_key("spin-1") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrived = arrivals
        .lock()
        .expect("lock")
        .get("spin-1")
        .map(|(_, n)| *n);
    assert_eq!(arrived, Some(1), "delivered once: {}", app.log_text());
    // The scheduler's tick (retention, retries, pulls) runs too, and finds nothing more to do.
    let ticked = http
        .post(app.url("/dispatcher/tick?budgetMs=2000"))
        .bearer_auth(ADMIN)
        .send()
        .await?;
    assert_eq!(ticked.status(), 200, "{}", app.log_text());
    let counts: serde_json::Value = ticked.json().await?;
    assert_eq!(counts["attempts"], 0, "{counts}");

    // The external bus: an event API of the shop that consumes a Pub/Sub subscription (a fake
    // bus on a loopback port); the tick pulls, stores, acknowledges and delivers.
    let topic = "projects/shop-project/topics/orders";
    let bus = FakePubSub::start("shop-project", "eventplane-orders", topic).await?;
    let apps = graphql(
        &http,
        &app as &dyn Served,
        "{ applications { data { id name } } }",
        j!({}),
    )
    .await?;
    let app_id = apps["applications"]["data"][0]["id"].clone();
    let spec = j!({"asyncapi": "2.6.0", "info": {"title": "Shop bus", "version": "1.0.0"},
        "channels": {"order.created.v1": {"subscribe": {"message": {"payload": {"type": "object"}}}}}});
    graphql(
        &http,
        &app as &dyn Served,
        "mutation($app: ID!, $in: EventAPIDefinitionInput!) { addEventAPI(applicationID: $app, in: $in) { id } }",
        j!({"app": app_id, "in": {"name": "orders-bus", "externalSubscriptions": [{"url": bus.subscription_url(), "topic": topic}],
            "spec": {"data": spec.to_string(), "eventSpecType": "ASYNC_API", "format": "JSON"}}}),
    )
    .await?;
    let message = bus.publish(binary_cloudevent(
        "bus-1",
        "/applications/bench-shop",
        "order.created.v1",
        j!({"orderId": "b-1"}),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !arrivals.lock().expect("lock").contains_key("bus-1") && Instant::now() < deadline {
        let ticked = http
            .post(app.url("/dispatcher/tick?budgetMs=2000"))
            .bearer_auth(ADMIN)
            .send()
            .await?;
        assert_eq!(ticked.status(), 200, "{}", app.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let arrived = arrivals.lock().expect("lock").get("bus-1").map(|(_, n)| *n);
    assert_eq!(
        arrived,
        Some(1),
        "pulled and delivered once: {}",
        app.log_text()
    );
    assert!(
        bus.acknowledged().contains(&message),
        "acknowledged after it was stored"
    );
    app.stop().await
}
