//! Publish → delivered latency: the real application (release build, the repository's
//! `spin.toml`) in-process, a fast local subscriber, events published at a fixed rate for a
//! while; then the latency from the start of each publish to its arrival at the subscriber
//! (p50/p90/p99/max) and the count of events accepted, delivered, and lost. Publishes the
//! gateway refused are counted by status. After the run, the bench waits for the hand-offs'
//! deliveries, then runs `POST /dispatcher/tick` until it finds no work (what a cron would do),
//! so "lost" counts what the platform itself never delivered; "by tick" counts the deliveries
//! only the tick made.
//!
//! The runtime is a parameter: `RUNTIMES` lists `spin` (real Spin, `spin up` on `SPIN_BIN` or
//! `PATH`, its default SQLite store) and `eventplane` (eventplane's host, in-process), and
//! each is measured in turn in the same run (default: both; `spin` is skipped, saying so, where
//! it is not found).
//!
//! ```sh
//! cargo run --release -p eventplane-tests --bin bench-delivery          # 200 and 1000 events/s, 30 s each
//! RATES="1000" DURATION_S=10 cargo run --release -p eventplane-tests --bin bench-delivery
//! RUNTIMES=spin RATES="100 250" cargo run --release -p eventplane-tests --bin bench-delivery
//! WARMUP_S=0 cargo run --release -p eventplane-tests --bin bench-delivery   # no warm-up
//! ```
//!
//! Each rate first runs for `WARMUP_S` seconds (default 2) unmeasured, so that the figures are
//! those of the steady state, not of the host growing its instances and connections to a new
//! load (that first second is slower: see the README).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventplane_tests::bench::{
    ADMIN, Arrivals, Runtime, Served, counting_subscriber, env_number, env_numbers, percentile,
    register_shop,
};
use eventplane_tests::workspace_root;
use serde_json::{Value, json};

/// The allocator the `eventplane` binary uses, so that the in-process host runs as it does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Publish start times of the accepted events, by id; refused publishes, by status.
type Published = (
    Arc<Mutex<HashMap<String, Instant>>>,
    Arc<Mutex<HashMap<String, u64>>>,
);

/// Publishes `rate` events a second for `seconds` (ids `<prefix><n>`), each on its own task,
/// and waits for every answer.
async fn publish_at(
    http: &reqwest::Client,
    app: &dyn Served,
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

/// The application's variables for the benchmark.
fn variables() -> Vec<(&'static str, String)> {
    vec![
        ("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN.to_owned()),
        ("SPIN_VARIABLE_TOKEN_TTL_SECONDS", "3600".to_owned()),
        (
            "SPIN_VARIABLE_DELIVERY_ALLOWED_HOSTS",
            "http://127.0.0.1:*".to_owned(),
        ),
        (
            "SPIN_VARIABLE_DELIVERY_HANDOFF",
            std::env::var("HANDOFF").unwrap_or_else(|_| "true".into()),
        ),
    ]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rates = env_numbers("RATES", "200 1000")?;
    let seconds = env_number("DURATION_S", 30)?;
    let warmup = env_number("WARMUP_S", 2)?;
    let runtimes = std::env::var("RUNTIMES").unwrap_or_else(|_| "spin eventplane".into());
    let (subscriber, arrivals) = counting_subscriber().await?;
    for runtime in runtimes.split_whitespace() {
        let state = tempfile::tempdir()?;
        let manifest = workspace_root().join("spin.toml");
        let Some(app) = Runtime::start(runtime, &manifest, state.path(), &variables()).await?
        else {
            continue;
        };
        let http = reqwest::Client::new();
        let token = register_shop(&http, app.served(), &subscriber.url("/in")).await?;
        println!("==> {runtime}");
        println!(
            "rate/s  seconds  accepted  refused  delivered  by tick  lost  duplicates   p50 ms   p90 ms   p99 ms   max ms"
        );
        for (run, rate) in rates.iter().enumerate() {
            let prefix = format!("{runtime}-r{run}-");
            measure(
                &http,
                app.served(),
                &token,
                &arrivals,
                *rate,
                (warmup, seconds),
                &prefix,
            )
            .await?;
        }
        app.stop().await?;
    }
    drop(subscriber);
    Ok(())
}

/// Publishes at `rate` for `warmup` then `seconds` seconds (ids starting with `prefix`), waits
/// for the deliveries and ticks until no work is left, and prints one row.
async fn measure(
    http: &reqwest::Client,
    app: &dyn Served,
    token: &str,
    arrivals: &Arrivals,
    rate: u64,
    (warmup, seconds): (u64, u64),
    prefix: &str,
) -> anyhow::Result<()> {
    // Warm-up at the same rate, not measured: instances, connections and caches grow to the
    // load first (its deliveries are left to finish with the run's).
    if warmup > 0 {
        publish_at(http, app, token, rate, warmup, &format!("w-{prefix}")).await?;
    }
    let (sent, refused) = publish_at(http, app, token, rate, seconds, prefix).await?;
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivered(prefix) < accepted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before_tick = delivered(prefix);
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
    let by_tick = delivered(prefix) - before_tick;
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
    Ok(())
}
