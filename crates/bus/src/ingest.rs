//! A Pub/Sub message as a CloudEvent, checked against the event API's catalog like a published
//! event, and stored.
//!
//! The CloudEvents Pub/Sub binding has two modes:
//! - **binary**: the attributes are message attributes named `ce-<attribute>` (`ce-id`,
//!   `ce-source`, `ce-type`, `ce-specversion`, extensions), the `content-type` attribute is
//!   `datacontenttype`, and the message data is the event data;
//! - **structured**: the `content-type` attribute is `application/cloudevents+json` and the
//!   message data is the whole event in JSON.
//!
//! Other message attributes are ignored. A message that is neither, is too large, or whose type
//! is not in the catalog (or whose data violates the payload schema) is a [`Rejection`].

use eventplane_core::{Error, KvStore, TenantId};
use eventplane_events::cloudevents::{self, Event};
use eventplane_events::limits;
use eventplane_eventstore::Stored;
pub use eventplane_ingest::{Application, Rejection};

use crate::wire::PubsubMessage;

/// The CloudEvent a message carries (binary or structured mode), at most `max_event_bytes`.
pub fn to_cloudevent(message: &PubsubMessage, max_event_bytes: u64) -> Result<Event, Rejection> {
    let data = message.decoded_data().map_err(Rejection::invalid)?;
    limits::check_size(data.len(), max_event_bytes).map_err(|e| Rejection::from_error(&e))?;
    let content_type = message
        .attributes
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.as_str());
    let media_type = content_type.map(cloudevents::media_type);
    let event = match media_type.as_deref() {
        Some("application/cloudevents+json") => cloudevents::from_structured(&data),
        Some("application/cloudevents-batch+json") => {
            return Err(Rejection::invalid(
                "a batch of CloudEvents in one message is not supported: publish one event per \
                 message",
            ));
        }
        _ => {
            if !message
                .attributes
                .keys()
                .any(|name| name.to_ascii_lowercase().starts_with("ce-"))
            {
                return Err(Rejection::invalid(
                    "the message is not a CloudEvent: binary mode needs the attributes \
                     ce-specversion, ce-id, ce-source and ce-type; structured mode needs the \
                     attribute content-type: application/cloudevents+json",
                ));
            }
            // Pub/Sub attribute values are not percent-encoded as HTTP headers are: escape
            // `%` so that the binary-mode decoder gives them back unchanged.
            let attributes: Vec<(String, String)> = message
                .attributes
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.replace('%', "%25")))
                .collect();
            cloudevents::from_binary(&attributes, content_type, &data)
        }
    }
    .map_err(|e| Rejection::from_error(&e))?;
    limits::check_events(std::slice::from_ref(&event), max_event_bytes)
        .map_err(|e| Rejection::from_error(&e))?;
    Ok(event)
}

/// The application and catalog a message is checked against.
#[derive(Debug, Clone)]
pub struct Target {
    /// The application publishing through the bus, with the event API's catalog.
    pub app: Application,
    /// `max_event_bytes`.
    pub max_event_bytes: u64,
}

/// What became of one message.
#[derive(Debug, Clone)]
pub enum Ingested {
    /// Stored (or already stored: `duplicate`).
    Stored(Box<Stored>),
    /// Not an event eventplane accepts.
    Rejected(Rejection),
}

/// Converts, checks and stores one message. `Err` only when the store failed: the message must
/// then stay unacknowledged.
pub fn ingest(
    store: &dyn KvStore,
    tenant: &TenantId,
    target: &Target,
    message: &PubsubMessage,
    now_ms: u64,
) -> Result<Ingested, Error> {
    let event = match to_cloudevent(message, target.max_event_bytes) {
        Ok(event) => event,
        Err(rejection) => return Ok(Ingested::Rejected(rejection)),
    };
    Ok(match target.app.accept(store, tenant, event, now_ms)? {
        Ok(stored) => Ingested::Stored(Box::new(stored)),
        Err(rejection) => Ingested::Rejected(rejection),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use eventplane_core::{AppId, MemoryStore};
    use eventplane_events::{CatalogEntry, EventData};
    use serde_json::json;

    use super::*;

    fn message(attributes: &[(&str, &str)], data: &[u8]) -> PubsubMessage {
        PubsubMessage {
            data: STANDARD.encode(data),
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            message_id: "m1".into(),
            publish_time: "2026-12-04T07:00:00Z".into(),
            ordering_key: None,
        }
    }

    fn binary(id: &str, data: &serde_json::Value) -> PubsubMessage {
        message(
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", id),
                ("ce-source", "/applications/shop"),
                ("ce-type", "order.created.v1"),
                ("ce-traceparent", "00-abc%20"),
                ("content-type", "application/json"),
            ],
            data.to_string().as_bytes(),
        )
    }

    fn target() -> Target {
        Target {
            app: Application {
                name: "shop".into(),
                id: AppId::new(),
                entries: vec![CatalogEntry {
                    name: "order.created.v1".into(),
                    version: "v1".into(),
                    payload_schema: Some(json!({
                    "type": "object", "required": ["orderId"],
                    "properties": {"orderId": {"type": "string"}}})),
                }],
            },
            max_event_bytes: 64 * 1024,
        }
    }

    #[test]
    fn binary_messages_carry_ce_attributes_and_data() {
        let event = to_cloudevent(&binary("1", &json!({"orderId": "o-1"})), 65536).expect("event");
        assert_eq!(event.id, "1");
        assert_eq!(event.event_type, "order.created.v1");
        assert_eq!(event.datacontenttype.as_deref(), Some("application/json"));
        assert_eq!(event.data, EventData::Json(json!({"orderId": "o-1"})));
        // attribute values are taken as they are, `%` included
        assert_eq!(event.extensions["traceparent"], json!("00-abc%20"));
    }

    #[test]
    fn structured_messages_carry_the_whole_event() {
        let body = json!({"specversion": "1.0", "id": "2", "source": "/applications/shop",
            "type": "order.created.v1", "data": {"orderId": "o-2"}});
        let event = to_cloudevent(
            &message(
                &[(
                    "content-type",
                    "application/cloudevents+json; charset=utf-8",
                )],
                body.to_string().as_bytes(),
            ),
            65536,
        )
        .expect("event");
        assert_eq!(event.id, "2");
        assert_eq!(event.data, EventData::Json(json!({"orderId": "o-2"})));
    }

    #[test]
    fn what_is_not_a_cloudevent_is_rejected_with_a_reason() {
        let plain = to_cloudevent(&message(&[("origin", "erp")], b"{}"), 65536).expect_err("x");
        assert_eq!(plain.code, "INVALID_CLOUDEVENT");
        assert!(plain.reason.contains("ce-type"), "{}", plain.reason);
        let no_type = to_cloudevent(
            &message(
                &[
                    ("ce-specversion", "1.0"),
                    ("ce-id", "1"),
                    ("ce-source", "/a"),
                ],
                b"",
            ),
            65536,
        )
        .expect_err("no type");
        assert!(no_type.reason.contains("ce-type"), "{}", no_type.reason);
        let broken = to_cloudevent(
            &message(&[("content-type", "application/cloudevents+json")], b"{"),
            65536,
        )
        .expect_err("not JSON");
        assert_eq!(broken.status, 422);
        let mut not_base64 = binary("1", &json!({}));
        not_base64.data = "%%%".into();
        assert!(to_cloudevent(&not_base64, 65536).is_err());
        let big = to_cloudevent(&binary("1", &json!({"orderId": "x".repeat(200)})), 100)
            .expect_err("too large");
        assert_eq!((big.code.as_str(), big.status), ("PAYLOAD_TOO_LARGE", 413));
    }

    #[test]
    fn the_catalog_decides_like_the_gateway() -> Result<(), Error> {
        let store = MemoryStore::new();
        let tenant: TenantId = "acme".parse()?;
        let target = target();
        let good = binary("1", &json!({"orderId": "o-1"}));
        let Ingested::Stored(first) = ingest(&store, &tenant, &target, &good, 1_000)? else {
            panic!("a valid event is stored");
        };
        assert!(!first.duplicate);
        assert_eq!(first.event.application, "shop");
        let Ingested::Stored(again) = ingest(&store, &tenant, &target, &good, 2_000)? else {
            panic!("stored again");
        };
        assert!(again.duplicate, "the same source and id are stored once");

        let bad = binary("2", &json!({"orderId": 7}));
        let Ingested::Rejected(rejection) = ingest(&store, &tenant, &target, &bad, 3_000)? else {
            panic!("schema violation is rejected");
        };
        assert_eq!(rejection.code, "PAYLOAD_SCHEMA_VIOLATION");
        assert!(
            rejection.reason.contains("/data/orderId"),
            "{}",
            rejection.reason
        );

        let mut unknown = binary("3", &json!({"orderId": "o"}));
        unknown
            .attributes
            .insert("ce-type".into(), "order.deleted.v1".into());
        let Ingested::Rejected(rejection) = ingest(&store, &tenant, &target, &unknown, 4_000)?
        else {
            panic!("unknown type is rejected");
        };
        assert_eq!(rejection.code, "EVENT_TYPE_NOT_REGISTERED");
        Ok(())
    }
}
