//! Validating an event against its application's event catalog.
//!
//! The catalog is the list of [`CatalogEntry`]s of all the application's event APIs (the gateway
//! loads them from the registry's records). An event must name an entry ([`find`]), and when the
//! entry has a payload schema, its data must satisfy it ([`validate_payload`]). Both failures are
//! `422`: code `EVENT_TYPE_NOT_REGISTERED`, or `PAYLOAD_SCHEMA_VIOLATION` with one detail per
//! violation whose field is the JSON pointer of the violating value **relative to the event**,
//! i.e. prefixed with `/data` (`/data/orderId`; `/data` for the data as a whole), the same for
//! CloudEvents and legacy events.
//!
//! # Matching
//!
//! - A CloudEvent's `type` is an entry's name (`order.created.v1`). For symmetry with the legacy
//!   rule, an entry named `order.created` with version `v1` matches the type `order.created.v1`
//!   too.
//! - A legacy event's (`event-type`, `event-type-version`) matches the entry named
//!   `<event-type>.<event-type-version>`, or the entry named `<event-type>` whose version is
//!   `<event-type-version>`.
//!
//! - An entry named by a channel address with parameters (`shop.{region}.order.created.v1`)
//!   matches, by the rules above, a type where each `{param}` is one non-empty segment without
//!   `.` or `/` (`shop.eu.order.created.v1`). Names are compared exactly first: an entry named
//!   exactly like the type wins over a parameterised one.
//!
//! When nothing matches but entries of the same event in other versions exist, the message lists
//! the registered versions.
//!
//! # Stored schemas that do not compile
//!
//! A schema that cannot be compiled (malformed, or with a remote `$ref`, which is never fetched)
//! is a problem of the registration, which the publisher cannot fix, and it must not turn every
//! publish into a `500`. Validation of that entry is then **skipped** and the outcome says so
//! ([`PayloadCheck::SchemaUnusable`]) so that the gateway can log a warning; the event is
//! accepted as if the entry had no schema.

use std::collections::HashMap;

use eventplane_core::{Error, FieldError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cloudevents::{Event, EventData};
use crate::fastpath::{Plan, Verdict};

/// Code of the error for an event type that is not in the catalog.
pub const CODE_NOT_REGISTERED: &str = "EVENT_TYPE_NOT_REGISTERED";
/// Code of the error for data that violates the entry's payload schema.
pub const CODE_SCHEMA_VIOLATION: &str = "PAYLOAD_SCHEMA_VIOLATION";
/// At most this many schema violations are reported per event.
pub const MAX_VIOLATIONS_PER_EVENT: usize = 20;

/// One event type of an application's catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// The event type's name, e.g. `order.created.v1`.
    pub name: String,
    /// Its version, e.g. `v1`.
    pub version: String,
    /// The JSON schema its data must satisfy, if the spec gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_schema: Option<Value>,
}

/// Why an event does not fit the catalog; always `422`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The event type (and version) is not registered: `EVENT_TYPE_NOT_REGISTERED`.
    #[error("{message}")]
    NotRegistered {
        /// What was not found and, for a version mismatch, which versions are registered.
        message: String,
        /// The offending field(s): `type`, or `event-type`/`event-type-version`, prefixed with
        /// `[index].` in a batch.
        details: Vec<FieldError>,
    },
    /// The data violates the entry's schema: `PAYLOAD_SCHEMA_VIOLATION`.
    #[error("{message}")]
    SchemaViolation {
        /// Summary.
        message: String,
        /// One per violation, the field being the JSON pointer (`/data/orderId`), prefixed with
        /// `[index]` in a batch (`[2]/data/orderId`).
        details: Vec<FieldError>,
    },
}

impl CatalogError {
    /// The HTTP status: `422`.
    pub fn status(&self) -> u16 {
        422
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotRegistered { .. } => CODE_NOT_REGISTERED,
            Self::SchemaViolation { .. } => CODE_SCHEMA_VIOLATION,
        }
    }

    /// The message for the client.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The per-field problems.
    pub fn details(&self) -> &[FieldError] {
        match self {
            Self::NotRegistered { details, .. } | Self::SchemaViolation { details, .. } => details,
        }
    }

    /// The body in the project's error shape, with this error's own code:
    /// `{"error": {"code", "message", "details"}}`.
    pub fn body(&self) -> Value {
        json!({
            "error": {
                "code": self.code(),
                "message": self.message(),
                "details": self.details(),
            }
        })
    }
}

impl From<CatalogError> for Error {
    /// As a generic `422` (`UNPROCESSABLE_ENTITY`): the specific code is only in
    /// [`CatalogError::body`].
    fn from(err: CatalogError) -> Self {
        let message = err.message();
        match err {
            CatalogError::NotRegistered { details, .. }
            | CatalogError::SchemaViolation { details, .. } => {
                Error::unprocessable(message, details)
            }
        }
    }
}

/// What payload validation found, when it did not reject the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadCheck {
    /// The entry has no schema: nothing to check.
    NoSchema,
    /// The data satisfies the schema.
    Valid,
    /// The entry's schema does not compile, so the data was not checked; the reason is for the
    /// logs.
    SchemaUnusable(String),
}

/// Whether `entry` is what (`type_name`, `version`) names (see the module doc).
fn matches(entry: &CatalogEntry, type_name: &str, version: Option<&str>) -> bool {
    let dotted = || {
        type_name
            .strip_prefix(entry.name.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
    };
    match version {
        None => entry.name == type_name || dotted() == Some(entry.version.as_str()),
        Some(version) => {
            (entry.name == type_name && entry.version == version)
                || entry
                    .name
                    .strip_prefix(type_name)
                    .and_then(|rest| rest.strip_prefix('.'))
                    == Some(version)
        }
    }
}

/// Whether `entry`, named by a channel address with parameters (`shop.{region}.order.created.v1`),
/// is what (`type_name`, `version`) names, by the rules of [`matches`] with each `{param}`
/// standing for one segment (see [`address_matches`]).
fn matches_address(entry: &CatalogEntry, type_name: &str, version: Option<&str>) -> bool {
    if !entry.name.contains('{') {
        return false;
    }
    match version {
        None => {
            address_matches(&entry.name, type_name)
                || type_name.rsplit_once('.').is_some_and(|(base, v)| {
                    v == entry.version && address_matches(&entry.name, base)
                })
        }
        Some(version) => {
            (entry.version == version && address_matches(&entry.name, type_name))
                || address_matches(&entry.name, &format!("{type_name}.{version}"))
        }
    }
}

/// Whether `name` fits the channel address `address`, where each `{param}` matches one
/// non-empty segment: characters other than `.` and `/`.
fn address_matches(address: &str, name: &str) -> bool {
    let Some((literal, after)) = address.split_once('{') else {
        return address == name;
    };
    let Some((_, rest)) = after.split_once('}') else {
        return address == name;
    };
    let Some(name) = name.strip_prefix(literal) else {
        return false;
    };
    let segment = name.find(['.', '/']).unwrap_or(name.len());
    name[..segment]
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .any(|end| address_matches(rest, &name[end..]))
}

/// The entries of the same event in other versions: for a CloudEvent, the entries whose name
/// differs from `type_name` only in its last segment (or equals it without that segment); for a
/// legacy event, the entries named `<event-type>` or `<event-type>.<something>`.
fn other_versions<'a>(
    entries: &'a [CatalogEntry],
    type_name: &str,
    version: Option<&str>,
) -> Vec<&'a CatalogEntry> {
    let base = match version {
        Some(_) => type_name,
        None => type_name
            .rsplit_once('.')
            .map_or(type_name, |(base, _)| base),
    };
    entries
        .iter()
        .filter(|entry| {
            entry.name == base
                || entry
                    .name
                    .strip_prefix(base)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains('.'))
        })
        .collect()
}

/// Finds the catalog entry an event names: `version` is `None` for a CloudEvent (`type_name` is
/// its `type`) and `Some(event-type-version)` for a legacy event (`type_name` is its
/// `event-type`).
pub fn find<'a>(
    entries: &'a [CatalogEntry],
    type_name: &str,
    version: Option<&str>,
) -> Result<&'a CatalogEntry, CatalogError> {
    find_index(entries, type_name, version, "").map(|index| &entries[index])
}

fn find_index(
    entries: &[CatalogEntry],
    type_name: &str,
    version: Option<&str>,
    prefix: &str,
) -> Result<usize, CatalogError> {
    if let Some(index) = entries
        .iter()
        .position(|entry| matches(entry, type_name, version))
        .or_else(|| {
            entries
                .iter()
                .position(|entry| matches_address(entry, type_name, version))
        })
    {
        return Ok(index);
    }
    let others = other_versions(entries, type_name, version);
    let (field, what) = match version {
        None => ("type", format!("event type {type_name:?}")),
        Some(v) => (
            if others.is_empty() {
                "event-type"
            } else {
                "event-type-version"
            },
            format!("event type {type_name:?} version {v:?}"),
        ),
    };
    let mut message = format!("{what} is not registered for this application");
    if !others.is_empty() {
        let registered: Vec<String> = others
            .iter()
            .map(|entry| format!("{} (version {})", entry.name, entry.version))
            .collect();
        message.push_str(&format!("; registered: {}", registered.join(", ")));
    }
    Err(CatalogError::NotRegistered {
        details: vec![FieldError::new(format!("{prefix}{field}"), message.clone())],
        message,
    })
}

/// The JSON value schema validation looks at: JSON data as is, text as a JSON string, no data as
/// `null`; binary data cannot be validated against a JSON schema.
fn data_instance(data: &EventData) -> Option<std::borrow::Cow<'_, Value>> {
    use std::borrow::Cow;
    match data {
        EventData::Json(value) => Some(Cow::Borrowed(value)),
        EventData::Text(text) => Some(Cow::Owned(Value::String(text.clone()))),
        EventData::None => Some(Cow::Owned(Value::Null)),
        EventData::Binary(_) => None,
    }
}

/// Compiles a schema, or says why it cannot be.
///
/// AsyncAPI's Schema Object is a superset of JSON Schema Draft 7, so payload schemas are read as
/// Draft 7 unless they name another draft in `$schema`. Naming the draft also keeps compiling
/// cheaper: working out a draft costs more than the validation itself, and a Spin instance
/// compiles afresh on every request (which is why the quick check runs first).
fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    let declared = schema.get("$schema").is_some();
    let options = if declared {
        jsonschema::options()
    } else {
        jsonschema::options().with_draft(jsonschema::Draft::Draft7)
    };
    options
        .build(schema)
        .map_err(|err| format!("the payload schema is unusable: {err}"))
}

/// Checks `data` against a compiled schema; the problems' fields are `<prefix>/data<pointer>`.
fn check(
    validator: &jsonschema::Validator,
    data: &EventData,
    prefix: &str,
) -> Result<(), Vec<FieldError>> {
    let Some(instance) = data_instance(data) else {
        return Err(vec![FieldError::new(
            format!("{prefix}/data"),
            "binary data cannot be validated against the event type's JSON schema; send JSON",
        )]);
    };
    let problems: Vec<FieldError> = validator
        .iter_errors(&instance)
        .take(MAX_VIOLATIONS_PER_EVENT)
        .map(|err| {
            FieldError::new(
                format!("{prefix}/data{}", err.instance_path().as_str()),
                err.masked().to_string(),
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn violation(problems: Vec<FieldError>, events: usize) -> CatalogError {
    let message = match (events, problems.as_slice()) {
        (1, [only]) => format!(
            "the event's data does not match its schema: {} (at {})",
            only.message, only.field
        ),
        (1, _) => format!(
            "the event's data does not match its schema: {} violations",
            problems.len()
        ),
        _ => format!("{events} events' data do not match their schemas; nothing was accepted"),
    };
    CatalogError::SchemaViolation {
        message,
        details: problems,
    }
}

/// Checks `data` against `entry`'s schema, compiling it for this call only.
pub fn validate_payload(
    entry: &CatalogEntry,
    data: &EventData,
) -> Result<PayloadCheck, CatalogError> {
    let Some(schema) = &entry.payload_schema else {
        return Ok(PayloadCheck::NoSchema);
    };
    Prepared::new(schema)
        .check(schema, data, "")
        .map_err(|problems| violation(problems, 1))
}

/// One entry's schema during a request: the quick check's plan (see `fastpath`), and the
/// `jsonschema` validator, compiled only when the quick check cannot say "valid" (that compile
/// is the expensive part of a publish).
struct Prepared {
    quick: Option<Plan>,
    full: Option<Result<jsonschema::Validator, String>>,
}

impl Prepared {
    fn new(schema: &Value) -> Self {
        Self {
            quick: Plan::for_schema(schema),
            full: None,
        }
    }

    fn check(
        &mut self,
        schema: &Value,
        data: &EventData,
        prefix: &str,
    ) -> Result<PayloadCheck, Vec<FieldError>> {
        if let (Some(plan), Some(instance)) = (&self.quick, data_instance(data))
            && plan.check(&instance) == Verdict::Valid
        {
            return Ok(PayloadCheck::Valid);
        }
        match self.full.get_or_insert_with(|| compile(schema)) {
            Err(reason) => Ok(PayloadCheck::SchemaUnusable(reason.clone())),
            Ok(validator) => check(validator, data, prefix).map(|()| PayloadCheck::Valid),
        }
    }
}

/// An application's catalog during one request, compiling each entry's schema at most once (so a
/// batch of events of one type compiles its schema once). Nothing is kept between requests.
pub struct Catalog<'a> {
    entries: &'a [CatalogEntry],
    compiled: HashMap<usize, Prepared>,
}

impl<'a> Catalog<'a> {
    /// The catalog made of `entries`.
    pub fn new(entries: &'a [CatalogEntry]) -> Self {
        Self {
            entries,
            compiled: HashMap::new(),
        }
    }

    /// The entry an event names (see [`find`]).
    pub fn find(
        &self,
        type_name: &str,
        version: Option<&str>,
    ) -> Result<&'a CatalogEntry, CatalogError> {
        find(self.entries, type_name, version)
    }

    fn check_one(
        &mut self,
        index: usize,
        data: &EventData,
        prefix: &str,
    ) -> Result<PayloadCheck, Vec<FieldError>> {
        let entries = self.entries;
        let Some(schema) = entries.get(index).and_then(|e| e.payload_schema.as_ref()) else {
            return Ok(PayloadCheck::NoSchema);
        };
        self.compiled
            .entry(index)
            .or_insert_with(|| Prepared::new(schema))
            .check(schema, data, prefix)
    }

    /// Validates one event: its type (and `version` for a legacy event, see [`find`]) must be
    /// registered, and its data must satisfy the entry's schema.
    pub fn validate(
        &mut self,
        event: &Event,
        version: Option<&str>,
    ) -> Result<PayloadCheck, CatalogError> {
        let index = find_index(self.entries, &event.event_type, version, "")?;
        self.check_one(index, &event.data, "")
            .map_err(|problems| violation(problems, 1))
    }

    /// Validates a batch of CloudEvents as a whole: either every event passes (the outcomes in
    /// order), or one error listing the problems of every failing entry, the fields prefixed with
    /// `[index]` (`[3].type`, `[2]/data/orderId`). If any type is not registered the error is
    /// `EVENT_TYPE_NOT_REGISTERED` (listing those entries), otherwise `PAYLOAD_SCHEMA_VIOLATION`.
    pub fn validate_batch(&mut self, events: &[Event]) -> Result<Vec<PayloadCheck>, CatalogError> {
        let mut outcomes = Vec::with_capacity(events.len());
        let mut not_registered = Vec::new();
        let mut violations = Vec::new();
        let mut bad_events = 0;
        for (i, event) in events.iter().enumerate() {
            match find_index(self.entries, &event.event_type, None, &format!("[{i}].")) {
                Err(CatalogError::NotRegistered { details, .. })
                | Err(CatalogError::SchemaViolation { details, .. }) => {
                    bad_events += 1;
                    not_registered.extend(details);
                }
                Ok(index) => match self.check_one(index, &event.data, &format!("[{i}]")) {
                    Ok(outcome) => outcomes.push(outcome),
                    Err(problems) => {
                        bad_events += 1;
                        violations.extend(problems);
                    }
                },
            }
        }
        if !not_registered.is_empty() {
            let count = not_registered.len();
            return Err(CatalogError::NotRegistered {
                message: format!(
                    "{count} of {} events have a type that is not registered for this \
                     application; nothing was accepted",
                    events.len()
                ),
                details: not_registered,
            });
        }
        if !violations.is_empty() {
            return Err(violation(violations, bad_events));
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, version: &str, schema: Option<Value>) -> CatalogEntry {
        CatalogEntry {
            name: name.into(),
            version: version.into(),
            payload_schema: schema,
        }
    }

    fn order_schema() -> Value {
        json!({
            "type": "object",
            "required": ["orderId"],
            "properties": {
                "orderId": {"type": "string"},
                "total": {"type": "number", "minimum": 0}
            }
        })
    }

    fn catalog() -> Vec<CatalogEntry> {
        vec![
            entry("order.created.v1", "v1", Some(order_schema())),
            entry("order.shipped", "v1", None),
            entry("order.shipped", "v2", None),
            entry("customer.deleted.v1", "v1", Some(json!({"type": 12}))),
        ]
    }

    fn event(event_type: &str, data: Value) -> Event {
        let mut event = Event::new("e1", "/applications/shop", event_type);
        event.data = EventData::Json(data);
        event
    }

    fn fields(err: &CatalogError) -> Vec<&str> {
        err.details().iter().map(|d| d.field.as_str()).collect()
    }

    #[test]
    fn parameterised_addresses_match_one_segment_per_parameter() -> Result<(), CatalogError> {
        let entries = vec![
            entry("shop.{region}.order.created.v1", "v1", Some(order_schema())),
            entry("shop.eu.order.created.v1", "v1", None),
            entry("fleet/{robot}/battery", "1.0", None),
            entry("{tenant}.{kind}.changed", "v2", None),
        ];
        // An exact name wins over a parameterised one, wherever it is listed.
        assert_eq!(
            find(&entries, "shop.eu.order.created.v1", None)?.name,
            "shop.eu.order.created.v1"
        );
        assert_eq!(
            find(&entries, "shop.us.order.created.v1", None)?.name,
            "shop.{region}.order.created.v1"
        );
        assert_eq!(find(&entries, "fleet/r2d2/battery", None)?.version, "1.0");
        assert_eq!(
            find(&entries, "acme.invoice.changed", None)?.name,
            "{tenant}.{kind}.changed"
        );
        // With the version as a last segment, and as a legacy event-type-version.
        assert_eq!(
            find(&entries, "acme.invoice.changed.v2", None)?.name,
            "{tenant}.{kind}.changed"
        );
        assert_eq!(
            find(&entries, "shop.us.order.created", Some("v1"))?.name,
            "shop.{region}.order.created.v1"
        );
        assert_eq!(
            find(&entries, "fleet/r2d2/battery", Some("1.0"))?.name,
            "fleet/{robot}/battery"
        );
        // A parameter is one non-empty segment: no dots, no slashes, not empty.
        for not_matching in [
            "shop.us.west.order.created.v1",
            "shop..order.created.v1",
            "shop.order.created.v1",
            "fleet/a/b/battery",
            "fleet//battery",
            "acme.invoice.changed.v3",
        ] {
            assert!(
                find(&entries, not_matching, None).is_err(),
                "{not_matching}"
            );
        }
        // The entry's schema applies to the events its address matches.
        let mut catalog = Catalog::new(&entries);
        let err = catalog
            .validate(&event("shop.us.order.created.v1", json!({})), None)
            .unwrap_err();
        assert_eq!(fields(&err), ["/data"]);
        Ok(())
    }

    #[test]
    fn finds_cloudevent_types_by_name() -> Result<(), CatalogError> {
        let entries = catalog();
        assert_eq!(
            find(&entries, "order.created.v1", None)?.name,
            "order.created.v1"
        );
        // name + version also matches a dotted CloudEvent type
        assert_eq!(find(&entries, "order.shipped.v2", None)?.version, "v2");
        assert_eq!(find(&entries, "order.shipped", None)?.version, "v1");
        Ok(())
    }

    #[test]
    fn finds_legacy_types_by_both_rules() -> Result<(), CatalogError> {
        let entries = catalog();
        assert_eq!(
            find(&entries, "order.created", Some("v1"))?.name,
            "order.created.v1"
        );
        assert_eq!(find(&entries, "order.shipped", Some("v2"))?.version, "v2");
        Ok(())
    }

    #[test]
    fn not_registered_and_version_mismatch() {
        let entries = catalog();
        let err = find(&entries, "invoice.paid.v1", None).unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (422, "EVENT_TYPE_NOT_REGISTERED")
        );
        assert_eq!(fields(&err), vec!["type"]);
        assert!(!err.message().contains("registered:"), "{err}");

        let err = find(&entries, "order.created.v2", None).unwrap_err();
        assert!(
            err.message()
                .contains("registered: order.created.v1 (version v1)"),
            "{err}"
        );
        let err = find(&entries, "order.shipped", Some("v3")).unwrap_err();
        assert_eq!(fields(&err), vec!["event-type-version"]);
        assert!(
            err.message()
                .contains("order.shipped (version v1), order.shipped (version v2)"),
            "{err}"
        );
        let err = find(&entries, "order.created", Some("v9")).unwrap_err();
        assert!(
            err.message().contains("order.created.v1 (version v1)"),
            "{err}"
        );
        let err = find(&entries, "invoice.paid", Some("v1")).unwrap_err();
        assert_eq!(fields(&err), vec!["event-type"]);
        assert_eq!(err.body()["error"]["code"], "EVENT_TYPE_NOT_REGISTERED");
    }

    #[test]
    fn payload_violations_have_json_pointers() {
        let entries = catalog();
        let mut catalog = Catalog::new(&entries);
        assert_eq!(
            catalog.validate(&event("order.created.v1", json!({"orderId": "1"})), None),
            Ok(PayloadCheck::Valid)
        );
        let err = catalog
            .validate(
                &event("order.created.v1", json!({"orderId": 1, "total": -1})),
                None,
            )
            .unwrap_err();
        assert_eq!(err.code(), "PAYLOAD_SCHEMA_VIOLATION");
        let mut got = fields(&err);
        got.sort_unstable();
        assert_eq!(got, vec!["/data/orderId", "/data/total"]);
        // The violating values are not echoed back.
        assert!(
            err.details().iter().all(|d| !d.message.contains("-1")),
            "{err:?}"
        );
        let err = catalog
            .validate(&event("order.created.v1", json!([1])), None)
            .unwrap_err();
        assert_eq!(fields(&err), vec!["/data"]);
        assert!(err.message().contains("(at /data)"), "{err}");
        let mut no_data = event("order.created.v1", json!(null));
        no_data.data = EventData::None;
        assert!(catalog.validate(&no_data, None).is_err());
        let mut binary = no_data.clone();
        binary.data = EventData::Binary(vec![1]);
        assert_eq!(
            fields(&catalog.validate(&binary, None).unwrap_err()),
            vec!["/data"]
        );
    }

    #[test]
    fn entries_without_or_with_broken_schemas() {
        let entries = catalog();
        let mut catalog = Catalog::new(&entries);
        assert_eq!(
            catalog.validate(&event("order.shipped", json!(1)), Some("v1")),
            Ok(PayloadCheck::NoSchema)
        );
        let outcome = catalog.validate(&event("customer.deleted.v1", json!(1)), None);
        assert!(
            matches!(outcome, Ok(PayloadCheck::SchemaUnusable(_))),
            "{outcome:?}"
        );
        assert!(matches!(
            validate_payload(&entries[3], &EventData::Json(json!(1))),
            Ok(PayloadCheck::SchemaUnusable(_))
        ));
        let remote = entry(
            "x",
            "v1",
            Some(json!({"$ref": "https://example.com/schema.json"})),
        );
        assert!(matches!(
            validate_payload(&remote, &EventData::Json(json!(1))),
            Ok(PayloadCheck::SchemaUnusable(_))
        ));
        assert_eq!(
            validate_payload(&entries[0], &EventData::Json(json!({"orderId": "x"}))),
            Ok(PayloadCheck::Valid)
        );
    }

    #[test]
    fn batches_are_validated_as_a_whole() {
        let entries = catalog();
        let mut catalog = Catalog::new(&entries);
        let good = event("order.created.v1", json!({"orderId": "1"}));
        let outcomes = catalog.validate_batch(&[good.clone(), event("order.shipped.v2", json!(1))]);
        assert_eq!(
            outcomes,
            Ok(vec![PayloadCheck::Valid, PayloadCheck::NoSchema])
        );

        let bad_data = event("order.created.v1", json!({}));
        let err = catalog
            .validate_batch(&[good.clone(), bad_data.clone(), bad_data.clone()])
            .unwrap_err();
        assert_eq!(err.code(), "PAYLOAD_SCHEMA_VIOLATION");
        assert_eq!(fields(&err), vec!["[1]/data", "[2]/data"]);
        assert!(err.message().contains("2 events"), "{err}");

        let err = catalog
            .validate_batch(&[good, bad_data, event("nope.v1", json!(1))])
            .unwrap_err();
        assert_eq!(err.code(), "EVENT_TYPE_NOT_REGISTERED");
        assert_eq!(fields(&err), vec!["[2].type"]);
    }

    #[test]
    fn converts_to_the_generic_error() {
        let err: Error = find(&catalog(), "x", None).unwrap_err().into();
        assert_eq!(
            (err.status(), err.details()[0].field.as_str()),
            (422, "type")
        );
    }

    #[test]
    fn entries_deserialize_from_registry_records() -> Result<(), serde_json::Error> {
        let entries: Vec<CatalogEntry> = serde_json::from_value(json!([
            {"name": "a.v1", "version": "v1", "summary": "ignored", "payload_schema": {"type": "object"}},
            {"name": "b.v1", "version": "v1"}
        ]))?;
        assert_eq!(entries[1].payload_schema, None);
        assert!(entries[0].payload_schema.is_some());
        Ok(())
    }
}
