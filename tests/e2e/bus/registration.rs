//! Registering external subscriptions: the URL must name a Pub/Sub subscription, the topic a
//! Pub/Sub topic, and the attributes are known keys with values in range; an unreachable bus
//! does not stop the registration but shows in the subscription's state.

use serde_json::{Value, json as j};

use super::{BUS_ENV, PROJECT, SUBSCRIPTION, TOPIC, api_with, mentions, state_until, tick};
use crate::e2e_test;
use crate::gateway::SHOP;
use crate::registry::{Registry, string_at};

const ADD: &str = "mutation($app: ID!, $in: EventAPIDefinitionInput!) {
    addEventAPI(applicationID: $app, in: $in) { id externalSubscriptions { url topic attributes } } }";

const UPDATE: &str = "mutation($id: ID!, $in: EventAPIDefinitionInput!) {
    updateEventAPI(id: $id, in: $in) { id } }";

/// A subscription URL of the real Pub/Sub (unreachable from the tests: not an allowed host).
const GOOGLE_URL: &str =
    "https://pubsub.googleapis.com/v1/projects/shop-project/subscriptions/eventplane-orders";

/// An `externalSubscriptions` entry; `attributes` left out when `null`.
fn entry(url: &str, topic: &str, attributes: Value) -> Value {
    let mut entry = j!({"url": url, "topic": topic});
    if !attributes.is_null() {
        entry["attributes"] = attributes;
    }
    entry
}

e2e_test! {
    async fn external_subscriptions_are_validated_at_registration() -> anyhow::Result<()> {
        let r = Registry::start_with(BUS_ENV).await?;
        let g = r.gql();
        let app = g.create_app(j!({ "name": SHOP })).await?;
        let null = Value::Null;
        // Each: what is wrong, the entry, what the error must name.
        let cases: Vec<(&str, Value, &[&str])> = vec![
            ("a URL that is no subscription", entry("https://bus.example.com/queue/x", TOPIC, null.clone()), &["url", "/v1/projects/"]),
            ("a topic's URL", entry("https://pubsub.googleapis.com/v1/projects/p/topics/t", TOPIC, null.clone()), &["url"]),
            ("no subscription name", entry("https://pubsub.googleapis.com/v1/projects/p/subscriptions/", TOPIC, null.clone()), &["url"]),
            ("no API version", entry("https://pubsub.googleapis.com/projects/p/subscriptions/s", TOPIC, null.clone()), &["url"]),
            ("another scheme", entry("ftp://pubsub.googleapis.com/v1/projects/p/subscriptions/s", TOPIC, null.clone()), &["url"]),
            ("a short topic", entry(GOOGLE_URL, "orders", null.clone()), &["topic"]),
            ("a subscription for a topic", entry(GOOGLE_URL, "projects/p/subscriptions/s", null.clone()), &["topic"]),
            ("a topic without a name", entry(GOOGLE_URL, "projects/p/topics/", null.clone()), &["topic"]),
            ("an unknown attribute", entry(GOOGLE_URL, TOPIC, j!({"color": "blue"})), &["color"]),
            ("maxMessages above 1000", entry(GOOGLE_URL, TOPIC, j!({"maxMessages": "5000"})), &["maxMessages"]),
            ("maxMessages 0", entry(GOOGLE_URL, TOPIC, j!({"maxMessages": "0"})), &["maxMessages"]),
            ("maxMessages not a number", entry(GOOGLE_URL, TOPIC, j!({"maxMessages": "many"})), &["maxMessages"]),
            ("ackDeadlineSeconds below 10", entry(GOOGLE_URL, TOPIC, j!({"ackDeadlineSeconds": "5"})), &["ackDeadlineSeconds"]),
            ("ackDeadlineSeconds above 600", entry(GOOGLE_URL, TOPIC, j!({"ackDeadlineSeconds": "601"})), &["ackDeadlineSeconds"]),
            ("an unknown mode", entry(GOOGLE_URL, TOPIC, j!({"mode": "stream"})), &["mode"]),
        ];
        let mut failures = Vec::new();
        for (what, external, names) in &cases {
            let error = g.error(ADD, j!({"app": app, "in": api_with(j!([external]))})).await?;
            if error["extensions"]["code"] != "BAD_USER_INPUT" {
                failures.push(format!("{what}: expected BAD_USER_INPUT, got {error}"));
            }
            for name in *names {
                if !mentions(&error, name) {
                    failures.push(format!("{what}: the error does not name {name:?}: {error}"));
                }
            }
        }
        assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
        assert_eq!(g.api_count(&app).await?, 0, "no invalid event API was stored");

        // Inside createApplication too.
        let error = g
            .error(
                "mutation($in: ApplicationInput!) { createApplication(in: $in) { id } }",
                j!({"in": {"name": "erp", "eventAPIs": [api_with(j!([entry("https://bus.example.com/queue/x", TOPIC, null.clone())]))]}}),
            )
            .await?;
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");

        // The bounds themselves are fine, and so is an emulator-style http URL with a port.
        let bounds = j!({"mode": "pull", "maxMessages": "1000", "ackDeadlineSeconds": "600"});
        let data = g
            .ok(ADD, j!({"app": app, "in": api_with(j!([entry(GOOGLE_URL, TOPIC, bounds.clone())]))}))
            .await?;
        let api_id = string_at(&data, "/addEventAPI/id")?;
        assert_eq!(
            data["addEventAPI"]["externalSubscriptions"],
            j!([{"url": GOOGLE_URL, "topic": TOPIC, "attributes": bounds}])
        );
        let emulator = format!("http://127.0.0.1:8085/v1/projects/{PROJECT}/subscriptions/{SUBSCRIPTION}");
        let other = g.create_app(j!({"name": "erp"})).await?;
        let low = j!({"mode": "push", "maxMessages": "1", "ackDeadlineSeconds": "10"});
        g.ok(ADD, j!({"app": other, "in": api_with(j!([entry(&emulator, TOPIC, low)]))}))
            .await?;

        // An update is validated the same way, and a refused one changes nothing.
        let error = g
            .error(UPDATE, j!({"id": api_id, "in": api_with(j!([entry(GOOGLE_URL, TOPIC, j!({"maxMessages": "5000"}))]))}))
            .await?;
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
        assert!(mentions(&error, "maxMessages"), "{error}");
        let data = g
            .ok(
                "query($id: ID!) { eventAPI(id: $id) { externalSubscriptions { attributes } } }",
                j!({"id": api_id}),
            )
            .await?;
        assert_eq!(data["eventAPI"]["externalSubscriptions"][0]["attributes"]["maxMessages"], "1000");
        r.stop().await
    }
}

e2e_test! {
    async fn an_unreachable_bus_is_reported_but_the_registration_stands() -> anyhow::Result<()> {
        // A loopback port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let url = format!("http://127.0.0.1:{port}/v1/projects/{PROJECT}/subscriptions/{SUBSCRIPTION}");
        let r = Registry::start_with(BUS_ENV).await?;
        let g = r.gql();
        let app = g.create_app(j!({ "name": SHOP })).await?;
        let data = g
            .ok(ADD, j!({"app": app, "in": api_with(j!([entry(&url, TOPIC, Value::Null)]))}))
            .await?;
        let api_id = string_at(&data, "/addEventAPI/id")?;
        let state = state_until(&g, &api_id, "the registration reports the unreachable bus", |s| {
            s["lastError"].is_string()
        })
        .await?;
        assert_eq!(state["messagesTaken"], 0, "{state:#}");
        // A tick reports it too, and still answers 200.
        tick(&r).await?;
        let state = state_until(&g, &api_id, "the tick reports the unreachable bus", |s| {
            s["lastError"].is_string()
        })
        .await?;
        assert_eq!(state["messagesTaken"], 0, "{state:#}");
        r.stop().await
    }
}
