use anyhow::Result;
use eventplane_core::{KvStoreExt, keys};
use serde_json::json;

use crate::support::{ERP_SPEC, Harness, SHOP_SPEC, api_input};

/// A fully loaded application: labels, two webhooks, two APIs (one with a fetch request), and
/// notifications pending in the outbox.
fn loaded_app(h: &Harness, name: &str) -> Result<String> {
    let app = h.create_app(json!({
        "name": name,
        "labels": {"env": ["prod"]},
        "webhooks": [
            {"type": "CONFIGURATION_CHANGED", "url": "https://a.example.com/hook"},
            {"type": "CONFIGURATION_CHANGED", "url": "https://b.example.com/hook",
             "auth": {"credential": {"basic": {"username": "u", "password": "p"}}}},
        ],
        "eventAPIs": [api_input("orders", SHOP_SPEC)],
    }))?;
    let mut fetched = api_input("erp", ERP_SPEC);
    fetched["spec"]["fetchRequest"] = json!({"url": "https://specs.example.com/erp.json"});
    h.ok(
        "mutation($app: ID!, $in: EventAPIDefinitionInput!) { addEventAPI(applicationID: $app, in: $in) { id } }",
        json!({"app": app, "in": fetched}),
    )?;
    Ok(app)
}

#[test]
fn deleting_an_application_leaves_no_key_of_it_behind() -> Result<()> {
    let h = Harness::new();
    let app = loaded_app(&h, "shop")?;
    assert!(
        h.keys().iter().any(|key| key.contains("/r/ntf/")),
        "{:?}",
        h.keys()
    );

    h.ok(
        "mutation($id: ID!) { deleteApplication(id: $id) { id } }",
        json!({"id": app}),
    )?;

    // What remains are the tenant's own (now empty) indexes and the seeds that created them.
    assert_eq!(
        h.keys(),
        [
            "t/acme/i/apps",
            "t/acme/i/webhook-outbox",
            "t/acme/seed/apps",
            "t/acme/seed/webhook-outbox",
        ]
    );
    for index in [keys::APPLICATIONS, keys::WEBHOOK_OUTBOX] {
        let page = h
            .store
            .index_page(&keys::index(&h.tenant, index), None, 10)?;
        assert!(page.members.is_empty(), "{index}: {page:?}");
    }
    Ok(())
}

#[test]
fn deleting_one_application_leaves_the_others_intact() -> Result<()> {
    let h = Harness::new();
    let doomed = loaded_app(&h, "shop")?;
    let kept = loaded_app(&h, "erp")?;
    let keys_of_kept_before: Vec<String> = h
        .keys()
        .into_iter()
        .filter(|k| !k.contains("/ntf/"))
        .collect();

    h.ok(
        "mutation($id: ID!) { deleteApplication(id: $id) { id } }",
        json!({"id": doomed}),
    )?;

    let remaining = h.keys();
    assert!(
        !remaining.iter().any(|key| key.contains(&doomed)),
        "{remaining:?}"
    );
    assert!(
        !remaining.iter().any(|key| key.ends_with("/shop")),
        "{remaining:?}"
    );
    let data = h.ok(
        "query($id: ID!) { application(id: $id) { webhooks { id } eventAPIs { totalCount } } }",
        json!({"id": kept}),
    )?;
    assert_eq!(
        data["application"]["webhooks"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(data["application"]["eventAPIs"]["totalCount"], 2);
    assert!(
        keys_of_kept_before.len() > remaining.len(),
        "something of shop was removed"
    );
    let pending = eventplane_registry_api::pending_notifications(h.store.as_ref(), &h.tenant)?;
    assert!(!pending.is_empty());
    assert!(pending.iter().all(|n| n.application_id.as_str() == kept));
    Ok(())
}
