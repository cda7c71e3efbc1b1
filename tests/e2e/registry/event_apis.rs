//! Event APIs over HTTP: add, read, update, delete, their pages, and secrets kept masked.

use serde_json::{Value, json as j};

use super::{Registry, SHOP_SPEC, api_input, fixture, string_at, strings};
use crate::e2e_test;

const ADD: &str = "mutation($app: ID!, $in: EventAPIDefinitionInput!) {
    addEventAPI(applicationID: $app, in: $in) {
        id applicationID name description group
        spec { data type format fetchRequest { url mode filter status { condition message } } }
        version { value deprecated deprecatedSince forRemoval }
        externalSubscriptions { url topic attributes }
        events { name version summary payloadSchema } } }";

const EVENT_API: &str =
    "query($id: ID!) { eventAPI(id: $id) { id applicationID name events { name version } } }";

const UPDATE: &str = "mutation($id: ID!, $in: EventAPIDefinitionInput!) {
    updateEventAPI(id: $id, in: $in) { id applicationID name spec { format } events { name version } } }";

const DELETE: &str = "mutation($id: ID!) { deleteEventAPI(id: $id) { id name } }";

const MISSING_API: &str = "api_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f";

e2e_test! {
    async fn add_event_api_stores_the_definition_and_derives_its_catalog() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "shop"})).await?;
        let input = j!({
            "name": "orders",
            "description": "Order events",
            "group": "commerce",
            "spec": {"data": SHOP_SPEC, "eventSpecType": "ASYNC_API", "format": "YAML"},
            "version": {"value": "1.4", "deprecatedSince": "1.0"},
            "externalSubscriptions": [{
                "url": "https://pubsub.googleapis.com/v1/projects/p/subscriptions/orders",
                "topic": "projects/p/topics/orders",
                "attributes": {"ackDeadlineSeconds": "30"},
            }],
        });
        let data = g.ok(ADD, j!({"app": app, "in": input})).await?;
        let api = &data["addEventAPI"];
        assert!(api["id"].as_str().is_some_and(|id| id.starts_with("api_")), "{api}");
        assert_eq!(api["applicationID"], app.as_str());
        assert_eq!(api["name"], "orders");
        assert_eq!(api["description"], "Order events");
        assert_eq!(api["group"], "commerce");
        assert_eq!(
            api["spec"],
            j!({"data": SHOP_SPEC, "type": "ASYNC_API", "format": "YAML", "fetchRequest": null})
        );
        assert_eq!(
            api["version"],
            j!({"value": "1.4", "deprecated": false, "deprecatedSince": "1.0", "forRemoval": false})
        );
        assert_eq!(
            api["externalSubscriptions"],
            j!([{"url": "https://pubsub.googleapis.com/v1/projects/p/subscriptions/orders",
                 "topic": "projects/p/topics/orders", "attributes": {"ackDeadlineSeconds": "30"}}])
        );
        let event = &api["events"][0];
        assert_eq!(event["name"], "order.created.v1");
        assert_eq!(event["version"], "v1");
        assert_eq!(event["summary"], "An order was placed.");
        let payload: Value = serde_json::from_str(event["payloadSchema"].as_str().unwrap_or("null"))?;
        assert_eq!(payload["required"], j!(["orderId"]));

        let missing_app = "app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f";
        let code = g
            .error_code(ADD, j!({"app": missing_app, "in": api_input("x", SHOP_SPEC)}))
            .await?;
        assert_eq!(code, "NOT_FOUND");
        r.stop().await
    }
}

e2e_test! {
    async fn event_api_is_found_by_id_at_the_top_and_under_its_application() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "shop"})).await?;
        let other = g.create_app(j!({"name": "erp"})).await?;
        let api = g.add_api(&app, api_input("orders", SHOP_SPEC)).await?;

        let data = g.ok(EVENT_API, j!({"id": api})).await?;
        assert_eq!(
            data["eventAPI"],
            j!({"id": api, "applicationID": app, "name": "orders",
                "events": [{"name": "order.created.v1", "version": "v1"}]})
        );
        let under = "query($app: ID!, $api: ID!) { application(id: $app) { eventAPI(id: $api) { id name } } }";
        let data = g.ok(under, j!({"app": app, "api": api})).await?;
        assert_eq!(data["application"]["eventAPI"], j!({"id": api, "name": "orders"}));
        assert_eq!(g.error_code(under, j!({"app": other, "api": api})).await?, "NOT_FOUND");
        assert_eq!(g.error_code(EVENT_API, j!({"id": MISSING_API})).await?, "NOT_FOUND");
        r.stop().await
    }
}

e2e_test! {
    async fn update_event_api_replaces_spec_and_catalog_and_keeps_its_id() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "erp"})).await?;
        let api = g.add_api(&app, api_input("orders", SHOP_SPEC)).await?;
        let input = api_input("accounts", &fixture("bank-accounts-3.0.yaml")?);
        let data = g.ok(UPDATE, j!({"id": api, "in": input})).await?;
        let updated = &data["updateEventAPI"];
        assert_eq!(updated["id"], api.as_str());
        assert_eq!(updated["applicationID"], app.as_str());
        assert_eq!(updated["name"], "accounts");
        assert_eq!(updated["spec"]["format"], "YAML");
        assert_eq!(
            strings(&updated["events"], "name"),
            ["accounts.opened.v1", "accounts.closed.v2", "balanceAlert"]
        );

        // Stored: read back, and still one API.
        let data = g.ok(EVENT_API, j!({"id": api})).await?;
        assert_eq!(data["eventAPI"]["name"], "accounts");
        assert_eq!(data["eventAPI"]["events"][2], j!({"name": "balanceAlert", "version": "5.1.0"}));
        assert_eq!(g.api_count(&app).await?, 1);

        let code = g
            .error_code(UPDATE, j!({"id": MISSING_API, "in": api_input("x", SHOP_SPEC)}))
            .await?;
        assert_eq!(code, "NOT_FOUND");
        r.stop().await
    }
}

e2e_test! {
    async fn delete_event_api_returns_it_and_unlists_it() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "shop"})).await?;
        let api = g.add_api(&app, api_input("orders", SHOP_SPEC)).await?;
        let keep = g.add_api(&app, api_input("invoices", SHOP_SPEC)).await?;

        let data = g.ok(DELETE, j!({"id": api})).await?;
        assert_eq!(data["deleteEventAPI"], j!({"id": api, "name": "orders"}));
        assert_eq!(g.error_code(EVENT_API, j!({"id": api})).await?, "NOT_FOUND");
        assert_eq!(g.error_code(DELETE, j!({"id": api})).await?, "NOT_FOUND");
        let data = g
            .ok(
                "query($id: ID!) { application(id: $id) { eventAPIs { totalCount data { id } } } }",
                j!({"id": app}),
            )
            .await?;
        assert_eq!(data["application"]["eventAPIs"]["totalCount"], 1);
        assert_eq!(string_at(&data, "/application/eventAPIs/data/0/id")?, keep);
        r.stop().await
    }
}

e2e_test! {
    async fn event_apis_of_an_application_page_and_filter_by_group() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "shop"})).await?;
        for i in 0..5 {
            let mut input = api_input(&format!("api-{i}"), SHOP_SPEC);
            input["group"] = j!(if i % 2 == 0 { "even" } else { "odd" });
            g.add_api(&app, input).await?;
        }
        let query = "query($id: ID!, $group: String, $first: Int, $after: PageCursor) {
            application(id: $id) { eventAPIs(group: $group, first: $first, after: $after) {
                totalCount pageInfo { endCursor hasNextPage } data { name group } } } }";
        let data = g.ok(query, j!({"id": app, "group": "even", "first": 2})).await?;
        let page = &data["application"]["eventAPIs"];
        assert_eq!(page["totalCount"], 3);
        assert_eq!(page["pageInfo"]["hasNextPage"], true);
        assert_eq!(strings(&page["data"], "name"), ["api-0", "api-2"]);
        let after = page["pageInfo"]["endCursor"].clone();
        let data = g
            .ok(query, j!({"id": app, "group": "even", "first": 2, "after": after}))
            .await?;
        let page = &data["application"]["eventAPIs"];
        assert_eq!(page["data"], j!([{"name": "api-4", "group": "even"}]));
        assert_eq!(page["pageInfo"]["hasNextPage"], false);
        let data = g.ok(query, j!({"id": app})).await?;
        assert_eq!(data["application"]["eventAPIs"]["totalCount"], 5);
        r.stop().await
    }
}

e2e_test! {
    async fn a_fetch_request_with_data_is_stored_as_initial_and_the_data_used() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "shop"})).await?;
        let input = j!({"name": "remote", "spec": {
            "eventSpecType": "ASYNC_API",
            "data": SHOP_SPEC,
            "fetchRequest": {"url": "https://specs.example.com/shop.yaml", "filter": "*.yaml"},
        }});
        let data = g.ok(ADD, j!({"app": app, "in": input})).await?;
        let api = &data["addEventAPI"];
        assert_eq!(api["spec"]["data"], SHOP_SPEC);
        assert_eq!(strings(&api["events"], "name"), ["order.created.v1"]);
        let fetch = &api["spec"]["fetchRequest"];
        assert_eq!(fetch["url"], "https://specs.example.com/shop.yaml");
        assert_eq!(fetch["mode"], "SINGLE");
        assert_eq!(fetch["filter"], "*.yaml");
        assert_eq!(fetch["status"]["condition"], "INITIAL");
        r.stop().await
    }
}

/// Every `auth` selection, with both credential kinds.
const AUTH: &str = "auth {
    credential {
        ... on BasicCredentialData { username password }
        ... on OAuthCredentialData { clientId clientSecret url } }
    additionalHeaders additionalQueryParams
    requestAuth { csrf { tokenEndpointURL credential {
        ... on BasicCredentialData { username password }
        ... on OAuthCredentialData { clientId clientSecret url } } } } }";

const SECRETS: [&str; 5] = [
    "hunter2",
    "csrf-secret",
    "fetch-secret",
    "bus-secret",
    "hook-secret",
];

fn basic_with_csrf() -> Value {
    j!({
        "credential": {"basic": {"username": "shop", "password": "hunter2"}},
        "additionalHeaders": {"X-Tenant": ["acme"]},
        "requestAuth": {"csrf": {
            "tokenEndpointURL": "https://shop.example.com/csrf",
            "credential": {"oauth": {"clientId": "c", "clientSecret": "csrf-secret",
                                     "url": "https://shop.example.com/token"}},
        }},
    })
}

e2e_test! {
    async fn secrets_are_masked_in_every_answer() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let mut api = api_input("orders", SHOP_SPEC);
        api["auth"] = basic_with_csrf();
        api["spec"]["fetchRequest"] = j!({"url": "https://specs.example.com/a.yaml",
            "auth": {"credential": {"basic": {"username": "f", "password": "fetch-secret"}}}});
        api["externalSubscriptions"] = j!([{"url": "https://bus.example.com/v1/projects/p/subscriptions/s",
            "topic": "projects/p/topics/t",
            "auth": {"credential": {"oauth": {"clientId": "bus", "clientSecret": "bus-secret",
                                              "url": "https://bus.example.com/token"}}}}]);
        let query = format!(
            "mutation($in: ApplicationInput!) {{ createApplication(in: $in) {{ id
                webhooks {{ id {AUTH} }}
                eventAPIs {{ data {{ id {AUTH} spec {{ fetchRequest {{ {AUTH} }} }}
                    externalSubscriptions {{ {AUTH} }} }} }} }} }}"
        );
        let created = g
            .ok(&query, j!({"in": {
                "name": "shop",
                "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": "https://shop.example.com/hook",
                              "auth": {"credential": {"basic": {"username": "hook", "password": "hook-secret"}}}}],
                "eventAPIs": [api],
            }}))
            .await?;
        let app = string_at(&created, "/createApplication/id")?;
        let api_id = string_at(&created, "/createApplication/eventAPIs/data/0/id")?;

        let read_app = format!(
            "query($id: ID!) {{ application(id: $id) {{ webhooks {{ {AUTH} }}
                eventAPIs {{ data {{ {AUTH} spec {{ fetchRequest {{ {AUTH} }} }}
                    externalSubscriptions {{ {AUTH} }} }} }} }} }}"
        );
        let read_api = format!(
            "query($id: ID!) {{ eventAPI(id: $id) {{ {AUTH} spec {{ fetchRequest {{ {AUTH} }} }}
                externalSubscriptions {{ {AUTH} }} }} }}"
        );
        let by_app = g.ok(&read_app, j!({"id": app})).await?;
        let by_api = g.ok(&read_api, j!({"id": api_id})).await?;
        let listed = g
            .ok(&format!("{{ applications {{ data {{ webhooks {{ {AUTH} }} }} }} }}"), j!({}))
            .await?;
        for answer in [&created, &by_app, &by_api, &listed] {
            let text = answer.to_string();
            for secret in SECRETS {
                assert!(!text.contains(secret), "{secret} leaked: {text}");
            }
        }
        let auth = &by_app["application"]["webhooks"][0]["auth"];
        assert_eq!(auth["credential"], j!({"username": "hook", "password": "********"}));
        let api = &by_api["eventAPI"];
        assert_eq!(api["auth"]["credential"], j!({"username": "shop", "password": "********"}));
        assert_eq!(api["auth"]["additionalHeaders"], j!({"X-Tenant": ["acme"]}));
        assert_eq!(api["auth"]["requestAuth"]["csrf"]["credential"]["clientSecret"], "********");
        assert_eq!(api["spec"]["fetchRequest"]["auth"]["credential"]["password"], "********");
        assert_eq!(
            api["externalSubscriptions"][0]["auth"]["credential"],
            j!({"clientId": "bus", "clientSecret": "********", "url": "https://bus.example.com/token"})
        );
        r.stop().await
    }
}
