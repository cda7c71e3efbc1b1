//! Size limits: the request body `/graphql` reads, and `spec_max_bytes` for spec documents.

use eventplane_tests::json;
use serde_json::json as j;

use super::{Registry, SHOP_SPEC, api_input, only_code};
use crate::e2e_test;

const COUNT: &str = "{ applications { totalCount } }";

const ADD: &str = "mutation($app: ID!, $in: EventAPIDefinitionInput!) {
    addEventAPI(applicationID: $app, in: $in) { id events { name } } }";

/// The largest request body `/graphql` reads for a given `spec_max_bytes`: room for a spec
/// of that size even when JSON escaping nearly doubles it, plus 64 KiB for the rest.
fn body_limit(spec_max_bytes: usize) -> usize {
    spec_max_bytes * 2 + 64 * 1024
}

/// A request body of exactly `size` bytes running [`COUNT`].
fn body_of(size: usize) -> String {
    let base = j!({"query": COUNT, "variables": {"pad": ""}})
        .to_string()
        .len();
    j!({"query": COUNT, "variables": {"pad": "x".repeat(size - base)}}).to_string()
}

/// A valid spec of exactly `size` bytes, padded with comment lines full of quotes, which
/// JSON escaping nearly doubles.
fn spec_of(size: usize) -> String {
    let mut spec = String::from(SHOP_SPEC);
    let line = format!("#{}\n", "\"".repeat(62));
    while spec.len() + line.len() <= size {
        spec.push_str(&line);
    }
    let rest = size - spec.len();
    if rest > 0 {
        spec.push('#');
        spec.push_str(&"\"".repeat(rest - 1));
    }
    spec
}

async fn post_raw(r: &Registry, body: String) -> anyhow::Result<(u16, serde_json::Value)> {
    let response = r
        .gql()
        .request()
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await?;
    json(response).await
}

e2e_test! {
    async fn a_body_at_the_limit_is_read_and_one_byte_more_is_413() -> anyhow::Result<()> {
        let r = Registry::start_with(&[("SPIN_VARIABLE_SPEC_MAX_BYTES", "1024")]).await?;
        let limit = body_limit(1024);
        let (status, body) = post_raw(&r, body_of(limit)).await?;
        assert_eq!(status, 200, "a body of exactly {limit} bytes is read: {body}");
        assert_eq!(body["data"]["applications"]["totalCount"], 0);

        let (status, body) = post_raw(&r, body_of(limit + 1)).await?;
        assert_eq!(status, 413, "{body}");
        assert!(only_code(&body).is_some(), "{body}");
        r.stop().await
    }
}

e2e_test! {
    async fn the_default_limit_follows_the_default_spec_max_bytes() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let (status, body) = post_raw(&r, body_of(body_limit(1024 * 1024) + 1)).await?;
        assert_eq!(status, 413, "{body}");
        assert!(only_code(&body).is_some(), "{body}");
        r.stop().await
    }
}

e2e_test! {
    async fn a_spec_of_spec_max_bytes_is_accepted_and_one_byte_more_is_bad_user_input()
        -> anyhow::Result<()>
    {
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "shop"})).await?;
        let largest = spec_of(1024 * 1024);
        assert_eq!(largest.len(), 1024 * 1024);
        let escaped = serde_json::to_string(&largest)?.len();
        assert!(escaped > 1024 * 1024 + 64 * 1024, "the escaped spec is {escaped} bytes");

        let data = g.ok(ADD, j!({"app": app, "in": api_input("largest", &largest)})).await?;
        assert_eq!(data["addEventAPI"]["events"], j!([{"name": "order.created.v1"}]));

        // Read back, the escaped spec makes a response of about 2 MiB: more than the one chunk
        // a component writes before it hands its response over (eventplane_spin::send_response),
        // so the rest is streamed after the head; it arrives whole, with a matching length.
        let id = data["addEventAPI"]["id"].as_str().unwrap_or_default();
        let response = g
            .request()
            .json(&j!({"query": "query($id: ID!) { eventAPI(id: $id) { spec { data } } }",
                "variables": {"id": id}}))
            .send()
            .await?;
        let length = response.headers().get("content-length").cloned();
        let bytes = response.bytes().await?;
        assert!(bytes.len() > 2 * 1024 * 1024 - 64 * 1024, "{} bytes", bytes.len());
        assert_eq!(length.as_ref().and_then(|l| l.to_str().ok()), Some(bytes.len().to_string().as_str()));
        let body: serde_json::Value = serde_json::from_slice(&bytes)?;
        assert_eq!(body["data"]["eventAPI"]["spec"]["data"].as_str(), Some(largest.as_str()));

        let error = g
            .error(ADD, j!({"app": app, "in": api_input("too-big", &spec_of(1024 * 1024 + 1))}))
            .await?;
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
        assert!(
            error["message"].as_str().is_some_and(|m| m.contains("spec_max_bytes")),
            "the message names the limit: {error}"
        );
        assert_eq!(g.api_count(&app).await?, 1);
        r.stop().await
    }
}

e2e_test! {
    async fn spec_max_bytes_is_configurable() -> anyhow::Result<()> {
        let r = Registry::start_with(&[("SPIN_VARIABLE_SPEC_MAX_BYTES", "1024")]).await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "shop"})).await?;
        g.ok(ADD, j!({"app": app, "in": api_input("fits", &spec_of(1024))})).await?;
        let error = g
            .error(ADD, j!({"app": app, "in": api_input("big", &spec_of(1025))}))
            .await?;
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
        assert!(
            error["message"].as_str().is_some_and(|m| m.contains("1024")),
            "the message names the limit: {error}"
        );
        assert_eq!(g.api_count(&app).await?, 1);
        r.stop().await
    }
}
