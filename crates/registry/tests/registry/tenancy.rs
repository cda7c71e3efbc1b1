use anyhow::Result;
use serde_json::json;

use crate::support::{Harness, SHOP_SPEC, api_input, id_at};

#[test]
fn another_tenants_objects_are_not_found_and_never_listed() -> Result<()> {
    let acme = Harness::new();
    let app = acme.create_app(json!({
        "name": "shop",
        "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": "https://shop.example.com/hook"}],
    }))?;
    let api = acme.add_api(&app, "orders", SHOP_SPEC)?;
    let data = acme.ok(
        "query($id: ID!) { application(id: $id) { webhooks { id } } }",
        json!({"id": app}),
    )?;
    let webhook = id_at(&data, "/application/webhooks/0/id")?;

    let globex = acme.as_tenant("globex");
    let data = globex.ok("{ applications { totalCount data { id } } }", json!({}))?;
    assert_eq!(data["applications"], json!({"totalCount": 0, "data": []}));

    let attempts = [
        (
            "query($id: ID!) { application(id: $id) { id } }",
            json!({"id": app}),
        ),
        (
            "query($id: ID!) { eventAPI(id: $id) { id } }",
            json!({"id": api}),
        ),
        (
            "mutation($id: ID!) { updateApplication(id: $id, in: {name: \"stolen\"}) { id } }",
            json!({"id": app}),
        ),
        (
            "mutation($id: ID!) { deleteApplication(id: $id) { id } }",
            json!({"id": app}),
        ),
        (
            "mutation($id: ID!) { addApplicationLabel(applicationID: $id, key: \"k\", values: []) { key } }",
            json!({"id": app}),
        ),
        (
            "mutation($id: ID!) { deleteApplicationLabel(applicationID: $id, key: \"k\", values: []) { key } }",
            json!({"id": app}),
        ),
        (
            "mutation($id: ID!) { addApplicationWebhook(applicationID: $id,
                in: {type: CONFIGURATION_CHANGED, url: \"https://evil.example.com\"}) { id } }",
            json!({"id": app}),
        ),
        (
            "mutation($id: ID!) { updateApplicationWebhook(webhookID: $id,
                in: {type: CONFIGURATION_CHANGED, url: \"https://evil.example.com\"}) { id } }",
            json!({"id": webhook}),
        ),
        (
            "mutation($id: ID!) { deleteApplicationWebhook(webhookID: $id) { id } }",
            json!({"id": webhook}),
        ),
        (
            "mutation($id: ID!, $in: EventAPIDefinitionInput!) { addEventAPI(applicationID: $id, in: $in) { id } }",
            json!({"id": app, "in": api_input("x", SHOP_SPEC)}),
        ),
        (
            "mutation($id: ID!, $in: EventAPIDefinitionInput!) { updateEventAPI(id: $id, in: $in) { id } }",
            json!({"id": api, "in": api_input("x", SHOP_SPEC)}),
        ),
        (
            "mutation($id: ID!) { deleteEventAPI(id: $id) { id } }",
            json!({"id": api}),
        ),
    ];
    let keys_before = acme.keys();
    for (query, variables) in attempts {
        assert_eq!(globex.error_code(query, variables)?, "NOT_FOUND", "{query}");
    }
    assert_eq!(
        acme.keys(),
        keys_before,
        "another tenant changed acme's keys"
    );

    let data = acme.ok(
        "query($id: ID!) { application(id: $id) { name labels webhooks { url } eventAPIs { totalCount } } }",
        json!({"id": app}),
    )?;
    assert_eq!(
        data["application"],
        json!({"name": "shop", "labels": {}, "webhooks": [{"url": "https://shop.example.com/hook"}],
               "eventAPIs": {"totalCount": 1}})
    );
    Ok(())
}

#[test]
fn names_are_unique_per_tenant_only_and_keys_are_tenant_scoped() -> Result<()> {
    let acme = Harness::new();
    let globex = acme.as_tenant("globex");
    acme.create_app(json!({"name": "shop"}))?;
    globex.create_app(json!({"name": "shop"}))?;
    for key in acme.keys() {
        assert!(
            key.starts_with("t/acme/") || key.starts_with("t/globex/"),
            "{key}"
        );
    }
    assert!(
        acme.keys()
            .iter()
            .any(|key| key.starts_with("t/globex/r/app/"))
    );
    Ok(())
}
