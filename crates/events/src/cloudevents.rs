//! CloudEvents 1.0 over HTTP: the [`Event`] model and the three ways an event arrives.
//!
//! - **Binary mode** ([`from_binary`]): the context attributes are `ce-*` headers (percent-decoded
//!   as the HTTP protocol binding says), `datacontenttype` is the `Content-Type` header and the
//!   body is the data.
//! - **Structured mode** ([`from_structured`], `application/cloudevents+json`): the body is one
//!   event in the JSON event format.
//! - **Batch mode** ([`from_batch`], `application/cloudevents-batch+json`): the body is a JSON array
//!   of events in the JSON format, at most [`MAX_BATCH_EVENTS`]. The batch is validated as a whole:
//!   either every event is returned, or an error listing every problem of every entry
//!   (`[3].time`).
//!
//! [`content_mode`] tells the three apart from the `Content-Type` (anything else that claims to be
//! a CloudEvents format is unsupported: `415`).
//!
//! # Own types rather than `cloudevents-sdk`
//!
//! The model is this crate's own: what is checked here (the exact rules below, every problem
//! reported with its field name, a batch validated entry by entry) is the acceptance surface, and
//! the SDK's parsers neither report per-field errors nor enforce the naming rules of extension
//! attributes; its model would have been a second representation to convert into and out of, and
//! about 300 KB more in the gateway's `.wasm`.
//!
//! # Rules enforced
//!
//! - `specversion` is `"1.0"`; `id`, `source` and `type` are non-empty strings; `source` is an
//!   RFC 3986 URI-reference; `subject`, when present, is a non-empty string.
//! - `time` is an RFC 3339 timestamp; `dataschema` an absolute URI (RFC 3986 §4.3, so no
//!   fragment); `datacontenttype` a media type (`type/subtype`).
//! - Extension attribute names consist of lower-case ASCII letters and digits and are at most
//!   [`MAX_ATTRIBUTE_NAME_LEN`] (20) characters long. The spec only says names *SHOULD NOT*
//!   exceed 20 characters; eventplane makes that a rule so that every name also fits the
//!   most restrictive protocol bindings. Names of the spec's own attributes (and `data`,
//!   `data_base64`) cannot be used as extensions.
//! - Extension values are strings, booleans or integers in the CloudEvents `Integer` range
//!   (32-bit signed); in binary mode every value is a string, as headers carry no type.
//! - In the JSON format a `null` attribute is treated as absent; `data` and `data_base64` are
//!   mutually exclusive, and `data_base64` must be valid base64.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use eventplane_core::{Error, FieldError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::uri;

/// The only CloudEvents version accepted.
pub const SPEC_VERSION: &str = "1.0";
/// The most events a batch may hold.
pub const MAX_BATCH_EVENTS: usize = 100;
/// The longest attribute name accepted (the spec's recommendation, enforced).
pub const MAX_ATTRIBUTE_NAME_LEN: usize = 20;
/// The content type of structured mode with the JSON event format.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";
/// The content type of batch mode with the JSON event format.
pub const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";
/// Attribute names that are not extensions: the spec's context attributes and the JSON format's
/// data members.
pub const RESERVED_ATTRIBUTES: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
];
/// The source of every event published by an application: `/applications/<name>`.
pub const APPLICATION_SOURCE_PREFIX: &str = "/applications/";

/// Base64 as the JSON format's `data_base64` uses it (RFC 4648), padding optional when decoding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An event's data.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    /// The event carries no data.
    None,
    /// JSON data (the content type is JSON: `application/json` or `*/*+json`, or absent in the
    /// JSON format).
    Json(Value),
    /// Text data (a non-JSON content type and a UTF-8 string).
    Text(String),
    /// Binary data (`data_base64` in the JSON format, or a non-text binary-mode body).
    Binary(Vec<u8>),
}

impl EventData {
    /// Whether there is no data.
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }
}

/// A validated CloudEvents 1.0 event.
///
/// Serializes to, and deserializes from, the JSON event format (deserializing validates, like
/// [`from_structured`]), so it can be stored and delivered as is.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `id`: unique within the scope of `source`.
    pub id: String,
    /// `source`: a URI-reference naming the context the event happened in.
    pub source: String,
    /// `specversion`: always [`SPEC_VERSION`].
    pub specversion: String,
    /// `type`: the kind of event; for eventplane the name of a catalog entry.
    pub event_type: String,
    /// `datacontenttype`: the media type of `data`.
    pub datacontenttype: Option<String>,
    /// `dataschema`: an absolute URI of the schema `data` adheres to.
    pub dataschema: Option<String>,
    /// `subject`: the subject of the event within `source`.
    pub subject: Option<String>,
    /// `time`: an RFC 3339 timestamp, as sent.
    pub time: Option<String>,
    /// Extension attributes by name; values are JSON strings, booleans or integers.
    pub extensions: BTreeMap<String, Value>,
    /// The data.
    pub data: EventData,
}

impl Event {
    /// A new event with the required attributes, no optional attribute and no data.
    pub fn new(
        id: impl Into<String>,
        source: impl Into<String>,
        event_type: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            source: source.into(),
            specversion: SPEC_VERSION.to_owned(),
            event_type: event_type.into(),
            datacontenttype: None,
            dataschema: None,
            subject: None,
            time: None,
            extensions: BTreeMap::new(),
            data: EventData::None,
        }
    }

    /// The event in the JSON event format (`data` for JSON and text, `data_base64` for binary).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("specversion".into(), Value::from(self.specversion.as_str()));
        map.insert("id".into(), Value::from(self.id.as_str()));
        map.insert("source".into(), Value::from(self.source.as_str()));
        map.insert("type".into(), Value::from(self.event_type.as_str()));
        let optional = [
            ("datacontenttype", &self.datacontenttype),
            ("dataschema", &self.dataschema),
            ("subject", &self.subject),
            ("time", &self.time),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                map.insert(name.into(), Value::from(value.as_str()));
            }
        }
        for (name, value) in &self.extensions {
            map.insert(name.clone(), value.clone());
        }
        match &self.data {
            EventData::None => {}
            EventData::Json(value) => {
                map.insert("data".into(), value.clone());
            }
            EventData::Text(text) => {
                map.insert("data".into(), Value::from(text.as_str()));
            }
            EventData::Binary(bytes) => {
                map.insert("data_base64".into(), Value::from(BASE64.encode(bytes)));
            }
        }
        Value::Object(map)
    }

    /// The length in bytes of the event in the JSON event format: what the size limit measures.
    pub fn encoded_len(&self) -> usize {
        self.to_json().to_string().len()
    }

    /// The application named by the event's `source` (`/applications/<name>`), if it names one.
    pub fn source_application(&self) -> Option<&str> {
        source_application(&self.source)
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let Value::Object(map) = value else {
            return Err(serde::de::Error::custom(
                "a CloudEvent must be a JSON object",
            ));
        };
        parse_json_object(map, "").map_err(|problems| {
            let text: Vec<String> = problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect();
            serde::de::Error::custom(format!("invalid CloudEvent: {}", text.join("; ")))
        })
    }
}

/// The `source` of events published by application `name`: `/applications/<name>`.
pub fn application_source(name: &str) -> String {
    format!("{APPLICATION_SOURCE_PREFIX}{name}")
}

/// The application named by a `source` of the form `/applications/<name>` (`name` non-empty and
/// without `/`), or `None`.
pub fn source_application(source: &str) -> Option<&str> {
    source
        .strip_prefix(APPLICATION_SOURCE_PREFIX)
        .filter(|name| !name.is_empty() && !name.contains('/'))
}

/// How a publish request carries its event(s), decided by its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentMode {
    /// Binary mode: attributes in `ce-*` headers, the body is the data (any other content type,
    /// or none).
    Binary,
    /// Structured mode, JSON format (`application/cloudevents+json`).
    Structured,
    /// Batch mode, JSON format (`application/cloudevents-batch+json`).
    Batch,
    /// A CloudEvents format other than JSON, or a malformed content type: answer `415`. Holds
    /// the media type as sent.
    Unsupported(String),
}

impl ContentMode {
    /// `Ok(mode)` for a supported mode, a `415` error for [`ContentMode::Unsupported`].
    pub fn supported(self) -> Result<Self, Error> {
        match self {
            Self::Unsupported(media_type) => Err(Error::unsupported_media_type(format!(
                "unsupported content type {media_type:?}: use {STRUCTURED_CONTENT_TYPE}, \
                 {BATCH_CONTENT_TYPE}, or binary mode (ce-* headers) with the data's own type"
            ))),
            mode => Ok(mode),
        }
    }
}

/// The media type of a `Content-Type` value: lower-cased, without parameters and whitespace.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether a media type (`type/subtype`) is syntactically plausible: two non-empty tokens.
fn is_media_type(media_type: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'!' | b'#'
                            | b'$'
                            | b'%'
                            | b'&'
                            | b'\''
                            | b'*'
                            | b'+'
                            | b'-'
                            | b'.'
                            | b'^'
                            | b'_'
                            | b'`'
                            | b'|'
                            | b'~'
                    )
            })
    };
    media_type
        .split_once('/')
        .is_some_and(|(kind, sub)| token(kind) && token(sub))
}

/// Whether a content type denotes JSON: `application/json` or any `*/*+json`.
pub fn is_json_content_type(content_type: &str) -> bool {
    let media = media_type(content_type);
    media == "application/json" || media == "text/json" || media.ends_with("+json")
}

/// Whether a content type denotes text that can be kept as a string.
fn is_text_content_type(content_type: &str) -> bool {
    let media = media_type(content_type);
    media.starts_with("text/")
        || media == "application/xml"
        || media.ends_with("+xml")
        || content_type.to_ascii_lowercase().contains("charset=")
}

/// Decides the content mode of a publish request from its `Content-Type` header.
pub fn content_mode(content_type: Option<&str>) -> ContentMode {
    let Some(content_type) = content_type.filter(|ct| !ct.trim().is_empty()) else {
        return ContentMode::Binary;
    };
    let media = media_type(content_type);
    if media == STRUCTURED_CONTENT_TYPE {
        ContentMode::Structured
    } else if media == BATCH_CONTENT_TYPE {
        ContentMode::Batch
    } else if media.starts_with("application/cloudevents") || !is_media_type(&media) {
        ContentMode::Unsupported(content_type.trim().to_owned())
    } else {
        ContentMode::Binary
    }
}

/// Whether `name` is a valid extension attribute name (lower-case ASCII letters and digits, 1 to
/// [`MAX_ATTRIBUTE_NAME_LEN`] characters, not reserved).
pub fn is_valid_extension_name(name: &str) -> bool {
    attribute_name_problem(name).is_none() && !RESERVED_ATTRIBUTES.contains(&name)
}

fn attribute_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("attribute names cannot be empty".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Some(
            "attribute names may only contain lower-case letters a-z and digits 0-9".into(),
        );
    }
    if name.len() > MAX_ATTRIBUTE_NAME_LEN {
        return Some(format!(
            "attribute names may be at most {MAX_ATTRIBUTE_NAME_LEN} characters long"
        ));
    }
    None
}

/// Whether `text` is an RFC 3339 timestamp.
pub fn is_rfc3339(text: &str) -> bool {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).is_ok()
}

/// Parses a binary-mode request: `headers` are `(name, value)` pairs with lower-case names (other
/// headers than `ce-*` are ignored), `content_type` the `Content-Type` header, `body` the data.
///
/// Errors are `400` with one detail per problem, named after the header (`ce-type`).
pub fn from_binary(
    headers: &[(String, String)],
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Event, Error> {
    let mut problems = Vec::new();
    let mut attributes = Map::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let Some(attribute) = name.strip_prefix("ce-") else {
            continue;
        };
        if attribute == "datacontenttype" {
            problems.push(FieldError::new(
                &name,
                "in binary mode the data's content type is the Content-Type header",
            ));
            continue;
        }
        if let Some(problem) = attribute_name_problem(attribute) {
            problems.push(FieldError::new(&name, problem));
            continue;
        }
        if attribute == "data" {
            problems.push(FieldError::new(
                &name,
                "in binary mode the data is the request body",
            ));
            continue;
        }
        let decoded = match percent_encoding::percent_decode_str(value.trim()).decode_utf8() {
            Ok(decoded) => decoded.into_owned(),
            Err(_) => {
                problems.push(FieldError::new(
                    &name,
                    "the percent-decoded value is not valid UTF-8",
                ));
                continue;
            }
        };
        if attributes
            .insert(attribute.to_owned(), Value::String(decoded))
            .is_some()
        {
            problems.push(FieldError::new(&name, "the header appears more than once"));
        }
    }
    if !attributes.contains_key("specversion") && problems.is_empty() && attributes.is_empty() {
        return Err(Error::invalid(
            "ce-specversion",
            "is required: a binary-mode CloudEvent carries its attributes in ce-* headers",
        ));
    }
    let content_type = content_type.map(str::trim).filter(|ct| !ct.is_empty());
    if let Some(ct) = content_type {
        attributes.insert("datacontenttype".into(), Value::from(ct));
    }
    let data = if body.is_empty() {
        EventData::None
    } else {
        match content_type {
            Some(ct) if is_json_content_type(ct) => match serde_json::from_slice(body) {
                Ok(value) => EventData::Json(value),
                Err(err) => {
                    problems.push(FieldError::new(
                        "data",
                        format!("the body is not valid JSON although Content-Type is {ct}: {err}"),
                    ));
                    EventData::None
                }
            },
            Some(ct) if is_text_content_type(ct) => match std::str::from_utf8(body) {
                Ok(text) => EventData::Text(text.to_owned()),
                Err(_) => EventData::Binary(body.to_vec()),
            },
            _ => EventData::Binary(body.to_vec()),
        }
    };
    match validate_attributes(attributes, data, &|attribute| {
        if attribute == "datacontenttype" {
            "content-type".to_owned()
        } else if attribute == "data" {
            attribute.to_owned()
        } else {
            format!("ce-{attribute}")
        }
    }) {
        Ok(event) if problems.is_empty() => Ok(event),
        Ok(_) => Err(invalid_event(problems)),
        Err(more) => {
            problems.extend(more);
            Err(invalid_event(problems))
        }
    }
}

/// Parses a structured-mode body (`application/cloudevents+json`).
///
/// Errors are `400` with one detail per problem, named after the attribute (`time`); a body that
/// is not JSON is reported on the field `body`.
pub fn from_structured(body: &[u8]) -> Result<Event, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|err| malformed_json(&err))?;
    let Value::Object(map) = value else {
        return Err(Error::invalid(
            "body",
            "a structured-mode CloudEvent must be a JSON object",
        ));
    };
    parse_json_object(map, "").map_err(invalid_event)
}

/// Parses a batch-mode body (`application/cloudevents-batch+json`): a JSON array of at most
/// [`MAX_BATCH_EVENTS`] events, validated as a whole.
///
/// Either every event is returned (in order), or a `400` whose details name each problem of each
/// entry as `[index].attribute` (`[3].time`). An empty batch is valid (the spec allows it) and
/// yields no event.
pub fn from_batch(body: &[u8]) -> Result<Vec<Event>, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|err| malformed_json(&err))?;
    let Value::Array(entries) = value else {
        return Err(Error::invalid(
            "body",
            "a CloudEvents batch must be a JSON array of events",
        ));
    };
    if entries.len() > MAX_BATCH_EVENTS {
        return Err(Error::invalid(
            "body",
            format!(
                "a batch may hold at most {MAX_BATCH_EVENTS} events; this one has {}",
                entries.len()
            ),
        ));
    }
    let total = entries.len();
    let mut events = Vec::with_capacity(total);
    let mut problems = Vec::new();
    let mut bad_entries = 0;
    for (index, entry) in entries.into_iter().enumerate() {
        let prefix = format!("[{index}].");
        let result = match entry {
            Value::Object(map) => parse_json_object(map, &prefix),
            _ => Err(vec![FieldError::new(
                format!("[{index}]"),
                "a batch entry must be a JSON object",
            )]),
        };
        match result {
            Ok(event) => events.push(event),
            Err(entry_problems) => {
                bad_entries += 1;
                problems.extend(entry_problems);
            }
        }
    }
    if problems.is_empty() {
        Ok(events)
    } else {
        Err(Error::validation(
            format!(
                "invalid CloudEvents batch: {bad_entries} of {total} events are invalid; \
                 nothing was accepted"
            ),
            problems,
        ))
    }
}

fn malformed_json(err: &serde_json::Error) -> Error {
    Error::invalid("body", format!("malformed JSON: {err}"))
}

fn invalid_event(problems: Vec<FieldError>) -> Error {
    let message = match problems.as_slice() {
        [only] => format!("invalid CloudEvent: {}: {}", only.field, only.message),
        _ => format!("invalid CloudEvent: {} problems", problems.len()),
    };
    Error::validation(message, problems)
}

/// Parses one event in the JSON format; problems are named `<prefix><attribute>`.
fn parse_json_object(mut map: Map<String, Value>, prefix: &str) -> Result<Event, Vec<FieldError>> {
    let mut problems = Vec::new();
    let field = |attribute: &str| format!("{prefix}{attribute}");
    // JSON format: a null attribute is absent.
    map.retain(|_, value| !value.is_null());
    let data = map.remove("data");
    let data_base64 = map.remove("data_base64");
    let content_type = match map.get("datacontenttype") {
        Some(Value::String(ct)) => Some(ct.clone()),
        _ => None,
    };
    let data = match (data, data_base64) {
        (Some(_), Some(_)) => {
            problems.push(FieldError::new(
                field("data_base64"),
                "data and data_base64 are mutually exclusive",
            ));
            EventData::None
        }
        (Some(Value::String(text)), None)
            if content_type
                .as_deref()
                .is_some_and(|ct| !is_json_content_type(ct)) =>
        {
            EventData::Text(text)
        }
        (Some(value), None) => EventData::Json(value),
        (None, Some(Value::String(encoded))) => match BASE64.decode(encoded.trim()) {
            Ok(bytes) => EventData::Binary(bytes),
            Err(err) => {
                problems.push(FieldError::new(
                    field("data_base64"),
                    format!("must be base64 (RFC 4648): {err}"),
                ));
                EventData::None
            }
        },
        (None, Some(_)) => {
            problems.push(FieldError::new(
                field("data_base64"),
                "must be a base64 string",
            ));
            EventData::None
        }
        (None, None) => EventData::None,
    };
    match validate_attributes(map, data, &field) {
        Ok(event) if problems.is_empty() => Ok(event),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    }
}

/// Takes a required string attribute out of `attributes`.
fn take_required(
    attributes: &mut Map<String, Value>,
    attribute: &str,
    field: &dyn Fn(&str) -> String,
    problems: &mut Vec<FieldError>,
) -> Option<String> {
    take_string(attributes, attribute, true, field, problems)
}

/// Takes an optional string attribute out of `attributes`.
fn take_optional(
    attributes: &mut Map<String, Value>,
    attribute: &str,
    field: &dyn Fn(&str) -> String,
    problems: &mut Vec<FieldError>,
) -> Option<String> {
    take_string(attributes, attribute, false, field, problems)
}

/// Takes a string attribute out of `attributes`: it must be a non-empty string, and present if
/// `required`. Problems are added to `problems`.
fn take_string(
    attributes: &mut Map<String, Value>,
    attribute: &str,
    required: bool,
    field: &dyn Fn(&str) -> String,
    problems: &mut Vec<FieldError>,
) -> Option<String> {
    let problem = match attributes.remove(attribute) {
        Some(Value::String(text)) if !text.is_empty() => return Some(text),
        None if !required => return None,
        None => "is required",
        Some(Value::String(_)) if required => "must be a non-empty string",
        Some(Value::String(_)) => "must be a non-empty string when present",
        Some(_) => "must be a string",
    };
    problems.push(FieldError::new(field(attribute), problem));
    None
}

/// Validates the attributes (without `data`/`data_base64`) and builds the event.
fn validate_attributes(
    mut attributes: Map<String, Value>,
    data: EventData,
    field: &dyn Fn(&str) -> String,
) -> Result<Event, Vec<FieldError>> {
    let mut problems = Vec::new();
    let specversion = take_required(&mut attributes, "specversion", field, &mut problems);
    if let Some(version) = &specversion
        && version != SPEC_VERSION
    {
        problems.push(FieldError::new(
            field("specversion"),
            format!(
                "unsupported CloudEvents version {version:?}: only \"{SPEC_VERSION}\" is accepted"
            ),
        ));
    }
    let id = take_required(&mut attributes, "id", field, &mut problems);
    let source = take_required(&mut attributes, "source", field, &mut problems);
    if let Some(source) = &source
        && !uri::is_uri_reference(source)
    {
        problems.push(FieldError::new(
            field("source"),
            "must be a URI-reference (RFC 3986)",
        ));
    }
    let event_type = take_required(&mut attributes, "type", field, &mut problems);
    let datacontenttype = take_optional(&mut attributes, "datacontenttype", field, &mut problems);
    if let Some(ct) = &datacontenttype
        && !is_media_type(&media_type(ct))
    {
        problems.push(FieldError::new(
            field("datacontenttype"),
            "must be a media type such as application/json",
        ));
    }
    let dataschema = take_optional(&mut attributes, "dataschema", field, &mut problems);
    if let Some(schema) = &dataschema
        && !uri::is_absolute_uri(schema)
    {
        problems.push(FieldError::new(
            field("dataschema"),
            "must be an absolute URI (RFC 3986 §4.3)",
        ));
    }
    let subject = take_optional(&mut attributes, "subject", field, &mut problems);
    let time = take_optional(&mut attributes, "time", field, &mut problems);
    if let Some(time) = &time
        && !is_rfc3339(time)
    {
        problems.push(FieldError::new(
            field("time"),
            "must be an RFC 3339 timestamp such as 2024-05-01T12:00:00Z",
        ));
    }
    let mut extensions = BTreeMap::new();
    for (name, value) in attributes {
        if let Some(problem) = attribute_name_problem(&name) {
            problems.push(FieldError::new(field(&name), problem));
            continue;
        }
        if RESERVED_ATTRIBUTES.contains(&name.as_str()) {
            // Only reachable for a reserved name that is not handled above.
            problems.push(FieldError::new(
                field(&name),
                "is reserved by the CloudEvents spec",
            ));
            continue;
        }
        let valid = match &value {
            Value::String(_) | Value::Bool(_) => true,
            Value::Number(number) => number.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            _ => false,
        };
        if valid {
            extensions.insert(name, value);
        } else {
            problems.push(FieldError::new(
                field(&name),
                "extension values must be strings, booleans or 32-bit integers",
            ));
        }
    }
    match (specversion, id, source, event_type) {
        (Some(specversion), Some(id), Some(source), Some(event_type)) if problems.is_empty() => {
            Ok(Event {
                id,
                source,
                specversion,
                event_type,
                datacontenttype,
                dataschema,
                subject,
                time,
                extensions,
                data,
            })
        }
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn required_headers() -> Vec<(String, String)> {
        headers(&[
            ("ce-specversion", "1.0"),
            ("ce-id", "e-1"),
            ("ce-source", "/applications/shop"),
            ("ce-type", "order.created.v1"),
        ])
    }

    fn fields(err: &Error) -> Vec<&str> {
        err.details().iter().map(|d| d.field.as_str()).collect()
    }

    fn valid_json() -> Value {
        json!({
            "specversion": "1.0",
            "id": "e-1",
            "source": "/applications/shop",
            "type": "order.created.v1",
            "time": "2024-05-01T12:00:00Z",
            "data": {"orderId": "42"}
        })
    }

    #[test]
    fn content_modes() {
        assert_eq!(content_mode(None), ContentMode::Binary);
        assert_eq!(content_mode(Some("")), ContentMode::Binary);
        assert_eq!(content_mode(Some("application/json")), ContentMode::Binary);
        assert_eq!(
            content_mode(Some("text/plain; charset=utf-8")),
            ContentMode::Binary
        );
        assert_eq!(
            content_mode(Some("Application/CloudEvents+JSON; charset=UTF-8")),
            ContentMode::Structured
        );
        assert_eq!(
            content_mode(Some("application/cloudevents-batch+json")),
            ContentMode::Batch
        );
        for unsupported in [
            "application/cloudevents+xml",
            "application/cloudevents+avro",
            "application/cloudevents-batch+protobuf",
            "application/cloudevents",
            "garbage",
            "/json",
        ] {
            let mode = content_mode(Some(unsupported));
            assert!(matches!(mode, ContentMode::Unsupported(_)), "{unsupported}");
            assert_eq!(mode.supported().map_err(|e| e.status()), Err(415));
        }
        assert_eq!(
            ContentMode::Batch.supported().ok(),
            Some(ContentMode::Batch)
        );
    }

    #[test]
    fn binary_mode_with_json_data_and_percent_encoded_extension() -> Result<(), Error> {
        let mut h = required_headers();
        h.push(("ce-time".into(), "2024-05-01T12:00:00+02:00".into()));
        h.push(("ce-subject".into(), "order%2042%20%E2%82%AC".into()));
        h.push(("ce-traceparent".into(), "00-abc".into()));
        h.push(("content-length".into(), "13".into()));
        let event = from_binary(&h, Some("application/json"), br#"{"orderId":1}"#)?;
        assert_eq!(event.id, "e-1");
        assert_eq!(event.event_type, "order.created.v1");
        assert_eq!(event.subject.as_deref(), Some("order 42 €"));
        assert_eq!(event.datacontenttype.as_deref(), Some("application/json"));
        assert_eq!(event.data, EventData::Json(json!({"orderId": 1})));
        assert_eq!(event.extensions.get("traceparent"), Some(&json!("00-abc")));
        assert!(!event.extensions.contains_key("length"));
        assert_eq!(event.source_application(), Some("shop"));
        Ok(())
    }

    #[test]
    fn binary_mode_data_kinds() -> Result<(), Error> {
        let h = required_headers();
        let text = from_binary(&h, Some("text/plain"), b"hello")?;
        assert_eq!(text.data, EventData::Text("hello".into()));
        let cloud = from_binary(&h, Some("application/vnd.x+json"), b"[1]")?;
        assert_eq!(cloud.data, EventData::Json(json!([1])));
        let bin = from_binary(&h, Some("application/octet-stream"), &[0, 255])?;
        assert_eq!(bin.data, EventData::Binary(vec![0, 255]));
        let bad_text = from_binary(&h, Some("text/plain"), &[0xff])?;
        assert_eq!(bad_text.data, EventData::Binary(vec![0xff]));
        let none = from_binary(&h, None, b"")?;
        assert!(none.data.is_none());
        assert_eq!(none.datacontenttype, None);
        Ok(())
    }

    #[test]
    fn binary_mode_errors_name_the_headers() {
        let err = from_binary(&[], Some("application/json"), b"{}").unwrap_err();
        assert_eq!((err.status(), fields(&err)), (400, vec!["ce-specversion"]));

        let h = headers(&[
            ("ce-specversion", "0.3"),
            ("ce-id", ""),
            ("ce-source", "not a uri"),
            ("ce-time", "yesterday"),
            ("ce-dataschema", "relative/schema.json"),
            ("ce-foo_bar", "x"),
            ("ce-averyveryverylongextension", "x"),
            ("ce-datacontenttype", "application/json"),
            ("ce-bad", "%FF"),
        ]);
        let err = from_binary(&h, Some("application/json"), b"{not json").unwrap_err();
        let mut got = fields(&err);
        got.sort_unstable();
        assert_eq!(
            got,
            vec![
                "ce-averyveryverylongextension",
                "ce-bad",
                "ce-datacontenttype",
                "ce-dataschema",
                "ce-foo_bar",
                "ce-id",
                "ce-source",
                "ce-specversion",
                "ce-time",
                "ce-type",
                "data",
            ]
        );
    }

    #[test]
    fn binary_mode_rejects_duplicate_headers_and_ce_data() {
        let mut h = required_headers();
        h.push(("ce-id".into(), "e-2".into()));
        h.push(("ce-data".into(), "x".into()));
        let err = from_binary(&h, None, b"").unwrap_err();
        assert_eq!(fields(&err), vec!["ce-id", "ce-data"]);
    }

    #[test]
    fn structured_mode_roundtrip() -> Result<(), Box<dyn std::error::Error>> {
        let mut body = valid_json();
        body["comexampleext"] = json!(7);
        body["flag"] = json!(true);
        body["subject"] = Value::Null;
        let event = from_structured(body.to_string().as_bytes())?;
        assert_eq!(event.time.as_deref(), Some("2024-05-01T12:00:00Z"));
        assert_eq!(event.subject, None);
        assert_eq!(event.extensions.len(), 2);
        assert_eq!(event.data, EventData::Json(json!({"orderId": "42"})));
        let json = serde_json::to_value(&event)?;
        let back: Event = serde_json::from_value(json)?;
        assert_eq!(back, event);
        assert!(event.encoded_len() > 50);
        Ok(())
    }

    #[test]
    fn structured_mode_binary_and_text_data() -> Result<(), Box<dyn std::error::Error>> {
        let mut body = valid_json();
        body.as_object_mut().map(|m| m.remove("data"));
        body["data_base64"] = json!("AAH/");
        let event = from_structured(body.to_string().as_bytes())?;
        assert_eq!(event.data, EventData::Binary(vec![0, 1, 255]));
        assert_eq!(event.to_json()["data_base64"], json!("AAH/"));

        let mut body = valid_json();
        body["datacontenttype"] = json!("text/plain");
        body["data"] = json!("hi");
        let event = from_structured(body.to_string().as_bytes())?;
        assert_eq!(event.data, EventData::Text("hi".into()));
        let back: Event = serde_json::from_value(event.to_json())?;
        assert_eq!(back, event);

        let mut body = valid_json();
        body["data"] = json!("a JSON string");
        let event = from_structured(body.to_string().as_bytes())?;
        assert_eq!(event.data, EventData::Json(json!("a JSON string")));
        Ok(())
    }

    #[test]
    fn structured_mode_errors() {
        let err = from_structured(b"{nope").unwrap_err();
        assert_eq!((err.status(), fields(&err)), (400, vec!["body"]));
        let err = from_structured(b"[]").unwrap_err();
        assert_eq!(fields(&err), vec!["body"]);

        let mut body = valid_json();
        body["data_base64"] = json!("AAAA");
        body["time"] = json!("2024-13-01T00:00:00Z");
        body["type"] = json!(5);
        body["Upper"] = json!("x");
        body["data"] = json!({});
        body["nested"] = json!({"a": 1});
        body["big"] = json!(4_294_967_296_i64);
        body["fraction"] = json!(1.5);
        body["subject"] = json!("");
        body["dataschema"] = json!("https://example.com/s.json#x");
        let err = from_structured(body.to_string().as_bytes()).unwrap_err();
        let mut got = fields(&err);
        got.sort_unstable();
        assert_eq!(
            got,
            vec![
                "Upper",
                "big",
                "data_base64",
                "dataschema",
                "fraction",
                "nested",
                "subject",
                "time",
                "type"
            ]
        );
        assert!(err.public_message().contains("problems"), "{err}");

        let mut body = valid_json();
        body.as_object_mut().map(|m| m.remove("data"));
        body["data_base64"] = json!("@@@");
        let err = from_structured(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(fields(&err), vec!["data_base64"]);
        assert!(
            err.public_message()
                .starts_with("invalid CloudEvent: data_base64")
        );
    }

    #[test]
    fn required_attributes_are_required() {
        let err = from_structured(b"{}").unwrap_err();
        assert_eq!(fields(&err), vec!["specversion", "id", "source", "type"]);
    }

    #[test]
    fn extension_names() {
        assert!(is_valid_extension_name("traceparent"));
        assert!(is_valid_extension_name("a1"));
        assert!(is_valid_extension_name(&"a".repeat(20)));
        for bad in [
            "",
            "Trace",
            "trace_parent",
            "trace-parent",
            "id",
            "data",
            "é",
        ] {
            assert!(!is_valid_extension_name(bad), "{bad:?}");
        }
        assert!(!is_valid_extension_name(&"a".repeat(21)));
    }

    #[test]
    fn batch_all_or_nothing() -> Result<(), Error> {
        let good = valid_json();
        let body = json!([good, good]).to_string();
        assert_eq!(from_batch(body.as_bytes())?.len(), 2);
        assert!(from_batch(b"[]")?.is_empty());

        let mut bad = valid_json();
        bad["time"] = json!("noon");
        let mut entries = vec![good.clone(); 5];
        entries[3] = bad;
        entries[4] = json!("not an object");
        let err = from_batch(Value::Array(entries).to_string().as_bytes()).unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(fields(&err), vec!["[3].time", "[4]"]);
        assert!(err.public_message().contains("2 of 5"), "{err}");
        Ok(())
    }

    #[test]
    fn batch_limits_and_shape() {
        let entries = vec![valid_json(); MAX_BATCH_EVENTS + 1];
        let err = from_batch(Value::Array(entries).to_string().as_bytes()).unwrap_err();
        assert!(err.public_message().contains("at most 100"), "{err}");
        let entries = vec![valid_json(); MAX_BATCH_EVENTS];
        assert!(from_batch(Value::Array(entries).to_string().as_bytes()).is_ok());
        assert_eq!(fields(&from_batch(b"{}").unwrap_err()), vec!["body"]);
        assert_eq!(fields(&from_batch(b"[").unwrap_err()), vec!["body"]);
    }

    #[test]
    fn application_sources() {
        assert_eq!(application_source("shop"), "/applications/shop");
        assert_eq!(source_application("/applications/shop"), Some("shop"));
        assert_eq!(source_application("/applications/"), None);
        assert_eq!(source_application("/applications/a/b"), None);
        assert_eq!(source_application("shop"), None);
    }

    #[test]
    fn rfc3339() {
        assert!(is_rfc3339("2024-05-01T12:00:00Z"));
        assert!(is_rfc3339("2024-05-01T12:00:00.123456+05:30"));
        assert!(!is_rfc3339("2024-05-01"));
        assert!(!is_rfc3339("2024-05-01 12:00:00"));
        assert!(!is_rfc3339("2024-02-30T12:00:00Z"));
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_value::<Event>(json!({"id": "x"})).is_err());
        assert!(serde_json::from_value::<Event>(json!([])).is_err());
    }
}
