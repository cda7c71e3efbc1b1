//! The event catalog: every channel that carries a message is an event type. [`v2`] and [`v3`]
//! find those channels in their version's model; [`build`] turns them into [`EventType`]s the same
//! way for both.

pub(crate) mod v2;
pub(crate) mod v3;

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::EventType;
use crate::error::SpecError;
use crate::node::Node;
use crate::pointer;
use crate::resolve::{Located, Resolver};

/// A channel that carries at least one message.
pub(crate) struct Channel<'d> {
    /// The event type's name: the channel's key (2.x) or address (3.0).
    pub(crate) name: String,
    /// Where the channel is declared (its key under `channels`).
    pub(crate) path: String,
    pub(crate) description: Option<&'d str>,
    /// Its messages, dereferenced, in document order.
    pub(crate) messages: Vec<Message<'d>>,
}

/// A message object, checked.
pub(crate) struct Message<'d> {
    /// Where the message object really is (after following `$ref`s).
    pub(crate) path: String,
    pub(crate) summary: Option<&'d str>,
    pub(crate) title: Option<&'d str>,
    /// The payload schema; `None` when the message declares no payload.
    pub(crate) payload: Option<Payload<'d>>,
}

/// A message's payload schema and where it is.
pub(crate) struct Payload<'d> {
    pub(crate) schema: &'d Node,
    pub(crate) path: String,
    /// The `schemaFormat` when it is not JSON Schema (Avro, Protobuf, ...).
    pub(crate) foreign_format: Option<&'d str>,
}

/// How payloads are written in a version of the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadStyle {
    /// 2.x: `payload` is the schema; the message's `schemaFormat` says which kind.
    SchemaFormatOnMessage,
    /// 3.0: `payload` is a schema, or a multi-format schema `{schemaFormat, schema}`.
    MultiFormat,
}

impl<'d> Message<'d> {
    /// Reads the message at `node` (a message object or a reference to one) at `path`.
    pub(crate) fn read(
        resolver: &Resolver<'d>,
        node: &'d Node,
        path: &str,
        style: PayloadStyle,
    ) -> Result<Message<'d>, SpecError> {
        let (node, path) = resolver.deref(node, path)?;
        if node.as_object().is_none() {
            return Err(SpecError::new(
                path,
                format!(
                    "a message must be an object or a `$ref` to one, found {}",
                    node.kind()
                ),
            ));
        }
        let summary = optional_text(node, &path, "summary")?;
        let title = optional_text(node, &path, "title")?;
        let payload = match node.get("payload") {
            None | Some(Node::Null) => None,
            Some(payload) => Some(payload_schema(
                node,
                &path,
                payload,
                pointer::child(&path, "payload"),
                style,
            )?),
        };
        Ok(Message {
            path,
            summary,
            title,
            payload,
        })
    }
}

/// The schema of a message's payload, unwrapped from a 3.0 multi-format schema object, and
/// type-checked when it is JSON Schema.
fn payload_schema<'d>(
    message: &'d Node,
    message_path: &str,
    payload: &'d Node,
    path: String,
    style: PayloadStyle,
) -> Result<Payload<'d>, SpecError> {
    let (format, schema, path) = match (style, payload.get("schemaFormat")) {
        (PayloadStyle::MultiFormat, Some(format)) => {
            let format = format.as_str().ok_or_else(|| {
                SpecError::new(
                    pointer::child(&path, "schemaFormat"),
                    "`schemaFormat` must be a string",
                )
            })?;
            let schema_path = pointer::child(&path, "schema");
            let schema = payload.get("schema").ok_or_else(|| {
                SpecError::new(
                    &schema_path,
                    "a multi-format payload needs `schema` next to `schemaFormat`",
                )
            })?;
            (Some(format), schema, schema_path)
        }
        (PayloadStyle::MultiFormat, None) => (None, payload, path),
        (PayloadStyle::SchemaFormatOnMessage, _) => {
            let format = optional_text(message, message_path, "schemaFormat")?;
            (format, payload, path)
        }
    };
    if !is_json_schema(format) {
        return Ok(Payload {
            schema,
            path,
            foreign_format: format,
        });
    }
    match schema {
        Node::Object(_) | Node::Bool(_) => Ok(Payload {
            schema,
            path,
            foreign_format: None,
        }),
        other => Err(SpecError::new(
            path,
            format!(
                "`payload` must be a schema (an object or a `$ref`), found {}",
                other.kind()
            ),
        )),
    }
}

/// Whether a `schemaFormat` (absent = the default) names JSON Schema or AsyncAPI's schema.
fn is_json_schema(format: Option<&str>) -> bool {
    format.is_none_or(|f| {
        let f = f.trim().to_ascii_lowercase();
        f.starts_with("application/vnd.aai.asyncapi")
            || f.starts_with("application/schema+json")
            || f.starts_with("application/schema+yaml")
    })
}

/// An optional text member: absent, `null` and blank are all `None`; anything but a string is
/// an error.
pub(crate) fn optional_text<'d>(
    node: &'d Node,
    path: &str,
    field: &str,
) -> Result<Option<&'d str>, SpecError> {
    match node.get(field) {
        None | Some(Node::Null) => Ok(None),
        Some(Node::String(text)) => Ok(Some(text.trim()).filter(|t| !t.is_empty())),
        Some(other) => Err(SpecError::new(
            pointer::child(path, field),
            format!("`{field}` must be a string, found {}", other.kind()),
        )),
    }
}

/// Turns channels into event types. `info_version` versions names without a `.v<N>` suffix.
pub(crate) fn build<'d>(
    resolver: &mut Resolver<'d>,
    channels: Vec<Channel<'d>>,
    info_version: &str,
) -> Result<Vec<EventType>, SpecError> {
    let mut declared_at: HashMap<String, String> = HashMap::new();
    let mut events = Vec::with_capacity(channels.len());
    for mut channel in channels {
        if let Some(first) = declared_at.get(&channel.name) {
            return Err(SpecError::new(
                &channel.path,
                format!(
                    "duplicate event type `{}`: channels {first} and {} both define it",
                    channel.name, channel.path
                ),
            ));
        }
        // Both operations of a 2.x channel often name the same message: it is one message.
        let mut seen = Vec::new();
        channel.messages.retain(|m| {
            let first = !seen.contains(&m.path);
            seen.push(m.path.clone());
            first
        });
        let summary = first(&channel.messages, |m| m.summary)
            .or_else(|| first(&channel.messages, |m| m.title))
            .or(channel.description)
            .map(str::to_owned);
        let payload_schema = combined_payload(resolver, &channel.messages)?;
        events.push(EventType {
            version: version_of(&channel.name).unwrap_or(info_version).to_owned(),
            name: channel.name.clone(),
            summary,
            payload_schema,
        });
        declared_at.insert(channel.name, channel.path);
    }
    Ok(events)
}

fn first<'d>(
    messages: &[Message<'d>],
    field: impl Fn(&Message<'d>) -> Option<&'d str>,
) -> Option<&'d str> {
    messages.iter().find_map(field)
}

/// The payload schema of an event with these messages: the one message's payload, or `oneOf`
/// the distinct payloads of several. A payload in another format than JSON Schema is given as
/// `{"schemaFormat": ..., "schema": ...}`.
///
/// A message without a payload may carry anything, so an event with one has no schema at all
/// (`None`) rather than a `oneOf` that the other payloads would wrongly narrow. Identical
/// payloads are listed once, since `oneOf` rejects a value that matches two branches.
fn combined_payload<'d>(
    resolver: &mut Resolver<'d>,
    messages: &[Message<'d>],
) -> Result<Option<Value>, SpecError> {
    let mut payloads: Vec<Value> = Vec::with_capacity(messages.len());
    let mut unconstrained = false;
    for message in messages {
        let Some(Payload {
            schema,
            path,
            foreign_format,
        }) = &message.payload
        else {
            unconstrained = true;
            continue;
        };
        let at = Located { node: schema, path };
        // Expanded even when unused, so that a broken `$ref` is reported either way.
        let payload = match foreign_format {
            None => resolver.expand(at)?,
            // Kept in AsyncAPI 3's multi-format shape: it says what the schema is, and a JSON
            // Schema validator reads the object as "anything goes" instead of failing on it.
            Some(format) => json!({ "schemaFormat": format, "schema": resolver.copy(at)? }),
        };
        if !payloads.contains(&payload) {
            payloads.push(payload);
        }
    }
    Ok(match payloads.len() {
        _ if unconstrained => None,
        0 => None,
        1 => payloads.pop(),
        _ => Some(json!({ "oneOf": payloads })),
    })
}

/// The version in an event name's trailing `.v<N>` segment: `order.created.v1` → `v1`.
fn version_of(name: &str) -> Option<&str> {
    let (_, last) = name.rsplit_once('.')?;
    let digits = last.strip_prefix('v')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_a_trailing_v_number_segment() {
        assert_eq!(version_of("order.created.v1"), Some("v1"));
        assert_eq!(version_of("shop.order.cancelled.v12"), Some("v12"));
        for name in [
            "order.created",
            "v1",
            "order.created.v",
            "order.created.V1",
            "order.created.v1beta",
            "order/created/v1",
            "order.v1.created",
        ] {
            assert_eq!(version_of(name), None, "{name}");
        }
    }

    #[test]
    fn json_schema_formats_are_recognised() {
        assert!(is_json_schema(None));
        assert!(is_json_schema(Some(
            "application/vnd.aai.asyncapi+json;version=3.0.0"
        )));
        assert!(is_json_schema(Some(
            "application/schema+json;version=draft-07"
        )));
        assert!(!is_json_schema(Some(
            "application/vnd.apache.avro;version=1.9.0"
        )));
    }
}
