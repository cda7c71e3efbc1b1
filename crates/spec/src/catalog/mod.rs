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
    /// The channel's name: its key (2.x) or address (3.x; its key when it has none). The event
    /// type's name when the channel carries one message and shares its address with no other.
    pub(crate) name: String,
    /// Its key under `channels`.
    pub(crate) key: String,
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
    /// Where the channel lists it (before following `$ref`s): where to point at a name clash.
    pub(crate) listed_at: String,
    /// Its name: the key in the channel's `messages` (3.x), else `messageId`, else `name`.
    pub(crate) id: Option<String>,
    pub(crate) summary: Option<&'d str>,
    pub(crate) title: Option<&'d str>,
    /// `contentType`.
    pub(crate) content_type: Option<&'d str>,
    /// `deprecated: true` on the message (or, in 2.x, on the operation that carries it).
    pub(crate) deprecated: bool,
    /// The `headers` schema and where it is.
    pub(crate) headers: Option<(&'d Node, String)>,
    /// The payload schema; `None` when the message declares no payload.
    pub(crate) payload: Option<Payload<'d>>,
}

/// A message's payload schema and where it is.
pub(crate) struct Payload<'d> {
    pub(crate) schema: &'d Node,
    pub(crate) path: String,
    /// The `schemaFormat` when it is not JSON Schema (Avro, Protobuf, ...).
    pub(crate) foreign_format: Option<&'d str>,
    /// The `schemaFormat` as written, JSON Schema or not.
    pub(crate) format: Option<&'d str>,
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
    /// Reads the message at `node` (a message object or a reference to one) at `path`. `key` is
    /// its key in the channel's `messages` (3.x).
    pub(crate) fn read(
        resolver: &Resolver<'d>,
        node: &'d Node,
        path: &str,
        key: Option<&str>,
        style: PayloadStyle,
    ) -> Result<Message<'d>, SpecError> {
        let listed_at = path.to_owned();
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
        let id = match key {
            Some(key) => Some(key.to_owned()),
            None => optional_text(node, &path, "messageId")?
                .or(optional_text(node, &path, "name")?)
                .map(str::to_owned),
        };
        let deprecated = match node.get("deprecated") {
            None | Some(Node::Null) => false,
            Some(Node::Bool(deprecated)) => *deprecated,
            Some(other) => {
                return Err(SpecError::new(
                    pointer::child(&path, "deprecated"),
                    format!("`deprecated` must be a boolean, found {}", other.kind()),
                ));
            }
        };
        let headers = match node.get("headers") {
            None | Some(Node::Null) => None,
            Some(headers) => Some((headers, pointer::child(&path, "headers"))),
        };
        Ok(Message {
            content_type: optional_text(node, &path, "contentType")?,
            listed_at,
            id,
            summary,
            title,
            deprecated,
            headers,
            payload,
            path,
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
            format,
        });
    }
    match schema {
        Node::Object(_) | Node::Bool(_) => Ok(Payload {
            schema,
            path,
            foreign_format: None,
            format,
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

/// Turns channels into event types (see [`EventType`] for the naming rules). `info_version`
/// versions names without a `.v<N>` suffix; `default_content_type` is the document's
/// `defaultContentType`.
pub(crate) fn build<'d>(
    resolver: &mut Resolver<'d>,
    channels: Vec<Channel<'d>>,
    info_version: &str,
    default_content_type: Option<&str>,
) -> Result<Vec<EventType>, SpecError> {
    let mut per_address: HashMap<String, usize> = HashMap::new();
    for channel in &channels {
        *per_address.entry(channel.name.clone()).or_default() += 1;
    }
    let mut names = Names::default();
    let mut events = Vec::with_capacity(channels.len());
    for mut channel in channels {
        // Both operations of a 2.x channel often name the same message: it is one message.
        let mut seen = Vec::new();
        channel.messages.retain(|m| {
            let first = !seen.contains(&m.path);
            seen.push(m.path.clone());
            first
        });
        let shared = per_address.get(&channel.name).copied().unwrap_or(0) > 1;
        // A channel with one message of its own is one event type, named by the channel;
        // otherwise each message is one, named by its `ce-type` or its id.
        let by_channel = channel.messages.len() == 1 && !shared;
        for message in &channel.messages {
            let (name, at, kind) = if by_channel {
                (channel.name.clone(), &channel.path, "channels")
            } else {
                (
                    message_name(resolver, &channel, message, shared)?,
                    &message.listed_at,
                    "messages",
                )
            };
            names.claim(&name, at, kind)?;
            events.push(entry(
                resolver,
                name,
                info_version,
                &channel,
                message,
                default_content_type,
            )?);
        }
    }
    Ok(events)
}

/// The event type name of `message`, one of several of `channel` (or of a channel that
/// `shared` its address): the `const` of its `ce-type` header, else its id.
fn message_name<'d>(
    resolver: &mut Resolver<'d>,
    channel: &Channel<'d>,
    message: &Message<'d>,
    shared: bool,
) -> Result<String, SpecError> {
    if let Some(name) = ce_type(resolver, message)? {
        return Ok(name);
    }
    message.id.clone().ok_or_else(|| {
        SpecError::new(
            &message.listed_at,
            format!(
                "this message needs a name: channel `{}` {}, so each of its messages is an \
                 event type of its own, named by its `ce-type` header's `const`, else its \
                 `messageId`, else its `name`",
                channel.name,
                if shared {
                    "shares its address with another channel"
                } else {
                    "carries several messages"
                }
            ),
        )
    })
}

/// The event type named `name` for `message` of `channel`: its summary is the message's
/// `summary`, else its `title`, else the channel's `description`.
fn entry<'d>(
    resolver: &mut Resolver<'d>,
    name: String,
    info_version: &str,
    channel: &Channel<'d>,
    message: &Message<'d>,
    default_content_type: Option<&str>,
) -> Result<EventType, SpecError> {
    let summary = message
        .summary
        .or(message.title)
        .or(channel.description)
        .map(str::to_owned);
    let payload_schema = message_payload(resolver, message)?;
    Ok(EventType {
        version: version_of(&name).unwrap_or(info_version).to_owned(),
        name,
        channel: Some(channel.key.clone()),
        message: message.id.clone(),
        content_type: message
            .content_type
            .or(default_content_type)
            .map(str::to_owned),
        schema_format: message
            .payload
            .as_ref()
            .and_then(|p| p.format)
            .map(str::to_owned),
        summary,
        deprecated: message.deprecated,
        payload_schema,
    })
}

/// The event type names given out so far, and where.
#[derive(Default)]
struct Names(HashMap<String, String>);

impl Names {
    /// Gives `name` to what is at `path` (a channel or a message: `what`), unless it is taken.
    fn claim(&mut self, name: &str, path: &str, what: &str) -> Result<(), SpecError> {
        if let Some(first) = self.0.get(name) {
            return Err(SpecError::new(
                path,
                format!(
                    "duplicate event type `{name}`: {what} {first} and {path} both define it; \
                     event types must have distinct names"
                ),
            ));
        }
        self.0.insert(name.to_owned(), path.to_owned());
        Ok(())
    }
}

/// The CloudEvents `type` a message's `headers` schema states: the `const` (or the only `enum`
/// value) of its `ce-type` or `ce_type` property (the CloudEvents Kafka and AMQP bindings'
/// header names).
fn ce_type<'d>(
    resolver: &Resolver<'d>,
    message: &Message<'d>,
) -> Result<Option<String>, SpecError> {
    let Some((headers, path)) = &message.headers else {
        return Ok(None);
    };
    let (mut headers, mut path) = resolver.deref(headers, path)?;
    // 3.x: a multi-format schema object.
    if headers.get("schemaFormat").is_some()
        && let Some(schema) = headers.get("schema")
    {
        (headers, path) = resolver.deref(schema, &pointer::child(&path, "schema"))?;
    }
    let Some(properties) = headers.get("properties") else {
        return Ok(None);
    };
    let (properties, path) = resolver.deref(properties, &pointer::child(&path, "properties"))?;
    for key in ["ce-type", "ce_type"] {
        let Some(property) = properties.get(key) else {
            continue;
        };
        let (property, _) = resolver.deref(property, &pointer::child(&path, key))?;
        let stated = match (property.get("const"), property.get("enum")) {
            (Some(Node::String(value)), _) => Some(value),
            (_, Some(Node::Array(values))) => match values.as_slice() {
                [Node::String(value)] => Some(value),
                _ => None,
            },
            _ => None,
        };
        if let Some(value) = stated.map(|v| v.trim()).filter(|v| !v.is_empty()) {
            return Ok(Some(value.to_owned()));
        }
    }
    Ok(None)
}

/// The payload schema of a message's event type: its payload with local `$ref`s resolved, or
/// `None` when it declares none (it may then carry anything). A payload in another format than
/// JSON Schema is given as `{"schemaFormat": ..., "schema": ...}`.
fn message_payload<'d>(
    resolver: &mut Resolver<'d>,
    message: &Message<'d>,
) -> Result<Option<Value>, SpecError> {
    let Some(Payload {
        schema,
        path,
        foreign_format,
        ..
    }) = &message.payload
    else {
        return Ok(None);
    };
    let at = Located { node: schema, path };
    Ok(Some(match foreign_format {
        None => resolver.expand(at)?,
        // Kept in AsyncAPI 3's multi-format shape: it says what the schema is, and a JSON
        // Schema validator reads the object as "anything goes" instead of failing on it.
        Some(format) => json!({ "schemaFormat": format, "schema": resolver.copy(at)? }),
    }))
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
