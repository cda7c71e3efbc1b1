//! Application webhooks over HTTP: add, update, delete, and the CONFIGURATION_CHANGED calls a
//! real receiver gets, with the webhook's auth applied; failing receivers never fail a mutation.

use eventplane_tests::{Received, TestServer};
use serde_json::{Value, json as j};

use super::{Gql, Registry, SHOP_SPEC, api_input, string_at, strings};
use crate::e2e_test;

const BASE_URL: &str = "https://events.example.com";

const WEBHOOKS: &str = "query($id: ID!) { application(id: $id) { webhooks {
    id url lastDelivery { status timestamp message attempts done } } } }";

/// base64 of `eventplane:s3cret`.
const BASIC: &str = "Basic ZXZlbnRwbGFuZTpzM2NyZXQ=";

/// A webhook input calling `url` with basic auth and an additional header.
fn webhook(url: &str) -> Value {
    j!({"type": "CONFIGURATION_CHANGED", "url": url, "auth": {
        "credential": {"basic": {"username": "eventplane", "password": "s3cret"}},
        "additionalHeaders": {"X-Shop-Key": ["k1"]},
    }})
}

/// The body of a received call, as JSON.
fn body(received: &Received) -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(&received.body)?)
}

/// The application's only webhook.
async fn only_webhook(g: &Gql, app: &str) -> anyhow::Result<Value> {
    let data = g.ok(WEBHOOKS, j!({"id": app})).await?;
    match data["application"]["webhooks"]
        .as_array()
        .map(Vec::as_slice)
    {
        Some([webhook]) => Ok(webhook.clone()),
        _ => anyhow::bail!("expected one webhook: {data}"),
    }
}

e2e_test! {
    async fn a_receiver_gets_configuration_changed_with_the_events_url_and_basic_auth()
        -> anyhow::Result<()>
    {
        let receiver = TestServer::start(200, "ok").await?;
        let r = Registry::start_with(&[("SPIN_VARIABLE_EVENTS_BASE_URL", BASE_URL)]).await?;
        let g = r.gql();
        let app = g
            .create_app(j!({"name": "shop", "webhooks": [webhook(&receiver.url("/hooks/shop"))]}))
            .await?;
        assert!(receiver.received().is_empty(), "nothing changed yet: {:?}", receiver.received());

        let api = g.add_api(&app, api_input("orders", SHOP_SPEC)).await?;
        // Delivered before the mutation answered.
        let received = receiver.received();
        let [call] = received.as_slice() else {
            anyhow::bail!("expected one call, got {received:#?}");
        };
        assert_eq!(call.method, "POST");
        assert_eq!(call.path, "/hooks/shop");
        assert_eq!(call.headers.get("authorization").map(String::as_str), Some(BASIC));
        assert_eq!(call.headers.get("x-shop-key").map(String::as_str), Some("k1"));
        assert!(
            call.headers.get("content-type").is_some_and(|t| t.starts_with("application/json")),
            "{:?}",
            call.headers
        );
        let payload = body(call)?;
        assert_eq!(payload["type"], "CONFIGURATION_CHANGED");
        assert_eq!(
            payload["application"],
            j!({"id": app, "name": "shop",
                "eventingConfiguration": {"defaultURL": format!("{BASE_URL}/events/shop/v1/events")}})
        );
        assert_eq!(payload["changes"], j!([{"eventAPI": {"id": api, "action": "added"}}]));

        let delivered = only_webhook(&g, &app).await?;
        assert_eq!(delivered["lastDelivery"]["status"], "SUCCEEDED", "{delivered}");
        assert_eq!(delivered["lastDelivery"]["attempts"], 1, "{delivered}");
        assert_eq!(delivered["lastDelivery"]["done"], true, "{delivered}");
        assert!(delivered["lastDelivery"]["timestamp"].is_string(), "{delivered}");
        r.stop().await
    }
}

e2e_test! {
    async fn updates_deletes_and_renames_are_delivered_in_order() -> anyhow::Result<()> {
        let receiver = TestServer::start(204, "").await?;
        let r = Registry::start_with(&[("SPIN_VARIABLE_EVENTS_BASE_URL", BASE_URL)]).await?;
        let g = r.gql();
        let app = g
            .create_app(j!({"name": "shop", "webhooks": [webhook(&receiver.url("/hook"))]}))
            .await?;
        let api = g.add_api(&app, api_input("orders", SHOP_SPEC)).await?;
        g.ok(
            "mutation($id: ID!, $in: EventAPIDefinitionInput!) { updateEventAPI(id: $id, in: $in) { id } }",
            j!({"id": api, "in": api_input("orders", SHOP_SPEC)}),
        )
        .await?;
        g.ok("mutation($id: ID!) { deleteEventAPI(id: $id) { id } }", j!({"id": api})).await?;
        g.ok(
            "mutation($id: ID!) { updateApplication(id: $id, in: {name: \"webshop\"}) { id } }",
            j!({"id": app}),
        )
        .await?;

        let payloads = receiver
            .received()
            .iter()
            .map(body)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let changes: Vec<&Value> = payloads.iter().map(|p| &p["changes"]).collect();
        let moved = format!("{BASE_URL}/events/webshop/v1/events");
        assert_eq!(
            changes,
            [
                &j!([{"eventAPI": {"id": api, "action": "added"}}]),
                &j!([{"eventAPI": {"id": api, "action": "updated"}}]),
                &j!([{"eventAPI": {"id": api, "action": "deleted"}}]),
                &j!([{"eventingConfiguration": {"defaultURL": moved}}]),
            ]
        );
        assert_eq!(payloads[3]["application"]["name"], "webshop");
        assert_eq!(payloads[3]["application"]["eventingConfiguration"]["defaultURL"], moved);
        r.stop().await
    }
}

e2e_test! {
    async fn webhooks_are_added_updated_and_deleted() -> anyhow::Result<()> {
        let first = TestServer::start(200, "").await?;
        let second = TestServer::start(200, "").await?;
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "shop"})).await?;

        let data = g
            .ok(
                "mutation($app: ID!, $in: ApplicationWebhookInput!) {
                    addApplicationWebhook(applicationID: $app, in: $in) {
                        id applicationID type url lastDelivery { status } auth { credential {
                            ... on BasicCredentialData { username password } } } } }",
                j!({"app": app, "in": webhook(&first.url("/one"))}),
            )
            .await?;
        let added = &data["addApplicationWebhook"];
        let id = string_at(&data, "/addApplicationWebhook/id")?;
        assert!(id.starts_with("whk_"), "{id}");
        assert_eq!(added["applicationID"], app.as_str());
        assert_eq!(added["type"], "CONFIGURATION_CHANGED");
        assert_eq!(added["url"], first.url("/one"));
        assert_eq!(added["lastDelivery"], j!(null));
        assert_eq!(added["auth"]["credential"], j!({"username": "eventplane", "password": "********"}));
        g.add_api(&app, api_input("orders", SHOP_SPEC)).await?;
        assert_eq!(first.received().len(), 1);

        let data = g
            .ok(
                "mutation($id: ID!, $in: ApplicationWebhookInput!) {
                    updateApplicationWebhook(webhookID: $id, in: $in) { id url auth { additionalHeaders } } }",
                j!({"id": id, "in": {"type": "CONFIGURATION_CHANGED", "url": second.url("/two")}}),
            )
            .await?;
        assert_eq!(
            data["updateApplicationWebhook"],
            j!({"id": id, "url": second.url("/two"), "auth": null})
        );
        g.add_api(&app, api_input("invoices", SHOP_SPEC)).await?;
        assert_eq!(first.received().len(), 1, "the old URL is not called any more");
        let received = second.received();
        assert_eq!(received.len(), 1, "{received:#?}");
        assert_eq!(received[0].path, "/two");
        assert_eq!(received[0].headers.get("authorization"), None, "the auth was replaced");

        let delete = "mutation($id: ID!) { deleteApplicationWebhook(webhookID: $id) { id url } }";
        let data = g.ok(delete, j!({"id": id})).await?;
        assert_eq!(data["deleteApplicationWebhook"], j!({"id": id, "url": second.url("/two")}));
        assert_eq!(g.error_code(delete, j!({"id": id})).await?, "NOT_FOUND");
        let data = g.ok(WEBHOOKS, j!({"id": app})).await?;
        assert_eq!(data["application"]["webhooks"], j!([]));
        g.add_api(&app, api_input("stock", SHOP_SPEC)).await?;
        assert_eq!(second.received().len(), 1, "a deleted webhook is not called");

        let missing = "whk_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f";
        let code = g
            .error_code(
                "mutation($id: ID!, $in: ApplicationWebhookInput!) {
                    updateApplicationWebhook(webhookID: $id, in: $in) { id } }",
                j!({"id": missing, "in": {"type": "CONFIGURATION_CHANGED", "url": "https://x.example.com"}}),
            )
            .await?;
        assert_eq!(code, "NOT_FOUND");
        r.stop().await
    }
}

e2e_test! {
    async fn a_failing_receiver_shows_on_the_webhook_and_never_fails_the_mutation()
        -> anyhow::Result<()>
    {
        let failing = TestServer::start(500, "boom").await?;
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g
            .create_app(j!({"name": "shop", "webhooks": [webhook(&failing.url("/hook"))]}))
            .await?;
        let api = g.add_api(&app, api_input("orders", SHOP_SPEC)).await?;
        assert!(api.starts_with("api_"));
        assert_eq!(g.api_count(&app).await?, 1, "the mutation took effect");

        let calls = failing.received().len();
        assert!((1..=3).contains(&calls), "1 to 3 attempts, got {calls}");
        let webhook = only_webhook(&g, &app).await?;
        let last = &webhook["lastDelivery"];
        assert_eq!(last["status"], "FAILED", "{webhook}");
        assert!(last["message"].as_str().is_some_and(|m| m.contains("500")), "{webhook}");
        assert!(last["attempts"].as_i64().is_some_and(|n| (1..=3).contains(&n)), "{webhook}");

        // Later mutations keep working and keep trying, never past 3 attempts per notification.
        for name in ["invoices", "stock", "returns"] {
            g.add_api(&app, api_input(name, SHOP_SPEC)).await?;
        }
        assert_eq!(g.api_count(&app).await?, 4);
        let calls = failing.received().len();
        assert!((4..=12).contains(&calls), "4 notifications, at most 3 attempts each: {calls}");
        let webhook = only_webhook(&g, &app).await?;
        assert_eq!(webhook["lastDelivery"]["status"], "FAILED", "{webhook}");
        r.stop().await
    }
}

e2e_test! {
    async fn an_unreachable_receiver_never_fails_the_mutation() -> anyhow::Result<()> {
        // A port nobody listens on any more.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            listener.local_addr()?.port()
        };
        let r = Registry::start().await?;
        let g = r.gql();
        let url = format!("http://127.0.0.1:{port}/hook");
        let app = g
            .create_app(j!({"name": "shop", "webhooks": [webhook(&url)],
                            "eventAPIs": [api_input("orders", SHOP_SPEC)]}))
            .await?;
        g.add_api(&app, api_input("invoices", SHOP_SPEC)).await?;
        let data = g
            .ok("query($id: ID!) { application(id: $id) { eventAPIs { data { name } } } }",
                j!({"id": app}))
            .await?;
        let mut names = strings(&data["application"]["eventAPIs"]["data"], "name");
        names.sort_unstable();
        assert_eq!(names, ["invoices", "orders"]);
        let webhook = only_webhook(&g, &app).await?;
        assert_eq!(webhook["lastDelivery"]["status"], "FAILED", "{webhook}");
        assert!(webhook["lastDelivery"]["message"].is_string(), "{webhook}");
        r.stop().await
    }
}

e2e_test! {
    async fn webhook_urls_outside_the_allowed_hosts_are_not_called() -> anyhow::Result<()> {
        let receiver = TestServer::start(200, "").await?;
        let state = tempfile::tempdir()?;
        // The default allows only https.
        let app = eventplane_tests::TestApp::builder(&eventplane_tests::workspace_root().join("spin.toml"))
            .state_dir(state.path())
            .env("SPIN_VARIABLE_ADMIN_TOKEN", super::ADMIN_TOKEN)
            .start()
            .await?;
        let g = Gql::new(&app);
        let id = g
            .create_app(j!({"name": "shop", "webhooks": [webhook(&receiver.url("/hook"))]}))
            .await?;
        g.add_api(&id, api_input("orders", SHOP_SPEC)).await?;
        assert!(receiver.received().is_empty(), "{:?}", receiver.received());
        let webhook = only_webhook(&g, &id).await?;
        assert_eq!(webhook["lastDelivery"]["status"], "FAILED", "{webhook}");
        app.stop().await
    }
}
