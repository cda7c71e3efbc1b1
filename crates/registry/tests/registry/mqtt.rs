//! MQTT: where an application is told to publish, and the messages it published that were
//! refused.

use anyhow::Result;
use eventplane_core::TenantId;
use eventplane_ingest::Rejection;
use eventplane_ingest::mqtt::{NO_APPLICATION, rejected_log, rejected_record};
use serde_json::{Value, json};

use crate::support::Harness;

const EVENTING: &str = "query($id: ID!) { application(id: $id) {
    eventingConfiguration { defaultURL mqtt { brokerURL topic } } } }";

const REJECTED: &str = "query($app: String!, $first: Int, $after: String) {
    mqttRejectedMessages(application: $app, first: $first, after: $after) {
        data { messageId code reason attributes data dataEncoding truncated publishTime at }
        nextCursor } }";

#[test]
fn without_a_broker_there_is_no_mqtt_configuration() -> Result<()> {
    let h = Harness::new();
    let id = h.create_app(json!({"name": "shop"}))?;
    let data = h.ok(EVENTING, json!({"id": id}))?;
    assert_eq!(
        data["application"]["eventingConfiguration"]["mqtt"],
        Value::Null
    );
    Ok(())
}

#[test]
fn with_a_broker_the_topic_names_the_application() -> Result<()> {
    let mut h = Harness::new();
    h.config.mqtt_address = "mqtt://broker.example.com:1883?client_id=eventplane".into();
    let id = h.create_app(json!({"name": "shop"}))?;
    let data = h.ok(EVENTING, json!({"id": id}))?;
    assert_eq!(
        data["application"]["eventingConfiguration"]["mqtt"],
        json!({"brokerURL": "mqtt://broker.example.com:1883", "topic": "eventplane/shop/events"}),
        "the default pattern, and not eventplane's own client id"
    );
    h.config.mqtt_topic = "acme/+/cloudevents".into();
    let data = h.ok(EVENTING, json!({"id": id}))?;
    assert_eq!(
        data["application"]["eventingConfiguration"]["mqtt"]["topic"],
        "acme/shop/cloudevents"
    );
    Ok(())
}

/// Records a refused message published on `topic` in the log `log` of `tenant`.
fn refuse(h: &Harness, tenant: &str, log: &str, topic: &str, payload: &str, at: u64) -> Result<()> {
    let record = rejected_record(
        topic,
        payload.as_bytes(),
        &Rejection::invalid("not a CloudEvent"),
        at,
    );
    rejected_log(log).record(&*h.store, &TenantId::new(tenant)?, &record)?;
    Ok(())
}

#[test]
fn refused_messages_are_listed_per_application_and_tenant() -> Result<()> {
    let h = Harness::new();
    let topic = "eventplane/shop/events";
    refuse(
        &h,
        "acme",
        "shop",
        topic,
        r#"{"id": 1, "accesstoken": "secret-token-value-1234"}"#,
        1_700_000_000_000,
    )?;
    refuse(&h, "acme", "shop", topic, "not json", 1_700_000_001_000)?;
    refuse(
        &h,
        "acme",
        NO_APPLICATION,
        "eventplane//events",
        "{}",
        1_700_000_002_000,
    )?;
    refuse(&h, "other", "shop", topic, "{}", 1_700_000_003_000)?;

    let first = h.ok(REJECTED, json!({"app": "shop", "first": 1}))?;
    let page = &first["mqttRejectedMessages"];
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
    let message = &page["data"][0];
    assert_eq!(message["code"], "INVALID_CLOUDEVENT");
    assert_eq!(message["reason"], "not a CloudEvent");
    assert_eq!(message["attributes"], json!({"topic": topic}));
    assert_eq!(
        message["data"], r#"{"id": 1, "accesstoken": "[redacted]"}"#,
        "the token is never kept"
    );
    assert_eq!(message["dataEncoding"], "text");
    assert_eq!(message["truncated"], false);
    assert_eq!(message["publishTime"], "");
    assert_eq!(message["at"], "2023-11-14T22:13:20Z");
    assert_eq!(message["messageId"].as_str().map(str::len), Some(32));

    let cursor = page["nextCursor"].as_str().unwrap_or_default();
    let rest = h.ok(REJECTED, json!({"app": "shop", "after": cursor}))?;
    assert_eq!(rest["mqttRejectedMessages"]["data"][0]["data"], "not json");
    assert_eq!(rest["mqttRejectedMessages"]["nextCursor"], Value::Null);

    let unnamed = h.ok(REJECTED, json!({"app": "-"}))?;
    assert_eq!(
        unnamed["mqttRejectedMessages"]["data"][0]["attributes"]["topic"],
        "eventplane//events"
    );
    let other = h.as_tenant("other").ok(REJECTED, json!({"app": "shop"}))?;
    assert_eq!(
        other["mqttRejectedMessages"]["data"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let none = h.ok(REJECTED, json!({"app": "erp"}))?;
    assert_eq!(
        none["mqttRejectedMessages"],
        json!({"data": [], "nextCursor": null})
    );
    Ok(())
}

#[test]
fn pages_of_refused_messages_are_bounded() -> Result<()> {
    let h = Harness::new();
    for first in [0, 201] {
        assert_eq!(
            h.error_code(REJECTED, json!({"app": "shop", "first": first}))?,
            "BAD_USER_INPUT"
        );
    }
    Ok(())
}
