//! Subscriptions in the key-value store (layout in [`keys`]), and the delivery
//! records whose consistency depends on them.
//!
//! Every read-modify-write is a compare-and-swap ([`KvStoreExt::update_json`]) that never
//! recreates a deleted record. The tenant's subscription index is created once, by the writer
//! that wins an `increment` of its seed key ([`add_to_tenant_index`]), because a
//! compare-and-swap against "absent" is an unconditional write on Spin's SQLite store (two
//! first creates could otherwise lose one). The index helpers are shared with the registry, in
//! [`eventplane_core::index`].

use eventplane_core::index::{
    add_to_existing, add_to_tenant_index, create_index, decode_members, remove_from_existing,
};
use eventplane_core::{
    Error, EventId, Key, KvStore, KvStoreExt, MAX_INDEX_PAGE, SubscriptionId, TenantId,
};
use serde_json::{Value, json};

use crate::filter::FilterSubject;
use crate::input::{SubscriptionInput, check_reason};
use crate::keys;
use crate::lookup::EventRef;
use crate::model::{Subscription, SubscriptionStatus};
use crate::records::{Attempt, AttemptOutcome, DeadLetter};
use crate::signing::{GENERATED_KEY_BYTES, SigningSecret};
use crate::time::Timestamp;
use eventplane_eventstore::{events_since, first_sequence_at_or_after};

/// The page size of [`list`] when none is asked for.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest page size of [`list`].
pub const MAX_PAGE_SIZE: u32 = 200;
pub use crate::delivery::MAX_ATTEMPTS_KEPT;

/// A created subscription, and its signing secret if it was generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The stored subscription.
    pub subscription: Subscription,
    /// The generated signing secret; `None` if the request gave one.
    pub generated_secret: Option<SigningSecret>,
}

impl Created {
    /// The create response: the subscription's view, with `signing.secret` holding the
    /// generated secret (the only time it is shown; absent if the request gave the secret).
    pub fn view(&self) -> Value {
        let mut view = self.subscription.view();
        if let Some(secret) = &self.generated_secret {
            view["signing"] = json!({"secretSet": true, "secret": secret.expose()});
        }
        view
    }
}

/// One page of a tenant's subscriptions, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionPage {
    /// The subscriptions on this page.
    pub data: Vec<Subscription>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl SubscriptionPage {
    /// The list response: `{"data": [views], "nextCursor": "sub_…" | null}`.
    pub fn view(&self) -> Value {
        json!({
            "data": self.data.iter().map(Subscription::view).collect::<Vec<_>>(),
            "nextCursor": self.next_cursor,
        })
    }
}

/// Stores a new subscription (active, version 1). Its signing secret is the one given, or one
/// generated from `secret_random` (random bytes from the caller). `now_ms` is Unix time in
/// milliseconds.
pub fn create(
    store: &dyn KvStore,
    tenant: &TenantId,
    input: SubscriptionInput,
    secret_random: [u8; GENERATED_KEY_BYTES],
    now_ms: u64,
) -> Result<Created, Error> {
    let now = Timestamp::from_unix_ms(now_ms);
    let (signing_secret, generated_secret) = match input.signing_secret {
        Some(secret) => (secret, None),
        None => {
            let secret = SigningSecret::generate(secret_random);
            (secret.clone(), Some(secret))
        }
    };
    let subscription = Subscription {
        id: SubscriptionId::new(),
        tenant: tenant.clone(),
        name: input.name,
        sink: input.sink,
        filter: input.filter,
        delivery: input.delivery,
        signing_secret,
        status: SubscriptionStatus::Active,
        paused_reason: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    // Nobody else knows the id yet: plain writes are safe. The record and its dead-letter
    // index exist before the id is listed.
    store.set_json(&keys::subscription(tenant, &subscription.id), &subscription)?;
    create_index(store, &keys::dead_letters(tenant, &subscription.id), [])?;
    add_to_tenant_index(store, tenant, keys::SUBSCRIPTIONS, subscription.id.as_str())?;
    Ok(Created {
        subscription,
        generated_secret,
    })
}

/// The subscription `id`; `404 NOT_FOUND` if there is none.
pub fn get(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &SubscriptionId,
) -> Result<Subscription, Error> {
    store
        .get_json(&keys::subscription(tenant, id))?
        .ok_or_else(|| not_found(id))
}

/// A page of the tenant's subscriptions, oldest first: up to `limit` (1 to
/// [`MAX_PAGE_SIZE`], default [`DEFAULT_PAGE_SIZE`]) after `cursor` (a previous page's
/// `next_cursor`). A bad `limit` or `cursor` is a `400 BAD_REQUEST`.
pub fn list(
    store: &dyn KvStore,
    tenant: &TenantId,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<SubscriptionPage, Error> {
    let limit = page_size::<SubscriptionId>(limit, cursor)?;
    let page = store.index_page(&keys::subscriptions(tenant), cursor, limit)?;
    let mut data = Vec::with_capacity(page.members.len());
    for member in &page.members {
        if let Some(subscription) = load_member(store, tenant, member)? {
            data.push(subscription);
        }
    }
    Ok(SubscriptionPage {
        data,
        next_cursor: page.next,
    })
}

/// Checks a page request: `limit` (default [`DEFAULT_PAGE_SIZE`], 1 to [`MAX_PAGE_SIZE`]) and a
/// `cursor` that must be an id of kind `I` (the last of the previous page); the page size.
pub fn page_size<I: std::str::FromStr>(
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<usize, Error> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!("must be from 1 to {MAX_PAGE_SIZE}"),
        ));
    }
    if let Some(cursor) = cursor
        && cursor.parse::<I>().is_err()
    {
        return Err(Error::invalid(
            "cursor",
            "is not a cursor from a previous page",
        ));
    }
    Ok(usize::try_from(limit).unwrap_or(MAX_INDEX_PAGE))
}

/// Which dead letters [`dead_letters`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterQuery {
    /// Only this event's (a page of at most one).
    pub event: Option<EventRef>,
    /// Only those of events from this CloudEvents `source` (when no event is named).
    pub source: Option<String>,
    /// The page size asked for.
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of subscription `id`'s dead letters, in event-id order, as the API answers it:
/// `{"data": [dead letters], "nextCursor": "evt_…" | null}`; with an event named, its dead letter
/// if there is one (`409` if a CloudEvents id alone is ambiguous, see [`EventRef::resolve`]).
/// With a `source`, a page may hold fewer than `limit`. `404` for an unknown subscription.
pub fn dead_letters(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &SubscriptionId,
    query: &DeadLetterQuery,
) -> Result<Value, Error> {
    get(store, tenant, id)?;
    let cursor = query.cursor.as_deref();
    let limit = page_size::<EventId>(query.limit, cursor)?;
    if let Some(event) = &query.event {
        let data = match event.resolve(store, tenant)? {
            Some(event) => store
                .get_json::<DeadLetter>(&keys::dead_letter(tenant, id, &event))?
                .into_iter()
                .collect(),
            None => Vec::new(),
        };
        return Ok(json!({ "data": data, "nextCursor": null }));
    }
    let page = store.index_page(&keys::dead_letters(tenant, id), cursor, limit)?;
    let mut data = Vec::with_capacity(page.members.len());
    for member in &page.members {
        let Ok(event) = member.parse::<EventId>() else {
            continue;
        };
        if let Some(dead) = store.get_json::<DeadLetter>(&keys::dead_letter(tenant, id, &event))?
            && from_source(dead.cloud_event.as_ref().map(|e| e.source.as_str()), query)
        {
            data.push(dead);
        }
    }
    Ok(json!({ "data": data, "nextCursor": page.next }))
}

/// Whether a record of an event from `source` passes `query`'s source filter.
fn from_source(source: Option<&str>, query: &DeadLetterQuery) -> bool {
    query
        .source
        .as_deref()
        .is_none_or(|wanted| source == Some(wanted))
}

/// Which attempts [`list_attempts`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptQuery {
    /// Only this event's.
    pub event: Option<EventRef>,
    /// Only those of events from this CloudEvents `source` (when no event is named).
    pub source: Option<String>,
    /// Only succeeded, or only failed, attempts.
    pub outcome: Option<AttemptOutcome>,
    /// Only attempts made at or after this time (Unix ms); also where the walk starts.
    pub since_ms: Option<u64>,
    /// Continue after this event sequence number (a previous page's `nextCursor`).
    pub after_sequence: Option<u64>,
    /// About how many attempts to return (an event's attempts are never split across pages).
    pub limit: usize,
}

/// The most events one [`list_attempts`] call looks at.
pub const MAX_EVENTS_PER_ATTEMPTS_PAGE: usize = 2000;

/// A page of subscription `id`'s attempts as the API answers it: `{"data": [attempts],
/// "nextCursor": "<sequence>" | null}`. With an event named, that event's attempts (`409` if a
/// CloudEvents id alone is ambiguous, see [`EventRef::resolve`]); otherwise the
/// attempts of the tenant's events in acceptance order from `since` (or the cursor), reading
/// the event log (at most [`MAX_EVENTS_PER_ATTEMPTS_PAGE`] events per call; the cursor says
/// where to go on). `404` for an unknown subscription.
pub fn list_attempts(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &SubscriptionId,
    query: &AttemptQuery,
) -> Result<Value, Error> {
    get(store, tenant, id)?;
    let keep = |attempt: &Attempt| {
        query.outcome.is_none_or(|o| attempt.outcome == o)
            && query.since_ms.is_none_or(|s| attempt.at.unix_ms() >= s)
    };
    if let Some(event) = &query.event {
        let mut data = match event.resolve(store, tenant)? {
            Some(event) => attempts(store, tenant, id, &event)?,
            None => Vec::new(),
        };
        data.retain(keep);
        return Ok(json!({ "data": data, "nextCursor": null }));
    }
    let mut after = match query.after_sequence {
        Some(after) => after,
        None => first_sequence_at_or_after(store, tenant, query.since_ms.unwrap_or(0))?
            .saturating_sub(1),
    };
    let mut data = Vec::new();
    let mut examined = 0;
    loop {
        let page = events_since(store, tenant, after, 200)?;
        for event in &page.events {
            after = event.sequence;
            examined += 1;
            if query.source.as_ref().is_none_or(|s| *s == event.source) {
                data.extend(
                    attempts(store, tenant, id, &event.id)?
                        .into_iter()
                        .filter(keep),
                );
            }
            if data.len() >= query.limit.max(1) || examined >= MAX_EVENTS_PER_ATTEMPTS_PAGE {
                return Ok(json!({ "data": data, "nextCursor": after.to_string() }));
            }
        }
        if !page.more {
            return Ok(json!({ "data": data, "nextCursor": null }));
        }
        after = page.next_after;
    }
}

/// The dead letter of `event` for subscription `id`; `404` if there is none.
pub fn dead_letter(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &SubscriptionId,
    event: &EventId,
) -> Result<DeadLetter, Error> {
    store
        .get_json(&keys::dead_letter(tenant, id, event))?
        .ok_or_else(|| Error::not_found(format!("subscription {id} has no dead letter of {event}")))
}

/// Takes the dead letter of `event` off subscription `id`'s list (once it is being
/// redelivered: should that fail too, it comes back).
pub fn remove_dead_letter(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &SubscriptionId,
    event: &EventId,
) -> Result<(), Error> {
    remove_from_existing(store, &keys::dead_letters(tenant, id), event.as_str())?;
    store.delete(&keys::dead_letter(tenant, id, event))?;
    Ok(())
}

/// Replaces subscription `id` with `input` (a `PUT`): keeps its id, tenant, creation time,
/// status and pause reason, and its signing secret unless `input` gives a new one; bumps
/// `version` and `updated_at`. `404 NOT_FOUND` if it does not exist (it is never recreated).
pub fn replace(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &SubscriptionId,
    input: SubscriptionInput,
    now_ms: u64,
) -> Result<Subscription, Error> {
    update_subscription(store, tenant, id, now_ms, |current| {
        Some(Subscription {
            name: input.name.clone(),
            sink: input.sink.clone(),
            filter: input.filter.clone(),
            delivery: input.delivery.clone(),
            signing_secret: input
                .signing_secret
                .clone()
                .unwrap_or_else(|| current.signing_secret.clone()),
            ..current.clone()
        })
    })
}

/// Deletes subscription `id` at `now_ms`: unlists it (so no new delivery finds it), then
/// removes its record and its dead-letter index. `404 NOT_FOUND` if it does not exist.
/// Delivery records (state, attempts, dead letters) expire with the events
/// ([`crate::retention`]); the dispatcher checks that a subscription still exists before each
/// attempt.
pub fn delete(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &SubscriptionId,
    now_ms: u64,
) -> Result<(), Error> {
    let key = keys::subscription(tenant, id);
    if !store.exists(&key)? {
        return Err(not_found(id));
    }
    crate::retention::remember_deleted(store, tenant, id, now_ms)?;
    remove_from_existing(store, &keys::subscriptions(tenant), id.as_str())?;
    store.delete(&key)?;
    store.delete(&keys::dead_letters(tenant, id))?;
    Ok(())
}

/// Pauses subscription `id` with an optional reason (checked like the API's: at most 500
/// characters). Pausing a paused subscription changes nothing (its reason stays). `404` if it
/// does not exist.
pub fn pause(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &SubscriptionId,
    reason: Option<String>,
    now_ms: u64,
) -> Result<Subscription, Error> {
    let reason = check_reason(reason)?;
    set_status(
        store,
        tenant,
        id,
        SubscriptionStatus::Paused,
        reason,
        now_ms,
    )
}

/// Resumes subscription `id` (clearing its pause reason). Resuming an active subscription
/// changes nothing. `404` if it does not exist.
pub fn resume(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &SubscriptionId,
    now_ms: u64,
) -> Result<Subscription, Error> {
    set_status(store, tenant, id, SubscriptionStatus::Active, None, now_ms)
}

/// Moves subscription `id` to `status` with `paused_reason`; nothing changes if it already has
/// that status. `404` if it does not exist.
fn set_status(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &SubscriptionId,
    status: SubscriptionStatus,
    paused_reason: Option<String>,
    now_ms: u64,
) -> Result<Subscription, Error> {
    update_subscription(store, tenant, id, now_ms, |current| {
        (current.status != status).then(|| Subscription {
            status,
            paused_reason: paused_reason.clone(),
            ..current.clone()
        })
    })
}

/// Every active (not paused) subscription of `tenant`, oldest first.
pub fn active(store: &dyn KvStore, tenant: &TenantId) -> Result<Vec<Subscription>, Error> {
    active_reading_ahead(store, tenant, &|_| None)
}

/// [`active`], telling the store ([`KvStore::will_read`]) about each page's subscription
/// records, and the key `also` names for each subscription, before reading any of them: a
/// store that reads ahead fetches them all in one round trip.
fn active_reading_ahead(
    store: &dyn KvStore,
    tenant: &TenantId,
    also: &dyn Fn(&SubscriptionId) -> Option<Key>,
) -> Result<Vec<Subscription>, Error> {
    let index = keys::subscriptions(tenant);
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.index_page(&index, after.as_deref(), MAX_INDEX_PAGE)?;
        let ids = member_ids(&page.members);
        let mut next_reads = record_keys(tenant, &ids);
        next_reads.extend(ids.iter().filter_map(also));
        store.will_read(&next_reads);
        for member in &page.members {
            if let Some(subscription) = load_member(store, tenant, member)?
                && subscription.is_active()
            {
                found.push(subscription);
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(found),
        }
    }
}

/// The keys of the subscription records that [`active`] reads first, given the value of the
/// subscriptions index (`keys::subscriptions`) as fetched ahead: its first page of members.
/// None if the value does not decode (a hint only: [`active`] reports that when it reads it).
pub fn subscription_records_in(tenant: &TenantId, index: &[u8]) -> Vec<Key> {
    let members = decode_members(&keys::subscriptions(tenant), index).unwrap_or_default();
    let first_page: Vec<String> = members.into_iter().take(MAX_INDEX_PAGE).collect();
    record_keys(tenant, &member_ids(&first_page))
}

/// The subscription ids among an index page's members.
fn member_ids(members: &[String]) -> Vec<SubscriptionId> {
    members
        .iter()
        .filter_map(|member| member.parse().ok())
        .collect()
}

/// The keys of the records of `ids`.
fn record_keys(tenant: &TenantId, ids: &[SubscriptionId]) -> Vec<Key> {
    ids.iter()
        .map(|id| keys::subscription(tenant, id))
        .collect()
}

/// The active subscriptions of `tenant` whose filter an event with this subject passes, oldest
/// first.
pub fn active_for(
    store: &dyn KvStore,
    tenant: &TenantId,
    subject: &FilterSubject<'_>,
) -> Result<Vec<Subscription>, Error> {
    active_for_reading_ahead(store, tenant, subject, &|_| None)
}

/// [`active_for`], naming to the store, with each subscription's record, the key `also` gives
/// for it (the one read next: a delivery's state), so that a store that reads ahead fetches
/// them together ([`KvStore::will_read`]).
pub fn active_for_reading_ahead(
    store: &dyn KvStore,
    tenant: &TenantId,
    subject: &FilterSubject<'_>,
    also: &dyn Fn(&SubscriptionId) -> Option<Key>,
) -> Result<Vec<Subscription>, Error> {
    let mut matching = active_reading_ahead(store, tenant, also)?;
    matching.retain(|subscription| subscription.filter.matches(subject));
    Ok(matching)
}

/// Records a dead letter and lists its event in the subscription's dead-letter index.
/// `Ok(false)` (and nothing kept) if the subscription was deleted meanwhile.
pub fn add_dead_letter(
    store: &dyn KvStore,
    tenant: &TenantId,
    dead_letter: &DeadLetter,
) -> Result<bool, Error> {
    let (sub, event) = (&dead_letter.subscription_id, &dead_letter.event_id);
    let record = keys::dead_letter(tenant, sub, event);
    store.set_json(&record, dead_letter)?;
    if add_to_existing(store, &keys::dead_letters(tenant, sub), event.as_str())? {
        Ok(true)
    } else {
        store.delete(&record)?;
        Ok(false)
    }
}

/// The attempts of `event` to `subscription`, oldest first (empty if none).
pub fn attempts(
    store: &dyn KvStore,
    tenant: &TenantId,
    subscription: &SubscriptionId,
    event: &EventId,
) -> Result<Vec<Attempt>, Error> {
    Ok(crate::delivery::get(store, tenant, subscription, event)?
        .map(|state| state.log)
        .unwrap_or_default())
}

fn not_found(id: &SubscriptionId) -> Error {
    Error::not_found(format!("no subscription {id}"))
}

/// The subscription an index member names; `None` if the member is not an id or the record is
/// gone (a delete in progress).
fn load_member(
    store: &dyn KvStore,
    tenant: &TenantId,
    member: &str,
) -> Result<Option<Subscription>, Error> {
    let Ok(id) = member.parse::<SubscriptionId>() else {
        return Ok(None);
    };
    store.get_json(&keys::subscription(tenant, &id))
}

/// Compare-and-swap update of subscription `id` while it exists: `change` returns the new
/// subscription, or `None` to leave it as it is. A change bumps `version` and sets
/// `updated_at`. `404` if the subscription does not exist.
fn update_subscription(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &SubscriptionId,
    now_ms: u64,
    mut change: impl FnMut(&Subscription) -> Option<Subscription>,
) -> Result<Subscription, Error> {
    store.update_json(
        &keys::subscription(tenant, id),
        |current: Option<Subscription>| {
            let Some(current) = current else {
                return Err(not_found(id));
            };
            Ok(match change(&current) {
                Some(mut changed) => {
                    changed.version = current.version.saturating_add(1);
                    changed.updated_at = Timestamp::from_unix_ms(now_ms).max(current.updated_at);
                    changed
                }
                None => current,
            })
        },
    )
}
