//! MQTT ingress: publish → stored → delivered. A `mosquitto` of the benchmark's own, the real
//! application with its MQTT trigger (`spin-mqtt.toml`), a fast local subscriber; 1 KiB
//! CloudEvents published at QoS 1 (each carrying the application's access token) at a fixed
//! rate for a while, then once as fast as the broker takes them. For each run: the events the
//! broker acknowledged, delivered (and lost), the throughput delivered, and the latency from the
//! publish to the arrival at the subscriber (p50/p90/p99/max). After the deliveries stop
//! coming, the bench ticks the dispatcher (what a scheduler does) and counts what only the tick
//! delivered.
//!
//! The runtime is a parameter: `RUNTIMES` lists `eventplane` (eventplane's host, in-process)
//! and `spin` (real Spin with the `trigger-mqtt` plugin, `spin up -f spin-mqtt.toml`; skipped,
//! saying so, when Spin or the plugin is not installed). Default: both.
//!
//! ```sh
//! cargo run --release -p eventplane-tests --bin bench-mqtt                   # 1000 events/s for 20 s, then a burst of 20,000
//! RATES="500 1000 1500" DURATION_S=10 BURST=0 cargo run --release -p eventplane-tests --bin bench-mqtt
//! RUNTIMES=eventplane cargo run --release -p eventplane-tests --bin bench-mqtt
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventplane_tests::bench::{
    ADMIN, Arrivals, Runtime, Served, counting_subscriber, env_number, env_numbers, percentile,
    register_shop,
};
use eventplane_tests::mosquitto::Mosquitto;
use eventplane_tests::mqtt::MqttClient;
use eventplane_tests::spin::spin_binary;
use eventplane_tests::workspace_root;
use rumqttc::QoS;
use serde_json::{Value, json};

/// The allocator the `eventplane` binary uses, so that the in-process host runs as it does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The topic the bench application publishes to (`mqtt_topic`'s default, `+` = its name).
const TOPIC: &str = "eventplane/bench-shop/events";

/// When each event (by id) was handed to the MQTT client.
type Sent = Arc<Mutex<HashMap<String, Instant>>>;

/// One 1 KiB `order.created.v1` event (without its token) with id `id`, and its token.
fn event(id: &str, token: &str) -> Vec<u8> {
    json!({"specversion": "1.0", "id": id, "source": "/applications/bench-shop",
        "type": "order.created.v1", "datacontenttype": "application/json",
        "accesstoken": token,
        "data": {"orderId": id, "total": 12.5, "note": "x".repeat(800)}})
    .to_string()
    .into_bytes()
}

/// Whether Spin's `trigger-mqtt` plugin is installed for `spin`.
fn plugin_installed(spin: &std::path::Path) -> bool {
    std::process::Command::new(spin)
        .args(["plugins", "list", "--installed"])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("trigger-mqtt"))
}

/// Starts the application on `runtime` with its state in `state`, its MQTT trigger on
/// `broker`; `None` (said on stderr) when that runtime is not available here.
async fn start(
    runtime: &str,
    state: &std::path::Path,
    broker: &str,
) -> anyhow::Result<Option<Runtime>> {
    let manifest = workspace_root().join("spin-mqtt.toml");
    let vars = [
        ("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN.to_owned()),
        ("SPIN_VARIABLE_TOKEN_TTL_SECONDS", "3600".to_owned()),
        (
            "SPIN_VARIABLE_DELIVERY_ALLOWED_HOSTS",
            "http://127.0.0.1:*".to_owned(),
        ),
        ("SPIN_VARIABLE_MQTT_ADDRESS", broker.to_owned()),
        ("SPIN_VARIABLE_MQTT_ALLOWED_HOSTS", broker.to_owned()),
    ];
    if runtime == "spin"
        && let Some(spin) = spin_binary()
        && !plugin_installed(&spin)
    {
        eprintln!(
            "spin: skipped (the trigger-mqtt plugin is not installed: \
             ../shared/tools/install-trigger-mqtt)"
        );
        return Ok(None);
    }
    Runtime::start(runtime, &manifest, state, &vars).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rates = env_numbers("RATES", "1000")?;
    let seconds = env_number("DURATION_S", 20)?;
    let warmup = env_number("WARMUP_S", 2)?;
    let burst = env_number("BURST", 20_000)?;
    let runtimes = std::env::var("RUNTIMES").unwrap_or_else(|_| "eventplane spin".into());
    let Some(broker) = Mosquitto::start()? else {
        anyhow::bail!("no mosquitto: scripts/servers.sh installs it");
    };
    let (subscriber, arrivals) = counting_subscriber().await?;
    for runtime in runtimes.split_whitespace() {
        let state = tempfile::tempdir()?;
        let Some(app) = start(runtime, state.path(), &broker.url()).await? else {
            continue;
        };
        let http = reqwest::Client::new();
        let token = register_shop(&http, app.served(), &subscriber.url("/in")).await?;
        let client = MqttClient::connect(&broker.url(), &format!("bench-{runtime}")).await?;
        // The trigger subscribes once the application runs; give it a moment.
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("==> {runtime} (QoS 1, 1 KiB events)");
        println!(
            "offered/s  events  acked  delivered  by tick  lost  twice  delivered/s   p50 ms   p90 ms   p99 ms   max ms"
        );
        let run = Run {
            http: &http,
            app: app.served(),
            client: &client,
            token: &token,
            arrivals: &arrivals,
        };
        for (n, rate) in rates.iter().enumerate() {
            if warmup > 0 {
                run.publish(Some(*rate), rate * warmup, &format!("w-{runtime}-{n}-"))
                    .await?;
            }
            run.measure(Some(*rate), rate * seconds, &format!("{runtime}-r{n}-"))
                .await?;
        }
        if burst > 0 {
            run.measure(None, burst, &format!("{runtime}-burst-"))
                .await?;
        }
        app.stop().await?;
    }
    drop(subscriber);
    Ok(())
}

/// One runtime's benchmark.
struct Run<'a> {
    http: &'a reqwest::Client,
    app: &'a dyn Served,
    client: &'a MqttClient,
    token: &'a str,
    arrivals: &'a Arrivals,
}

impl Run<'_> {
    /// Publishes `count` events (ids `<prefix><n>`) at `rate` a second, or as fast as the
    /// client takes them (`None`), and waits for the broker's acknowledgements.
    async fn publish(&self, rate: Option<u64>, count: u64, prefix: &str) -> anyhow::Result<Sent> {
        let sent: Sent = Arc::default();
        let mut interval =
            rate.map(|rate| tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64)));
        for n in 0..count {
            if let Some(interval) = interval.as_mut() {
                interval.tick().await;
            }
            let id = format!("{prefix}{n}");
            let payload = event(&id, self.token);
            sent.lock().expect("lock").insert(id, Instant::now());
            self.client
                .publish(TOPIC, payload, QoS::AtLeastOnce)
                .await?;
        }
        self.client.wait_acked(Duration::from_secs(120)).await?;
        Ok(sent)
    }

    fn delivered(&self, prefix: &str) -> usize {
        self.arrivals
            .lock()
            .expect("lock")
            .keys()
            .filter(|k| k.starts_with(prefix))
            .count()
    }

    /// One measured run: publish, wait for the deliveries, tick, print a row.
    async fn measure(&self, rate: Option<u64>, count: u64, prefix: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        let sent = self.publish(rate, count, prefix).await?;
        let total = usize::try_from(count)?;
        // Deliveries keep coming while they make progress.
        let mut last = (self.delivered(prefix), Instant::now());
        while last.0 < total && last.1.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.delivered(prefix);
            if now != last.0 {
                last = (now, Instant::now());
            }
        }
        let before_tick = self.delivered(prefix);
        let last_arrival = self
            .arrivals
            .lock()
            .expect("lock")
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, (at, _))| *at)
            .max()
            .unwrap_or(started);
        loop {
            let counts: Value = self
                .http
                .post(self.app.url("/dispatcher/tick?budgetMs=30000"))
                .bearer_auth(ADMIN)
                .send()
                .await?
                .json()
                .await?;
            if counts["events"] == 0 && counts["attempts"] == 0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let delivered = self.delivered(prefix);
        let (mut latencies, twice): (Vec<Duration>, usize) = {
            let arrivals = self.arrivals.lock().expect("lock");
            let sent = sent.lock().expect("lock");
            let twice = sent
                .keys()
                .filter(|id| arrivals.get(*id).is_some_and(|(_, n)| *n > 1))
                .count();
            let latencies = sent
                .iter()
                .filter_map(|(id, at)| arrivals.get(id).map(|(arrived, _)| *arrived - *at))
                .collect();
            (latencies, twice)
        };
        latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let seconds = (last_arrival - started).as_secs_f64().max(0.001);
        println!(
            "{:>9}  {:>6}  {:>5}  {:>9}  {:>7}  {:>4}  {:>5}  {:>11.0}  {:>7.1}  {:>7.1}  {:>7.1}  {:>7.1}",
            rate.map_or("burst".to_owned(), |r| r.to_string()),
            total,
            total,
            delivered,
            delivered - before_tick,
            total.saturating_sub(delivered),
            twice,
            before_tick as f64 / seconds,
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.9)),
            ms(percentile(&latencies, 0.99)),
            ms(latencies.last().copied().unwrap_or_default()),
        );
        Ok(())
    }
}
