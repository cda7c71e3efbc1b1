//! Delivery outcomes through the real application, each against a real subscriber (or none):
//! a timeout, a refused connection, `429` with `Retry-After`, `410`, a host restart between
//! attempts, two concurrent ticks, and a slow subscriber next to publishing.

use std::time::{Duration, Instant};

use eventplane_tests::{Reply, TestServer};
use serde_json::{Value, json as j};

use super::Api;
use super::delivery::{ENV, HANDOFF_ENV, call, subscription, tick, tick_app};
use crate::e2e_test;
use crate::gateway::{Client, Shop, order};
use crate::registry::Registry;

/// The attempts of the only event delivered to subscription `id`.
async fn attempts(shop: &Shop, id: &str) -> anyhow::Result<Vec<Value>> {
    let (status, page) = call(shop, reqwest::Method::GET, &format!("/{id}/attempts"), None).await?;
    anyhow::ensure!(status == 200, "attempts answered {status}: {page}");
    Ok(page["data"].as_array().cloned().unwrap_or_default())
}

fn id(view: &Value) -> String {
    view["id"].as_str().unwrap_or_default().to_owned()
}

e2e_test! {
    async fn a_timeout_and_a_refused_connection_are_retried() -> anyhow::Result<()> {
        let slow = TestServer::start_with(|_| Reply::new(200, "late").after(Duration::from_secs(3))).await?;
        // A port nobody listens on: bound, then closed.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let shop = Shop::start_with(ENV).await?;
        let subs = Api::new(&shop.r.app);
        let timing_out = id(&subs.create(&subscription(&slow.url("/in"), j!({"timeout": "PT0.5S"}))).await?);
        let refused = id(&subs
            .create(&subscription(&format!("http://127.0.0.1:{closed}/in"), j!({}))).await?);
        shop.client().structured(&order("o-t")).await?.expect(202, "publish")?;
        let started = Instant::now();
        let counts = tick(&shop).await?;
        assert_eq!(counts["retried"], 2, "{counts}");
        assert!(started.elapsed() < Duration::from_secs(3), "the timeout cut the wait short");
        let timed_out = attempts(&shop, &timing_out).await?;
        assert_eq!(timed_out[0]["errorClass"], "timeout", "{timed_out:?}");
        assert!(timed_out[0]["responseStatus"].is_null());
        assert!(timed_out[0]["nextAttemptAt"].is_string());
        let refusals = attempts(&shop, &refused).await?;
        assert_eq!(refusals[0]["errorClass"], "connection", "{refusals:?}");
        shop.stop().await
    }
}

e2e_test! {
    async fn retry_after_is_honoured_and_410_pauses_the_subscription() -> anyhow::Result<()> {
        let limited = TestServer::start_with({
            let calls = std::sync::atomic::AtomicUsize::new(0);
            move |_| {
                if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    Reply::new(429, "slow down").header("retry-after", "2")
                } else {
                    Reply::new(200, "ok")
                }
            }
        })
        .await?;
        let gone = TestServer::start(410, "gone").await?;
        let shop = Shop::start_with(ENV).await?;
        let subs = Api::new(&shop.r.app);
        let delivery = j!({"backoffDelay": "PT0.1S"});
        subs.create(&subscription(&limited.url("/in"), delivery)).await?;
        let paused = id(&subs.create(&subscription(&gone.url("/in"), j!({}))).await?);
        shop.client().structured(&order("o-r")).await?.expect(202, "publish")?;
        let first = Instant::now();
        tick(&shop).await?;
        // Not before Retry-After, although the backoff alone would allow it.
        while limited.received().len() < 2 && first.elapsed() < Duration::from_secs(8) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            tick(&shop).await?;
        }
        assert_eq!(limited.received().len(), 2);
        assert!(first.elapsed() >= Duration::from_secs(2), "{:?}", first.elapsed());
        // 410: a dead letter, and the subscription paused with the reason.
        let (_, view) = call(&shop, reqwest::Method::GET, &format!("/{paused}"), None).await?;
        assert_eq!(view["status"], "paused", "{view}");
        assert!(view["pausedReason"].as_str().is_some_and(|r| r.contains("410")), "{view}");
        assert_eq!(gone.received().len(), 1);
        shop.stop().await
    }
}

e2e_test! {
    async fn a_host_restart_between_attempts_loses_nothing() -> anyhow::Result<()> {
        let flaky = TestServer::start_with({
            let calls = std::sync::atomic::AtomicUsize::new(0);
            move |_| {
                if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    Reply::new(503, "down")
                } else {
                    Reply::new(200, "up")
                }
            }
        })
        .await?;
        let state = tempfile::tempdir()?;
        let shop = Shop::start_in(state.path(), ENV).await?;
        let subs = Api::new(&shop.r.app);
        subs.create(&subscription(&flaky.url("/in"), j!({"backoffDelay": "PT0.5S"}))).await?;
        let token = shop.token.clone();
        shop.client().structured(&order("o-1")).await?.expect(202, "publish")?;
        assert_eq!(tick(&shop).await?["retried"], 1);
        // An event accepted but not yet taken by any tick when the host stops.
        shop.client().structured(&order("o-2")).await?.expect(202, "publish")?;
        shop.stop().await?;
        tokio::time::sleep(Duration::from_millis(600)).await;

        let r = Registry::start_in(state.path(), ENV).await?;
        let counts = tick_app(&r.app).await?;
        assert_eq!((counts["events"].as_u64(), counts["succeeded"].as_u64()), (Some(1), Some(2)), "{counts}");
        let ids: Vec<String> = flaky
            .received()
            .iter()
            .filter_map(|request| request.header("ce-id").map(str::to_owned))
            .collect();
        assert_eq!(ids, ["o-1", "o-1", "o-2"]);
        // The token of before the restart still publishes.
        Client::new(&r.app).token(&token).structured(&order("o-3")).await?.expect(202, "publish")?;
        r.stop().await
    }
}

e2e_test! {
    async fn two_concurrent_ticks_deliver_each_event_once() -> anyhow::Result<()> {
        let subscriber = TestServer::start_with(|_| Reply::new(200, "").after(Duration::from_millis(20))).await?;
        let shop = Shop::start_with(ENV).await?;
        Api::new(&shop.r.app).create(&subscription(&subscriber.url("/in"), j!({}))).await?;
        for i in 0..30 {
            shop.client().structured(&order(&format!("o-{i}"))).await?.expect(202, "publish")?;
        }
        let (a, b) = tokio::join!(tick(&shop), tick(&shop));
        let succeeded = a?["succeeded"].as_u64().unwrap_or(0) + b?["succeeded"].as_u64().unwrap_or(0);
        // Whatever one tick left (its budget), one more finishes.
        let rest = tick(&shop).await?["succeeded"].as_u64().unwrap_or(0);
        let mut ids: Vec<String> = subscriber
            .received()
            .iter()
            .filter_map(|request| request.header("ce-id").map(str::to_owned))
            .collect();
        assert_eq!(ids.len(), 30, "{ids:?}");
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 30, "an event was sent twice");
        assert_eq!(succeeded + rest, 30);
        shop.stop().await
    }
}

e2e_test! {
    async fn a_slow_subscriber_does_not_slow_publishing() -> anyhow::Result<()> {
        let slow = TestServer::start_with(|_| Reply::new(200, "").after(Duration::from_secs(2))).await?;
        // With the hand-off on: every publish below also starts a delivery to the slow sink.
        let shop = Shop::start_with(HANDOFF_ENV).await?;
        Api::new(&shop.r.app).create(&subscription(&slow.url("/in"), j!({}))).await?;
        shop.client().structured(&order("o-0")).await?.expect(202, "publish")?;
        // A tick is busy with the slow subscriber while the shop keeps publishing.
        let busy = tick(&shop);
        let publishing = async {
            let mut took = Vec::new();
            tokio::time::sleep(Duration::from_millis(200)).await;
            for i in 1..=10 {
                let started = Instant::now();
                shop.client().structured(&order(&format!("o-{i}"))).await?.expect(202, "publish")?;
                took.push(started.elapsed());
            }
            anyhow::Ok(took)
        };
        let (busy, took) = tokio::join!(busy, publishing);
        busy?;
        let mut took = took?;
        took.sort();
        let median = took[took.len() / 2];
        assert!(median < Duration::from_millis(500), "median publish took {median:?}");
        shop.stop().await
    }
}

e2e_test! {
    async fn exhausted_retries_end_in_the_dead_letter_sink() -> anyhow::Result<()> {
        let down = TestServer::start(503, "down").await?;
        let dead_letters = TestServer::start(200, "").await?;
        let shop = Shop::start_with(ENV).await?;
        let subs = Api::new(&shop.r.app);
        let delivery = j!({"retry": 1, "backoffDelay": "PT0.2S",
                           "deadLetterSink": {"url": dead_letters.url("/dlq")}});
        let sub = id(&subs.create(&subscription(&down.url("/in"), delivery)).await?);
        shop.client().structured(&order("o-x")).await?.expect(202, "publish")?;
        let started = Instant::now();
        while dead_letters.received().is_empty() && started.elapsed() < Duration::from_secs(8) {
            tick(&shop).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(down.received().len(), 2, "the first attempt and one retry");
        let dlq = dead_letters.received();
        assert_eq!(dlq.len(), 1);
        assert_eq!(dlq[0].header("ce-id"), Some("o-x"));
        assert_eq!(dlq[0].header("ce-deliveryattempts"), Some("2"));
        assert!(dlq[0].header("ce-deadletterreason").is_some_and(|r| r.contains("gave%20up")));
        let (_, page) = call(&shop, reqwest::Method::GET, &format!("/{sub}/dead-letters"), None).await?;
        assert_eq!(page["data"][0]["attempts"], 2, "{page}");
        shop.stop().await
    }
}

e2e_test! {
    async fn filters_choose_the_subscribers() -> anyhow::Result<()> {
        let shop = Shop::start_with(ENV).await?;
        let subs = Api::new(&shop.r.app);
        let mut servers = Vec::new();
        let filters = [
            ("exact", j!({"types": ["order.cancelled.v1"]})),
            ("prefix", j!({"typePrefix": "order."})),
            ("suffix", j!({"typeSuffix": ".created.v1"})),
            ("source", j!({"source": "/applications/erp"})),
            ("attribute", j!({"application": "shop", "attributes": {"region": "eu"}})),
        ];
        for (name, filter) in &filters {
            let server = TestServer::start(200, "").await?;
            subs.create(&j!({"name": name, "sink": {"url": server.url("/in")}, "filter": filter}))
                .await?;
            servers.push((*name, server));
        }
        let mut created = order("c-1");
        created["region"] = j!("eu");
        shop.client().structured(&created).await?.expect(202, "publish")?;
        let cancelled = crate::gateway::cloud_event("x-1", "order.cancelled.v1", j!({"orderId": "x-1"}));
        shop.client().structured(&cancelled).await?.expect(202, "publish")?;
        tick(&shop).await?;
        let got = |name: &str| -> Vec<String> {
            servers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| {
                    let mut ids: Vec<String> = s
                        .received()
                        .iter()
                        .filter_map(|r| r.header("ce-id").map(str::to_owned))
                        .collect();
                    ids.sort();
                    ids
                })
                .unwrap_or_default()
        };
        assert_eq!(got("exact"), ["x-1"]);
        assert_eq!(got("prefix"), ["c-1", "x-1"]);
        assert_eq!(got("suffix"), ["c-1"]);
        assert!(got("source").is_empty());
        assert_eq!(got("attribute"), ["c-1"]);
        shop.stop().await
    }
}
