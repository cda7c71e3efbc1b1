//! AsyncAPI 3.x (3.0 and the minors after it, read alike): `channels` maps ids to channels with
//! an optional `address` and a `messages` map; `operations` refer to channels and messages by
//! `$ref` and add none of their own.

use super::{Channel, Message, PayloadStyle, optional_text};
use crate::error::SpecError;
use crate::node::Node;
use crate::pointer;
use crate::resolve::Resolver;

/// The channels of a 3.0 document that carry messages, in document order. Also checks that
/// the operations refer to things that exist.
pub(crate) fn channels<'d>(
    resolver: &Resolver<'d>,
    root: &'d Node,
) -> Result<Vec<Channel<'d>>, SpecError> {
    let mut found = Vec::new();
    for (id, channel) in root.map_members("channels", "/channels", "channel ids to channels")? {
        let path = pointer::child("/channels", id);
        let (channel, channel_path) = resolver.deref(channel, &path)?;
        if channel.as_object().is_none() {
            return Err(SpecError::new(
                channel_path,
                format!("channel `{id}` must be an object, found {}", channel.kind()),
            ));
        }
        let name = match channel.get("address") {
            None | Some(Node::Null) => id.clone(),
            Some(Node::String(address)) if !address.trim().is_empty() => address.clone(),
            Some(Node::String(_)) => {
                return Err(SpecError::new(
                    pointer::child(&channel_path, "address"),
                    "`address` must not be empty (leave it out or use null for a dynamic address)",
                ));
            }
            Some(other) => {
                return Err(SpecError::new(
                    pointer::child(&channel_path, "address"),
                    format!("`address` must be a string or null, found {}", other.kind()),
                ));
            }
        };
        let messages_path = pointer::child(&channel_path, "messages");
        let messages = channel
            .map_members("messages", &messages_path, "message ids to messages")?
            .map(|(message_id, message)| {
                Message::read(
                    resolver,
                    message,
                    &pointer::child(&messages_path, message_id),
                    Some(message_id),
                    PayloadStyle::MultiFormat,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !messages.is_empty() {
            found.push(Channel {
                name,
                key: id.clone(),
                description: optional_text(channel, &channel_path, "description")?,
                path,
                messages,
            });
        }
    }
    check_operations(resolver, root)?;
    Ok(found)
}

/// Operations are not part of the catalog, but one that names a missing channel or message, or
/// a message that is not its channel's, is a mistake the author wants to hear about.
fn check_operations<'d>(resolver: &Resolver<'d>, root: &'d Node) -> Result<(), SpecError> {
    for (id, operation) in
        root.map_members("operations", "/operations", "operation ids to operations")?
    {
        let path = pointer::child("/operations", id);
        let (operation, path) = resolver.deref(operation, &path)?;
        if operation.as_object().is_none() {
            return Err(SpecError::new(
                path,
                format!(
                    "operation `{id}` must be an object, found {}",
                    operation.kind()
                ),
            ));
        }
        match operation.get("action").and_then(Node::as_str) {
            Some("send" | "receive") => {}
            _ => {
                return Err(SpecError::new(
                    pointer::child(&path, "action"),
                    "`action` must be `send` or `receive`",
                ));
            }
        }
        let channel_path = pointer::child(&path, "channel");
        let channel = match operation.get("channel") {
            Some(channel) if channel.ref_target().is_some() => {
                let (target, target_path) = resolver.deref(channel, &channel_path)?;
                if target.as_object().is_none() {
                    return Err(SpecError::new(
                        target_path,
                        format!("a channel must be an object, found {}", target.kind()),
                    ));
                }
                OperationChannel {
                    reference: channel.ref_target().unwrap_or_default(),
                    node: target,
                    path: target_path,
                }
            }
            _ => {
                return Err(SpecError::new(
                    channel_path,
                    "`channel` must be a `$ref` to a channel, e.g. `$ref: '#/channels/orders'`",
                ));
            }
        };
        match operation.get("messages") {
            None => {}
            Some(Node::Array(messages)) => {
                let messages_path = pointer::child(&path, "messages");
                for (i, message) in messages.iter().enumerate() {
                    let message_path = pointer::child(&messages_path, i.to_string());
                    check_operation_message(resolver, &channel, message, &message_path)?;
                }
            }
            Some(other) => {
                return Err(SpecError::new(
                    pointer::child(&path, "messages"),
                    format!(
                        "`messages` must be a list of `$ref`s to the channel's messages, found {}",
                        other.kind()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The channel an operation refers to.
struct OperationChannel<'d> {
    /// The operation's `channel.$ref`, e.g. `#/channels/orders`.
    reference: &'d str,
    /// The channel object, and where it really is.
    node: &'d Node,
    path: String,
}

/// An item of an operation's `messages`: the specification requires a `$ref` to one of the
/// messages of the operation's channel (`#/channels/orders/messages/created`), not a message
/// object and not a message elsewhere (`#/components/messages/...`, another channel's).
fn check_operation_message<'d>(
    resolver: &Resolver<'d>,
    channel: &OperationChannel<'d>,
    message: &'d Node,
    path: &str,
) -> Result<(), SpecError> {
    let Some(reference) = message.ref_target() else {
        return Err(SpecError::new(
            path,
            format!(
                "an operation's `messages` must be `$ref`s to messages of its channel, e.g. \
                 `$ref: '{}/messages/<id>'`, found {}",
                channel.reference,
                if message.as_object().is_some() {
                    "a message object"
                } else {
                    message.kind()
                }
            ),
        ));
    };
    let (_, named) = resolver.target(reference, &pointer::child(path, "$ref"))?;
    let (_, message_at) = resolver.deref(message, path)?;
    let channel_messages = pointer::child(&channel.path, "messages");
    if named.rsplit_once('/').map(|(parent, _)| parent) == Some(channel_messages.as_str()) {
        return Ok(());
    }
    // The same message reached through the channel is what the author meant: say how to write it.
    let mut hint = String::new();
    if let Some(Node::Object(messages)) = channel.node.get("messages") {
        for (id, candidate) in messages {
            let candidate_path = pointer::child(&channel_messages, id);
            if let Ok((_, at)) = resolver.deref(candidate, &candidate_path)
                && at == message_at
            {
                let id = pointer::child("", id);
                hint = format!(" (write `$ref: '{}/messages{id}'`)", channel.reference);
                break;
            }
        }
    }
    Err(SpecError::new(
        path,
        format!(
            "`{reference}` is not a message of the operation's channel `{}`: an operation's \
             `messages` must be a subset of its channel's `messages`{hint}",
            channel.reference
        ),
    ))
}
