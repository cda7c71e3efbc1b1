//! The application on real Spin, as users run it (`spin up` with the repository's `spin.toml`
//! and Spin's default SQLite store): registration, publishing (with its dedupe), and delivery
//! to a subscriber. Spin is found on `SPIN_BIN` or `PATH`; where it is absent these tests are
//! skipped, saying so on stderr (the test command never needs it).

use std::time::{Duration, Instant};

use eventplane_tests::bench::{ADMIN, Served, counting_subscriber, register_shop};
use eventplane_tests::spin::{SpinApp, spin_binary};
use eventplane_tests::workspace_root;
use serde_json::json as j;

use crate::e2e_test;

e2e_test! {
    async fn publishing_and_delivery_work_on_real_spin() -> anyhow::Result<()> {
        let Some(spin) = spin_binary() else {
            eprintln!("skipped: no spin on SPIN_BIN or PATH");
            return Ok(());
        };
        let state = tempfile::tempdir()?;
        let (subscriber, arrivals) = counting_subscriber().await?;
        let app = SpinApp::start(
            &spin,
            &workspace_root().join("spin.toml"),
            state.path(),
            &[
                ("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN),
                ("SPIN_VARIABLE_DELIVERY_ALLOWED_HOSTS", "http://127.0.0.1:*"),
            ],
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
            .body(j!({"specversion": "1.0", "id": "spin-2", "source": "/applications/bench-shop",
                "type": "order.created.v1", "data": {"orderId": 7}}).to_string())
            .send()
            .await?;
        assert_eq!(bad.status(), 422);

        let deadline = Instant::now() + Duration::from_secs(30);
        while !arrivals.lock().expect("lock").contains_key("spin-1") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let arrived = arrivals.lock().expect("lock").get("spin-1").map(|(_, n)| *n);
        assert_eq!(arrived, Some(1), "delivered once: {}", app.log_text());
        app.stop().await
    }
}
