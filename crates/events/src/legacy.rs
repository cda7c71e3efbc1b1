//! Kyma's legacy publish format (`POST /{application}/v1/events`).
//!
//! The body is `{"event-type", "event-type-version", "event-id"?, "event-time", "data"}`; the
//! answer is a [`LegacyResponse`] `{"event-id", "status", "reason"}`; errors are
//! [`LegacyError`]s in Kyma's shape `{"status", "type", "message", "details": [{"field", "type",
//! "message"}]}`.
//!
//! Field rules (those of Kyma's publisher proxy, plus a pattern for `event-type`, which Kyma only
//! requires to be non-empty):
//!
//! - `event-type`: required; ASCII letters and digits in segments separated by `.`, `_` or `-`
//!   (e.g. `order.created`), at most [`MAX_EVENT_TYPE_LEN`] characters.
//! - `event-type-version`: required; ASCII letters and digits only (`v1`).
//! - `event-time`: required; RFC 3339.
//! - `event-id`: optional; when present a UUID in its hyphenated form (any case); when absent a
//!   UUID v4 is generated.
//! - `data`: required; not `null` and not the empty string.
//!
//! Unlike Kyma, every problem is reported at once (one detail each) instead of only the first.
//! Unknown members are ignored, as Kyma does.
//!
//! A legacy event becomes an [`Event`] with `type` = `event-type`, the version kept separately in
//! the extension `eventtypeversion` (Kyma's extension name), `source` = `/applications/<name>`,
//! `datacontenttype` = `application/json` and the JSON `data`. The catalog lookup uses the
//! type and version separately (see [`crate::catalog::find`]).

use eventplane_core::{Error, FieldError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::catalog::CatalogError;
use crate::cloudevents::{self, Event, EventData};

/// The CloudEvents extension holding a converted legacy event's `event-type-version`.
pub const EVENT_TYPE_VERSION_EXTENSION: &str = "eventtypeversion";
/// The longest `event-type` accepted.
pub const MAX_EVENT_TYPE_LEN: usize = 253;

/// Field name of the event type.
pub const FIELD_EVENT_TYPE: &str = "event-type";
/// Field name of the event type version.
pub const FIELD_EVENT_TYPE_VERSION: &str = "event-type-version";
/// Field name of the event id.
pub const FIELD_EVENT_ID: &str = "event-id";
/// Field name of the event time.
pub const FIELD_EVENT_TIME: &str = "event-time";
/// Field name of the data.
pub const FIELD_DATA: &str = "data";

/// Error type (Kyma's): the body is not JSON, or not an object.
pub const TYPE_BAD_PAYLOAD: &str = "bad_payload_syntax";
/// Error type (Kyma's): one or more fields are missing or invalid.
pub const TYPE_VALIDATION_VIOLATION: &str = "validation_violation";
/// Detail type (Kyma's): a required field is missing.
pub const TYPE_MISSING_FIELD: &str = "missing_field";
/// Detail type (Kyma's): a field has an invalid value.
pub const TYPE_INVALID_FIELD: &str = "invalid_field";
/// Error type (Kyma's): the body is larger than the limit.
pub const TYPE_REQUEST_BODY_TOO_LARGE: &str = "request_body_too_large";

/// A validated legacy publish request.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyEvent {
    /// `event-type`, e.g. `order.created`.
    pub event_type: String,
    /// `event-type-version`, e.g. `v1`.
    pub event_type_version: String,
    /// `event-id` as sent, or a generated UUID v4.
    pub event_id: String,
    /// Whether `event_id` was generated because the request had none.
    pub event_id_generated: bool,
    /// `event-time` (RFC 3339) as sent.
    pub event_time: String,
    /// `data`.
    pub data: Value,
}

impl LegacyEvent {
    /// The event as a CloudEvent published by application `application` (see the module doc).
    pub fn to_event(&self, application: &str) -> Event {
        let mut event = Event::new(
            self.event_id.clone(),
            cloudevents::application_source(application),
            self.event_type.clone(),
        );
        event.time = Some(self.event_time.clone());
        event.datacontenttype = Some("application/json".to_owned());
        event.extensions.insert(
            EVENT_TYPE_VERSION_EXTENSION.to_owned(),
            Value::from(self.event_type_version.as_str()),
        );
        event.data = EventData::Json(self.data.clone());
        event
    }
}

/// The type and version of a converted legacy event ([`LegacyEvent::to_event`]): its `type` and
/// its `eventtypeversion` extension, if it has one.
pub fn type_and_version(event: &Event) -> (&str, Option<&str>) {
    let version = event
        .extensions
        .get(EVENT_TYPE_VERSION_EXTENSION)
        .and_then(Value::as_str);
    (&event.event_type, version)
}

/// The success answer: `{"event-id", "status", "reason"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyResponse {
    /// The id of the published event.
    #[serde(rename = "event-id")]
    pub event_id: String,
    /// The HTTP status of the answer.
    pub status: u16,
    /// What happened, for people.
    pub reason: String,
}

impl LegacyResponse {
    /// The answer for an event that was accepted (status 200).
    pub fn published(event_id: impl Into<String>) -> Self {
        Self {
            event_id: event_id.into(),
            status: 200,
            reason: "Event published".to_owned(),
        }
    }

    /// The answer for an event whose `event-id` was already accepted: success, nothing stored
    /// twice (status 200).
    pub fn duplicate(event_id: impl Into<String>) -> Self {
        Self {
            event_id: event_id.into(),
            status: 200,
            reason: "Event already published".to_owned(),
        }
    }
}

/// One problem in a [`LegacyError`]: `{"field", "type", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyErrorDetail {
    /// The field, e.g. `event-time`.
    pub field: String,
    /// [`TYPE_MISSING_FIELD`] or [`TYPE_INVALID_FIELD`].
    #[serde(rename = "type")]
    pub detail_type: String,
    /// What is wrong, for people.
    pub message: String,
}

impl LegacyErrorDetail {
    /// A missing required field.
    pub fn missing(field: &str) -> Self {
        Self {
            field: field.to_owned(),
            detail_type: TYPE_MISSING_FIELD.to_owned(),
            message: "Missing field".to_owned(),
        }
    }

    /// A field with an invalid value.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            detail_type: TYPE_INVALID_FIELD.to_owned(),
            message: message.into(),
        }
    }
}

/// An error in Kyma's shape: `{"status", "type", "message", "details"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyError {
    /// The HTTP status of the answer.
    pub status: u16,
    /// The error type: one of the `TYPE_*` constants, or the lower-cased code of an
    /// [`eventplane_core::Error`] (`unauthorized`, `event_type_not_registered`, …).
    #[serde(rename = "type")]
    pub error_type: String,
    /// What is wrong, for people.
    pub message: String,
    /// One entry per problem (may be empty).
    #[serde(default)]
    pub details: Vec<LegacyErrorDetail>,
}

impl LegacyError {
    /// `400 bad_payload_syntax`: the body is not a JSON object.
    pub fn bad_payload(more: impl Into<String>) -> Self {
        Self {
            status: 400,
            error_type: TYPE_BAD_PAYLOAD.to_owned(),
            message: format!("Bad payload syntax: {}", more.into()),
            details: Vec::new(),
        }
    }

    /// `400 validation_violation` with the given problems.
    pub fn validation(details: Vec<LegacyErrorDetail>) -> Self {
        let message = match details.as_slice() {
            [only] if only.detail_type == TYPE_MISSING_FIELD => "Missing field".to_owned(),
            [only] => format!("Invalid field: {}", only.message),
            _ => format!("Validation failed: {} problems", details.len()),
        };
        Self {
            status: 400,
            error_type: TYPE_VALIDATION_VIOLATION.to_owned(),
            message,
            details,
        }
    }

    /// `413 request_body_too_large`.
    pub fn too_large(limit_bytes: u64) -> Self {
        Self {
            status: 413,
            error_type: TYPE_REQUEST_BODY_TOO_LARGE.to_owned(),
            message: format!("Request body too large: the limit is {limit_bytes} bytes"),
            details: Vec::new(),
        }
    }

    /// An error of any status, `code` becoming the lower-cased `type`, each field problem a detail
    /// of type [`TYPE_INVALID_FIELD`].
    pub fn from_parts(status: u16, code: &str, message: String, details: &[FieldError]) -> Self {
        Self {
            status,
            error_type: code.to_ascii_lowercase(),
            message,
            details: details
                .iter()
                .map(|d| LegacyErrorDetail::invalid(&d.field, d.message.clone()))
                .collect(),
        }
    }

    /// The answer's body.
    pub fn body(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl From<&Error> for LegacyError {
    /// Any of the project's errors in Kyma's shape (`413` becomes `request_body_too_large`; our own
    /// faults keep their generic public message).
    fn from(err: &Error) -> Self {
        if let Error::PayloadTooLarge { limit_bytes } = err {
            return Self::too_large(*limit_bytes);
        }
        Self::from_parts(
            err.status(),
            err.code(),
            err.public_message(),
            err.details(),
        )
    }
}

impl From<&CatalogError> for LegacyError {
    fn from(err: &CatalogError) -> Self {
        Self::from_parts(err.status(), err.code(), err.message(), err.details())
    }
}

/// Whether `text` is a valid `event-type`: segments of ASCII letters and digits separated by
/// single `.`, `_` or `-`.
pub fn is_valid_event_type(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_EVENT_TYPE_LEN
        && text.split(['.', '_', '-']).all(|segment| {
            !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// Whether `text` is a valid `event-type-version`: ASCII letters and digits only.
pub fn is_valid_event_type_version(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether `text` is a valid `event-id`: a hyphenated UUID (8-4-4-4-12 hex digits, any case).
pub fn is_valid_event_id(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    groups.len() == lengths.len()
        && groups
            .iter()
            .zip(lengths)
            .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Takes a required string field; records the problem otherwise.
fn required_string(
    map: &Map<String, Value>,
    field: &str,
    details: &mut Vec<LegacyErrorDetail>,
) -> Option<String> {
    match map.get(field) {
        None | Some(Value::Null) => {
            details.push(LegacyErrorDetail::missing(field));
            None
        }
        Some(Value::String(text)) if text.is_empty() => {
            details.push(LegacyErrorDetail::missing(field));
            None
        }
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            details.push(LegacyErrorDetail::invalid(field, "must be a string"));
            None
        }
    }
}

/// Parses and validates a legacy publish body (see the module doc for the rules).
pub fn parse(body: &[u8]) -> Result<LegacyEvent, LegacyError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| LegacyError::bad_payload(err.to_string()))?;
    let Value::Object(map) = value else {
        return Err(LegacyError::bad_payload("the body must be a JSON object"));
    };
    let mut details = Vec::new();

    let event_type = required_string(&map, FIELD_EVENT_TYPE, &mut details);
    if let Some(text) = &event_type
        && !is_valid_event_type(text)
    {
        details.push(LegacyErrorDetail::invalid(
            FIELD_EVENT_TYPE,
            format!(
                "must be ASCII letters and digits in segments separated by '.', '_' or '-' \
                 (e.g. order.created), at most {MAX_EVENT_TYPE_LEN} characters"
            ),
        ));
    }
    let version = required_string(&map, FIELD_EVENT_TYPE_VERSION, &mut details);
    if let Some(text) = &version
        && !is_valid_event_type_version(text)
    {
        details.push(LegacyErrorDetail::invalid(
            FIELD_EVENT_TYPE_VERSION,
            "must consist of ASCII letters and digits only (e.g. v1)",
        ));
    }
    let event_time = required_string(&map, FIELD_EVENT_TIME, &mut details);
    if let Some(text) = &event_time
        && !cloudevents::is_rfc3339(text)
    {
        details.push(LegacyErrorDetail::invalid(
            FIELD_EVENT_TIME,
            "must be an RFC 3339 timestamp such as 2024-05-01T12:00:00Z",
        ));
    }
    let event_id = match map.get(FIELD_EVENT_ID) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.is_empty() => None,
        Some(Value::String(text)) if is_valid_event_id(text) => Some(text.clone()),
        Some(Value::String(_)) => {
            details.push(LegacyErrorDetail::invalid(
                FIELD_EVENT_ID,
                "must be a UUID such as 8a0b7e6c-5f3d-4c2b-9a1e-0d9c8b7a6f5e",
            ));
            None
        }
        Some(_) => {
            details.push(LegacyErrorDetail::invalid(
                FIELD_EVENT_ID,
                "must be a string",
            ));
            None
        }
    };
    let data = match map.get(FIELD_DATA) {
        None | Some(Value::Null) => {
            details.push(LegacyErrorDetail::missing(FIELD_DATA));
            None
        }
        Some(Value::String(text)) if text.is_empty() => {
            details.push(LegacyErrorDetail::missing(FIELD_DATA));
            None
        }
        Some(data) => Some(data.clone()),
    };

    match (event_type, version, event_time, data) {
        (Some(event_type), Some(event_type_version), Some(event_time), Some(data))
            if details.is_empty() =>
        {
            let (event_id, event_id_generated) = match event_id {
                Some(id) => (id, false),
                None => (uuid::Uuid::new_v4().hyphenated().to_string(), true),
            };
            Ok(LegacyEvent {
                event_type,
                event_type_version,
                event_id,
                event_id_generated,
                event_time,
                data,
            })
        }
        _ => Err(LegacyError::validation(details)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: &Value) -> Vec<u8> {
        value.to_string().into_bytes()
    }

    fn valid() -> Value {
        json!({
            "event-type": "order.created",
            "event-type-version": "v1",
            "event-id": "8A0B7E6C-5F3D-4C2B-9A1E-0D9C8B7A6F5E",
            "event-time": "2024-05-01T12:00:00Z",
            "data": {"orderId": "42"}
        })
    }

    #[test]
    fn parses_a_valid_body_and_converts_it() -> Result<(), LegacyError> {
        let event = parse(&body(&valid()))?;
        assert_eq!(event.event_type, "order.created");
        assert!(!event.event_id_generated);
        let ce = event.to_event("shop");
        assert_eq!(ce.event_type, "order.created");
        assert_eq!(ce.source, "/applications/shop");
        assert_eq!(ce.id, "8A0B7E6C-5F3D-4C2B-9A1E-0D9C8B7A6F5E");
        assert_eq!(ce.time.as_deref(), Some("2024-05-01T12:00:00Z"));
        assert_eq!(ce.data, EventData::Json(json!({"orderId": "42"})));
        assert_eq!(type_and_version(&ce), ("order.created", Some("v1")));
        // The converted event is a valid CloudEvent.
        let roundtrip: Result<Event, _> = serde_json::from_value(ce.to_json());
        assert_eq!(roundtrip.ok(), Some(ce));
        Ok(())
    }

    #[test]
    fn generates_a_uuid_v4_when_the_id_is_absent() -> Result<(), LegacyError> {
        let mut value = valid();
        value.as_object_mut().map(|m| m.remove("event-id"));
        let a = parse(&body(&value))?;
        let b = parse(&body(&value))?;
        assert!(a.event_id_generated);
        assert!(is_valid_event_id(&a.event_id));
        assert_ne!(a.event_id, b.event_id);
        assert_eq!(a.event_id.as_bytes()[14], b'4');
        Ok(())
    }

    #[test]
    fn reports_every_problem_in_kymas_shape() {
        let value = json!({
            "event-type": "order created!",
            "event-type-version": "v1.0",
            "event-id": "not-a-uuid",
            "event-time": "2024-05-01",
            "data": ""
        });
        let err = parse(&body(&value)).unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(err.error_type, "validation_violation");
        let got: Vec<(&str, &str)> = err
            .details
            .iter()
            .map(|d| (d.field.as_str(), d.detail_type.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("event-type", "invalid_field"),
                ("event-type-version", "invalid_field"),
                ("event-time", "invalid_field"),
                ("event-id", "invalid_field"),
                ("data", "missing_field"),
            ]
        );
        let json = err.body();
        assert_eq!(json["details"][4]["type"], "missing_field");
        assert_eq!(json["type"], "validation_violation");
    }

    #[test]
    fn missing_fields() {
        let err = parse(b"{}").unwrap_err();
        let fields: Vec<&str> = err.details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["event-type", "event-type-version", "event-time", "data"]
        );
        let mut value = valid();
        value["data"] = Value::Null;
        let err = parse(&body(&value)).unwrap_err();
        assert_eq!(err.message, "Missing field");
        assert_eq!(err.details, vec![LegacyErrorDetail::missing("data")]);
        let mut value = valid();
        value["event-type"] = json!(3);
        let err = parse(&body(&value)).unwrap_err();
        assert_eq!(
            err.details,
            vec![LegacyErrorDetail::invalid("event-type", "must be a string")]
        );
    }

    #[test]
    fn malformed_bodies() {
        for bad in [&b"{"[..], b"[]", b"", b"\"x\""] {
            let err = parse(bad).unwrap_err();
            assert_eq!(
                (err.status, err.error_type.as_str()),
                (400, "bad_payload_syntax")
            );
            assert!(err.details.is_empty());
        }
    }

    #[test]
    fn patterns() {
        assert!(is_valid_event_type("order.created"));
        assert!(is_valid_event_type("Order_Created-2"));
        for bad in ["", ".x", "x.", "a..b", "a b", "ä"] {
            assert!(!is_valid_event_type(bad), "{bad:?}");
        }
        assert!(is_valid_event_type_version("V2"));
        assert!(!is_valid_event_type_version("v-2"));
        assert!(!is_valid_event_id("8a0b7e6c5f3d4c2b9a1e0d9c8b7a6f5e"));
    }

    #[test]
    fn responses_and_errors_serialize_in_kymas_shape() -> Result<(), serde_json::Error> {
        assert_eq!(
            serde_json::to_value(LegacyResponse::published("id-1"))?,
            json!({"event-id": "id-1", "status": 200, "reason": "Event published"})
        );
        assert_eq!(
            LegacyError::too_large(65536).body(),
            json!({
                "status": 413,
                "type": "request_body_too_large",
                "message": "Request body too large: the limit is 65536 bytes",
                "details": []
            })
        );
        let err = LegacyError::from(&Error::unauthorized("no token"));
        assert_eq!((err.status, err.error_type.as_str()), (401, "unauthorized"));
        let err = LegacyError::from(&Error::payload_too_large(10));
        assert_eq!(err.error_type, "request_body_too_large");
        let err = LegacyError::from(&Error::invalid("x", "bad"));
        assert_eq!(err.details, vec![LegacyErrorDetail::invalid("x", "bad")]);
        Ok(())
    }
}
