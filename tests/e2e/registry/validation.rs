//! Input validation over HTTP: names, uniqueness, URLs, page sizes, ids and malformed GraphQL.

use serde_json::json as j;

use super::{Registry, SHOP_SPEC, api_input};
use crate::e2e_test;

const CREATE: &str = "mutation($in: ApplicationInput!) { createApplication(in: $in) { id } }";

e2e_test! {
    async fn application_names_must_be_dns_labels() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let too_long = "a".repeat(64);
        for name in ["", "Shop", "-shop", "shop-", "shop_1", "shop.eu", "shöp", too_long.as_str()] {
            let error = g.error(CREATE, j!({"in": {"name": name}})).await?;
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{name:?}: {error}");
            assert_eq!(error["extensions"]["details"][0]["field"], "in.name", "{name:?}: {error}");
        }
        let data = g.ok("{ applications { totalCount } }", j!({})).await?;
        assert_eq!(data["applications"]["totalCount"], 0);
        g.create_app(j!({"name": "a".repeat(63)})).await?;
        g.create_app(j!({"name": "0-shop-9"})).await?;
        r.stop().await
    }
}

e2e_test! {
    async fn a_taken_name_is_not_unique() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let shop = g.create_app(j!({"name": "shop"})).await?;
        g.create_app(j!({"name": "erp"})).await?;
        let error = g.error(CREATE, j!({"in": {"name": "shop"}})).await?;
        assert_eq!(error["extensions"]["code"], "NOT_UNIQUE", "{error}");
        assert!(error["message"].as_str().is_some_and(|m| m.contains("shop")), "{error}");
        let rename = "mutation($id: ID!) { updateApplication(id: $id, in: {name: \"erp\"}) { id } }";
        assert_eq!(g.error_code(rename, j!({"id": shop})).await?, "NOT_UNIQUE");
        let data = g.ok("{ applications { totalCount } }", j!({})).await?;
        assert_eq!(data["applications"]["totalCount"], 2);
        r.stop().await
    }
}

e2e_test! {
    async fn urls_must_be_http_or_https() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        for url in ["ftp://shop.example.com/hook", "file:///etc/passwd", "not a url", "javascript:alert(1)"] {
            let input = j!({"name": "shop", "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": url}]});
            let error = g.error(CREATE, j!({"in": input})).await?;
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{url}: {error}");
            assert_eq!(error["extensions"]["details"][0]["field"], "in.webhooks[0].url", "{error}");
        }
        let app = g.create_app(j!({"name": "shop"})).await?;
        let error = g
            .error(
                "mutation($app: ID!) { addApplicationWebhook(applicationID: $app,
                    in: {type: CONFIGURATION_CHANGED, url: \"gopher://shop.example.com\"}) { id } }",
                j!({"app": app}),
            )
            .await?;
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
        let data = g
            .ok("query($id: ID!) { application(id: $id) { webhooks { id } } }", j!({"id": app}))
            .await?;
        assert_eq!(data["application"]["webhooks"], j!([]));

        let mut external = api_input("e", SHOP_SPEC);
        external["externalSubscriptions"] = j!([{"url": "gopher://bus", "topic": "t"}]);
        let error = g
            .error(
                "mutation($app: ID!, $in: EventAPIDefinitionInput!) {
                    addEventAPI(applicationID: $app, in: $in) { id } }",
                j!({"app": app, "in": external}),
            )
            .await?;
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
        assert_eq!(g.api_count(&app).await?, 0);
        r.stop().await
    }
}

e2e_test! {
    async fn first_is_at_most_200_and_cursors_must_be_ours() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "shop"})).await?;
        let applications = "query($first: Int, $after: PageCursor) {
            applications(first: $first, after: $after) { totalCount data { id } } }";
        for first in [201, 1000, -1] {
            let error = g.error(applications, j!({"first": first})).await?;
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "first {first}: {error}");
        }
        let data = g.ok(applications, j!({"first": 200})).await?;
        assert_eq!(data["applications"]["totalCount"], 1);
        let error = g.error(applications, j!({"after": "not a cursor!"})).await?;
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");

        let apis = "query($id: ID!, $first: Int) { application(id: $id) {
            eventAPIs(first: $first) { totalCount } } }";
        let error = g.error(apis, j!({"id": app, "first": 201})).await?;
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
        r.stop().await
    }
}

e2e_test! {
    async fn malformed_ids_and_malformed_graphql_are_bad_user_input() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        for (query, id) in [
            ("query($id: ID!) { application(id: $id) { id } }", "shop"),
            ("query($id: ID!) { eventAPI(id: $id) { id } }", "app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f"),
            ("mutation($id: ID!) { deleteApplicationWebhook(webhookID: $id) { id } }", "whk_x"),
        ] {
            assert_eq!(g.error_code(query, j!({"id": id})).await?, "BAD_USER_INPUT", "{query}");
        }
        for (query, variables) in [
            ("{ applications { nope } }", j!({})),
            ("{ applications ", j!({})),
            (CREATE, j!({"in": {"name": "a", "labels": {"env": [1]}}})),
            (CREATE, j!({"in": {"name": "a", "webhooks": [{"type": "OTHER", "url": "https://x"}]}})),
            ("mutation { deleteEventAPI { id } }", j!({})),
        ] {
            let (status, body) = g.post(query, variables).await?;
            assert!(status == 200 || status == 400, "{query}: {status} {body}");
            let errors = body["errors"].as_array().cloned().unwrap_or_default();
            assert!(!errors.is_empty(), "{query}: {body}");
            for error in errors {
                assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{query}: {error}");
            }
        }
        let data = g.ok("{ applications { totalCount } }", j!({})).await?;
        assert_eq!(data["applications"]["totalCount"], 0);
        r.stop().await
    }
}

e2e_test! {
    async fn an_auth_of_only_a_csrf_request_is_accepted_everywhere_and_an_empty_one_nowhere()
        -> anyhow::Result<()>
    {
        let r = Registry::start().await?;
        let g = r.gql();
        // Compass's AuthInput: every member optional; a CSRF token fetch alone is a whole auth,
        // and its token endpoint's credential is optional too.
        let csrf_only = j!({"requestAuth": {"csrf": {
            "tokenEndpointURL": "https://erp.example.com/csrf",
            "credential": {"basic": {"username": "csrf", "password": "c-pass"}}}}});
        let csrf_without_credential = j!({"requestAuth": {"csrf": {
            "tokenEndpointURL": "https://erp.example.com/csrf",
            "additionalHeaders": {"X-Client": ["eventplane"]}}}});
        let with = |name: &str, auth: &serde_json::Value| {
            let mut api = api_input("orders", SHOP_SPEC);
            api["auth"] = auth.clone();
            api["spec"]["fetchRequest"] =
                j!({"url": "https://erp.example.com/specs/orders.yaml", "auth": auth});
            api["externalSubscriptions"] = j!([{
                "url": "https://bus.example.com/v1/projects/p/subscriptions/s",
                "topic": "projects/p/topics/t", "auth": auth}]);
            j!({"name": name, "eventAPIs": [api], "webhooks": [{
                "type": "CONFIGURATION_CHANGED", "url": "https://erp.example.com/hook", "auth": auth}]})
        };
        let created = g.ok(CREATE_WITH_AUTH, j!({"in": with("erp", &csrf_only)})).await?;
        let api = &created["createApplication"]["eventAPIs"]["data"][0];
        assert_eq!(
            api["auth"]["requestAuth"]["csrf"]["credential"],
            j!({"username": "csrf", "password": "********"})
        );
        assert_eq!(api["auth"]["credential"], serde_json::Value::Null);
        let created = g
            .ok(CREATE_WITH_AUTH, j!({"in": with("erp-2", &csrf_without_credential)}))
            .await?;
        let webhook = &created["createApplication"]["webhooks"][0];
        assert_eq!(webhook["auth"]["requestAuth"]["csrf"]["credential"], serde_json::Value::Null);

        // Still refused: an auth with no member at all, and a requestAuth without csrf.
        for (auth, field) in [
            (j!({}), "in.webhooks[0].auth"),
            (j!({"additionalHeaders": {}}), "in.webhooks[0].auth"),
            (j!({"requestAuth": {}}), "in.webhooks[0].auth.requestAuth.csrf"),
        ] {
            let input = j!({"name": "erp-3", "webhooks": [{
                "type": "CONFIGURATION_CHANGED", "url": "https://erp.example.com/hook", "auth": auth}]});
            let error = g.error(CREATE_WITH_AUTH, j!({"in": input})).await?;
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{auth}: {error}");
            assert_eq!(error["extensions"]["details"][0]["field"], field, "{auth}: {error}");
        }
        let data = g.ok("{ applications { totalCount } }", j!({})).await?;
        assert_eq!(data["applications"]["totalCount"], 2, "nothing of the refused ones is kept");
        r.stop().await
    }
}

const CREATE_WITH_AUTH: &str = "mutation($in: ApplicationInput!) { createApplication(in: $in) {
    id
    webhooks { auth { credential { ... on BasicCredentialData { username password } }
        requestAuth { csrf { credential { ... on BasicCredentialData { username password } } } } } }
    eventAPIs { data { auth { credential { ... on BasicCredentialData { username password } }
        requestAuth { csrf { tokenEndpointURL
            credential { ... on BasicCredentialData { username password } } } } } } } } }";
