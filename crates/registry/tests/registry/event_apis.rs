use anyhow::Result;
use serde_json::{Value, json};

use crate::support::{ERP_SPEC, Harness, INVALID_SPEC, SHOP_SPEC, api_input, id_at};

const ADD: &str = "mutation($app: ID!, $in: EventAPIDefinitionInput!) {
    addEventAPI(applicationID: $app, in: $in) {
        id applicationID name description group
        spec { data type format fetchRequest { url mode filter status { condition message timestamp } } }
        version { value deprecated deprecatedSince forRemoval }
        externalSubscriptions { url topic attributes }
        events { name version summary payloadSchema } } }";

const EVENT_API: &str = "query($id: ID!) { eventAPI(id: $id) { id name events { name version } } }";

fn payload(event: &Value) -> Result<Value> {
    let text = event["payloadSchema"].as_str().unwrap_or("null");
    Ok(serde_json::from_str(text)?)
}

#[test]
fn add_event_api_derives_the_catalog_from_an_inline_spec() -> Result<()> {
    let h = Harness::new();
    let app = h.create_app(json!({"name": "shop"}))?;
    let input = json!({
        "name": "orders",
        "description": "Order events",
        "group": "commerce",
        "spec": {"data": SHOP_SPEC, "eventSpecType": "ASYNC_API", "format": "YAML"},
        "version": {"value": "1.4", "deprecatedSince": "1.0"},
    });
    let data = h.ok(ADD, json!({"app": app, "in": input}))?;
    let api = &data["addEventAPI"];
    assert!(api["id"].as_str().is_some_and(|id| id.starts_with("api_")));
    assert_eq!(api["applicationID"], app.as_str());
    assert_eq!(api["name"], "orders");
    assert_eq!(api["group"], "commerce");
    assert_eq!(api["spec"]["data"], SHOP_SPEC);
    assert_eq!(api["spec"]["type"], "ASYNC_API");
    assert_eq!(api["spec"]["format"], "YAML");
    assert_eq!(api["spec"]["fetchRequest"], json!(null));
    assert_eq!(
        api["version"],
        json!({"value": "1.4", "deprecated": false, "deprecatedSince": "1.0", "forRemoval": false})
    );
    assert_eq!(api["externalSubscriptions"], json!([]));
    let event = &api["events"][0];
    assert_eq!(event["name"], "order.created.v1");
    assert_eq!(event["version"], "v1");
    assert_eq!(event["summary"], "An order was placed.");
    assert_eq!(payload(event)?["required"], json!(["orderId"]));
    Ok(())
}

#[test]
fn a_json_asyncapi_3_spec_with_refs_is_detected_and_resolved() -> Result<()> {
    let h = Harness::new();
    let app = h.create_app(json!({"name": "erp"}))?;
    let data = h.ok(ADD, json!({"app": app, "in": api_input("erp", ERP_SPEC)}))?;
    let api = &data["addEventAPI"];
    assert_eq!(api["spec"]["format"], "JSON");
    let events = api["events"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = events.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["invoice.issued", "stock.changed.v3"]);
    assert_eq!(events[0]["version"], "2.0.0");
    assert_eq!(events[1]["version"], "v3");
    assert_eq!(events[0]["summary"], "An invoice was issued.");
    assert_eq!(
        payload(&events[0])?["properties"]["total"]["type"],
        "number"
    );
    Ok(())
}

#[test]
fn event_api_is_found_by_id_at_the_top_and_under_its_application() -> Result<()> {
    let h = Harness::new();
    let app = h.create_app(json!({"name": "shop"}))?;
    let other = h.create_app(json!({"name": "erp"}))?;
    let api = h.add_api(&app, "orders", SHOP_SPEC)?;
    let data = h.ok(EVENT_API, json!({"id": api}))?;
    assert_eq!(data["eventAPI"]["name"], "orders");
    assert_eq!(data["eventAPI"]["events"][0]["name"], "order.created.v1");

    let under =
        "query($app: ID!, $api: ID!) { application(id: $app) { eventAPI(id: $api) { id } } }";
    let data = h.ok(under, json!({"app": app, "api": api}))?;
    assert_eq!(data["application"]["eventAPI"]["id"], api.as_str());
    assert_eq!(
        h.error_code(under, json!({"app": other, "api": api}))?,
        "NOT_FOUND"
    );
    Ok(())
}

#[test]
fn update_event_api_replaces_spec_and_catalog_and_keeps_its_id() -> Result<()> {
    let h = Harness::new();
    let app = h.create_app(json!({"name": "shop"}))?;
    let api = h.add_api(&app, "orders", SHOP_SPEC)?;
    let data = h.ok(
        "mutation($id: ID!, $in: EventAPIDefinitionInput!) { updateEventAPI(id: $id, in: $in) {
            id applicationID name events { name } } }",
        json!({"id": api, "in": api_input("erp", ERP_SPEC)}),
    )?;
    let updated = &data["updateEventAPI"];
    assert_eq!(updated["id"], api.as_str());
    assert_eq!(updated["applicationID"], app.as_str());
    assert_eq!(updated["name"], "erp");
    assert_eq!(updated["events"].as_array().map(Vec::len), Some(2));

    let err = h.error_code(
        "mutation($id: ID!, $in: EventAPIDefinitionInput!) { updateEventAPI(id: $id, in: $in) { id } }",
        json!({"id": "api_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f", "in": api_input("x", SHOP_SPEC)}),
    )?;
    assert_eq!(err, "NOT_FOUND");
    Ok(())
}

#[test]
fn delete_event_api_returns_it_and_unlists_it() -> Result<()> {
    let h = Harness::new();
    let app = h.create_app(json!({"name": "shop"}))?;
    let api = h.add_api(&app, "orders", SHOP_SPEC)?;
    let keep = h.add_api(&app, "invoices", SHOP_SPEC)?;
    let delete = "mutation($id: ID!) { deleteEventAPI(id: $id) { id name } }";
    let data = h.ok(delete, json!({"id": api}))?;
    assert_eq!(data["deleteEventAPI"], json!({"id": api, "name": "orders"}));
    assert_eq!(h.error_code(EVENT_API, json!({"id": api}))?, "NOT_FOUND");
    assert_eq!(h.error_code(delete, json!({"id": api}))?, "NOT_FOUND");
    let data = h.ok(
        "query($id: ID!) { application(id: $id) { eventAPIs { totalCount data { id } } } }",
        json!({"id": app}),
    )?;
    assert_eq!(data["application"]["eventAPIs"]["totalCount"], 1);
    assert_eq!(id_at(&data, "/application/eventAPIs/data/0/id")?, keep);
    Ok(())
}

#[test]
fn a_fetch_request_without_a_fetcher_is_stored_as_failed_with_an_empty_catalog() -> Result<()> {
    let h = Harness::new();
    let app = h.create_app(json!({"name": "shop"}))?;
    let input = json!({"name": "remote", "spec": {
        "eventSpecType": "ASYNC_API",
        "fetchRequest": {"url": "https://specs.example.com/shop.yaml", "filter": "*.yaml"},
    }});
    let data = h.ok(ADD, json!({"app": app, "in": input}))?;
    let api = &data["addEventAPI"];
    assert_eq!(api["spec"]["data"], json!(null));
    assert_eq!(api["events"], json!([]));
    let fetch = &api["spec"]["fetchRequest"];
    assert_eq!(fetch["url"], "https://specs.example.com/shop.yaml");
    assert_eq!(fetch["mode"], "SINGLE");
    assert_eq!(fetch["filter"], "*.yaml");
    assert_eq!(fetch["status"]["condition"], "FAILED");
    assert_eq!(fetch["status"]["timestamp"], "2023-11-14T22:13:20Z");
    assert!(
        fetch["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not configured"))
    );
    Ok(())
}

#[test]
fn an_invalid_spec_is_invalid_spec_with_its_path_and_nothing_is_stored() -> Result<()> {
    let h = Harness::new();
    let app = h.create_app(json!({"name": "shop"}))?;
    let keys_before = h.keys();
    let err = h.error(
        ADD,
        json!({"app": app, "in": api_input("broken", INVALID_SPEC)}),
    )?;
    assert_eq!(err["extensions"]["code"], "INVALID_SPEC");
    assert_eq!(err["extensions"]["path"], "/info/title");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("info.title")),
        "{err}"
    );
    assert_eq!(h.keys(), keys_before);

    let err = h.error(
        "mutation($in: ApplicationInput!) { createApplication(in: $in) { id } }",
        json!({"in": {"name": "erp", "eventAPIs": [
            api_input("fine", SHOP_SPEC), api_input("broken", "asyncapi: [")]}}),
    )?;
    assert_eq!(err["extensions"]["code"], "INVALID_SPEC");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("in.eventAPIs[1]")),
        "{err}"
    );
    assert_eq!(h.keys(), keys_before);
    Ok(())
}

#[test]
fn a_spec_over_the_limit_is_rejected_naming_the_limit() -> Result<()> {
    let h = Harness::new();
    let app = h.create_app(json!({"name": "shop"}))?;
    let padding = format!("# {}\n", "x".repeat(h.config.spec_max_bytes));
    let err = h.error(
        ADD,
        json!({"app": app, "in": api_input("big", &(padding + SHOP_SPEC))}),
    )?;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(message.contains("spec_max_bytes = 65536"), "{message}");
    assert_eq!(err["extensions"]["details"][0]["field"], "in.spec.data");
    Ok(())
}

#[test]
fn a_spec_needs_data_or_a_fetch_request() -> Result<()> {
    let h = Harness::new();
    let app = h.create_app(json!({"name": "shop"}))?;
    let input = json!({"name": "empty", "spec": {"eventSpecType": "ASYNC_API"}});
    assert_eq!(
        h.error_code(ADD, json!({"app": app, "in": input}))?,
        "BAD_USER_INPUT"
    );
    Ok(())
}

#[test]
fn event_apis_of_an_application_page_and_filter_by_group() -> Result<()> {
    let h = Harness::new();
    let app = h.create_app(json!({"name": "shop"}))?;
    for i in 0..5 {
        let group = if i % 2 == 0 { "even" } else { "odd" };
        let mut input = api_input(&format!("api-{i}"), SHOP_SPEC);
        input["group"] = json!(group);
        h.ok(ADD, json!({"app": app, "in": input}))?;
    }
    let query = "query($id: ID!, $group: String, $first: Int, $after: PageCursor) {
        application(id: $id) { eventAPIs(group: $group, first: $first, after: $after) {
            totalCount pageInfo { endCursor hasNextPage } data { name group } } } }";
    let data = h.ok(query, json!({"id": app, "group": "even", "first": 2}))?;
    let page = &data["application"]["eventAPIs"];
    assert_eq!(page["totalCount"], 3);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let names: Vec<&str> = page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|api| api["name"].as_str())
        .collect();
    assert_eq!(names, ["api-0", "api-2"]);
    let after = page["pageInfo"]["endCursor"].clone();
    let data = h.ok(
        query,
        json!({"id": app, "group": "even", "first": 2, "after": after}),
    )?;
    let page = &data["application"]["eventAPIs"];
    assert_eq!(page["data"], json!([{"name": "api-4", "group": "even"}]));
    assert_eq!(page["pageInfo"]["hasNextPage"], false);

    let data = h.ok(query, json!({"id": app}))?;
    assert_eq!(data["application"]["eventAPIs"]["totalCount"], 5);
    Ok(())
}

#[test]
fn external_subscriptions_and_auth_are_stored_and_returned() -> Result<()> {
    let h = Harness::new();
    let app = h.create_app(json!({"name": "shop"}))?;
    let mut input = api_input("pubsub", SHOP_SPEC);
    input["externalSubscriptions"] = json!([{
        "url": "https://pubsub.googleapis.com/v1/projects/p/subscriptions/orders",
        "topic": "projects/p/topics/orders",
        "attributes": {"ackDeadlineSeconds": "30"},
        "auth": {"credential": {"oauth": {
            "clientId": "sa", "clientSecret": "s3cret", "url": "https://oauth2.googleapis.com/token"}}},
    }]);
    let data = h.ok(
        "mutation($app: ID!, $in: EventAPIDefinitionInput!) { addEventAPI(applicationID: $app, in: $in) {
            externalSubscriptions { url topic attributes auth { credential {
                ... on OAuthCredentialData { clientId clientSecret url } } } } } }",
        json!({"app": app, "in": input}),
    )?;
    let sub = &data["addEventAPI"]["externalSubscriptions"][0];
    assert_eq!(sub["topic"], "projects/p/topics/orders");
    assert_eq!(sub["attributes"], json!({"ackDeadlineSeconds": "30"}));
    assert_eq!(
        sub["auth"]["credential"],
        json!({"clientId": "sa", "clientSecret": "********", "url": "https://oauth2.googleapis.com/token"})
    );
    Ok(())
}
