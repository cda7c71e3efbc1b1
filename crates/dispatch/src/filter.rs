//! Which events a subscription receives: [`Filter`], matched against a [`FilterSubject`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use eventplane_eventstore::StoredEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A subscription's filter: every criterion given must match (an absent criterion matches
/// everything; a valid filter has at least one). Serialized camelCase, absent criteria left
/// out, as in the API.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// The publishing application's name, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// Event types, any of which matches exactly (empty: no criterion).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// The event type starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_prefix: Option<String>,
    /// The event type ends with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_suffix: Option<String>,
    /// The CloudEvents `source`, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// CloudEvents extension attributes, each of which must be present with this value
    /// (compared as text, see [`attribute_text`]). Empty: no criterion.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// What a filter looks at in an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterSubject<'a> {
    /// The publishing application's name.
    pub application: &'a str,
    /// The CloudEvents `type`.
    pub type_name: &'a str,
    /// The CloudEvents `source`.
    pub source: &'a str,
    /// The CloudEvents extension attributes.
    pub extensions: &'a BTreeMap<String, Value>,
}

impl<'a> FilterSubject<'a> {
    /// The subject of a stored event.
    pub fn from_event(event: &'a StoredEvent) -> Self {
        Self {
            application: &event.application,
            type_name: &event.type_name,
            source: &event.source,
            extensions: &event.extensions,
        }
    }
}

/// An extension attribute's value as the text a filter compares: a JSON string by its
/// content, any other JSON value by its JSON text (`true`, `42`, `null`).
pub fn attribute_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(text) => Cow::Borrowed(text),
        other => Cow::Owned(other.to_string()),
    }
}

impl Filter {
    /// Whether the filter has no criterion at all (such a filter is invalid: it is rejected
    /// when a subscription is parsed).
    pub fn is_empty(&self) -> bool {
        self.application.is_none()
            && self.types.is_empty()
            && self.type_prefix.is_none()
            && self.type_suffix.is_none()
            && self.source.is_none()
            && self.attributes.is_empty()
    }

    /// Whether an event with this subject passes every criterion. An empty filter matches
    /// nothing, so that a record that somehow lost its criteria never receives every event.
    pub fn matches(&self, event: &FilterSubject<'_>) -> bool {
        let attributes = self.attributes.iter().all(|(name, expected)| {
            event
                .extensions
                .get(name)
                .is_some_and(|value| attribute_text(value) == expected.as_str())
        });
        self.may_match_type(event.application, event.type_name, event.source) && attributes
    }

    /// Whether some event of `application` with this type and source can match: every
    /// criterion but the extension attributes, which depend on each event. (What Kyma's
    /// "subscribed event types" report.) An empty filter matches nothing.
    pub fn may_match_type(&self, application: &str, type_name: &str, source: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        let application_ok = self
            .application
            .as_deref()
            .is_none_or(|name| name == application);
        let types = self.types.is_empty() || self.types.iter().any(|t| t == type_name);
        let prefix = self
            .type_prefix
            .as_deref()
            .is_none_or(|prefix| type_name.starts_with(prefix));
        let suffix = self
            .type_suffix
            .as_deref()
            .is_none_or(|suffix| type_name.ends_with(suffix));
        let source_ok = self.source.as_deref().is_none_or(|s| s == source);
        application_ok && types && prefix && suffix && source_ok
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn may_match_type_ignores_only_the_attributes() {
        let filter = Filter {
            application: Some("shop".into()),
            type_prefix: Some("order.".into()),
            attributes: [("region".to_owned(), "eu".to_owned())].into(),
            ..Filter::default()
        };
        assert!(filter.may_match_type("shop", "order.created.v1", "/applications/shop"));
        assert!(!filter.may_match_type("erp", "order.created.v1", "/applications/erp"));
        assert!(!filter.may_match_type("shop", "invoice.paid.v1", "/applications/shop"));
        let none = BTreeMap::new();
        let subject = FilterSubject {
            application: "shop",
            type_name: "order.created.v1",
            source: "/applications/shop",
            extensions: &none,
        };
        assert!(
            !filter.matches(&subject),
            "the attribute is still required of events"
        );
        assert!(!Filter::default().may_match_type("shop", "a", "/applications/shop"));
    }

    use eventplane_core::{AppId, EventId, TenantId};
    use eventplane_eventstore::EventData;
    use serde_json::json;

    use super::*;

    fn extensions() -> BTreeMap<String, Value> {
        BTreeMap::from([
            ("region".to_owned(), json!("eu")),
            ("priority".to_owned(), json!(5)),
            ("urgent".to_owned(), json!(true)),
            ("nothing".to_owned(), Value::Null),
            ("quoted".to_owned(), json!("\"eu\"")),
        ])
    }

    fn subject(extensions: &BTreeMap<String, Value>) -> FilterSubject<'_> {
        FilterSubject {
            application: "shop",
            type_name: "order.created.v1",
            source: "/applications/shop",
            extensions,
        }
    }

    #[test]
    fn each_criterion_matches_and_rejects() {
        let ext = extensions();
        let event = subject(&ext);
        let cases: Vec<(Filter, bool)> = vec![
            (filter_application("shop"), true),
            (filter_application("Shop"), false),
            (filter_application("shop2"), false),
            (filter_types(&["order.created.v1"]), true),
            (filter_types(&["order.paid.v1", "order.created.v1"]), true),
            (filter_types(&["order.created"]), false),
            (
                Filter {
                    type_prefix: Some("order.".into()),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    type_prefix: Some("user.".into()),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    type_suffix: Some(".v1".into()),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    type_suffix: Some(".v2".into()),
                    ..Filter::default()
                },
                false,
            ),
            (
                Filter {
                    source: Some("/applications/shop".into()),
                    ..Filter::default()
                },
                true,
            ),
            (
                Filter {
                    source: Some("/applications/shop/".into()),
                    ..Filter::default()
                },
                false,
            ),
        ];
        for (filter, expected) in cases {
            assert_eq!(filter.matches(&event), expected, "{filter:?}");
        }
    }

    #[test]
    fn attributes_compare_as_text() {
        let ext = extensions();
        let event = subject(&ext);
        for (name, value, expected) in [
            ("region", "eu", true),
            ("region", "\"eu\"", false),
            ("region", "us", false),
            ("priority", "5", true),
            ("priority", "5.0", false),
            ("urgent", "true", true),
            ("nothing", "null", true),
            ("quoted", "\"eu\"", true),
            ("quoted", "eu", false),
            ("absent", "", false),
        ] {
            let filter = Filter {
                attributes: BTreeMap::from([(name.to_owned(), value.to_owned())]),
                ..Filter::default()
            };
            assert_eq!(filter.matches(&event), expected, "{name}={value}");
        }
    }

    #[test]
    fn all_given_criteria_must_match() {
        let ext = extensions();
        let event = subject(&ext);
        let mut filter = Filter {
            application: Some("shop".into()),
            types: vec!["order.created.v1".into()],
            type_prefix: Some("order".into()),
            type_suffix: Some("v1".into()),
            source: Some("/applications/shop".into()),
            attributes: BTreeMap::from([("region".to_owned(), "eu".to_owned())]),
        };
        assert!(filter.matches(&event));
        filter.attributes.insert("priority".into(), "6".into());
        assert!(!filter.matches(&event));
    }

    #[test]
    fn an_empty_filter_matches_nothing() {
        let ext = extensions();
        assert!(Filter::default().is_empty());
        assert!(!Filter::default().matches(&subject(&ext)));
    }

    #[test]
    fn subjects_come_from_stored_events() -> Result<(), Box<dyn std::error::Error>> {
        let event = StoredEvent {
            id: "evt_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f".parse::<EventId>()?,
            tenant: TenantId::new("acme")?,
            application: "shop".into(),
            app_id: AppId::new(),
            source: "/applications/shop".into(),
            event_id: "1".into(),
            type_name: "order.created.v1".into(),
            type_version: Some("v1".into()),
            spec_version: "1.0".into(),
            time: None,
            datacontenttype: None,
            dataschema: None,
            subject: None,
            extensions: extensions(),
            data: EventData::None,
            received_at: 0,
            sequence: 1,
        };
        let ext = extensions();
        assert_eq!(FilterSubject::from_event(&event), subject(&ext));
        Ok(())
    }

    fn filter_application(name: &str) -> Filter {
        Filter {
            application: Some(name.into()),
            ..Filter::default()
        }
    }

    fn filter_types(types: &[&str]) -> Filter {
        Filter {
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            ..Filter::default()
        }
    }
}
