use std::sync::Arc;

use anyhow::Result;
use eventplane_core::MemoryStore;
use serde_json::json;

use crate::support::{BrokenStore, Harness, SHOP_SPEC, api_input};

const CREATE: &str = "mutation($in: ApplicationInput!) { createApplication(in: $in) { id } }";

#[test]
fn application_names_must_be_dns_labels() -> Result<()> {
    let h = Harness::new();
    for name in [
        "",
        "Shop",
        "-shop",
        "shop-",
        "shop_1",
        "shop.eu",
        &"a".repeat(64),
    ] {
        let err = h.error(CREATE, json!({"in": {"name": name}}))?;
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{name}: {err}");
        assert_eq!(
            err["extensions"]["details"][0]["field"], "in.name",
            "{name}"
        );
    }
    assert!(h.keys().is_empty());
    h.create_app(json!({"name": "a".repeat(63)}))?;
    h.create_app(json!({"name": "0-shop-9"}))?;
    Ok(())
}

#[test]
fn urls_must_be_http_or_https_wherever_they_appear() -> Result<()> {
    let h = Harness::new();
    let oauth = |url: &str| json!({"credential": {"oauth": {"clientId": "c", "clientSecret": "s", "url": url}}});
    let mut fetch_only = json!({"name": "f", "spec": {"eventSpecType": "ASYNC_API",
        "fetchRequest": {"url": "file:///etc/passwd"}}});
    let mut external = api_input("e", SHOP_SPEC);
    external["externalSubscriptions"] = json!([{"url": "gopher://bus", "topic": "t"}]);
    let mut api_auth = api_input("a", SHOP_SPEC);
    api_auth["auth"] = oauth("ftp://token.example.com");
    let cases = [
        (
            json!({"name": "a", "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": "ftp://x"}]}),
            "in.webhooks[0].url",
        ),
        (
            json!({"name": "a", "webhooks": [{"type": "CONFIGURATION_CHANGED", "url": "https://x",
                "auth": oauth("not a url")}]}),
            "in.webhooks[0].auth.credential.oauth.url",
        ),
        (
            json!({"name": "a", "eventAPIs": [fetch_only.take()]}),
            "in.eventAPIs[0].spec.fetchRequest.url",
        ),
        (
            json!({"name": "a", "eventAPIs": [external]}),
            "in.eventAPIs[0].externalSubscriptions[0].url",
        ),
        (
            json!({"name": "a", "eventAPIs": [api_auth]}),
            "in.eventAPIs[0].auth.credential.oauth.url",
        ),
    ];
    for (input, field) in cases {
        let err = h.error(CREATE, json!({"in": input}))?;
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err}");
        assert_eq!(err["extensions"]["details"][0]["field"], field, "{err}");
    }
    assert!(h.keys().is_empty());
    Ok(())
}

#[test]
fn a_credential_is_exactly_one_of_basic_and_oauth() -> Result<()> {
    let h = Harness::new();
    for credential in [
        json!({}),
        json!({"basic": {"username": "u", "password": "p"},
               "oauth": {"clientId": "c", "clientSecret": "s", "url": "https://t"}}),
    ] {
        let input = json!({"name": "a", "webhooks": [{"type": "CONFIGURATION_CHANGED",
            "url": "https://x", "auth": {"credential": credential}}]});
        let err = h.error(CREATE, json!({"in": input}))?;
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err}");
        assert_eq!(
            err["extensions"]["details"][0]["field"],
            "in.webhooks[0].auth.credential"
        );
    }
    Ok(())
}

#[test]
fn malformed_ids_are_bad_user_input() -> Result<()> {
    let h = Harness::new();
    for (query, id) in [
        ("query($id: ID!) { application(id: $id) { id } }", "shop"),
        (
            "query($id: ID!) { eventAPI(id: $id) { id } }",
            "app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f",
        ),
        (
            "mutation($id: ID!) { deleteApplicationWebhook(webhookID: $id) { id } }",
            "whk_x",
        ),
    ] {
        assert_eq!(
            h.error_code(query, json!({"id": id}))?,
            "BAD_USER_INPUT",
            "{query}"
        );
    }
    Ok(())
}

#[test]
fn errors_raised_by_graphql_itself_are_bad_user_input() -> Result<()> {
    let h = Harness::new();
    for (query, variables) in [
        ("{ applications { nope } }", json!({})),
        ("{ applications ", json!({})),
        (CREATE, json!({"in": {"name": "a", "labels": {"env": [1]}}})),
        (
            CREATE,
            json!({"in": {"name": "a", "webhooks": [{"type": "OTHER", "url": "https://x"}]}}),
        ),
        ("mutation { deleteEventAPI { id } }", json!({})),
    ] {
        let response = h.run(query, variables);
        let errors = response["errors"].as_array().cloned().unwrap_or_default();
        assert!(!errors.is_empty(), "{query}: {response}");
        for error in errors {
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
        }
    }
    Ok(())
}

#[test]
fn store_failures_say_the_service_is_unavailable_and_do_not_leak() -> Result<()> {
    let h = Harness::over(Arc::new(MemoryStore::new()), Arc::new(BrokenStore));
    for (query, variables) in [
        (CREATE, json!({"in": {"name": "shop"}})),
        ("{ applications { totalCount } }", json!({})),
        (
            "query($id: ID!) { application(id: $id) { id } }",
            json!({"id": "app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f"}),
        ),
    ] {
        let err = h.error(query, variables)?;
        assert_eq!(err["extensions"]["code"], "SERVICE_UNAVAILABLE", "{err}");
        let text = err.to_string();
        assert!(
            !text.contains("sqlite") && !text.contains("/var/lib"),
            "{text}"
        );
        assert!(!text.contains("t/acme"), "{text}");
    }
    Ok(())
}

#[test]
fn descriptions_and_names_are_bounded() -> Result<()> {
    let h = Harness::new();
    let err = h.error(
        CREATE,
        json!({"in": {"name": "a", "description": "x".repeat(2001)}}),
    )?;
    assert_eq!(err["extensions"]["details"][0]["field"], "in.description");
    let mut api = api_input("", SHOP_SPEC);
    api["name"] = json!("  ");
    let err = h.error(CREATE, json!({"in": {"name": "a", "eventAPIs": [api]}}))?;
    assert_eq!(
        err["extensions"]["details"][0]["field"],
        "in.eventAPIs[0].name"
    );
    Ok(())
}

#[test]
fn external_subscriptions_must_be_pubsub_subscriptions_with_known_attributes() -> Result<()> {
    let h = Harness::new();
    let external = |sub: serde_json::Value| {
        let mut api = api_input("e", SHOP_SPEC);
        api["externalSubscriptions"] = json!([sub]);
        json!({"name": "a", "eventAPIs": [api]})
    };
    let url = "https://pubsub.googleapis.com/v1/projects/shop/subscriptions/orders";
    let topic = "projects/shop/topics/orders";
    let err = h.error(
        CREATE,
        json!({"in": external(json!({"url": "https://bus.example.com/queue/x", "topic": "orders",
            "attributes": {"maxMessages": "5000", "colour": "blue"}}))}),
    )?;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err}");
    let fields: Vec<&str> = err["extensions"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["field"].as_str())
        .collect();
    let at = "in.eventAPIs[0].externalSubscriptions[0]";
    assert_eq!(
        fields,
        [
            format!("{at}.url"),
            format!("{at}.topic"),
            format!("{at}.attributes.colour"),
            format!("{at}.attributes.maxMessages"),
        ],
        "{err}"
    );
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("/v1/projects/<project>/subscriptions/<subscription>")),
        "the message names what is supported: {err}"
    );
    // an auth with nothing in it is refused; headers alone (a static token) are enough
    let err = h.error(
        CREATE,
        json!({"in": external(json!({"url": url, "topic": topic, "auth": {}}))}),
    )?;
    assert_eq!(
        err["extensions"]["details"][0]["field"],
        format!("{at}.auth"),
        "{err}"
    );
    assert!(h.keys().is_empty(), "nothing is stored for a refused input");
    h.create_app(external(json!({"url": url, "topic": topic,
        "attributes": {"mode": "push", "maxMessages": "1000", "ackDeadlineSeconds": "600"},
        "auth": {"additionalHeaders": {"authorization": ["Bearer static"]}}})))?;
    Ok(())
}
