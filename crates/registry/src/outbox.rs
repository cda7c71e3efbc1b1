//! The webhook outbox: durable `CONFIGURATION_CHANGED` notifications, delivered by the caller.
//!
//! Resolvers never do HTTP. When a mutation changes an application's configuration (its event
//! APIs, its events URL), it writes one notification per `CONFIGURATION_CHANGED` webhook of the
//! application to the outbox (a record per notification and a tenant-wide index). After
//! executing a request, the component takes [`pending_notifications`], POSTs each
//! [`Notification::payload`] to its [`Notification::url`] with its [`Notification::auth`], and
//! reports with [`record_delivery`]. Failures stay pending (and are retried with the next
//! batch) until the caller reports `done`; the webhook shows the last outcome
//! (`ApplicationWebhook.lastDelivery`). Writing to the outbox never fails a mutation.
//!
//! ```
//! use std::sync::Arc;
//! use eventplane_core::{MemoryStore, TenantId};
//! use eventplane_registry_api::{pending_notifications, record_delivery, DeliveryOutcome,
//!     DeliveryStatus, Timestamp};
//!
//! let store = MemoryStore::new();
//! let tenant: TenantId = "acme".parse()?;
//! for notification in pending_notifications(&store, &tenant)? {
//!     // POST notification.payload to notification.url, applying notification.auth ...
//!     let outcome = DeliveryOutcome {
//!         status: DeliveryStatus::Succeeded,
//!         message: Some("HTTP 200".into()),
//!         at: Timestamp::from_unix_seconds(1_700_000_000),
//!     };
//!     record_delivery(&store, &tenant, &notification.id, outcome, true)?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use async_graphql::Enum;
use eventplane_core::index::{
    add_to_tenant_index, all_members, remove_from_existing, update_existing,
};
use eventplane_core::keys::{self, APPLICATION_WEBHOOKS, WEBHOOK_OUTBOX};
use eventplane_core::{
    ApiId, AppId, Error, KvStore, KvStoreExt, NotificationId, PrefixedId, TenantId, WebhookId,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::Auth;
use crate::context::RequestScope;
use crate::model::{AppRecord, ApplicationWebhookType, LastDelivery, WebhookRecord};
use crate::time::Timestamp;

/// How many notifications [`pending_notifications`] returns at most, oldest first.
pub const MAX_PENDING_BATCH: usize = 50;

/// How many attempts a notification gets before the caller should give up on it
/// ([`Notification::is_last_attempt`]).
pub const MAX_DELIVERY_ATTEMPTS: u32 = 3;

/// How a delivery attempt went.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(name = "WebhookDeliveryStatus")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    /// The webhook answered with a 2xx.
    Succeeded,
    /// The webhook could not be reached or did not answer with a 2xx.
    Failed,
}

/// The outcome of one delivery attempt, as reported by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// How it went.
    pub status: DeliveryStatus,
    /// What happened (e.g. `HTTP 503`, `connection refused`), shown on the webhook.
    pub message: Option<String>,
    /// When the attempt was made.
    pub at: Timestamp,
}

/// A notification to deliver: POST `payload` (JSON) to `url`, applying `auth`.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The notification; also in the payload, so receivers can drop duplicates.
    pub id: NotificationId,
    /// The application whose configuration changed.
    pub application_id: AppId,
    /// The webhook to call.
    pub webhook_id: WebhookId,
    /// The webhook's URL (as it is now, should it have been updated since).
    pub url: String,
    /// The webhook's auth, secrets in clear.
    pub auth: Option<Auth>,
    /// The JSON body: `{"type": "CONFIGURATION_CHANGED", "notificationID", "webhookID",
    /// "timestamp", "application": {"id", "name", "eventingConfiguration": {"defaultURL"}},
    /// "changes": [{"eventAPI": {"id", "action": "added" | "updated" | "deleted"}} |
    /// {"eventingConfiguration": {"defaultURL"}}]}`.
    pub payload: Value,
    /// How many attempts were already reported.
    pub attempts: u32,
    /// When the change happened.
    pub created_at: Timestamp,
}

impl Notification {
    /// Whether the attempt about to be made is the last one ([`MAX_DELIVERY_ATTEMPTS`]): report
    /// it with `done = true` whatever its outcome.
    pub fn is_last_attempt(&self) -> bool {
        self.attempts.saturating_add(1) >= MAX_DELIVERY_ATTEMPTS
    }
}

/// A notification in the outbox (`t/<tenant>/r/ntf/<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NotificationRecord {
    id: NotificationId,
    app_id: AppId,
    webhook_id: WebhookId,
    payload: Value,
    attempts: u32,
    created_at: Timestamp,
}

/// What happened to an event API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Added,
    Updated,
    Deleted,
}

/// One change of an application's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// An event API was added, updated or deleted.
    EventApi { id: ApiId, action: Action },
    /// The events URL moved (the application was renamed).
    EventingConfiguration,
}

impl Change {
    pub(crate) fn event_api(id: &ApiId, action: Action) -> Self {
        Self::EventApi {
            id: id.clone(),
            action,
        }
    }

    fn to_json(&self, default_url: &str) -> Value {
        match self {
            Self::EventApi { id, action } => {
                let action = match action {
                    Action::Added => "added",
                    Action::Updated => "updated",
                    Action::Deleted => "deleted",
                };
                json!({"eventAPI": {"id": id, "action": action}})
            }
            Self::EventingConfiguration => {
                json!({"eventingConfiguration": {"defaultURL": default_url}})
            }
        }
    }
}

/// Writes a notification of `changes` for every `CONFIGURATION_CHANGED` webhook of `app`.
/// Never fails: a mutation must not fail because of a webhook (and its own writes are done).
pub(crate) fn notify(scope: &RequestScope, app: &AppRecord, changes: &[Change]) {
    if changes.is_empty() {
        return;
    }
    // Ignoring the error is deliberate: the mutation has been applied, and failing it now
    // would tell the client it was not.
    let _ = try_notify(scope, app, changes);
}

fn try_notify(scope: &RequestScope, app: &AppRecord, changes: &[Change]) -> Result<(), Error> {
    let store = scope.store();
    let tenant = &scope.tenant;
    let webhooks = all_members(
        store,
        &keys::owned_index(tenant, APPLICATION_WEBHOOKS, app.id.as_str()),
    )?;
    let default_url = scope.config.default_events_url(&app.name);
    let now = scope.now();
    for member in webhooks {
        let key = keys::record(tenant, WebhookId::KIND, &member);
        let Some(webhook) = store.get_json::<WebhookRecord>(&key)? else {
            continue;
        };
        if webhook.webhook_type != ApplicationWebhookType::ConfigurationChanged {
            continue;
        }
        let id = NotificationId::new();
        let payload = json!({
            "type": "CONFIGURATION_CHANGED",
            "notificationID": id,
            "webhookID": webhook.id,
            "timestamp": now.to_rfc3339(),
            "application": {
                "id": app.id,
                "name": app.name,
                "eventingConfiguration": {"defaultURL": default_url},
            },
            "changes": changes.iter().map(|c| c.to_json(&default_url)).collect::<Vec<_>>(),
        });
        let record = NotificationRecord {
            id: id.clone(),
            app_id: app.id.clone(),
            webhook_id: webhook.id,
            payload,
            attempts: 0,
            created_at: now,
        };
        store.set_json(&keys::record_for(tenant, &id), &record)?;
        add_to_tenant_index(store, tenant, WEBHOOK_OUTBOX, id.as_str())?;
    }
    Ok(())
}

/// Up to [`MAX_PENDING_BATCH`] notifications of `tenant` waiting for delivery, oldest first,
/// with their webhook's current URL and auth. Notifications whose webhook is gone are dropped.
pub fn pending_notifications<S: KvStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
) -> Result<Vec<Notification>, Error> {
    let outbox = keys::index(tenant, WEBHOOK_OUTBOX);
    let mut pending = Vec::new();
    let mut after: Option<String> = None;
    while pending.len() < MAX_PENDING_BATCH {
        let page = store.index_page(&outbox, after.as_deref(), MAX_PENDING_BATCH)?;
        for member in &page.members {
            if pending.len() == MAX_PENDING_BATCH {
                break;
            }
            let key = keys::record(tenant, NotificationId::KIND, member);
            let Some(record) = store.get_json::<NotificationRecord>(&key)? else {
                remove_from_existing(store, &outbox, member)?;
                continue;
            };
            let webhook_key = keys::record_for(tenant, &record.webhook_id);
            let Some(webhook) = store.get_json::<WebhookRecord>(&webhook_key)? else {
                store.delete(&key)?;
                remove_from_existing(store, &outbox, member)?;
                continue;
            };
            pending.push(Notification {
                id: record.id,
                application_id: record.app_id,
                webhook_id: record.webhook_id,
                url: webhook.url,
                auth: webhook.auth,
                payload: record.payload,
                attempts: record.attempts,
                created_at: record.created_at,
            });
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(pending)
}

/// Records one delivery attempt of notification `id`: the webhook shows `outcome` as its last
/// delivery; with `done` (delivered, or given up) the notification leaves the outbox, otherwise
/// it stays pending with one more attempt counted. A notification already gone is ignored.
pub fn record_delivery<S: KvStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    id: &NotificationId,
    outcome: DeliveryOutcome,
    done: bool,
) -> Result<(), Error> {
    let key = keys::record_for(tenant, id);
    let Some(record) = store.get_json::<NotificationRecord>(&key)? else {
        return Ok(());
    };
    let attempts = record.attempts.saturating_add(1);
    if done {
        store.delete(&key)?;
        remove_from_existing(store, &keys::index(tenant, WEBHOOK_OUTBOX), id.as_str())?;
    } else {
        update_existing(store, &key, |mut current: NotificationRecord| {
            current.attempts = current.attempts.saturating_add(1);
            Ok(current)
        })?;
    }
    let last_delivery = LastDelivery {
        status: outcome.status,
        timestamp: outcome.at,
        message: outcome.message,
        attempts,
        done,
    };
    update_existing(
        store,
        &keys::record_for(tenant, &record.webhook_id),
        |mut webhook: WebhookRecord| {
            webhook.last_delivery = Some(last_delivery.clone());
            Ok(webhook)
        },
    )?;
    Ok(())
}

/// Deletes the notifications for which `doomed` holds (those of a deleted application or
/// webhook), so that no orphan is left behind.
pub(crate) fn purge<S: KvStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    doomed: impl Fn(&AppId, &WebhookId) -> bool,
) -> Result<(), Error> {
    let outbox = keys::index(tenant, WEBHOOK_OUTBOX);
    for member in all_members(store, &outbox)? {
        let key = keys::record(tenant, NotificationId::KIND, &member);
        let record = store.get_json::<NotificationRecord>(&key)?;
        if record.is_none_or(|r| doomed(&r.app_id, &r.webhook_id)) {
            store.delete(&key)?;
            remove_from_existing(store, &outbox, &member)?;
        }
    }
    Ok(())
}
