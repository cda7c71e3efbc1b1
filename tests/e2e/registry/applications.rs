//! Applications over HTTP: create, read, update (and rename), labels, and the cascading delete.

use serde_json::json as j;

use super::{Registry, SHOP_SPEC, api_input, string_at, strings};
use crate::e2e_test;

const BASE_URL: &str = "https://events.example.com";

const APPLICATION: &str = "query($id: ID!) { application(id: $id) {
    id name description labels status { condition timestamp }
    webhooks { id type url }
    eventAPIs { totalCount data { id name } }
    eventingConfiguration { defaultURL } } }";

e2e_test! {
    async fn create_application_returns_it_with_its_events_url() -> anyhow::Result<()> {
        let r = Registry::start_with(&[("SPIN_VARIABLE_EVENTS_BASE_URL", BASE_URL)]).await?;
        let data = r
            .gql()
            .ok(
                "mutation($in: ApplicationInput!) { createApplication(in: $in) {
                    id name description labels status { condition timestamp }
                    webhooks { type url } eventAPIs { totalCount data { name events { name } } }
                    eventingConfiguration { defaultURL } } }",
                j!({"in": {
                    "name": "shop",
                    "description": "The web shop",
                    "labels": {"env": ["prod", "eu"], "team": ["web"]},
                    "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": "https://shop.example.com/hook"}],
                    "eventAPIs": [api_input("orders", SHOP_SPEC)],
                }}),
            )
            .await?;
        let app = &data["createApplication"];
        assert!(app["id"].as_str().is_some_and(|id| id.starts_with("app_")), "{app}");
        assert_eq!(app["name"], "shop");
        assert_eq!(app["description"], "The web shop");
        assert_eq!(app["labels"], j!({"env": ["eu", "prod"], "team": ["web"]}));
        assert_eq!(app["status"]["condition"], "INITIAL");
        assert!(app["status"]["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{app}");
        assert_eq!(
            app["webhooks"],
            j!([{"type": "CONFIGURATION_CHANGED", "url": "https://shop.example.com/hook"}])
        );
        assert_eq!(
            app["eventAPIs"],
            j!({"totalCount": 1, "data": [{"name": "orders", "events": [{"name": "order.created.v1"}]}]})
        );
        assert_eq!(
            app["eventingConfiguration"]["defaultURL"],
            format!("{BASE_URL}/events/shop/v1/events")
        );
        r.stop().await
    }
}

e2e_test! {
    async fn the_events_url_defaults_to_the_local_gateway() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let data = r
            .gql()
            .ok(
                "mutation { createApplication(in: {name: \"erp\"}) { eventingConfiguration { defaultURL } } }",
                j!({}),
            )
            .await?;
        assert_eq!(
            data["createApplication"]["eventingConfiguration"]["defaultURL"],
            "http://127.0.0.1:3000/events/erp/v1/events"
        );
        r.stop().await
    }
}

e2e_test! {
    async fn application_by_id_returns_what_was_stored_and_missing_ones_are_not_found()
        -> anyhow::Result<()>
    {
        let r = Registry::start().await?;
        let g = r.gql();
        let id = g
            .create_app(j!({
                "name": "erp",
                "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": "https://erp.example.com/hook"}],
                "eventAPIs": [api_input("orders", SHOP_SPEC), api_input("invoices", SHOP_SPEC)],
            }))
            .await?;
        let data = g.ok(APPLICATION, j!({"id": id})).await?;
        let app = &data["application"];
        assert_eq!(app["id"], id.as_str());
        assert_eq!(app["name"], "erp");
        assert_eq!(app["description"], j!(null));
        assert_eq!(app["labels"], j!({}));
        assert_eq!(app["webhooks"][0]["url"], "https://erp.example.com/hook");
        assert!(string_at(&data, "/application/webhooks/0/id")?.starts_with("whk_"));
        assert_eq!(app["eventAPIs"]["totalCount"], 2);
        let mut names = strings(&app["eventAPIs"]["data"], "name");
        names.sort_unstable();
        assert_eq!(names, ["invoices", "orders"]);

        let (status, body) = g
            .post(APPLICATION, j!({"id": "app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f"}))
            .await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["application"], j!(null));
        assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND", "{body}");
        r.stop().await
    }
}

e2e_test! {
    async fn update_application_replaces_given_fields_and_keeps_omitted_ones() -> anyhow::Result<()> {
        let r = Registry::start_with(&[("SPIN_VARIABLE_EVENTS_BASE_URL", BASE_URL)]).await?;
        let g = r.gql();
        let id = g
            .create_app(j!({
                "name": "shop",
                "description": "old",
                "labels": {"env": ["dev"]},
                "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": "https://a.example.com"}],
                "eventAPIs": [api_input("orders", SHOP_SPEC)],
            }))
            .await?;
        let update = "mutation($id: ID!, $in: ApplicationInput!) { updateApplication(id: $id, in: $in) {
            id name description labels webhooks { url } eventAPIs { totalCount data { name } }
            eventingConfiguration { defaultURL } } }";

        let data = g.ok(update, j!({"id": id, "in": {"name": "shop", "description": "new"}})).await?;
        let app = &data["updateApplication"];
        assert_eq!(app["id"], id.as_str());
        assert_eq!(app["description"], "new");
        assert_eq!(app["labels"], j!({"env": ["dev"]}));
        assert_eq!(app["webhooks"], j!([{"url": "https://a.example.com"}]));
        assert_eq!(app["eventAPIs"]["totalCount"], 1);

        let data = g
            .ok(
                update,
                j!({"id": id, "in": {
                    "name": "webshop",
                    "description": null,
                    "labels": {"env": ["prod"]},
                    "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": "https://b.example.com"}],
                    "eventAPIs": [api_input("invoices", SHOP_SPEC), api_input("stock", SHOP_SPEC)],
                }}),
            )
            .await?;
        let app = &data["updateApplication"];
        assert_eq!(app["name"], "webshop");
        assert_eq!(app["description"], j!(null));
        assert_eq!(app["labels"], j!({"env": ["prod"]}));
        assert_eq!(app["webhooks"], j!([{"url": "https://b.example.com"}]));
        assert_eq!(app["eventAPIs"]["totalCount"], 2);
        assert_eq!(
            app["eventingConfiguration"]["defaultURL"],
            format!("{BASE_URL}/events/webshop/v1/events")
        );

        // The update is stored, and the old name is free again.
        let data = g.ok(APPLICATION, j!({"id": id})).await?;
        assert_eq!(data["application"]["name"], "webshop");
        assert_eq!(data["application"]["labels"], j!({"env": ["prod"]}));
        g.create_app(j!({"name": "shop"})).await?;
        let missing = j!({"id": "app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f", "in": {"name": "x"}});
        assert_eq!(g.error_code(update, missing).await?, "NOT_FOUND");
        r.stop().await
    }
}

e2e_test! {
    async fn labels_are_added_and_deleted_value_by_value() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let id = g.create_app(j!({"name": "shop", "labels": {"env": ["dev"]}})).await?;
        let add = "mutation($id: ID!, $key: String!, $values: [String!]!) {
            addApplicationLabel(applicationID: $id, key: $key, values: $values) { key values } }";
        let delete = "mutation($id: ID!, $key: String!, $values: [String!]!) {
            deleteApplicationLabel(applicationID: $id, key: $key, values: $values) { key values } }";

        let data = g.ok(add, j!({"id": id, "key": "env", "values": ["prod", "dev"]})).await?;
        assert_eq!(data["addApplicationLabel"], j!({"key": "env", "values": ["dev", "prod"]}));
        g.ok(add, j!({"id": id, "key": "team", "values": ["web"]})).await?;
        let data = g.ok(APPLICATION, j!({"id": id})).await?;
        assert_eq!(data["application"]["labels"], j!({"env": ["dev", "prod"], "team": ["web"]}));

        let data = g.ok(delete, j!({"id": id, "key": "env", "values": ["dev"]})).await?;
        assert_eq!(data["deleteApplicationLabel"], j!({"key": "env", "values": ["prod"]}));
        let data = g.ok(delete, j!({"id": id, "key": "team", "values": []})).await?;
        assert_eq!(data["deleteApplicationLabel"], j!(null));
        let data = g.ok(APPLICATION, j!({"id": id})).await?;
        assert_eq!(data["application"]["labels"], j!({"env": ["prod"]}));

        assert_eq!(
            g.error_code(delete, j!({"id": id, "key": "team", "values": []})).await?,
            "NOT_FOUND"
        );
        let missing = "app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f";
        assert_eq!(
            g.error_code(add, j!({"id": missing, "key": "env", "values": ["x"]})).await?,
            "NOT_FOUND"
        );
        r.stop().await
    }
}

e2e_test! {
    async fn deleting_an_application_deletes_its_apis_and_webhooks() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let kept = g
            .create_app(j!({"name": "erp", "eventAPIs": [api_input("orders", SHOP_SPEC)]}))
            .await?;
        let id = g
            .create_app(j!({
                "name": "shop",
                "labels": {"env": ["prod"]},
                "webhooks": [
                    {"type": "CONFIGURATION_CHANGED", "url": "https://a.example.com/hook"},
                    {"type": "CONFIGURATION_CHANGED", "url": "https://b.example.com/hook",
                     "auth": {"credential": {"basic": {"username": "u", "password": "p"}}}},
                ],
                "eventAPIs": [api_input("orders", SHOP_SPEC)],
            }))
            .await?;
        g.add_api(&id, api_input("invoices", SHOP_SPEC)).await?;
        let data = g
            .ok("query($id: ID!) { application(id: $id) { webhooks { id } eventAPIs { data { id } } } }",
                j!({"id": id}))
            .await?;
        let webhooks = strings(&data["application"]["webhooks"], "id");
        let apis = strings(&data["application"]["eventAPIs"]["data"], "id");
        assert_eq!((webhooks.len(), apis.len()), (2, 2), "{data}");

        let delete = "mutation($id: ID!) { deleteApplication(id: $id) { id name } }";
        let data = g.ok(delete, j!({"id": id})).await?;
        assert_eq!(data["deleteApplication"], j!({"id": id, "name": "shop"}));

        assert_eq!(g.error_code(APPLICATION, j!({"id": id})).await?, "NOT_FOUND");
        assert_eq!(g.error_code(delete, j!({"id": id})).await?, "NOT_FOUND");
        for api in &apis {
            let code = g
                .error_code("query($id: ID!) { eventAPI(id: $id) { id } }", j!({"id": api}))
                .await?;
            assert_eq!(code, "NOT_FOUND", "event API {api}");
            let code = g
                .error_code("mutation($id: ID!) { deleteEventAPI(id: $id) { id } }", j!({"id": api}))
                .await?;
            assert_eq!(code, "NOT_FOUND", "event API {api}");
        }
        for webhook in &webhooks {
            let code = g
                .error_code(
                    "mutation($id: ID!) { updateApplicationWebhook(webhookID: $id,
                        in: {type: CONFIGURATION_CHANGED, url: \"https://c.example.com\"}) { id } }",
                    j!({"id": webhook}),
                )
                .await?;
            assert_eq!(code, "NOT_FOUND", "webhook {webhook}");
            let code = g
                .error_code(
                    "mutation($id: ID!) { deleteApplicationWebhook(webhookID: $id) { id } }",
                    j!({"id": webhook}),
                )
                .await?;
            assert_eq!(code, "NOT_FOUND", "webhook {webhook}");
        }

        // The rest is untouched, and the name is free again.
        let data = g.ok("{ applications { totalCount data { id } } }", j!({})).await?;
        assert_eq!(data["applications"]["totalCount"], 1);
        assert_eq!(strings(&data["applications"]["data"], "id"), std::slice::from_ref(&kept));
        assert_eq!(g.api_count(&kept).await?, 1);
        let again = g.create_app(j!({"name": "shop"})).await?;
        assert_ne!(again, id);
        assert_eq!(g.api_count(&again).await?, 0);
        r.stop().await
    }
}
