//! GraphQL over HTTP: authentication, the Tenant header, content types, GET, and the GraphiQL
//! page.

use eventplane_tests::json;
use serde_json::json as j;

use super::{ADMIN_TOKEN, Registry, gql, only_code};
use crate::e2e_test;

const COUNT: &str = "{ applications { totalCount } }";

e2e_test! {
    async fn a_query_with_the_admin_token_answers_data_as_json() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let (status, body) = gql(&r.app, COUNT, j!({})).await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, j!({"data": {"applications": {"totalCount": 0}}}));

        let response = r.gql().request().json(&j!({"query": COUNT})).send().await?;
        assert_eq!(header(&response, "content-type"), "application/json");
        let response = r
            .gql()
            .request()
            .header("Accept", "application/graphql-response+json, application/json;q=0.9")
            .json(&j!({"query": COUNT}))
            .send()
            .await?;
        assert_eq!(header(&response, "content-type"), "application/graphql-response+json");
        let (status, body) = json(response).await?;
        assert_eq!((status, &body["data"]["applications"]["totalCount"]), (200, &j!(0)));
        r.stop().await
    }
}

e2e_test! {
    async fn missing_or_wrong_tokens_are_401_with_a_bearer_challenge() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let client = reqwest::Client::new();
        let body = j!({"query": COUNT});
        let requests = [
            ("no token", client.post(r.endpoint()).json(&body)),
            ("wrong token", client.post(r.endpoint()).bearer_auth("not-the-token").json(&body)),
            (
                "token prefix",
                client.post(r.endpoint()).bearer_auth(&ADMIN_TOKEN[..4]).json(&body),
            ),
            (
                "basic scheme",
                client.post(r.endpoint()).basic_auth(ADMIN_TOKEN, Some("")).json(&body),
            ),
            (
                "GET without token",
                client.get(r.endpoint()).query(&[("query", COUNT)]),
            ),
        ];
        for (case, request) in requests {
            let response = request.send().await?;
            let challenge = header(&response, "www-authenticate");
            let (status, body) = json(response).await?;
            assert_eq!(status, 401, "{case}: {body}");
            assert!(challenge.starts_with("Bearer"), "{case}: WWW-Authenticate {challenge:?}");
            assert_eq!(only_code(&body), Some("UNAUTHENTICATED"), "{case}: {body}");
        }
        r.stop().await
    }
}

e2e_test! {
    async fn an_invalid_tenant_header_is_400_bad_user_input() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let too_long = "a".repeat(64);
        for tenant in ["Acme", "-acme", "acme_eu", "acme.eu", "", too_long.as_str()] {
            let (status, body) = r.gql_as(tenant).post(COUNT, j!({})).await?;
            assert_eq!(status, 400, "Tenant {tenant:?}: {body}");
            assert_eq!(only_code(&body), Some("BAD_USER_INPUT"), "Tenant {tenant:?}: {body}");
        }
        let longest = "a".repeat(63);
        for tenant in ["acme", "0-acme-eu", longest.as_str()] {
            let (status, body) = r.gql_as(tenant).post(COUNT, j!({})).await?;
            assert_eq!(status, 200, "Tenant {tenant:?}: {body}");
        }
        r.stop().await
    }
}

e2e_test! {
    async fn a_body_that_is_not_json_or_not_declared_json_is_rejected() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let query = j!({"query": COUNT}).to_string();
        let cases = [
            ("text/plain", query.clone(), 415),
            ("application/x-www-form-urlencoded", format!("query={COUNT}"), 415),
            ("application/json", "{\"query\": ".to_owned(), 400),
            ("application/json", "query { applications { totalCount } }".to_owned(), 400),
        ];
        for (content_type, body, expected) in cases {
            let response = r
                .gql()
                .request()
                .header("Content-Type", content_type)
                .body(body.clone())
                .send()
                .await?;
            let (status, answer) = json(response).await?;
            assert_eq!(status, expected, "{content_type} {body:?}: {answer}");
            assert!(only_code(&answer).is_some(), "{content_type} {body:?}: {answer}");
        }
        // No Content-Type at all is not JSON either.
        let response = reqwest::Client::new()
            .post(r.endpoint())
            .bearer_auth(ADMIN_TOKEN)
            .body(query.clone())
            .send()
            .await?;
        let (status, answer) = json(response).await?;
        assert!(status == 415 || status == 400, "no Content-Type: {status} {answer}");
        assert!(only_code(&answer).is_some(), "{answer}");

        // Parameters of the media type are fine.
        let response = r
            .gql()
            .request()
            .header("Content-Type", "application/json; charset=utf-8")
            .body(query)
            .send()
            .await?;
        let (status, answer) = json(response).await?;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["data"]["applications"]["totalCount"], 0);
        r.stop().await
    }
}

e2e_test! {
    async fn get_runs_queries_but_not_mutations() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        r.gql().create_app(j!({"name": "shop"})).await?;
        let client = reqwest::Client::new();
        let response = client
            .get(r.endpoint())
            .bearer_auth(ADMIN_TOKEN)
            .query(&[
                ("query", "query($f: [LabelFilter!]) { applications(filter: $f) { data { name } } }"),
                ("variables", r#"{"f": []}"#),
            ])
            .send()
            .await?;
        let (status, body) = json(response).await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["applications"]["data"], j!([{"name": "shop"}]));

        let response = client
            .get(r.endpoint())
            .bearer_auth(ADMIN_TOKEN)
            .query(&[("query", "mutation { createApplication(in: {name: \"erp\"}) { id } }")])
            .send()
            .await?;
        assert_eq!(response.status(), 405);
        let allow = header(&response, "allow");
        assert!(allow.contains("POST"), "Allow: {allow:?}");
        let (_, body) = json(r.gql().request().json(&j!({"query": COUNT})).send().await?).await?;
        assert_eq!(body["data"]["applications"]["totalCount"], 1, "the GET created nothing");
        r.stop().await
    }
}

e2e_test! {
    async fn other_methods_are_405() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let client = reqwest::Client::new();
        for method in ["PUT", "DELETE", "PATCH"] {
            let response = client
                .request(method.parse()?, r.endpoint())
                .bearer_auth(ADMIN_TOKEN)
                .json(&j!({"query": COUNT}))
                .send()
                .await?;
            assert_eq!(response.status(), 405, "{method}");
        }
        r.stop().await
    }
}

e2e_test! {
    async fn a_browser_gets_the_graphiql_page_without_a_token() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let response = reqwest::Client::new()
            .get(r.endpoint())
            .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .await?;
        assert_eq!(response.status(), 200);
        assert!(header(&response, "content-type").starts_with("text/html"));
        let page = response.text().await?;
        assert!(page.to_lowercase().contains("graphiql"), "{page}");
        r.stop().await
    }
}

e2e_test! {
    async fn operation_name_selects_the_operation_and_introspection_is_on() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let document = "query Count { applications { totalCount } }
            query Types { __type(name: \"EventAPIDefinition\") { fields { name } } }";
        let response = r
            .gql()
            .request()
            .json(&j!({"query": document, "operationName": "Types"}))
            .send()
            .await?;
        let (status, body) = json(response).await?;
        assert_eq!(status, 200, "{body}");
        let fields = super::strings(&body["data"]["__type"]["fields"], "name");
        for field in ["id", "name", "group", "spec", "auth", "externalSubscriptions", "version", "events"] {
            assert!(fields.iter().any(|f| f == field), "{field} missing from {fields:?}");
        }
        let data = r.gql().ok("{ __schema { queryType { name } mutationType { name } } }", j!({})).await?;
        assert_eq!(data["__schema"], j!({"queryType": {"name": "Query"}, "mutationType": {"name": "Mutation"}}));
        r.stop().await
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
