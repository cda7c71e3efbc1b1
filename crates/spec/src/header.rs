//! The parts every AsyncAPI document starts with: `asyncapi` (which version of the
//! specification, and so how to read the rest) and `info`.

use crate::error::SpecError;
use crate::node::Node;

/// The AsyncAPI major versions this crate reads; their channel models differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Major {
    /// 2.0.0–2.6.0: channels carry `publish`/`subscribe` operations with a `message`.
    V2,
    /// 3.x (3.0.0 onwards): channels carry `messages`; operations are separate.
    V3,
}

const SUPPORTED: &str = "supported are 2.0.0–2.6.0 and 3.x";

/// The validated header of a document.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) major: Major,
    pub(crate) asyncapi_version: String,
    pub(crate) title: String,
    pub(crate) info_version: String,
}

/// Reads and checks `asyncapi` and `info` of the document `root`.
pub(crate) fn read(root: &Node) -> Result<Header, SpecError> {
    let Some(members) = root.as_object() else {
        return Err(SpecError::document(format!(
            "not an AsyncAPI document: expected an object at the top level, found {}",
            root.kind()
        )));
    };
    let Some(version) = members.get("asyncapi") else {
        return Err(SpecError::document(format!(
            "not an AsyncAPI document: the `asyncapi` field is missing{}",
            looks_like(root)
        )));
    };
    let Some(version) = version.as_str() else {
        return Err(SpecError::new(
            "/asyncapi",
            format!(
                "`asyncapi` must be a version string such as \"2.6.0\" or \"3.0.0\", found {}",
                version.kind()
            ),
        ));
    };
    let major = major(version).ok_or_else(|| {
        SpecError::new(
            "/asyncapi",
            format!("unsupported AsyncAPI version {version}: {SUPPORTED}"),
        )
    })?;

    let info = match root.get("info") {
        None => return Err(SpecError::new("/info", "`info` is required")),
        Some(info @ Node::Object(_)) => info,
        Some(other) => {
            return Err(SpecError::new(
                "/info",
                format!(
                    "`info` must be an object with `title` and `version`, found {}",
                    other.kind()
                ),
            ));
        }
    };
    Ok(Header {
        major,
        asyncapi_version: version.to_owned(),
        title: required_text(info, "title")?,
        info_version: required_text(info, "version")?,
    })
}

/// The major version for a supported `asyncapi` value.
///
/// Every 3.x minor is read as 3.0. AsyncAPI 3.1.0 changed nothing this crate reads:
///
/// - it adds ROS 2 bindings (`bindings.ros2` on servers, channels, operations and messages) and
///   lets the Server Object carry `x-` extensions again (extension names may now contain `.`):
///   bindings and extensions are not read;
/// - it says that an operation without `messages` means all of its channel's messages and `[]`
///   none, and that operation traits may not set `messages`: the catalog is built from channels,
///   not operations, and operations' `messages` are only checked to name messages of their channel
///   (which 3.0 already required);
/// - a message example's `payload` may be any value, not only an object: examples are not read;
/// - the default `schemaFormat` becomes `application/vnd.aai.asyncapi+json;version=3.1.0`, which
///   is recognised as JSON Schema like every `application/vnd.aai.asyncapi` format;
/// - the rest is wording and examples (`info` is unchanged).
///
/// A later 3.x minor may only add to 3.0 (AsyncAPI follows semantic versioning), so it is
/// accepted too and read by the 3.0 rules; fields it adds are ignored like any unknown field. 2.x is accepted only up to 2.6.0, the last 2.x release, with patch 0 (no 2.x patch
/// release exists).
fn major(version: &str) -> Option<Major> {
    let mut parts = version.split('.');
    let mut next = || {
        parts
            .next()
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u32>().ok())
    };
    let (major, minor, patch) = (next()?, next()?, next()?);
    if parts.next().is_some() {
        return None;
    }
    match (major, minor, patch) {
        (2, 0..=6, 0) => Some(Major::V2),
        (3, _, _) => Some(Major::V3),
        _ => None,
    }
}

/// `info.<field>`: a required, non-blank string.
fn required_text(info: &Node, field: &str) -> Result<String, SpecError> {
    let path = format!("/info/{field}");
    match info.get(field) {
        None | Some(Node::Null) => Err(SpecError::new(path, format!("`info.{field}` is required"))),
        Some(Node::String(text)) if text.trim().is_empty() => Err(SpecError::new(
            path,
            format!("`info.{field}` must not be empty"),
        )),
        Some(Node::String(text)) => Ok(text.clone()),
        // YAML reads `version: 1.0` as a number, and would print it back as `1`: ask for quotes
        // rather than guess what was written.
        Some(Node::Number(n)) => Err(SpecError::new(
            path,
            format!("`info.{field}` must be a string: write it in quotes (\"{n}\")"),
        )),
        Some(other) => Err(SpecError::new(
            path,
            format!("`info.{field}` must be a string, found {}", other.kind()),
        )),
    }
}

/// A hint at what a document without `asyncapi` is instead.
fn looks_like(root: &Node) -> &'static str {
    if root.get("openapi").is_some() || root.get("swagger").is_some() {
        " (this looks like an OpenAPI document)"
    } else if root.get("apiVersion").is_some() && root.get("kind").is_some() {
        " (this looks like a Kubernetes manifest)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_versions_are_2_0_to_2_6_and_every_3_x() {
        for v in ["2.0.0", "2.3.0", "2.6.0"] {
            assert_eq!(major(v), Some(Major::V2), "{v}");
        }
        for v in ["3.0.0", "3.0.1", "3.1.0", "3.1.2", "3.2.0", "3.10.0"] {
            assert_eq!(major(v), Some(Major::V3), "{v}");
        }
        for v in [
            "1.2.0",
            "2.7.0",
            "2.6.1",
            "4.0.0",
            "3.1",
            "3.1.0-rc1",
            "2.6",
            "3",
            "3.0.0-rc1",
            "v3.0.0",
            "",
            "2..0",
            "2.6.0.0",
        ] {
            assert_eq!(major(v), None, "{v}");
        }
    }
}
