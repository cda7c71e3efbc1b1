//! The external event bus ("flow 2") through the real application: an event API registered with
//! `externalSubscriptions` naming a Google Cloud Pub/Sub subscription that a
//! [`FakePubSub`] serves on a loopback port. `POST /dispatcher/tick` pulls it (GET the
//! subscription, check its topic, `:pull`, store, `:acknowledge`), or Pub/Sub pushes to
//! `POST /events/{application}/pubsub`; the events reach a local subscriber like published
//! ones.
//!
//! [`Bus::start`] runs the repository's `spin.toml` on a state directory it keeps (so a test can
//! read the store while the application runs), registers the application [`SHOP`] with the event
//! API [`SHOP_EVENTS_SPEC`] and one external subscription, and subscribes a [`TestServer`] sink
//! to the shop's events. [`Bus::tick_until`] ticks until a condition holds; [`Bus::external`]
//! reads the subscription's `state` through GraphQL.

mod pull;
mod push;
mod registration;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use eventplane_tests::pubsub::{FakePubSub, PublishedMessage};
use eventplane_tests::{Received, TestServer};
use serde_json::{Value, json as j};
use sha2::{Digest as _, Sha256};

use crate::gateway::{SHOP, SHOP_EVENTS_SPEC};
use crate::registry::{ADMIN_TOKEN, Gql, Registry, api_input};
use crate::subscriptions::Api;

/// The Google Cloud project of the fake bus.
pub(crate) const PROJECT: &str = "shop-project";
/// The subscription eventplane consumes.
pub(crate) const SUBSCRIPTION: &str = "eventplane-orders";
/// The topic the shop publishes to, and the one registered.
pub(crate) const TOPIC: &str = "projects/shop-project/topics/orders";
/// Another topic, for mismatches.
pub(crate) const OTHER_TOPIC: &str = "projects/shop-project/topics/payments";

/// Loopback servers are allowed for the dispatcher (the bus, including the subscription check
/// at registration, and the subscribers), the registry (should it call the bus itself) and the
/// gateway (the push JWKS); delivery waits for the tick, so that each test drives the work
/// itself.
pub(crate) const BUS_ENV: &[(&str, &str)] = &[
    ("SPIN_VARIABLE_WEBHOOK_ALLOWED_HOSTS", "http://127.0.0.1:*"),
    ("SPIN_VARIABLE_DELIVERY_ALLOWED_HOSTS", "http://127.0.0.1:*"),
    (
        "SPIN_VARIABLE_OIDC_JWKS_ALLOWED_HOSTS",
        "http://127.0.0.1:*",
    ),
    ("SPIN_VARIABLE_DELIVERY_HANDOFF", "false"),
];

/// How long [`Bus::tick_until`] keeps trying.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// The selection of an external subscription with its state (the first 50 rejected messages).
pub(crate) const EXTERNAL: &str = "externalSubscriptions { url topic attributes
    state { lastPullAt messagesTaken lastError
        rejected(first: 50) { data { messageId reason attributes data at } nextCursor } } }";

/// A fake bus serving [`SUBSCRIPTION`] of [`PROJECT`], attached to [`TOPIC`].
pub(crate) async fn fake_bus() -> anyhow::Result<FakePubSub> {
    FakePubSub::start(PROJECT, SUBSCRIPTION, TOPIC).await
}

/// An `externalSubscriptions` entry for `bus` with topic [`TOPIC`] and `attributes` (left out
/// when `null` or `{}`).
pub(crate) fn external_subscription(bus: &FakePubSub, attributes: Value) -> Value {
    let mut entry = j!({"url": bus.subscription_url(), "topic": TOPIC});
    if attributes.as_object().is_some_and(|a| !a.is_empty()) {
        entry["attributes"] = attributes;
    }
    entry
}

/// The shop's event API input with the external subscriptions `subscriptions`.
pub(crate) fn api_with(subscriptions: Value) -> Value {
    let mut input = api_input("orders", SHOP_EVENTS_SPEC);
    input["externalSubscriptions"] = subscriptions;
    input
}

/// The real application with the shop, its event API consuming a fake bus, and a subscriber.
pub(crate) struct Bus {
    /// The running application.
    pub r: Registry,
    /// Its state directory (`sqlite_key_value.db` inside).
    pub state: tempfile::TempDir,
    /// The fake Pub/Sub the event API's external subscription names.
    pub pubsub: FakePubSub,
    /// A subscriber of every event of the shop (answers 204).
    pub sink: TestServer,
    /// The event API's id.
    pub api_id: String,
}

impl Bus {
    /// Starts the application ([`BUS_ENV`] and `env`), registers the shop with its event API,
    /// whose only external subscription is `external` (see [`external_subscription`]) on
    /// `pubsub`, and subscribes the sink to the shop's events.
    pub async fn start(
        pubsub: FakePubSub,
        external: Value,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let state = tempfile::tempdir()?;
        let env = [BUS_ENV, env].concat();
        let r = Registry::start_in(state.path(), &env).await?;
        let g = r.gql();
        let app_id = g.create_app(j!({ "name": SHOP })).await?;
        let api_id = g.add_api(&app_id, api_with(j!([external]))).await?;
        let sink = TestServer::start(204, "").await?;
        Api::new(&r.app)
            .create(&j!({"name": "orders", "sink": {"url": sink.url("/in")},
                        "filter": {"application": SHOP}}))
            .await?;
        Ok(Self {
            r,
            state,
            pubsub,
            sink,
            api_id,
        })
    }

    /// [`start`](Self::start) with a pull subscription on a [`fake_bus`] with `attributes`.
    pub async fn pull(attributes: Value) -> anyhow::Result<Self> {
        let pubsub = fake_bus().await?;
        let external = external_subscription(&pubsub, attributes);
        Self::start(pubsub, external, &[]).await
    }

    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.state.path().to_path_buf()
    }

    /// `POST /dispatcher/tick` with the admin token, which must answer 200; its body (JSON, or
    /// `Null`).
    pub async fn tick(&self) -> anyhow::Result<Value> {
        tick(&self.r).await
    }

    /// Ticks (at least once) until `done` holds, for at most [`PATIENCE`]; how many ticks it
    /// took. Fails with `what` and the fake's and the sink's view when it never holds.
    pub async fn tick_until(
        &self,
        what: &str,
        mut done: impl FnMut(&Self) -> bool,
    ) -> anyhow::Result<usize> {
        let started = Instant::now();
        let mut ticks = 0;
        loop {
            self.tick().await?;
            ticks += 1;
            if done(self) {
                return Ok(ticks);
            }
            if started.elapsed() > PATIENCE {
                anyhow::bail!(
                    "{what}: not after {ticks} ticks in {:?}\nacknowledged: {:?}, outstanding: {}\n\
                     delivered: {:?}\nbus requests: {:?}\nstate: {:#}",
                    started.elapsed(),
                    self.pubsub.acknowledged(),
                    self.pubsub.outstanding(),
                    self.delivered(),
                    self.pubsub
                        .requests()
                        .iter()
                        .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
                        .collect::<Vec<_>>(),
                    self.external().await.unwrap_or(Value::Null),
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `ce-id`s the sink received, in order of arrival.
    pub fn delivered(&self) -> Vec<String> {
        delivered_ids(&self.sink)
    }

    /// Whether the sink received every one of `ids`.
    pub fn delivered_all(&self, ids: &[&str]) -> bool {
        let delivered = self.delivered();
        ids.iter().all(|id| delivered.iter().any(|d| d == id))
    }

    /// The first request the sink received for `ce-id` `id`.
    pub fn delivery(&self, id: &str) -> Option<Received> {
        self.sink
            .received()
            .into_iter()
            .find(|r| r.header("ce-id") == Some(id))
    }

    /// The event API's first external subscription with its `state` ([`EXTERNAL`]).
    pub async fn external(&self) -> anyhow::Result<Value> {
        external(&self.r.gql(), &self.api_id).await
    }

    /// The `state` of the event API's first external subscription.
    pub async fn sub_state(&self) -> anyhow::Result<Value> {
        Ok(self.external().await?["state"].clone())
    }

    /// Reads the `state` (without ticking) until `done` holds, for at most [`PATIENCE`]; that
    /// state.
    pub async fn state_until(
        &self,
        what: &str,
        done: impl FnMut(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        state_until(&self.r.gql(), &self.api_id, what, done).await
    }

    /// Stops the application; the state directory stays until `self.state` is dropped.
    pub async fn stop(self) -> anyhow::Result<tempfile::TempDir> {
        self.r.stop().await?;
        Ok(self.state)
    }
}

/// The first external subscription of the event API `api_id`, with its `state` ([`EXTERNAL`]).
pub(crate) async fn external(g: &Gql, api_id: &str) -> anyhow::Result<Value> {
    let data = g
        .ok(
            &format!("query($id: ID!) {{ eventAPI(id: $id) {{ {EXTERNAL} }} }}"),
            j!({ "id": api_id }),
        )
        .await?;
    data.pointer("/eventAPI/externalSubscriptions/0")
        .cloned()
        .with_context(|| format!("no external subscription in {data:#}"))
}

/// Reads the `state` of the first external subscription of `api_id` (without ticking) until
/// `done` holds, for at most [`PATIENCE`]; that state.
pub(crate) async fn state_until(
    g: &Gql,
    api_id: &str,
    what: &str,
    mut done: impl FnMut(&Value) -> bool,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    loop {
        let state = external(g, api_id).await?["state"].clone();
        if done(&state) {
            return Ok(state);
        }
        if started.elapsed() > PATIENCE {
            anyhow::bail!(
                "{what}: not after {:?}; state: {state:#}",
                started.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST /dispatcher/tick` of `r` with the admin token, which must answer 200; its body.
pub(crate) async fn tick(r: &Registry) -> anyhow::Result<Value> {
    let response = reqwest::Client::new()
        .post(r.app.url("/dispatcher/tick"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    anyhow::ensure!(status == 200, "tick answered {status}: {text}");
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The `ce-id`s `sink` received, in order of arrival.
pub(crate) fn delivered_ids(sink: &TestServer) -> Vec<String> {
    sink.received()
        .iter()
        .filter_map(|r| r.header("ce-id").map(str::to_owned))
        .collect()
}

/// The key of the stored record of the event `id` from `source` for `tenant`:
/// `t/<tenant>/r/evt/evt_<first 32 hex digits of the identity hash>` (crate
/// `eventplane-eventstore`: SHA-256 over `eventplane/event/v1\0`, then each of `source` and `id`
/// preceded by its length as a big-endian u64).
pub(crate) fn event_record_key(tenant: &str, source: &str, id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"eventplane/event/v1\0");
    for part in [source, id] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let hash: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t/{tenant}/r/evt/evt_{}", &hash[..32])
}

/// Reads the stored record of the event `id` from `source` of `tenant` from the state
/// directory's SQLite store (read-only; works while the application runs, the store being in
/// WAL mode); `None` when it is not stored.
pub(crate) fn stored_event(
    state: &Path,
    tenant: &str,
    source: &str,
    id: &str,
) -> anyhow::Result<Option<Value>> {
    let path = state.join("sqlite_key_value.db");
    let db =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", path.display()))?;
    db.busy_timeout(Duration::from_secs(5))?;
    let key = event_record_key(tenant, source, id);
    let mut statement =
        db.prepare("SELECT value FROM spin_key_value WHERE store = 'default' AND key = ?1")?;
    let mut rows = statement.query([&key])?;
    if let Some(row) = rows.next()? {
        let value: Vec<u8> = row.get(0)?;
        let record: Value =
            serde_json::from_slice(&value).with_context(|| format!("{key} does not hold JSON"))?;
        anyhow::ensure!(
            record["source"] == source && record["eventId"] == id,
            "{key} holds another event: {record}"
        );
        return Ok(Some(record));
    }
    // Not there. Should it be stored under another key, the test's key derivation is out of
    // date: say so rather than report the event missing.
    let prefix = format!("t/{tenant}/r/evt/");
    let mut statement = db.prepare(
        "SELECT key, value FROM spin_key_value WHERE store = 'default' AND substr(key, 1, length(?1)) = ?1",
    )?;
    let mut rows = statement.query([&prefix])?;
    while let Some(row) = rows.next()? {
        let (other, value): (String, Vec<u8>) = (row.get(0)?, row.get(1)?);
        let record: Value = serde_json::from_slice(&value).unwrap_or(Value::Null);
        anyhow::ensure!(
            !(record["source"] == source && record["eventId"] == id),
            "{source} {id} is stored under {other}, not under {key}: update event_record_key"
        );
    }
    Ok(None)
}

/// An ack check for [`FakePubSub::on_ack`]: every message acknowledged must carry a
/// CloudEvent whose record is already in the store of `state` for the tenant `default`. Only for
/// tests publishing valid events: an invalid one is acknowledged without being stored.
pub(crate) fn stored_before_ack(
    state: PathBuf,
) -> impl Fn(&[PublishedMessage]) -> Result<(), String> + Send + Sync + 'static {
    move |messages| {
        for message in messages {
            let Some((source, id)) = message.cloudevent_source_and_id() else {
                // Not a CloudEvent: eventplane rejects it (and acknowledges it) storing
                // nothing; nothing to check.
                continue;
            };
            match stored_event(&state, "default", &source, &id) {
                Ok(Some(_)) => {}
                Ok(None) => return Err(format!("{source} {id} acknowledged but not stored")),
                Err(err) => return Err(format!("{source} {id}: reading the store: {err:#}")),
            }
        }
        Ok(())
    }
}

/// Whether `text` (an error or a state's `lastError`, as JSON) mentions `needle`.
pub(crate) fn mentions(value: &Value, needle: &str) -> bool {
    value.to_string().contains(needle)
}
