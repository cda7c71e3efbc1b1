//! What an event API's `externalSubscriptions` entry means, validated at registration.
//!
//! - `url`: a Google Cloud Pub/Sub subscription resource,
//!   `http(s)://<endpoint>/v1/projects/<project>/subscriptions/<subscription>` (any endpoint,
//!   so the emulator and test servers work);
//! - `topic`: the topic that subscription must be attached to, `projects/<project>/topics/<topic>`;
//! - `attributes` (strings): `mode` (`pull`, the default, or `push`), `maxMessages` (1 to
//!   [`MAX_MESSAGES_LIMIT`], default [`DEFAULT_MAX_MESSAGES`]) and `ackDeadlineSeconds`
//!   ([`MIN_ACK_DEADLINE_SECONDS`] to [`MAX_ACK_DEADLINE_SECONDS`], default
//!   [`DEFAULT_ACK_DEADLINE_SECONDS`]); any other key is refused.
//!
//! The registry stores the validated form, [`BusSubscription`], in the event API's record, where
//! the dispatcher (pull) and the gateway (push) read it.

use std::collections::BTreeMap;

use eventplane_outbound::RequestAuth;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The most messages one pull may ask for.
pub const MAX_MESSAGES_LIMIT: u32 = 1000;
/// `maxMessages` when not given.
pub const DEFAULT_MAX_MESSAGES: u32 = 100;
/// The shortest `ackDeadlineSeconds` (Pub/Sub's minimum).
pub const MIN_ACK_DEADLINE_SECONDS: u32 = 10;
/// The longest `ackDeadlineSeconds` (Pub/Sub's maximum).
pub const MAX_ACK_DEADLINE_SECONDS: u32 = 600;
/// `ackDeadlineSeconds` when not given (Pub/Sub's default).
pub const DEFAULT_ACK_DEADLINE_SECONDS: u32 = 10;
/// The longest subscription URL accepted.
pub const MAX_URL_BYTES: usize = 2048;

/// The attribute keys understood.
pub const ATTRIBUTE_KEYS: [&str; 3] = ["mode", "maxMessages", "ackDeadlineSeconds"];

/// The form of URL supported, for error messages.
pub const SUPPORTED_URL: &str = "a Google Cloud Pub/Sub subscription URL, \
     https://<endpoint>/v1/projects/<project>/subscriptions/<subscription> \
     (e.g. https://pubsub.googleapis.com/v1/projects/shop/subscriptions/orders); \
     no other kind of event bus is supported";

/// How eventplane consumes the subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// eventplane pulls on each `POST /dispatcher/tick`.
    Pull,
    /// Pub/Sub pushes to `POST /events/{application}/pubsub`.
    Push,
}

/// A Pub/Sub subscription resource URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionUrl {
    /// The URL as given (trimmed).
    pub url: String,
    /// The project.
    pub project: String,
    /// The subscription's id within the project.
    pub subscription: String,
}

/// Whether `name` is a valid Pub/Sub resource id: 1 to 255 characters of letters, digits and
/// `-_.~+%`, starting with a letter (Pub/Sub's rule for topic and subscription ids, with the
/// minimum length relaxed for emulators).
fn is_resource_id(name: &str) -> bool {
    name.len() <= 255
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c))
}

/// Whether `project` is a plausible project id (letters, digits, `-`, `.` and `:` for
/// domain-scoped projects).
fn is_project_id(project: &str) -> bool {
    !project.is_empty()
        && project.len() <= 100
        && project
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:_".contains(c))
}

impl SubscriptionUrl {
    /// Parses `url`; the error says what is supported.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let refuse = |why: &str| Err(format!("{why}: the URL must be {SUPPORTED_URL}"));
        if url.len() > MAX_URL_BYTES {
            return refuse(&format!("is longer than {MAX_URL_BYTES} bytes"));
        }
        let Ok(parsed) = url::Url::parse(url) else {
            return refuse("is not an absolute URL");
        };
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return refuse("is not an http(s) URL with a host");
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return refuse("has a query or a fragment");
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return refuse("carries credentials (use auth instead)");
        }
        let segments: Vec<&str> = parsed.path().trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["v1", "projects", project, "subscriptions", subscription]
                if is_project_id(project) && is_resource_id(subscription) =>
            {
                Ok(Self {
                    url: url.to_owned(),
                    project: (*project).to_owned(),
                    subscription: (*subscription).to_owned(),
                })
            }
            _ => refuse("does not name a subscription resource"),
        }
    }

    /// The resource name, `projects/<project>/subscriptions/<subscription>`.
    pub fn resource(&self) -> String {
        format!(
            "projects/{}/subscriptions/{}",
            self.project, self.subscription
        )
    }
}

/// Checks a topic name, `projects/<project>/topics/<topic>`.
pub fn validate_topic(topic: &str) -> Result<(), String> {
    let parts: Vec<&str> = topic.split('/').collect();
    match parts.as_slice() {
        ["projects", project, "topics", name] if is_project_id(project) && is_resource_id(name) => {
            Ok(())
        }
        _ => Err(
            "must be a Pub/Sub topic name, projects/<project>/topics/<topic> (e.g. \
             projects/shop/topics/orders)"
                .to_owned(),
        ),
    }
}

/// The protocol settings of an external subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Pull or push.
    pub mode: Mode,
    /// The most messages one pull asks for.
    pub max_messages: u32,
    /// How long Pub/Sub waits for an acknowledgement before it delivers a message again: a
    /// pull stores and acknowledges its messages within this time, and leaves the ones it
    /// could not reach unacknowledged (they come again).
    pub ack_deadline_seconds: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: Mode::Pull,
            max_messages: DEFAULT_MAX_MESSAGES,
            ack_deadline_seconds: DEFAULT_ACK_DEADLINE_SECONDS,
        }
    }
}

fn number_in(value: &str, min: u32, max: u32) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number from {min} to {max}, not {value:?}"
        )),
    }
}

impl Settings {
    /// The settings `attributes` give; errors are `(attribute, message)`, one per problem.
    pub fn parse(attributes: &BTreeMap<String, String>) -> Result<Self, Vec<(String, String)>> {
        let mut settings = Self::default();
        let mut problems = Vec::new();
        for (key, value) in attributes {
            let parsed = match key.as_str() {
                "mode" => match value.trim() {
                    "pull" => Ok(Mode::Pull),
                    "push" => Ok(Mode::Push),
                    other => Err(format!("must be \"pull\" or \"push\", not {other:?}")),
                }
                .map(|mode| settings.mode = mode),
                "maxMessages" => {
                    number_in(value, 1, MAX_MESSAGES_LIMIT).map(|n| settings.max_messages = n)
                }
                "ackDeadlineSeconds" => {
                    number_in(value, MIN_ACK_DEADLINE_SECONDS, MAX_ACK_DEADLINE_SECONDS)
                        .map(|n| settings.ack_deadline_seconds = n)
                }
                _ => Err(format!(
                    "is not a known attribute (known: {})",
                    ATTRIBUTE_KEYS.join(", ")
                )),
            };
            if let Err(message) = parsed {
                problems.push((key.clone(), message));
            }
        }
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(problems)
        }
    }
}

/// The stable name of the external subscription with `url` in its event API: the first 16 hex
/// digits of SHA-256 of the URL. Keys of its state are made with it.
pub fn subscription_key(url: &str) -> String {
    let digest = hex::encode(Sha256::digest(url.trim().as_bytes()));
    digest[..16].to_owned()
}

/// An external subscription as the registry stores it for the dispatcher and the gateway
/// (field `bus` of an event API's record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BusSubscription {
    /// [`subscription_key`] of the URL.
    pub key: String,
    /// The subscription resource URL.
    pub url: String,
    /// `projects/<project>/subscriptions/<subscription>`.
    pub resource: String,
    /// The topic it must be attached to.
    pub topic: String,
    /// How to authenticate calls to the bus.
    #[serde(default)]
    pub auth: RequestAuth,
    /// Protocol settings.
    pub settings: Settings,
}

/// One problem of an external subscription's input: the field (`url`, `topic`,
/// `attributes.<key>`) and what is wrong.
pub type Problem = (String, String);

impl BusSubscription {
    /// Validates an external subscription: every problem is reported, each with its field.
    pub fn new(
        url: &str,
        topic: &str,
        auth: Option<RequestAuth>,
        attributes: &BTreeMap<String, String>,
    ) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let parsed = SubscriptionUrl::parse(url)
            .map_err(|message| problems.push(("url".to_owned(), message)))
            .ok();
        if let Err(message) = validate_topic(topic.trim()) {
            problems.push(("topic".to_owned(), message));
        }
        let settings = Settings::parse(attributes)
            .map_err(|more| {
                problems.extend(
                    more.into_iter()
                        .map(|(key, message)| (format!("attributes.{key}"), message)),
                );
            })
            .ok();
        match (parsed, settings) {
            (Some(parsed), Some(settings)) if problems.is_empty() => Ok(Self {
                key: subscription_key(&parsed.url),
                resource: parsed.resource(),
                url: parsed.url,
                topic: topic.trim().to_owned(),
                auth: auth.unwrap_or_default(),
                settings,
            }),
            _ => Err(problems),
        }
    }

    /// `<url>:pull`.
    pub fn pull_url(&self) -> String {
        format!("{}:pull", self.url)
    }

    /// `<url>:acknowledge`.
    pub fn acknowledge_url(&self) -> String {
        format!("{}:acknowledge", self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn subscription_urls_of_any_endpoint_are_taken_apart() {
        let url = SubscriptionUrl::parse(
            "https://pubsub.googleapis.com/v1/projects/shop/subscriptions/orders",
        )
        .expect("valid");
        assert_eq!(url.resource(), "projects/shop/subscriptions/orders");
        let local = SubscriptionUrl::parse("http://127.0.0.1:8085/v1/projects/p-1/subscriptions/s")
            .expect("an emulator's URL is valid");
        assert_eq!(local.project, "p-1");
    }

    #[test]
    fn other_urls_are_refused_naming_what_is_supported() {
        for url in [
            "https://bus.example.com/queue/x",
            "gopher://pubsub/v1/projects/p/subscriptions/s",
            "https://pubsub.googleapis.com/v1/projects/p/topics/t",
            "https://pubsub.googleapis.com/v1/projects/p/subscriptions/s?x=1",
            "https://pubsub.googleapis.com/v1/projects/p/subscriptions/s/extra",
            "https://pubsub.googleapis.com/v1/projects/p/subscriptions/9bad",
            "https://u:p@pubsub.googleapis.com/v1/projects/p/subscriptions/s",
            "not a url",
        ] {
            let err = SubscriptionUrl::parse(url).expect_err(url);
            assert!(
                err.contains("Google Cloud Pub/Sub subscription URL"),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn topics_must_be_topic_names() {
        assert!(validate_topic("projects/shop/topics/orders").is_ok());
        for topic in [
            "orders",
            "projects/shop/subscriptions/s",
            "projects//topics/t",
            "",
        ] {
            assert!(validate_topic(topic).is_err(), "{topic}");
        }
    }

    #[test]
    fn attributes_have_defaults_limits_and_no_unknown_keys() {
        assert_eq!(Settings::parse(&attrs(&[])), Ok(Settings::default()));
        let settings = Settings::parse(&attrs(&[
            ("mode", "push"),
            ("maxMessages", "1000"),
            ("ackDeadlineSeconds", "600"),
        ]))
        .expect("valid");
        assert_eq!(settings.mode, Mode::Push);
        assert_eq!(settings.max_messages, 1000);
        let problems = Settings::parse(&attrs(&[
            ("mode", "stream"),
            ("maxMessages", "5000"),
            ("ackDeadlineSeconds", "5"),
            ("colour", "blue"),
        ]))
        .expect_err("all bad");
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["ackDeadlineSeconds", "colour", "maxMessages", "mode"]
        );
    }

    #[test]
    fn every_problem_of_a_subscription_is_reported_with_its_field() {
        let problems = BusSubscription::new(
            "https://bus.example.com/queue/x",
            "orders",
            None,
            &attrs(&[("maxMessages", "0")]),
        )
        .expect_err("bad");
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["url", "topic", "attributes.maxMessages"]);
        let ok = BusSubscription::new(
            " https://pubsub.googleapis.com/v1/projects/shop/subscriptions/orders ",
            "projects/shop/topics/orders",
            None,
            &attrs(&[]),
        )
        .expect("valid");
        assert_eq!(ok.pull_url(), format!("{}:pull", ok.url));
        assert_eq!(ok.key, subscription_key(&ok.url));
        assert_eq!(ok.key.len(), 16);
    }
}
