//! The custom scalars of the Director's schema: `CLOB`, `PageCursor`, the string-to-strings maps
//! `Labels`, `HttpHeaders` and `QueryParams`, and `EventAPISubscriptionAttributes`
//! (`Timestamp` lives in [`crate::time`]).
//!
//! Each is also the type the records store, so what is validated here is what is kept.

use std::collections::BTreeMap;

use async_graphql::indexmap::IndexMap;
use async_graphql::{InputValueError, InputValueResult, Name, Scalar, ScalarType, Value};
use serde::{Deserialize, Serialize};

/// Text of any length (a spec document, a JSON schema).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Clob(pub String);

/// A character large object: text of any length, such as a whole spec document.
#[Scalar(name = "CLOB")]
impl ScalarType for Clob {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(text) => Ok(Self(text)),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// An opaque pagination cursor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageCursor(pub String);

/// An opaque position in a list: pass a page's `pageInfo.endCursor` as `after` to get the next
/// page.
#[Scalar(name = "PageCursor")]
impl ScalarType for PageCursor {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(text) => Ok(Self(text)),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// Reads a JSON-like object whose values are strings or lists of strings.
fn parse_multimap(value: Value) -> Result<BTreeMap<String, Vec<String>>, String> {
    let Value::Object(entries) = value else {
        return Err("expected an object of string lists, e.g. {\"key\": [\"value\"]}".to_owned());
    };
    let mut map = BTreeMap::new();
    for (key, value) in entries {
        let key = key.to_string();
        if key.is_empty() {
            return Err("keys must not be empty".to_owned());
        }
        let values = match value {
            Value::String(single) => vec![single],
            Value::List(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text),
                    _ => Err(format!("the values of `{key}` must be strings")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(format!("the value of `{key}` must be a list of strings")),
        };
        map.insert(key, values);
    }
    Ok(map)
}

fn multimap_value(map: &BTreeMap<String, Vec<String>>) -> Value {
    let entries: IndexMap<Name, Value> = map
        .iter()
        .map(|(key, values)| {
            let values = values.iter().cloned().map(Value::String).collect();
            (Name::new(key), Value::List(values))
        })
        .collect();
    Value::Object(entries)
}

/// Declares a string → list-of-strings scalar.
macro_rules! multimap_scalar {
    ($(#[$meta:meta])* $name:ident, $graphql:literal, $description:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub BTreeMap<String, Vec<String>>);

        #[doc = $description]
        #[Scalar(name = $graphql)]
        impl ScalarType for $name {
            fn parse(value: Value) -> InputValueResult<Self> {
                parse_multimap(value).map(Self).map_err(InputValueError::custom)
            }

            fn to_value(&self) -> Value {
                multimap_value(&self.0)
            }
        }
    };
}

multimap_scalar!(
    /// Labels of an application: each key has a set of values.
    Labels,
    "Labels",
    "Labels as an object of string lists: `{\"env\": [\"prod\"], \"team\": [\"shop\", \"erp\"]}`."
);
multimap_scalar!(
    /// Extra HTTP headers to send.
    HttpHeaders,
    "HttpHeaders",
    "HTTP headers as an object of string lists: `{\"X-Api-Key\": [\"k\"]}`."
);
multimap_scalar!(
    /// Extra query parameters to send.
    QueryParams,
    "QueryParams",
    "Query parameters as an object of string lists: `{\"api-version\": [\"2\"]}`."
);

impl HttpHeaders {
    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl QueryParams {
    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Attributes of a subscription on an external event bus.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscriptionAttributes(pub BTreeMap<String, String>);

/// Attributes of a subscription on an external event bus, as an object of strings:
/// `{"ackDeadlineSeconds": "30"}`.
#[Scalar(name = "EventAPISubscriptionAttributes")]
impl ScalarType for SubscriptionAttributes {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::Object(entries) = value else {
            return Err(InputValueError::custom(
                "expected an object of strings, e.g. {\"key\": \"value\"}",
            ));
        };
        let mut map = BTreeMap::new();
        for (key, value) in entries {
            let Value::String(text) = value else {
                return Err(InputValueError::custom(format!(
                    "the value of `{key}` must be a string"
                )));
            };
            map.insert(key.to_string(), text);
        }
        Ok(Self(map))
    }

    fn to_value(&self) -> Value {
        let entries: IndexMap<Name, Value> = self
            .0
            .iter()
            .map(|(key, value)| (Name::new(key), Value::String(value.clone())))
            .collect();
        Value::Object(entries)
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::value;

    use super::*;

    #[test]
    fn multimaps_accept_lists_and_single_strings() {
        let parsed = <Labels as ScalarType>::parse(value!({"env": ["prod", "eu"], "team": "shop"}));
        let expected = BTreeMap::from([
            ("env".to_owned(), vec!["prod".to_owned(), "eu".to_owned()]),
            ("team".to_owned(), vec!["shop".to_owned()]),
        ]);
        assert_eq!(parsed.ok(), Some(Labels(expected.clone())));
        assert_eq!(
            Labels(expected).to_value(),
            value!({"env": ["prod", "eu"], "team": ["shop"]})
        );
    }

    #[test]
    fn multimaps_reject_other_shapes() {
        for bad in [
            value!("x"),
            value!({"a": 1}),
            value!({"a": [1]}),
            value!({"": ["x"]}),
            value!([["a"]]),
        ] {
            assert!(
                <HttpHeaders as ScalarType>::parse(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn attributes_are_strings_only() {
        let parsed = <SubscriptionAttributes as ScalarType>::parse(value!({"a": "1"}));
        assert_eq!(parsed.ok().map(|a| a.to_value()), Some(value!({"a": "1"})));
        assert!(<SubscriptionAttributes as ScalarType>::parse(value!({"a": 1})).is_err());
        assert!(<SubscriptionAttributes as ScalarType>::parse(value!(["a"])).is_err());
    }
}
