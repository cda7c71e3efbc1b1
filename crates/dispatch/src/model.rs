//! The stored subscription and its public JSON view.
//!
//! The stored record ([`Subscription`], serialized camelCase at
//! `t/<tenant>/r/sub/<id>`) holds every secret in clear, because the dispatcher must present
//! them. The view ([`Subscription::view`]) has the shape of the request body, so a client can
//! read a subscription, change it and `PUT` it back, except that:
//!
//! - sink passwords, bearer tokens, OAuth client secrets and the values of custom sink headers
//!   (which often carry API keys) are shown as [`SECRET_MASK`] (`********`); a `PUT` must send
//!   them again in clear (a value equal to the mask is rejected, so it is never stored by
//!   accident);
//! - the signing secret is never shown: `signing` is `{"secretSet": true}`. Only the response
//!   to a create that generated the secret carries it, once, as `signing.secret`
//!   ([`Created::view`](crate::store::Created::view));
//! - durations are ISO 8601 text (`PT5S`), stored as milliseconds;
//! - read-only fields are added: `id`, `status`, `pausedReason` (only while paused),
//!   `createdAt`, `updatedAt` (RFC 3339) and `version` (1 on create, +1 on every change).

use std::collections::BTreeMap;
use std::fmt;

use eventplane_core::{SubscriptionId, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::duration::format_duration;
use crate::filter::Filter;
use crate::signing::SigningSecret;
use crate::time::Timestamp;

pub use eventplane_outbound::auth::SECRET_MASK;

/// Where events are delivered: an absolute `http`/`https` URL, how to authenticate, and extra
/// headers to send.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sink {
    /// The URL each event is `POST`ed to.
    pub url: String,
    /// How to authenticate, if at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<SinkAuth>,
    /// Extra headers (names as given; unique without regard to case; none reserved).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .keys()
            .map(|name| (name.as_str(), SECRET_MASK))
            .collect();
        f.debug_struct("Sink")
            .field("url", &self.url)
            .field("auth", &self.auth)
            .field("headers", &headers)
            .finish()
    }
}

impl Sink {
    /// The public view: secrets and header values masked.
    pub fn view(&self) -> Value {
        let mut view = Map::new();
        view.insert("url".into(), json!(self.url));
        if let Some(auth) = &self.auth {
            view.insert("auth".into(), auth.view());
        }
        if !self.headers.is_empty() {
            let headers: Map<String, Value> = self
                .headers
                .keys()
                .map(|name| (name.clone(), json!(SECRET_MASK)))
                .collect();
            view.insert("headers".into(), Value::Object(headers));
        }
        Value::Object(view)
    }
}

/// How the dispatcher authenticates to a sink. Stored (and given to the API) as an object with
/// exactly one key: `{"basic": {...}}`, `{"bearer": {...}}` or `{"oauth2": {...}}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum SinkAuth {
    /// HTTP basic authentication (RFC 7617).
    Basic {
        /// The user name (no `:`).
        username: String,
        /// The password (a secret).
        password: String,
    },
    /// A static bearer token (RFC 6750).
    Bearer {
        /// The token (a secret).
        token: String,
    },
    /// OAuth 2.0 client credentials (RFC 6749 §4.4): a token from `token_url`, sent as
    /// `Bearer`.
    #[serde(rename = "oauth2")]
    OAuth2 {
        /// The token endpoint.
        token_url: String,
        /// The client id.
        client_id: String,
        /// The client secret (a secret).
        client_secret: String,
        /// The scope to request, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
    },
}

impl fmt::Debug for SinkAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => eventplane_outbound::auth::debug_basic(f, username),
            Self::Bearer { .. } => f
                .debug_struct("Bearer")
                .field("token", &SECRET_MASK)
                .finish(),
            Self::OAuth2 {
                token_url,
                client_id,
                scope,
                ..
            } => f
                .debug_struct("OAuth2")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("client_secret", &SECRET_MASK)
                .field("scope", scope)
                .finish(),
        }
    }
}

impl SinkAuth {
    /// The public view: the same shape, secrets shown as [`SECRET_MASK`].
    pub fn view(&self) -> Value {
        match self {
            Self::Basic { username, .. } => {
                json!({"basic": {"username": username, "password": SECRET_MASK}})
            }
            Self::Bearer { .. } => json!({"bearer": {"token": SECRET_MASK}}),
            Self::OAuth2 {
                token_url,
                client_id,
                scope,
                ..
            } => {
                let mut oauth2 = json!({
                    "tokenUrl": token_url,
                    "clientId": client_id,
                    "clientSecret": SECRET_MASK,
                });
                if let (Some(scope), Value::Object(map)) = (scope, &mut oauth2) {
                    map.insert("scope".into(), json!(scope));
                }
                json!({ "oauth2": oauth2 })
            }
        }
    }

    /// The `Authorization` header value for the static kinds (`Basic …`, `Bearer …`); `None`
    /// for OAuth 2.0, whose token must be obtained first.
    pub fn static_authorization(&self) -> Option<String> {
        match self {
            Self::Basic { username, password } => {
                Some(eventplane_outbound::auth::basic_header(username, password))
            }
            Self::Bearer { token } => Some(format!("Bearer {token}")),
            Self::OAuth2 { .. } => None,
        }
    }
}

/// How events are retried: exponentially growing or linearly growing delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackoffPolicy {
    /// `backoffDelay · 2^(n-1)` before retry `n`.
    #[default]
    Exponential,
    /// `backoffDelay · n` before retry `n`.
    Linear,
}

impl BackoffPolicy {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exponential => "exponential",
            Self::Linear => "linear",
        }
    }
}

/// Where events go that could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterSink {
    /// The URL dead-lettered events are `POST`ed to.
    pub url: String,
    /// How to authenticate, if at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<SinkAuth>,
}

impl DeadLetterSink {
    /// The public view: secrets masked.
    pub fn view(&self) -> Value {
        let mut view = json!({ "url": self.url });
        if let (Some(auth), Value::Object(map)) = (&self.auth, &mut view) {
            map.insert("auth".into(), auth.view());
        }
        view
    }
}

/// The default number of retries after the first attempt.
pub const DEFAULT_RETRY: u32 = 10;
/// The most retries after the first attempt.
pub const MAX_RETRY: u32 = 100;
/// The default first backoff delay (`PT5S`).
pub const DEFAULT_BACKOFF_DELAY_MS: u64 = 5_000;
/// The default longest backoff delay (`PT1H`).
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 3_600_000;
/// The longest `maxBackoff` accepted (`P1D`).
pub const MAX_MAX_BACKOFF_MS: u64 = 86_400_000;
/// The default time an attempt may take (`PT30S`).
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// The longest time an attempt may take (`PT2M`).
pub const MAX_TIMEOUT_MS: u64 = 120_000;

/// A subscription's delivery policy, defaults filled in, durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Retries after the first attempt (0 to [`MAX_RETRY`]); an event gets at most
    /// `retry + 1` attempts.
    pub retry: u32,
    /// How the delay between attempts grows.
    pub backoff_policy: BackoffPolicy,
    /// The base delay, milliseconds (more than 0).
    pub backoff_delay_ms: u64,
    /// The longest delay, milliseconds (at least `backoff_delay_ms`, at most
    /// [`MAX_MAX_BACKOFF_MS`]); also caps a sink's `Retry-After`.
    pub max_backoff_ms: u64,
    /// How long one attempt may take, milliseconds (more than 0, at most [`MAX_TIMEOUT_MS`]).
    pub timeout_ms: u64,
    /// Where undeliverable events go, if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink: Option<DeadLetterSink>,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            retry: DEFAULT_RETRY,
            backoff_policy: BackoffPolicy::Exponential,
            backoff_delay_ms: DEFAULT_BACKOFF_DELAY_MS,
            max_backoff_ms: DEFAULT_MAX_BACKOFF_MS,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            dead_letter_sink: None,
        }
    }
}

impl Delivery {
    /// The public view: durations as ISO 8601 text, secrets masked.
    pub fn view(&self) -> Value {
        let mut view = json!({
            "retry": self.retry,
            "backoffPolicy": self.backoff_policy.as_str(),
            "backoffDelay": format_duration(self.backoff_delay_ms),
            "maxBackoff": format_duration(self.max_backoff_ms),
            "timeout": format_duration(self.timeout_ms),
        });
        if let (Some(sink), Value::Object(map)) = (&self.dead_letter_sink, &mut view) {
            map.insert("deadLetterSink".into(), sink.view());
        }
        view
    }
}

/// Whether a subscription receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    /// Events are delivered.
    #[default]
    Active,
    /// No events are delivered (paused by a client, or by the dispatcher after a `410 Gone`).
    Paused,
}

impl SubscriptionStatus {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
        }
    }
}

/// A stored subscription (`t/<tenant>/r/sub/<id>`), secrets in clear. `Debug` masks them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Its id.
    pub id: SubscriptionId,
    /// Its tenant.
    pub tenant: TenantId,
    /// A name for people (1 to 100 characters; not unique).
    pub name: String,
    /// Where events go.
    pub sink: Sink,
    /// Which events.
    pub filter: Filter,
    /// How they are delivered and retried.
    pub delivery: Delivery,
    /// The Standard Webhooks signing secret.
    pub signing_secret: SigningSecret,
    /// Whether events are delivered.
    pub status: SubscriptionStatus,
    /// Why it is paused (while paused, if a reason was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// 1 on create, +1 on every change.
    pub version: u64,
}

impl Subscription {
    /// Whether events are delivered to it.
    pub fn is_active(&self) -> bool {
        self.status == SubscriptionStatus::Active
    }

    /// The public JSON view (see the [module docs](self)): no secret in clear.
    pub fn view(&self) -> Value {
        let mut view = json!({
            "id": self.id,
            "name": self.name,
            "sink": self.sink.view(),
            "filter": self.filter,
            "delivery": self.delivery.view(),
            "signing": {"secretSet": true},
            "status": self.status.as_str(),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "version": self.version,
        });
        if let (Some(reason), Value::Object(map)) = (&self.paused_reason, &mut view) {
            map.insert("pausedReason".into(), json!(reason));
        }
        view
    }
}
