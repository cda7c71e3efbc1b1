//! What the benchmark binaries (`src/bin`) share: the admin token they start the application
//! with, GraphQL calls with it, percentiles, and [`Served`] (the host or real Spin).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::spin::SpinApp;
use crate::{Reply, TestApp, TestServer};

/// An application served over HTTP: by eventplane's host in-process, or by real Spin.
pub trait Served {
    /// `http://127.0.0.1:<port><path>`.
    fn url(&self, path: &str) -> String;
}

impl Served for TestApp {
    fn url(&self, path: &str) -> String {
        TestApp::url(self, path)
    }
}

impl Served for SpinApp {
    fn url(&self, path: &str) -> String {
        SpinApp::url(self, path)
    }
}

/// The application on one runtime, for a benchmark that measures both.
pub enum Runtime {
    /// eventplane's host, in-process.
    Host(TestApp),
    /// Real Spin.
    Spin(SpinApp),
}

impl Runtime {
    /// Starts the application of `manifest` on `runtime` (`eventplane`: eventplane's host
    /// in-process; `spin`: real Spin) with its state in `state` and the environment `vars`;
    /// `None` (said on stderr) when Spin is not found.
    pub async fn start(
        runtime: &str,
        manifest: &std::path::Path,
        state: &std::path::Path,
        vars: &[(&str, String)],
    ) -> anyhow::Result<Option<Self>> {
        match runtime {
            "eventplane" => {
                let mut builder = TestApp::builder(manifest).state_dir(state);
                for (name, value) in vars {
                    builder = builder.env(name, value);
                }
                Ok(Some(Self::Host(builder.start().await?)))
            }
            "spin" => {
                let Some(spin) = crate::spin::spin_binary() else {
                    eprintln!("spin: skipped (no spin on PATH or SPIN_BIN)");
                    return Ok(None);
                };
                let env: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (*n, v.as_str())).collect();
                Ok(Some(Self::Spin(
                    SpinApp::start(&spin, manifest, state, &env).await?,
                )))
            }
            other => anyhow::bail!("unknown runtime {other:?}: use spin or eventplane"),
        }
    }

    /// The application, to send requests to.
    pub fn served(&self) -> &dyn Served {
        match self {
            Self::Host(app) => app,
            Self::Spin(app) => app,
        }
    }

    /// Stops the application.
    pub async fn stop(self) -> anyhow::Result<()> {
        match self {
            Self::Host(app) => app.stop().await,
            Self::Spin(app) => app.stop().await,
        }
    }
}

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

/// The environment variable `name` as a number, `default` when it is not set.
pub fn env_number(name: &str, default: u64) -> anyhow::Result<u64> {
    std::env::var(name).map_or(Ok(default), |s| {
        s.parse()
            .with_context(|| format!("{name}={s:?} is not a number"))
    })
}

/// The environment variable `name` as numbers separated by spaces, `default` when it is not
/// set.
pub fn env_numbers(name: &str, default: &str) -> anyhow::Result<Vec<u64>> {
    let text = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    text.split_whitespace()
        .map(|n| {
            n.parse()
                .with_context(|| format!("{name}: {n:?} is not a number"))
        })
        .collect()
}

/// The admin token the benchmarks start the application with.
pub const ADMIN: &str = "bench-admin-token";

/// POSTs a GraphQL document to `app` with [`ADMIN`]; its `data` (an error if it has `errors`).
pub async fn graphql(
    http: &reqwest::Client,
    app: &(impl Served + ?Sized),
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

/// Registers the application `bench-shop` with one event type (`order.created.v1`, data with a
/// string `orderId`) and a subscription of its events to `sink`; a publish token for it.
pub async fn register_shop(
    http: &reqwest::Client,
    app: &dyn Served,
    sink: &str,
) -> anyhow::Result<String> {
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
