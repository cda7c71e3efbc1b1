//! Pull → stored → acknowledged → delivered throughput of an external Pub/Sub subscription: the
//! real application (release build, the repository's `spin.toml`) in-process, a
//! [`FakePubSub`] preloaded with `MESSAGES` binary CloudEvents of about 1 KiB (valid against
//! the registered schema, unique ids), an event API consuming it with batches of `BATCH`
//! (`maxMessages`), a fast local subscriber; then `TICKERS` concurrent loops of
//! `POST /dispatcher/tick` until the subscriber has every event (or `TIMEOUT_S`).
//!
//! Reported: the total time; messages taken (pulled, stored and acknowledged) per second, from
//! the first pull to the last acknowledge as the fake saw them; deliveries per second; the time
//! of each batch from its pull to the acknowledge of its last message (p50/p90/p99/max, measured
//! in the fake); lost events (published, never delivered), duplicates (delivered more than once)
//! and redeliveries by the bus (handed out more than once).
//!
//! ```sh
//! cargo run --release -p eventplane-tests --bin bench-pull                 # 10,000 messages, 1 ticker
//! MESSAGES=2000 TICKERS=4 cargo run --release -p eventplane-tests --bin bench-pull
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use eventplane_tests::bench::{ADMIN, counting_subscriber, graphql, percentile};
use eventplane_tests::pubsub::{FakePubSub, RequestKind, binary_cloudevent};
use eventplane_tests::{TestApp, workspace_root};
use serde_json::json;

const APPLICATION: &str = "bench-shop";
const SOURCE: &str = "/applications/bench-shop";

/// The allocator the `eventplane` binary uses, so that the in-process host runs as it does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An environment variable parsed, or `default`.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .map_err(|err| anyhow::anyhow!("{name}={text:?}: {err}")),
        Err(_) => Ok(default),
    }
}

/// Registers [`APPLICATION`] with one event type, consumed from `bus` in batches of `batch`,
/// and subscribes `sink` to its events.
async fn register(
    http: &reqwest::Client,
    app: &TestApp,
    bus: &FakePubSub,
    batch: u32,
    sink: &str,
) -> anyhow::Result<()> {
    let spec = json!({
        "asyncapi": "2.6.0",
        "info": {"title": "Bench shop", "version": "1.0.0"},
        "channels": {"order.created.v1": {"subscribe": {"message": {"payload": {
            "type": "object", "required": ["orderId"],
            "properties": {"orderId": {"type": "string"}, "total": {"type": "number"},
                           "note": {"type": "string"}}}}}}},
    });
    let created = graphql(
        http,
        app,
        "mutation($in: ApplicationInput!) { createApplication(in: $in) { id } }",
        json!({"in": {"name": APPLICATION}}),
    )
    .await?;
    let app_id = created["createApplication"]["id"]
        .as_str()
        .context("no application id")?
        .to_owned();
    let answer = http
        .post(app.url("/subscriptions"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "bench", "sink": {"url": sink}, "filter": {"application": APPLICATION}}))
        .send()
        .await?;
    ensure!(answer.status() == 201, "subscription: {}", answer.status());
    graphql(
        http,
        app,
        "mutation($app: ID!, $in: EventAPIDefinitionInput!) { addEventAPI(applicationID: $app, in: $in) { id } }",
        json!({"app": app_id, "in": {
            "name": "orders",
            "spec": {"data": spec.to_string(), "eventSpecType": "ASYNC_API", "format": "JSON"},
            "externalSubscriptions": [{
                "url": bus.subscription_url(),
                "topic": bus.topic(),
                "attributes": {"maxMessages": batch.to_string()},
            }],
        }}),
    )
    .await?;
    Ok(())
}

/// `count` per second over `span` (0 when the span is empty).
#[allow(clippy::cast_precision_loss)]
fn rate(count: usize, span: Duration) -> f64 {
    if span.is_zero() {
        0.0
    } else {
        count as f64 / span.as_secs_f64()
    }
}

/// What the subscriber saw: per `ce-id`, the first arrival and how many times.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let messages: usize = setting("MESSAGES", 10_000)?;
    let tickers: usize = setting("TICKERS", 1)?;
    let batch: u32 = setting("BATCH", 100)?;
    let timeout = Duration::from_secs(setting("TIMEOUT_S", 600)?);
    let ack_deadline = Duration::from_secs(setting("ACK_DEADLINE_S", 60)?);
    let handoff = std::env::var("HANDOFF").unwrap_or_else(|_| "true".into());

    let state = tempfile::tempdir()?;
    let app = TestApp::builder(&workspace_root().join("spin.toml"))
        .state_dir(state.path())
        .env("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN)
        .env("SPIN_VARIABLE_WEBHOOK_ALLOWED_HOSTS", "http://127.0.0.1:*")
        .env("SPIN_VARIABLE_DELIVERY_ALLOWED_HOSTS", "http://127.0.0.1:*")
        .env("SPIN_VARIABLE_DELIVERY_HANDOFF", &handoff)
        .start()
        .await?;

    // The bus, preloaded: ~1 KiB of JSON data per message.
    let bus = FakePubSub::start("bench-project", "eventplane-orders", "orders").await?;
    bus.set_ack_deadline(ack_deadline);
    let ids: Vec<String> = (0..messages).map(|n| format!("pull-{n}")).collect();
    for id in &ids {
        let data = json!({"orderId": id, "total": 12.5, "note": "x".repeat(960)});
        bus.publish(binary_cloudevent(id, SOURCE, "order.created.v1", data));
    }

    let (subscriber, arrivals) = counting_subscriber().await?;
    let http = reqwest::Client::new();
    register(&http, &app, &bus, batch, &subscriber.url("/in")).await?;
    println!(
        "{messages} messages of ~1 KiB, batches of {batch}, {tickers} ticker(s), hand-off {handoff}"
    );

    let started = Instant::now();
    let deadline = started + timeout;
    let done = Arc::new(AtomicBool::new(false));
    let ticks = Arc::new(AtomicU64::new(0));
    let refused: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..tickers {
        let (http, done, ticks, refused) =
            (http.clone(), done.clone(), ticks.clone(), refused.clone());
        let url = app.url("/dispatcher/tick?budgetMs=30000");
        tasks.push(tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                let outcome = match http.post(&url).bearer_auth(ADMIN).send().await {
                    Ok(answer) if answer.status() == 200 => {
                        let _ = answer.bytes().await;
                        ticks.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    Ok(answer) => answer.status().to_string(),
                    Err(err) if err.is_connect() => "connect".to_owned(),
                    Err(_) => "error".to_owned(),
                };
                *refused.lock().expect("lock").entry(outcome).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    while arrivals.lock().expect("lock").len() < messages && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = started.elapsed();
    done.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await?;
    }
    // A delivery or an acknowledge may still be on its way.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Taken: from the first pull to the last acknowledge, as the bus saw them.
    let ack_log = bus.ack_log();
    let first_pull = bus.requests_of(RequestKind::Pull).first().map(|r| r.at);
    let take_span = match (first_pull, ack_log.last()) {
        (Some(first), Some((last, _))) => last.saturating_duration_since(first),
        _ => Duration::ZERO,
    };
    let mut batch_times: Vec<Duration> =
        bus.batches().iter().filter_map(|b| b.duration()).collect();
    batch_times.sort();
    let incomplete = bus.batches().len() - batch_times.len();
    let redelivered = bus
        .published()
        .iter()
        .filter(|m| bus.deliveries(m) > 1)
        .count();
    let failed_bus_requests = bus.requests().iter().filter(|r| r.status != 200).count();

    let (delivered, duplicates, last_arrival) = {
        let arrivals = arrivals.lock().expect("lock");
        let duplicates: u32 = arrivals.values().map(|(_, n)| n.saturating_sub(1)).sum();
        let last = arrivals.values().map(|(at, _)| *at).max();
        (arrivals.len(), duplicates, last)
    };
    let lost = {
        let arrivals = arrivals.lock().expect("lock");
        ids.iter().filter(|id| !arrivals.contains_key(*id)).count()
    };
    let deliver_span =
        last_arrival.map_or(Duration::ZERO, |at| at.saturating_duration_since(started));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;

    println!(
        "total {:.2} s, {} tick(s){}",
        total.as_secs_f64(),
        ticks.load(Ordering::SeqCst),
        if total >= timeout { " (timed out)" } else { "" }
    );
    println!(
        "taken (pulled+stored+acked): {} in {:.2} s = {:.0}/s",
        ack_log.len(),
        take_span.as_secs_f64(),
        rate(ack_log.len(), take_span)
    );
    println!(
        "delivered: {delivered} in {:.2} s = {:.0}/s",
        deliver_span.as_secs_f64(),
        rate(delivered, deliver_span)
    );
    println!(
        "batch pull→ack: {} complete, {incomplete} not; p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        batch_times.len(),
        ms(percentile(&batch_times, 0.5)),
        ms(percentile(&batch_times, 0.9)),
        ms(percentile(&batch_times, 0.99)),
        ms(batch_times.last().copied().unwrap_or_default()),
    );
    println!(
        "lost {lost}, duplicates {duplicates}, redelivered by the bus {redelivered}, \
         outstanding on the bus {}, bus requests not 200: {failed_bus_requests}, \
         ticks refused: {:?}",
        bus.outstanding(),
        refused.lock().expect("lock"),
    );
    drop(subscriber);
    app.stop().await
}
