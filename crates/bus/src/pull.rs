//! Pulling: for each external subscription of a tenant, check the subscription resource
//! (its topic), pull a batch, turn each message into a stored event or a recorded rejection,
//! and only then acknowledge what was stored or recorded.
//!
//! Nothing is acknowledged before it is durable: a message whose store failed, one not reached
//! within the ack deadline, or a whole batch whose acknowledgement failed stays with the bus,
//! which delivers it again; storing is idempotent per `source` + `id`, so a message that comes
//! again is not stored twice. A bus failure is recorded in the subscription's state.

use eventplane_core::keys;
use eventplane_core::{ApiId, AppId, Error, EventId, KvStore, KvStoreExt, TenantId, index};
use eventplane_events::CatalogEntry;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{BusSubscription, Mode};
use crate::ingest::{Application, Ingested, Target, ingest};
use crate::state::{self, bus_apis};
use crate::wire::{PullRequest, PullResponse, SubscriptionResource};

/// Calls to the bus (the component's go over Spin's outbound HTTP; tests script one). Errors
/// are messages for the subscription's state.
pub trait BusClient {
    /// `GET <url>`: the subscription resource.
    fn get(&self, sub: &BusSubscription) -> Result<SubscriptionResource, String>;
    /// `POST <url>:pull`.
    fn pull(&self, sub: &BusSubscription, request: &PullRequest) -> Result<PullResponse, String>;
    /// `POST <url>:acknowledge`.
    fn acknowledge(&self, sub: &BusSubscription, ack_ids: &[String]) -> Result<(), String>;
}

/// The parts of an event API's record (`t/<tenant>/r/api/<id>`) pulling needs.
#[derive(Debug, Clone, Deserialize)]
pub struct BusApi {
    /// The API's id.
    pub id: ApiId,
    /// Its application.
    pub app_id: AppId,
    /// Its catalog.
    #[serde(default)]
    pub catalog: Vec<ApiCatalogEvent>,
    /// Its external subscriptions, as the registry validated them.
    #[serde(default)]
    pub bus: Vec<BusSubscription>,
}

/// One catalog entry of an API record.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiCatalogEvent {
    /// The event type's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its payload schema.
    #[serde(default)]
    pub payload_schema: Option<Value>,
}

#[derive(Deserialize)]
struct AppName {
    name: String,
}

/// The API `id`, if it exists.
pub fn load_api(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &ApiId,
) -> Result<Option<BusApi>, Error> {
    store.get_json(&keys::record_for(tenant, id))
}

impl BusApi {
    /// What its messages are checked against and stored as; `None` if its application is gone.
    pub fn target(
        &self,
        store: &dyn KvStore,
        tenant: &TenantId,
        max_event_bytes: u64,
    ) -> Result<Option<Target>, Error> {
        let Some(app) = store.get_json::<AppName>(&keys::record_for(tenant, &self.app_id))? else {
            return Ok(None);
        };
        Ok(Some(Target {
            app: Application {
                name: app.name,
                id: self.app_id.clone(),
                entries: self
                    .catalog
                    .iter()
                    .map(|e| CatalogEntry {
                        name: e.name.clone(),
                        version: e.version.clone(),
                        payload_schema: e.payload_schema.clone(),
                    })
                    .collect(),
            },
            max_event_bytes,
        }))
    }
}

/// Checks that the subscription resource exists and is attached to the registered topic, and
/// records the outcome in its state. `Ok(true)` if it is.
pub fn check(
    store: &dyn KvStore,
    tenant: &TenantId,
    api: &ApiId,
    sub: &BusSubscription,
    client: &dyn BusClient,
    now_ms: u64,
) -> Result<bool, Error> {
    let problem = match client.get(sub) {
        Ok(resource) if resource.topic == sub.topic => None,
        Ok(resource) => Some(format!(
            "the subscription {} is attached to the topic {:?}, not to {:?} as registered; \
             nothing is pulled until they agree",
            sub.resource, resource.topic, sub.topic
        )),
        Err(e) => Some(format!("checking the subscription {}: {e}", sub.url)),
    };
    state::update(store, tenant, api, &sub.key, |state| {
        state.last_check_at = Some(now_ms);
        match &problem {
            Some(problem) => {
                state.last_error = Some(problem.clone());
                state.last_error_at = Some(now_ms);
            }
            None => state.last_error = None,
        }
    })?;
    Ok(problem.is_none())
}

/// What one pull did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullReport {
    /// Messages the bus returned.
    pub pulled: usize,
    /// Events newly stored (to be delivered).
    #[serde(skip)]
    pub stored: Vec<EventId>,
    /// Messages whose event was already stored.
    pub duplicates: usize,
    /// Messages recorded as rejected.
    pub rejected: usize,
    /// Messages left unacknowledged (the bus delivers them again).
    pub unacknowledged: usize,
    /// What went wrong, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Pulls one batch of `sub` and stores it; see the module docs.
pub fn pull_once(
    store: &dyn KvStore,
    tenant: &TenantId,
    api: &ApiId,
    target: &Target,
    sub: &BusSubscription,
    client: &dyn BusClient,
    now_ms: &dyn Fn() -> u64,
) -> Result<PullReport, Error> {
    let started = now_ms();
    let request = PullRequest {
        max_messages: sub.settings.max_messages,
        return_immediately: true,
    };
    let mut report = PullReport::default();
    let messages = match client.pull(sub, &request) {
        Ok(answer) => answer.received_messages,
        Err(e) => {
            let error = format!("pulling {}: {e}", sub.url);
            state::update(store, tenant, api, &sub.key, |state| {
                state.last_pull_at = Some(started);
                state.last_error = Some(error.clone());
                state.last_error_at = Some(started);
            })?;
            report.error = Some(error);
            return Ok(report);
        }
    };
    report.pulled = messages.len();
    // Acknowledging after the deadline is useless (the bus has handed the message out again):
    // stop with a fifth of it to spare.
    let deadline = started + u64::from(sub.settings.ack_deadline_seconds) * 800;
    let mut ack_ids = Vec::with_capacity(messages.len());
    let (mut taken, mut rejected) = (0u64, 0u64);
    for (i, received) in messages.iter().enumerate() {
        let now = now_ms();
        if now >= deadline {
            report.unacknowledged = messages.len() - i;
            report.error = Some(format!(
                "{} messages were not stored within the ack deadline ({} s); the bus delivers \
                 them again",
                report.unacknowledged, sub.settings.ack_deadline_seconds
            ));
            break;
        }
        let outcome = ingest(store, tenant, target, &received.message, now).and_then(|outcome| {
            if let Ingested::Rejected(rejection) = &outcome {
                state::record_rejected(
                    store,
                    tenant,
                    api,
                    &sub.key,
                    &received.message,
                    rejection,
                    now,
                )?;
            }
            Ok(outcome)
        });
        match outcome {
            Ok(Ingested::Stored(stored)) => {
                taken += 1;
                if stored.duplicate {
                    report.duplicates += 1;
                } else {
                    report.stored.push(stored.event.id);
                }
            }
            Ok(Ingested::Rejected(_)) => {
                rejected += 1;
                report.rejected += 1;
            }
            Err(e) => {
                report.unacknowledged = messages.len() - i;
                report.error = Some(format!(
                    "storing message {}: {}; it and the {} after it stay with the bus",
                    received.message.message_id,
                    e.public_message(),
                    report.unacknowledged - 1
                ));
                break;
            }
        }
        ack_ids.push(received.ack_id.clone());
    }
    let mut acknowledged = true;
    if !ack_ids.is_empty()
        && let Err(e) = client.acknowledge(sub, &ack_ids)
    {
        acknowledged = false;
        report.unacknowledged += ack_ids.len();
        report.error = Some(format!(
            "acknowledging {} messages at {}: {e}; the bus delivers them again (their events \
             are stored, and are not stored twice)",
            ack_ids.len(),
            sub.url
        ));
    }
    let error = report.error.clone();
    let finished = now_ms();
    state::update(store, tenant, api, &sub.key, |state| {
        state.last_pull_at = Some(started);
        if acknowledged {
            state.messages_taken += taken;
            state.messages_rejected += rejected;
        }
        match &error {
            Some(error) => {
                state.last_error = Some(error.clone());
                state.last_error_at = Some(finished);
            }
            None => state.last_error = None,
        }
    })?;
    Ok(report)
}

/// What a tick's pulling did, over all subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullCounts {
    /// External subscriptions looked at.
    pub subscriptions: usize,
    /// Pull requests made.
    pub pulls: usize,
    /// Messages pulled.
    pub pulled: usize,
    /// Events newly stored.
    pub stored: usize,
    /// Messages whose event was already stored.
    pub duplicates: usize,
    /// Messages rejected.
    pub rejected: usize,
    /// Subscriptions whose check or pull failed.
    pub errors: usize,
    /// The events newly stored, in the order stored (to hand to delivery).
    #[serde(skip)]
    pub events: Vec<EventId>,
}

/// Takes `api`, which has no external subscription left, out of the index of APIs the tick
/// pulls for. The registry writes an API's record before it lists the API, so the record is
/// read again after the removal: if it gained a subscription meanwhile (and the registry's
/// listing came before this removal), the API goes back in.
fn unlist(store: &dyn KvStore, tenant: &TenantId, api: &ApiId) -> Result<(), Error> {
    store.index_remove(&bus_apis(tenant), api.as_str())?;
    if load_api(store, tenant, api)?.is_some_and(|record| !record.bus.is_empty()) {
        index::add_to_tenant_index(store, tenant, state::BUS_APIS, api.as_str())?;
    }
    Ok(())
}

/// Checks every external subscription of the tenant and pulls the pull-mode ones, batch after
/// batch while batches come full, until `deadline_ms`. API ids whose record is gone, or which
/// have no external subscription left, leave the index.
pub fn pull_all(
    store: &dyn KvStore,
    tenant: &TenantId,
    client: &dyn BusClient,
    max_event_bytes: u64,
    now_ms: &dyn Fn() -> u64,
    deadline_ms: u64,
) -> Result<PullCounts, Error> {
    let mut counts = PullCounts::default();
    for member in index::all_members(store, &bus_apis(tenant))? {
        let Ok(id) = member.parse::<ApiId>() else {
            continue;
        };
        let Some(api) = load_api(store, tenant, &id)? else {
            store.index_remove(&bus_apis(tenant), &member)?; // deleted for good (ids are unique)
            continue;
        };
        if api.bus.is_empty() {
            unlist(store, tenant, &id)?;
            continue;
        }
        for sub in &api.bus {
            counts.subscriptions += 1;
            if now_ms() >= deadline_ms {
                return Ok(counts);
            }
            if !check(store, tenant, &id, sub, client, now_ms())? {
                counts.errors += 1;
                continue;
            }
            if sub.settings.mode != Mode::Pull {
                continue;
            }
            let Some(target) = api.target(store, tenant, max_event_bytes)? else {
                continue;
            };
            loop {
                let report = pull_once(store, tenant, &id, &target, sub, client, now_ms)?;
                counts.pulls += 1;
                counts.pulled += report.pulled;
                counts.stored += report.stored.len();
                counts.events.extend(report.stored);
                counts.duplicates += report.duplicates;
                counts.rejected += report.rejected;
                if report.error.is_some() {
                    counts.errors += 1;
                    break;
                }
                let full = report.pulled >= sub.settings.max_messages as usize;
                if !full || now_ms() >= deadline_ms {
                    break;
                }
            }
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests;
