//! The stored form of an accepted event.

use std::collections::BTreeMap;

use eventplane_core::{AppId, EventId, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// An event's data, as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "encoding", content = "value", rename_all = "lowercase")]
pub enum EventData {
    /// The event carries no data.
    #[default]
    None,
    /// JSON data.
    Json(Value),
    /// Text data (a non-JSON content type and UTF-8).
    Text(String),
    /// Binary data; stored as base64 (RFC 4648, padded).
    Binary(#[serde(with = "base64_bytes")] Vec<u8>),
}

/// An event the gateway accepted (a CloudEvent, or a Kyma legacy event mapped to one), before
/// it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// The name of the publishing application.
    pub application: String,
    /// The id of the publishing application.
    pub app_id: AppId,
    /// CloudEvents `source`.
    pub source: String,
    /// CloudEvents `id`: the publisher's id, unique within `source`.
    pub event_id: String,
    /// CloudEvents `type`: the catalog entry's name.
    pub type_name: String,
    /// The catalog entry's version, when known (the legacy `event-type-version`).
    pub type_version: Option<String>,
    /// CloudEvents `specversion`.
    pub spec_version: String,
    /// CloudEvents `time` (RFC 3339), as sent.
    pub time: Option<String>,
    /// CloudEvents `datacontenttype`.
    pub datacontenttype: Option<String>,
    /// CloudEvents `dataschema`.
    pub dataschema: Option<String>,
    /// CloudEvents `subject`.
    pub subject: Option<String>,
    /// CloudEvents extension attributes by name.
    pub extensions: BTreeMap<String, Value>,
    /// The data.
    pub data: EventData,
}

impl NewEvent {
    /// An event of `application` (`app_id`) with the required CloudEvents attributes (`source`,
    /// `id`, `type`; `specversion` 1.0), no optional attribute, no extension and no data.
    pub fn new(
        application: impl Into<String>,
        app_id: AppId,
        source: impl Into<String>,
        id: impl Into<String>,
        type_name: impl Into<String>,
    ) -> Self {
        Self {
            application: application.into(),
            app_id,
            source: source.into(),
            event_id: id.into(),
            type_name: type_name.into(),
            type_version: None,
            spec_version: "1.0".to_owned(),
            time: None,
            datacontenttype: None,
            dataschema: None,
            subject: None,
            extensions: BTreeMap::new(),
            data: EventData::None,
        }
    }
}

/// An accepted event as stored (`t/<tenant>/r/evt/<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// Our id, derived from `source` and `event_id` (the same publish always gets the same id).
    pub id: EventId,
    /// The tenant.
    pub tenant: TenantId,
    /// The name of the publishing application.
    pub application: String,
    /// The id of the publishing application.
    pub app_id: AppId,
    /// CloudEvents `source`.
    pub source: String,
    /// CloudEvents `id`, the publisher's.
    pub event_id: String,
    /// CloudEvents `type`.
    pub type_name: String,
    /// The catalog entry's version, when known.
    pub type_version: Option<String>,
    /// CloudEvents `specversion`.
    pub spec_version: String,
    /// CloudEvents `time`, as sent.
    pub time: Option<String>,
    /// CloudEvents `datacontenttype`.
    pub datacontenttype: Option<String>,
    /// CloudEvents `dataschema`.
    pub dataschema: Option<String>,
    /// CloudEvents `subject`.
    pub subject: Option<String>,
    /// CloudEvents extension attributes.
    pub extensions: BTreeMap<String, Value>,
    /// The data.
    pub data: EventData,
    /// When we accepted it, Unix milliseconds.
    pub received_at: u64,
    /// Its place in the tenant's acceptance order (increasing; gaps possible).
    pub sequence: u64,
}

impl StoredEvent {
    pub(crate) fn new(
        id: EventId,
        tenant: TenantId,
        event: NewEvent,
        received_at: u64,
        sequence: u64,
    ) -> Self {
        Self {
            id,
            tenant,
            application: event.application,
            app_id: event.app_id,
            source: event.source,
            event_id: event.event_id,
            type_name: event.type_name,
            type_version: event.type_version,
            spec_version: event.spec_version,
            time: event.time,
            datacontenttype: event.datacontenttype,
            dataschema: event.dataschema,
            subject: event.subject,
            extensions: event.extensions,
            data: event.data,
            received_at,
            sequence,
        }
    }
}

/// What identifies one publish: the hash of `source` and the publisher's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// SHA-256, lowercase hex (64 digits): names the claim.
    pub hash: String,
    /// `evt_` and the first 32 hex digits of the hash: names the record.
    pub id: EventId,
}

/// The identity of the event `id` from `source`. Both are length-prefixed in the hash, so no
/// two different pairs hash the same input.
pub(crate) fn identity(source: &str, id: &str) -> Result<Identity, eventplane_core::Error> {
    let mut hasher = Sha256::new();
    hasher.update(b"eventplane/event/v1\0");
    for part in [source, id] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let hash = hex::encode(hasher.finalize());
    let id = format!("evt_{}", &hash[..32])
        .parse::<EventId>()
        .map_err(|err| eventplane_core::Error::internal_with("deriving an event id", err))?;
    Ok(Identity { hash, id })
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_stable_and_length_prefixed() -> Result<(), eventplane_core::Error> {
        let a = identity("/applications/shop", "1")?;
        assert_eq!(a, identity("/applications/shop", "1")?);
        assert_eq!(a.hash.len(), 64);
        assert!(a.id.as_str().starts_with("evt_"));
        assert_ne!(a.hash, identity("/applications/shop1", "")?.hash);
        assert_ne!(identity("ab", "c")?.hash, identity("a", "bc")?.hash);
        Ok(())
    }

    #[test]
    fn data_round_trips_in_every_encoding() -> Result<(), serde_json::Error> {
        for data in [
            EventData::None,
            EventData::Json(serde_json::json!({"a": [1, 2]})),
            EventData::Text("héllo".into()),
            EventData::Binary(vec![0, 159, 146, 150, 255]),
        ] {
            let json = serde_json::to_string(&data)?;
            assert_eq!(serde_json::from_str::<EventData>(&json)?, data, "{json}");
        }
        let json = serde_json::to_value(EventData::Binary(b"hi".to_vec()))?;
        assert_eq!(
            json,
            serde_json::json!({"encoding": "binary", "value": "aGk="})
        );
        Ok(())
    }
}
