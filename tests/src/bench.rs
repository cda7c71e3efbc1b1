//! What the benchmark binaries (`src/bin`) share: the admin token they start the application
//! with, GraphQL calls with it, and percentiles.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::ensure;
use serde_json::{Value, json};

use crate::{Reply, TestApp, TestServer};

/// When each event (by `ce-id`) first reached a subscriber, and how many times it came.
pub type Arrivals = Arc<Mutex<HashMap<String, (Instant, u32)>>>;

/// A subscriber that answers every delivery `204` at once and records its arrival.
pub async fn counting_subscriber() -> anyhow::Result<(TestServer, Arrivals)> {
    let arrivals: Arrivals = Arc::default();
    let seen = arrivals.clone();
    let subscriber = TestServer::start_with(move |request| {
        if let Some(id) = request.header("ce-id") {
            let mut seen = seen.lock().expect("lock");
            let entry = seen.entry(id.to_owned()).or_insert((Instant::now(), 0));
            entry.1 += 1;
        }
        Reply::new(204, "")
    })
    .await?;
    Ok((subscriber, arrivals))
}

/// The admin token the benchmarks start the application with.
pub const ADMIN: &str = "bench-admin-token";

/// POSTs a GraphQL document to `app` with [`ADMIN`]; its `data` (an error if it has `errors`).
pub async fn graphql(
    http: &reqwest::Client,
    app: &TestApp,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let body: Value = http
        .post(app.url("/graphql"))
        .bearer_auth(ADMIN)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await?
        .json()
        .await?;
    ensure!(body.get("errors").is_none(), "GraphQL failed: {body}");
    Ok(body["data"].clone())
}

/// The `p` quantile (0 to 1, nearest rank) of `sorted`; zero when it is empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
