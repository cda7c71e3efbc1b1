//! The subscriptions API's request body, checked into [`SubscriptionInput`].
//!
//! ```json
//! {
//!   "name": "orders to billing",
//!   "sink": {
//!     "url": "https://billing.example/hooks",
//!     "auth": {"bearer": {"token": "s3cr3t"}},
//!     "headers": {"X-Team": "billing"}
//!   },
//!   "filter": {"application": "shop", "typePrefix": "order."},
//!   "delivery": {"retry": 5, "backoffPolicy": "linear", "backoffDelay": "PT10S",
//!                "maxBackoff": "PT10M", "timeout": "PT15S",
//!                "deadLetterSink": {"url": "https://billing.example/dead"}},
//!   "signing": {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
//! }
//! ```
//!
//! [`SubscriptionInput::parse`] reports every problem at once, each with the path of its field
//! (`sink.url`, `delivery.backoffDelay`, `filter.types[2]`, `sink.headers.X-Team`), as one
//! `422 UNPROCESSABLE_ENTITY`. Wrong JSON types, missing required fields, unknown fields and
//! invalid values are all reported that way; only a body that is not a JSON object at all is a
//! `400 BAD_REQUEST` (field `body`), like a body that is not JSON. A `null` optional field counts
//! as absent.

use std::collections::{BTreeMap, BTreeSet};

use eventplane_core::{Error, FieldError};
use eventplane_outbound::url::http_host;
use serde_json::{Map, Value};

use crate::duration::{format_duration, parse_duration_ms};
use crate::filter::Filter;
use crate::model::{
    BackoffPolicy, DEFAULT_BACKOFF_DELAY_MS, DEFAULT_MAX_BACKOFF_MS, DEFAULT_RETRY,
    DEFAULT_TIMEOUT_MS, DeadLetterSink, Delivery, MAX_MAX_BACKOFF_MS, MAX_RETRY, MAX_TIMEOUT_MS,
    SECRET_MASK, Sink, SinkAuth,
};
use crate::signing::SigningSecret;

/// The longest subscription name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// The most custom sink headers.
pub const MAX_HEADERS: usize = 20;
/// The longest URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// The most entries of `filter.types`.
pub const MAX_FILTER_TYPES: usize = 100;
/// The most entries of `filter.attributes`.
pub const MAX_FILTER_ATTRIBUTES: usize = 20;
/// The longest filter value (a type, prefix, suffix, source or attribute value), in characters.
pub const MAX_FILTER_TEXT_CHARS: usize = 1024;
/// The longest header value, user name, client id or scope, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;
/// The longest pause reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Header names a subscription may not set, because the dispatcher sets them (or HTTP does):
/// these, and every name starting with `ce-` or `webhook-`.
pub const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "content-length",
    "content-type",
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Prefixes of header names a subscription may not set (CloudEvents binary-mode attributes and
/// the Standard Webhooks headers).
pub const RESERVED_HEADER_PREFIXES: &[&str] = &["ce-", "webhook-"];

/// CloudEvents context attributes that are not extensions: `filter.attributes` may not name
/// them (use `types`, `typePrefix`, `typeSuffix` or `source`).
const CORE_ATTRIBUTES: &[&str] = &[
    "data",
    "data_base64",
    "datacontenttype",
    "dataschema",
    "id",
    "source",
    "specversion",
    "subject",
    "time",
    "type",
];

/// Fields of the view that a request may not set.
const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "pausedReason",
    "createdAt",
    "updatedAt",
    "version",
];

/// A checked subscriptions request body: everything a create or a full replacement needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInput {
    /// The name (1 to [`MAX_NAME_CHARS`] characters, not blank).
    pub name: String,
    /// Where events go.
    pub sink: Sink,
    /// Which events (at least one criterion).
    pub filter: Filter,
    /// How they are delivered, defaults filled in.
    pub delivery: Delivery,
    /// The signing secret given, if any (`None`: generate one on create, keep the current one
    /// on replace).
    pub signing_secret: Option<SigningSecret>,
}

impl SubscriptionInput {
    /// Checks a request body. Every problem is reported, with its field's path, in one
    /// `422 UNPROCESSABLE_ENTITY`; a body that is not a JSON object is a `400 BAD_REQUEST`.
    pub fn parse(body: &Value) -> Result<Self, Error> {
        let Value::Object(map) = body else {
            return Err(Error::invalid("body", "must be a JSON object"));
        };
        let mut p = Problems::default();
        for key in map.keys() {
            if READ_ONLY.contains(&key.as_str()) {
                p.add(key, "is read-only; leave it out");
            } else if !["name", "sink", "filter", "delivery", "signing"].contains(&key.as_str()) {
                p.unknown(key, &["name", "sink", "filter", "delivery", "signing"]);
            }
        }
        let name = match present(map, "name") {
            None => p.missing("name"),
            Some(value) => p.string(value, "name").and_then(|name| {
                check_name(name)
                    .map_err(|message| p.add("name", message))
                    .ok()
            }),
        };
        let sink = match present(map, "sink") {
            None => p.missing("sink"),
            Some(value) => parse_sink(value, &mut p),
        };
        let filter = match present(map, "filter") {
            None => {
                p.add(
                    "filter",
                    format!(
                        "is required; give at least one of {}",
                        FILTER_FIELDS.join(", ")
                    ),
                );
                None
            }
            Some(value) => parse_filter(value, &mut p),
        };
        let delivery = match present(map, "delivery") {
            None => Some(Delivery::default()),
            Some(value) => parse_delivery(value, &mut p),
        };
        let signing_secret = match present(map, "signing") {
            None => Some(None),
            Some(value) => parse_signing(value, &mut p),
        };
        match (name, sink, filter, delivery, signing_secret) {
            (Some(name), Some(sink), Some(filter), Some(delivery), Some(signing_secret))
                if p.0.is_empty() =>
            {
                Ok(Self {
                    name,
                    sink,
                    filter,
                    delivery,
                    signing_secret,
                })
            }
            _ => Err(p.into_error("subscription")),
        }
    }
}

/// Reads the body of a pause request: `{"reason": "…"}` (the reason optional, `null` counting
/// as absent). The reason is checked by [`check_reason`] when the pause is made. A body that is
/// not a JSON object is a `400 BAD_REQUEST`; an unknown field or a reason that is not a string
/// is a `422 UNPROCESSABLE_ENTITY`.
pub fn parse_pause(body: &Value) -> Result<Option<String>, Error> {
    let Value::Object(map) = body else {
        return Err(Error::invalid("body", "must be a JSON object"));
    };
    let mut p = Problems::default();
    p.object(body, "", &["reason"]);
    let reason = match present(map, "reason") {
        None => None,
        Some(value) => p.string(value, "reason").map(str::to_owned),
    };
    if p.0.is_empty() {
        Ok(reason)
    } else {
        Err(p.into_error("pause request"))
    }
}

/// Checks a pause reason given to the API (at most [`MAX_REASON_CHARS`] characters, no
/// control characters); blank counts as none.
pub fn check_reason(reason: Option<String>) -> Result<Option<String>, Error> {
    let Some(reason) = reason.filter(|reason| !reason.trim().is_empty()) else {
        return Ok(None);
    };
    let problem = if reason.chars().count() > MAX_REASON_CHARS {
        Some(format!("must be at most {MAX_REASON_CHARS} characters"))
    } else if reason.chars().any(char::is_control) {
        Some("must not contain control characters".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::unprocessable(
            format!("invalid reason: {problem}"),
            vec![FieldError::new("reason", problem)],
        )),
        None => Ok(Some(reason)),
    }
}

/// The problems found so far.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Records that a required field is missing; always `None`.
    fn missing<T>(&mut self, field: &str) -> Option<T> {
        self.add(field, "is required");
        None
    }

    fn unknown(&mut self, field: &str, known: &[&str]) {
        self.add(
            field,
            format!("unknown field; expected one of: {}", known.join(", ")),
        );
    }

    fn string<'a>(&mut self, value: &'a Value, field: &str) -> Option<&'a str> {
        match value {
            Value::String(text) => Some(text),
            other => {
                self.add(field, format!("must be a string, not {}", kind(other)));
                None
            }
        }
    }

    /// `value` as an object whose keys are all in `known` (reporting the others).
    fn object<'a>(
        &mut self,
        value: &'a Value,
        field: &str,
        known: &[&str],
    ) -> Option<&'a Map<String, Value>> {
        let Value::Object(map) = value else {
            self.add(field, format!("must be an object, not {}", kind(value)));
            return None;
        };
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                self.unknown(&join(field, key), known);
            }
        }
        Some(map)
    }

    /// A required string field of `map` checked by `check`.
    fn required_text(
        &mut self,
        map: &Map<String, Value>,
        parent: &str,
        key: &str,
        check: impl FnOnce(&str) -> Result<(), String>,
    ) -> Option<String> {
        let field = join(parent, key);
        match present(map, key) {
            None => self.missing(&field),
            Some(value) => self
                .string(value, &field)
                .and_then(|text| match check(text) {
                    Ok(()) => Some(text.to_owned()),
                    Err(message) => {
                        self.add(&field, message);
                        None
                    }
                }),
        }
    }

    /// An optional string field of `map` checked by `check`: `Some(None)` if absent, `None`
    /// if invalid.
    fn optional_text(
        &mut self,
        map: &Map<String, Value>,
        parent: &str,
        key: &str,
        check: impl FnOnce(&str) -> Result<(), String>,
    ) -> Option<Option<String>> {
        match present(map, key) {
            None => Some(None),
            Some(_) => self.required_text(map, parent, key, check).map(Some),
        }
    }

    /// An optional ISO 8601 duration field of `map`, in milliseconds (`default` if absent):
    /// longer than zero, and at most `max` if given.
    fn duration(
        &mut self,
        map: &Map<String, Value>,
        parent: &str,
        key: &str,
        default: u64,
        max: Option<u64>,
    ) -> Option<u64> {
        let field = join(parent, key);
        let Some(value) = present(map, key) else {
            return Some(default);
        };
        let text = self.string(value, &field)?;
        let problem = match parse_duration_ms(text) {
            Err(err) => err.message().to_owned(),
            Ok(0) => "must be longer than zero".to_owned(),
            Ok(ms) => match max {
                Some(max) if ms > max => format!("must be at most {}", format_duration(max)),
                _ => return Some(ms),
            },
        };
        self.add(&field, problem);
        None
    }

    /// The `422` reporting every problem found in a `what` (`subscription`).
    fn into_error(self, what: &str) -> Error {
        let message = match self.0.as_slice() {
            [only] => format!("invalid {what}: {}: {}", only.field, only.message),
            [] => format!("invalid {what}"),
            problems => format!("invalid {what}: {} problems", problems.len()),
        };
        Error::unprocessable(message, self.0)
    }
}

/// The value of `key` in `map`, `None` if absent or `null`.
fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|value| !value.is_null())
}

/// `parent.key` (or `key` at the top).
fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// The JSON type of `value`, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_name(name: &str) -> Result<String, String> {
    if name.trim().is_empty() {
        return Err("must not be blank".to_owned());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("must be at most {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(name.to_owned())
}

// ---- sink -----------------------------------------------------------------------------------

fn parse_sink(value: &Value, p: &mut Problems) -> Option<Sink> {
    let map = p.object(value, "sink", &["url", "auth", "headers"])?;
    let url = p.required_text(map, "sink", "url", check_url);
    let auth = match present(map, "auth") {
        None => Some(None),
        Some(value) => parse_auth(value, "sink.auth", p).map(Some),
    };
    let headers = match present(map, "headers") {
        None => Some(BTreeMap::new()),
        Some(value) => parse_headers(value, p),
    };
    Some(Sink {
        url: url?,
        auth: auth?,
        headers: headers?,
    })
}

/// An absolute `http` or `https` URL with a host, no whitespace or control characters, at
/// most [`MAX_URL_BYTES`] long. Hosts of Spin's service chaining (`*.spin.internal`) are
/// refused, so that a subscription cannot make the dispatcher call the application's own
/// components.
pub fn check_url(url: &str) -> Result<(), String> {
    let host = http_host(url, MAX_URL_BYTES).map_err(|problem| problem.to_string())?;
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "spin.internal" || host.ends_with(".spin.internal") {
        return Err("must not name an internal Spin service (*.spin.internal)".to_owned());
    }
    Ok(())
}

const AUTH_KINDS: &[&str] = &["basic", "bearer", "oauth2"];

fn parse_auth(value: &Value, field: &str, p: &mut Problems) -> Option<SinkAuth> {
    let map = p.object(value, field, AUTH_KINDS)?;
    let given: Vec<&str> = AUTH_KINDS
        .iter()
        .copied()
        .filter(|kind| map.contains_key(*kind))
        .collect();
    let [kind] = given.as_slice() else {
        p.add(
            field,
            format!(
                "must have exactly one of: {}; it has {}",
                AUTH_KINDS.join(", "),
                if given.is_empty() {
                    "none".to_owned()
                } else {
                    given.join(", ")
                }
            ),
        );
        return None;
    };
    let field = join(field, kind);
    let value = map.get(*kind).unwrap_or(&Value::Null);
    match *kind {
        "basic" => {
            let map = p.object(value, &field, &["username", "password"])?;
            let username = p.required_text(map, &field, "username", |username| {
                check_text(username, true)?;
                if username.contains(':') {
                    return Err("must not contain `:`".to_owned());
                }
                Ok(())
            });
            let password = p.required_text(map, &field, "password", check_secret);
            Some(SinkAuth::Basic {
                username: username?,
                password: password?,
            })
        }
        "bearer" => {
            let map = p.object(value, &field, &["token"])?;
            let token = p.required_text(map, &field, "token", |token| {
                check_secret(token)?;
                if !token.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err("must be printable ASCII without spaces".to_owned());
                }
                Ok(())
            });
            Some(SinkAuth::Bearer { token: token? })
        }
        _ => {
            let map = p.object(
                value,
                &field,
                &["tokenUrl", "clientId", "clientSecret", "scope"],
            )?;
            let token_url = p.required_text(map, &field, "tokenUrl", check_url);
            let client_id = p.required_text(map, &field, "clientId", |id| check_text(id, true));
            let client_secret = p.required_text(map, &field, "clientSecret", check_secret);
            let scope = p.optional_text(map, &field, "scope", |scope| check_text(scope, true));
            Some(SinkAuth::OAuth2 {
                token_url: token_url?,
                client_id: client_id?,
                client_secret: client_secret?,
                scope: scope?,
            })
        }
    }
}

/// Text of at most [`MAX_TEXT_BYTES`] without control characters (non-empty if `required`).
fn check_text(text: &str, required: bool) -> Result<(), String> {
    if required && text.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!("must be at most {MAX_TEXT_BYTES} bytes"));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(())
}

/// A secret: non-empty text, and not the mask a read shows instead of a secret.
fn check_secret(secret: &str) -> Result<(), String> {
    if secret == SECRET_MASK {
        return Err(format!(
            "{SECRET_MASK} is how a read shows a secret; send the secret itself"
        ));
    }
    check_text(secret, true)
}

fn parse_headers(value: &Value, p: &mut Problems) -> Option<BTreeMap<String, String>> {
    let Value::Object(map) = value else {
        p.add(
            "sink.headers",
            format!(
                "must be an object of header names to values, not {}",
                kind(value)
            ),
        );
        return None;
    };
    let before = p.0.len();
    if map.len() > MAX_HEADERS {
        p.add(
            "sink.headers",
            format!(
                "may have at most {MAX_HEADERS} headers; it has {}",
                map.len()
            ),
        );
    }
    let mut seen = BTreeSet::new();
    let mut headers = BTreeMap::new();
    for (name, value) in map {
        let field = format!("sink.headers.{name}");
        let lower = name.to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            p.add(&field, "is not a valid HTTP header name");
        } else if RESERVED_HEADERS.contains(&lower.as_str())
            || RESERVED_HEADER_PREFIXES
                .iter()
                .any(|prefix| lower.starts_with(prefix))
        {
            p.add(&field, "is reserved: the dispatcher sets this header");
        } else if !seen.insert(lower) {
            p.add(&field, "is given twice (header names ignore case)");
        }
        let Some(text) = p.string(value, &field) else {
            continue;
        };
        let valid_value = text.len() <= MAX_TEXT_BYTES
            && text.chars().all(|c| c == '\t' || !c.is_control())
            && text == text.trim_matches([' ', '\t']);
        if !valid_value {
            p.add(
                &field,
                format!(
                    "the value must be at most {MAX_TEXT_BYTES} bytes, without control characters \
                     or leading and trailing whitespace"
                ),
            );
        } else if text == SECRET_MASK {
            p.add(
                &field,
                format!("{SECRET_MASK} is how a read shows a header value; send the value itself"),
            );
        }
        headers.insert(name.clone(), text.to_owned());
    }
    (p.0.len() == before).then_some(headers)
}

/// A `tchar` of RFC 9110 §5.6.2.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

// ---- filter ---------------------------------------------------------------------------------

const FILTER_FIELDS: &[&str] = &[
    "application",
    "types",
    "typePrefix",
    "typeSuffix",
    "source",
    "attributes",
];

fn parse_filter(value: &Value, p: &mut Problems) -> Option<Filter> {
    let map = p.object(value, "filter", FILTER_FIELDS)?;
    let before = p.0.len();
    let application = p.optional_text(map, "filter", "application", check_application);
    let types = match present(map, "types") {
        None => Some(Vec::new()),
        Some(value) => parse_types(value, p),
    };
    let type_prefix = p.optional_text(map, "filter", "typePrefix", check_filter_text);
    let type_suffix = p.optional_text(map, "filter", "typeSuffix", check_filter_text);
    let source = p.optional_text(map, "filter", "source", check_filter_text);
    let attributes = match present(map, "attributes") {
        None => Some(BTreeMap::new()),
        Some(value) => parse_attributes(value, p),
    };
    let filter = Filter {
        application: application?,
        types: types?,
        type_prefix: type_prefix?,
        type_suffix: type_suffix?,
        source: source?,
        attributes: attributes?,
    };
    if filter.is_empty() {
        if p.0.len() == before {
            p.add(
                "filter",
                format!("must have at least one of: {}", FILTER_FIELDS.join(", ")),
            );
        }
        return None;
    }
    Some(filter)
}

/// An application name as the registry allows it: a DNS label (1 to 63 lowercase letters,
/// digits and `-`, starting and ending with a letter or digit).
fn check_application(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let valid = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum);
    if valid {
        Ok(())
    } else {
        Err(
            "must be an application name: 1 to 63 lowercase letters, digits and `-`, starting \
             and ending with a letter or digit"
                .to_owned(),
        )
    }
}

/// Non-empty text of at most [`MAX_FILTER_TEXT_CHARS`] characters without control characters.
fn check_filter_text(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if text.chars().count() > MAX_FILTER_TEXT_CHARS {
        return Err(format!(
            "must be at most {MAX_FILTER_TEXT_CHARS} characters"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(())
}

fn parse_types(value: &Value, p: &mut Problems) -> Option<Vec<String>> {
    let Value::Array(items) = value else {
        p.add(
            "filter.types",
            format!("must be an array of event types, not {}", kind(value)),
        );
        return None;
    };
    if items.is_empty() || items.len() > MAX_FILTER_TYPES {
        p.add(
            "filter.types",
            format!("must list 1 to {MAX_FILTER_TYPES} event types (leave it out for any type)"),
        );
        return None;
    }
    let mut types = Vec::with_capacity(items.len());
    let mut valid = true;
    for (index, item) in items.iter().enumerate() {
        let field = format!("filter.types[{index}]");
        match p.string(item, &field).map(|t| (t, check_filter_text(t))) {
            Some((text, Ok(()))) => {
                if !types.iter().any(|t: &String| t == text) {
                    types.push(text.to_owned());
                }
            }
            Some((_, Err(message))) => {
                p.add(&field, message);
                valid = false;
            }
            None => valid = false,
        }
    }
    valid.then_some(types)
}

fn parse_attributes(value: &Value, p: &mut Problems) -> Option<BTreeMap<String, String>> {
    let Value::Object(map) = value else {
        p.add(
            "filter.attributes",
            format!(
                "must be an object of extension attribute names to values, not {}",
                kind(value)
            ),
        );
        return None;
    };
    if map.is_empty() || map.len() > MAX_FILTER_ATTRIBUTES {
        p.add(
            "filter.attributes",
            format!("must have 1 to {MAX_FILTER_ATTRIBUTES} attributes (leave it out for none)"),
        );
        return None;
    }
    let before = p.0.len();
    let mut attributes = BTreeMap::new();
    for (name, value) in map {
        let field = format!("filter.attributes.{name}");
        let valid_name = !name.is_empty()
            && name.len() <= 20
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid_name {
            p.add(
                &field,
                "is not a CloudEvents extension attribute name (1 to 20 lowercase letters and \
                 digits)",
            );
        } else if CORE_ATTRIBUTES.contains(&name.as_str()) {
            p.add(
                &field,
                "is a CloudEvents context attribute, not an extension; filter it with types, \
                 typePrefix, typeSuffix or source",
            );
        }
        let Some(text) = p.string(value, &field) else {
            continue;
        };
        if text.chars().count() > MAX_FILTER_TEXT_CHARS || text.chars().any(char::is_control) {
            p.add(
                &field,
                format!(
                    "the value must be at most {MAX_FILTER_TEXT_CHARS} characters, without \
                     control characters"
                ),
            );
        }
        attributes.insert(name.clone(), text.to_owned());
    }
    (p.0.len() == before).then_some(attributes)
}

// ---- delivery -------------------------------------------------------------------------------

fn parse_delivery(value: &Value, p: &mut Problems) -> Option<Delivery> {
    let map = p.object(
        value,
        "delivery",
        &[
            "retry",
            "backoffPolicy",
            "backoffDelay",
            "maxBackoff",
            "timeout",
            "deadLetterSink",
        ],
    )?;
    let retry = match present(map, "retry") {
        None => Some(DEFAULT_RETRY),
        Some(value) => match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n <= MAX_RETRY => Some(n),
            _ => {
                p.add(
                    "delivery.retry",
                    format!("must be a whole number from 0 to {MAX_RETRY}"),
                );
                None
            }
        },
    };
    let backoff_policy = match present(map, "backoffPolicy") {
        None => Some(BackoffPolicy::default()),
        Some(value) => match value.as_str() {
            Some("exponential") => Some(BackoffPolicy::Exponential),
            Some("linear") => Some(BackoffPolicy::Linear),
            _ => {
                p.add(
                    "delivery.backoffPolicy",
                    "must be \"exponential\" or \"linear\"",
                );
                None
            }
        },
    };
    let backoff_delay = p.duration(
        map,
        "delivery",
        "backoffDelay",
        DEFAULT_BACKOFF_DELAY_MS,
        None,
    );
    let max_backoff = p.duration(
        map,
        "delivery",
        "maxBackoff",
        DEFAULT_MAX_BACKOFF_MS,
        Some(MAX_MAX_BACKOFF_MS),
    );
    let timeout = p.duration(
        map,
        "delivery",
        "timeout",
        DEFAULT_TIMEOUT_MS,
        Some(MAX_TIMEOUT_MS),
    );
    let mut in_order = true;
    if let (Some(delay), Some(max)) = (backoff_delay, max_backoff)
        && delay > max
    {
        p.add(
            "delivery.backoffDelay",
            format!(
                "must not exceed maxBackoff ({}); it is {}",
                format_duration(max),
                format_duration(delay)
            ),
        );
        in_order = false;
    }
    let dead_letter_sink = match present(map, "deadLetterSink") {
        None => Some(None),
        Some(value) => parse_dead_letter_sink(value, p).map(Some),
    };
    if !in_order {
        return None;
    }
    Some(Delivery {
        retry: retry?,
        backoff_policy: backoff_policy?,
        backoff_delay_ms: backoff_delay?,
        max_backoff_ms: max_backoff?,
        timeout_ms: timeout?,
        dead_letter_sink: dead_letter_sink?,
    })
}

fn parse_dead_letter_sink(value: &Value, p: &mut Problems) -> Option<DeadLetterSink> {
    let field = "delivery.deadLetterSink";
    let map = p.object(value, field, &["url", "auth"])?;
    let url = p.required_text(map, field, "url", check_url);
    let auth = match present(map, "auth") {
        None => Some(None),
        Some(value) => parse_auth(value, &join(field, "auth"), p).map(Some),
    };
    Some(DeadLetterSink {
        url: url?,
        auth: auth?,
    })
}

// ---- signing --------------------------------------------------------------------------------

/// `Some(secret or None)` if valid, `None` if not.
fn parse_signing(value: &Value, p: &mut Problems) -> Option<Option<SigningSecret>> {
    let Value::Object(map) = value else {
        p.add("signing", format!("must be an object, not {}", kind(value)));
        return None;
    };
    let mut valid = true;
    for key in map.keys() {
        if key == "secretSet" {
            p.add("signing.secretSet", "is read-only; leave it out");
            valid = false;
        } else if key != "secret" {
            p.unknown(&join("signing", key), &["secret"]);
            valid = false;
        }
    }
    let secret = match present(map, "secret") {
        None => Some(None),
        Some(value) => p.string(value, "signing.secret").and_then(|text| {
            SigningSecret::parse(text)
                .map(Some)
                .map_err(|message| p.add("signing.secret", message))
                .ok()
        }),
    };
    if valid { secret } else { None }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn minimal() -> Value {
        json!({
            "name": "orders",
            "sink": {"url": "https://billing.example/hooks"},
            "filter": {"application": "shop"},
        })
    }

    /// The field paths of the problems `body` has, asserting a 422.
    fn problems(body: &Value) -> Vec<(String, String)> {
        match SubscriptionInput::parse(body) {
            Ok(input) => panic!("accepted: {input:?}"),
            Err(err) => {
                assert_eq!(err.status(), 422, "{err}");
                assert_eq!(err.code(), "UNPROCESSABLE_ENTITY");
                err.details()
                    .iter()
                    .map(|d| (d.field.clone(), d.message.clone()))
                    .collect()
            }
        }
    }

    fn fields(body: &Value) -> Vec<String> {
        problems(body).into_iter().map(|(field, _)| field).collect()
    }

    /// `minimal()` with `pointer`'s value replaced by `value`.
    fn with(pointer: &str, value: Value) -> Value {
        let mut body = minimal();
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        let mut target = &mut body;
        for segment in parent.split('/').filter(|s| !s.is_empty()) {
            target = target
                .as_object_mut()
                .expect("object")
                .entry(segment)
                .or_insert_with(|| json!({}));
        }
        target
            .as_object_mut()
            .expect("object")
            .insert(key.to_owned(), value);
        body
    }

    #[test]
    fn a_minimal_body_gets_every_default() -> Result<(), Error> {
        let input = SubscriptionInput::parse(&minimal())?;
        assert_eq!(input.name, "orders");
        assert_eq!(input.sink.url, "https://billing.example/hooks");
        assert_eq!(input.sink.auth, None);
        assert!(input.sink.headers.is_empty());
        assert_eq!(input.filter.application.as_deref(), Some("shop"));
        assert_eq!(input.delivery, Delivery::default());
        assert_eq!(
            (
                input.delivery.retry,
                input.delivery.backoff_delay_ms,
                input.delivery.max_backoff_ms,
                input.delivery.timeout_ms
            ),
            (10, 5_000, 3_600_000, 30_000)
        );
        assert_eq!(input.delivery.backoff_policy, BackoffPolicy::Exponential);
        assert_eq!(input.signing_secret, None);
        Ok(())
    }

    #[test]
    fn a_full_body_is_read() -> Result<(), Error> {
        let body = crate::tests::full_body();
        let input = SubscriptionInput::parse(&body)?;
        assert_eq!(
            input.sink.auth,
            Some(SinkAuth::OAuth2 {
                token_url: "https://auth.example/token".into(),
                client_id: "client-1".into(),
                client_secret: "oauth-client-secret".into(),
                scope: Some("hooks".into()),
            })
        );
        assert_eq!(input.sink.headers.len(), 2);
        assert_eq!(input.filter.types, ["a", "b"]);
        assert_eq!(input.filter.attributes["region"], "eu");
        assert_eq!(
            input.delivery,
            Delivery {
                retry: 0,
                backoff_policy: BackoffPolicy::Linear,
                backoff_delay_ms: 500,
                max_backoff_ms: 86_400_000,
                timeout_ms: 120_000,
                dead_letter_sink: Some(DeadLetterSink {
                    url: "http://dead.example:8080/x".into(),
                    auth: Some(SinkAuth::Basic {
                        username: "dl-user".into(),
                        password: "dl-password".into(),
                    }),
                }),
            }
        );
        assert_eq!(
            input.signing_secret.as_ref().map(SigningSecret::expose),
            Some(crate::tests::SECRET)
        );
        Ok(())
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let body = json!({
            "sink": {"url": "ftp://x", "extra": 1},
            "filter": {},
            "delivery": {"retry": 101, "backoffDelay": "P1M", "timeout": "PT3M",
                         "backoffPolicy": "random"},
            "colour": "blue",
        });
        assert_eq!(
            fields(&body),
            [
                "colour",
                "name",
                "sink.extra",
                "sink.url",
                "filter",
                "delivery.retry",
                "delivery.backoffPolicy",
                "delivery.backoffDelay",
                "delivery.timeout",
            ]
        );
        let err = SubscriptionInput::parse(&body).expect_err("invalid");
        assert_eq!(err.public_message(), "invalid subscription: 9 problems");
        let err = SubscriptionInput::parse(&with("/name", json!(""))).expect_err("blank");
        assert_eq!(
            err.public_message(),
            "invalid subscription: name: must not be blank"
        );
    }

    #[test]
    fn unknown_and_read_only_fields_are_named() {
        let mut body = minimal();
        body["id"] = json!("sub_x");
        body["status"] = json!("active");
        body["wat"] = json!(null);
        body["signing"] = json!({"secretSet": true, "rotate": true});
        body["filter"]["typeprefix"] = json!("x");
        body["delivery"] = json!({"retries": 3});
        let found = problems(&body);
        let found: Vec<(&str, &str)> = found
            .iter()
            .map(|(f, m)| (f.as_str(), m.as_str()))
            .collect();
        assert!(
            found.contains(&("id", "is read-only; leave it out")),
            "{found:?}"
        );
        assert!(found.contains(&("status", "is read-only; leave it out")));
        assert!(
            found
                .iter()
                .any(|(f, m)| *f == "wat" && m.starts_with("unknown field"))
        );
        assert!(found.contains(&("signing.secretSet", "is read-only; leave it out")));
        assert!(
            found
                .iter()
                .any(|(f, m)| *f == "signing.rotate" && m.contains("secret"))
        );
        assert!(
            found
                .iter()
                .any(|(f, m)| *f == "filter.typeprefix" && m.contains("typePrefix"))
        );
        assert!(found.iter().any(|(f, _)| *f == "delivery.retries"));
    }

    #[test]
    fn wrong_types_are_unprocessable_with_their_paths() {
        for (pointer, value, field, message) in [
            ("/name", json!(5), "name", "must be a string, not a number"),
            (
                "/sink",
                json!("https://x"),
                "sink",
                "must be an object, not a string",
            ),
            (
                "/sink/url",
                json!(["x"]),
                "sink.url",
                "must be a string, not an array",
            ),
            ("/filter", json!([]), "filter", "must be an object"),
            (
                "/filter/types",
                json!("a"),
                "filter.types",
                "must be an array",
            ),
            ("/delivery", json!(true), "delivery", "must be an object"),
            (
                "/delivery/retry",
                json!("3"),
                "delivery.retry",
                "whole number",
            ),
            (
                "/delivery/retry",
                json!(1.5),
                "delivery.retry",
                "whole number",
            ),
            (
                "/delivery/retry",
                json!(-1),
                "delivery.retry",
                "whole number",
            ),
            (
                "/delivery/timeout",
                json!(30),
                "delivery.timeout",
                "must be a string",
            ),
            ("/signing", json!("whsec_x"), "signing", "must be an object"),
            (
                "/signing/secret",
                json!(1),
                "signing.secret",
                "must be a string",
            ),
        ] {
            let found = problems(&with(pointer, value));
            assert!(
                found.iter().any(|(f, m)| f == field && m.contains(message)),
                "{pointer}: {found:?}"
            );
        }
    }

    #[test]
    fn a_body_that_is_not_an_object_is_a_bad_request() {
        for body in [json!([]), json!("x"), Value::Null, json!(1)] {
            let err = SubscriptionInput::parse(&body).expect_err("not an object");
            assert_eq!(err.status(), 400);
            assert_eq!(err.details()[0].field, "body");
        }
    }

    #[test]
    fn nulls_count_as_absent() -> Result<(), Error> {
        let mut body = minimal();
        body["delivery"] = Value::Null;
        body["signing"] = json!({"secret": null});
        body["sink"]["auth"] = Value::Null;
        let input = SubscriptionInput::parse(&body)?;
        assert_eq!(input.delivery, Delivery::default());
        assert_eq!(input.signing_secret, None);
        assert_eq!(fields(&with("/name", Value::Null)), ["name"]);
        Ok(())
    }

    /// Asserts that `body` has exactly one problem, at `field`, whose message contains
    /// `message`.
    fn one_problem(body: &Value, field: &str, message: &str) {
        let found = problems(body);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, field, "{found:?}");
        assert!(found[0].1.contains(message), "{found:?}");
    }

    #[test]
    fn names_are_checked() {
        assert!(SubscriptionInput::parse(&with("/name", json!("é".repeat(100)))).is_ok());
        for (name, message) in [
            (json!(""), "must not be blank"),
            (json!("   "), "must not be blank"),
            (json!("a".repeat(101)), "at most 100"),
            (json!("a\nb"), "control"),
        ] {
            one_problem(&with("/name", name), "name", message);
        }
    }

    #[test]
    fn sink_urls_must_be_absolute_http() {
        for good in [
            "http://x",
            "HTTPS://hooks.example:443/a?b=c#d",
            "http://user:pw@host/p",
            "http://[::1]:8080/x",
            "http://[::1]",
        ] {
            assert!(
                SubscriptionInput::parse(&with("/sink/url", json!(good))).is_ok(),
                "{good}"
            );
        }
        for (bad, message) in [
            ("", "absolute"),
            ("/hooks", "absolute"),
            ("hooks.example", "absolute"),
            ("ftp://x/y", "scheme must be http or https"),
            ("https:///path", "no host"),
            ("https://:80/", "no host"),
            ("http://x:99999/", "invalid port"),
            ("http://x:/", "invalid port"),
            ("http://x:+80/", "invalid port"),
            ("http://[::1/", "malformed host"),
            ("http://[::1]x/", "malformed host"),
            ("http://x y/", "whitespace"),
            ("http://x/\u{7f}", "control"),
            (
                "http://registry.spin.internal/graphql",
                "internal Spin service",
            ),
            ("http://Fetcher.Spin.Internal./", "internal Spin service"),
        ] {
            one_problem(&with("/sink/url", json!(bad)), "sink.url", message);
        }
        let long = format!("https://x/{}", "a".repeat(MAX_URL_BYTES));
        one_problem(&with("/sink/url", json!(long)), "sink.url", "at most");
        one_problem(&with("/sink/url", Value::Null), "sink.url", "is required");
    }

    #[test]
    fn sink_auth_has_exactly_one_kind() -> Result<(), Error> {
        let body = with(
            "/sink/auth",
            json!({"basic": {"username": "u", "password": "p"}}),
        );
        assert_eq!(
            SubscriptionInput::parse(&body)?.sink.auth,
            Some(SinkAuth::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        one_problem(&with("/sink/auth", json!({})), "sink.auth", "it has none");
        one_problem(
            &with(
                "/sink/auth",
                json!({"basic": {"username": "u", "password": "p"}, "bearer": {"token": "t"}}),
            ),
            "sink.auth",
            "it has basic, bearer",
        );
        let found = problems(&with("/sink/auth", json!({"digest": {}})));
        assert_eq!(found[0].0, "sink.auth.digest");
        assert!(found[0].1.contains("basic, bearer, oauth2"));
        assert_eq!(found[1].0, "sink.auth");
        Ok(())
    }

    #[test]
    fn sink_auth_fields_are_checked() {
        for (auth, field, message) in [
            (
                json!({"basic": {"password": "p"}}),
                "sink.auth.basic.username",
                "is required",
            ),
            (
                json!({"basic": {"username": "a:b", "password": "p"}}),
                "sink.auth.basic.username",
                "`:`",
            ),
            (
                json!({"basic": {"username": "u", "password": ""}}),
                "sink.auth.basic.password",
                "must not be empty",
            ),
            (
                json!({"basic": {"username": "u", "password": "********"}}),
                "sink.auth.basic.password",
                "send the secret itself",
            ),
            (
                json!({"basic": {"username": "u", "password": "p", "realm": "x"}}),
                "sink.auth.basic.realm",
                "unknown field",
            ),
            (
                json!({"basic": "u:p"}),
                "sink.auth.basic",
                "must be an object",
            ),
            (
                json!({"bearer": {"token": "a b"}}),
                "sink.auth.bearer.token",
                "printable",
            ),
            (
                json!({"bearer": {"token": 5}}),
                "sink.auth.bearer.token",
                "must be a string",
            ),
            (
                json!({"oauth2": {"tokenUrl": "x", "clientId": "c", "clientSecret": "s"}}),
                "sink.auth.oauth2.tokenUrl",
                "absolute",
            ),
            (
                json!({"oauth2": {"tokenUrl": "https://t", "clientSecret": "s"}}),
                "sink.auth.oauth2.clientId",
                "is required",
            ),
            (
                json!({"oauth2": {"tokenUrl": "https://t", "clientId": "c", "clientSecret": "s",
                                  "scope": ""}}),
                "sink.auth.oauth2.scope",
                "must not be empty",
            ),
        ] {
            one_problem(&with("/sink/auth", auth), field, message);
        }
    }

    #[test]
    fn sink_headers_are_checked() -> Result<(), Error> {
        let body = with(
            "/sink/headers",
            json!({"X-Team": "billing", "Accept": "*/*"}),
        );
        assert_eq!(SubscriptionInput::parse(&body)?.sink.headers.len(), 2);
        for (name, value, message) in [
            ("Content-Type", json!("text/plain"), "reserved"),
            ("AUTHORIZATION", json!("Bearer x"), "reserved"),
            ("host", json!("x"), "reserved"),
            ("Content-Length", json!("1"), "reserved"),
            ("Transfer-Encoding", json!("chunked"), "reserved"),
            ("ce-type", json!("x"), "reserved"),
            ("Webhook-Signature", json!("x"), "reserved"),
            ("X Team", json!("x"), "not a valid HTTP header name"),
            ("X-Tëam", json!("x"), "not a valid HTTP header name"),
            ("", json!("x"), "not a valid HTTP header name"),
            ("X-Team", json!(1), "must be a string"),
            ("X-Team", json!("a\r\nInjected: yes"), "control characters"),
            ("X-Team", json!(" padded"), "whitespace"),
            ("X-Team", json!("********"), "send the value itself"),
        ] {
            one_problem(
                &with("/sink/headers", json!({ name: value })),
                &format!("sink.headers.{name}"),
                message,
            );
        }
        one_problem(
            &with("/sink/headers", json!({"X-A": "1", "x-a": "2"})),
            "sink.headers.x-a",
            "twice",
        );
        let many: Map<String, Value> = (0..=MAX_HEADERS)
            .map(|i| (format!("X-H{i}"), json!("v")))
            .collect();
        one_problem(
            &with("/sink/headers", Value::Object(many)),
            "sink.headers",
            "at most 20",
        );
        one_problem(
            &with("/sink/headers", json!(["X-A: 1"])),
            "sink.headers",
            "must be an object",
        );
        Ok(())
    }

    #[test]
    fn each_filter_criterion_is_read_and_checked() -> Result<(), Error> {
        for filter in [
            json!({"application": "shop-2"}),
            json!({"types": ["order.created.v1"]}),
            json!({"typePrefix": "order."}),
            json!({"typeSuffix": ".v1"}),
            json!({"source": "/applications/shop"}),
            json!({"attributes": {"region": "eu"}}),
        ] {
            let input = SubscriptionInput::parse(&with("/filter", filter.clone()))?;
            assert_eq!(serde_json::to_value(&input.filter).ok(), Some(filter));
        }
        for (filter, field, message) in [
            (json!({}), "filter", "at least one of"),
            (json!({"source": null}), "filter", "at least one of"),
            (
                json!({"application": "Shop"}),
                "filter.application",
                "lowercase",
            ),
            (
                json!({"application": "-shop"}),
                "filter.application",
                "application name",
            ),
            (json!({"types": []}), "filter.types", "1 to 100"),
            (
                json!({"types": ["a", ""]}),
                "filter.types[1]",
                "must not be empty",
            ),
            (
                json!({"types": ["a", 7]}),
                "filter.types[1]",
                "must be a string",
            ),
            (
                json!({"typePrefix": ""}),
                "filter.typePrefix",
                "must not be empty",
            ),
            (
                json!({"typeSuffix": "\u{0}"}),
                "filter.typeSuffix",
                "control",
            ),
            (json!({"attributes": {}}), "filter.attributes", "1 to 20"),
            (
                json!({"attributes": {"Region": "eu"}}),
                "filter.attributes.Region",
                "lowercase",
            ),
            (
                json!({"attributes": {"type": "x"}}),
                "filter.attributes.type",
                "context attribute",
            ),
            (
                json!({"attributes": {"region": 5}}),
                "filter.attributes.region",
                "must be a string",
            ),
            (
                json!({"attributes": "region=eu"}),
                "filter.attributes",
                "must be an object",
            ),
        ] {
            one_problem(&with("/filter", filter.clone()), field, message);
        }
        let types: Vec<String> = (0..=MAX_FILTER_TYPES).map(|i| format!("t{i}")).collect();
        one_problem(
            &with("/filter/types", json!(types)),
            "filter.types",
            "1 to 100",
        );
        one_problem(
            &json!({"name": "n", "sink": {"url": "http://x"}}),
            "filter",
            "is required",
        );
        Ok(())
    }

    #[test]
    fn delivery_settings_are_checked() -> Result<(), Error> {
        let input = SubscriptionInput::parse(&with("/delivery", json!({"retry": 100})))?;
        assert_eq!(input.delivery.retry, 100);
        let input = SubscriptionInput::parse(&with(
            "/delivery",
            json!({"backoffDelay": "PT1H", "maxBackoff": "PT1H"}),
        ))?;
        assert_eq!(
            input.delivery.backoff_delay_ms,
            input.delivery.max_backoff_ms
        );
        for (delivery, field, message) in [
            (json!({"retry": 101}), "delivery.retry", "0 to 100"),
            (
                json!({"retry": 4294967297u64}),
                "delivery.retry",
                "0 to 100",
            ),
            (
                json!({"backoffPolicy": "Linear"}),
                "delivery.backoffPolicy",
                "\"linear\"",
            ),
            (
                json!({"backoffDelay": "5s"}),
                "delivery.backoffDelay",
                "ISO 8601",
            ),
            (
                json!({"backoffDelay": "P1W"}),
                "delivery.backoffDelay",
                "weeks",
            ),
            (
                json!({"backoffDelay": "PT0S"}),
                "delivery.backoffDelay",
                "longer than zero",
            ),
            (
                json!({"backoffDelay": "PT2H"}),
                "delivery.backoffDelay",
                "must not exceed maxBackoff (PT1H)",
            ),
            (
                json!({"maxBackoff": "P2D"}),
                "delivery.maxBackoff",
                "at most P1D",
            ),
            (
                json!({"maxBackoff": "PT1S"}),
                "delivery.backoffDelay",
                "must not exceed maxBackoff (PT1S)",
            ),
            (
                json!({"timeout": "PT2M0.001S"}),
                "delivery.timeout",
                "at most PT2M",
            ),
            (
                json!({"timeout": "PT0S"}),
                "delivery.timeout",
                "longer than zero",
            ),
            (
                json!({"deadLetterSink": {}}),
                "delivery.deadLetterSink.url",
                "is required",
            ),
            (
                json!({"deadLetterSink": {"url": "http://d", "headers": {}}}),
                "delivery.deadLetterSink.headers",
                "unknown field",
            ),
            (
                json!({"deadLetterSink": {"url": "http://d", "auth": {"bearer": {}}}}),
                "delivery.deadLetterSink.auth.bearer.token",
                "is required",
            ),
        ] {
            one_problem(&with("/delivery", delivery.clone()), field, message);
        }
        Ok(())
    }

    #[test]
    fn signing_secrets_are_checked() -> Result<(), Error> {
        let input = SubscriptionInput::parse(&with("/signing", json!({})))?;
        assert_eq!(input.signing_secret, None);
        one_problem(
            &with("/signing/secret", json!("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")),
            "signing.secret",
            "whsec_",
        );
        one_problem(
            &with("/signing/secret", json!("whsec_AAAA")),
            "signing.secret",
            "it holds 3 bytes",
        );
        Ok(())
    }

    #[test]
    fn pause_reasons_are_checked() -> Result<(), Error> {
        assert_eq!(check_reason(None)?, None);
        assert_eq!(check_reason(Some("  ".into()))?, None);
        assert_eq!(
            check_reason(Some("maintenance".into()))?.as_deref(),
            Some("maintenance")
        );
        let err = check_reason(Some("x".repeat(501))).expect_err("too long");
        assert_eq!(
            (err.status(), err.details()[0].field.as_str()),
            (422, "reason")
        );
        assert_eq!(
            err.public_message(),
            "invalid reason: must be at most 500 characters"
        );
        assert!(check_reason(Some("a\u{1b}b".into())).is_err());
        Ok(())
    }
}
