//! Local `$ref`s: following them to the value they name ([`Resolver::deref`], for channels and
//! messages) and expanding them inside payload schemas ([`Resolver::expand`]), so that the
//! catalog carries self-contained schemas the gateway can use without the document.

use serde_json::{Map, Value};

use crate::error::SpecError;
use crate::node::{MAX_NESTING, Node};
use crate::pointer::{self, Reference};

/// Longest chain of `$ref`s nested inside one another while expanding a schema.
const MAX_REF_NESTING: usize = 64;

/// JSON Schema keywords whose values are data, not schemas: a `$ref` inside an example is text.
const LITERAL_KEYWORDS: [&str; 5] = ["const", "default", "enum", "example", "examples"];

/// JSON Schema keywords whose values map names to schemas: their keys are names, not keywords
/// (a property may well be called `default`).
const SCHEMA_MAPS: [&str; 6] = [
    "properties",
    "patternProperties",
    "definitions",
    "$defs",
    "dependentSchemas",
    "dependencies",
];

/// A value reached by following `$ref`s, with the pointer where it really is (errors about its
/// contents point there, not at the reference).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located<'d, 'p> {
    pub(crate) node: &'d Node,
    pub(crate) path: &'p str,
}

/// Resolves the local references of one document.
pub(crate) struct Resolver<'d> {
    root: &'d Node,
    /// Values that expanded schemas may still produce: shared references are copied wherever
    /// they are used, so a small document could otherwise expand exponentially.
    budget: usize,
}

/// Where a schema value stands, which decides how its members are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// A schema: members are keywords, `$ref` is a reference.
    Schema,
    /// A map from names to schemas (`properties`).
    Names,
    /// Data (`examples`, `enum`): copied as it is.
    Literal,
}

impl<'d> Resolver<'d> {
    /// A resolver for `root`, whose expanded schemas may hold `budget` values in all.
    pub(crate) fn new(root: &'d Node, budget: usize) -> Self {
        Self { root, budget }
    }

    /// `node` itself, or, when it is a reference object, the value its chain of `$ref`s ends at.
    /// `path` is where `node` is.
    pub(crate) fn deref(
        &self,
        node: &'d Node,
        path: &str,
    ) -> Result<(&'d Node, String), SpecError> {
        let mut current = (node, path.to_owned());
        let mut chain: Vec<String> = Vec::new();
        while let Some(reference) = current.0.ref_target() {
            let at = pointer::child(&current.1, "$ref");
            let (target, target_path) = self.target(reference, &at)?;
            if target_path == path {
                chain.insert(0, path.to_owned());
            }
            if let Some(start) = chain.iter().position(|p| *p == target_path) {
                chain.push(target_path);
                return Err(cycle(&at, &chain[start..]));
            }
            chain.push(target_path.clone());
            current = (target, target_path);
        }
        Ok(current)
    }

    /// The value at `at` (a located node) with every `$ref` inside it replaced by a copy of its
    /// target, recursively: a self-contained JSON Schema.
    pub(crate) fn expand(&mut self, schema: Located<'d, '_>) -> Result<Value, SpecError> {
        let mut stack = vec![schema.path.to_owned()];
        self.expand_in(schema.node, schema.path, Context::Schema, 0, &mut stack)
    }

    /// The value at `at` copied as it is: for schemas in other languages than JSON Schema,
    /// where `$ref` means nothing.
    pub(crate) fn copy(&mut self, at: Located<'d, '_>) -> Result<Value, SpecError> {
        self.expand_in(at.node, at.path, Context::Literal, 0, &mut Vec::new())
    }

    fn expand_in(
        &mut self,
        node: &'d Node,
        path: &str,
        context: Context,
        depth: usize,
        stack: &mut Vec<String>,
    ) -> Result<Value, SpecError> {
        if context == Context::Schema
            && let Some(reference) = node.ref_target()
        {
            let at = pointer::child(path, "$ref");
            let (target, target_path) = self.target(reference, &at)?;
            if let Some(start) = stack.iter().position(|p| *p == target_path) {
                stack.push(target_path);
                return Err(cycle(&at, &stack[start..]));
            }
            if stack.len() > MAX_REF_NESTING {
                return Err(SpecError::new(
                    at,
                    format!("$refs are nested more than {MAX_REF_NESTING} deep"),
                ));
            }
            stack.push(target_path.clone());
            let expanded = self.expand_in(target, &target_path, context, depth, stack)?;
            stack.pop();
            return Ok(expanded);
        }
        self.charge(path)?;
        match node {
            Node::Array(items) => {
                self.check_depth(depth, path)?;
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let item_path = pointer::child(path, i.to_string());
                    out.push(self.expand_in(item, &item_path, context, depth + 1, stack)?);
                }
                Ok(Value::Array(out))
            }
            Node::Object(members) => {
                self.check_depth(depth, path)?;
                let mut out = Map::new();
                for (key, value) in members {
                    let inner = match context {
                        Context::Literal => Context::Literal,
                        Context::Names => Context::Schema,
                        Context::Schema if LITERAL_KEYWORDS.contains(&key.as_str()) => {
                            Context::Literal
                        }
                        Context::Schema if SCHEMA_MAPS.contains(&key.as_str()) => Context::Names,
                        Context::Schema => Context::Schema,
                    };
                    let member_path = pointer::child(path, key);
                    let expanded = self.expand_in(value, &member_path, inner, depth + 1, stack)?;
                    out.insert(key.clone(), expanded);
                }
                Ok(Value::Object(out))
            }
            scalar => Ok(scalar.to_json()),
        }
    }

    /// The value a `$ref` names, and its canonical pointer. `at` is where the `$ref` is. Unlike
    /// [`deref`](Self::deref), a target that is itself a reference is not followed.
    pub(crate) fn target(
        &self,
        reference: &str,
        at: &str,
    ) -> Result<(&'d Node, String), SpecError> {
        let tokens = match Reference::parse(reference) {
            Reference::Local(tokens) => tokens,
            Reference::Remote => {
                return Err(SpecError::new(at, crate::bundle::unbundled_ref(reference)));
            }
            Reference::Malformed => {
                return Err(SpecError::new(
                    at,
                    format!(
                        "$ref `{reference}` is not a JSON Pointer into this document \
                         (expected `#/components/...`)"
                    ),
                ));
            }
        };
        match self.locate(&tokens) {
            Some((target, path)) => Ok((target, path)),
            None => Err(SpecError::new(
                at,
                format!(
                    "$ref `{reference}` does not resolve{}",
                    self.missing_hint(&tokens)
                ),
            )),
        }
    }

    /// The value at `tokens` and its canonical pointer. A step that lands on a reference object
    /// continues from its target: `#/channels/orders/messages/created` works when the channel
    /// `orders` is itself a `$ref`, as AsyncAPI 3 operations commonly write it.
    fn locate(&self, tokens: &[String]) -> Option<(&'d Node, String)> {
        let mut node = self.root;
        let mut path = String::new();
        let mut hops = 0;
        for token in tokens {
            while token != "$ref"
                && let Some(reference) = node.ref_target()
            {
                hops += 1;
                let Reference::Local(target) = Reference::parse(reference) else {
                    return None;
                };
                if hops > MAX_REF_NESTING {
                    return None;
                }
                node = pointer::lookup(self.root, &target)?;
                path = pointer::join(&target);
            }
            node = match node {
                Node::Object(members) => members.get(token.as_str())?,
                Node::Array(items) => items.get(pointer::array_index(token)?)?,
                _ => return None,
            };
            path = pointer::child(&path, token);
        }
        Some((node, path))
    }

    /// Which step of a dangling pointer fails: "(`/components/messages` has no `Nope`)".
    fn missing_hint(&self, tokens: &[String]) -> String {
        let found = (0..tokens.len())
            .rev()
            .find(|&n| self.locate(&tokens[..n]).is_some())
            .unwrap_or(0);
        let parent = pointer::join(&tokens[..found]);
        let parent = if parent.is_empty() {
            "the document"
        } else {
            &parent
        };
        match tokens.get(found) {
            Some(missing) => format!(": {parent} has no `{missing}`"),
            None => String::new(),
        }
    }

    fn charge(&mut self, path: &str) -> Result<(), SpecError> {
        match self.budget.checked_sub(1) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(SpecError::new(
                path,
                "payload schemas grow too large once their $refs are copied in \
                 (shared schemas referenced in too many places?)",
            )),
        }
    }

    fn check_depth(&self, depth: usize, path: &str) -> Result<(), SpecError> {
        if depth >= MAX_NESTING {
            Err(SpecError::new(
                path,
                format!(
                    "the payload schema nests deeper than {MAX_NESTING} levels once its $refs \
                     are resolved"
                ),
            ))
        } else {
            Ok(())
        }
    }
}

/// The error for a cycle: `steps` are the pointers visited, the last one repeating an earlier.
fn cycle(at: &str, steps: &[String]) -> SpecError {
    let through: Vec<String> = steps.iter().map(|step| format!("#{step}")).collect();
    SpecError::new(at, format!("$ref cycle through {}", through.join(" → ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Node {
        Node::read(serde_yaml_ng::Deserializer::from_str(text), 10_000)
            .map(|(node, _)| node)
            .unwrap_or(Node::Null)
    }

    fn expand_at(root: &Node, path: &[&str], budget: usize) -> Result<Value, SpecError> {
        let tokens: Vec<String> = path.iter().map(|t| (*t).to_owned()).collect();
        let node = pointer::lookup(root, &tokens).unwrap_or(&Node::Null);
        let path = pointer::join(&tokens);
        Resolver::new(root, budget).expand(Located { node, path: &path })
    }

    #[test]
    fn shared_schemas_are_copied_wherever_they_are_used() -> Result<(), SpecError> {
        let root = doc(concat!(
            "s:\n",
            "  Money: {type: number}\n",
            "  Order:\n",
            "    properties:\n",
            "      total: {$ref: '#/s/Money'}\n",
            "      tax: {$ref: '#/s/Money'}\n",
        ));
        let expanded = expand_at(&root, &["s", "Order"], 100)?;
        let money = serde_json::json!({"type": "number"});
        assert_eq!(
            expanded,
            serde_json::json!({"properties": {"total": money, "tax": money}})
        );
        Ok(())
    }

    #[test]
    fn refs_inside_examples_and_enums_are_data() -> Result<(), SpecError> {
        let root = doc(concat!(
            "s:\n",
            "  Link:\n",
            "    properties:\n",
            "      default: {type: string}\n",
            "    examples: [{$ref: '#/nowhere'}]\n",
        ));
        let expanded = expand_at(&root, &["s", "Link"], 100)?;
        assert_eq!(expanded["examples"][0]["$ref"], "#/nowhere");
        assert_eq!(expanded["properties"]["default"]["type"], "string");
        Ok(())
    }

    #[test]
    fn a_schema_referring_to_itself_is_a_cycle() {
        let root = doc("s:\n  Node:\n    items: {$ref: '#/s/Node'}\n");
        let err = expand_at(&root, &["s", "Node"], 100).unwrap_err();
        assert_eq!(err.path, "/s/Node/items/$ref");
        assert_eq!(err.message, "$ref cycle through #/s/Node → #/s/Node");
    }

    #[test]
    fn exponential_expansion_runs_out_of_budget() {
        let mut text = String::from("s:\n  l0: {type: string}\n");
        for level in 1..30 {
            let prev = level - 1;
            text.push_str(&format!(
                "  l{level}: {{items: [{{$ref: '#/s/l{prev}'}}, {{$ref: '#/s/l{prev}'}}]}}\n"
            ));
        }
        let root = doc(&text);
        let err = expand_at(&root, &["s", "l29"], 100_000).unwrap_err();
        assert!(err.message.contains("too large"), "{err}");
    }

    #[test]
    fn deref_follows_chains_and_reports_dangling_steps() -> Result<(), SpecError> {
        let root = doc("a: {$ref: '#/b'}\nb: {$ref: '#/c/0'}\nc: [{x: 1}]\nd: {$ref: '#/c/x'}\n");
        let resolver = Resolver::new(&root, 10);
        let a = root.get("a").unwrap_or(&Node::Null);
        let (node, path) = resolver.deref(a, "/a")?;
        assert_eq!(
            (node.to_json(), path.as_str()),
            (serde_json::json!({"x": 1}), "/c/0")
        );
        let d = root.get("d").unwrap_or(&Node::Null);
        let err = resolver.deref(d, "/d").unwrap_err();
        assert_eq!(err.message, "$ref `#/c/x` does not resolve: /c has no `x`");
        Ok(())
    }
}
