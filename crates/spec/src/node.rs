//! The document tree every check works on: JSON's data model with object members kept in
//! document order, built straight from either parser.
//!
//! Our own tree rather than `serde_json::Value` so that channel order survives without switching
//! serde_json's `preserve_order` feature on for the whole workspace, and so that building it can
//! enforce the two limits that keep hostile input from exhausting memory or the stack: a nesting
//! depth and a budget of values (YAML aliases can make a small text expand enormously).

use std::cell::Cell;
use std::fmt;

use indexmap::IndexMap;
use indexmap::map::Entry;
use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::SpecError;

/// Deepest nesting of objects and arrays accepted in a document. Below the parsers' own limit
/// (128) so that our message is the one a user sees, and low enough that a document (or a payload
/// schema from it) stored inside a larger JSON record can still be read back by serde_json.
pub(crate) const MAX_NESTING: usize = 100;

/// One value of a document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Node>),
    Object(IndexMap<String, Node>),
}

impl Node {
    /// The members of this node's optional map `field` (at `path`, which maps `what`): none if
    /// it is absent or null; an error, at `path`, if it is not an object.
    pub(crate) fn map_members<'d>(
        &'d self,
        field: &str,
        path: &str,
        what: &str,
    ) -> Result<impl Iterator<Item = (&'d String, &'d Node)>, SpecError> {
        match self.get(field) {
            None | Some(Node::Null) => Ok(None.into_iter().flatten()),
            Some(Node::Object(members)) => Ok(Some(members.iter()).into_iter().flatten()),
            Some(other) => Err(SpecError::new(
                path,
                format!(
                    "`{field}` must be an object mapping {what}, found {}",
                    other.kind()
                ),
            )),
        }
    }

    /// The member `key` when this is an object that has it.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Object(members) => members.get(key),
            _ => None,
        }
    }

    pub(crate) fn as_object(&self) -> Option<&IndexMap<String, Node>> {
        match self {
            Node::Object(members) => Some(members),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::String(s) => Some(s),
            _ => None,
        }
    }

    /// The target of a reference object (`{"$ref": "..."}`): an object whose `$ref` is a string.
    pub(crate) fn ref_target(&self) -> Option<&str> {
        self.get("$ref").and_then(Node::as_str)
    }

    /// What kind of value this is, for messages ("found an array").
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Number(_) => "a number",
            Node::String(_) => "a string",
            Node::Array(_) => "an array",
            Node::Object(_) => "an object",
        }
    }

    /// The value as JSON. Recursion is bounded by [`MAX_NESTING`], enforced when the tree was built.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::String(s) => Value::String(s.clone()),
            Node::Array(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect::<Map<_, _>>(),
            ),
        }
    }

    /// Reads a document from `deserializer`, building at most `budget` values; returns it with
    /// the number of values it holds.
    pub(crate) fn read<'de, D: Deserializer<'de>>(
        deserializer: D,
        budget: usize,
    ) -> Result<(Node, usize), D::Error> {
        let left = Cell::new(budget);
        let node = NodeSeed {
            budget: &left,
            depth: 0,
        }
        .deserialize(deserializer)?;
        Ok((node, budget - left.get()))
    }
}

/// Written in document order (a bundled document keeps its members where they were).
impl serde::Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => serializer.serialize_unit(),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Number(n) => serde::Serialize::serialize(n, serializer),
            Node::String(s) => serializer.serialize_str(s),
            Node::Array(items) => serializer.collect_seq(items),
            Node::Object(members) => serializer.collect_map(members),
        }
    }
}

/// Builds one [`Node`], charging the shared budget and tracking depth.
#[derive(Clone, Copy)]
struct NodeSeed<'b> {
    budget: &'b Cell<usize>,
    depth: usize,
}

impl NodeSeed<'_> {
    fn charge<E: de::Error>(&self) -> Result<(), E> {
        match self.budget.get().checked_sub(1) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(E::custom(
                "the document expands to too many values through YAML aliases (an alias bomb?)",
            )),
        }
    }

    fn enter<E: de::Error>(&self) -> Result<NodeSeed<'_>, E> {
        self.charge()?;
        if self.depth >= MAX_NESTING {
            return Err(E::custom(format_args!(
                "objects and arrays are nested deeper than {MAX_NESTING} levels"
            )));
        }
        Ok(NodeSeed {
            budget: self.budget,
            depth: self.depth + 1,
        })
    }

    fn scalar<E: de::Error>(&self, node: Node) -> Result<Node, E> {
        self.charge()?;
        Ok(node)
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-compatible value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        self.scalar(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        self.scalar(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        self.scalar(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        self.scalar(Node::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        self.scalar(Node::Number(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        // Beyond 64 bits JSON numbers are floats anyway (serde_json without arbitrary precision).
        #[expect(clippy::cast_precision_loss, reason = "JSON has no wider integers")]
        self.visit_f64(v as f64)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        #[expect(clippy::cast_precision_loss, reason = "JSON has no wider integers")]
        self.visit_f64(v as f64)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        match Number::from_f64(v) {
            Some(n) => self.scalar(Node::Number(n)),
            None => Err(E::custom(format_args!(
                "the number {v} (YAML .inf or .nan) cannot be represented in JSON"
            ))),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        self.scalar(Node::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        self.scalar(Node::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let child = self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(child)? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let child = self.enter()?;
        let mut members = IndexMap::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(child)?;
            match members.entry(key) {
                Entry::Occupied(entry) => {
                    return Err(de::Error::custom(format_args!(
                        "duplicate key `{}`",
                        entry.key()
                    )));
                }
                Entry::Vacant(entry) => {
                    entry.insert(value);
                }
            }
        }
        apply_merge_key(&mut members).map_err(de::Error::custom)?;
        Ok(Node::Object(members))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        // serde_yaml_ng reports a value with a non-standard tag (`!Sub ...`) as an enum.
        let (tag, _) = data.variant::<String>()?;
        Err(de::Error::custom(format_args!(
            "the YAML tag `!{tag}` is not supported (specs must be plain JSON-compatible data)"
        )))
    }
}

/// YAML's merge key (`<<: *base` or `<<: [*a, *b]`), which the YAML parser leaves to the
/// consumer: members of the merged mappings are added unless the mapping already has them.
fn apply_merge_key(members: &mut IndexMap<String, Node>) -> Result<(), &'static str> {
    let Some(merged) = members.shift_remove("<<") else {
        return Ok(());
    };
    let sources = match merged {
        Node::Object(source) => vec![source],
        Node::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Node::Object(source) => Ok(source),
                _ => Err("a YAML merge key (`<<`) list must contain only mappings"),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("a YAML merge key (`<<`) must be a mapping or a list of mappings"),
    };
    for source in sources {
        for (key, value) in source {
            members.entry(key).or_insert(value);
        }
    }
    Ok(())
}

/// Reads an object key: a string, or a YAML scalar written as one (`200:`, `true:`).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or scalar mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok("null".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Node, serde_yaml_ng::Error> {
        Node::read(serde_yaml_ng::Deserializer::from_str(text), 10_000).map(|(node, _)| node)
    }

    #[test]
    fn members_keep_document_order() -> Result<(), serde_json::Error> {
        let (node, values) = Node::read(
            &mut serde_json::Deserializer::from_str(r#"{"z":1,"a":2,"m":3}"#),
            100,
        )?;
        assert_eq!(values, 4);
        let keys: Vec<_> = node
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .collect();
        assert_eq!(keys, ["z", "a", "m"]);
        Ok(())
    }

    #[test]
    fn merge_keys_add_missing_members_only() -> Result<(), serde_yaml_ng::Error> {
        let node = yaml("base: &b {type: object, x: 1}\nthis:\n  <<: *b\n  x: 2\n")?;
        let this = node.get("this").map(Node::to_json);
        assert_eq!(this, Some(serde_json::json!({"x": 2, "type": "object"})));
        Ok(())
    }

    #[test]
    fn scalar_keys_become_strings() -> Result<(), serde_yaml_ng::Error> {
        let node = yaml("200: ok\ntrue: yes\n")?;
        assert_eq!(
            node.to_json(),
            serde_json::json!({"200": "ok", "true": "yes"})
        );
        Ok(())
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let err = yaml("a: 1\na: 2\n").map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("duplicate key `a`"), "{err}");
    }

    #[test]
    fn nesting_is_limited() {
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_NESTING + 1),
            "]".repeat(MAX_NESTING + 1)
        );
        let err = Node::read(&mut serde_json::Deserializer::from_str(&deep), 10_000)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("nested deeper than 100 levels"), "{err}");
    }

    #[test]
    fn the_value_budget_stops_expansion() {
        let text = "a: &a [1, 2, 3, 4]\nb: [*a, *a, *a, *a]\n";
        assert!(Node::read(serde_yaml_ng::Deserializer::from_str(text), 100).is_ok());
        let err = Node::read(serde_yaml_ng::Deserializer::from_str(text), 10)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("too many values through YAML aliases"),
            "{err}"
        );
    }
}
