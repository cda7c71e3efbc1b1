//! Tenancy over HTTP: the `Tenant` header scopes every read and write; without it, requests
//! belong to the `default_tenant`.

use serde_json::{Value, json as j};

use super::{Registry, SHOP_SPEC, api_input, string_at, strings};
use crate::e2e_test;

/// Every query and mutation that names an object of another tenant.
fn attempts(app: &str, api: &str, webhook: &str) -> Vec<(&'static str, Value)> {
    vec![
        (
            "query($id: ID!) { application(id: $id) { id } }",
            j!({"id": app}),
        ),
        (
            "query($id: ID!) { eventAPI(id: $id) { id } }",
            j!({"id": api}),
        ),
        (
            "mutation($id: ID!) { updateApplication(id: $id, in: {name: \"stolen\"}) { id } }",
            j!({"id": app}),
        ),
        (
            "mutation($id: ID!) { addApplicationLabel(applicationID: $id, key: \"k\", values: [\"v\"]) { key } }",
            j!({"id": app}),
        ),
        (
            "mutation($id: ID!) { deleteApplicationLabel(applicationID: $id, key: \"env\", values: []) { key } }",
            j!({"id": app}),
        ),
        (
            "mutation($id: ID!) { addApplicationWebhook(applicationID: $id,
                in: {type: CONFIGURATION_CHANGED, url: \"https://evil.example.com\"}) { id } }",
            j!({"id": app}),
        ),
        (
            "mutation($id: ID!) { updateApplicationWebhook(webhookID: $id,
                in: {type: CONFIGURATION_CHANGED, url: \"https://evil.example.com\"}) { id } }",
            j!({"id": webhook}),
        ),
        (
            "mutation($id: ID!) { deleteApplicationWebhook(webhookID: $id) { id } }",
            j!({"id": webhook}),
        ),
        (
            "mutation($id: ID!, $in: EventAPIDefinitionInput!) { addEventAPI(applicationID: $id, in: $in) { id } }",
            j!({"id": app, "in": api_input("x", SHOP_SPEC)}),
        ),
        (
            "mutation($id: ID!, $in: EventAPIDefinitionInput!) { updateEventAPI(id: $id, in: $in) { id } }",
            j!({"id": api, "in": api_input("x", SHOP_SPEC)}),
        ),
        (
            "mutation($id: ID!) { deleteEventAPI(id: $id) { id } }",
            j!({"id": api}),
        ),
        (
            "mutation($id: ID!) { deleteApplication(id: $id) { id } }",
            j!({"id": app}),
        ),
    ]
}

const EVERYTHING: &str = "query($id: ID!) { application(id: $id) {
    name labels webhooks { id url } eventAPIs { totalCount data { id name } } } }";

e2e_test! {
    async fn another_tenants_objects_are_not_found_and_never_listed() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let acme = r.gql_as("acme");
        let globex = r.gql_as("globex");
        let app = acme
            .create_app(j!({
                "name": "shop",
                "labels": {"env": ["prod"]},
                "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": "https://shop.example.com/hook"}],
            }))
            .await?;
        let api = acme.add_api(&app, api_input("orders", SHOP_SPEC)).await?;
        let before = acme.ok(EVERYTHING, j!({"id": app})).await?;
        let webhook = string_at(&before, "/application/webhooks/0/id")?;

        let data = globex.ok("{ applications { totalCount data { id } } }", j!({})).await?;
        assert_eq!(data["applications"], j!({"totalCount": 0, "data": []}));
        let data = r.gql().ok("{ applications { totalCount } }", j!({})).await?;
        assert_eq!(data["applications"]["totalCount"], 0, "the default tenant sees nothing");
        for (query, variables) in attempts(&app, &api, &webhook) {
            assert_eq!(globex.error_code(query, variables.clone()).await?, "NOT_FOUND", "{query}");
            assert_eq!(r.gql().error_code(query, variables).await?, "NOT_FOUND", "default: {query}");
        }

        // Nothing of acme's changed.
        assert_eq!(acme.ok(EVERYTHING, j!({"id": app})).await?, before);
        let data = acme.ok("{ applications { totalCount data { id } } }", j!({})).await?;
        assert_eq!(strings(&data["applications"]["data"], "id"), [app]);
        r.stop().await
    }
}

e2e_test! {
    async fn names_are_unique_per_tenant_only() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let acme = r.gql_as("acme").create_app(j!({"name": "shop"})).await?;
        let globex = r.gql_as("globex").create_app(j!({"name": "shop"})).await?;
        assert_ne!(acme, globex);
        let code = r
            .gql_as("acme")
            .error_code("mutation { createApplication(in: {name: \"shop\"}) { id } }", j!({}))
            .await?;
        assert_eq!(code, "NOT_UNIQUE");
        r.stop().await
    }
}

e2e_test! {
    async fn requests_without_a_tenant_header_belong_to_the_default_tenant() -> anyhow::Result<()> {
        let r = Registry::start_with(&[("SPIN_VARIABLE_DEFAULT_TENANT", "acme")]).await?;
        let app = r.gql().create_app(j!({"name": "shop"})).await?;
        let data = r
            .gql_as("acme")
            .ok("query($id: ID!) { application(id: $id) { name } }", j!({"id": app}))
            .await?;
        assert_eq!(data["application"]["name"], "shop");
        let code = r
            .gql_as("default")
            .error_code("query($id: ID!) { application(id: $id) { name } }", j!({"id": app}))
            .await?;
        assert_eq!(code, "NOT_FOUND");
        r.stop().await
    }
}
