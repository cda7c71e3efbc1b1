use anyhow::Result;
use serde_json::{Value, json};

use eventplane_core::{ApiId, KvStore, WebhookId, keys};

use crate::support::{Harness, SHOP_SPEC, api_input, id_at};

const AUTH_FIELDS: &str = "auth {
    credential {
        ... on BasicCredentialData { username password }
        ... on OAuthCredentialData { clientId clientSecret url } }
    additionalHeaders additionalQueryParams
    requestAuth { csrf { tokenEndpointURL additionalHeaders credential {
        ... on BasicCredentialData { username password }
        ... on OAuthCredentialData { clientId clientSecret url } } } } }";

fn basic_with_csrf() -> Value {
    json!({
        "credential": {"basic": {"username": "shop", "password": "hunter2"}},
        "additionalHeaders": {"X-Tenant": ["acme"]},
        "additionalQueryParams": {"v": "2"},
        "requestAuth": {"csrf": {
            "tokenEndpointURL": "https://shop.example.com/csrf",
            "credential": {"oauth": {"clientId": "c", "clientSecret": "csrf-secret",
                                     "url": "https://shop.example.com/token"}},
            "additionalHeaders": {"X-CSRF": ["fetch"]},
        }},
    })
}

#[test]
fn webhooks_are_added_updated_and_deleted() -> Result<()> {
    let h = Harness::new();
    let app = h.create_app(json!({"name": "shop"}))?;
    let data = h.ok(
        "mutation($app: ID!) { addApplicationWebhook(applicationID: $app,
            in: {type: CONFIGURATION_CHANGED, url: \"https://shop.example.com/hook\"}) {
            id applicationID type url auth { additionalHeaders } lastDelivery { status } } }",
        json!({"app": app}),
    )?;
    let webhook = &data["addApplicationWebhook"];
    let id = id_at(&data, "/addApplicationWebhook/id")?;
    assert!(id.starts_with("whk_"));
    assert_eq!(webhook["applicationID"], app.as_str());
    assert_eq!(webhook["type"], "CONFIGURATION_CHANGED");
    assert_eq!(webhook["auth"], json!(null));
    assert_eq!(webhook["lastDelivery"], json!(null));

    let data = h.ok(
        "mutation($id: ID!, $in: ApplicationWebhookInput!) {
            updateApplicationWebhook(webhookID: $id, in: $in) { id url } }",
        json!({"id": id, "in": {"type": "CONFIGURATION_CHANGED", "url": "https://new.example.com"}}),
    )?;
    assert_eq!(
        data["updateApplicationWebhook"],
        json!({"id": id, "url": "https://new.example.com"})
    );

    let delete = "mutation($id: ID!) { deleteApplicationWebhook(webhookID: $id) { id url } }";
    let data = h.ok(delete, json!({"id": id}))?;
    assert_eq!(
        data["deleteApplicationWebhook"]["url"],
        "https://new.example.com"
    );
    assert_eq!(h.error_code(delete, json!({"id": id}))?, "NOT_FOUND");
    let data = h.ok(
        "query($id: ID!) { application(id: $id) { webhooks { id } } }",
        json!({"id": app}),
    )?;
    assert_eq!(data["application"]["webhooks"], json!([]));
    Ok(())
}

#[test]
fn secrets_are_stored_but_never_returned_in_clear() -> Result<()> {
    let h = Harness::new();
    let mut api = api_input("orders", SHOP_SPEC);
    api["auth"] = basic_with_csrf();
    api["spec"]["fetchRequest"] = json!({"url": "https://specs.example.com/a.yaml",
        "auth": {"credential": {"basic": {"username": "f", "password": "fetch-secret"}}}});
    api["externalSubscriptions"] = json!([{"url": "https://bus.example.com/v1/projects/p/subscriptions/s",
        "topic": "projects/p/topics/t",
        "auth": {"credential": {"oauth": {"clientId": "bus", "clientSecret": "bus-secret",
                                          "url": "https://bus.example.com/token"}}}}]);
    let app = h.create_app(json!({
        "name": "shop",
        "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": "https://shop.example.com/hook",
                      "auth": basic_with_csrf()}],
        "eventAPIs": [api],
    }))?;
    let query = format!(
        "query($id: ID!) {{ application(id: $id) {{
            webhooks {{ id {AUTH_FIELDS} }}
            eventAPIs {{ data {{ id {AUTH_FIELDS}
                spec {{ fetchRequest {{ {AUTH_FIELDS} }} }}
                externalSubscriptions {{ {AUTH_FIELDS} }} }} }} }} }}"
    );
    let data = h.ok(&query, json!({"id": app}))?;
    let text = data.to_string();
    for secret in ["hunter2", "csrf-secret", "fetch-secret", "bus-secret"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let auth = &data["application"]["webhooks"][0]["auth"];
    assert_eq!(
        auth["credential"],
        json!({"username": "shop", "password": "********"})
    );
    assert_eq!(auth["additionalHeaders"], json!({"X-Tenant": ["acme"]}));
    assert_eq!(auth["additionalQueryParams"], json!({"v": ["2"]}));
    let csrf = &auth["requestAuth"]["csrf"];
    assert_eq!(csrf["tokenEndpointURL"], "https://shop.example.com/csrf");
    assert_eq!(csrf["credential"]["clientSecret"], "********");
    assert_eq!(csrf["additionalHeaders"], json!({"X-CSRF": ["fetch"]}));
    let api = &data["application"]["eventAPIs"]["data"][0];
    assert_eq!(api["auth"]["credential"]["password"], "********");
    assert_eq!(
        api["spec"]["fetchRequest"]["auth"]["credential"]["password"],
        "********"
    );
    assert_eq!(
        api["externalSubscriptions"][0]["auth"]["credential"]["clientSecret"],
        "********"
    );

    // ...yet they are stored, for eventplane to present them.
    let webhook_id: WebhookId = id_at(&data, "/application/webhooks/0/id")?.parse()?;
    let api_id: ApiId = id_at(&data, "/application/eventAPIs/data/0/id")?.parse()?;
    let mut stored = String::new();
    for key in [
        keys::record_for(&h.tenant, &webhook_id),
        keys::record_for(&h.tenant, &api_id),
    ] {
        let bytes = h.store.get(&key)?.unwrap_or_default();
        stored.push_str(&String::from_utf8_lossy(&bytes));
    }
    for secret in ["hunter2", "csrf-secret", "fetch-secret", "bus-secret"] {
        assert!(stored.contains(secret), "{secret} not stored");
    }
    Ok(())
}
