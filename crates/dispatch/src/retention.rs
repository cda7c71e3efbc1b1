//! Event retention: stored events are kept for `event_retention_hours` (default
//! [`DEFAULT_RETENTION_HOURS`], seven days), then the tick removes them together with what the
//! dispatcher recorded about them.
//!
//! [`purge`] asks the event store to remove the expired events
//! ([`eventplane_eventstore::purge_expired`]: in acceptance order, never one the dispatcher has
//! not yet taken from the log) and then, for each removed event and each subscription (the
//! present ones and those deleted within the retention period), removes the delivery's state,
//! its attempts and its dead letter. A delivery still under way (pending a retry, or leased)
//! keeps its records: its next attempt finds the event gone and ends it as a dead letter
//! ("the event is no longer retained"), which stays visible.
//!
//! A deleted subscription's records are kept as long as its events are: deleting a
//! subscription lists it in the tenant's index of deleted subscriptions (with the time), and
//! [`purge`] drops it from there once the retention period has passed since.

use eventplane_core::index::{add_to_tenant_index, all_members, remove_from_existing};
use eventplane_core::keys::{self as core_keys, Kind};
use eventplane_core::{Error, KvStore, SubscriptionId, TenantId};
use eventplane_eventstore::{StoredEvent, purge_expired};
use serde::Serialize;

use crate::delivery::{self, DELIVERY_SEEDS, Status};
use crate::keys;
use crate::store::remove_dead_letter;

/// How long events are kept when `event_retention_hours` is not set: seven days.
pub const DEFAULT_RETENTION_HOURS: u64 = 7 * 24;

/// The most events one [`purge`] call removes (the next tick goes on).
pub const MAX_PURGE_PER_CALL: usize = 500;

/// Index: the subscriptions deleted within the retention period, as `<deleted at, Unix ms, 20
/// digits>:<id>`.
pub const DELETED_SUBSCRIPTIONS: Kind = Kind::new("subs-deleted");

/// What one [`purge`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Purged {
    /// Events removed.
    pub events: u64,
    /// Deliveries whose records were removed with their event.
    pub deliveries: u64,
}

/// Lists subscription `id`, deleted at `now_ms`, so that [`purge`] removes its delivery records
/// with their events.
pub fn remember_deleted(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &SubscriptionId,
    now_ms: u64,
) -> Result<(), Error> {
    add_to_tenant_index(
        store,
        tenant,
        DELETED_SUBSCRIPTIONS,
        &format!("{now_ms:020}:{id}"),
    )
}

/// Removes up to `limit` events accepted more than `retention_ms` before `now_ms`, with their
/// delivery records (module docs).
pub fn purge(
    store: &dyn KvStore,
    tenant: &TenantId,
    retention_ms: u64,
    now_ms: u64,
    limit: usize,
) -> Result<Purged, Error> {
    let removed = purge_expired(store, tenant, retention_ms, now_ms, limit)?;
    let mut purged = Purged {
        events: removed.events,
        deliveries: 0,
    };
    let deleted_index = core_keys::index(tenant, DELETED_SUBSCRIPTIONS);
    let deleted = all_members(store, &deleted_index)?;
    if !removed.purged.is_empty() {
        let mut subscriptions: Vec<SubscriptionId> =
            all_members(store, &keys::subscriptions(tenant))?
                .iter()
                .filter_map(|member| member.parse().ok())
                .collect();
        subscriptions.extend(
            deleted
                .iter()
                .filter_map(|member| member.split_once(':').and_then(|(_, id)| id.parse().ok())),
        );
        for event in &removed.purged {
            for subscription in &subscriptions {
                purged.deliveries += u64::from(forget(store, tenant, subscription, event)?);
            }
        }
    }
    let cutoff = now_ms.saturating_sub(retention_ms);
    for member in deleted {
        let expired = member
            .split_once(':')
            .and_then(|(at, _)| at.parse::<u64>().ok())
            .is_none_or(|at| at < cutoff);
        if expired {
            remove_from_existing(store, &deleted_index, &member)?;
        }
    }
    Ok(purged)
}

/// Removes what the dispatcher recorded about delivering `event` to `subscription`, unless
/// that delivery is still under way; whether there was a finished delivery to remove.
fn forget(
    store: &dyn KvStore,
    tenant: &TenantId,
    subscription: &SubscriptionId,
    event: &StoredEvent,
) -> Result<bool, Error> {
    let Some(state) = delivery::get(store, tenant, subscription, &event.id)? else {
        return Ok(false);
    };
    if matches!(state.status, Status::Pending | Status::Leased) {
        return Ok(false);
    }
    if state.status == Status::DeadLettered {
        remove_dead_letter(store, tenant, subscription, &event.id)?;
    }
    store.delete(&keys::delivery(tenant, subscription, &event.id))?;
    store.delete(&core_keys::record(
        tenant,
        DELIVERY_SEEDS,
        &keys::delivery_name(subscription, &event.id),
    ))?;
    Ok(true)
}
