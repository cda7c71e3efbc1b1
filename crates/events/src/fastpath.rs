//! A quick, exact check of event data against the common subset of JSON Schema (draft 6 and 7),
//! run before the `jsonschema` crate.
//!
//! Built for WebAssembly, `jsonschema` checks every schema it compiles against the draft's
//! meta-schema, and builds that meta-schema's validator afresh for each compile (it has no
//! cache on that target). A Spin instance lives for one request, so that cost (about half of a
//! publish) would be paid on every publish. Most payload schemas use only a few plain keywords;
//! for those, [`Plan`] answers directly.
//!
//! The contract with the caller (`catalog.rs`): [`Verdict::Valid`] is final, while
//! [`Verdict::Invalid`] and [`Verdict::Unsure`] are handed to `jsonschema`, which gives the
//! verdict and the violation messages. So this module must never call valid what `jsonschema`
//! calls invalid; a differential test compares the two on many generated schemas and values.
//!
//! Supported: boolean schemas; `type` (a name or a list of names); `properties`, `required`,
//! `additionalProperties` (boolean or schema), `minProperties`, `maxProperties`; `items` (one
//! schema), `minItems`, `maxItems`; `enum`, `const`; `minimum`, `maximum`, `exclusiveMinimum`,
//! `exclusiveMaximum` (numbers, as in draft 6 and 7); `minLength`, `maxLength`; annotations
//! (`title`, `description`, `default`, `examples`, `$comment`, `readOnly`, `writeOnly`) and
//! keywords neither draft defines (`x-…`, AsyncAPI's `discriminator`, …), which are ignored as
//! `jsonschema` ignores them. A schema with any other keyword of draft 4 to 2020-12 (`$ref`,
//! `format`, `pattern`, `allOf`, …), a `$schema` other than draft 6 or 7, or a malformed
//! keyword value has no plan, and `jsonschema` does all the work.

use serde_json::{Map, Value};

/// The outcome of a quick check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The data satisfies the schema.
    Valid,
    /// The data violates the schema (`jsonschema` will say how).
    Invalid,
    /// Numbers too large to compare exactly as `f64`: ask `jsonschema`.
    Unsure,
}

/// Keywords that draft 4 to 2020-12 define and this module does not implement: a schema using
/// one has no plan.
const UNSUPPORTED: &[&str] = &[
    "$ref",
    "$id",
    "id",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "$recursiveAnchor",
    "$vocabulary",
    "$defs",
    "definitions",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "format",
    "pattern",
    "patternProperties",
    "propertyNames",
    "dependencies",
    "dependentRequired",
    "dependentSchemas",
    "contains",
    "minContains",
    "maxContains",
    "additionalItems",
    "prefixItems",
    "unevaluatedItems",
    "unevaluatedProperties",
    "uniqueItems",
    "multipleOf",
    "contentMediaType",
    "contentEncoding",
    "contentSchema",
];

/// Annotation keywords, ignored by validation.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$comment",
    "readOnly",
    "writeOnly",
];

/// The JSON types a `type` keyword can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl Type {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "null" => Self::Null,
            "boolean" => Self::Boolean,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "string" => Self::String,
            "array" => Self::Array,
            "object" => Self::Object,
            _ => return None,
        })
    }

    fn holds(self, value: &Value) -> bool {
        match (self, value) {
            (Self::Null, Value::Null)
            | (Self::Boolean, Value::Bool(_))
            | (Self::Number, Value::Number(_))
            | (Self::String, Value::String(_))
            | (Self::Array, Value::Array(_))
            | (Self::Object, Value::Object(_)) => true,
            // Draft 6 and later: a number with a zero fractional part is an integer.
            (Self::Integer, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        }
    }
}

/// One numeric bound.
#[derive(Debug, Clone, Copy)]
struct Bound {
    limit: f64,
    exclusive: bool,
}

/// A schema compiled for the quick check.
#[derive(Debug, Clone)]
pub enum Plan {
    /// `true` or `{}`-like: anything.
    Anything,
    /// `false`: nothing.
    Nothing,
    /// An object schema's constraints.
    Node(Box<Node>),
}

/// The constraints of one object schema.
#[derive(Debug, Clone, Default)]
pub struct Node {
    types: Option<Vec<Type>>,
    properties: Vec<(String, Plan)>,
    required: Vec<String>,
    additional: Option<Plan>,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    items: Option<Plan>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    enumeration: Option<Vec<Value>>,
    constant: Option<Value>,
    minimum: Option<Bound>,
    maximum: Option<Bound>,
    min_length: Option<u64>,
    max_length: Option<u64>,
}

/// Integers up to this magnitude are exact as `f64` (2^53).
const EXACT_INTEGERS: u64 = 1 << 53;

/// A number as an `f64`, if that is exact.
fn exact(n: &serde_json::Number) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    if let Some(i) = n.as_i64() {
        return (i.unsigned_abs() <= EXACT_INTEGERS).then_some(i as f64);
    }
    #[allow(clippy::cast_precision_loss)]
    if let Some(u) = n.as_u64() {
        return (u <= EXACT_INTEGERS).then_some(u as f64);
    }
    n.as_f64()
}

fn count(value: &Value) -> Option<u64> {
    value.as_u64()
}

fn bound(value: Option<&Value>) -> Result<Option<f64>, ()> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => exact(n).map(Some).ok_or(()),
        Some(_) => Err(()),
    }
}

impl Plan {
    /// The plan for `schema` (the root of a payload schema), or `None` when the schema needs
    /// `jsonschema` (see the module docs).
    pub fn for_schema(schema: &Value) -> Option<Self> {
        if let Some(dialect) = schema.get("$schema") {
            let dialect = dialect.as_str()?;
            let known = [
                "http://json-schema.org/draft-07/schema",
                "http://json-schema.org/draft-06/schema",
            ];
            if !known.contains(&dialect.trim_end_matches('#')) {
                return None;
            }
        }
        Self::compile(schema, true)
    }

    fn compile(schema: &Value, root: bool) -> Option<Self> {
        match schema {
            Value::Bool(true) => Some(Self::Anything),
            Value::Bool(false) => Some(Self::Nothing),
            Value::Object(map) => Node::compile(map, root).map(|node| match node {
                Some(node) => Self::Node(Box::new(node)),
                None => Self::Anything,
            }),
            _ => None,
        }
    }

    /// Checks `value`.
    pub fn check(&self, value: &Value) -> Verdict {
        match self {
            Self::Anything => Verdict::Valid,
            Self::Nothing => Verdict::Invalid,
            Self::Node(node) => node.check(value),
        }
    }
}

impl Node {
    /// `Some(None)`: a schema without constraints.
    #[allow(clippy::too_many_lines)]
    fn compile(map: &Map<String, Value>, root: bool) -> Option<Option<Self>> {
        let mut node = Self::default();
        let mut constrained = false;
        for (keyword, value) in map {
            let keyword = keyword.as_str();
            if UNSUPPORTED.contains(&keyword) || (keyword == "$schema" && !root) {
                return None;
            }
            if ANNOTATIONS.contains(&keyword) || keyword == "$schema" {
                continue;
            }
            match keyword {
                "type" => {
                    let names: Vec<&Value> = match value {
                        Value::String(_) => vec![value],
                        Value::Array(items) if !items.is_empty() => items.iter().collect(),
                        _ => return None,
                    };
                    let mut types = Vec::new();
                    for name in names {
                        let t = Type::parse(name.as_str()?)?;
                        if types.contains(&t) {
                            return None;
                        }
                        types.push(t);
                    }
                    node.types = Some(types);
                }
                "properties" => {
                    for (name, schema) in value.as_object()? {
                        node.properties
                            .push((name.clone(), Plan::compile(schema, false)?));
                    }
                }
                "required" => {
                    for name in value.as_array()? {
                        let name = name.as_str()?;
                        if node.required.iter().any(|r| r == name) {
                            return None;
                        }
                        node.required.push(name.to_owned());
                    }
                }
                "additionalProperties" => node.additional = Some(Plan::compile(value, false)?),
                "minProperties" => node.min_properties = Some(count(value)?),
                "maxProperties" => node.max_properties = Some(count(value)?),
                "items" => node.items = Some(Plan::compile(value, false)?),
                "minItems" => node.min_items = Some(count(value)?),
                "maxItems" => node.max_items = Some(count(value)?),
                "minLength" => node.min_length = Some(count(value)?),
                "maxLength" => node.max_length = Some(count(value)?),
                "enum" => node.enumeration = Some(value.as_array()?.clone()),
                "const" => node.constant = Some(value.clone()),
                "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                    // Checked together below.
                    bound(Some(value)).ok()?;
                }
                _ => continue, // not a keyword of these drafts: ignored, as jsonschema does
            }
            constrained = true;
        }
        node.minimum = tighter_bound(
            bound(map.get("minimum")).ok()?,
            bound(map.get("exclusiveMinimum")).ok()?,
            |a, b| a > b,
        );
        node.maximum = tighter_bound(
            bound(map.get("maximum")).ok()?,
            bound(map.get("exclusiveMaximum")).ok()?,
            |a, b| a < b,
        );
        constrained |= node.minimum.is_some() || node.maximum.is_some();
        Some(constrained.then_some(node))
    }

    fn check(&self, value: &Value) -> Verdict {
        let mut unsure = false;
        let mut fold = |verdict: Verdict| match verdict {
            Verdict::Valid => true,
            Verdict::Invalid => false,
            Verdict::Unsure => {
                unsure = true;
                true
            }
        };
        let valid = self.check_types(value)
            && fold(self.check_values(value))
            && fold(self.check_shape(value));
        match (valid, unsure) {
            (false, _) => Verdict::Invalid,
            (true, true) => Verdict::Unsure,
            (true, false) => Verdict::Valid,
        }
    }

    fn check_types(&self, value: &Value) -> bool {
        self.types
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| t.holds(value)))
    }

    /// `enum`, `const` and numeric bounds.
    fn check_values(&self, value: &Value) -> Verdict {
        let mut verdict = Verdict::Valid;
        let mut note = |v: Verdict| match v {
            Verdict::Invalid => false,
            Verdict::Unsure => {
                verdict = Verdict::Unsure;
                true
            }
            Verdict::Valid => true,
        };
        if let Some(options) = &self.enumeration {
            let mut found = Verdict::Invalid;
            for option in options {
                match equal(option, value) {
                    Verdict::Valid => {
                        found = Verdict::Valid;
                        break;
                    }
                    Verdict::Unsure => found = Verdict::Unsure,
                    Verdict::Invalid => {}
                }
            }
            if !note(found) {
                return Verdict::Invalid;
            }
        }
        if let Some(constant) = &self.constant
            && !note(equal(constant, value))
        {
            return Verdict::Invalid;
        }
        if let Value::Number(n) = value
            && (self.minimum.is_some() || self.maximum.is_some())
        {
            let Some(x) = exact(n) else {
                return Verdict::Unsure;
            };
            if let Some(Bound { limit, exclusive }) = self.minimum
                && (x < limit || (exclusive && x <= limit))
            {
                return Verdict::Invalid;
            }
            if let Some(Bound { limit, exclusive }) = self.maximum
                && (x > limit || (exclusive && x >= limit))
            {
                return Verdict::Invalid;
            }
        }
        verdict
    }

    /// Strings' lengths, arrays' items and objects' properties.
    fn check_shape(&self, value: &Value) -> Verdict {
        match value {
            Value::String(s) => {
                let length = s.chars().count() as u64;
                let ok = self.min_length.is_none_or(|min| length >= min)
                    && self.max_length.is_none_or(|max| length <= max);
                if ok { Verdict::Valid } else { Verdict::Invalid }
            }
            Value::Array(items) => {
                let length = items.len() as u64;
                if self.min_items.is_some_and(|min| length < min)
                    || self.max_items.is_some_and(|max| length > max)
                {
                    return Verdict::Invalid;
                }
                match &self.items {
                    Some(plan) => all(items.iter().map(|item| plan.check(item))),
                    None => Verdict::Valid,
                }
            }
            Value::Object(map) => self.check_object(map),
            _ => Verdict::Valid,
        }
    }

    fn check_object(&self, map: &Map<String, Value>) -> Verdict {
        let length = map.len() as u64;
        if self.min_properties.is_some_and(|min| length < min)
            || self.max_properties.is_some_and(|max| length > max)
            || self.required.iter().any(|name| !map.contains_key(name))
        {
            return Verdict::Invalid;
        }
        let declared = self
            .properties
            .iter()
            .filter_map(|(name, plan)| map.get(name).map(|value| plan.check(value)));
        let additional = map.iter().filter_map(|(name, value)| {
            let plan = self.additional.as_ref()?;
            let declared = self.properties.iter().any(|(n, _)| n == name);
            (!declared).then(|| plan.check(value))
        });
        all(declared.chain(additional))
    }
}

/// The stricter of a bound and its exclusive form.
fn tighter_bound(
    inclusive: Option<f64>,
    exclusive: Option<f64>,
    stricter: impl Fn(f64, f64) -> bool,
) -> Option<Bound> {
    match (inclusive, exclusive) {
        (None, None) => None,
        (Some(limit), None) => Some(Bound {
            limit,
            exclusive: false,
        }),
        (None, Some(limit)) => Some(Bound {
            limit,
            exclusive: true,
        }),
        (Some(a), Some(b)) => Some(if stricter(a, b) {
            Bound {
                limit: a,
                exclusive: false,
            }
        } else {
            Bound {
                limit: b,
                exclusive: true,
            }
        }),
    }
}

/// `Invalid` if any is, else `Unsure` if any is, else `Valid`.
fn all(verdicts: impl Iterator<Item = Verdict>) -> Verdict {
    let mut outcome = Verdict::Valid;
    for verdict in verdicts {
        match verdict {
            Verdict::Invalid => return Verdict::Invalid,
            Verdict::Unsure => outcome = Verdict::Unsure,
            Verdict::Valid => {}
        }
    }
    outcome
}

/// JSON equality as JSON Schema defines it (numbers by value, so `1` equals `1.0`).
fn equal(a: &Value, b: &Value) -> Verdict {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x.as_i64().zip(y.as_i64()).is_some_and(|(x, y)| x == y)
                || x.as_u64().zip(y.as_u64()).is_some_and(|(x, y)| x == y)
            {
                return Verdict::Valid;
            }
            match (exact(x), exact(y)) {
                (Some(x), Some(y)) if x == y => Verdict::Valid,
                (Some(_), Some(_)) => Verdict::Invalid,
                _ => Verdict::Unsure,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Verdict::Invalid;
            }
            all(x.iter().zip(y).map(|(x, y)| equal(x, y)))
        }
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return Verdict::Invalid;
            }
            all(x.iter().map(|(key, x)| match y.get(key) {
                Some(y) => equal(x, y),
                None => Verdict::Invalid,
            }))
        }
        _ => {
            if a == b {
                Verdict::Valid
            } else {
                Verdict::Invalid
            }
        }
    }
}

#[cfg(test)]
mod tests;
