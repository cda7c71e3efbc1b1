//! Delivery through the real application: events published to the gateway reach a real
//! subscriber server on `POST /dispatcher/tick`, signed, with retries on a schedule and dead
//! letters.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use eventplane_tests::{Received, Reply, TestServer};
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json as j};
use sha2::Sha256;

use super::{Api, id_of};
use crate::e2e_test;
use crate::gateway::{SHOP, Shop, order};
use crate::registry::ADMIN_TOKEN;

/// Loopback subscribers are allowed; delivery waits for the tick (no hand-off by the gateway),
/// so that each test drives every attempt itself.
pub(crate) const ENV: &[(&str, &str)] = &[
    ("SPIN_VARIABLE_DELIVERY_ALLOWED_HOSTS", "http://127.0.0.1:*"),
    ("SPIN_VARIABLE_DELIVERY_HANDOFF", "false"),
];

/// Loopback subscribers are allowed, and the gateway hands events off (the default).
pub(crate) const HANDOFF_ENV: &[(&str, &str)] =
    &[("SPIN_VARIABLE_DELIVERY_ALLOWED_HOSTS", "http://127.0.0.1:*")];

/// The secret the tests' subscriptions sign with.
pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Verifies a Standard Webhooks signature as a receiver does (written from the spec: HMAC-SHA256
/// with the base64-decoded secret after `whsec_`, over `id.timestamp.body`; `v1,<base64>`
/// entries separated by spaces).
fn signature_ok(request: &Received) -> bool {
    let (Some(id), Some(timestamp), Some(signatures)) = (
        request.header("webhook-id"),
        request.header("webhook-timestamp"),
        request.header("webhook-signature"),
    ) else {
        return false;
    };
    let engine = base64::engine::general_purpose::STANDARD;
    let Ok(key) = engine.decode(SECRET.trim_start_matches("whsec_")) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = engine.encode(mac.finalize().into_bytes());
    signatures
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

/// `POST /dispatcher/tick` with the admin token; the counts.
pub(crate) async fn tick(shop: &Shop) -> anyhow::Result<Value> {
    tick_app(&shop.r.app).await
}

/// [`tick`] on any running application.
pub(crate) async fn tick_app(app: &eventplane_tests::TestApp) -> anyhow::Result<Value> {
    let response = reqwest::Client::new()
        .post(app.url("/dispatcher/tick"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 200,
        "tick answered {}",
        response.status()
    );
    Ok(response.json().await?)
}

pub(crate) fn subscription(url: &str, delivery: Value) -> Value {
    j!({"name": "orders", "sink": {"url": url}, "filter": {"application": SHOP},
        "delivery": delivery, "signing": {"secret": SECRET}})
}

e2e_test! {
    async fn a_published_event_is_delivered_signed_in_binary_mode() -> anyhow::Result<()> {
        let subscriber = TestServer::start(204, "").await?;
        let shop = Shop::start_with(ENV).await?;
        let subs = Api::new(&shop.r.app);
        subs.create(&subscription(&subscriber.url("/hook"), j!({}))).await?;
        shop.client().structured(&order("o-1")).await?.expect(202, "publish")?;
        let counts = tick(&shop).await?;
        assert_eq!(counts["succeeded"], 1, "{counts}");
        let received = subscriber.received();
        assert_eq!(received.len(), 1);
        let request = &received[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hook");
        assert_eq!(request.header("ce-id"), Some("o-1"));
        assert_eq!(request.header("ce-type"), Some("order.created.v1"));
        assert_eq!(request.header("ce-source"), Some("/applications/shop"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        let data: Value = serde_json::from_slice(&request.body)?;
        assert_eq!(data["orderId"], "o-1");
        assert!(signature_ok(request), "{request:?}");
        // Nothing more to do; a second tick sends nothing.
        assert_eq!(tick(&shop).await?["attempts"], 0);
        assert_eq!(subscriber.received().len(), 1);
        shop.stop().await
    }
}

e2e_test! {
    async fn failures_are_retried_on_schedule_then_dead_lettered_to_the_dead_letter_sink()
    -> anyhow::Result<()> {
        // 503, 503, 200: three attempts, the retries no sooner than the backoff.
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let flaky = TestServer::start_with(move |_| {
            match seen.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Reply::new(503, "busy"),
                _ => Reply::new(200, "ok"),
            }
        })
        .await?;
        let dead_letters = TestServer::start(200, "").await?;
        let broken = TestServer::start(400, "bad request").await?;
        let shop = Shop::start_with(ENV).await?;
        let subs = Api::new(&shop.r.app);
        let delivery = j!({"backoffDelay": "PT0.3S", "backoffPolicy": "linear"});
        let flaky_id = id_of(&subs.create(&subscription(&flaky.url("/in"), delivery)).await?)?;
        let rejecting = subs
            .create(&subscription(
                &broken.url("/in"),
                j!({"deadLetterSink": {"url": dead_letters.url("/dlq")}}),
            ))
            .await?;
        shop.client().structured(&order("o-2")).await?.expect(202, "publish")?;
        let start = Instant::now();
        let first = tick(&shop).await?;
        assert_eq!((first["retried"].as_u64(), first["deadLettered"].as_u64()), (Some(1), Some(1)), "{first}");
        // Retries come due: 0.3 s, then 0.6 s later (linear).
        while calls.load(Ordering::SeqCst) < 3 && start.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tick(&shop).await?;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // 0.3 s + 0.6 s, each less at most the 20 % jitter.
        assert!(start.elapsed() >= Duration::from_millis(720), "{:?}", start.elapsed());
        // Every attempt is on record, in order.
        let (status, page) =
            call(&shop, reqwest::Method::GET, &format!("/{flaky_id}/attempts"), None).await?;
        assert_eq!(status, 200, "{page}");
        let summary: Vec<(Value, Value, Value)> = page["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| (a["attempt"].clone(), a["responseStatus"].clone(), a["trigger"].clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (j!(1), j!(503), j!("first")),
                (j!(2), j!(503), j!("retry")),
                (j!(3), j!(200), j!("retry"))
            ],
            "{page}"
        );
        assert_eq!(page["data"][0]["outcome"], "failed");
        assert_eq!(page["data"][0]["responseBody"], "busy");
        assert!(page["data"][0]["nextAttemptAt"].is_string());
        assert!(page["data"][2]["nextAttemptAt"].is_null());
        let event = page["data"][0]["eventId"].as_str().unwrap_or_default().to_owned();
        let path = format!("/{flaky_id}/attempts?status=failed&eventId={event}");
        let (_, failed) = call(&shop, reqwest::Method::GET, &path, None).await?;
        assert_eq!(failed["data"].as_array().map(Vec::len), Some(2), "{failed}");
        let path = format!("/{flaky_id}/attempts?status=maybe");
        assert_eq!(call(&shop, reqwest::Method::GET, &path, None).await?.0, 400);
        // The 400 was not retried; the dead-letter sink got the event with the reason.
        assert_eq!(broken.received().len(), 1);
        let dlq = dead_letters.received();
        assert_eq!(dlq.len(), 1, "{dlq:?}");
        assert_eq!(dlq[0].header("ce-id"), Some("o-2"));
        assert_eq!(dlq[0].header("ce-deliveryattempts"), Some("1"));
        assert!(dlq[0].header("ce-deadletterreason").is_some_and(|r| r.contains("400")));
        assert!(id_of(&rejecting).is_ok());
        shop.stop().await
    }
}

/// `method path` of the subscriptions API with the admin token; status and JSON body.
pub(crate) async fn call(
    shop: &Shop,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut request = reqwest::Client::new()
        .request(method, shop.r.app.url(&format!("/subscriptions{path}")))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    };
    Ok((status, body))
}

e2e_test! {
    async fn a_dead_letter_is_listed_and_redelivered() -> anyhow::Result<()> {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let subscriber = TestServer::start_with(move |_| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::new(400, "no such order")
            } else {
                Reply::new(200, "ok")
            }
        })
        .await?;
        let shop = Shop::start_with(ENV).await?;
        let subs = Api::new(&shop.r.app);
        let id = id_of(&subs.create(&subscription(&subscriber.url("/in"), j!({}))).await?)?;
        shop.client().structured(&order("o-3")).await?.expect(202, "publish")?;
        assert_eq!(tick(&shop).await?["deadLettered"], 1);
        let (status, page) = call(&shop, reqwest::Method::GET, &format!("/{id}/dead-letters"), None).await?;
        assert_eq!(status, 200, "{page}");
        let letters = page["data"].as_array().cloned().unwrap_or_default();
        assert_eq!(letters.len(), 1, "{page}");
        assert_eq!(letters[0]["attempts"], 1);
        assert_eq!(letters[0]["lastStatus"], 400);
        assert!(letters[0]["reason"].as_str().is_some_and(|r| r.contains("400")));
        let event = letters[0]["eventId"].as_str().unwrap_or_default().to_owned();
        let path = format!("/{id}/dead-letters/{event}/redeliver");
        let (status, answer) = call(&shop, reqwest::Method::POST, &path, None).await?;
        assert_eq!(status, 202, "{answer}");
        let (_, page) = call(&shop, reqwest::Method::GET, &format!("/{id}/dead-letters"), None).await?;
        assert_eq!(page["data"], j!([]));
        assert_eq!(tick(&shop).await?["succeeded"], 1);
        let received = subscriber.received();
        assert_eq!(received.len(), 2);
        assert_eq!(received[0].header("webhook-id"), received[1].header("webhook-id"));
        // Nothing left to redeliver.
        let (status, _) = call(&shop, reqwest::Method::POST, &path, None).await?;
        assert_eq!(status, 404);
        shop.stop().await
    }
}

e2e_test! {
    async fn replay_since_a_time_delivers_again_in_acceptance_order() -> anyhow::Result<()> {
        let subscriber = TestServer::start(200, "").await?;
        let shop = Shop::start_with(ENV).await?;
        let subs = Api::new(&shop.r.app);
        let id = id_of(&subs.create(&subscription(&subscriber.url("/in"), j!({}))).await?)?;
        shop.client().structured(&order("o-a")).await?.expect(202, "publish")?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let since = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        for id in ["o-b", "o-c", "o-d"] {
            shop.client().structured(&order(id)).await?.expect(202, "publish")?;
        }
        assert_eq!(tick(&shop).await?["succeeded"], 4);
        let (status, answer) =
            call(&shop, reqwest::Method::POST, &format!("/{id}/replay"), Some(j!({"since": since}))).await?;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["replayed"], 3, "{answer}");
        assert_eq!(tick(&shop).await?["succeeded"], 3);
        let order_ids: Vec<String> = subscriber
            .received()
            .iter()
            .filter_map(|r| r.header("ce-id").map(str::to_owned))
            .collect();
        assert_eq!(order_ids, ["o-a", "o-b", "o-c", "o-d", "o-b", "o-c", "o-d"]);
        let (status, answer) =
            call(&shop, reqwest::Method::POST, &format!("/{id}/replay"), Some(j!({"since": "soon"}))).await?;
        assert_eq!(status, 422, "{answer}");
        shop.stop().await
    }
}

e2e_test! {
    async fn every_route_of_the_openapi_document_is_served() -> anyhow::Result<()> {
        let shop = Shop::start_with(ENV).await?;
        let subs = Api::new(&shop.r.app);
        let id = id_of(&subs.create(&subscription("https://a.example/in", j!({}))).await?)?;
        let response = reqwest::get(shop.r.app.url("/subscriptions/openapi.json")).await?;
        assert_eq!(response.status(), 200, "the document needs no token");
        let document: Value = response.json().await?;
        assert_eq!(document["openapi"], "3.1.0");
        let client = reqwest::Client::new();
        let mut checked = 0;
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                if method == "parameters" {
                    continue;
                }
                let concrete = path
                    .replace("{id}", &id)
                    .replace("{eventId}", "evt_00000000000000000000000000000001");
                let mut request = client
                    .request(method.to_uppercase().parse()?, shop.r.app.url(&concrete))
                    .bearer_auth(ADMIN_TOKEN);
                if method == "post" || method == "put" {
                    request = request.json(&j!({}));
                }
                let response = request.send().await?;
                let status = response.status().as_u16();
                let body = response.text().await?;
                assert!(
                    status != 405 && !body.contains("no route for"),
                    "{method} {concrete}: {status} {body}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 13);
        shop.stop().await
    }
}

e2e_test! {
    async fn an_accepted_event_is_handed_off_and_delivered_without_a_tick() -> anyhow::Result<()> {
        let subscriber = TestServer::start(200, "").await?;
        let shop = Shop::start_with(HANDOFF_ENV).await?;
        Api::new(&shop.r.app)
            .create(&subscription(&subscriber.url("/in"), j!({})))
            .await?;
        let started = Instant::now();
        shop.client().structured(&order("o-h")).await?.expect(202, "publish")?;
        while subscriber.received().is_empty() && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let received = subscriber.received();
        assert_eq!(received.len(), 1, "delivered by the hand-off");
        assert_eq!(received[0].header("ce-id"), Some("o-h"));
        assert!(signature_ok(&received[0]));
        // The tick takes the event from the log and finds nothing left to send.
        let counts = tick(&shop).await?;
        assert_eq!((counts["events"].as_u64(), counts["attempts"].as_u64()), (Some(1), Some(0)), "{counts}");
        assert_eq!(subscriber.received().len(), 1);
        shop.stop().await
    }
}

e2e_test! {
    async fn a_publish_no_subscription_receives_still_drains_due_retries() -> anyhow::Result<()> {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let subscriber = TestServer::start_with(move |_| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::new(503, "busy")
            } else {
                Reply::new(200, "ok")
            }
        })
        .await?;
        let shop = Shop::start_with(HANDOFF_ENV).await?;
        let mut body = subscription(&subscriber.url("/in"), j!({"backoffDelay": "PT0.2S"}));
        body["filter"] = j!({"attributes": {"region": "eu"}});
        Api::new(&shop.r.app).create(&body).await?;
        let mut eu = order("o-eu");
        eu["region"] = j!("eu");
        shop.client().structured(&eu).await?.expect(202, "publish")?;
        let started = Instant::now();
        while calls.load(Ordering::SeqCst) < 1 && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the hand-off's first attempt");
        // Once the retry is due, an event the subscription does not receive is published: its
        // hand-off makes the due retry. No tick runs in this test.
        tokio::time::sleep(Duration::from_millis(400)).await;
        shop.client().structured(&order("o-us")).await?.expect(202, "publish")?;
        let started = Instant::now();
        while calls.load(Ordering::SeqCst) < 2 && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ids: Vec<Option<String>> = subscriber
            .received()
            .iter()
            .map(|r| r.header("ce-id").map(str::to_owned))
            .collect();
        assert_eq!(ids, [Some("o-eu".to_owned()), Some("o-eu".to_owned())]);
        shop.stop().await
    }
}

e2e_test! {
    async fn events_past_their_retention_are_purged_with_their_delivery_records() -> anyhow::Result<()> {
        // 0.0005 hours: events are kept 1.8 s.
        let env = [ENV, &[("SPIN_VARIABLE_EVENT_RETENTION_HOURS", "0.0005")]].concat();
        let subscriber = TestServer::start(200, "").await?;
        let shop = Shop::start_with(&env).await?;
        let subs = Api::new(&shop.r.app);
        let id = id_of(&subs.create(&subscription(&subscriber.url("/in"), j!({}))).await?)?;
        let since = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?;
        let first = shop.client().structured(&order("o-r")).await?;
        first.expect(202, "publish")?;
        let event = first.body["eventId"].as_str().unwrap_or_default().to_owned();
        let counts = tick(&shop).await?;
        assert_eq!((counts["succeeded"].clone(), counts["purged"].clone()), (j!(1), j!(0)), "{counts}");
        let path = format!("/{id}/attempts?eventId={event}");
        let (_, attempts) = call(&shop, reqwest::Method::GET, &path, None).await?;
        assert_eq!(attempts["data"].as_array().map(Vec::len), Some(1), "{attempts}");

        tokio::time::sleep(Duration::from_millis(2_000)).await;
        let counts = tick(&shop).await?;
        assert_eq!(counts["purged"], 1, "{counts}");
        // The event and its attempts are gone: nothing to replay, no attempts listed.
        let (status, answer) =
            call(&shop, reqwest::Method::POST, &format!("/{id}/replay"), Some(j!({"since": since}))).await?;
        assert_eq!((status, answer["replayed"].clone()), (202, j!(0)), "{answer}");
        let (_, attempts) = call(&shop, reqwest::Method::GET, &path, None).await?;
        assert_eq!(attempts["data"], j!([]), "{attempts}");
        // The deduplication window ended with it: the same event is accepted as new.
        let again = shop.client().structured(&order("o-r")).await?;
        again.expect(202, "publish again")?;
        assert_eq!(again.body["duplicate"], false, "{}", again.body);
        assert_eq!(tick(&shop).await?["succeeded"], 1);
        assert_eq!(subscriber.received().len(), 2);
        shop.stop().await
    }
}

e2e_test! {
    async fn an_oauth2_sink_gets_a_token_with_its_scope_once_and_reuses_it() -> anyhow::Result<()> {
        let issuer = TestServer::start_with(|_| {
            Reply::new(200, r#"{"access_token":"tok-1","token_type":"Bearer","expires_in":3600}"#)
                .header("content-type", "application/json")
        })
        .await?;
        let subscriber = TestServer::start(204, "").await?;
        let shop = Shop::start_with(ENV).await?;
        let subs = Api::new(&shop.r.app);
        let mut body = subscription(&subscriber.url("/in"), j!({}));
        body["sink"]["auth"] = j!({"oauth2": {"tokenUrl": issuer.url("/token"),
            "clientId": "shop-sink", "clientSecret": "s3cret", "scope": "events.write"}});
        subs.create(&body).await?;
        for id in ["o-t1", "o-t2"] {
            shop.client().structured(&order(id)).await?.expect(202, "publish")?;
        }
        assert_eq!(tick(&shop).await?["succeeded"], 2);
        let received = subscriber.received();
        assert_eq!(received.len(), 2);
        assert!(received.iter().all(|r| r.header("authorization") == Some("Bearer tok-1")), "{received:?}");
        // One token request (client credentials in Basic auth, the scope in the form), reused.
        let asked = issuer.received();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert_eq!(
            String::from_utf8_lossy(&asked[0].body),
            "grant_type=client_credentials&scope=events.write"
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("shop-sink:s3cret");
        assert_eq!(asked[0].header("authorization"), Some(format!("Basic {basic}").as_str()));
        shop.stop().await
    }
}
