//! Several instances on one store: two `eventplane up` processes (the test binary
//! `eventplane_under_test`, the host's own command line) with the store `default` on one Redis
//! (a runtime config file), which the tests start themselves (Debian's `redis-server`; skipped,
//! saying so, where it is absent, except under `CI=true`). Where real Spin is on `SPIN_BIN` or
//! `PATH`, the same tests also run on two `spin up` processes, except the two that need what
//! Spin cannot give: a `SIGKILL` that stops serving (`spin up`'s trigger process survives it)
//! and an answer while Redis is down.
//!
//! Shown through both instances at once: publishes split over both (every event stored once,
//! delivered to every subscription), concurrent ticks (each attempt made once), an instance
//! killed mid-delivery (the other finishes after the lease), concurrent registry writes (one
//! winner for a name, every event API listed), and Redis crashing between publishes (what was
//! accepted survives; while it is down requests get `503`, and service resumes by itself).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use eventplane_tests::bench::{
    ADMIN, Arrivals, Served, counting_subscriber, graphql, register_shop,
};
use eventplane_tests::redis::RedisServer;
use eventplane_tests::spin::{AppProcess, spin_binary};
use eventplane_tests::{Reply, TestServer, workspace_root};
use serde_json::{Value, json as j};

use crate::e2e_test;

/// `eventplane up`, built with the tests.
const EVENTPLANE: &str = env!("CARGO_BIN_EXE_eventplane_under_test");

/// Loopback subscribers allowed; the rest as given.
fn env<'a>(more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN),
        ("SPIN_VARIABLE_DELIVERY_ALLOWED_HOSTS", "http://127.0.0.1:*"),
        ("SPIN_VARIABLE_TOKEN_TTL_SECONDS", "3600"),
    ];
    env.extend_from_slice(more);
    env
}

/// One Redis, its runtime config, and two instances of the application on it.
struct Cluster {
    redis: RedisServer,
    config: tempfile::TempDir,
    a: AppProcess,
    b: AppProcess,
    _states: [tempfile::TempDir; 2],
}

impl Cluster {
    /// Starts Redis and two instances on `runtime` with `env`; `None` (skipped) without a
    /// redis-server.
    async fn start(runtime: &Runtime, env: &[(&str, &str)]) -> anyhow::Result<Option<Self>> {
        let Some(redis) = RedisServer::start()? else {
            return Ok(None);
        };
        let config = tempfile::tempdir()?;
        redis.runtime_config(config.path())?;
        let states = [tempfile::tempdir()?, tempfile::tempdir()?];
        let a = instance(runtime, config.path(), states[0].path(), env).await?;
        let b = instance(runtime, config.path(), states[1].path(), env).await?;
        Ok(Some(Self {
            redis,
            config,
            a,
            b,
            _states: states,
        }))
    }

    /// Each instance, in turn.
    fn both(&self) -> [&AppProcess; 2] {
        [&self.a, &self.b]
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.a.stop().await?;
        self.b.stop().await?;
        drop(self.config);
        drop(self.redis);
        Ok(())
    }
}

/// What serves each instance.
enum Runtime {
    /// `eventplane up` (the test binary).
    Eventplane,
    /// `spin up` of this binary.
    Spin(PathBuf),
}

impl Runtime {
    /// Real Spin, if there is one on `SPIN_BIN` or `PATH`; `None` (skipped, saying so) if not.
    fn spin() -> Option<Self> {
        let spin = spin_binary().map(Self::Spin);
        if spin.is_none() {
            eprintln!("skipped: no spin on SPIN_BIN or PATH");
        }
        spin
    }
}

/// An instance of the repository's `spin.toml` on `runtime`, with the runtime config in
/// `config_dir`.
async fn instance(
    runtime: &Runtime,
    config_dir: &Path,
    state: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<AppProcess> {
    let config = config_dir.join("runtime-config.toml");
    let config = config.to_string_lossy();
    let args = ["--runtime-config-file", config.as_ref()];
    let manifest = workspace_root().join("spin.toml");
    match runtime {
        Runtime::Eventplane => {
            AppProcess::eventplane_up(Path::new(EVENTPLANE), &manifest, state, env, &args).await
        }
        Runtime::Spin(spin) => AppProcess::start_with(spin, &manifest, state, env, &args).await,
    }
}

/// Publishes `order.created.v1` with id `id` to `app`: the status and the body.
async fn publish(
    http: &reqwest::Client,
    app: &AppProcess,
    token: &str,
    id: &str,
) -> anyhow::Result<(u16, Value)> {
    let event = j!({"specversion": "1.0", "id": id, "source": "/applications/bench-shop",
        "type": "order.created.v1", "data": {"orderId": id}});
    let answer = http
        .post(app.url("/events/publish"))
        .bearer_auth(token)
        .header("content-type", "application/cloudevents+json")
        .body(event.to_string())
        .send()
        .await?;
    let status = answer.status().as_u16();
    let body = answer.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// `POST /dispatcher/tick` on `app`; the counts.
async fn tick(http: &reqwest::Client, app: &AppProcess) -> anyhow::Result<Value> {
    let answer = http
        .post(app.url("/dispatcher/tick?budgetMs=5000"))
        .bearer_auth(ADMIN)
        .send()
        .await?;
    anyhow::ensure!(answer.status() == 200, "tick: {}", answer.status());
    Ok(answer.json().await?)
}

/// Ticks both instances until `done` holds (or 60 s pass).
async fn tick_until(
    http: &reqwest::Client,
    cluster: &Cluster,
    done: impl Fn() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() && Instant::now() < deadline {
        for app in cluster.both() {
            tick(http, app).await?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The scenario `$scenario` as two tests: on `eventplane up`, and on real Spin (skipped,
/// saying so, where there is none).
macro_rules! on_both_runtimes {
    ($scenario:ident: $on_eventplane:ident, $on_spin:ident) => {
        e2e_test! {
            async fn $on_eventplane() -> anyhow::Result<()> {
                $scenario(&Runtime::Eventplane).await
            }
        }

        e2e_test! {
            async fn $on_spin() -> anyhow::Result<()> {
                match Runtime::spin() {
                    Some(spin) => $scenario(&spin).await,
                    None => Ok(()),
                }
            }
        }
    };
}

/// The ids that did not arrive exactly once, with their counts (`0`: never).
fn not_once(arrivals: &Arrivals, ids: &[String]) -> Vec<(String, u32)> {
    let arrivals = arrivals.lock().expect("lock");
    ids.iter()
        .map(|id| (id.clone(), arrivals.get(id).map_or(0, |(_, n)| *n)))
        .filter(|(_, n)| *n != 1)
        .collect()
}

on_both_runtimes!(publishes_over_two_instances_are_stored_once_and_delivered_to_every_subscription: publishes_over_two_instances_are_stored_once_and_delivered_to_every_subscription_on_eventplane, publishes_over_two_instances_are_stored_once_and_delivered_to_every_subscription_on_spin);

async fn publishes_over_two_instances_are_stored_once_and_delivered_to_every_subscription(
    runtime: &Runtime,
) -> anyhow::Result<()> {
    let Some(cluster) = Cluster::start(runtime, &env(&[])).await? else {
        return Ok(());
    };
    let http = reqwest::Client::new();
    let (first, first_arrivals) = counting_subscriber().await?;
    let (second, second_arrivals) = counting_subscriber().await?;
    let token = register_shop(&http, &cluster.a as &dyn Served, &first.url("/in")).await?;
    let answer = http
        .post(cluster.b.url("/subscriptions"))
        .bearer_auth(ADMIN)
        .json(&j!({"name": "second", "sink": {"url": second.url("/in")},
                   "filter": {"application": "bench-shop"}}))
        .send()
        .await?;
    anyhow::ensure!(
        answer.status() == 201,
        "second subscription: {}",
        answer.status()
    );

    // 16 publishers; every event is sent to both instances at once.
    let ids: Vec<String> = (0..160).map(|n| format!("split-{n}")).collect();
    let next = Arc::new(AtomicUsize::new(0));
    let mut publishers = Vec::new();
    for _ in 0..16 {
        let (http, ids, next, token) = (http.clone(), ids.clone(), next.clone(), token.clone());
        let (a, b) = (cluster.a.url(""), cluster.b.url(""));
        publishers.push(tokio::spawn(async move {
            let mut firsts = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let Some(id) = ids.get(n) else {
                    return Ok::<_, anyhow::Error>(firsts);
                };
                let event =
                    j!({"specversion": "1.0", "id": id, "source": "/applications/bench-shop",
                    "type": "order.created.v1", "data": {"orderId": id}})
                    .to_string();
                let send = |base: String| {
                    http.post(format!("{base}/events/publish"))
                        .bearer_auth(&token)
                        .header("content-type", "application/cloudevents+json")
                        .body(event.clone())
                        .send()
                };
                let (x, y) = tokio::join!(send(a.clone()), send(b.clone()));
                for answer in [x?, y?] {
                    anyhow::ensure!(answer.status() == 202, "{id}: {}", answer.status());
                    let body: Value = answer.json().await?;
                    if body["duplicate"] == false {
                        firsts.push(id.clone());
                    }
                }
            }
        }));
    }
    let mut firsts = Vec::new();
    for publisher in publishers {
        firsts.extend(publisher.await??);
    }
    firsts.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(
        firsts, expected,
        "each event stored once: one of its two publishes was new"
    );

    tick_until(&http, &cluster, || {
        not_once(&first_arrivals, &ids).is_empty() && not_once(&second_arrivals, &ids).is_empty()
    })
    .await?;
    assert_eq!(not_once(&first_arrivals, &ids), [], "first subscription");
    assert_eq!(not_once(&second_arrivals, &ids), [], "second subscription");
    cluster.stop().await
}

on_both_runtimes!(concurrent_ticks_on_both_instances_make_each_attempt_once: concurrent_ticks_on_both_instances_make_each_attempt_once_on_eventplane, concurrent_ticks_on_both_instances_make_each_attempt_once_on_spin);

async fn concurrent_ticks_on_both_instances_make_each_attempt_once(
    runtime: &Runtime,
) -> anyhow::Result<()> {
    let Some(cluster) = Cluster::start(
        runtime,
        &env(&[("SPIN_VARIABLE_DELIVERY_HANDOFF", "false")]),
    )
    .await?
    else {
        return Ok(());
    };
    let http = reqwest::Client::new();
    let (subscriber, arrivals) = counting_subscriber().await?;
    let token = register_shop(&http, &cluster.b as &dyn Served, &subscriber.url("/in")).await?;
    let ids: Vec<String> = (0..120).map(|n| format!("tick-{n}")).collect();
    for (n, id) in ids.iter().enumerate() {
        let app = cluster.both()[n % 2];
        let (status, body) = publish(&http, app, &token, id).await?;
        anyhow::ensure!(status == 202, "{id}: {status} {body}");
    }
    // Two tick loops per instance, at once, until everything arrived.
    let mut loops = Vec::new();
    for n in 0..4 {
        let (http, url, arrivals, ids) = (
            http.clone(),
            cluster.both()[n % 2].url("/dispatcher/tick?budgetMs=5000"),
            arrivals.clone(),
            ids.clone(),
        );
        loops.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while not_once(&arrivals, &ids).iter().any(|(_, n)| *n == 0)
                && Instant::now() < deadline
            {
                let answer = http.post(&url).bearer_auth(ADMIN).send().await?;
                anyhow::ensure!(answer.status() == 200, "tick: {}", answer.status());
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for ticking in loops {
        ticking.await??;
    }
    assert_eq!(
        not_once(&arrivals, &ids),
        [],
        "each event delivered exactly once"
    );
    cluster.stop().await
}

e2e_test! {
    async fn an_instance_killed_mid_delivery_leaves_its_deliveries_to_the_other() -> anyhow::Result<()> {
        let Some(cluster) = Cluster::start(&Runtime::Eventplane, &env(&[
            ("SPIN_VARIABLE_DELIVERY_HANDOFF", "false"),
            ("SPIN_VARIABLE_DELIVERY_LEASE_SECONDS", "2"),
        ])).await? else {
            return Ok(());
        };
        let http = reqwest::Client::new();
        // A slow subscriber: each delivery takes a second, so the killed instance is mid-way.
        let arrivals: Arrivals = Arc::default();
        let seen = arrivals.clone();
        let subscriber = TestServer::start_with(move |request| {
            if let Some(id) = request.header("ce-id") {
                let mut seen = seen.lock().expect("lock");
                seen.entry(id.to_owned()).or_insert((Instant::now(), 0)).1 += 1;
            }
            Reply::new(204, "").after(Duration::from_secs(1))
        })
        .await?;
        let token = register_shop(&http, &cluster.a as &dyn Served, &subscriber.url("/in")).await?;
        let ids: Vec<String> = (0..12).map(|n| format!("kill-{n}")).collect();
        for id in &ids {
            let (status, body) = publish(&http, &cluster.a, &token, id).await?;
            anyhow::ensure!(status == 202, "{id}: {status} {body}");
        }
        let Cluster { redis, config, a, b, _states } = cluster;
        let ticking = {
            let (http, url) = (http.clone(), a.url("/dispatcher/tick?budgetMs=30000"));
            tokio::spawn(async move { http.post(url).bearer_auth(ADMIN).send().await })
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        a.kill().await?; // SIGKILL, mid-delivery
        let _ = ticking.await?; // its connection was cut
        let started = arrivals.lock().expect("lock").len();
        assert!(started < ids.len(), "the killed instance was mid-way ({started} begun)");

        let deadline = Instant::now() + Duration::from_secs(60);
        while not_once(&arrivals, &ids).iter().any(|(_, n)| *n == 0) && Instant::now() < deadline {
            tick(&http, &b).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let missing: Vec<_> = not_once(&arrivals, &ids).into_iter().filter(|(_, n)| *n == 0).collect();
        assert_eq!(missing, [], "the other instance delivered everything after the lease");
        b.stop().await?;
        drop((config, redis));
        Ok(())
    }
}

on_both_runtimes!(registry_writes_on_both_instances_agree: registry_writes_on_both_instances_agree_on_eventplane, registry_writes_on_both_instances_agree_on_spin);

async fn registry_writes_on_both_instances_agree(runtime: &Runtime) -> anyhow::Result<()> {
    let Some(cluster) = Cluster::start(runtime, &env(&[])).await? else {
        return Ok(());
    };
    let http = reqwest::Client::new();
    // The same name on both instances, eight times at once: exactly one wins.
    let mut creates = Vec::new();
    for n in 0..8 {
        let (http, url) = (http.clone(), cluster.both()[n % 2].url("/graphql"));
        creates.push(tokio::spawn(async move {
            let body: Value = http
                .post(url)
                .bearer_auth(ADMIN)
                .json(&j!({"query": "mutation { createApplication(in: {name: \"contested\"}) { id } }"}))
                .send()
                .await?
                .json()
                .await?;
            Ok::<_, anyhow::Error>(body)
        }));
    }
    let mut winners = Vec::new();
    for create in creates {
        let body = create.await??;
        match body["data"]["createApplication"]["id"].as_str() {
            Some(id) => winners.push(id.to_owned()),
            None => assert!(body["errors"].to_string().contains("contested"), "{body}"),
        }
    }
    assert_eq!(winners.len(), 1, "one winner: {winners:?}");
    let app = winners[0].clone();

    // Eight event APIs added at once, half through each instance: all listed, on both.
    let spec = j!({"asyncapi": "2.6.0", "info": {"title": "t", "version": "1.0.0"},
        "channels": {"thing.happened.v1": {"subscribe": {"message": {"payload": {"type": "object"}}}}}});
    let mut adds = Vec::new();
    for n in 0..8 {
        let (http, app_id, spec) = (http.clone(), app.clone(), spec.to_string());
        let target: &AppProcess = cluster.both()[n % 2];
        let url = target.url("/graphql");
        adds.push(tokio::spawn(async move {
            let body: Value = http
                .post(url)
                .bearer_auth(ADMIN)
                .json(&j!({"query": "mutation($app: ID!, $in: EventAPIDefinitionInput!) { addEventAPI(applicationID: $app, in: $in) { id } }",
                           "variables": {"app": app_id, "in": {"name": format!("api-{n}"),
                             "spec": {"data": spec, "eventSpecType": "ASYNC_API", "format": "JSON"}}}}))
                .send()
                .await?
                .json()
                .await?;
            anyhow::ensure!(body.get("errors").is_none(), "addEventAPI: {body}");
            Ok(())
        }));
    }
    for add in adds {
        add.await??;
    }
    for instance in cluster.both() {
        let data = graphql(
            &http,
            instance as &dyn Served,
            "query($id: ID!) { application(id: $id) { eventAPIs { totalCount data { name } } } }",
            j!({"id": app}),
        )
        .await?;
        assert_eq!(data["application"]["eventAPIs"]["totalCount"], 8, "{data}");
    }
    cluster.stop().await
}

e2e_test! {
    async fn a_redis_crash_loses_no_accepted_event_and_reads_as_503_meanwhile() -> anyhow::Result<()> {
        redis_crash(&Runtime::Eventplane).await
    }
}

/// Only on `eventplane up`: Spin 4.0.2's Redis store does not answer while Redis is down, nor
/// (within 30 s) after it is back (README, "Known issues").
async fn redis_crash(runtime: &Runtime) -> anyhow::Result<()> {
    let Some(mut cluster) = Cluster::start(
        runtime,
        &env(&[("SPIN_VARIABLE_DELIVERY_HANDOFF", "false")]),
    )
    .await?
    else {
        return Ok(());
    };
    let http = reqwest::Client::new();
    let (subscriber, _) = counting_subscriber().await?;
    let token = register_shop(&http, &cluster.a as &dyn Served, &subscriber.url("/in")).await?;
    let ids: Vec<String> = (0..20).map(|n| format!("durable-{n}")).collect();
    for id in &ids {
        let (status, body) = publish(&http, &cluster.b, &token, id).await?;
        anyhow::ensure!(
            status == 202 && body["duplicate"] == false,
            "{id}: {status} {body}"
        );
    }

    cluster.redis.crash()?;
    for app in cluster.both() {
        let (status, body) = publish(&http, app, &token, "while-down").await?;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE", "{body}");
        let answer = http
            .post(app.url("/graphql"))
            .bearer_auth(ADMIN)
            .json(&j!({"query": "{ applications { totalCount } }"}))
            .send()
            .await?;
        let status = answer.status().as_u16();
        let retry_after = answer.headers().get("retry-after").cloned();
        let body: Value = answer.json().await?;
        assert_eq!(status, 503, "{body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
            "{body}"
        );
        assert!(retry_after.is_some(), "Retry-After");
    }

    cluster.redis.start_again()?;
    // Service resumes by itself; every event accepted before the crash is still stored (a
    // second publish of it is a duplicate), through either instance.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = publish(&http, &cluster.a, &token, "after-restart").await?;
        if status == 202 || Instant::now() > deadline {
            assert_eq!(status, 202, "resumed after Redis came back");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (n, id) in ids.iter().enumerate() {
        let (status, body) = publish(&http, cluster.both()[n % 2], &token, id).await?;
        assert_eq!(
            (status, body["duplicate"].clone()),
            (202, j!(true)),
            "{id}: {body}"
        );
    }
    cluster.stop().await
}

on_both_runtimes!(a_publish_costs_redis_few_round_trips: a_publish_costs_redis_few_round_trips_on_eventplane, a_publish_costs_redis_few_round_trips_on_spin);

/// What one publish (no duplicate, no hand-off) sends to Redis, counted by the server itself:
/// each command is one round trip, and with `appendfsync always` each waits for a sync.
///
/// - `eventplane up` (`get-many` is one `MGET`): the keys known before the body is read (the
///   signing key, the verified-token cache, the application's name, record and event-API index,
///   the subscriptions) in one `MGET`, the event API and the source marker in a second, the
///   claim and the sequence (two `INCRBY`), the log entry and record (one `MSET`), and the log
///   cursor (one `GET`): 6.
/// - Spin 4.0.2: the store's open (`PING`), a `get-many` its Redis store cannot make (it sends
///   `KEYS` with the keys, which Redis refuses), so one `GET` per key (8), then the same
///   `INCRBY`s, `MSET`, and `GET`: 14.
async fn a_publish_costs_redis_few_round_trips(runtime: &Runtime) -> anyhow::Result<()> {
    // Without the hand-off, the commands counted are the publish's own.
    let env = env(&[("SPIN_VARIABLE_DELIVERY_HANDOFF", "false")]);
    let Some(OnItsOwnRedis { redis, app, _dirs }) = on_its_own_redis(runtime, &env).await? else {
        return Ok(());
    };
    let http = reqwest::Client::new();
    let token = register_shop(&http, &app as &dyn Served, "http://127.0.0.1:9/in").await?;
    // The first publish makes what the next ones find: the verified-token cache entry and the
    // source marker.
    let (status, body) = publish(&http, &app, &token, "first").await?;
    anyhow::ensure!(status == 202, "{status} {body}");
    const PUBLISHES: u64 = 20;
    let per_publish: &[(&str, u64)] = match runtime {
        Runtime::Eventplane => &[("get", 1), ("incrby", 2), ("mget", 2), ("mset", 1)],
        Runtime::Spin(_) => &[
            ("get", 9),
            ("incrby", 2),
            ("keys", 1),
            ("mset", 1),
            ("ping", 1),
        ],
    };
    assert_commands_per_request(&redis, PUBLISHES, per_publish, "publishes", async {
        for n in 0..PUBLISHES {
            let (status, body) = publish(&http, &app, &token, &format!("counted-{n}")).await?;
            anyhow::ensure!(
                status == 202 && body["duplicate"] == false,
                "{status} {body}"
            );
        }
        Ok(())
    })
    .await?;
    app.stop().await
}

/// One instance on a Redis of its own, for counting what its requests send to Redis. Keep
/// `_dirs` bound while the instance runs (its runtime config and state directory).
struct OnItsOwnRedis {
    redis: RedisServer,
    app: AppProcess,
    _dirs: [tempfile::TempDir; 2],
}

/// [`OnItsOwnRedis`], on `runtime` with `env`; `None` where there is no Redis (skipped).
async fn on_its_own_redis(
    runtime: &Runtime,
    env: &[(&str, &str)],
) -> anyhow::Result<Option<OnItsOwnRedis>> {
    let Some(redis) = RedisServer::start()? else {
        return Ok(None);
    };
    let config = tempfile::tempdir()?;
    redis.runtime_config(config.path())?;
    let state = tempfile::tempdir()?;
    let app = instance(runtime, config.path(), state.path(), env).await?;
    Ok(Some(OnItsOwnRedis {
        redis,
        app,
        _dirs: [config, state],
    }))
}

/// Runs `requests` (`n` of them) and checks that Redis ran, meanwhile, exactly `n` times
/// `per_request` of each command (`INFO`, the counting itself, aside), as Redis counts them:
/// run or refused, and a command a Lua script makes counts too.
async fn assert_commands_per_request(
    redis: &RedisServer,
    n: u64,
    per_request: &[(&str, u64)],
    what: &str,
    requests: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let before = redis.command_calls()?;
    requests.await?;
    let after = redis.command_calls()?;
    let sent: std::collections::BTreeMap<&str, u64> = after
        .iter()
        .filter(|(name, _)| name.as_str() != "info")
        .map(|(name, calls)| {
            (
                name.as_str(),
                calls - before.get(name).copied().unwrap_or(0),
            )
        })
        .filter(|(_, calls)| *calls > 0)
        .collect();
    let expected: std::collections::BTreeMap<&str, u64> = per_request
        .iter()
        .map(|(name, calls)| (*name, calls * n))
        .collect();
    assert_eq!(sent, expected, "commands sent for {n} {what}");
    Ok(())
}

on_both_runtimes!(a_delivery_costs_redis_few_round_trips: a_delivery_costs_redis_few_round_trips_on_eventplane, a_delivery_costs_redis_few_round_trips_on_spin);

/// What one published event costs Redis when its one subscriber gets it by the hand-off,
/// counted by the server itself (a command a Lua script makes counts too). On top of the
/// publish's own commands (`a_publish_costs_redis_few_round_trips`), the gateway reads the
/// subscription's record (does it receive the event?), named from the subscriptions index its
/// first batch fetched, so that it comes with its second batch; and the dispatcher's
/// hand-off, reading ahead:
///
/// - on `eventplane up`: the event, the subscriptions index and the retry queue's cursor (for
///   the drain of due retries after the event's delivery) in one `MGET`, the subscription's
///   record and the delivery's state in a second; the creator's election (`INCRBY`) and the
///   leased state (`SET`); the finishing compare-and-swap, a `GET` and one `EVALSHA` (whose
///   script makes a `GET` and a `SET`): 6 round trips. In all, per event: 2 + 2 `MGET`,
///   3 `INCRBY`, 1 `MSET`, 1 + 2 `GET`, 1 + 1 `SET`, 1 `EVALSHA`: 12 round trips.
/// - on Spin 4.0.2, where every batch read is one `GET` per key: the gateway's `GET` of the
///   record; and the store's open (`PING`), a refused `get-many` (`KEYS`, Known issues) and
///   then 5 `GET`s (the cursor among them), the same `INCRBY` and `SET`, the swap (`WATCH`
///   and `GET` twice, `MULTI`/`SET`/`EXEC`, a refused `UNWATCH`) and eventplane's read-back
///   (`GET`: did the swap land?): 16 round trips. With the publish's 14 and the gateway's
///   `GET`: 18 `GET`s, 2 `PING`s, 2 `KEYS` per event, 31 round trips.
async fn a_delivery_costs_redis_few_round_trips(runtime: &Runtime) -> anyhow::Result<()> {
    let Some(OnItsOwnRedis { redis, app, _dirs }) = on_its_own_redis(runtime, &env(&[])).await?
    else {
        return Ok(());
    };
    let http = reqwest::Client::new();
    let (subscriber, arrivals) = counting_subscriber().await?;
    let token = register_shop(&http, &app as &dyn Served, &subscriber.url("/in")).await?;
    let delivered = |n: usize| {
        let arrivals = arrivals.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while arrivals.lock().expect("lock").len() < n {
                anyhow::ensure!(Instant::now() < deadline, "only {:?} delivered", arrivals);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(())
        }
    };
    let (status, body) = publish(&http, &app, &token, "first").await?;
    anyhow::ensure!(status == 202, "{status} {body}");
    delivered(1).await?;
    const EVENTS: u64 = 10;
    let per_event: &[(&str, u64)] = match runtime {
        Runtime::Eventplane => &[
            ("evalsha", 1),
            ("get", 3),
            ("incrby", 3),
            ("mget", 4),
            ("mset", 1),
            ("set", 2),
        ],
        Runtime::Spin(_) => &[
            ("exec", 1),
            ("get", 18),
            ("incrby", 3),
            ("keys", 2),
            ("mset", 1),
            ("multi", 1),
            ("ping", 2),
            ("set", 2),
            ("unwatch", 1),
            ("watch", 2),
        ],
    };
    let what = "published and delivered events";
    assert_commands_per_request(&redis, EVENTS, per_event, what, async {
        for n in 0..EVENTS {
            let (status, body) = publish(&http, &app, &token, &format!("counted-{n}")).await?;
            anyhow::ensure!(status == 202, "{status} {body}");
            // One at a time, so that each hand-off delivers its own event.
            delivered(2 + n as usize).await?;
        }
        Ok(())
    })
    .await?;
    app.stop().await?;
    drop(subscriber);
    Ok(())
}
