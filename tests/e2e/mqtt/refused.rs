//! Messages that cannot become events: each is recorded with its reason and its payload (the
//! token redacted), noticed on `<topic>/rejected`, and nothing of it is stored or delivered.

use std::time::Duration;

use eventplane_tests::mqtt::MqttClient;
use serde_json::{Value, json as j};

use super::{MqttShop, SHOP_TOPIC, with_token};
use crate::gateway::{cloud_event, order};

/// The largest event the application takes in these tests (`max_event_bytes`).
const MAX_EVENT_BYTES: usize = 4096;

crate::e2e_test! {
    async fn every_refused_message_is_recorded_and_noticed_and_nothing_of_it_is_delivered() -> anyhow::Result<()> {
        let max = MAX_EVENT_BYTES.to_string();
        let Some(t) = MqttShop::start(&[("SPIN_VARIABLE_MAX_EVENT_BYTES", &max)], None).await? else {
            return Ok(());
        };
        let token = t.shop.token.clone();
        let other = t.shop.other_app("erp").await?;
        let notices = MqttClient::connect(&t.broker.url(), "e2e-notices").await?;
        notices.subscribe("eventplane/+/events/rejected").await?;

        let mut not_a_cloud_event = with_token(order("r-2"), &token);
        not_a_cloud_event.as_object_mut().map(|o| o.remove("type"));
        let mut too_large = with_token(order("r-8"), &token);
        too_large["data"]["note"] = Value::String("x".repeat(MAX_EVENT_BYTES));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("INVALID_CLOUDEVENT", b"{not json".to_vec()),
            ("INVALID_CLOUDEVENT", not_a_cloud_event.to_string().into_bytes()),
            ("UNAUTHORIZED", order("r-3").to_string().into_bytes()),
            (
                "UNAUTHORIZED",
                with_token(order("r-4"), "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")
                    .to_string()
                    .into_bytes(),
            ),
            // The erp's own token on the shop's topic.
            ("FORBIDDEN", with_token(order("r-5"), &other).to_string().into_bytes()),
            (
                "EVENT_TYPE_NOT_REGISTERED",
                with_token(cloud_event("r-6", "order.shipped.v1", j!({"orderId": "r-6"})), &token)
                    .to_string()
                    .into_bytes(),
            ),
            (
                "PAYLOAD_SCHEMA_VIOLATION",
                with_token(cloud_event("r-7", "order.created.v1", j!({"orderId": 7})), &token)
                    .to_string()
                    .into_bytes(),
            ),
            ("PAYLOAD_TOO_LARGE", too_large.to_string().into_bytes()),
        ];
        for (_, payload) in &cases {
            t.publish_raw(SHOP_TOPIC, payload.clone()).await?;
        }

        // A notice for each, on <topic>/rejected.
        let received = notices.wait_received(cases.len(), Duration::from_secs(20)).await?;
        let mut noticed: Vec<String> = received
            .iter()
            .map(|m| {
                assert_eq!(m.topic, format!("{SHOP_TOPIC}/rejected"));
                let body = m.json();
                assert_eq!(body["topic"], SHOP_TOPIC, "{body}");
                assert!(!m.payload.windows(token.len()).any(|w| w == token.as_bytes()));
                body["code"].as_str().unwrap_or_default().to_owned()
            })
            .collect();
        let mut expected: Vec<String> = cases.iter().map(|(code, _)| (*code).to_owned()).collect();
        noticed.sort();
        expected.sort();
        assert_eq!(noticed, expected);

        // A record of each, with its payload, the tokens redacted.
        let data = t
            .graphql(
                "{ mqttRejectedMessages(application: \"shop\", first: 200) { data { messageId code reason attributes data dataEncoding truncated at } nextCursor } }",
                j!({}),
            )
            .await?;
        let records = data["mqttRejectedMessages"]["data"].as_array().cloned().unwrap_or_default();
        let mut recorded: Vec<String> = records
            .iter()
            .map(|r| r["code"].as_str().unwrap_or_default().to_owned())
            .collect();
        recorded.sort();
        assert_eq!(recorded, expected, "{data}");
        for record in &records {
            let text = record["data"].as_str().unwrap_or_default();
            assert!(!text.contains(&token) && !text.contains(&other), "a token was kept: {text}");
            assert!(!record["reason"].as_str().unwrap_or_default().is_empty());
            assert_eq!(record["attributes"]["topic"], SHOP_TOPIC, "{record}");
        }
        let schema = records.iter().find(|r| r["code"] == "PAYLOAD_SCHEMA_VIOLATION");
        let schema = schema.map(|r| r["data"].as_str().unwrap_or_default()).unwrap_or_default();
        assert!(schema.contains("[redacted]") && schema.contains("\"r-7\""), "{schema}");

        // The same refused message again is recorded once (and noticed again).
        t.publish_raw(SHOP_TOPIC, cases[0].1.clone()).await?;
        notices.wait_received(cases.len() + 1, Duration::from_secs(20)).await?;
        let data = t
            .graphql("{ mqttRejectedMessages(application: \"shop\", first: 200) { data { code } } }", j!({}))
            .await?;
        assert_eq!(
            data["mqttRejectedMessages"]["data"].as_array().map(Vec::len),
            Some(cases.len()),
            "{data}"
        );

        // Nothing reached the subscriber, and no notice came back in as a message (a loop would
        // keep adding notices and records).
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(t.subscriber.received().is_empty(), "{:?}", t.subscriber.received());
        assert_eq!(notices.received().len(), cases.len() + 1);
        t.stop().await
    }
}
