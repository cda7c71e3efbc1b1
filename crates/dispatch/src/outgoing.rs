//! The HTTP request of one delivery attempt: the event in CloudEvents binary mode (context
//! attributes as `ce-*` headers, the data as the body), the sink's own headers and
//! authorization, and the Standard Webhooks signature headers.
//!
//! Header values follow the CloudEvents HTTP binding (§3.1.3.2): space, `"`, `%` and every
//! character outside printable ASCII are percent-encoded (as UTF-8). Extension attributes that
//! are not strings are sent in their canonical text (`true`, `42`).

use std::fmt::Write as _;

use eventplane_eventstore::{EventData, StoredEvent};
use serde_json::Value;

use crate::filter::attribute_text;
use crate::model::Subscription;
use crate::signing::webhook_headers;

/// A request ready to send: `POST url` with these headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The sink's URL.
    pub url: String,
    /// Header names (lower case) and values, in the order to send them.
    pub headers: Vec<(String, String)>,
    /// The body: the event's data.
    pub body: Vec<u8>,
}

impl Outgoing {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The `webhook-id` of an event's deliveries: the event's id, the same for every attempt.
pub fn webhook_id(event: &StoredEvent) -> String {
    event.id.to_string()
}

/// Percent-encodes a `ce-*` header value as the CloudEvents HTTP binding asks.
pub fn encode_header_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        if ch.is_ascii_graphic() && ch != '"' && ch != '%' {
            out.push(ch);
        } else {
            let mut utf8 = [0u8; 4];
            for byte in ch.encode_utf8(&mut utf8).bytes() {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

/// The body of an event's data, and its content type.
fn body_of(event: &StoredEvent) -> (Vec<u8>, Option<String>) {
    let declared = event.datacontenttype.clone();
    match &event.data {
        EventData::None => (Vec::new(), declared),
        EventData::Json(value) => (
            value.to_string().into_bytes(),
            declared.or_else(|| Some("application/json".to_owned())),
        ),
        EventData::Text(text) => (
            text.clone().into_bytes(),
            declared.or_else(|| Some("text/plain; charset=utf-8".to_owned())),
        ),
        EventData::Binary(bytes) => (
            bytes.clone(),
            declared.or_else(|| Some("application/octet-stream".to_owned())),
        ),
    }
}

/// The request delivering `event` for `subscription` to `url` (its sink's, or its dead-letter
/// sink's) at `timestamp` (Unix seconds), with `authorization` (the `Authorization` value, when
/// that sink has auth) and `extensions` added as further `ce-*` attributes (a dead-letter sink's
/// `deadletterreason`, …). The sink's own extra headers go only to the sink.
pub fn build(
    url: &str,
    subscription: &Subscription,
    event: &StoredEvent,
    timestamp: u64,
    authorization: Option<&str>,
    extensions: &[(&str, Value)],
) -> Outgoing {
    let (body, content_type) = body_of(event);
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut push = |name: &str, value: &str| {
        headers.push((name.to_owned(), value.to_owned()));
    };
    if let Some(content_type) = &content_type {
        push("content-type", content_type);
    }
    let attributes = [
        ("ce-specversion", Some(event.spec_version.as_str())),
        ("ce-id", Some(event.event_id.as_str())),
        ("ce-source", Some(event.source.as_str())),
        ("ce-type", Some(event.type_name.as_str())),
        ("ce-time", event.time.as_deref()),
        ("ce-subject", event.subject.as_deref()),
        ("ce-dataschema", event.dataschema.as_deref()),
    ];
    for (name, value) in attributes {
        if let Some(value) = value {
            push(name, &encode_header_value(value));
        }
    }
    let added = extensions.iter().map(|(name, value)| (*name, value));
    for (name, value) in event
        .extensions
        .iter()
        .map(|(n, v)| (n.as_str(), v))
        .chain(added)
    {
        push(
            &format!("ce-{name}"),
            &encode_header_value(&attribute_text(value)),
        );
    }
    if url == subscription.sink.url {
        for (name, value) in &subscription.sink.headers {
            push(&name.to_ascii_lowercase(), value);
        }
    }
    if let Some(authorization) = authorization {
        push("authorization", authorization);
    }
    let id = webhook_id(event);
    for (name, value) in webhook_headers(&subscription.signing_secret, &id, timestamp, &body) {
        push(name, &value);
    }
    Outgoing {
        url: url.to_owned(),
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {

    use base64::Engine as _;
    use hmac::{Hmac, Mac as _};
    use serde_json::json;
    use sha2::Sha256;

    use super::*;
    use crate::SubscriptionInput;

    fn subscription() -> Subscription {
        let input = SubscriptionInput::parse(&json!({
            "name": "billing",
            "sink": {"url": "https://billing.example/hooks", "headers": {"X-Team": "billing"},
                     "auth": {"bearer": {"token": "t0k"}}},
            "filter": {"application": "shop"},
            "signing": {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
        }))
        .expect("valid");
        let store = eventplane_core::MemoryStore::new();
        let tenant = "acme".parse().expect("tenant");
        crate::create(&store, &tenant, input, [1; 32], 1_700_000_000_000)
            .expect("created")
            .subscription
    }

    fn event(data: EventData, content_type: Option<&str>) -> StoredEvent {
        serde_json::from_value(json!({
            "id": "evt_00000000000000000000000000000001",
            "tenant": "acme",
            "application": "shop",
            "appId": "app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f",
            "source": "/applications/shop",
            "eventId": "order 42 – ok",
            "typeName": "order.created.v1",
            "typeVersion": "v1",
            "specVersion": "1.0",
            "time": "2025-06-01T12:00:00Z",
            "datacontenttype": content_type,
            "extensions": {"region": "eu", "priority": 5, "urgent": true},
            "data": serde_json::to_value(data).expect("data"),
            "receivedAt": 1_700_000_000_000_u64,
            "sequence": 1,
        }))
        .expect("a stored event")
    }

    /// Verifies a `webhook-signature` as a receiver does, from the Standard Webhooks spec:
    /// HMAC-SHA256 over `id.timestamp.body` with the base64-decoded secret after `whsec_`.
    fn verify(secret: &str, id: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .expect("base64 secret");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        signature
            .split(' ')
            .any(|candidate| candidate.strip_prefix("v1,") == Some(expected.as_str()))
    }

    #[test]
    fn an_event_becomes_a_binary_mode_request_with_a_verifiable_signature() {
        let sub = subscription();
        let ev = event(EventData::Json(json!({"orderId": "o-1"})), None);
        let out = build(
            &sub.sink.url,
            &sub,
            &ev,
            1_700_000_123,
            Some("Bearer t0k"),
            &[],
        );
        assert_eq!(out.url, "https://billing.example/hooks");
        assert_eq!(out.body, br#"{"orderId":"o-1"}"#);
        assert_eq!(out.header("content-type"), Some("application/json"));
        assert_eq!(out.header("ce-specversion"), Some("1.0"));
        assert_eq!(out.header("ce-id"), Some("order%2042%20%E2%80%93%20ok"));
        assert_eq!(out.header("ce-source"), Some("/applications/shop"));
        assert_eq!(out.header("ce-type"), Some("order.created.v1"));
        assert_eq!(out.header("ce-time"), Some("2025-06-01T12:00:00Z"));
        assert_eq!(out.header("ce-region"), Some("eu"));
        assert_eq!(out.header("ce-priority"), Some("5"));
        assert_eq!(out.header("ce-urgent"), Some("true"));
        assert_eq!(out.header("x-team"), Some("billing"));
        assert_eq!(out.header("authorization"), Some("Bearer t0k"));
        assert_eq!(
            out.header("webhook-id"),
            Some("evt_00000000000000000000000000000001")
        );
        assert_eq!(out.header("webhook-timestamp"), Some("1700000123"));
        let signature = out.header("webhook-signature").expect("signed");
        assert!(verify(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "evt_00000000000000000000000000000001",
            "1700000123",
            &out.body,
            signature
        ));
        assert!(!verify(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "evt_00000000000000000000000000000001",
            "1700000124",
            &out.body,
            signature
        ));
    }

    #[test]
    fn data_kinds_keep_their_content_type_and_dead_letter_extensions_are_added() {
        let sub = subscription();
        let text = event(EventData::Text("héllo".into()), Some("text/csv"));
        let out = build(
            "https://dlq.example/in",
            &sub,
            &text,
            1,
            None,
            &[
                ("deadletterreason", json!("HTTP 400")),
                ("deliveryattempts", json!(3)),
            ],
        );
        assert_eq!(out.body, "héllo".as_bytes());
        assert_eq!(out.header("content-type"), Some("text/csv"));
        assert_eq!(out.header("ce-deadletterreason"), Some("HTTP%20400"));
        assert_eq!(out.header("ce-deliveryattempts"), Some("3"));
        assert_eq!(
            out.header("x-team"),
            None,
            "the sink's headers go only to the sink"
        );
        assert_eq!(out.header("authorization"), None);
        let none = event(EventData::None, None);
        let out = build(&sub.sink.url, &sub, &none, 1, None, &[]);
        assert!(out.body.is_empty());
        assert_eq!(out.header("content-type"), None);
        let binary = event(EventData::Binary(vec![0, 159, 146, 150]), None);
        let out = build(&sub.sink.url, &sub, &binary, 1, None, &[]);
        assert_eq!(out.body, [0, 159, 146, 150]);
        assert_eq!(out.header("content-type"), Some("application/octet-stream"));
    }

    #[test]
    fn header_values_are_percent_encoded_as_the_binding_asks() {
        assert_eq!(
            encode_header_value("plain-Value_1.2/3"),
            "plain-Value_1.2/3"
        );
        assert_eq!(encode_header_value("a b"), "a%20b");
        assert_eq!(encode_header_value("\"%"), "%22%25");
        assert_eq!(encode_header_value("ü"), "%C3%BC");
        assert_eq!(encode_header_value("\n"), "%0A");
    }
}
