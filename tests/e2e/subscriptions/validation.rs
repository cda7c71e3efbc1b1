//! Bad input: field paths in a 422, malformed JSON, content types, body size, paging.

use reqwest::Method;
use serde_json::json as j;

use super::{Api, ids, subscription};
use crate::e2e_test;
use crate::registry::Registry;

e2e_test! {
    async fn invalid_subscriptions_are_422_with_field_paths() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let api = Api::new(&r.app);
        let with = |pointer: &str, value: serde_json::Value| {
            let mut body = subscription("s");
            if let Some(target) = body.pointer_mut(pointer) {
                *target = value;
            }
            body
        };
        let mut no_filter = subscription("s");
        no_filter.as_object_mut().map(|body| body.remove("filter"));
        let mut bad_duration = subscription("s");
        bad_duration["delivery"] = j!({"backoffDelay": "5 seconds"});
        for (body, field, message) in [
            (with("/sink/url", j!("ftp://files.example/hooks")), "sink.url", "http or https"),
            (with("/filter", j!({})), "filter", "at least one of"),
            (no_filter, "filter", "is required"),
            (bad_duration, "delivery.backoffDelay", "ISO 8601"),
            (with("/filter", j!({"types": ["a", 7]})), "filter.types[1]", "must be a string"),
            (with("/name", j!("")), "name", "blank"),
        ] {
            let answer = api.call(Method::POST, "", Some(&body)).await?;
            assert_eq!((answer.status, answer.code()), (422, "UNPROCESSABLE_ENTITY"), "{body}");
            assert_eq!(answer.fields(), [field], "{answer:?}");
            let detail = answer.body["error"]["details"][0]["message"].as_str().unwrap_or_default();
            assert!(detail.contains(message), "{field}: {detail}");
        }

        // Every problem at once.
        let answer = api
            .call(Method::POST, "", Some(&j!({
                "sink": {"url": "ftp://x"},
                "filter": {},
                "delivery": {"timeout": "PT3M", "retry": 101},
                "colour": "blue",
            })))
            .await?;
        assert_eq!(answer.status, 422, "{answer:?}");
        assert_eq!(
            answer.fields(),
            ["colour", "name", "sink.url", "filter", "delivery.retry", "delivery.timeout"]
        );
        assert!(ids(&api.list("").await?).is_empty(), "nothing is stored");
        r.stop().await
    }
}

e2e_test! {
    async fn malformed_json_and_non_objects_are_400() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let api = Api::new(&r.app);
        for body in ["{\"name\": ", "", "[]", "\"subscription\"", "{} extra"] {
            let request = api
                .request(Method::POST, "")
                .header("content-type", "application/json")
                .body(body);
            let answer = Api::send(request).await?;
            assert_eq!((answer.status, answer.code()), (400, "BAD_REQUEST"), "{body:?}");
            assert_eq!(answer.fields(), ["body"], "{body:?}");
        }
        r.stop().await
    }
}

e2e_test! {
    async fn other_content_types_are_415() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let api = Api::new(&r.app);
        let body = subscription("s").to_string();
        for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
            let mut request = api.request(Method::POST, "").body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let answer = Api::send(request).await?;
            assert_eq!((answer.status, answer.code()), (415, "UNSUPPORTED_MEDIA_TYPE"), "{content_type:?}");
        }
        let ok = api
            .request(Method::POST, "")
            .header("content-type", "application/json; charset=utf-8")
            .body(body);
        assert_eq!(Api::send(ok).await?.status, 201);
        r.stop().await
    }
}

e2e_test! {
    async fn bodies_over_64_kib_are_413() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let api = Api::new(&r.app);
        let limit = 64 * 1024;
        // A valid body of exactly the limit is read (its padding is a long name, which is then
        // refused as too long: 422, not 413)...
        let padded = |size: usize| {
            let base = subscription("").to_string().len();
            subscription(&"x".repeat(size - base)).to_string()
        };
        let at_limit = api
            .request(Method::POST, "")
            .header("content-type", "application/json")
            .body(padded(limit));
        let answer = Api::send(at_limit).await?;
        assert_eq!((answer.status, answer.fields()), (422, vec!["name"]), "{answer:?}");
        // ...and one byte more is not.
        let over = api
            .request(Method::POST, "")
            .header("content-type", "application/json")
            .body(padded(limit + 1));
        let answer = Api::send(over).await?;
        assert_eq!((answer.status, answer.code()), (413, "PAYLOAD_TOO_LARGE"), "{answer:?}");
        assert!(ids(&api.list("").await?).is_empty());
        r.stop().await
    }
}

e2e_test! {
    async fn bad_paging_is_400() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let api = Api::new(&r.app);
        api.create_named("s").await?;
        for (query, field) in [
            ("?limit=0", "limit"),
            ("?limit=201", "limit"),
            ("?limit=ten", "limit"),
            ("?cursor=not-a-cursor", "cursor"),
        ] {
            let answer = api.call(Method::GET, query, None).await?;
            assert_eq!((answer.status, answer.code()), (400, "BAD_REQUEST"), "{query}");
            assert_eq!(answer.fields(), [field], "{query}");
        }
        r.stop().await
    }
}
