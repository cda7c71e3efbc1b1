use anyhow::Result;
use serde_json::json;

use crate::support::{BASE_URL, Harness, SHOP_SPEC, api_input, id_at};

const APPLICATION: &str = "query($id: ID!) { application(id: $id) {
    id name description labels status { condition timestamp }
    webhooks { id type url }
    eventAPIs { totalCount data { id name } }
    eventingConfiguration { defaultURL } } }";

#[test]
fn create_application_returns_it_with_status_and_events_url() -> Result<()> {
    let h = Harness::new();
    let data = h.ok(
        "mutation { createApplication(in: {name: \"shop\", description: \"The shop\",
            labels: {env: [\"prod\", \"eu\"], team: \"web\"}}) {
            id name description labels
            status { condition timestamp }
            eventingConfiguration { defaultURL } } }",
        json!({}),
    )?;
    let app = &data["createApplication"];
    assert!(
        app["id"].as_str().is_some_and(|id| id.starts_with("app_")),
        "{app}"
    );
    assert_eq!(app["name"], "shop");
    assert_eq!(app["description"], "The shop");
    assert_eq!(
        app["labels"],
        json!({"env": ["eu", "prod"], "team": ["web"]})
    );
    assert_eq!(
        app["status"],
        json!({"condition": "INITIAL", "timestamp": "2023-11-14T22:13:20Z"})
    );
    assert_eq!(
        app["eventingConfiguration"]["defaultURL"],
        format!("{BASE_URL}/events/shop/v1/events")
    );
    Ok(())
}

#[test]
fn application_query_returns_its_webhooks_and_event_apis() -> Result<()> {
    let h = Harness::new();
    let id = h.create_app(json!({
        "name": "erp",
        "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": "https://erp.example.com/hook"}],
        "eventAPIs": [api_input("orders", SHOP_SPEC), api_input("invoices", SHOP_SPEC)],
    }))?;
    let data = h.ok(APPLICATION, json!({"id": id}))?;
    let app = &data["application"];
    assert_eq!(app["id"], id.as_str());
    assert_eq!(app["webhooks"][0]["type"], "CONFIGURATION_CHANGED");
    assert_eq!(app["webhooks"][0]["url"], "https://erp.example.com/hook");
    assert_eq!(app["eventAPIs"]["totalCount"], 2);
    let mut names: Vec<&str> = app["eventAPIs"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|api| api["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["invoices", "orders"]);
    Ok(())
}

#[test]
fn missing_application_is_null_with_not_found() -> Result<()> {
    let h = Harness::new();
    let response = h.run(
        APPLICATION,
        json!({"id": "app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f"}),
    );
    assert_eq!(response["data"]["application"], json!(null));
    assert_eq!(response["errors"][0]["extensions"]["code"], "NOT_FOUND");
    assert_eq!(response["errors"][0]["path"], json!(["application"]));
    Ok(())
}

#[test]
fn labels_are_added_and_deleted_value_by_value() -> Result<()> {
    let h = Harness::new();
    let id = h.create_app(json!({"name": "shop", "labels": {"env": ["dev"]}}))?;
    let add = "mutation($id: ID!, $key: String!, $values: [String!]!) {
        addApplicationLabel(applicationID: $id, key: $key, values: $values) { key values } }";
    let data = h.ok(
        add,
        json!({"id": id, "key": "env", "values": ["prod", "dev"]}),
    )?;
    assert_eq!(
        data["addApplicationLabel"],
        json!({"key": "env", "values": ["dev", "prod"]})
    );
    h.ok(add, json!({"id": id, "key": "team", "values": ["web"]}))?;

    let delete = "mutation($id: ID!, $key: String!, $values: [String!]!) {
        deleteApplicationLabel(applicationID: $id, key: $key, values: $values) { key values } }";
    let data = h.ok(delete, json!({"id": id, "key": "env", "values": ["dev"]}))?;
    assert_eq!(
        data["deleteApplicationLabel"],
        json!({"key": "env", "values": ["prod"]})
    );
    let data = h.ok(delete, json!({"id": id, "key": "env", "values": ["prod"]}))?;
    assert_eq!(data["deleteApplicationLabel"], json!(null));
    let data = h.ok(delete, json!({"id": id, "key": "team", "values": []}))?;
    assert_eq!(data["deleteApplicationLabel"], json!(null));
    assert_eq!(
        h.error_code(delete, json!({"id": id, "key": "team", "values": []}))?,
        "NOT_FOUND"
    );

    h.ok(add, json!({"id": id, "key": "tier", "values": ["gold"]}))?;
    let data = h.ok(
        "query($id: ID!) { application(id: $id) { all: labels tier: labels(key: \"tier\")
            none: labels(key: \"nope\") } }",
        json!({"id": id}),
    )?;
    assert_eq!(data["application"]["all"], json!({"tier": ["gold"]}));
    assert_eq!(data["application"]["tier"], json!({"tier": ["gold"]}));
    assert_eq!(data["application"]["none"], json!({}));
    Ok(())
}

#[test]
fn update_application_replaces_given_fields_and_keeps_omitted_ones() -> Result<()> {
    let h = Harness::new();
    let id = h.create_app(json!({
        "name": "shop",
        "description": "old",
        "labels": {"env": ["dev"]},
        "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": "https://a.example.com"}],
        "eventAPIs": [api_input("orders", SHOP_SPEC)],
    }))?;
    let update =
        "mutation($id: ID!, $in: ApplicationInput!) { updateApplication(id: $id, in: $in) {
        name description labels webhooks { url } eventAPIs { totalCount data { name } } } }";

    let data = h.ok(
        update,
        json!({"id": id, "in": {"name": "shop", "description": "new"}}),
    )?;
    let app = &data["updateApplication"];
    assert_eq!(app["description"], "new");
    assert_eq!(app["labels"], json!({"env": ["dev"]}));
    assert_eq!(app["webhooks"][0]["url"], "https://a.example.com");
    assert_eq!(app["eventAPIs"]["totalCount"], 1);

    let data = h.ok(
        update,
        json!({"id": id, "in": {
            "name": "shop",
            "description": null,
            "labels": {"env": ["prod"]},
            "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": "https://b.example.com"}],
            "eventAPIs": [api_input("invoices", SHOP_SPEC), api_input("stock", SHOP_SPEC)],
        }}),
    )?;
    let app = &data["updateApplication"];
    assert_eq!(app["description"], json!(null));
    assert_eq!(app["labels"], json!({"env": ["prod"]}));
    assert_eq!(app["webhooks"], json!([{"url": "https://b.example.com"}]));
    assert_eq!(app["eventAPIs"]["totalCount"], 2);

    let data = h.ok(
        update,
        json!({"id": id, "in": {"name": "shop", "eventAPIs": []}}),
    )?;
    assert_eq!(data["updateApplication"]["eventAPIs"]["totalCount"], 0);
    Ok(())
}

#[test]
fn renaming_moves_the_events_url_and_frees_the_old_name() -> Result<()> {
    let h = Harness::new();
    let id = h.create_app(json!({"name": "shop"}))?;
    h.create_app(json!({"name": "erp"}))?;
    let update =
        "mutation($id: ID!, $name: String!) { updateApplication(id: $id, in: {name: $name}) {
        name eventingConfiguration { defaultURL } } }";
    assert_eq!(
        h.error_code(update, json!({"id": id, "name": "erp"}))?,
        "NOT_UNIQUE"
    );

    let data = h.ok(update, json!({"id": id, "name": "webshop"}))?;
    assert_eq!(
        data["updateApplication"]["eventingConfiguration"]["defaultURL"],
        format!("{BASE_URL}/events/webshop/v1/events")
    );
    h.create_app(json!({"name": "shop"}))?;
    let err = h.error(
        "mutation { createApplication(in: {name: \"webshop\"}) { id } }",
        json!({}),
    )?;
    assert_eq!(err["extensions"]["code"], "NOT_UNIQUE");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("webshop")),
        "{err}"
    );
    Ok(())
}

#[test]
fn deleted_application_is_returned_then_gone_and_its_name_free() -> Result<()> {
    let h = Harness::new();
    let id =
        h.create_app(json!({"name": "shop", "eventAPIs": [api_input("orders", SHOP_SPEC)]}))?;
    let data = h.ok(
        "mutation($id: ID!) { deleteApplication(id: $id) { id name } }",
        json!({"id": id}),
    )?;
    assert_eq!(data["deleteApplication"], json!({"id": id, "name": "shop"}));
    assert_eq!(h.error_code(APPLICATION, json!({"id": id}))?, "NOT_FOUND");
    assert_eq!(
        h.error_code(
            "mutation($id: ID!) { deleteApplication(id: $id) { id } }",
            json!({"id": id})
        )?,
        "NOT_FOUND"
    );
    let again = h.create_app(json!({"name": "shop"}))?;
    assert_ne!(again, id);
    let data = h.ok("{ applications { totalCount data { id } } }", json!({}))?;
    assert_eq!(data["applications"]["totalCount"], 1);
    assert_eq!(id_at(&data, "/applications/data/0/id")?, again);
    Ok(())
}
