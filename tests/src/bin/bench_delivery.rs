//! Publish → delivered latency: the real application (release build, the repository's
//! `spin.toml`) in-process, a fast local subscriber, events published at a fixed rate for a
//! while; then the latency from the start of each publish to its arrival at the subscriber
//! (p50/p90/p99/max) and the count of events accepted, delivered, and lost. Publishes the
//! gateway refused are counted by status. After the run, the bench waits for the hand-offs'
//! deliveries, then runs `POST /dispatcher/tick` until it finds no work (what a cron would do),
//! so "lost" counts what the platform itself never delivered; "by tick" counts the deliveries
//! only the tick made.
//!
//! ```sh
//! cargo run --release -p eventplane-tests --bin bench-delivery          # 200 and 1000 events/s, 30 s each
//! RATES="1000" DURATION_S=10 cargo run --release -p eventplane-tests --bin bench-delivery
//! WARMUP_S=0 cargo run --release -p eventplane-tests --bin bench-delivery   # no warm-up
//! ```
//!
//! Each rate first runs for `WARMUP_S` seconds (default 2) unmeasured, so that the figures are
//! those of the steady state, not of the host growing its instances and connections to a new
//! load (that first second is slower: see the README).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use eventplane_tests::bench::{ADMIN, counting_subscriber, graphql, percentile};
use eventplane_tests::{TestApp, workspace_root};
use serde_json::{Value, json};

/// The allocator the `eventplane` binary uses, so that the in-process host runs as it does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Registers the application `bench-shop` with one event type and a subscription to the
/// subscriber; a publish token.
async fn register(http: &reqwest::Client, app: &TestApp, sink: &str) -> anyhow::Result<String> {
    let spec = json!({
        "asyncapi": "2.6.0",
        "info": {"title": "Bench shop", "version": "1.0.0"},
        "channels": {"order.created.v1": {"subscribe": {"message": {"payload": {
            "type": "object", "required": ["orderId"],
            "properties": {"orderId": {"type": "string"}, "total": {"type": "number"}}}}}}},
    });
    let created = graphql(
        http,
        app,
        "mutation { createApplication(in: {name: \"bench-shop\"}) { id } }",
        json!({}),
    )
    .await?;
    let app_id = created["createApplication"]["id"]
        .as_str()
        .context("no application id")?
        .to_owned();
    graphql(
        http,
        app,
        "mutation($app: ID!, $in: EventAPIDefinitionInput!) { addEventAPI(applicationID: $app, in: $in) { id } }",
        json!({"app": app_id, "in": {"name": "orders", "spec": {"data": spec.to_string(), "eventSpecType": "ASYNC_API", "format": "JSON"}}}),
    )
    .await?;
    let creds = graphql(
        http,
        app,
        "mutation($app: ID!) { requestClientCredentialsForApplication(applicationID: $app) { clientId clientSecret } }",
        json!({"app": app_id}),
    )
    .await?;
    let creds = &creds["requestClientCredentialsForApplication"];
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        creds["clientId"].as_str().unwrap_or_default(),
        creds["clientSecret"].as_str().unwrap_or_default()
    ));
    let token: Value = http
        .post(app.url("/oauth/token"))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned();
    let answer = http
        .post(app.url("/subscriptions"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "bench", "sink": {"url": sink}, "filter": {"application": "bench-shop"}}))
        .send()
        .await?;
    ensure!(answer.status() == 201, "subscription: {}", answer.status());
    Ok(token)
}

/// Publish start times of the accepted events, by id; refused publishes, by status.
type Published = (
    Arc<Mutex<HashMap<String, Instant>>>,
    Arc<Mutex<HashMap<String, u64>>>,
);

/// Publishes `rate` events a second for `seconds` (ids `<prefix><n>`), each on its own task,
/// and waits for every answer.
async fn publish_at(
    http: &reqwest::Client,
    app: &TestApp,
    token: &str,
    rate: u64,
    seconds: u64,
    prefix: &str,
) -> anyhow::Result<Published> {
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let refused: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut tasks = Vec::new();
    for n in 0..rate * seconds {
        interval.tick().await;
        let (http, token, sent, refused) = (
            http.clone(),
            token.to_owned(),
            sent.clone(),
            refused.clone(),
        );
        let url = app.url("/events/publish");
        let id = format!("{prefix}{n}");
        tasks.push(tokio::spawn(async move {
            let event = json!({"specversion": "1.0", "id": id, "source": "/applications/bench-shop",
                "type": "order.created.v1", "datacontenttype": "application/json",
                "data": {"orderId": id, "total": 12.5, "note": "x".repeat(800)}});
            let started = Instant::now();
            let answer = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/cloudevents+json")
                .body(event.to_string())
                .send()
                .await;
            let outcome = match answer {
                Ok(a) if a.status() == 202 => {
                    sent.lock().expect("lock").insert(id, started);
                    return;
                }
                Ok(a) => a.status().to_string(),
                Err(err) if err.is_connect() => "connect".to_owned(),
                Err(_) => "error".to_owned(),
            };
            *refused.lock().expect("lock").entry(outcome).or_default() += 1;
        }));
    }
    for task in tasks {
        task.await?;
    }
    Ok((sent, refused))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rates: Vec<u64> = std::env::var("RATES")
        .unwrap_or_else(|_| "200 1000".into())
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let seconds: u64 = std::env::var("DURATION_S").map_or(Ok(30), |s| s.parse())?;
    let warmup: u64 = std::env::var("WARMUP_S").map_or(Ok(2), |s| s.parse())?;
    let state = tempfile::tempdir()?;
    let app = TestApp::builder(&workspace_root().join("spin.toml"))
        .state_dir(state.path())
        .env("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN)
        .env("SPIN_VARIABLE_TOKEN_TTL_SECONDS", "3600")
        .env("SPIN_VARIABLE_DELIVERY_ALLOWED_HOSTS", "http://127.0.0.1:*")
        .env(
            "SPIN_VARIABLE_DELIVERY_HANDOFF",
            &std::env::var("HANDOFF").unwrap_or_else(|_| "true".into()),
        )
        .start()
        .await?;
    let (subscriber, arrivals) = counting_subscriber().await?;
    let http = reqwest::Client::new();
    let token = register(&http, &app, &subscriber.url("/in")).await?;
    println!(
        "rate/s  seconds  accepted  refused  delivered  by tick  lost  duplicates   p50 ms   p90 ms   p99 ms   max ms"
    );
    for (run, rate) in rates.iter().enumerate() {
        // Warm-up at the same rate, not measured: instances, connections and caches grow to
        // the load first (its deliveries are left to finish with the run's).
        if warmup > 0 {
            publish_at(&http, &app, &token, *rate, warmup, &format!("w{run}-")).await?;
        }
        let (sent, refused) =
            publish_at(&http, &app, &token, *rate, seconds, &format!("r{run}-")).await?;
        // Let the last deliveries arrive; then one tick delivers anything a hand-off missed.
        let accepted = sent.lock().expect("lock").len();
        let delivered = |prefix: &str| {
            arrivals
                .lock()
                .expect("lock")
                .keys()
                .filter(|k| k.starts_with(prefix))
                .count()
        };
        let prefix = format!("r{run}-");
        let deadline = Instant::now() + Duration::from_secs(10);
        while delivered(&prefix) < accepted && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let before_tick = delivered(&prefix);
        let tick_started = Instant::now();
        let mut ticks = 0;
        loop {
            let counts: Value = http
                .post(app.url("/dispatcher/tick?budgetMs=30000"))
                .bearer_auth(ADMIN)
                .send()
                .await?
                .json()
                .await?;
            ticks += 1;
            if counts["events"] == 0 && counts["attempts"] == 0 {
                break;
            }
        }
        let tick_seconds = tick_started.elapsed().as_secs_f64();
        // A delivery the tick made may still be on its way.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let by_tick = delivered(&prefix) - before_tick;
        let mut latencies = Vec::new();
        let mut duplicates = 0;
        {
            let sent = sent.lock().expect("lock");
            let arrivals = arrivals.lock().expect("lock");
            for (id, started) in sent.iter() {
                if let Some((arrived, count)) = arrivals.get(id) {
                    latencies.push(arrived.saturating_duration_since(*started));
                    duplicates += count.saturating_sub(1);
                }
            }
        }
        latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{rate:>6}  {seconds:>7}  {accepted:>8}  {:>7}  {:>9}  {by_tick:>7}  {:>4}  {duplicates:>10}  {:>7.2}  {:>7.2}  {:>7.2}  {:>7.2}",
            refused.lock().expect("lock").values().sum::<u64>(),
            latencies.len(),
            accepted - latencies.len(),
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.9)),
            ms(percentile(&latencies, 0.99)),
            ms(latencies.last().copied().unwrap_or_default()),
        );
        println!(
            "        refused by status: {:?}; {ticks} tick(s) took {tick_seconds:.1} s",
            refused.lock().expect("lock")
        );
    }
    drop(subscriber);
    app.stop().await
}
