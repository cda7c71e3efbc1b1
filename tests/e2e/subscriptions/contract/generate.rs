//! Values from JSON Schemas: valid ones ([`Generator::value`]) and, from a valid value, one
//! that breaks a single constraint of the schema ([`Generator::violate`]).
//!
//! What the generator understands: `$ref` (local), `const`, `enum`, `oneOf`/`anyOf` (one branch),
//! `allOf` (its first part), `type` (one of a list), objects (`properties`, `required`,
//! `additionalProperties` as a schema, `propertyNames`, `minProperties`/`maxProperties`),
//! arrays (`items`, `minItems`/`maxItems`), strings (`pattern` through `rand_regex`,
//! `minLength`/`maxLength`, `format: date-time`), integers and numbers (`minimum`/`maximum`,
//! exclusive bounds). Anything else (`not`, a `pattern` next to `enum`, ...) is left to the
//! validator: the caller checks every generated value against the document and generates
//! again when it is not valid.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{RngExt as _, SeedableRng as _};
use serde_json::{Map, Value, json};

use super::document::{Document, escape};

/// Generates values from the schemas of one document.
pub(crate) struct Generator<'d> {
    pub doc: &'d Document,
    regexes: HashMap<(String, u32), rand_regex::Regex>,
}

/// The JSON types, for choosing one that a schema does not allow.
const TYPES: &[&str] = &["string", "integer", "number", "boolean", "array", "object"];

impl<'d> Generator<'d> {
    pub fn new(doc: &'d Document) -> Self {
        Self {
            doc,
            regexes: HashMap::new(),
        }
    }

    /// A value of the schema at `pointer` (valid unless the schema uses what the generator does
    /// not understand; see the module docs).
    pub fn value(&mut self, rng: &mut StdRng, pointer: &str) -> Value {
        self.value_at(rng, pointer, 0)
    }

    fn value_at(&mut self, rng: &mut StdRng, pointer: &str, depth: usize) -> Value {
        assert!(depth < 40, "schemas nested too deep at {pointer}");
        let pointer = self.doc.follow(pointer);
        let schema = self.doc.at(&pointer).clone();
        if let Some(constant) = schema.get("const") {
            return constant.clone();
        }
        if let Some(Value::Array(options)) = schema.get("enum") {
            return options.choose(rng).cloned().unwrap_or(Value::Null);
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(branches)) = schema.get(key) {
                let branch = rng.random_range(0..branches.len());
                return self.value_at(rng, &format!("{pointer}/{key}/{branch}"), depth + 1);
            }
        }
        if schema.get("allOf").is_some() {
            return self.value_at(rng, &format!("{pointer}/allOf/0"), depth + 1);
        }
        match pick_type(rng, &schema) {
            "object" => self.object(rng, &pointer, &schema, depth),
            "array" => {
                let (min, max) = bounds(&schema, "minItems", "maxItems", 6);
                let count = count_between(rng, min, max);
                Value::Array(
                    (0..count)
                        .map(|_| self.value_at(rng, &format!("{pointer}/items"), depth + 1))
                        .collect(),
                )
            }
            "integer" => integer(rng, &schema),
            "number" => {
                let min = schema["minimum"].as_f64().unwrap_or(-1e6);
                let max = schema["maximum"].as_f64().unwrap_or(min.abs() + 1e6);
                json!(rng.random_range(min..=max))
            }
            "boolean" => json!(rng.random_bool(0.5)),
            "null" => Value::Null,
            _ => Value::String(self.string(rng, &schema)),
        }
    }

    fn object(&mut self, rng: &mut StdRng, pointer: &str, schema: &Value, depth: usize) -> Value {
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let properties: Vec<String> = schema["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let mut out = Map::new();
        for name in &properties {
            if required.contains(&name.as_str()) || rng.random_bool(0.5) {
                let at = format!("{pointer}/properties/{}", escape(name));
                out.insert(name.clone(), self.value_at(rng, &at, depth + 1));
            }
        }
        let (min, max) = bounds(schema, "minProperties", "maxProperties", 4);
        if schema["additionalProperties"].is_object() {
            let count = count_between(rng, min, max);
            let mut tries = 0;
            while out.len() < count && tries < 20 * count {
                tries += 1;
                let name = self.property_name(rng, pointer, schema);
                if !out.contains_key(&name) {
                    let at = format!("{pointer}/additionalProperties");
                    out.insert(name, self.value_at(rng, &at, depth + 1));
                }
            }
        }
        let mut missing: Vec<&String> = properties
            .iter()
            .filter(|p| !out.contains_key(*p))
            .collect();
        while out.len() < min && !missing.is_empty() {
            let name = missing
                .swap_remove(rng.random_range(0..missing.len()))
                .clone();
            let at = format!("{pointer}/properties/{}", escape(&name));
            let value = self.value_at(rng, &at, depth + 1);
            out.insert(name, value);
        }
        Value::Object(out)
    }

    /// A name for a new member of the object schema at `pointer`: by its `propertyNames`.
    fn property_name(&mut self, rng: &mut StdRng, pointer: &str, schema: &Value) -> String {
        if schema.get("propertyNames").is_some() {
            let value = self.value_at(rng, &format!("{pointer}/propertyNames"), 0);
            if let Value::String(name) = value {
                return name;
            }
        }
        format!("x{}", rng.random_range(0..1_000_000))
    }

    /// A string of the schema: its format, else its pattern and lengths.
    fn string(&mut self, rng: &mut StdRng, schema: &Value) -> String {
        if schema["format"] == "date-time" {
            return date_time(rng);
        }
        let (min, max) = bounds(schema, "minLength", "maxLength", 24);
        let fits = |s: &str| (min..=max).contains(&s.chars().count());
        match schema["pattern"].as_str() {
            Some(pattern) => {
                let mut last = String::new();
                for _ in 0..40 {
                    let repeat = *[0, 1, 2, 4, 8, 16, 32, 64]
                        .choose(rng)
                        .unwrap_or(&4)
                        .min(&u32::try_from(max).unwrap_or(u32::MAX));
                    last = self.matching(rng, pattern, repeat);
                    if fits(&last) {
                        return last;
                    }
                }
                last
            }
            None => {
                let length = count_between(rng, min, max);
                (0..length).map(|_| any_char(rng)).collect()
            }
        }
    }

    /// A string matching `pattern` (ECMA-262 as JSON Schema reads it: not anchored unless it
    /// says so), its repetitions at most `repeat` beyond their minimum.
    pub fn matching(&mut self, rng: &mut StdRng, pattern: &str, repeat: u32) -> String {
        let start = pattern.starts_with('^');
        let end = pattern.ends_with('$') && !pattern.ends_with("\\$");
        let core = &pattern[usize::from(start)..pattern.len() - usize::from(end)];
        let regex = self
            .regexes
            .entry((core.to_owned(), repeat))
            .or_insert_with(|| {
                rand_regex::Regex::compile(core, repeat)
                    .unwrap_or_else(|e| panic!("cannot generate from the pattern {pattern}: {e}"))
            });
        let mut text: String = rng.sample(&*regex);
        // An unanchored pattern matches inside any text.
        if !start && rng.random_bool(0.3) {
            text.insert_str(0, &random_text(rng, 4));
        }
        if !end && rng.random_bool(0.3) {
            text.push_str(&random_text(rng, 4));
        }
        text
    }

    /// A value like `current` that breaks one constraint of the schema at `pointer` (its own or
    /// one of a member's or item's), with a description of what it breaks; `None` if nothing
    /// was found to break. The caller checks that the result is invalid.
    pub fn violate(
        &mut self,
        rng: &mut StdRng,
        pointer: &str,
        current: &Value,
    ) -> Option<(Value, String)> {
        let sites = self.doc.sites(pointer, current);
        for _ in 0..30 {
            let (at, schema_pointer) = sites.choose(rng)?.clone();
            let schema = self.doc.at(&schema_pointer).clone();
            let old = current.pointer(&at).cloned().unwrap_or(Value::Null);
            let kinds = violations(&schema, &old);
            let Some(kind) = kinds.choose(rng).copied() else {
                continue;
            };
            let Some(new) = self.break_one(rng, kind, &schema_pointer, &schema, &old) else {
                continue;
            };
            let mut out = current.clone();
            match out.pointer_mut(&at) {
                Some(target) => *target = new,
                None => continue,
            }
            let at = if at.is_empty() { "/" } else { at.as_str() };
            return Some((out, format!("{kind} at {at}")));
        }
        None
    }

    fn break_one(
        &mut self,
        rng: &mut StdRng,
        kind: &'static str,
        pointer: &str,
        schema: &Value,
        old: &Value,
    ) -> Option<Value> {
        let text = old.as_str().unwrap_or_default();
        Some(match kind {
            "type" => wrong_type(rng, schema),
            "enum" => json!(format!("not-{}", rng.random_range(0..1000))),
            "pattern" => json!(break_text(rng, text)),
            "minLength" => {
                let min = schema["minLength"].as_u64()? as usize;
                json!(text.chars().take(min.saturating_sub(1)).collect::<String>())
            }
            "maxLength" => {
                let max = schema["maxLength"].as_u64()? as usize;
                let extra = rng.random_range(1..=3);
                let mut long: String = text.chars().take(max).collect();
                while long.chars().count() < max + extra {
                    long.push('a');
                }
                json!(long)
            }
            "minimum" => number_text(integer_bound(schema, "minimum")? - 1),
            "maximum" => number_text(integer_bound(schema, "maximum")? + 1),
            "format" => json!(
                *[
                    "yesterday",
                    "2026-02-30T10:00:00Z",
                    "2026-11-28T25:00:00Z",
                    "2026-11-28",
                    "2026-11-28T10:00:00",
                ]
                .choose(rng)?
            ),
            "required" => {
                let mut map = old.as_object()?.clone();
                let present: Vec<&str> = schema["required"]
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|name| map.contains_key(*name))
                    .collect();
                let name = present.choose(rng)?.to_string();
                map.remove(&name);
                Value::Object(map)
            }
            "additionalProperties" => {
                let mut map = old.as_object()?.clone();
                map.insert(format!("unknown{}", rng.random_range(0..1000)), json!(1));
                Value::Object(map)
            }
            "minProperties" => json!({}),
            "maxProperties" | "propertyNames" => {
                let mut map = old.as_object()?.clone();
                let max = schema["maxProperties"].as_u64().unwrap_or(0) as usize;
                let at = format!("{pointer}/additionalProperties");
                let mut tries = 0;
                loop {
                    tries += 1;
                    let name = if kind == "propertyNames" {
                        self.bad_name(rng, pointer, schema)?
                    } else {
                        self.property_name(rng, pointer, schema)
                    };
                    let value = self.value(rng, &at);
                    map.insert(name, value);
                    if kind == "propertyNames" || map.len() > max || tries > 10 * (max + 1) {
                        break;
                    }
                }
                Value::Object(map)
            }
            "minItems" => json!([]),
            "maxItems" => {
                let mut items = old.as_array()?.clone();
                let max = schema["maxItems"].as_u64()? as usize;
                while items.len() <= max {
                    items.push(self.value(rng, &format!("{pointer}/items")));
                }
                Value::Array(items)
            }
            "not" => self.value(rng, &format!("{pointer}/not")),
            _ => return None,
        })
    }

    /// A member name that breaks the `propertyNames` of the object schema at `pointer`.
    fn bad_name(&mut self, rng: &mut StdRng, pointer: &str, schema: &Value) -> Option<String> {
        let names = format!("{pointer}/propertyNames");
        let names_schema = self.doc.schema(&names).clone();
        for _ in 0..20 {
            let candidate = if names_schema.get("not").is_some() && rng.random_bool(0.5) {
                self.value(rng, &format!("{}/not", self.doc.follow(&names)))
            } else {
                let name = self.property_name(rng, pointer, schema);
                json!(break_text(rng, &name))
            };
            if let Value::String(name) = &candidate
                && !self.doc.valid(&names, &candidate)
            {
                return Some(name.clone());
            }
        }
        None
    }
}

/// The constraints of `schema` that a value like `old` can be made to break.
fn violations(schema: &Value, old: &Value) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    let has = |key: &str| schema.get(key).is_some();
    if has("type") {
        kinds.push("type");
    }
    if has("enum") || has("const") {
        kinds.push("enum");
    }
    if old.is_string() {
        if has("pattern") {
            kinds.push("pattern");
        }
        if schema["minLength"].as_u64().is_some_and(|min| min > 0) {
            kinds.push("minLength");
        }
        if has("maxLength") {
            kinds.push("maxLength");
        }
        if schema["format"] == "date-time" {
            kinds.push("format");
        }
    }
    if old.is_number() {
        for key in ["minimum", "maximum"] {
            if has(key) {
                kinds.push(key);
            }
        }
    }
    if let Value::Object(map) = old {
        let required = schema["required"].as_array();
        if required.is_some_and(|r| {
            r.iter()
                .any(|n| n.as_str().is_some_and(|n| map.contains_key(n)))
        }) {
            kinds.push("required");
        }
        if schema["additionalProperties"] == json!(false) {
            kinds.push("additionalProperties");
        }
        if schema["minProperties"].as_u64().is_some_and(|min| min > 0) {
            kinds.push("minProperties");
        }
        if schema["additionalProperties"].is_object() {
            if has("maxProperties") {
                kinds.push("maxProperties");
            }
            if has("propertyNames") {
                kinds.push("propertyNames");
            }
        }
    }
    if old.is_array() {
        if schema["minItems"].as_u64().is_some_and(|min| min > 0) {
            kinds.push("minItems");
        }
        if has("maxItems") {
            kinds.push("maxItems");
        }
    }
    if has("not") {
        kinds.push("not");
    }
    kinds
}

/// One of the types `schema` lists (rarely `null`), or what its keywords imply.
fn pick_type(rng: &mut StdRng, schema: &Value) -> &'static str {
    let listed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(types) => types.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let non_null: Vec<&str> = listed.iter().copied().filter(|t| *t != "null").collect();
    let chosen = if listed.contains(&"null") && (non_null.is_empty() || rng.random_bool(0.1)) {
        "null"
    } else if let Some(t) = non_null.choose(rng) {
        t
    } else if schema.get("properties").is_some() || schema.get("additionalProperties").is_some() {
        "object"
    } else if schema.get("items").is_some() {
        "array"
    } else {
        "string"
    };
    TYPES
        .iter()
        .chain(&["null"])
        .find(|t| **t == chosen)
        .copied()
        .unwrap_or("string")
}

/// A value of a type `schema` does not allow (never `null`: the API takes an absent optional
/// member and a `null` one alike, see the leniencies in `rules`).
fn wrong_type(rng: &mut StdRng, schema: &Value) -> Value {
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(types) => types.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let candidates: Vec<Value> = [
        ("string", json!("text")),
        ("integer", json!(7)),
        ("number", json!(1.5)),
        ("boolean", json!(true)),
        ("array", json!([])),
        ("object", json!({})),
    ]
    .into_iter()
    .filter(|(kind, value)| {
        let allowed_anyway = allowed.contains(kind)
            || (allowed.contains(&"number") && value.is_number())
            || (allowed.contains(&"integer") && value.is_i64());
        !allowed_anyway
    })
    .map(|(_, value)| value)
    .collect();
    candidates.choose(rng).cloned().unwrap_or(json!([]))
}

/// `text` changed so that it probably no longer matches a pattern it matched: a character
/// inserted, removed or replaced, or other text altogether.
pub(crate) fn break_text(rng: &mut StdRng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    match rng.random_range(0..5) {
        0 if !chars.is_empty() => {
            chars.remove(rng.random_range(0..chars.len()));
        }
        1 if !chars.is_empty() => {
            let at = rng.random_range(0..chars.len());
            chars[at] = *['_', '/', '%', 'Z', ' ', '\u{e9}', '~']
                .choose(rng)
                .unwrap_or(&'_');
        }
        2 => {
            let at = rng.random_range(0..=chars.len());
            chars.insert(
                at,
                *['_', '/', 'Q', '!', ' ', '\u{2603}']
                    .choose(rng)
                    .unwrap_or(&'!'),
            );
        }
        3 => return random_text(rng, 12),
        _ => chars.push(*['\u{7f}', ' ', '\t', '#', 'X'].choose(rng).unwrap_or(&'#')),
    }
    chars.into_iter().collect()
}

/// (min, max) of a pair of size keywords; `spread` beyond the minimum when there is no maximum.
fn bounds(schema: &Value, min_key: &str, max_key: &str, spread: usize) -> (usize, usize) {
    let min = schema[min_key].as_u64().unwrap_or(0) as usize;
    let max = schema[max_key]
        .as_u64()
        .map_or(min + spread, |max| max as usize);
    (min, max.max(min))
}

/// A count from `min` to `max`: mostly small, sometimes the maximum.
fn count_between(rng: &mut StdRng, min: usize, max: usize) -> usize {
    if max > min && rng.random_bool(0.05) {
        return max;
    }
    rng.random_range(min..=max.min(min + 4))
}

fn integer_bound(schema: &Value, key: &str) -> Option<i128> {
    let exclusive = if key == "minimum" {
        "exclusiveMinimum"
    } else {
        "exclusiveMaximum"
    };
    let as_i128 = |v: &Value| {
        v.as_u64()
            .map(i128::from)
            .or_else(|| v.as_i64().map(i128::from))
    };
    match (as_i128(&schema[key]), as_i128(&schema[exclusive])) {
        (Some(bound), _) => Some(bound),
        (None, Some(bound)) if key == "minimum" => Some(bound + 1),
        (None, Some(bound)) => Some(bound - 1),
        _ => None,
    }
}

/// An integer of the schema's range: often a bound or near the minimum, sometimes anywhere.
fn integer(rng: &mut StdRng, schema: &Value) -> Value {
    let min = integer_bound(schema, "minimum");
    let max = integer_bound(schema, "maximum");
    let (low, high) = match (min, max) {
        (Some(low), Some(high)) => (low, high),
        (Some(low), None) => (low, low + 1_000_000),
        (None, Some(high)) => (high - 1_000_000, high),
        (None, None) => (-1_000_000, 1_000_000),
    };
    let value = match rng.random_range(0..10) {
        0 => low,
        1 => high,
        2..=6 => rng.random_range(low..=high.min(low + 1000)),
        _ => rng.random_range(low..=high),
    };
    number_text(value)
}

/// `value` as a JSON number (beyond 64 bits: as a float, as JSON would read it).
fn number_text(value: i128) -> Value {
    if let Ok(small) = i64::try_from(value) {
        json!(small)
    } else if let Ok(big) = u64::try_from(value) {
        json!(big)
    } else {
        serde_json::from_str(&value.to_string()).unwrap_or(Value::Null)
    }
}

/// An RFC 3339 instant from 1970-01-02 to the year 9999, in any of its forms: `T` or `t`,
/// `Z`, `z` or a numeric offset, none to twelve fraction digits. (Seconds are 00 to 59: no leap
/// second.)
pub(crate) fn date_time(rng: &mut StdRng) -> String {
    let year = if rng.random_bool(0.8) {
        rng.random_range(1990..=2100)
    } else {
        rng.random_range(1970..=9999)
    };
    let month = rng.random_range(1..=12);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let first = if (year, month) == (1970, 1) { 2 } else { 1 };
    let day = rng.random_range(first..=days);
    let mut text = format!(
        "{year:04}-{month:02}-{day:02}{}{:02}:{:02}:{:02}",
        if rng.random_bool(0.9) { 'T' } else { 't' },
        rng.random_range(0..24),
        rng.random_range(0..60),
        rng.random_range(0..60),
    );
    if rng.random_bool(0.4) {
        text.push('.');
        for _ in 0..*[1, 3, 6, 9, 12].choose(rng).unwrap_or(&3) {
            text.push(char::from(b'0' + rng.random_range(0..10u8)));
        }
    }
    match rng.random_range(0..10) {
        0..=4 => text.push('Z'),
        5 => text.push('z'),
        _ => text.push_str(&format!(
            "{}{:02}:{:02}",
            if rng.random_bool(0.5) { '+' } else { '-' },
            rng.random_range(0..24),
            rng.random_range(0..60)
        )),
    }
    text
}

/// A character: mostly printable ASCII, sometimes any.
pub(crate) fn any_char(rng: &mut StdRng) -> char {
    match rng.random_range(0..10) {
        0..=6 => char::from(rng.random_range(0x20..0x7fu8)),
        7 => char::from_u32(rng.random_range(0xa0..0x800)).unwrap_or('\u{e9}'),
        8 => char::from_u32(rng.random_range(0x800..0xd800)).unwrap_or('\u{2603}'),
        _ => char::from_u32(rng.random_range(0x1_0000..0x11_0000)).unwrap_or('\u{1f600}'),
    }
}

/// Up to `max` [`any_char`]s.
pub(crate) fn random_text(rng: &mut StdRng, max: usize) -> String {
    let length = rng.random_range(0..=max);
    (0..length).map(|_| any_char(rng)).collect()
}

/// A generator's own random source from a seed, for the parts of a run that must not shift
/// when another part draws more or fewer numbers.
pub(crate) fn rng_from(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}
