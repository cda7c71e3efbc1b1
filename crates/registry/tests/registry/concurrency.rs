use std::sync::{Arc, Barrier};

use anyhow::{Result, anyhow};
use eventplane_core::MemoryStore;
use serde_json::{Value, json};

use crate::support::{Harness, SHOP_SPEC, api_input};

/// Runs `f(i)` for `i` in `0..n` on `n` threads released at once; their results in order.
fn at_once<T: Send + 'static>(
    n: usize,
    f: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Result<Vec<T>> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (f, barrier) = (Arc::clone(&f), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|thread| thread.join().map_err(|_| anyhow!("a thread panicked")))
        .collect()
}

fn sixteen_concurrent_add_event_apis_are_all_listed(h: Harness) -> Result<()> {
    let app = h.create_app(json!({"name": "shop"}))?;
    let h = Arc::new(h);
    let results = {
        let (h, app) = (Arc::clone(&h), app.clone());
        at_once(16, move |i| {
            h.ok(
                "mutation($app: ID!, $in: EventAPIDefinitionInput!) {
                    addEventAPI(applicationID: $app, in: $in) { id } }",
                json!({"app": app, "in": api_input(&format!("api-{i:02}"), SHOP_SPEC)}),
            )
            .map(|data| data["addEventAPI"]["id"].clone())
        })?
    };
    let mut added: Vec<Value> = results.into_iter().collect::<Result<_>>()?;
    added.sort_by_key(Value::to_string);
    let data = h.ok(
        "query($id: ID!) { application(id: $id) { eventAPIs(first: 200) { totalCount data { id } } } }",
        json!({"id": app}),
    )?;
    let page = &data["application"]["eventAPIs"];
    assert_eq!(page["totalCount"], 16);
    let mut listed: Vec<Value> = page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|api| api["id"].clone())
        .collect();
    listed.sort_by_key(Value::to_string);
    assert_eq!(listed, added);
    Ok(())
}

#[test]
fn sixteen_concurrent_add_event_apis_on_one_application_are_all_listed() -> Result<()> {
    sixteen_concurrent_add_event_apis_are_all_listed(Harness::new())
}

#[test]
fn sixteen_concurrent_add_event_apis_are_all_listed_on_a_sqlite_like_store() -> Result<()> {
    let store = Arc::new(MemoryStore::spin_sqlite_like());
    let backend = Arc::clone(&store);
    sixteen_concurrent_add_event_apis_are_all_listed(Harness::over(store, backend))
}

#[test]
fn of_concurrent_creates_with_one_name_exactly_one_wins() -> Result<()> {
    for round in 0..5 {
        let store = Arc::new(MemoryStore::spin_sqlite_like());
        let backend = Arc::clone(&store);
        let h = Arc::new(Harness::over(store, backend));
        let outcomes = {
            let h = Arc::clone(&h);
            at_once(8, move |_| {
                let response = h.run(
                    "mutation { createApplication(in: {name: \"shop\"}) { id } }",
                    json!({}),
                );
                response["errors"][0]["extensions"]["code"]
                    .as_str()
                    .unwrap_or("OK")
                    .to_owned()
            })?
        };
        let wins = outcomes.iter().filter(|code| *code == "OK").count();
        let losses = outcomes.iter().filter(|code| *code == "NOT_UNIQUE").count();
        assert_eq!((wins, losses), (1, 7), "round {round}: {outcomes:?}");
        let data = h.ok("{ applications { totalCount } }", json!({}))?;
        assert_eq!(data["applications"]["totalCount"], 1);
    }
    Ok(())
}

#[test]
fn concurrent_creates_of_different_applications_are_all_listed() -> Result<()> {
    let store = Arc::new(MemoryStore::spin_sqlite_like());
    let backend = Arc::clone(&store);
    let h = Arc::new(Harness::over(store, backend));
    let results = {
        let h = Arc::clone(&h);
        at_once(12, move |i| {
            h.create_app(json!({"name": format!("app-{i}")}))
        })?
    };
    for result in results {
        result?;
    }
    let data = h.ok("{ applications { totalCount data { id } } }", json!({}))?;
    assert_eq!(data["applications"]["totalCount"], 12);
    Ok(())
}

#[test]
fn event_apis_added_while_their_application_is_deleted_leave_no_orphan() -> Result<()> {
    for round in 0..10 {
        let h = Arc::new(Harness::new());
        let app = h.create_app(json!({"name": "shop"}))?;
        let outcomes = {
            let (h, app) = (Arc::clone(&h), app.clone());
            at_once(9, move |i| {
                let response = if i == 0 {
                    h.run(
                        "mutation($id: ID!) { deleteApplication(id: $id) { id } }",
                        json!({"id": app}),
                    )
                } else {
                    h.run(
                        "mutation($app: ID!, $in: EventAPIDefinitionInput!) {
                            addEventAPI(applicationID: $app, in: $in) { id } }",
                        json!({"app": app, "in": api_input(&format!("api-{i}"), SHOP_SPEC)}),
                    )
                };
                response["errors"][0]["extensions"]["code"]
                    .as_str()
                    .unwrap_or("OK")
                    .to_owned()
            })?
        };
        assert_eq!(
            outcomes[0], "OK",
            "round {round}: the delete failed: {outcomes:?}"
        );
        assert!(
            outcomes
                .iter()
                .all(|code| code == "OK" || code == "NOT_FOUND"),
            "{outcomes:?}"
        );
        let leftovers: Vec<String> = h
            .keys()
            .into_iter()
            .filter(|key| key.contains("/r/api/") || key.contains(&app) || key.contains("shop"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "round {round}: {leftovers:?} ({outcomes:?})"
        );
    }
    Ok(())
}
