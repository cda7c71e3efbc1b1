//! Every `401` of every component carries a `WWW-Authenticate` challenge (RFC 9110 §11.6.1),
//! in one table: the management API, the token endpoint, the gateway's publishing endpoints and
//! the dispatcher's subscriptions API and tick.

use crate::e2e_test;
use crate::gateway::Shop;

e2e_test! {
    async fn every_401_of_every_component_carries_a_challenge() -> anyhow::Result<()> {
        // Pub/Sub push enabled, so that its endpoint checks tokens instead of refusing (403).
        let shop = Shop::start_with(&[
            ("SPIN_VARIABLE_PUBSUB_PUSH_SERVICE_ACCOUNT", "push@shop.iam.gserviceaccount.com"),
            ("SPIN_VARIABLE_PUBSUB_PUSH_AUDIENCE", "https://events.example.com/push"),
        ])
        .await?;
        let app = &shop.r.app;
        let http = reqwest::Client::new();
        let form = "application/x-www-form-urlencoded";
        let event = r#"{"specversion":"1.0","id":"1","source":"/applications/shop","type":"order.created.v1"}"#;
        let cases: Vec<(&str, reqwest::RequestBuilder, &str)> = vec![
            ("graphql without a token", http.post(app.url("/graphql"))
                .json(&serde_json::json!({"query": "{ applications { totalCount } }"})), "Bearer"),
            ("graphql GET with a wrong token", http.get(app.url("/graphql"))
                .query(&[("query", "{ applications { totalCount } }")]).bearer_auth("wrong"), "Bearer"),
            ("token endpoint without client authentication", http.post(app.url("/oauth/token"))
                .header("content-type", form).body("grant_type=client_credentials"), "Basic"),
            ("token endpoint with a client id and no secret", http.post(app.url("/oauth/token"))
                .header("content-type", form).body("grant_type=client_credentials&client_id=cli_x"),
                "Basic"),
            ("token endpoint with a wrong secret in the body", http.post(app.url("/oauth/token"))
                .header("content-type", form)
                .body("grant_type=client_credentials&client_id=cli_x&client_secret=nope"), "Basic"),
            ("token endpoint with wrong Basic credentials", http.post(app.url("/oauth/token"))
                .header("content-type", form).basic_auth("cli_x", Some("nope"))
                .body("grant_type=client_credentials"), "Basic"),
            ("publish without a token", http.post(app.url("/events/publish"))
                .header("content-type", "application/cloudevents+json").body(event), "Bearer"),
            ("publish with a forged token", http.post(app.url("/events/publish"))
                .bearer_auth("a.b.c").header("content-type", "application/cloudevents+json")
                .body(event), "Bearer"),
            ("legacy publish without a token", http.post(app.url("/events/shop/v1/events"))
                .header("content-type", "application/json").body("{}"), "Bearer"),
            ("subscribed events without a token",
                http.get(app.url("/events/shop/v1/events/subscribed")), "Bearer"),
            ("Pub/Sub push without a token", http.post(app.url("/events/shop/pubsub"))
                .header("content-type", "application/json").body("{}"), "Bearer"),
            ("subscriptions without a token", http.get(app.url("/subscriptions")), "Bearer"),
            ("subscriptions with a wrong token",
                http.post(app.url("/subscriptions")).bearer_auth("wrong").body("{}"), "Bearer"),
            ("tick without a token", http.post(app.url("/dispatcher/tick")), "Bearer"),
        ];
        for (case, request, scheme) in cases {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.text().await?;
            assert_eq!(status, 401, "{case}: {body}");
            assert!(
                challenge.as_deref().is_some_and(|c| c.starts_with(scheme)),
                "{case}: WWW-Authenticate {challenge:?}, expected {scheme}"
            );
        }
        shop.stop().await
    }
}
