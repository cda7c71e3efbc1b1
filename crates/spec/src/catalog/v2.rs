//! AsyncAPI 2.x: `channels` maps names to channel items, whose `publish` and `subscribe`
//! operations each carry a `message`: inline, a `$ref`, or `oneOf` a list of those.

use super::{Channel, Message, PayloadStyle, optional_text};
use crate::error::SpecError;
use crate::node::Node;
use crate::pointer;
use crate::resolve::Resolver;

const OPERATIONS: [&str; 2] = ["publish", "subscribe"];

/// The channels of a 2.x document that carry messages, in document order.
pub(crate) fn channels<'d>(
    resolver: &Resolver<'d>,
    root: &'d Node,
) -> Result<Vec<Channel<'d>>, SpecError> {
    let channels = match root.get("channels") {
        Some(Node::Object(channels)) => channels,
        None => {
            return Err(SpecError::new(
                "/channels",
                "`channels` is required in AsyncAPI 2.x (write `channels: {}` when there are none)",
            ));
        }
        Some(other) => {
            return Err(SpecError::new(
                "/channels",
                format!(
                    "`channels` must be an object mapping channel names to channels, found {}",
                    other.kind()
                ),
            ));
        }
    };
    let mut found = Vec::new();
    for (name, item) in channels {
        let path = pointer::child("/channels", name);
        if name.trim().is_empty() {
            return Err(SpecError::new(path, "a channel name must not be empty"));
        }
        let (item, item_path) = resolver.deref(item, &path)?;
        if item.as_object().is_none() {
            return Err(SpecError::new(
                item_path,
                format!("channel `{name}` must be an object, found {}", item.kind()),
            ));
        }
        let mut messages = Vec::new();
        for operation in OPERATIONS {
            messages.extend(operation_messages(resolver, item, &item_path, operation)?);
        }
        if !messages.is_empty() {
            found.push(Channel {
                name: name.clone(),
                key: name.clone(),
                description: optional_text(item, &item_path, "description")?,
                path,
                messages,
            });
        }
    }
    Ok(found)
}

/// The messages of the channel item's `publish` or `subscribe` operation.
fn operation_messages<'d>(
    resolver: &Resolver<'d>,
    item: &'d Node,
    item_path: &str,
    operation: &str,
) -> Result<Vec<Message<'d>>, SpecError> {
    let Some(op) = item.get(operation) else {
        return Ok(Vec::new());
    };
    let op_path = pointer::child(item_path, operation);
    if op.as_object().is_none() {
        return Err(SpecError::new(
            op_path,
            format!(
                "`{operation}` must be an operation object, found {}",
                op.kind()
            ),
        ));
    }
    let Some(message) = op.get("message") else {
        return Ok(Vec::new());
    };
    let deprecated = match op.get("deprecated") {
        None | Some(Node::Null) => false,
        Some(Node::Bool(deprecated)) => *deprecated,
        Some(other) => {
            return Err(SpecError::new(
                pointer::child(&op_path, "deprecated"),
                format!("`deprecated` must be a boolean, found {}", other.kind()),
            ));
        }
    };
    let mark = |mut message: Message<'d>| {
        message.deprecated |= deprecated;
        message
    };
    let (message, message_path) = resolver.deref(message, &pointer::child(&op_path, "message"))?;
    let Some(alternatives) = message.get("oneOf") else {
        return Ok(vec![mark(Message::read(
            resolver,
            message,
            &message_path,
            None,
            PayloadStyle::SchemaFormatOnMessage,
        )?)]);
    };
    let list_path = pointer::child(&message_path, "oneOf");
    match alternatives {
        Node::Array(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, alternative)| {
                Message::read(
                    resolver,
                    alternative,
                    &pointer::child(&list_path, i.to_string()),
                    None,
                    PayloadStyle::SchemaFormatOnMessage,
                )
                .map(mark)
            })
            .collect(),
        Node::Array(_) => Err(SpecError::new(
            list_path,
            "`oneOf` must list at least one message",
        )),
        other => Err(SpecError::new(
            list_path,
            format!("`oneOf` must be a list of messages, found {}", other.kind()),
        )),
    }
}
