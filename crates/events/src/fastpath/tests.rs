//! The quick check against `jsonschema`: hand-picked cases, then many generated schemas and
//! values on which a `Valid` from the quick check must be `jsonschema`'s verdict too.

use serde_json::{Value, json};

use super::{Plan, Verdict};

fn jsonschema_valid(schema: &Value, value: &Value) -> Option<bool> {
    let options = if schema.get("$schema").is_some() {
        jsonschema::options()
    } else {
        jsonschema::options().with_draft(jsonschema::Draft::Draft7)
    };
    options.build(schema).ok().map(|v| v.is_valid(value))
}

fn quick(schema: &Value, value: &Value) -> Option<Verdict> {
    Plan::for_schema(schema).map(|plan| plan.check(value))
}

#[test]
fn plain_schemas_are_checked_directly() {
    let schema = json!({
        "type": "object", "required": ["orderId"],
        "properties": {"orderId": {"type": "string", "minLength": 1},
                       "total": {"type": "number", "minimum": 0},
                       "currency": {"type": "string", "enum": ["EUR", "USD"]},
                       "lines": {"type": "array", "items": {"type": "integer"}, "maxItems": 2}},
        "additionalProperties": false,
        "title": "Order", "x-internal": {"$ref": "#/nowhere"}
    });
    let cases = [
        (
            json!({"orderId": "o-1", "total": 3.5, "currency": "EUR"}),
            Verdict::Valid,
        ),
        (json!({"orderId": "o-1", "lines": [1, 2.0]}), Verdict::Valid),
        (json!({"total": 3}), Verdict::Invalid),
        (json!({"orderId": ""}), Verdict::Invalid),
        (json!({"orderId": "o", "total": -1}), Verdict::Invalid),
        (json!({"orderId": "o", "currency": "GBP"}), Verdict::Invalid),
        (
            json!({"orderId": "o", "lines": [1, 2, 3]}),
            Verdict::Invalid,
        ),
        (json!({"orderId": "o", "lines": [1.5]}), Verdict::Invalid),
        (json!({"orderId": "o", "other": 1}), Verdict::Invalid),
        (json!("o-1"), Verdict::Invalid),
    ];
    for (value, expected) in cases {
        assert_eq!(quick(&schema, &value), Some(expected), "{value}");
        assert_eq!(
            jsonschema_valid(&schema, &value),
            Some(expected == Verdict::Valid),
            "{value}"
        );
    }
}

#[test]
fn schemas_beyond_the_subset_have_no_plan() {
    for schema in [
        json!({"$ref": "#/definitions/a", "definitions": {"a": true}}),
        json!({"type": "string", "format": "email"}),
        json!({"type": "string", "pattern": "^a"}),
        json!({"anyOf": [{"type": "string"}]}),
        json!({"properties": {"a": {"not": {}}}}),
        json!({"$schema": "http://json-schema.org/draft-04/schema#", "type": "string"}),
        json!({"$schema": "https://json-schema.org/draft/2020-12/schema"}),
        json!({"properties": {"a": {"$schema": "http://json-schema.org/draft-07/schema#"}}}),
        json!({"type": "strin"}),
        json!({"type": ["string", "string"]}),
        json!({"required": ["a", "a"]}),
        json!({"minLength": -1}),
        json!({"minLength": 1.5}),
        json!({"exclusiveMinimum": true, "minimum": 1}),
        json!({"items": [{"type": "string"}]}),
        json!({"uniqueItems": true}),
        json!({"multipleOf": 0.1}),
        json!(3),
    ] {
        assert!(Plan::for_schema(&schema).is_none(), "{schema}");
    }
    let draft7 = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "string"});
    assert_eq!(quick(&draft7, &json!("a")), Some(Verdict::Valid));
}

#[test]
fn numbers_beyond_exact_f64_are_left_to_jsonschema() {
    let schema = json!({"maximum": 9_007_199_254_740_993_u64});
    assert!(Plan::for_schema(&schema).is_none());
    let schema = json!({"maximum": 10});
    assert_eq!(
        quick(&schema, &json!(9_007_199_254_740_993_u64)),
        Some(Verdict::Unsure)
    );
    let schema = json!({"const": 1});
    assert_eq!(quick(&schema, &json!(1.0)), Some(Verdict::Valid));
    assert_eq!(jsonschema_valid(&schema, &json!(1.0)), Some(true));
}

/// A small deterministic generator (xorshift), so that failures reproduce.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
    }
    fn number(&mut self) -> Value {
        match self.below(6) {
            0 => json!(self.below(5)),
            1 => json!(-(self.below(5) as i64)),
            2 => json!(self.below(5) as f64),
            3 => json!(self.below(50) as f64 / 4.0 - 5.0),
            4 => json!(u64::MAX - self.below(3)),
            _ => json!(i64::MIN + self.below(3) as i64),
        }
    }
    fn string(&mut self) -> Value {
        json!(*self.pick(&["", "a", "ab", "EUR", "héllo", "日本", "abc", "1"]))
    }
    fn value(&mut self, depth: u32) -> Value {
        let kinds = if depth == 0 { 4 } else { 6 };
        match self.below(kinds) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => self.number(),
            3 => self.string(),
            4 => Value::Array((0..self.below(4)).map(|_| self.value(depth - 1)).collect()),
            _ => {
                let mut map = serde_json::Map::new();
                for _ in 0..self.below(4) {
                    let key = self.pick(&["a", "b", "c", "d"]).to_string();
                    map.insert(key, self.value(depth - 1));
                }
                Value::Object(map)
            }
        }
    }
    fn schema(&mut self, depth: u32) -> Value {
        match self.below(12) {
            0 => return json!(true),
            1 => return json!(false),
            _ => {}
        }
        let mut map = serde_json::Map::new();
        for _ in 0..=self.below(4) {
            let types = [
                "null", "boolean", "integer", "number", "string", "array", "object",
            ];
            match self.below(if depth == 0 { 10 } else { 14 }) {
                0 => {
                    map.insert("type".into(), json!(*self.pick(&types)));
                }
                1 => {
                    let a = *self.pick(&types);
                    let b = *self.pick(&types);
                    if a != b {
                        map.insert("type".into(), json!([a, b]));
                    }
                }
                2 => {
                    let options: Vec<Value> = (0..=self.below(3)).map(|_| self.value(1)).collect();
                    map.insert("enum".into(), Value::Array(options));
                }
                3 => {
                    map.insert("const".into(), self.value(1));
                }
                4 => {
                    let k =
                        *self.pick(&["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]);
                    map.insert(k.into(), self.number());
                }
                5 => {
                    let k = *self.pick(&["minLength", "maxLength", "minItems", "maxItems"]);
                    map.insert(k.into(), json!(self.below(4)));
                }
                6 => {
                    let k = *self.pick(&["minProperties", "maxProperties"]);
                    map.insert(k.into(), json!(self.below(4)));
                }
                7 => {
                    let mut required: Vec<&str> = Vec::new();
                    for _ in 0..=self.below(2) {
                        let name = *self.pick(&["a", "b", "c"]);
                        if !required.contains(&name) {
                            required.push(name);
                        }
                    }
                    map.insert("required".into(), json!(required));
                }
                8 => {
                    map.insert("title".into(), json!("t"));
                }
                9 => {
                    map.insert("x-extra".into(), json!({"type": "string"}));
                }
                10 | 11 => {
                    let mut properties = serde_json::Map::new();
                    for _ in 0..=self.below(2) {
                        let name = self.pick(&["a", "b", "c"]).to_string();
                        properties.insert(name, self.schema(depth - 1));
                    }
                    map.insert("properties".into(), Value::Object(properties));
                }
                12 => {
                    map.insert("additionalProperties".into(), self.schema(depth - 1));
                }
                _ => {
                    map.insert("items".into(), self.schema(depth - 1));
                }
            }
        }
        Value::Object(map)
    }
}

#[test]
fn a_valid_verdict_always_agrees_with_jsonschema() {
    let mut g = Gen(0x5eed_1234_abcd_0001);
    let (mut valid, mut invalid, mut unsure, mut planned) = (0, 0, 0, 0);
    for round in 0..3000 {
        let schema = g.schema(2);
        // Bounds beyond exact f64 integers are the one generated feature left to jsonschema.
        let Some(plan) = Plan::for_schema(&schema) else {
            continue;
        };
        planned += 1;
        let Some(validator) = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .build(&schema)
            .ok()
        else {
            continue;
        };
        for _ in 0..20 {
            let value = g.value(3);
            let expected = validator.is_valid(&value);
            match plan.check(&value) {
                Verdict::Valid => {
                    valid += 1;
                    assert!(expected, "round {round}: {schema} called {value} valid");
                }
                Verdict::Invalid => {
                    invalid += 1;
                    assert!(!expected, "round {round}: {schema} called {value} invalid");
                }
                Verdict::Unsure => unsure += 1,
            }
        }
    }
    // The generator must exercise both outcomes.
    assert!(planned > 2000, "{planned} schemas planned");
    assert!(
        valid > 1000 && invalid > 1000,
        "{valid} valid, {invalid} invalid, {unsure} unsure"
    );
}
