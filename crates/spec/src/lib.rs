//! AsyncAPI documents for eventplane: parsing (JSON or YAML), validating, and deriving the event
//! catalog: the event types an application publishes, with their versions and payload schemas.
//!
//! Pure Rust with no Spin dependency, so the registry, the fetcher and the gateway use it alike
//! on `wasm32-wasip2`. AsyncAPI 2.0.0–2.6.0 and 3.x (3.0, 3.1 and later minors, read alike) are
//! read; every message a channel carries is an event type, named by its channel when the channel
//! carries only that one (see [`EventType`] for the naming rules and how each part is derived).
//! Errors say what is wrong and where, as a JSON Pointer ([`SpecError`]).
//!
//! ```
//! use eventplane_spec::{SpecFormat, parse};
//!
//! let spec = parse(
//!     r#"
//! asyncapi: 2.6.0
//! info: { title: Shop, version: "1.4.0" }
//! channels:
//!   order.created.v1:
//!     subscribe:
//!       message:
//!         summary: An order was placed.
//!         payload: { type: object, required: [orderId] }
//! "#,
//!     None,
//! )?;
//! assert_eq!(spec.format, SpecFormat::Yaml);
//! assert_eq!(spec.title, "Shop");
//! let created = &spec.events[0];
//! assert_eq!((created.name.as_str(), created.version.as_str()), ("order.created.v1", "v1"));
//! assert_eq!(created.summary.as_deref(), Some("An order was placed."));
//!
//! let err = parse(r#"{"asyncapi": "2.6.0", "info": {"version": "1"}}"#, None).unwrap_err();
//! assert_eq!(err.path, "/info/title");
//! assert_eq!(err.to_string(), "`info.title` is required (at /info/title)");
//! # Ok::<(), eventplane_spec::SpecError>(())
//! ```
#![deny(missing_docs)]

mod bundle;
mod catalog;
mod error;
mod header;
mod node;
mod pointer;
mod resolve;
mod security;
mod text;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use bundle::{BundleLimits, Bundled, FILES_KEY, Files, MAX_FILE_DEPTH, MAX_FILES, bundle};
pub use error::SpecError;

use header::Major;
use resolve::Resolver;

/// The default for the largest spec document accepted (the `spec_max_bytes` variable). Callers
/// enforce their configured limit before calling [`parse`].
pub const DEFAULT_MAX_SPEC_BYTES: usize = 1 << 20;

/// Values that expanded payload schemas may hold beyond four times the document's own: room for
/// shared schemas used in many places, not for exponential expansion.
const EXPANSION_ALLOWANCE: usize = 200_000;

/// The text format of a spec document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SpecFormat {
    /// JSON (`application/json`).
    Json,
    /// YAML (`application/yaml`); JSON is also valid YAML.
    Yaml,
}

impl fmt::Display for SpecFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpecFormat::Json => "JSON",
            SpecFormat::Yaml => "YAML",
        })
    }
}

impl FromStr for SpecFormat {
    type Err = SpecError;

    /// `JSON` or `YAML`, in any case (`yml` too).
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s.to_ascii_uppercase().as_str() {
            "JSON" => Ok(SpecFormat::Json),
            "YAML" | "YML" => Ok(SpecFormat::Yaml),
            _ => Err(SpecError::document(format!(
                "unknown spec format `{s}`: expected JSON or YAML"
            ))),
        }
    }
}

/// A parsed, valid AsyncAPI document and its event catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// The format the text was read as.
    pub format: SpecFormat,
    /// The document's `asyncapi` field, e.g. `2.6.0` or `3.0.0`.
    pub asyncapi_version: String,
    /// `info.title`.
    pub title: String,
    /// `info.version`, as written.
    pub info_version: String,
    /// The event catalog, in document order of the channels.
    pub events: Vec<EventType>,
    /// The whole document as JSON.
    pub document: serde_json::Value,
}

impl Spec {
    /// The event type called `name`, if the catalog has it.
    pub fn event(&self, name: &str) -> Option<&EventType> {
        self.events.iter().find(|e| e.name == name)
    }
}

/// One event type of the catalog: a message a channel carries.
///
/// # Naming
///
/// - A channel with **one** message whose address no other channel shares is one event type
///   named by the channel: its key under `channels` (2.x), or its `address` (3.x; the key when
///   the address is absent or null), e.g. `order.created.v1`. An address with parameters
///   (`orders.{region}.created.v1`) is the name as written; the gateway matches each `{param}`
///   against one segment of an event's type.
/// - A channel with **several** messages, and every channel whose address another channel shares
///   (3.x request/reply over one address), gives one event type per message, named by the
///   CloudEvents type its `headers` schema states (the `const`, or the only `enum` value, of a
///   `ce-type` or `ce_type` property), else by the message's name: its key in the channel's
///   `messages` (3.x), else `messageId`, else `name` (2.x). A message there with no name at all
///   is an error.
/// - Two event types of one document with the same name are an error at the second one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventType {
    /// The event type's name (see the naming rules above), e.g. `order.created.v1`.
    pub name: String,
    /// The name's trailing `.v<N>` segment (`v1`); without one, the document's `info.version`.
    pub version: String,
    /// The key under `channels` of the channel that carries the message (2.x: the channel's
    /// name; 3.x: its id). `None` only in catalogs stored before it was recorded.
    #[serde(default)]
    pub channel: Option<String>,
    /// The message's name: its key in the channel's `messages` (3.x), else its `messageId`, else
    /// its `name` (2.x); `None` when it has none.
    #[serde(default)]
    pub message: Option<String>,
    /// The message's `contentType`, else the document's `defaultContentType`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The payload's `schemaFormat` as written (2.x: the message's; 3.x: a multi-format
    /// payload's); `None` when the document does not say.
    #[serde(default)]
    pub schema_format: Option<String>,
    /// The message `summary`, else its `title`, else the channel's `description`.
    pub summary: Option<String>,
    /// Whether the message (or, in 2.x, the operation carrying it) says `deprecated: true`.
    #[serde(default)]
    pub deprecated: bool,
    /// The message's `payload` with every local `$ref` resolved: a self-contained schema. A
    /// payload in another format than JSON Schema is `{"schemaFormat": ..., "schema": ...}`.
    /// `None` when the message declares no payload (it may then carry anything).
    pub payload_schema: Option<serde_json::Value>,
}

/// Parses and validates an AsyncAPI document and derives its event catalog.
///
/// `format` `None` detects it: JSON when the text parses as a JSON object, YAML otherwise. Size
/// limits are the caller's ([`DEFAULT_MAX_SPEC_BYTES`]); this function bounds nesting and the
/// expansion of YAML aliases and `$ref`s itself, so hostile input gets an error, never a panic.
pub fn parse(data: &str, format: Option<SpecFormat>) -> Result<Spec, SpecError> {
    let decoded = text::decode(data, format)?;
    let root = &decoded.root;
    let header = header::read(root)?;
    if let Some((path, reference)) = bundle::external_ref(root) {
        return Err(SpecError::new(path, bundle::unbundled_ref(&reference)));
    }
    let budget = decoded
        .values
        .saturating_mul(4)
        .saturating_add(EXPANSION_ALLOWANCE);
    let mut resolver = Resolver::new(root, budget);
    let channels = match header.major {
        Major::V2 => catalog::v2::channels(&resolver, root)?,
        Major::V3 => catalog::v3::channels(&resolver, root)?,
    };
    security::check(&resolver, root, header.major)?;
    let default_content_type = catalog::optional_text(root, "", "defaultContentType")?;
    let events = catalog::build(
        &mut resolver,
        channels,
        &header.info_version,
        default_content_type,
    )?;
    Ok(Spec {
        format: decoded.format,
        asyncapi_version: header.asyncapi_version,
        title: header.title,
        info_version: header.info_version,
        events,
        document: root.to_json(),
    })
}

/// [`parse`] for raw bytes, as fetched or uploaded: they must be UTF-8 (a leading byte-order
/// mark is fine).
pub fn parse_bytes(data: &[u8], format: Option<SpecFormat>) -> Result<Spec, SpecError> {
    if data.starts_with(&[0xFF, 0xFE]) || data.starts_with(&[0xFE, 0xFF]) {
        return Err(SpecError::document(
            "the document is UTF-16 encoded: send it as UTF-8",
        ));
    }
    let text = std::str::from_utf8(data).map_err(|e| {
        SpecError::document(format!(
            "the document is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    parse(text, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_display_and_serialize_in_capitals() -> Result<(), serde_json::Error> {
        assert_eq!(SpecFormat::Json.to_string(), "JSON");
        assert_eq!(serde_json::to_string(&SpecFormat::Yaml)?, "\"YAML\"");
        assert_eq!(
            serde_json::from_str::<SpecFormat>("\"JSON\"")?,
            SpecFormat::Json
        );
        assert_eq!("yaml".parse::<SpecFormat>().ok(), Some(SpecFormat::Yaml));
        assert!("xml".parse::<SpecFormat>().is_err());
        Ok(())
    }

    #[test]
    fn bytes_must_be_utf8() {
        let err = parse_bytes(b"asyncapi: \xff", None).unwrap_err();
        assert_eq!(
            err.message,
            "the document is not valid UTF-8 (invalid byte at offset 10)"
        );
        let err = parse_bytes(b"\xff\xfea\x00", None).unwrap_err();
        assert!(err.message.contains("UTF-16"), "{err}");
    }
}
