//! Store operations and the public view, against `MemoryStore::spin_sqlite_like()`.

use std::collections::BTreeMap;
use std::sync::Arc;

use eventplane_core::{Error, EventId, KvStore, KvStoreExt, MemoryStore, SubscriptionId, TenantId};
use serde_json::{Value, json};

use crate::policy::ErrorClass;
use crate::records::{Attempt, AttemptOutcome, DeadLetter, Trigger};
use crate::store::{self, MAX_ATTEMPTS_KEPT};
use crate::{FilterSubject, Subscription, SubscriptionInput, SubscriptionStatus, Timestamp, keys};

pub(crate) const NOW: u64 = 1_700_000_000_000;
pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub(crate) fn tenant() -> TenantId {
    TenantId::new("acme").expect("tenant")
}

fn input(body: Value) -> SubscriptionInput {
    SubscriptionInput::parse(&body).expect("valid input")
}

fn body(name: &str, filter: Value) -> Value {
    json!({
        "name": name,
        "sink": {"url": "https://hooks.example/in"},
        "filter": filter,
    })
}

/// Creates the subscription `name` with `filter` at `now` (its secret generated from zeros).
fn create_at(
    store: &dyn KvStore,
    name: &str,
    filter: Value,
    now: u64,
) -> Result<Subscription, Error> {
    let created = store::create(store, &tenant(), input(body(name, filter)), [0; 32], now)?;
    Ok(created.subscription)
}

/// Creates the subscription `name` to the application `shop` at [`NOW`]; its id.
fn create_shop(store: &dyn KvStore, name: &str) -> Result<SubscriptionId, Error> {
    Ok(create_at(store, name, json!({"application": "shop"}), NOW)?.id)
}

/// A request body with every field set, each secret a distinct text (`SECRET` the signing
/// secret), shared with the input tests.
pub(crate) fn full_body() -> Value {
    json!({
        "name": "orders to billing",
        "sink": {
            "url": "https://billing.example/hooks",
            "auth": {"oauth2": {"tokenUrl": "https://auth.example/token", "clientId": "client-1",
                                "clientSecret": "oauth-client-secret", "scope": "hooks"}},
            "headers": {"X-Api-Key": "header-secret", "x-trace": "on"},
        },
        "filter": {"application": "shop", "types": ["a", "b", "a"], "typePrefix": "order.",
                   "typeSuffix": ".v1", "source": "/apps/shop",
                   "attributes": {"region": "eu"}},
        "delivery": {"retry": 0, "backoffPolicy": "linear", "backoffDelay": "PT0.5S",
                     "maxBackoff": "P1D", "timeout": "PT2M",
                     "deadLetterSink": {"url": "http://dead.example:8080/x",
                                        "auth": {"basic": {"username": "dl-user",
                                                           "password": "dl-password"}}}},
        "signing": {"secret": SECRET},
    })
}

/// The secrets of [`full_body`].
const FULL_BODY_SECRETS: [&str; 4] = [
    "oauth-client-secret",
    "header-secret",
    "dl-password",
    SECRET,
];

fn event(id: u32) -> EventId {
    format!("evt_{id:032x}").parse().expect("event id")
}

fn no_extensions() -> BTreeMap<String, Value> {
    BTreeMap::new()
}

fn subject<'a>(
    application: &'a str,
    type_name: &'a str,
    extensions: &'a BTreeMap<String, Value>,
) -> FilterSubject<'a> {
    FilterSubject {
        application,
        type_name,
        source: "/applications/shop",
        extensions,
    }
}

#[test]
fn create_generates_a_secret_shown_once() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let created = store::create(
        &store,
        &tenant(),
        input(body("orders", json!({"application": "shop"}))),
        [42; 32],
        NOW,
    )?;
    let sub = &created.subscription;
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert_eq!(
        (sub.version, sub.created_at, sub.updated_at),
        (
            1,
            Timestamp::from_unix_ms(NOW),
            Timestamp::from_unix_ms(NOW)
        )
    );
    let secret = created.generated_secret.clone().expect("generated");
    assert_eq!(secret.key(), [42; 32]);
    assert_eq!(&sub.signing_secret, &secret);

    let view = created.view();
    assert_eq!(
        view["signing"],
        json!({"secretSet": true, "secret": secret.expose()})
    );
    let read = store::get(&store, &tenant(), &sub.id)?;
    assert_eq!(&read, sub);
    assert_eq!(read.view()["signing"], json!({"secretSet": true}));
    assert!(!read.view().to_string().contains(secret.expose()));
    Ok(())
}

#[test]
fn a_given_secret_is_kept_and_not_echoed() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let mut request = body("orders", json!({"application": "shop"}));
    request["signing"] = json!({ "secret": SECRET });
    let created = store::create(&store, &tenant(), input(request), [0; 32], NOW)?;
    assert_eq!(created.generated_secret, None);
    assert_eq!(created.subscription.signing_secret.expose(), SECRET);
    assert_eq!(created.view()["signing"], json!({"secretSet": true}));
    Ok(())
}

#[test]
fn the_view_masks_every_secret() -> Result<(), Error> {
    let store = MemoryStore::new();
    let created = store::create(&store, &tenant(), input(full_body()), [0; 32], NOW)?;
    let view = created.subscription.view();
    let text = view.to_string();
    let debug = format!("{:?}", created.subscription);
    for secret in FULL_BODY_SECRETS {
        assert!(!text.contains(secret), "{secret} in {text}");
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert_eq!(
        view["sink"],
        json!({
            "url": "https://billing.example/hooks",
            "auth": {"oauth2": {"tokenUrl": "https://auth.example/token", "clientId": "client-1",
                                "clientSecret": "********", "scope": "hooks"}},
            "headers": {"X-Api-Key": "********", "x-trace": "********"},
        })
    );
    assert_eq!(
        view["delivery"],
        json!({
            "retry": 0,
            "backoffPolicy": "linear",
            "backoffDelay": "PT0.5S",
            "maxBackoff": "P1D",
            "timeout": "PT2M",
            "deadLetterSink": {"url": "http://dead.example:8080/x",
                               "auth": {"basic": {"username": "dl-user", "password": "********"}}},
        })
    );
    assert_eq!(
        view["filter"],
        json!({"application": "shop", "types": ["a", "b"], "typePrefix": "order.",
               "typeSuffix": ".v1", "source": "/apps/shop", "attributes": {"region": "eu"}})
    );
    assert_eq!(view["signing"], json!({"secretSet": true}));
    assert_eq!(view["status"], json!("active"));
    assert_eq!(view["createdAt"], json!("2023-11-14T22:13:20.000Z"));
    assert_eq!(view["version"], json!(1));
    assert_eq!(view.get("pausedReason"), None);
    assert_eq!(view.get("tenant"), None);

    let bearer = crate::SinkAuth::Bearer {
        token: "bearer-token".into(),
    };
    assert_eq!(bearer.view(), json!({"bearer": {"token": "********"}}));
    assert!(!format!("{bearer:?}").contains("bearer-token"));
    assert_eq!(
        bearer.static_authorization().as_deref(),
        Some("Bearer bearer-token")
    );
    Ok(())
}

#[test]
fn a_view_with_its_secrets_given_again_is_a_valid_put() -> Result<(), Error> {
    let store = MemoryStore::new();
    let created = store::create(
        &store,
        &tenant(),
        input(json!({
            "name": "n",
            "sink": {"url": "https://x", "auth": {"basic": {"username": "u", "password": "p"}}},
            "filter": {"typeSuffix": ".v1"},
        })),
        [0; 32],
        NOW,
    )?;
    let mut view = created.subscription.view();
    let Value::Object(map) = &mut view else {
        panic!("a view is an object");
    };
    for read_only in [
        "id",
        "status",
        "createdAt",
        "updatedAt",
        "version",
        "signing",
    ] {
        map.remove(read_only);
    }
    // As read, the masked password is refused...
    let err = SubscriptionInput::parse(&view).expect_err("mask");
    assert_eq!(err.details()[0].field, "sink.auth.basic.password");
    // ...and accepted once given again.
    view["sink"]["auth"]["basic"]["password"] = json!("p");
    let again = SubscriptionInput::parse(&view)?;
    assert_eq!(again.sink, created.subscription.sink);
    assert_eq!(again.delivery, created.subscription.delivery);
    assert_eq!(again.filter, created.subscription.filter);
    Ok(())
}

#[test]
fn unknown_subscriptions_are_not_found() {
    let store = MemoryStore::new();
    let id = SubscriptionId::new();
    let t = tenant();
    let in_ = || input(body("x", json!({"application": "shop"})));
    let errors = [
        store::get(&store, &t, &id).expect_err("get"),
        store::replace(&store, &t, &id, in_(), NOW).expect_err("replace"),
        store::delete(&store, &t, &id, 0).expect_err("delete"),
        store::pause(&store, &t, &id, None, NOW).expect_err("pause"),
        store::resume(&store, &t, &id, NOW).expect_err("resume"),
    ];
    for err in errors {
        assert_eq!(
            (err.status(), err.public_message()),
            (404, format!("no subscription {id}"))
        );
    }
    assert!(store.is_empty(), "{:?}", store.keys());
}

#[test]
fn lists_page_with_a_cursor() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let t = tenant();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            create_at(
                &store,
                &format!("s{i}"),
                json!({"application": "shop"}),
                NOW + i,
            )?
            .id,
        );
    }
    let first = store::list(&store, &t, None, Some(2))?;
    assert_eq!(
        first.data.iter().map(|s| &s.id).collect::<Vec<_>>(),
        [&ids[0], &ids[1]]
    );
    assert_eq!(first.next_cursor.as_deref(), Some(ids[1].as_str()));
    let second = store::list(&store, &t, first.next_cursor.as_deref(), Some(2))?;
    assert_eq!(second.data.len(), 2);
    let last = store::list(&store, &t, second.next_cursor.as_deref(), Some(2))?;
    assert_eq!(
        last.data.iter().map(|s| &s.id).collect::<Vec<_>>(),
        [&ids[4]]
    );
    assert_eq!(last.next_cursor, None);
    assert_eq!(last.view()["nextCursor"], Value::Null);
    assert_eq!(last.view()["data"][0]["name"], json!("s4"));
    let view = first.view();
    let fields: Vec<&String> = view
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(fields, ["data", "nextCursor"]);
    assert_eq!(view["nextCursor"], json!(ids[1].as_str()));

    let all = store::list(&store, &t, None, None)?;
    assert_eq!((all.data.len(), all.next_cursor), (5, None));
    assert_eq!(store::list(&store, &t, None, Some(200))?.data.len(), 5);
    let other = TenantId::new("other").expect("tenant");
    assert!(store::list(&store, &other, None, None)?.data.is_empty());

    for (limit, cursor) in [(Some(0), None), (Some(201), None), (None, Some("nope"))] {
        let err = store::list(&store, &t, cursor, limit).expect_err("bad page");
        assert_eq!(err.status(), 400);
    }
    Ok(())
}

#[test]
fn replace_keeps_identity_status_and_secret() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let t = tenant();
    let created = create_at(&store, "old", json!({"application": "shop"}), NOW)?;
    let id = created.id.clone();
    store::pause(&store, &t, &id, Some("maintenance".into()), NOW + 1)?;
    let replaced = store::replace(
        &store,
        &t,
        &id,
        input(json!({
            "name": "new",
            "sink": {"url": "https://new.example"},
            "filter": {"types": ["a"]},
            "delivery": {"retry": 1},
        })),
        NOW + 2,
    )?;
    assert_eq!(replaced.id, id);
    assert_eq!(replaced.name, "new");
    assert_eq!(replaced.sink.url, "https://new.example");
    assert_eq!(replaced.filter.types, ["a"]);
    assert_eq!(replaced.filter.application, None);
    assert_eq!(replaced.delivery.retry, 1);
    assert_eq!(replaced.created_at, created.created_at);
    assert_eq!(replaced.updated_at, Timestamp::from_unix_ms(NOW + 2));
    assert_eq!(replaced.status, SubscriptionStatus::Paused);
    assert_eq!(replaced.paused_reason.as_deref(), Some("maintenance"));
    assert_eq!(replaced.signing_secret, created.signing_secret);
    assert_eq!(replaced.version, 3);
    assert_eq!(store::get(&store, &t, &id)?, replaced);

    let mut with_secret = body("new", json!({"types": ["a"]}));
    with_secret["signing"] = json!({ "secret": SECRET });
    let rotated = store::replace(&store, &t, &id, input(with_secret), NOW + 3)?;
    assert_eq!(rotated.signing_secret.expose(), SECRET);
    assert_eq!(rotated.version, 4);
    Ok(())
}

#[test]
fn delete_removes_record_listing_and_dead_letter_index() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let t = tenant();
    let keep = create_shop(&store, "keep")?;
    let id = create_shop(&store, "gone")?;
    assert!(store.exists(&keys::dead_letters(&t, &id))?);
    store::delete(&store, &t, &id, 0)?;
    assert_eq!(store::get(&store, &t, &id).expect_err("gone").status(), 404);
    assert!(!store.exists(&keys::dead_letters(&t, &id))?);
    let listed = store::list(&store, &t, None, None)?;
    assert_eq!(
        listed.data.iter().map(|s| &s.id).collect::<Vec<_>>(),
        [&keep]
    );
    assert_eq!(
        store::delete(&store, &t, &id, 0)
            .expect_err("again")
            .status(),
        404
    );
    // never recreated by a late update
    assert_eq!(
        store::pause(&store, &t, &id, None, NOW)
            .expect_err("late pause")
            .status(),
        404
    );
    assert!(!store.exists(&keys::subscription(&t, &id))?);
    Ok(())
}

#[test]
fn pause_and_resume_are_idempotent() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let t = tenant();
    let id = create_shop(&store, "s")?;
    let paused = store::pause(&store, &t, &id, Some("sink answered 410".into()), NOW + 5)?;
    assert_eq!(paused.status, SubscriptionStatus::Paused);
    assert_eq!(paused.paused_reason.as_deref(), Some("sink answered 410"));
    assert_eq!(
        (paused.version, paused.updated_at),
        (2, Timestamp::from_unix_ms(NOW + 5))
    );
    assert_eq!(paused.view()["pausedReason"], json!("sink answered 410"));
    assert_eq!(paused.view()["status"], json!("paused"));

    let again = store::pause(&store, &t, &id, Some("other".into()), NOW + 6)?;
    assert_eq!(again, paused);

    let resumed = store::resume(&store, &t, &id, NOW + 7)?;
    assert_eq!(resumed.status, SubscriptionStatus::Active);
    assert_eq!(resumed.paused_reason, None);
    assert_eq!(resumed.version, 3);
    assert_eq!(store::resume(&store, &t, &id, NOW + 8)?, resumed);

    let err = store::pause(&store, &t, &id, Some("x".repeat(501)), NOW).expect_err("long");
    assert_eq!(err.status(), 422);
    assert_eq!(store::get(&store, &t, &id)?, resumed);
    Ok(())
}

#[test]
fn updated_at_never_goes_backwards() -> Result<(), Error> {
    let store = MemoryStore::new();
    let t = tenant();
    let id = create_shop(&store, "s")?;
    let paused = store::pause(&store, &t, &id, None, NOW - 10_000)?;
    assert_eq!(paused.updated_at, Timestamp::from_unix_ms(NOW));
    Ok(())
}

#[test]
fn active_for_returns_active_matching_subscriptions() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let t = tenant();
    let make = |name: &str, filter: Value| create_at(&store, name, filter, NOW).map(|s| s.id);
    let shop = make("shop", json!({"application": "shop"}))?;
    let orders = make("orders", json!({"typePrefix": "order."}))?;
    let paused = make("paused", json!({"application": "shop"}))?;
    let users = make("users", json!({"typePrefix": "user."}))?;
    let eu = make(
        "eu",
        json!({"application": "shop", "attributes": {"region": "eu"}}),
    )?;
    let crm = make("crm", json!({"application": "crm"}))?;
    store::pause(&store, &t, &paused, None, NOW)?;

    let none = no_extensions();
    let found: Vec<SubscriptionId> =
        store::active_for(&store, &t, &subject("shop", "order.created.v1", &none))?
            .into_iter()
            .map(|s| s.id)
            .collect();
    assert_eq!(found, [shop.clone(), orders.clone()]);

    let eu_ext = BTreeMap::from([("region".to_owned(), json!("eu"))]);
    let found: Vec<SubscriptionId> =
        store::active_for(&store, &t, &subject("shop", "user.created.v1", &eu_ext))?
            .into_iter()
            .map(|s| s.id)
            .collect();
    assert_eq!(found, [shop, users, eu]);

    let found = store::active_for(&store, &t, &subject("crm", "order.created.v1", &none))?;
    assert_eq!(
        found.into_iter().map(|s| s.id).collect::<Vec<_>>(),
        [orders, crm]
    );
    let other = TenantId::new("other").expect("tenant");
    assert!(store::active_for(&store, &other, &subject("shop", "x", &none))?.is_empty());
    Ok(())
}

#[test]
fn concurrent_creates_on_sqlite_lose_no_subscription() -> Result<(), Error> {
    for round in 0..10 {
        let store = Arc::new(MemoryStore::spin_sqlite_like());
        let barrier = Arc::new(std::sync::Barrier::new(6));
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                std::thread::spawn(move || -> Result<SubscriptionId, Error> {
                    barrier.wait();
                    create_shop(store.as_ref(), &format!("s{i}"))
                })
            })
            .collect();
        let mut ids = Vec::new();
        for thread in threads {
            ids.push(
                thread
                    .join()
                    .map_err(|_| Error::internal("thread panicked"))??,
            );
        }
        ids.sort();
        let listed = store::list(store.as_ref(), &tenant(), None, None)?;
        let listed: Vec<SubscriptionId> = listed.data.into_iter().map(|s| s.id).collect();
        assert_eq!(listed, ids, "round {round}");
    }
    Ok(())
}

#[test]
fn concurrent_pauses_and_replaces_keep_every_change() -> Result<(), Error> {
    let store = Arc::new(MemoryStore::spin_sqlite_like());
    let id = create_shop(store.as_ref(), "s")?;
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (store, id) = (Arc::clone(&store), id.clone());
            std::thread::spawn(move || -> Result<(), Error> {
                for j in 0..10 {
                    if i % 2 == 0 {
                        store::replace(
                            store.as_ref(),
                            &tenant(),
                            &id,
                            input(body(&format!("n{i}-{j}"), json!({"application": "shop"}))),
                            NOW,
                        )?;
                    } else if j % 2 == 0 {
                        store::pause(store.as_ref(), &tenant(), &id, None, NOW)?;
                    } else {
                        store::resume(store.as_ref(), &tenant(), &id, NOW)?;
                    }
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .map_err(|_| Error::internal("thread panicked"))??;
    }
    let final_state = store::get(store.as_ref(), &tenant(), &id)?;
    // 20 replaces always change the version; pauses and resumes only when they flip the status.
    assert!(final_state.version >= 21, "{}", final_state.version);
    Ok(())
}

fn attempt(event_id: EventId, n: u32) -> Attempt {
    Attempt {
        event_id,
        cloud_event: None,
        attempt: n,
        outcome: AttemptOutcome::Failed,
        response_status: Some(500),
        duration_ms: 12,
        error_class: Some(ErrorClass::Http5xx),
        response_body: None,
        next_attempt_at: None,
        trigger: if n == 1 {
            Trigger::First
        } else {
            Trigger::Retry
        },
        at: Timestamp::from_unix_ms(NOW),
    }
}

/// Makes `n` attempts of `event` to `sub`, each recorded as attempt `first + k` and retried
/// at once.
fn record_attempts(
    store: &MemoryStore,
    t: &TenantId,
    sub: &SubscriptionId,
    event: &EventId,
    numbers: std::ops::RangeInclusive<u32>,
) -> Result<(), Error> {
    crate::delivery::ensure(store, t, sub, event, Trigger::First, NOW)?;
    for n in numbers {
        let claim = crate::delivery::claim(store, t, sub, event, "w", NOW, 60_000)?
            .ok_or_else(|| Error::internal("not claimable"))?;
        let decision = crate::Decision::RetryAt(0);
        crate::delivery::finish(
            store,
            t,
            &claim,
            &decision,
            NOW,
            Some(attempt(event.clone(), n)),
        )?;
    }
    Ok(())
}

#[test]
fn attempts_are_recorded_with_the_delivery_and_capped() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let t = tenant();
    let sub = SubscriptionId::new();
    assert!(store::attempts(&store, &t, &sub, &event(1))?.is_empty());
    record_attempts(&store, &t, &sub, &event(1), 1..=3)?;
    record_attempts(&store, &t, &sub, &event(2), 1..=1)?;
    let log = store::attempts(&store, &t, &sub, &event(1))?;
    assert_eq!(log.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(store::attempts(&store, &t, &sub, &event(2))?.len(), 1);

    let cap = u32::try_from(MAX_ATTEMPTS_KEPT).expect("small");
    record_attempts(&store, &t, &sub, &event(1), 4..=cap + 5)?;
    let log = store::attempts(&store, &t, &sub, &event(1))?;
    assert_eq!(log.len(), MAX_ATTEMPTS_KEPT);
    assert_eq!(log.first().map(|a| a.attempt), Some(6));
    assert_eq!(log.last().map(|a| a.attempt), Some(cap + 5));
    Ok(())
}

#[test]
fn dead_letters_are_indexed_while_the_subscription_exists() -> Result<(), Error> {
    let store = MemoryStore::spin_sqlite_like();
    let t = tenant();
    let id = create_shop(&store, "s")?;
    let dead = |event_id| DeadLetter {
        event_id,
        cloud_event: None,
        subscription_id: id.clone(),
        reason: "gave up after 11 attempts".into(),
        attempts: 11,
        last_status: Some(503),
        at: Timestamp::from_unix_ms(NOW),
    };
    assert!(store::add_dead_letter(&store, &t, &dead(event(1)))?);
    assert!(store::add_dead_letter(&store, &t, &dead(event(2)))?);
    let page = store.index_page(&keys::dead_letters(&t, &id), None, 10)?;
    assert_eq!(page.members, [event(1).to_string(), event(2).to_string()]);
    assert_eq!(
        store.get_json::<DeadLetter>(&keys::dead_letter(&t, &id, &event(1)))?,
        Some(dead(event(1)))
    );

    store::delete(&store, &t, &id, 0)?;
    assert!(!store::add_dead_letter(&store, &t, &dead(event(3)))?);
    assert!(!store.exists(&keys::dead_letter(&t, &id, &event(3)))?);
    assert!(!store.exists(&keys::dead_letters(&t, &id))?);
    Ok(())
}
