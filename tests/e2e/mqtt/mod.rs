//! MQTT ingress (issue 22) through the real application (`spin-mqtt.toml`: the HTTP
//! application plus Spin's MQTT trigger and the `mqtt` component) on eventplane's host, a real
//! `mosquitto` of each test's own, and a real MQTT client: events published over MQTT are
//! authenticated by the access token they carry (`accesstoken`), checked, stored once and
//! delivered like HTTP ones; refused messages are recorded (GraphQL `mqttRejectedMessages`)
//! and noticed on `<topic>/rejected`; a broker restart and a failing component lose nothing
//! published at QoS 1.
//!
//! `mosquitto` is found on `MOSQUITTO`, `PATH` or `/usr/sbin` (`scripts/servers.sh` installs
//! it); where it is absent these tests are skipped, saying so, except under `CI=true`.

mod acl;
mod manifests;
mod refused;
mod reliability;

use std::time::{Duration, Instant};

use eventplane_tests::mosquitto::{Mosquitto, Options};
use eventplane_tests::mqtt::MqttClient;
use eventplane_tests::{Received, TestServer};
use serde_json::{Value, json as j};

use crate::gateway::{Shop, order};
use crate::registry::{ADMIN_TOKEN, Registry};

/// The topic the shop publishes to (`mqtt_topic`'s default with `+` = `shop`).
pub(crate) const SHOP_TOPIC: &str = "eventplane/shop/events";

/// The shop's events with its token in the `accesstoken` attribute.
pub(crate) fn with_token(mut event: Value, token: &str) -> Value {
    event["accesstoken"] = Value::String(token.to_owned());
    event
}

/// A broker, the application with its MQTT trigger on it (the shop registered), a subscriber
/// of the shop's events, and an MQTT client.
pub(crate) struct MqttShop {
    pub broker: Mosquitto,
    pub shop: Shop,
    pub subscriber: TestServer,
    pub client: MqttClient,
}

impl MqttShop {
    /// Starts everything; `None` (skipped, said on stderr) without mosquitto. `env`: more
    /// `SPIN_VARIABLE_*`s; `runtime_config`: a runtime config file for the application.
    pub async fn start(
        env: &[(&str, &str)],
        runtime_config: Option<&std::path::Path>,
    ) -> anyhow::Result<Option<Self>> {
        Self::start_on(&Options::default(), None, env, runtime_config).await
    }

    /// [`start`](Self::start) on a broker set up as `options` says, the test's client
    /// connecting with `credentials`.
    pub async fn start_on(
        options: &Options,
        credentials: Option<(&str, &str)>,
        env: &[(&str, &str)],
        runtime_config: Option<&std::path::Path>,
    ) -> anyhow::Result<Option<Self>> {
        let Some(broker) = Mosquitto::start_with(options)? else {
            return Ok(None);
        };
        let url = broker.url();
        let mut vars = vec![
            ("SPIN_VARIABLE_MQTT_ADDRESS", url.as_str()),
            ("SPIN_VARIABLE_MQTT_ALLOWED_HOSTS", url.as_str()),
            ("SPIN_VARIABLE_DELIVERY_ALLOWED_HOSTS", "http://127.0.0.1:*"),
        ];
        vars.extend_from_slice(env);
        let registry = Registry::start_from("spin-mqtt.toml", &vars, runtime_config).await?;
        let shop = Shop::register(registry).await?;
        let subscriber = TestServer::start(204, "").await?;
        subscribe(&shop, &subscriber).await?;
        let client = MqttClient::connect_as(&url, "e2e-publisher", credentials).await?;
        Ok(Some(Self {
            broker,
            shop,
            subscriber,
            client,
        }))
    }

    /// Publishes `payload` to the shop's topic at QoS 1 and waits for the broker's PUBACK.
    pub async fn publish(&self, payload: &Value) -> anyhow::Result<()> {
        self.publish_raw(SHOP_TOPIC, payload.to_string().into_bytes())
            .await
    }

    /// Publishes raw bytes to `topic` at QoS 1 and waits for the broker's PUBACK.
    pub async fn publish_raw(&self, topic: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        self.client.publish_acked(topic, payload).await
    }

    /// Waits until the subscriber received events with each of `ids` (as `ce-id`), up to
    /// `within`; every delivery so far.
    pub async fn delivered(&self, ids: &[&str], within: Duration) -> anyhow::Result<Vec<Received>> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.subscriber.received();
            let missing: Vec<&&str> = ids
                .iter()
                .filter(|id| !received.iter().any(|r| r.header("ce-id") == Some(**id)))
                .collect();
            if missing.is_empty() {
                return Ok(received);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "not delivered within {within:?}: {missing:?}\n{}",
                eventplane_tests::host_logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A GraphQL query with the admin token: its `data`.
    pub async fn graphql(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        self.shop.r.gql().ok(query, variables).await
    }

    /// Stops the application (the broker and subscriber stop on drop).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shop.stop().await
    }
}

/// Subscribes `subscriber` to every event of the shop.
async fn subscribe(shop: &Shop, subscriber: &TestServer) -> anyhow::Result<()> {
    let answer = reqwest::Client::new()
        .post(shop.r.app.url("/subscriptions"))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &j!({"name": "mqtt-e2e", "sink": {"url": subscriber.url("/in")},
            "filter": {"application": "shop"}}),
        )
        .send()
        .await?;
    anyhow::ensure!(answer.status() == 201, "subscription: {}", answer.status());
    Ok(())
}

/// How many deliveries carried `ce-id` `id`.
pub(crate) fn count(received: &[Received], id: &str) -> usize {
    received
        .iter()
        .filter(|r| r.header("ce-id") == Some(id))
        .count()
}

crate::e2e_test! {
    async fn events_single_and_batched_are_stored_once_and_delivered_without_their_token() -> anyhow::Result<()> {
        let Some(t) = MqttShop::start(&[], None).await? else {
            return Ok(());
        };
        let token = t.shop.token.clone();
        // One event, then a batch of two, then the first one again (a duplicate).
        t.publish(&with_token(order("m-1"), &token)).await?;
        let batch = j!([
            with_token(order("m-2"), &token),
            with_token(order("m-3"), &format!("Bearer {token}")),
        ]);
        t.publish(&batch).await?;
        t.publish(&with_token(order("m-1"), &token)).await?;
        t.delivered(&["m-1", "m-2", "m-3"], Duration::from_secs(20)).await?;
        // Give a duplicate delivery the time to show up, if there were one.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let received = t.subscriber.received();
        for id in ["m-1", "m-2", "m-3"] {
            assert_eq!(count(&received, id), 1, "{id} delivered once");
        }
        for delivery in &received {
            assert_eq!(delivery.header("ce-source"), Some("/applications/shop"));
            assert_eq!(delivery.header("ce-type"), Some("order.created.v1"));
            assert!(
                delivery.header("ce-accesstoken").is_none(),
                "the token is not delivered: {:?}",
                delivery.headers
            );
            let body = String::from_utf8_lossy(&delivery.body);
            assert!(!body.contains(&token), "the token is not in the body: {body}");
        }
        // Nothing was refused.
        let data = t
            .graphql(
                "{ mqttRejectedMessages(application: \"shop\") { data { code } } }",
                j!({}),
            )
            .await?;
        assert_eq!(data["mqttRejectedMessages"]["data"], j!([]), "{data}");
        // The application is told where to publish.
        let data = t
            .graphql(
                "{ applications { data { name eventingConfiguration { defaultURL mqtt { brokerURL topic } } } } }",
                j!({}),
            )
            .await?;
        let mqtt = &data["applications"]["data"][0]["eventingConfiguration"]["mqtt"];
        assert_eq!(mqtt["brokerURL"], t.broker.url().as_str(), "{data}");
        assert_eq!(mqtt["topic"], SHOP_TOPIC, "{data}");
        t.stop().await
    }
}
