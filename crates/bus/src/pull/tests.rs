use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use eventplane_core::{MemoryStore, StoreError};
use eventplane_eventstore::events_since;
use serde_json::json;

use super::*;
use crate::wire::{PubsubMessage, ReceivedMessage};

const TOPIC: &str = "projects/shop/topics/orders";

/// A scripted bus: a queue of messages, handed out once each until acknowledged.
struct Bus<'a> {
    topic: RefCell<String>,
    queue: RefCell<Vec<PubsubMessage>>,
    fail_pulls: Cell<usize>,
    fail_acks: Cell<usize>,
    acknowledged: RefCell<Vec<String>>,
    pulls: Cell<usize>,
    /// Called on each acknowledge with the store, to check what is durable at that moment.
    store: &'a dyn KvStore,
    tenant: TenantId,
    stored_at_ack: RefCell<Vec<usize>>,
}

impl<'a> Bus<'a> {
    fn new(store: &'a dyn KvStore, tenant: &TenantId) -> Self {
        Self {
            topic: RefCell::new(TOPIC.to_owned()),
            queue: RefCell::new(Vec::new()),
            fail_pulls: Cell::new(0),
            fail_acks: Cell::new(0),
            acknowledged: RefCell::new(Vec::new()),
            pulls: Cell::new(0),
            store,
            tenant: tenant.clone(),
            stored_at_ack: RefCell::new(Vec::new()),
        }
    }

    fn publish(&self, message: PubsubMessage) {
        self.queue.borrow_mut().push(message);
    }
}

impl BusClient for Bus<'_> {
    fn get(&self, sub: &BusSubscription) -> Result<SubscriptionResource, String> {
        Ok(SubscriptionResource {
            name: sub.resource.clone(),
            topic: self.topic.borrow().clone(),
        })
    }

    fn pull(&self, _: &BusSubscription, request: &PullRequest) -> Result<PullResponse, String> {
        self.pulls.set(self.pulls.get() + 1);
        if self.fail_pulls.get() > 0 {
            self.fail_pulls.set(self.fail_pulls.get() - 1);
            return Err("HTTP 503".into());
        }
        let acknowledged = self.acknowledged.borrow();
        let received_messages = self
            .queue
            .borrow()
            .iter()
            .filter(|m| !acknowledged.contains(&m.message_id))
            .take(request.max_messages as usize)
            .map(|m| ReceivedMessage {
                ack_id: format!("ack-{}", m.message_id),
                message: m.clone(),
                delivery_attempt: None,
            })
            .collect();
        Ok(PullResponse { received_messages })
    }

    fn acknowledge(&self, _: &BusSubscription, ack_ids: &[String]) -> Result<(), String> {
        let stored = events_since(self.store, &self.tenant, 0, 1000)
            .map(|page| page.events.len())
            .unwrap_or(0);
        self.stored_at_ack.borrow_mut().push(stored);
        if self.fail_acks.get() > 0 {
            self.fail_acks.set(self.fail_acks.get() - 1);
            return Err("HTTP 500".into());
        }
        self.acknowledged.borrow_mut().extend(
            ack_ids
                .iter()
                .map(|id| id.trim_start_matches("ack-").to_owned()),
        );
        Ok(())
    }
}

fn message(id: &str, event_type: &str, data: serde_json::Value) -> PubsubMessage {
    let attributes: BTreeMap<String, String> = [
        ("ce-specversion", "1.0"),
        ("ce-id", id),
        ("ce-source", "/applications/shop"),
        ("ce-type", event_type),
        ("content-type", "application/json"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    PubsubMessage {
        data: STANDARD.encode(data.to_string()),
        attributes,
        message_id: format!("m-{id}"),
        publish_time: "2026-12-04T07:00:00Z".into(),
        ordering_key: None,
    }
}

fn good(id: &str) -> PubsubMessage {
    message(id, "order.created.v1", json!({"orderId": id}))
}

fn subscription(max_messages: &str) -> BusSubscription {
    let attributes = [("maxMessages".to_owned(), max_messages.to_owned())]
        .into_iter()
        .collect();
    BusSubscription::new(
        "http://127.0.0.1:1/v1/projects/shop/subscriptions/orders",
        TOPIC,
        None,
        &attributes,
    )
    .expect("valid")
}

/// Registers, as the registry would, application `shop` with one API holding `sub`.
fn register(store: &dyn KvStore, tenant: &TenantId, sub: &BusSubscription) -> ApiId {
    let app_id = AppId::new();
    let api_id = ApiId::new();
    store
        .set_json(
            &keys::record_for(tenant, &app_id),
            &json!({"id": app_id, "name": "shop"}),
        )
        .expect("app");
    store
        .set_json(
            &keys::record_for(tenant, &api_id),
            &json!({"id": api_id, "app_id": app_id, "bus": [sub],
                "catalog": [{"name": "order.created.v1", "version": "v1", "payload_schema": {
                    "type": "object", "required": ["orderId"]}}]}),
        )
        .expect("api");
    index::add_to_tenant_index(store, tenant, state::BUS_APIS, api_id.as_str()).expect("index");
    api_id
}

/// A store with application `shop` and one API consuming a subscription with `max_messages`.
fn registered(store: &dyn KvStore, max_messages: &str) -> (TenantId, BusSubscription, ApiId) {
    let tenant: TenantId = "acme".parse().expect("tenant");
    let sub = subscription(max_messages);
    let api = register(store, &tenant, &sub);
    (tenant, sub, api)
}

/// One tick's pulling, without a deadline.
fn pull(store: &dyn KvStore, tenant: &TenantId, bus: &Bus<'_>) -> Result<PullCounts, Error> {
    pull_all(store, tenant, bus, 65536, &clock(), u64::MAX)
}

fn clock() -> impl Fn() -> u64 {
    let now = Cell::new(1_700_000_000_000u64);
    move || {
        now.set(now.get() + 1);
        now.get()
    }
}

#[test]
fn a_batch_is_stored_and_only_then_acknowledged_and_rejections_are_recorded() -> Result<(), Error> {
    let store = MemoryStore::new();
    let (tenant, sub, api) = registered(&store, "10");
    let bus = Bus::new(&store, &tenant);
    bus.publish(good("1"));
    bus.publish(message("2", "order.deleted.v1", json!({})));
    bus.publish(good("3"));
    let counts = pull(&store, &tenant, &bus)?;
    assert_eq!((counts.pulled, counts.stored, counts.rejected), (3, 2, 1));
    assert_eq!(*bus.acknowledged.borrow(), ["m-1", "m-2", "m-3"]);
    assert_eq!(
        *bus.stored_at_ack.borrow(),
        [2],
        "both events were stored before the ack"
    );
    let state = state::load(&store, &tenant, &api, &sub.key)?;
    assert_eq!((state.messages_taken, state.messages_rejected), (2, 1));
    assert!(state.last_pull_at.is_some() && state.last_error.is_none());
    let rejected = state::rejected_page(&store, &tenant, &api, &sub.key, 10, None)?;
    assert_eq!(rejected.data[0].message_id, "m-2");
    assert_eq!(rejected.data[0].code, "EVENT_TYPE_NOT_REGISTERED");
    assert_eq!(rejected.data[0].attributes["ce-type"], "order.deleted.v1");
    Ok(())
}

#[test]
fn full_batches_are_pulled_again_until_the_bus_is_drained() -> Result<(), Error> {
    let store = MemoryStore::new();
    let (tenant, _, _) = registered(&store, "2");
    let bus = Bus::new(&store, &tenant);
    for i in 0..5 {
        bus.publish(good(&i.to_string()));
    }
    let counts = pull(&store, &tenant, &bus)?;
    assert_eq!((counts.pulls, counts.stored), (3, 5));
    Ok(())
}

#[test]
fn a_failed_acknowledgement_loses_nothing_and_stores_nothing_twice() -> Result<(), Error> {
    let store = MemoryStore::new();
    let (tenant, sub, api) = registered(&store, "10");
    let bus = Bus::new(&store, &tenant);
    bus.publish(good("1"));
    bus.publish(good("2"));
    bus.fail_acks.set(1);
    let first = pull(&store, &tenant, &bus)?;
    assert_eq!((first.stored, first.errors), (2, 1));
    let state = state::load(&store, &tenant, &api, &sub.key)?;
    assert!(
        state
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("acknowledging 2"))
    );
    assert_eq!(state.messages_taken, 0);
    // the bus delivers them again: found stored, acknowledged, counted
    let again = pull(&store, &tenant, &bus)?;
    assert_eq!((again.stored, again.duplicates), (0, 2));
    assert_eq!(bus.acknowledged.borrow().len(), 2);
    let state = state::load(&store, &tenant, &api, &sub.key)?;
    assert_eq!((state.messages_taken, state.last_error), (2, None));
    assert_eq!(events_since(&store, &tenant, 0, 100)?.events.len(), 2);
    Ok(())
}

#[test]
fn a_failed_pull_is_recorded_and_the_next_one_recovers() -> Result<(), Error> {
    let store = MemoryStore::new();
    let (tenant, sub, api) = registered(&store, "10");
    let bus = Bus::new(&store, &tenant);
    bus.publish(good("1"));
    bus.fail_pulls.set(1);
    assert_eq!(pull(&store, &tenant, &bus)?.errors, 1);
    let state = state::load(&store, &tenant, &api, &sub.key)?;
    assert!(
        state
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 503"))
    );
    assert_eq!(pull(&store, &tenant, &bus)?.stored, 1);
    assert_eq!(
        state::load(&store, &tenant, &api, &sub.key)?.last_error,
        None
    );
    Ok(())
}

type Key = eventplane_core::Key;

/// A store hook: may fail the call, or change the store before it.
type Hook<'h> = Box<dyn Fn(&MemoryStore, &Key) -> Result<(), StoreError> + 'h>;

/// A memory store that runs a hook before each compare-and-swap and each increment, to stage
/// failures and races.
struct Hooked<'h> {
    inner: MemoryStore,
    before_cas: Hook<'h>,
    before_increment: Hook<'h>,
}

impl Hooked<'_> {
    fn new() -> Self {
        Self {
            inner: MemoryStore::new(),
            before_cas: Box::new(|_, _| Ok(())),
            before_increment: Box::new(|_, _| Ok(())),
        }
    }
}

impl KvStore for Hooked<'_> {
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn set(&self, key: &Key, value: &[u8]) -> Result<(), StoreError> {
        self.inner.set(key, value)
    }
    fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.inner.delete(key)
    }
    fn exists(&self, key: &Key) -> Result<bool, StoreError> {
        self.inner.exists(key)
    }
    fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        (self.before_cas)(&self.inner, key)?;
        self.inner.compare_and_swap(key, expected, new)
    }
    fn increment(&self, key: &Key, delta: i64) -> Result<i64, StoreError> {
        (self.before_increment)(&self.inner, key)?;
        self.inner.increment(key, delta)
    }
}

#[test]
fn a_store_failure_mid_batch_leaves_the_rest_with_the_bus() -> Result<(), Error> {
    // The second claim of an event fails (the disk is full for a moment).
    let claims = AtomicUsize::new(0);
    let store = Hooked {
        before_increment: Box::new(|_, key| {
            if key.as_str().contains("/event-claim/") && claims.fetch_add(1, Ordering::SeqCst) == 1
            {
                return Err(StoreError::Backend("disk full".into()));
            }
            Ok(())
        }),
        ..Hooked::new()
    };
    let (tenant, sub, api) = registered(&store, "10");
    let bus = Bus::new(&store, &tenant);
    for i in 1..=3 {
        bus.publish(good(&i.to_string()));
    }
    let now = clock();
    let report = pull_once(
        &store,
        &tenant,
        &api,
        &load_api(&store, &tenant, &api)?
            .expect("api")
            .target(&store, &tenant, 65536)?
            .expect("target"),
        &sub,
        &bus,
        &now,
    )?;
    assert_eq!((report.stored.len(), report.unacknowledged), (1, 2));
    assert_eq!(
        *bus.acknowledged.borrow(),
        ["m-1"],
        "only the stored one is acknowledged"
    );
    // the next round takes the rest
    let counts = pull(&store, &tenant, &bus)?;
    assert_eq!(counts.stored, 2);
    assert_eq!(bus.acknowledged.borrow().len(), 3);
    Ok(())
}

#[test]
fn messages_not_reached_within_the_ack_deadline_stay_with_the_bus() -> Result<(), Error> {
    let store = MemoryStore::new();
    let (tenant, sub, api) = registered(&store, "10");
    let bus = Bus::new(&store, &tenant);
    for i in 1..=3 {
        bus.publish(good(&i.to_string()));
    }
    // each reading of the clock moves it 3 s: the 10 s deadline (8 s usable) passes mid-batch
    let now = Cell::new(0u64);
    let slow = || {
        now.set(now.get() + 3_000);
        now.get()
    };
    let target = load_api(&store, &tenant, &api)?
        .expect("api")
        .target(&store, &tenant, 65536)?
        .expect("target");
    let report = pull_once(&store, &tenant, &api, &target, &sub, &bus, &slow)?;
    assert!(
        report.unacknowledged > 0 && !report.stored.is_empty(),
        "{report:?}"
    );
    assert_eq!(bus.acknowledged.borrow().len(), report.stored.len());
    Ok(())
}

#[test]
fn a_topic_mismatch_is_reported_and_nothing_is_pulled() -> Result<(), Error> {
    let store = MemoryStore::new();
    let (tenant, sub, api) = registered(&store, "10");
    let bus = Bus::new(&store, &tenant);
    bus.publish(good("1"));
    *bus.topic.borrow_mut() = "projects/shop/topics/other".into();
    let counts = pull(&store, &tenant, &bus)?;
    assert_eq!((counts.errors, bus.pulls.get()), (1, 0));
    let error = state::load(&store, &tenant, &api, &sub.key)?
        .last_error
        .expect("error");
    assert!(
        error.contains("projects/shop/topics/other") && error.contains(TOPIC),
        "{error}"
    );
    *bus.topic.borrow_mut() = TOPIC.into();
    assert_eq!(pull(&store, &tenant, &bus)?.stored, 1);
    assert_eq!(
        state::load(&store, &tenant, &api, &sub.key)?.last_error,
        None
    );
    Ok(())
}

#[test]
fn push_subscriptions_are_checked_but_not_pulled_and_deleted_apis_leave_the_index()
-> Result<(), Error> {
    let store = MemoryStore::new();
    let tenant: TenantId = "acme".parse()?;
    let attributes = [("mode".to_owned(), "push".to_owned())]
        .into_iter()
        .collect();
    let push = BusSubscription::new(
        "http://127.0.0.1:1/v1/projects/shop/subscriptions/pushed",
        TOPIC,
        None,
        &attributes,
    )
    .expect("valid");
    let api = register(&store, &tenant, &push);
    let bus = Bus::new(&store, &tenant);
    bus.publish(good("1"));
    let counts = pull(&store, &tenant, &bus)?;
    assert_eq!((counts.subscriptions, bus.pulls.get()), (1, 0));
    assert!(
        state::load(&store, &tenant, &api, &push.key)?
            .last_check_at
            .is_some()
    );
    store.delete(&keys::record_for(&tenant, &api))?;
    pull(&store, &tenant, &bus)?;
    assert!(index::all_members(&store, &bus_apis(&tenant))?.is_empty());
    Ok(())
}

/// Writes `api`'s record with `bus` as its external subscriptions, as the registry does on an
/// update (the application and catalog stay).
fn rewrite(store: &dyn KvStore, tenant: &TenantId, api: &ApiId, bus: &[&BusSubscription]) {
    let key = keys::record_for(tenant, api);
    let mut record: serde_json::Value = store.get_json(&key).expect("read").expect("record");
    record["bus"] = json!(bus);
    store.set_json(&key, &record).expect("write");
}

#[test]
fn an_api_whose_subscriptions_were_all_removed_leaves_the_index() -> Result<(), Error> {
    let store = MemoryStore::new();
    let (tenant, sub, api) = registered(&store, "10");
    let bus = Bus::new(&store, &tenant);
    assert_eq!(pull(&store, &tenant, &bus)?.subscriptions, 1);
    rewrite(&store, &tenant, &api, &[]);
    assert_eq!(pull(&store, &tenant, &bus)?.subscriptions, 0);
    assert!(index::all_members(&store, &bus_apis(&tenant))?.is_empty());

    // Given a subscription again, the registry lists it again, and the tick pulls for it.
    rewrite(&store, &tenant, &api, &[&sub]);
    index::add_to_tenant_index(&store, &tenant, state::BUS_APIS, api.as_str())?;
    bus.publish(good("1"));
    let counts = pull(&store, &tenant, &bus)?;
    assert_eq!((counts.subscriptions, counts.stored), (1, 1));
    Ok(())
}

#[test]
fn an_api_given_a_subscription_while_it_is_unlisted_stays_listed() -> Result<(), Error> {
    let inner = MemoryStore::new();
    let (tenant, sub, api) = registered(&inner, "10");
    rewrite(&inner, &tenant, &api, &[]);
    // Just before the tick's first change to the index, "the registry" gives the API a
    // subscription again and lists it (a no-op: the API is still in).
    let raced = Cell::new(false);
    let store = Hooked {
        inner,
        before_cas: Box::new(|inner, key| {
            if *key == bus_apis(&tenant) && !raced.replace(true) {
                rewrite(inner, &tenant, &api, &[&sub]);
                index::add_to_tenant_index(inner, &tenant, state::BUS_APIS, api.as_str())
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
            }
            Ok(())
        }),
        ..Hooked::new()
    };
    let bus = Bus::new(&store, &tenant);
    pull(&store, &tenant, &bus)?;
    assert!(raced.get(), "the registry's update came in between");
    assert_eq!(
        index::all_members(&store, &bus_apis(&tenant))?,
        vec![api.to_string()]
    );
    bus.publish(good("1"));
    assert_eq!(pull(&store, &tenant, &bus)?.stored, 1);
    Ok(())
}
