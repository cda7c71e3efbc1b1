//! Typed identifiers.
//!
//! Every resource id is a newtype with a readable prefix followed by a UUID v7 in lowercase
//! simple hex (`app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f`): sortable by creation time, safe in URLs
//! and in key-value keys (no `/`), and impossible to mix up with another kind of id. Parsing
//! (including serde deserialization) validates the prefix and the body, so a parsed id is
//! always well-formed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::keys::Kind;

/// Text that is not a valid id or tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: expected {expected}")]
pub struct ParseIdError {
    what: &'static str,
    expected: &'static str,
}

impl ParseIdError {
    /// What was being parsed, e.g. "application id".
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The form that was expected, e.g. "`app_` followed by 32 lowercase hexadecimal digits".
    pub fn expected(&self) -> &'static str {
        self.expected
    }
}

/// What all prefixed id types share.
pub trait PrefixedId: Clone + fmt::Display + FromStr<Err = ParseIdError> {
    /// The prefix including its underscore, e.g. `"app_"`.
    const PREFIX: &'static str;
    /// The key-value record kind of the resource this id names (the prefix without `_`).
    const KIND: Kind;
    /// A human name for error messages, e.g. `"application id"`.
    const NAME: &'static str;

    /// The id as text.
    fn as_str(&self) -> &str;
}

/// Length of the hex body of every prefixed id (a UUID in simple form).
const BODY_LEN: usize = 32;

fn is_valid_body(body: &str) -> bool {
    body.len() == BODY_LEN && body.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

use uuid::timestamp::context::ContextV7;

/// A UUID v7 whose 12 bits after the millisecond timestamp carry the time to about a quarter
/// of a microsecond (RFC 9562, §6.2, method 3), so ids minted in the same millisecond (by
/// different component instances, which share no counter) still sort by creation time. Ids
/// minted on one thread never go back, even if the clock does.
fn new_v7() -> uuid::Uuid {
    thread_local! {
        static CONTEXT: ContextV7 = precise_context();
    }
    CONTEXT.with(|context| uuid::Uuid::new_v7(uuid::Timestamp::now(context)))
}

/// The context [`new_v7`] mints with: sub-millisecond precision in the counter bits.
fn precise_context() -> ContextV7 {
    ContextV7::new().with_additional_precision()
}

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $human:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("A fresh `", $kind, "_` id (UUID v7, so ids sort by creation time).")]
            #[expect(
                clippy::new_without_default,
                reason = "a default id would be a random one; minting an id should be explicit"
            )]
            pub fn new() -> Self {
                Self(format!(concat!($kind, "_{}"), new_v7().simple()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl PrefixedId for $name {
            const PREFIX: &'static str = concat!($kind, "_");
            const KIND: Kind = Kind::new($kind);
            const NAME: &'static str = $human;

            fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.strip_prefix(concat!($kind, "_")) {
                    Some(body) if is_valid_body(body) => Ok(Self(s.to_owned())),
                    _ => Err(ParseIdError {
                        what: $human,
                        expected: concat!(
                            "`", $kind, "_` followed by 32 lowercase hexadecimal digits"
                        ),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// An application that registers event APIs and publishes events (`app_…`).
    AppId,
    "app",
    "application id"
);
prefixed_id!(
    /// A registered event API definition (`api_…`).
    ApiId,
    "api",
    "event API id"
);
prefixed_id!(
    /// An accepted event (`evt_…`).
    EventId,
    "evt",
    "event id"
);
prefixed_id!(
    /// A subscription to events (`sub_…`).
    SubscriptionId,
    "sub",
    "subscription id"
);
prefixed_id!(
    /// One delivery attempt of an event to a subscription (`att_…`).
    AttemptId,
    "att",
    "attempt id"
);
prefixed_id!(
    /// OAuth2 client credentials issued to an application (`cli_…`).
    ClientId,
    "cli",
    "client id"
);
prefixed_id!(
    /// A webhook an application registered to hear about changes (`whk_…`).
    WebhookId,
    "whk",
    "webhook id"
);
prefixed_id!(
    /// A notification waiting in the webhook outbox (`ntf_…`).
    NotificationId,
    "ntf",
    "notification id"
);

/// The longest tenant name.
const TENANT_MAX_LEN: usize = 63;

/// A tenant: the scope of every stored key. Lowercase letters, digits and `-`, starting with a
/// letter or digit, at most 63 characters (`[a-z0-9][a-z0-9-]{0,62}`), so it is a safe key
/// segment and DNS-label-like.
///
/// There is deliberately no `Default`: the default tenant is configuration
/// (`default_tenant`), not a constant.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(String);

impl TenantId {
    /// Validates `name` as a tenant.
    pub fn new(name: impl Into<String>) -> Result<Self, ParseIdError> {
        let name = name.into();
        if is_valid_tenant(&name) {
            Ok(Self(name))
        } else {
            Err(ParseIdError {
                what: "tenant",
                expected: "1 to 63 lowercase letters, digits or `-`, starting with a letter or digit",
            })
        }
    }

    /// The tenant as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_valid_tenant(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            bytes.len() <= TENANT_MAX_LEN
                && matches!(first, b'a'..=b'z' | b'0'..=b'9')
                && rest
                    .iter()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        }
        None => false,
    }
}

impl FromStr for TenantId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for TenantId {
    type Error = ParseIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_minted_apart_in_one_millisecond_sort_by_time() {
        // Two component instances share no counter: each mints with a context of its own.
        for _ in 0..200 {
            let first = uuid::Uuid::new_v7(uuid::Timestamp::now(precise_context()));
            let started = std::time::Instant::now();
            while started.elapsed() < std::time::Duration::from_micros(5) {}
            let second = uuid::Uuid::new_v7(uuid::Timestamp::now(precise_context()));
            assert!(first < second, "{first} minted before {second}");
        }
        let ids: Vec<EventId> = (0..1000).map(|_| EventId::new()).collect();
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "one thread never goes back"
        );
    }

    #[test]
    fn new_ids_have_prefix_and_32_lowercase_hex_digits() {
        let id = AppId::new();
        let body = id.as_str().strip_prefix("app_").expect("prefix");
        assert!(is_valid_body(body), "{id}");
        assert_eq!(id.to_string().parse::<AppId>(), Ok(id));
        assert!(SubscriptionId::new().as_str().starts_with("sub_"));
        assert!(ClientId::new().as_str().starts_with("cli_"));
        assert!(WebhookId::new().as_str().starts_with("whk_"));
        assert!(NotificationId::new().as_str().starts_with("ntf_"));
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let ids: Vec<EventId> = (0..50).map(|_| EventId::new()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn parsing_rejects_wrong_prefix_and_malformed_bodies() {
        let body = "0190b7c8e3a47c3e9d2f5a1b2c3d4e5f";
        assert!(format!("app_{body}").parse::<AppId>().is_ok());
        for bad in [
            format!("api_{body}"),
            format!("APP_{body}"),
            format!("app{body}"),
            format!("app_{}", body.to_uppercase()),
            format!("app_{body}0"),
            format!("app_{}", &body[1..]),
            format!("app_{}/x", &body[2..]),
            "app_".to_owned(),
            String::new(),
        ] {
            assert!(bad.parse::<AppId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn parse_error_names_the_expected_form() {
        let err = "nope".parse::<ApiId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid event API id: expected `api_` followed by 32 lowercase hexadecimal digits"
        );
    }

    #[test]
    fn ids_serialize_as_strings_and_deserialize_with_validation() -> Result<(), serde_json::Error> {
        let id = AttemptId::new();
        let json = serde_json::to_string(&id)?;
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<AttemptId>(&json)?, id);
        let wrong = serde_json::from_str::<AttemptId>(&format!("\"{}\"", EventId::new()));
        assert!(wrong.unwrap_err().to_string().contains("attempt id"));
        Ok(())
    }

    #[test]
    fn kinds_are_the_prefixes_without_underscore() {
        assert_eq!(AppId::KIND.as_str(), "app");
        assert_eq!(ClientId::PREFIX, "cli_");
        assert_eq!(EventId::NAME, "event id");
    }

    #[test]
    fn tenants_are_validated() {
        for good in ["default", "a", "acme-1", "0", &"a".repeat(63)] {
            assert!(TenantId::new(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "-acme",
            "Acme",
            "a/b",
            "a_b",
            "a.b",
            "é",
            &"a".repeat(64),
        ] {
            assert!(TenantId::new(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<TenantId>("\"a/b\"").is_err());
    }
}
