//! Security requirements of servers and operations must name security schemes the document
//! defines. They are not part of the catalog, but a document whose servers require a scheme it
//! never describes cannot be used as written, and the author wants to hear about it.
//!
//! - 2.x: `security` (of a server, and of a `publish`/`subscribe` operation since 2.4) lists
//!   Security Requirement objects: maps from a scheme's name in `components.securitySchemes` to
//!   its scopes.
//! - 3.x: `security` (of a server or an operation) lists Security Scheme objects, or Reference
//!   Objects to them, usually `$ref: '#/components/securitySchemes/<name>'`.

use crate::error::SpecError;
use crate::header::Major;
use crate::node::Node;
use crate::pointer::{self, Reference};
use crate::resolve::Resolver;

/// Checks the `security` of every server and operation of the document `root`.
pub(crate) fn check<'d>(
    resolver: &Resolver<'d>,
    root: &'d Node,
    major: Major,
) -> Result<(), SpecError> {
    let schemes = Schemes::of(root)?;
    for (name, server) in root.map_members("servers", "/servers", "server names to servers")? {
        let (server, path) = resolver.deref(server, &pointer::child("/servers", name))?;
        let owner = format!("server `{name}`");
        match major {
            Major::V2 => requirements(server, &path, &owner, &schemes)?,
            Major::V3 => schemes_or_refs(resolver, server, &path, &owner, &schemes)?,
        }
    }
    match major {
        Major::V2 => {
            for (name, item) in
                root.map_members("channels", "/channels", "channel names to channels")?
            {
                let (item, item_path) = resolver.deref(item, &pointer::child("/channels", name))?;
                for action in ["publish", "subscribe"] {
                    if let Some(operation) = item.get(action) {
                        let owner = format!("the `{action}` operation of channel `{name}`");
                        let path = pointer::child(&item_path, action);
                        requirements(operation, &path, &owner, &schemes)?;
                    }
                }
            }
        }
        Major::V3 => {
            let operations =
                root.map_members("operations", "/operations", "operation ids to operations")?;
            for (id, operation) in operations {
                let path = pointer::child("/operations", id);
                let (operation, path) = resolver.deref(operation, &path)?;
                let owner = format!("operation `{id}`");
                schemes_or_refs(resolver, operation, &path, &owner, &schemes)?;
            }
        }
    }
    Ok(())
}

/// The names defined under `components.securitySchemes`.
struct Schemes<'d> {
    names: Vec<&'d str>,
}

impl<'d> Schemes<'d> {
    fn of(root: &'d Node) -> Result<Schemes<'d>, SpecError> {
        let names = match root.get("components") {
            Some(components) => components
                .map_members(
                    "securitySchemes",
                    "/components/securitySchemes",
                    "scheme names to security schemes",
                )?
                .map(|(name, _)| name.as_str())
                .collect(),
            None => Vec::new(),
        };
        Ok(Schemes { names })
    }

    fn defines(&self, name: &str) -> bool {
        self.names.contains(&name)
    }

    /// The error for `owner` naming the undefined scheme `name` at `path`.
    fn undefined(&self, path: String, owner: &str, name: &str) -> SpecError {
        let defined = if self.names.is_empty() {
            "it defines none".to_owned()
        } else {
            let names: Vec<String> = self.names.iter().map(|n| format!("`{n}`")).collect();
            format!("it defines {}", names.join(", "))
        };
        SpecError::new(
            path,
            format!(
                "{owner} requires the security scheme `{name}`, which \
                 `components.securitySchemes` does not define ({defined})"
            ),
        )
    }
}

/// 2.x: `security` of `node` lists Security Requirement objects, whose keys must be defined
/// schemes and whose values lists of scopes.
fn requirements(
    node: &Node,
    path: &str,
    owner: &str,
    schemes: &Schemes<'_>,
) -> Result<(), SpecError> {
    for (requirement, item_path) in list(node, path)? {
        let Some(members) = requirement.as_object() else {
            return Err(SpecError::new(
                item_path,
                format!(
                    "a security requirement must be an object mapping scheme names to scopes, \
                     found {}",
                    requirement.kind()
                ),
            ));
        };
        for (name, scopes) in members {
            if !schemes.defines(name) {
                return Err(schemes.undefined(item_path, owner, name));
            }
            let is_scope_list =
                matches!(scopes, Node::Array(s) if s.iter().all(|s| s.as_str().is_some()));
            if !is_scope_list {
                return Err(SpecError::new(
                    pointer::child(&item_path, name),
                    format!(
                        "the scopes of `{name}` must be a list of strings (`[]` for none), \
                         found {}",
                        scopes.kind()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// 3.x: `security` of `node` lists Security Scheme objects or references to them.
fn schemes_or_refs<'d>(
    resolver: &Resolver<'d>,
    node: &'d Node,
    path: &str,
    owner: &str,
    schemes: &Schemes<'_>,
) -> Result<(), SpecError> {
    for (item, item_path) in list(node, path)? {
        if let Some(reference) = item.ref_target()
            && let Reference::Local(tokens) = Reference::parse(reference)
            && let [components, security_schemes, name] = tokens.as_slice()
            && components == "components"
            && security_schemes == "securitySchemes"
            && !schemes.defines(name)
        {
            return Err(schemes.undefined(item_path, owner, name));
        }
        let (scheme, scheme_path) = resolver.deref(item, &item_path)?;
        if scheme.get("type").and_then(Node::as_str).is_none() {
            return Err(SpecError::new(
                scheme_path,
                format!(
                    "a security scheme must be an object with a `type` (or a `$ref` to one \
                     under `#/components/securitySchemes`), found {}",
                    describe(scheme)
                ),
            ));
        }
    }
    Ok(())
}

/// What a value that should have been a security scheme is.
fn describe(node: &Node) -> &'static str {
    match node {
        Node::Object(_) => "an object without a string `type`",
        other => other.kind(),
    }
}

/// The items of the optional list `security` of `node` (at `path`), with their paths.
fn list<'d>(
    node: &'d Node,
    path: &str,
) -> Result<impl Iterator<Item = (&'d Node, String)>, SpecError> {
    let path = pointer::child(path, "security");
    let items = match node.get("security") {
        None | Some(Node::Null) => &[][..],
        Some(Node::Array(items)) => items.as_slice(),
        Some(other) => {
            return Err(SpecError::new(
                path,
                format!("`security` must be a list, found {}", other.kind()),
            ));
        }
    };
    Ok(items
        .iter()
        .enumerate()
        .map(move |(i, item)| (item, pointer::child(&path, i.to_string()))))
}
