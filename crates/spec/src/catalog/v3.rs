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
    for (id, channel) in members(root, "channels", "/channels", "channel ids to channels")? {
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
        let messages = members(
            channel,
            "messages",
            &messages_path,
            "message ids to messages",
        )?
        .map(|(message_id, message)| {
            Message::read(
                resolver,
                message,
                &pointer::child(&messages_path, message_id),
                PayloadStyle::MultiFormat,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
        if !messages.is_empty() {
            found.push(Channel {
                name,
                description: optional_text(channel, &channel_path, "description")?,
                path,
                messages,
            });
        }
    }
    check_operations(resolver, root)?;
    Ok(found)
}

/// The members of the optional map `field` of `node` (at `path`), which maps `what`.
fn members<'d>(
    node: &'d Node,
    field: &str,
    path: &str,
    what: &str,
) -> Result<impl Iterator<Item = (&'d String, &'d Node)>, SpecError> {
    match node.get(field) {
        None | Some(Node::Null) => Ok(None.into_iter().flatten()),
        Some(Node::Object(map)) => Ok(Some(map.iter()).into_iter().flatten()),
        Some(other) => Err(SpecError::new(
            path,
            format!(
                "`{field}` must be an object mapping {what}, found {}",
                other.kind()
            ),
        )),
    }
}

/// Operations are not part of the catalog, but one that names a missing channel or message is
/// a mistake the author wants to hear about.
fn check_operations<'d>(resolver: &Resolver<'d>, root: &'d Node) -> Result<(), SpecError> {
    for (id, operation) in members(
        root,
        "operations",
        "/operations",
        "operation ids to operations",
    )? {
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
        match operation.get("channel") {
            Some(channel) if channel.ref_target().is_some() => {
                let (channel, channel_path) = resolver.deref(channel, &channel_path)?;
                if channel.as_object().is_none() {
                    return Err(SpecError::new(
                        channel_path,
                        format!("a channel must be an object, found {}", channel.kind()),
                    ));
                }
            }
            _ => {
                return Err(SpecError::new(
                    channel_path,
                    "`channel` must be a `$ref` to a channel, e.g. `$ref: '#/channels/orders'`",
                ));
            }
        }
        match operation.get("messages") {
            None => {}
            Some(Node::Array(messages)) => {
                let messages_path = pointer::child(&path, "messages");
                for (i, message) in messages.iter().enumerate() {
                    resolver.deref(message, &pointer::child(&messages_path, i.to_string()))?;
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
