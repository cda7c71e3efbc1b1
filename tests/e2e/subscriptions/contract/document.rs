//! The OpenAPI document as the run reads it: its operations (parameters, request body,
//! responses, security), local `$ref`s followed, and JSON Schema validators for any schema in
//! it, named by JSON pointer.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, bail};
use jsonschema::Validator;
use serde_json::{Map, Value, json};

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Location {
    Path,
    Query,
    Header,
}

/// A parameter of an operation; its schema by JSON pointer.
#[derive(Debug, Clone)]
pub(crate) struct Parameter {
    pub name: String,
    pub location: Location,
    pub required: bool,
    pub schema: String,
}

/// A documented response: the pointer of its JSON schema, if it has a JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub schema: Option<String>,
}

/// One operation of the document.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub id: String,
    pub method: reqwest::Method,
    /// The path template (`/subscriptions/{id}`).
    pub path: String,
    pub parameters: Vec<Parameter>,
    /// The request body: whether it is required, and the pointer of its JSON schema.
    pub body: Option<(bool, String)>,
    /// Documented statuses (`"200"`, `"404"`, or `"default"`).
    pub responses: BTreeMap<String, Response>,
    /// Whether the operation needs the admin token.
    pub secured: bool,
}

impl Operation {
    /// The parameter `name` in `location`, if the operation has one.
    pub fn parameter(&self, location: Location, name: &str) -> Option<&Parameter> {
        self.parameters
            .iter()
            .find(|p| p.location == location && p.name.eq_ignore_ascii_case(name))
    }

    /// The documented response for `status`, or the `default` one.
    pub fn response(&self, status: u16) -> Option<&Response> {
        self.responses
            .get(&status.to_string())
            .or_else(|| self.responses.get("default"))
    }
}

/// The document, with a cache of compiled validators.
pub(crate) struct Document {
    pub root: Value,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

/// `name` escaped as one JSON pointer segment.
pub(crate) fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// `pointer` as a URI fragment (RFC 6901, section 6): percent-encoded where a fragment may not
/// hold the character (`{id}`).
fn fragment(pointer: &str) -> String {
    let mut out = String::new();
    for c in pointer.chars() {
        if c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?".contains(c) {
            out.push(c);
        } else {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

impl Document {
    pub fn new(root: Value) -> Self {
        Self {
            root,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// The value at `pointer` (`/components/schemas/X`), `Null` if there is none.
    pub fn at(&self, pointer: &str) -> &Value {
        self.root.pointer(pointer).unwrap_or(&Value::Null)
    }

    /// `pointer` with every `$ref` at it followed (local references only), so that the result
    /// names the object that holds the content.
    pub fn follow(&self, pointer: &str) -> String {
        let mut pointer = pointer.to_owned();
        for _ in 0..32 {
            match self.at(&pointer).get("$ref").and_then(Value::as_str) {
                Some(reference) => match reference.strip_prefix('#') {
                    Some(local) => pointer = local.to_owned(),
                    None => panic!("only local references are supported: {reference}"),
                },
                None => return pointer,
            }
        }
        panic!("a cycle of $refs at {pointer}");
    }

    /// The resolved value at `pointer` (see [`follow`](Self::follow)).
    pub fn schema(&self, pointer: &str) -> &Value {
        self.at(&self.follow(pointer))
    }

    /// A validator of the schema at `pointer` (JSON Schema 2020-12, formats asserted), whose
    /// `$ref`s resolve in the whole document.
    pub fn validator(&self, pointer: &str) -> Arc<Validator> {
        let mut cache = self.validators.lock().expect("validator cache");
        if let Some(validator) = cache.get(pointer) {
            return validator.clone();
        }
        let mut root: Map<String, Value> = self.root.as_object().cloned().unwrap_or_default();
        root.insert("$ref".into(), json!(format!("#{}", fragment(pointer))));
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .unwrap_or_else(|e| panic!("the schema at {pointer} does not compile: {e}"));
        let validator = Arc::new(validator);
        cache.insert(pointer.to_owned(), validator.clone());
        validator
    }

    /// Whether `value` is valid by the schema at `pointer`.
    pub fn valid(&self, pointer: &str, value: &Value) -> bool {
        self.validator(pointer).is_valid(value)
    }

    /// The problems of `value` by the schema at `pointer`, for reports.
    pub fn problems(&self, pointer: &str, value: &Value) -> Vec<String> {
        self.validator(pointer)
            .iter_errors(value)
            .take(5)
            .map(|e| format!("{} (at {})", e, e.instance_path()))
            .collect()
    }

    /// Every (place in `value` as a JSON pointer, pointer of its schema) pair under the schema
    /// at `pointer`: `value` itself, its members and items, through the branch of a
    /// `oneOf`/`anyOf` that it takes (and every part of an `allOf`).
    pub fn sites(&self, pointer: &str, value: &Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.sites_into(pointer, value, String::new(), &mut out);
        out
    }

    fn sites_into(
        &self,
        pointer: &str,
        value: &Value,
        at: String,
        out: &mut Vec<(String, String)>,
    ) {
        let pointer = self.follow(pointer);
        let schema = self.at(&pointer);
        out.push((at.clone(), pointer.clone()));
        for key in ["oneOf", "anyOf", "allOf"] {
            let count = schema[key].as_array().map_or(0, Vec::len);
            for branch in 0..count {
                let branch = format!("{pointer}/{key}/{branch}");
                if key == "allOf" || self.valid(&branch, value) {
                    self.sites_into(&branch, value, at.clone(), out);
                    if key != "allOf" {
                        break;
                    }
                }
            }
        }
        match value {
            Value::Object(map) => {
                for (name, member) in map {
                    let inside = format!("{at}/{}", escape(name));
                    if schema["properties"].get(name).is_some() {
                        let member_pointer = format!("{pointer}/properties/{}", escape(name));
                        self.sites_into(&member_pointer, member, inside, out);
                    } else if schema["additionalProperties"].is_object() {
                        let member_pointer = format!("{pointer}/additionalProperties");
                        self.sites_into(&member_pointer, member, inside, out);
                    }
                }
            }
            Value::Array(items) if schema.get("items").is_some() => {
                for (index, item) in items.iter().enumerate() {
                    let inside = format!("{at}/{index}");
                    self.sites_into(&format!("{pointer}/items"), item, inside, out);
                }
            }
            _ => {}
        }
    }

    /// Every operation, in document order.
    pub fn operations(&self) -> anyhow::Result<Vec<Operation>> {
        let global_security = self.root.get("security").cloned();
        let mut operations = Vec::new();
        let paths = self.root["paths"].as_object().context("no paths")?;
        for (path, item) in paths {
            let item_pointer = format!("/paths/{}", escape(path));
            let item_object = item.as_object().context("a path item")?;
            for (method, operation) in item_object {
                if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                    continue;
                }
                let op_pointer = format!("{item_pointer}/{method}");
                let mut parameters: Vec<Parameter> = Vec::new();
                for (owner, list) in [
                    (&item_pointer, item.get("parameters")),
                    (&op_pointer, operation.get("parameters")),
                ] {
                    let count = list.and_then(Value::as_array).map_or(0, Vec::len);
                    for index in 0..count {
                        let pointer = self.follow(&format!("{owner}/parameters/{index}"));
                        let parameter = self.parameter(&pointer)?;
                        // An operation's parameter overrides the path item's of the same name.
                        parameters.retain(|p| {
                            !(p.location == parameter.location && p.name == parameter.name)
                        });
                        parameters.push(parameter);
                    }
                }
                let body = match operation.get("requestBody") {
                    None => None,
                    Some(_) => {
                        let pointer = self.follow(&format!("{op_pointer}/requestBody"));
                        let required = self.at(&pointer)["required"].as_bool().unwrap_or(false);
                        let schema = format!("{pointer}/content/application~1json/schema");
                        if self.root.pointer(&schema).is_none() {
                            bail!("{op_pointer}: the request body has no application/json schema");
                        }
                        Some((required, schema))
                    }
                };
                let mut responses = BTreeMap::new();
                for (status, _) in operation["responses"].as_object().context("responses")? {
                    let pointer = self.follow(&format!("{op_pointer}/responses/{status}"));
                    let schema = format!("{pointer}/content/application~1json/schema");
                    let schema = self.root.pointer(&schema).is_some().then_some(schema);
                    responses.insert(status.clone(), Response { schema });
                }
                let security = operation
                    .get("security")
                    .or(global_security.as_ref())
                    .and_then(Value::as_array);
                let secured = security.is_some_and(|requirements| {
                    !requirements.is_empty()
                        && requirements
                            .iter()
                            .all(|r| r.as_object().is_some_and(|r| !r.is_empty()))
                });
                operations.push(Operation {
                    id: operation["operationId"]
                        .as_str()
                        .unwrap_or(&op_pointer)
                        .to_owned(),
                    method: method.to_uppercase().parse()?,
                    path: path.clone(),
                    parameters,
                    body,
                    responses,
                    secured,
                });
            }
        }
        Ok(operations)
    }

    fn parameter(&self, pointer: &str) -> anyhow::Result<Parameter> {
        let value = self.at(pointer);
        let location = match value["in"].as_str() {
            Some("path") => Location::Path,
            Some("query") => Location::Query,
            Some("header") => Location::Header,
            other => bail!("{pointer}: parameters in {other:?} are not supported"),
        };
        Ok(Parameter {
            name: value["name"]
                .as_str()
                .context("a parameter name")?
                .to_owned(),
            location,
            required: value["required"].as_bool().unwrap_or(false),
            schema: format!("{pointer}/schema"),
        })
    }
}
