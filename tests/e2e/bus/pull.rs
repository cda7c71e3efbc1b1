//! Pulling an external subscription on `POST /dispatcher/tick`: messages in both CloudEvents
//! modes reach a subscriber; nothing is acknowledged before it is stored; a bus failing
//! mid-batch loses nothing; invalid messages are rejected (recorded, acknowledged, not
//! delivered); a topic mismatch stops the pulling; the bus credentials are sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use eventplane_tests::pubsub::{
    PublishedMessage, RequestKind, binary_cloudevent, structured_cloudevent,
};
use serde_json::{Value, json as j};

use super::{
    Bus, OTHER_TOPIC, TOPIC, api_with, external_subscription, fake_bus, mentions, stored_before_ack,
};
use crate::e2e_test;
use crate::gateway::{SHOP_SOURCE, stored};
use eventplane_tests::{Reply, TestServer};

/// A count sent as a JSON number or, as proto3 JSON allows, a string.
fn count(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

/// Whether `value` is an RFC 3339 timestamp.
fn is_rfc3339(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
    })
}

/// A valid `order.created.v1` in binary mode with id `id`.
fn order(id: &str) -> PublishedMessage {
    binary_cloudevent(
        id,
        SHOP_SOURCE,
        "order.created.v1",
        j!({"orderId": id, "total": 12.5}),
    )
}

e2e_test! {
    async fn binary_and_structured_messages_reach_a_subscriber() -> anyhow::Result<()> {
        let bus = Bus::pull(j!({})).await?;
        let binary = bus.pubsub.publish(order("bus-1"));
        let structured = bus.pubsub.publish(structured_cloudevent(
            "bus-2",
            SHOP_SOURCE,
            "order.cancelled.v1",
            j!({"orderId": "bus-2"}),
        ));
        bus.tick_until("both delivered and acknowledged", |b| {
            b.delivered_all(&["bus-1", "bus-2"]) && b.pubsub.outstanding() == 0
        })
        .await?;

        let first = bus.delivery("bus-1").context("bus-1 not delivered")?;
        assert_eq!(first.header("ce-type"), Some("order.created.v1"));
        assert_eq!(first.header("ce-source"), Some(SHOP_SOURCE));
        assert_eq!(first.header("content-type"), Some("application/json"));
        let data: Value = serde_json::from_slice(&first.body)?;
        assert_eq!(data, j!({"orderId": "bus-1", "total": 12.5}));
        let second = bus.delivery("bus-2").context("bus-2 not delivered")?;
        assert_eq!(second.header("ce-type"), Some("order.cancelled.v1"));
        assert_eq!(second.header("ce-source"), Some(SHOP_SOURCE));
        let data: Value = serde_json::from_slice(&second.body)?;
        assert_eq!(data, j!({"orderId": "bus-2"}));

        let mut acknowledged = bus.pubsub.acknowledged();
        acknowledged.sort();
        let mut published = vec![binary, structured];
        published.sort();
        assert_eq!(acknowledged, published);

        // The subscription was read before the first pull, which asked for the default batch.
        let requests = bus.pubsub.requests();
        let first_pull = requests
            .iter()
            .position(|r| r.kind == RequestKind::Pull)
            .context("no pull")?;
        assert!(
            requests[..first_pull].iter().any(|r| r.kind == RequestKind::GetSubscription),
            "the subscription is read before pulling: {requests:?}"
        );
        assert_eq!(count(&requests[first_pull].json()["maxMessages"]), Some(100), "{requests:?}");
        let first_ack = requests
            .iter()
            .position(|r| r.kind == RequestKind::Acknowledge)
            .context("no acknowledge")?;
        assert!(first_pull < first_ack);

        let state = bus.sub_state().await?;
        assert_eq!(state["messagesTaken"], 2, "{state:#}");
        assert!(is_rfc3339(&state["lastPullAt"]), "{state:#}");
        assert!(state["lastError"].is_null(), "{state:#}");
        assert_eq!(state["rejected"]["data"], j!([]), "{state:#}");

        // Nothing more to take or deliver.
        bus.tick().await?;
        let mut delivered = bus.delivered();
        delivered.sort();
        assert_eq!(delivered, ["bus-1", "bus-2"]);
        bus.stop().await?;
        Ok(())
    }
}

e2e_test! {
    async fn nothing_is_acknowledged_before_it_is_stored() -> anyhow::Result<()> {
        // Batches of two, so that several pulls and acknowledges happen.
        let bus = Bus::pull(j!({"maxMessages": "2"})).await?;
        let check = Arc::new(stored_before_ack(bus.state_dir()));
        let never = order("never-published");
        assert!(check(std::slice::from_ref(&never)).is_err(), "the check must refuse what is not stored");
        let hook = check.clone();
        bus.pubsub.on_ack(move |messages| hook(messages));

        let ids = ["st-1", "st-2", "st-3", "st-4", "st-5"];
        let mut published: Vec<String> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let message = if i % 2 == 0 {
                    order(id)
                } else {
                    structured_cloudevent(id, SHOP_SOURCE, "order.created.v1", j!({"orderId": id}))
                };
                bus.pubsub.publish(message)
            })
            .collect();
        bus.tick_until("all acknowledged and delivered", |b| {
            b.pubsub.outstanding() == 0 && b.delivered_all(&ids)
        })
        .await?;

        assert_eq!(bus.pubsub.violations(), Vec::<String>::new(), "acknowledged before stored");
        // Five messages in batches of at most two: at least three acknowledges, each checked.
        assert!(bus.pubsub.ack_checks() >= 3, "the check ran {} times", bus.pubsub.ack_checks());
        let mut acknowledged = bus.pubsub.acknowledged();
        acknowledged.sort();
        published.sort();
        assert_eq!(acknowledged, published);
        let pulls = bus.pubsub.requests_of(RequestKind::Pull);
        assert!(
            pulls.iter().all(|p| count(&p.json()["maxMessages"]) == Some(2)),
            "every pull asks for maxMessages 2: {:?}",
            pulls.iter().map(|p| p.json()).collect::<Vec<_>>()
        );
        // The check sees stored events, and still refuses what never was.
        let stored_one = bus.pubsub.message(&published[0]).context("a published message")?;
        assert_eq!(check(&[stored_one]), Ok(()));
        assert!(check(&[never]).is_err());
        bus.stop().await?;
        Ok(())
    }
}

e2e_test! {
    async fn a_bus_failing_mid_batch_loses_nothing() -> anyhow::Result<()> {
        let bus = Bus::pull(j!({})).await?;
        let check = stored_before_ack(bus.state_dir());
        bus.pubsub.on_ack(check);
        // The pull works, the first acknowledge fails: the messages stay on the bus.
        bus.pubsub.fail_acks(1, 503);
        let ids = ["f-1", "f-2", "f-3"];
        for id in ids {
            bus.pubsub.publish(order(id));
        }
        bus.tick_until("an acknowledge failed", |b| {
            b.pubsub
                .requests_of(RequestKind::Acknowledge)
                .iter()
                .any(|r| r.status == 503)
        })
        .await?;
        // Their leases run out: Pub/Sub hands them out again; eventplane takes them again (as
        // duplicates of what it stored) and acknowledges them.
        bus.pubsub.expire_leases();
        bus.tick_until("all acknowledged and delivered", |b| {
            b.pubsub.outstanding() == 0 && b.delivered_all(&ids)
        })
        .await?;
        assert_eq!(bus.pubsub.violations(), Vec::<String>::new());
        // At least once: every event reached the subscriber, maybe more than once.
        for id in ids {
            assert!(bus.delivered().iter().any(|d| d == id), "{id} not delivered");
        }

        // A pull failing with 503 is reported, and the next tick after the bus recovered takes
        // the message.
        bus.pubsub.fail_pulls(1_000, 503);
        bus.pubsub.publish(order("f-4"));
        bus.tick().await?;
        let state = bus.sub_state().await?;
        assert!(
            state["lastError"].as_str().is_some_and(|e| e.contains("503") || e.contains("UNAVAILABLE")),
            "{state:#}"
        );
        assert!(!bus.delivered().iter().any(|d| d == "f-4"));
        assert_eq!(bus.pubsub.outstanding(), 1);
        bus.pubsub.clear_failures();
        bus.tick_until("f-4 acknowledged and delivered", |b| {
            b.pubsub.outstanding() == 0 && b.delivered_all(&["f-4"])
        })
        .await?;
        let state = bus.sub_state().await?;
        assert!(state["lastError"].is_null(), "the error clears once pulling works: {state:#}");
        assert!(state["messagesTaken"].as_u64().is_some_and(|n| n >= 4), "{state:#}");
        assert!(bus.pubsub.violations().is_empty(), "{:?}", bus.pubsub.violations());

        // One record per event, however often it was pulled.
        let state_dir = bus.stop().await?;
        let stored = stored(state_dir.path(), "default")?;
        assert_eq!(stored.publisher_ids(), ["f-1", "f-2", "f-3", "f-4"]);
        stored.check_pending_once()?;
        Ok(())
    }
}

e2e_test! {
    async fn invalid_messages_are_rejected_acknowledged_and_not_delivered() -> anyhow::Result<()> {
        let bus = Bus::pull(j!({})).await?;
        let good = bus.pubsub.publish(order("ok-1"));
        let no_type = bus
            .pubsub
            .publish(order("bad-notype").without_attribute("ce-type"));
        let unknown_type = bus.pubsub.publish(binary_cloudevent(
            "bad-type",
            SHOP_SOURCE,
            "order.shipped.v1",
            j!({"orderId": "bad-type"}),
        ));
        let bad_data = bus.pubsub.publish(binary_cloudevent(
            "bad-schema",
            SHOP_SOURCE,
            "order.created.v1",
            j!({"orderId": 42}),
        ));
        let garbage_bytes = vec![0xff, 0xfe, 0x00, 0x01];
        let garbage = bus.pubsub.publish(PublishedMessage::new(
            garbage_bytes.clone(),
            &[("content-type", "application/cloudevents+json")],
        ));
        bus.tick_until("every message acknowledged, ok-1 delivered", |b| {
            b.pubsub.outstanding() == 0 && b.delivered_all(&["ok-1"])
        })
        .await?;
        bus.tick().await?;
        let delivered = bus.delivered();
        assert!(delivered.iter().all(|d| d == "ok-1"), "only ok-1 is delivered: {delivered:?}");
        let mut acknowledged = bus.pubsub.acknowledged();
        acknowledged.sort();
        let mut published = vec![good, no_type.clone(), unknown_type.clone(), bad_data.clone(), garbage.clone()];
        published.sort();
        assert_eq!(acknowledged, published, "rejected messages are acknowledged too");

        let state = bus.sub_state().await?;
        assert_eq!(state["messagesTaken"], 1, "{state:#}");
        assert!(state["lastError"].is_null(), "{state:#}");
        let rejected = state["rejected"]["data"].as_array().cloned().unwrap_or_default();
        assert_eq!(rejected.len(), 4, "{state:#}");
        let entry = |id: &str| -> anyhow::Result<Value> {
            rejected
                .iter()
                .find(|r| r["messageId"] == id)
                .cloned()
                .with_context(|| format!("message {id} is not among the rejected: {state:#}"))
        };
        let text = |id: &str| -> anyhow::Result<String> {
            let message = bus.pubsub.message(id).context("published")?;
            Ok(String::from_utf8(message.data)?)
        };
        for (id, about) in [
            (&no_type, None),
            (&unknown_type, Some("order.shipped.v1")),
            (&bad_data, Some("orderId")),
            (&garbage, None),
        ] {
            let r = entry(id)?;
            let reason = r["reason"].as_str().unwrap_or_default();
            assert!(!reason.is_empty(), "a reason for {id}: {r}");
            if let Some(about) = about {
                assert!(reason.contains(about), "the reason for {id} names {about}: {r}");
            }
            assert!(!r["at"].is_null(), "when it was rejected: {r}");
        }
        // The raw data: as text when UTF-8, else base64; the attributes as sent.
        let r = entry(&no_type)?;
        assert_eq!(r["data"], text(&no_type)?, "{r}");
        assert_eq!(r["attributes"]["ce-id"], "bad-notype", "{r}");
        assert!(r["attributes"].get("ce-type").is_none(), "{r}");
        let r = entry(&unknown_type)?;
        assert_eq!(r["data"], text(&unknown_type)?, "{r}");
        assert_eq!(r["attributes"]["ce-type"], "order.shipped.v1", "{r}");
        let r = entry(&bad_data)?;
        assert_eq!(r["data"], r#"{"orderId":42}"#, "{r}");
        let r = entry(&garbage)?;
        assert_eq!(r["data"], STANDARD.encode(&garbage_bytes), "{r}");

        // The rejected messages come in pages.
        let page = |after: Option<String>| {
            let g = bus.r.gql();
            let api_id = bus.api_id.clone();
            async move {
                g.ok(
                    "query($id: ID!, $after: String) { eventAPI(id: $id) { externalSubscriptions {
                        state { rejected(first: 2, after: $after) { data { messageId } nextCursor } } } } }",
                    j!({"id": api_id, "after": after}),
                )
                .await
                .map(|d| d["eventAPI"]["externalSubscriptions"][0]["state"]["rejected"].clone())
            }
        };
        let first = page(None).await?;
        assert_eq!(first["data"].as_array().map(Vec::len), Some(2), "{first}");
        let cursor = first["nextCursor"].as_str().context("a next cursor after 2 of 4")?.to_owned();
        let second = page(Some(cursor)).await?;
        assert_eq!(second["data"].as_array().map(Vec::len), Some(2), "{second}");
        assert!(second["nextCursor"].is_null(), "{second}");
        let mut paged: Vec<String> = [&first, &second]
            .iter()
            .flat_map(|p| p["data"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| r["messageId"].as_str().map(str::to_owned))
            .collect();
        paged.sort();
        let mut expected = vec![no_type, unknown_type, bad_data, garbage];
        expected.sort();
        assert_eq!(paged, expected);

        // Only the valid event was stored.
        let state_dir = bus.stop().await?;
        assert_eq!(stored(state_dir.path(), "default")?.publisher_ids(), ["ok-1"]);
        Ok(())
    }
}

e2e_test! {
    async fn a_topic_mismatch_is_reported_and_nothing_is_pulled() -> anyhow::Result<()> {
        // The subscription is attached to another topic than the one registered.
        let pubsub = fake_bus().await?;
        pubsub.set_topic(OTHER_TOPIC);
        let external = external_subscription(&pubsub, j!({}));
        let bus = Bus::start(pubsub, external, &[]).await?;
        assert!(
            !bus.pubsub.requests_of(RequestKind::GetSubscription).is_empty(),
            "the registration reads the subscription"
        );
        let state = bus
            .state_until("the registration reports the mismatch", |s| mentions(&s["lastError"], TOPIC))
            .await?;
        assert!(state["lastError"].is_string(), "{state:#}");

        bus.pubsub.publish(order("t-1"));
        bus.tick().await?;
        let state = bus.sub_state().await?;
        assert!(
            mentions(&state["lastError"], TOPIC) && mentions(&state["lastError"], OTHER_TOPIC),
            "the error names both topics: {state:#}"
        );
        assert!(bus.pubsub.requests_of(RequestKind::Pull).is_empty(), "nothing is pulled");
        assert_eq!(bus.pubsub.outstanding(), 1);
        assert!(bus.delivered().is_empty());

        // Fixed on the bus: the next tick pulls.
        bus.pubsub.set_topic(TOPIC);
        bus.tick_until("t-1 acknowledged and delivered", |b| {
            b.pubsub.outstanding() == 0 && b.delivered_all(&["t-1"])
        })
        .await?;
        let state = bus.sub_state().await?;
        assert!(state["lastError"].is_null(), "{state:#}");
        assert_eq!(state["messagesTaken"], 1, "{state:#}");

        // Moved to another topic later: reported again, and pulling stops.
        bus.pubsub.set_topic(OTHER_TOPIC);
        let pulls = bus.pubsub.requests_of(RequestKind::Pull).len();
        bus.pubsub.publish(order("t-2"));
        bus.tick().await?;
        let state = bus.sub_state().await?;
        assert!(
            mentions(&state["lastError"], TOPIC) && mentions(&state["lastError"], OTHER_TOPIC),
            "{state:#}"
        );
        assert_eq!(bus.pubsub.requests_of(RequestKind::Pull).len(), pulls, "no pull after the mismatch");
        assert!(!bus.delivered().iter().any(|d| d == "t-2"));

        // The subscription cannot be read at all: reported, nothing pulled either.
        bus.pubsub.set_topic(TOPIC);
        bus.pubsub.fail_gets(1_000, 500);
        bus.tick().await?;
        let state = bus.sub_state().await?;
        assert!(state["lastError"].is_string(), "{state:#}");
        assert_eq!(bus.pubsub.requests_of(RequestKind::Pull).len(), pulls);
        bus.pubsub.clear_failures();
        bus.tick_until("t-2 delivered", |b| b.delivered_all(&["t-2"])).await?;
        bus.stop().await?;
        Ok(())
    }
}

e2e_test! {
    async fn the_bus_credentials_are_sent() -> anyhow::Result<()> {
        let pubsub = fake_bus().await?;
        let basic = format!("Basic {}", STANDARD.encode("bus-user:bus-secret"));
        pubsub.require_authorization(Some(&basic));
        let mut external = external_subscription(&pubsub, j!({}));
        external["auth"] = j!({"credential": {"basic": {"username": "bus-user", "password": "bus-secret"}}});
        let bus = Bus::start(pubsub, external, &[]).await?;
        bus.pubsub.publish(order("a-1"));
        bus.tick_until("a-1 acknowledged and delivered", |b| {
            b.pubsub.outstanding() == 0 && b.delivered_all(&["a-1"])
        })
        .await?;
        let requests = bus.pubsub.requests();
        let wrong: Vec<_> = requests
            .iter()
            .filter(|r| r.authorization() != Some(basic.as_str()))
            .map(|r| format!("{} {}: {:?}", r.method, r.path, r.authorization()))
            .collect();
        assert!(wrong.is_empty(), "requests without the Basic credential: {wrong:?}");
        for kind in [RequestKind::GetSubscription, RequestKind::Pull, RequestKind::Acknowledge] {
            assert!(requests.iter().any(|r| r.kind == kind), "no {kind:?}");
        }

        // Changed to a static header: the update reads the subscription with it, and so does
        // every later tick.
        bus.pubsub.require_authorization(Some("Bearer static-token"));
        let mut external = external_subscription(&bus.pubsub, j!({}));
        external["auth"] = j!({"additionalHeaders": {"authorization": ["Bearer static-token"]}});
        let seen = bus.pubsub.requests().len();
        bus.r
            .gql()
            .ok(
                "mutation($id: ID!, $in: EventAPIDefinitionInput!) { updateEventAPI(id: $id, in: $in) { id } }",
                j!({"id": bus.api_id, "in": api_with(j!([external]))}),
            )
            .await?;
        bus.pubsub.publish(order("a-2"));
        bus.tick_until("a-2 acknowledged and delivered", |b| {
            b.pubsub.outstanding() == 0 && b.delivered_all(&["a-2"])
        })
        .await?;
        let later = bus.pubsub.requests()[seen..].to_vec();
        let wrong: Vec<_> = later
            .iter()
            .filter(|r| r.authorization() != Some("Bearer static-token"))
            .map(|r| format!("{} {}: {:?}", r.method, r.path, r.authorization()))
            .collect();
        assert!(wrong.is_empty(), "requests without the static header: {wrong:?}");
        for kind in [RequestKind::GetSubscription, RequestKind::Pull, RequestKind::Acknowledge] {
            assert!(later.iter().any(|r| r.kind == kind), "no {kind:?} after the update");
        }
        assert!(bus.sub_state().await?["lastError"].is_null());
        bus.stop().await?;
        Ok(())
    }
}

e2e_test! {
    async fn an_oauth_bus_token_is_fetched_once_and_pulled_events_are_handed_off() -> anyhow::Result<()> {
        // A token endpoint for the client-credentials grant, counting its requests.
        let tokens = TestServer::start_with(|_| {
            Reply::new(200, r#"{"access_token":"bus-token","token_type":"Bearer","expires_in":3600}"#)
                .header("content-type", "application/json")
        })
        .await?;
        let pubsub = fake_bus().await?;
        pubsub.require_authorization(Some("Bearer bus-token"));
        let mut external = external_subscription(&pubsub, j!({}));
        external["auth"] = j!({"credential": {"oauth": {
            "clientId": "eventplane", "clientSecret": "bus-secret", "url": tokens.url("/token")}}});
        // With hand-off on, the tick hands what it pulled to parallel deliveries.
        let bus = Bus::start(pubsub, external, &[("SPIN_VARIABLE_DELIVERY_HANDOFF", "true")]).await?;
        bus.pubsub.publish(order("o-1"));
        bus.pubsub.publish(order("o-2"));
        let answer = bus.tick().await?;
        assert_eq!(answer["bus"]["handedOff"], 2, "{answer}");
        assert!(bus.delivered_all(&["o-1", "o-2"]), "delivered by the first tick: {:?}", bus.delivered());
        bus.pubsub.publish(order("o-3"));
        bus.tick_until("o-3 delivered", |b| b.delivered_all(&["o-3"])).await?;

        let requests = bus.pubsub.requests();
        assert!(
            requests.iter().all(|r| r.authorization() == Some("Bearer bus-token")),
            "every bus request carries the token"
        );
        let token_requests = tokens.received();
        assert_eq!(token_requests.len(), 1, "the token is reused until it expires");
        let form = String::from_utf8_lossy(&token_requests[0].body).into_owned();
        assert!(form.contains("grant_type=client_credentials"), "{form}");
        let basic = format!("Basic {}", STANDARD.encode("eventplane:bus-secret"));
        assert_eq!(token_requests[0].header("authorization"), Some(basic.as_str()));
        assert_eq!(bus.pubsub.outstanding(), 0);
        bus.stop().await?;
        Ok(())
    }
}

e2e_test! {
    async fn no_hand_off_starts_past_the_tick_budget_and_the_rest_are_delivered_later() -> anyhow::Result<()> {
        // A second subscriber takes 600 ms per delivery, so each hand-off does too.
        let pubsub = fake_bus().await?;
        let external = external_subscription(&pubsub, j!({}));
        let bus = Bus::start(pubsub, external, &[("SPIN_VARIABLE_DELIVERY_HANDOFF", "true")]).await?;
        let slow = TestServer::start_with(|_| Reply::new(204, "").after(SLOW)).await?;
        crate::subscriptions::Api::new(&bus.r.app)
            .create(&j!({"name": "slow", "sink": {"url": slow.url("/in")},
                        "filter": {"application": crate::gateway::SHOP}}))
            .await?;
        let ids: Vec<String> = (0..40).map(|i| format!("late-{i}")).collect();
        for id in &ids {
            bus.pubsub.publish(order(id));
        }

        // 40 hand-offs, 16 at a time, take three rounds of 600 ms; a budget of 1 s leaves
        // time to start at most two.
        let started = Instant::now();
        let response = reqwest::Client::new()
            .post(bus.r.app.url("/dispatcher/tick?budgetMs=1000"))
            .bearer_auth(crate::registry::ADMIN_TOKEN)
            .send()
            .await?;
        let took = started.elapsed();
        anyhow::ensure!(response.status() == 200, "tick answered {}", response.status());
        let answer: Value = response.json().await?;
        assert_eq!(answer["bus"]["stored"], 40, "{answer}");
        let handed = answer["bus"]["handedOff"].as_u64().context("handedOff")?;
        assert!((16..40).contains(&handed), "hand-offs started within the budget: {answer}");
        assert!(
            took < Duration::from_millis(1000) + 2 * SLOW,
            "the tick waited only for the hand-offs under way: {took:?}"
        );

        // The events not handed off are in the event log: later ticks deliver them.
        let wanted: Vec<&str> = ids.iter().map(String::as_str).collect();
        bus.tick_until("every event reached the slow subscriber", |_| {
            let got = super::delivered_ids(&slow);
            wanted.iter().all(|id| got.iter().any(|g| g == id))
        })
        .await?;
        assert!(bus.delivered_all(&wanted));
        bus.stop().await?;
        Ok(())
    }
}

/// How long the slow subscriber takes to answer.
const SLOW: Duration = Duration::from_millis(600);
