//! What the gateway refuses, and how it says so: types and versions not in the catalog, data
//! violating the payload schema, oversize events, wrong content types, malformed bodies, and
//! batches with one bad entry (which store nothing).

use serde_json::json as j;

use super::{Answer, SHOP, Shop, TIME, cloud_event, legacy_order, order, stored};
use crate::e2e_test;

/// Checks an eventplane error: `status`, `error.code` and a message.
fn error(answer: &Answer, status: u16, code: &str, what: &str) -> anyhow::Result<()> {
    answer.expect(status, what)?;
    anyhow::ensure!(
        answer.code() == Some(code),
        "{what}: expected error.code {code}, got {}",
        answer.text
    );
    anyhow::ensure!(
        answer.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: no error.message in {}",
        answer.text
    );
    Ok(())
}

/// Checks a Kyma-shaped error: `status` both as the HTTP status and in the body, `type`, and a
/// message.
fn kyma_error(answer: &Answer, status: u16, what: &str) -> anyhow::Result<()> {
    answer.expect(status, what)?;
    let body = &answer.body;
    anyhow::ensure!(
        body["status"] == status,
        "{what}: status in the body: {body}"
    );
    anyhow::ensure!(
        body["type"].as_str().is_some_and(|t| !t.is_empty()),
        "{what}: type: {body}"
    );
    anyhow::ensure!(body["message"].is_string(), "{what}: message: {body}");
    Ok(())
}

e2e_test! {
    async fn types_and_versions_outside_the_catalog_are_422() -> anyhow::Result<()> {
        let shop = Shop::start().await?;
        let c = shop.client();

        let unregistered = cloud_event("t-1", "order.shipped.v1", j!({"orderId": "1"}));
        error(&c.structured(&unregistered).await?, 422, "EVENT_TYPE_NOT_REGISTERED", "unregistered type")?;
        let wrong_version = cloud_event("t-2", "order.created.v2", j!({"orderId": "1"}));
        error(&c.structured(&wrong_version).await?, 422, "EVENT_TYPE_NOT_REGISTERED", "unregistered version")?;
        let answer = c.binary("t-3", "payment.received.v1", &[], &j!({"orderId": "1"})).await?;
        error(&answer, 422, "EVENT_TYPE_NOT_REGISTERED", "binary, unregistered type")?;

        // Legacy: event-type + event-type-version name the entry order.created.v1.
        let mut body = legacy_order("5c3e1a7b-2d4f-4b6a-9c8e-1f0a2b3c4d5e");
        body["event-type-version"] = j!("v2");
        let answer = c.legacy(SHOP, &body).await?;
        kyma_error(&answer, 422, "legacy, wrong version")?;
        assert_eq!(answer.body["type"], "event_type_not_registered", "{}", answer.text);
        body["event-type"] = j!("order.shipped");
        body["event-type-version"] = j!("v1");
        kyma_error(&c.legacy(SHOP, &body).await?, 422, "legacy, unregistered type")?;

        // The registered ones pass.
        c.structured(&cloud_event("t-4", "order.cancelled.v1", j!({}))).await?.expect(202, "order.cancelled.v1")?;
        shop.stop().await
    }
}

e2e_test! {
    async fn data_violating_the_payload_schema_is_422_with_json_pointers() -> anyhow::Result<()> {
        let shop = Shop::start().await?;
        let c = shop.client();

        let answer = c.structured(&cloud_event("p-1", "order.created.v1", j!({"orderId": 42}))).await?;
        error(&answer, 422, "PAYLOAD_SCHEMA_VIOLATION", "orderId not a string")?;
        assert!(answer.names("/data/orderId"), "{}", answer.text);

        // A missing required property is reported too (at the object holding it).
        let answer = c.structured(&cloud_event("p-2", "order.created.v1", j!({"total": 3}))).await?;
        error(&answer, 422, "PAYLOAD_SCHEMA_VIOLATION", "orderId missing")?;
        assert!(
            answer.fields().iter().any(|f| f.starts_with("/data")),
            "{}",
            answer.text
        );

        let answer = c.binary("p-3", "order.created.v1", &[], &j!({"orderId": false})).await?;
        error(&answer, 422, "PAYLOAD_SCHEMA_VIOLATION", "binary")?;
        assert!(answer.names("/data/orderId"), "{}", answer.text);

        let mut body = legacy_order("7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d");
        body["data"] = j!({"orderId": 42});
        let answer = c.legacy(SHOP, &body).await?;
        kyma_error(&answer, 422, "legacy")?;
        assert!(answer.names("/data/orderId"), "{}", answer.text);
        shop.stop().await
    }
}

e2e_test! {
    async fn events_above_max_event_bytes_are_413() -> anyhow::Result<()> {
        let shop = Shop::start_with(&[("SPIN_VARIABLE_MAX_EVENT_BYTES", "1024")]).await?;
        let c = shop.client();
        let big = "x".repeat(2048);

        let answer = c.structured(&cloud_event("big-1", "order.created.v1", j!({"orderId": big}))).await?;
        error(&answer, 413, "PAYLOAD_TOO_LARGE", "structured, 2 KiB")?;
        let answer = c.binary("big-2", "order.created.v1", &[], &j!({"orderId": big})).await?;
        error(&answer, 413, "PAYLOAD_TOO_LARGE", "binary, 2 KiB")?;
        let mut body = legacy_order("9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b");
        body["data"] = j!({"orderId": big});
        kyma_error(&c.legacy(SHOP, &body).await?, 413, "legacy, 2 KiB")?;

        // Below the limit is fine.
        c.structured(&order("small-1")).await?.expect(202, "a small event")?;
        shop.stop().await
    }
}

e2e_test! {
    async fn wrong_content_types_are_415() -> anyhow::Result<()> {
        let shop = Shop::start().await?;
        let c = shop.client();
        let event = order("ct-1").to_string();

        let answer = c.publish_raw(Some("application/cloudevents+xml"), &[], event.clone()).await?;
        error(&answer, 415, "UNSUPPORTED_MEDIA_TYPE", "a CloudEvents format other than JSON")?;
        let answer = c.publish_raw(Some("application/cloudevents+protobuf"), &[], event.clone()).await?;
        error(&answer, 415, "UNSUPPORTED_MEDIA_TYPE", "protobuf format")?;

        let legacy = legacy_order("2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e").to_string();
        kyma_error(&c.legacy_raw(SHOP, "text/plain", legacy).await?, 415, "legacy as text/plain")?;
        shop.stop().await
    }
}

e2e_test! {
    /// The contract's row "wrong content type": a structured event's JSON sent as `text/plain`,
    /// with no `ce-*` header, is refused as a wrong content type (not read as a binary-mode
    /// event missing its `ce-specversion` header, which would be a 400).
    async fn a_structured_event_sent_as_text_plain_is_415() -> anyhow::Result<()> {
        let shop = Shop::start().await?;
        let c = shop.client();
        let answer = c.publish_raw(Some("text/plain"), &[], order("ct-2").to_string()).await?;
        error(&answer, 415, "UNSUPPORTED_MEDIA_TYPE", "a structured event sent as text/plain")?;
        // A real binary-mode event with a text/plain body is a CloudEvent: it gets past the
        // content type, and then its text data fails the entry's object schema.
        let mut headers = super::binary_headers("ct-3", "order.cancelled.v1");
        headers.push(("content-type", "text/plain"));
        let answer = c.publish_raw(None, &headers, "cancelled by the customer").await?;
        error(&answer, 422, "PAYLOAD_SCHEMA_VIOLATION", "binary mode, text data, object schema")?;
        shop.stop().await
    }
}

e2e_test! {
    async fn malformed_requests_are_400_naming_the_field() -> anyhow::Result<()> {
        let shop = Shop::start().await?;
        let c = shop.client();

        let answer = c.publish_raw(Some("application/cloudevents+json"), &[], "{\"specversion\": \"1.0\", ").await?;
        error(&answer, 400, "BAD_REQUEST", "structured, malformed JSON")?;
        let answer = c.publish_raw(Some("application/cloudevents-batch+json"), &[], "[{").await?;
        error(&answer, 400, "BAD_REQUEST", "batch, malformed JSON")?;
        let answer = c.publish_raw(Some("application/cloudevents-batch+json"), &[], order("m-0").to_string()).await?;
        error(&answer, 400, "BAD_REQUEST", "batch that is not an array")?;

        let mut bad_time = order("m-1");
        bad_time["time"] = j!("yesterday");
        let answer = c.structured(&bad_time).await?;
        error(&answer, 400, "BAD_REQUEST", "invalid time")?;
        assert!(answer.names("time"), "{}", answer.text);

        let mut no_id = order("m-2");
        no_id.as_object_mut().map(|e| e.remove("id"));
        let answer = c.structured(&no_id).await?;
        error(&answer, 400, "BAD_REQUEST", "missing id")?;
        assert!(answer.names("id"), "{}", answer.text);

        let mut old_spec = order("m-3");
        old_spec["specversion"] = j!("0.3");
        let answer = c.structured(&old_spec).await?;
        error(&answer, 400, "BAD_REQUEST", "specversion 0.3")?;
        assert!(answer.names("specversion"), "{}", answer.text);

        let mut bad_extension = order("m-4");
        bad_extension["Bad_Name"] = j!("x");
        let answer = c.structured(&bad_extension).await?;
        error(&answer, 400, "BAD_REQUEST", "invalid extension name")?;

        // Binary mode without ce-type names the header.
        let headers = [("ce-specversion", "1.0"), ("ce-id", "m-5"), ("ce-source", "/applications/shop"), ("ce-time", TIME)];
        let answer = c.publish_raw(Some("application/json"), &headers, "{\"orderId\":\"m-5\"}").await?;
        error(&answer, 400, "BAD_REQUEST", "binary without ce-type")?;
        assert!(answer.names("ce-type"), "{}", answer.text);

        // Legacy: malformed JSON, a missing field, an event-id that is not a UUID.
        kyma_error(&c.legacy_raw(SHOP, "application/json", "{\"event-type\":").await?, 400, "legacy, malformed JSON")?;
        let mut body = legacy_order("c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f");
        body.as_object_mut().map(|b| b.remove("event-time"));
        let answer = c.legacy(SHOP, &body).await?;
        kyma_error(&answer, 400, "legacy without event-time")?;
        assert!(answer.names("event-time"), "{}", answer.text);
        let answer = c.legacy(SHOP, &legacy_order("not-a-uuid")).await?;
        kyma_error(&answer, 400, "legacy, event-id not a UUID")?;
        assert!(answer.names("event-id"), "{}", answer.text);
        shop.stop().await
    }
}

e2e_test! {
    async fn a_batch_with_one_bad_entry_stores_nothing() -> anyhow::Result<()> {
        let state = tempfile::tempdir()?;
        let shop = Shop::start_in(state.path(), &[]).await?;
        let c = shop.client();

        // An invalid attribute: 400, naming the entry.
        let mut bad = order("b-1");
        bad["time"] = j!("not a time");
        let answer = c.batch(&[order("b-0"), bad, order("b-2")]).await?;
        error(&answer, 400, "BAD_REQUEST", "batch with an invalid time in [1]")?;
        assert!(answer.names("[1].time"), "{}", answer.text);

        // Data violating the schema: 422, the pointer prefixed with the entry.
        let bad = cloud_event("b-1", "order.created.v1", j!({"orderId": 7}));
        let answer = c.batch(&[order("b-0"), bad, order("b-2")]).await?;
        error(&answer, 422, "PAYLOAD_SCHEMA_VIOLATION", "batch with bad data in [1]")?;
        assert!(answer.names("[1]/data/orderId"), "{}", answer.text);

        // An unregistered type: 422, naming the entry.
        let bad = cloud_event("b-1", "order.shipped.v1", j!({"orderId": "b-1"}));
        let answer = c.batch(&[order("b-0"), bad, order("b-2")]).await?;
        error(&answer, 422, "EVENT_TYPE_NOT_REGISTERED", "batch with an unregistered type in [1]")?;
        assert!(answer.fields().iter().any(|f| f.starts_with("[1]")), "{}", answer.text);

        // More than 100 events.
        let many: Vec<_> = (0..101).map(|i| order(&format!("many-{i}"))).collect();
        let answer = c.batch(&many).await?;
        assert!(matches!(answer.status, 400 | 413), "101 events: {} {}", answer.status, answer.text);
        shop.stop().await?;

        let store = stored(state.path(), "default")?;
        assert!(store.events.is_empty(), "nothing may be stored: {:#?}", store.events);
        assert!(store.log.is_empty(), "nothing may be logged: {:?}", store.log);
        Ok(())
    }
}
