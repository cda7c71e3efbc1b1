//! What the registry stores: one JSON record per application, event API and webhook (the
//! outbox has its own records, in [`crate::outbox`]), and the enums they share with the schema.
//!
//! Records keep secrets in clear (the fetcher and the webhook sender need them); the GraphQL
//! objects built on them mask every secret ([`crate::auth`]).

use async_graphql::{Enum, SimpleObject};
use eventplane_bus::BusSubscription;
use eventplane_core::{ApiId, AppId, ClientId, WebhookId};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::outbox::DeliveryStatus;
use crate::scalars::{Labels, SubscriptionAttributes};
use crate::time::Timestamp;

/// The format of a spec document.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum SpecFormat {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

/// The kind of an event API's spec.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(name = "EventAPISpecType")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum EventApiSpecType {
    /// An AsyncAPI document (2.0 to 2.6, or 3.x).
    AsyncApi,
}

/// How a fetch request's URL is to be read.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum FetchMode {
    /// The URL is the spec document itself.
    Single,
    /// The URL is a package of documents.
    Package,
    /// The URL is an index of documents.
    Index,
}

/// Where a fetch request stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum FetchRequestStatusCondition {
    /// Registered, not fetched yet.
    Initial,
    /// Fetched and valid.
    Succeeded,
    /// Fetching or validating failed; `message` says why.
    Failed,
}

/// Where an application stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum ApplicationStatusCondition {
    /// Registered; nothing is known about it yet.
    Initial,
    /// Its state is not known.
    Unknown,
    /// Ready.
    Ready,
    /// Failed.
    Failed,
}

/// What a webhook is called for.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum ApplicationWebhookType {
    /// The application's configuration changed: an event API was added, updated or deleted,
    /// or its events URL moved.
    ConfigurationChanged,
}

/// The status of an application.
#[derive(SimpleObject, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ApplicationStatus {
    /// Where it stands.
    pub condition: ApplicationStatusCondition,
    /// Since when.
    pub timestamp: Timestamp,
}

/// A registered application (`t/<tenant>/r/app/<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AppRecord {
    pub id: AppId,
    /// A DNS label, unique in the tenant.
    pub name: String,
    pub description: Option<String>,
    pub labels: Labels,
    pub status: ApplicationStatus,
    /// The client ids of its publisher credentials (`t/<tenant>/r/cli/<id>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_ids: Vec<ClientId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A version of an API.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Version {
    /// For example `4.6`.
    pub value: String,
    /// Whether this version is deprecated.
    pub deprecated: Option<bool>,
    /// Since which version it is deprecated, for example `4.5`.
    pub deprecated_since: Option<String>,
    /// If true, it will be removed in the next version.
    pub for_removal: Option<bool>,
}

/// Where a fetch request stands.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FetchRequestStatus {
    /// The condition.
    pub condition: FetchRequestStatusCondition,
    /// Why, when it failed; what is pending, when it is initial.
    pub message: Option<String>,
    /// Since when.
    pub timestamp: Timestamp,
}

/// A request to fetch a spec from a URL.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(name = "FetchRequest")]
pub(crate) struct FetchRequestRecord {
    /// Where the spec is.
    pub url: String,
    /// How to authenticate to `url` (secrets masked).
    pub auth: Option<Auth>,
    /// How to read `url`.
    pub mode: FetchMode,
    /// Which documents to take from a package or an index.
    pub filter: Option<String>,
    /// Where fetching stands.
    pub status: FetchRequestStatus,
}

/// An event API's spec as stored: the document, if known, and how to fetch it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SpecRecord {
    pub data: Option<String>,
    pub spec_type: EventApiSpecType,
    pub format: Option<SpecFormat>,
    pub fetch_request: Option<FetchRequestRecord>,
}

/// A subscription on an external event bus from which eventplane consumes the API's events,
/// as given (its GraphQL object is in [`crate::bus`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExternalSubscription {
    /// The subscription's URL, e.g. a Google Cloud Pub/Sub subscription.
    pub url: String,
    /// How to authenticate to the bus (secrets masked).
    pub auth: Option<Auth>,
    /// The topic the application publishes to.
    pub topic: String,
    /// Bus-specific attributes.
    pub attributes: Option<SubscriptionAttributes>,
}

/// One event type of an API's catalog, as the spec crate derives it; stored as its fields (the
/// ones added later are optional, so catalogs stored before them still load).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct CatalogEvent(pub eventplane_spec::EventType);

/// A registered event API definition (`t/<tenant>/r/api/<id>`), with its spec and catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ApiRecord {
    pub id: ApiId,
    pub app_id: AppId,
    pub name: String,
    pub description: Option<String>,
    pub group: Option<String>,
    pub spec: SpecRecord,
    pub auth: Option<Auth>,
    pub external_subscriptions: Vec<ExternalSubscription>,
    /// The external subscriptions as validated for the dispatcher and the gateway, in the same
    /// order (see `eventplane_bus`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bus: Vec<BusSubscription>,
    pub version: Option<Version>,
    /// Derived from `spec.data`; empty until a spec is known.
    pub catalog: Vec<CatalogEvent>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The last delivery of a notification to a webhook.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(name = "ApplicationWebhookDelivery")]
pub(crate) struct LastDelivery {
    /// How the last attempt went.
    pub status: DeliveryStatus,
    /// When it was made.
    pub timestamp: Timestamp,
    /// What happened (an HTTP status, a network error), if known.
    pub message: Option<String>,
    /// How many attempts the notification has had so far.
    pub attempts: u32,
    /// Whether the notification is settled: delivered, or given up on.
    pub done: bool,
}

/// A webhook of an application (`t/<tenant>/r/whk/<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WebhookRecord {
    pub id: WebhookId,
    pub app_id: AppId,
    pub webhook_type: ApplicationWebhookType,
    pub url: String,
    pub auth: Option<Auth>,
    pub last_delivery: Option<LastDelivery>,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_events_stored_before_channel_and_message_were_recorded_still_load()
    -> Result<(), serde_json::Error> {
        let stored = r#"{"name": "order.created.v1", "version": "v1", "summary": null,
            "payload_schema": {"type": "object"}}"#;
        let CatalogEvent(event) = serde_json::from_str(stored)?;
        assert_eq!(
            (
                event.channel,
                event.message,
                event.content_type,
                event.schema_format
            ),
            (None, None, None, None)
        );
        assert!(!event.deprecated);
        assert_eq!(
            event.payload_schema,
            Some(serde_json::json!({"type": "object"}))
        );
        Ok(())
    }
}
