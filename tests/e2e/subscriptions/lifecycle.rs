//! Create, read, list, replace, pause, resume and delete, and the routes around them.

use reqwest::Method;
use serde_json::{Value, json as j};

use super::{Api, id_of, ids, subscription};
use crate::e2e_test;
use crate::registry::Registry;

e2e_test! {
    async fn create_shows_the_signing_secret_once() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let api = Api::new(&r.app);
        let answer = api.call(Method::POST, "", Some(&j!({
            "name": "orders to billing",
            "sink": {"url": "https://billing.example/hooks",
                     "auth": {"bearer": {"token": "sink-token"}}},
            "filter": {"application": "shop", "typePrefix": "order."},
            "delivery": {"retry": 3, "backoffDelay": "PT10S"},
        }))).await?;
        assert_eq!(answer.status, 201, "{answer:?}");
        let created = answer.body;
        let id = id_of(&created)?;
        assert!(id.starts_with("sub_"), "{id}");
        assert_eq!(answer.location, Some(format!("/subscriptions/{id}")));
        let secret = created["signing"]["secret"].as_str().unwrap_or_default().to_owned();
        assert!(secret.starts_with("whsec_"), "{created}");
        assert_eq!(created["signing"]["secretSet"], true);
        assert_eq!(created["status"], "active");
        assert_eq!(created["version"], 1);
        assert_eq!(created["sink"]["auth"], j!({"bearer": {"token": "********"}}));
        assert_eq!(created["delivery"]["retry"], 3);
        assert_eq!(created["delivery"]["backoffDelay"], "PT10S");
        assert_eq!(created["delivery"]["maxBackoff"], "PT1H");

        let got = api.call(Method::GET, &format!("/{id}"), None).await?;
        assert_eq!(got.status, 200, "{got:?}");
        assert_eq!(got.body["signing"], j!({"secretSet": true}));
        let text = got.body.to_string();
        assert!(!text.contains(&secret) && !text.contains("sink-token"), "{text}");
        let mut without_secret = created.clone();
        without_secret["signing"] = j!({"secretSet": true});
        assert_eq!(got.body, without_secret);

        // A secret given by the client is kept and never echoed.
        let mut given = subscription("given");
        given["signing"] = j!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"});
        let created = api.create(&given).await?;
        assert_eq!(created["signing"], j!({"secretSet": true}));
        r.stop().await
    }
}

e2e_test! {
    async fn lists_page_with_limit_and_cursor() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let api = Api::new(&r.app);
        let mut created = Vec::new();
        for i in 0..5 {
            created.push(api.create_named(&format!("s{i}")).await?);
        }
        let mut listed = Vec::new();
        let mut query = "?limit=2".to_owned();
        let mut pages = Vec::new();
        loop {
            let page = api.list(&query).await?;
            let fields: Vec<&String> = page.as_object().map(|o| o.keys().collect()).unwrap_or_default();
            assert_eq!(fields, ["data", "nextCursor"], "{page}");
            assert!(page["data"].as_array().is_some_and(|data| data.len() <= 2), "{page}");
            listed.extend(ids(&page));
            pages.push(page["data"].as_array().map_or(0, Vec::len));
            match &page["nextCursor"] {
                Value::Null => break,
                Value::String(cursor) => query = format!("?limit=2&cursor={cursor}"),
                other => anyhow::bail!("nextCursor {other}"),
            }
        }
        assert_eq!(pages, [2, 2, 1]);
        assert_eq!(listed, created, "every subscription once, oldest first");

        let all = api.list("").await?;
        assert_eq!(ids(&all), created);
        assert_eq!(all["nextCursor"], Value::Null);
        assert_eq!(all["data"][0]["name"], "s0");
        assert!(all["data"][0]["signing"].get("secret").is_none(), "{all}");
        assert_eq!(ids(&api.list("?limit=200").await?).len(), 5);
        r.stop().await
    }
}

e2e_test! {
    async fn replace_changes_everything_but_identity_status_and_secret() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let api = Api::new(&r.app);
        let created = api.create(&subscription("old")).await?;
        let id = id_of(&created)?;
        let replacement = j!({
            "name": "new",
            "sink": {"url": "http://hooks.example:8080/in", "headers": {"X-Team": "billing"}},
            "filter": {"types": ["order.created.v1", "order.paid.v1"]},
            "delivery": {"retry": 0, "backoffPolicy": "linear"},
        });
        let answer = api.call(Method::PUT, &format!("/{id}"), Some(&replacement)).await?;
        assert_eq!(answer.status, 200, "{answer:?}");
        let replaced = answer.body;
        assert_eq!(replaced["id"], created["id"]);
        assert_eq!(replaced["name"], "new");
        assert_eq!(replaced["sink"], j!({"url": "http://hooks.example:8080/in",
                                          "headers": {"X-Team": "********"}}));
        assert_eq!(replaced["filter"], j!({"types": ["order.created.v1", "order.paid.v1"]}));
        assert_eq!(replaced["delivery"]["backoffPolicy"], "linear");
        assert_eq!(replaced["createdAt"], created["createdAt"]);
        assert_eq!(replaced["version"], 2);
        assert_eq!(replaced["signing"], j!({"secretSet": true}));
        let got = api.call(Method::GET, &format!("/{id}"), None).await?;
        assert_eq!(got.body, replaced);

        // An invalid replacement changes nothing.
        let bad = j!({"name": "x", "sink": {"url": "ftp://x"}, "filter": {"application": "shop"}});
        let answer = api.call(Method::PUT, &format!("/{id}"), Some(&bad)).await?;
        assert_eq!((answer.status, answer.fields()), (422, vec!["sink.url"]), "{answer:?}");
        assert_eq!(api.call(Method::GET, &format!("/{id}"), None).await?.body, replaced);
        r.stop().await
    }
}

e2e_test! {
    async fn delete_answers_204_and_then_404() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let api = Api::new(&r.app);
        let keep = api.create_named("keep").await?;
        let gone = api.create_named("gone").await?;
        let answer = api.call(Method::DELETE, &format!("/{gone}"), None).await?;
        assert_eq!((answer.status, &answer.body), (204, &Value::Null), "{answer:?}");
        for method in [Method::GET, Method::DELETE] {
            let answer = api.call(method.clone(), &format!("/{gone}"), None).await?;
            assert_eq!((answer.status, answer.code()), (404, "NOT_FOUND"), "{method} {answer:?}");
        }
        assert_eq!(ids(&api.list("").await?), [keep]);
        r.stop().await
    }
}

e2e_test! {
    async fn pause_and_resume_answer_the_subscription() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let api = Api::new(&r.app);
        let id = api.create_named("s").await?;
        let paused = api
            .call(Method::POST, &format!("/{id}/pause"), Some(&j!({"reason": "maintenance"})))
            .await?;
        assert_eq!(paused.status, 200, "{paused:?}");
        assert_eq!(paused.body["id"], id.as_str());
        assert_eq!(paused.body["status"], "paused");
        assert_eq!(paused.body["pausedReason"], "maintenance");
        assert_eq!(paused.body["version"], 2);
        let got = api.call(Method::GET, &format!("/{id}"), None).await?;
        assert_eq!(got.body, paused.body);

        // Pausing again changes nothing; no body is needed.
        let again = api.call(Method::POST, &format!("/{id}/pause"), None).await?;
        assert_eq!((again.status, &again.body), (200, &paused.body));

        let resumed = api.call(Method::POST, &format!("/{id}/resume"), None).await?;
        assert_eq!(resumed.status, 200, "{resumed:?}");
        assert_eq!(resumed.body["status"], "active");
        assert!(resumed.body.get("pausedReason").is_none(), "{resumed:?}");
        assert_eq!(resumed.body["version"], 3);

        let listed = api.list("").await?;
        assert_eq!(listed["data"][0]["status"], "active");

        let long = j!({"reason": "x".repeat(501)});
        let answer = api.call(Method::POST, &format!("/{id}/pause"), Some(&long)).await?;
        assert_eq!((answer.status, answer.fields()), (422, vec!["reason"]), "{answer:?}");
        r.stop().await
    }
}

e2e_test! {
    async fn unknown_ids_are_404() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let api = Api::new(&r.app);
        let body = subscription("s");
        for id in ["sub_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f", "sub_123", "nope"] {
            for (method, path, body) in [
                (Method::GET, format!("/{id}"), None),
                (Method::PUT, format!("/{id}"), Some(&body)),
                (Method::DELETE, format!("/{id}"), None),
                (Method::POST, format!("/{id}/pause"), None),
                (Method::POST, format!("/{id}/resume"), None),
            ] {
                let answer = api.call(method.clone(), &path, body).await?;
                assert_eq!((answer.status, answer.code()), (404, "NOT_FOUND"), "{method} {path}");
                assert_eq!(
                    answer.body["error"]["message"],
                    format!("no subscription {id}"),
                    "{method} {path}"
                );
            }
        }
        r.stop().await
    }
}

e2e_test! {
    async fn other_methods_are_405_and_other_paths_404() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let api = Api::new(&r.app);
        for (method, path, allow) in [
            (Method::PATCH, "", "POST, GET"),
            (Method::DELETE, "", "POST, GET"),
            (Method::POST, "/sub_1", "GET, PUT, DELETE"),
            (Method::GET, "/sub_1/pause", "POST"),
            (Method::PUT, "/sub_1/resume", "POST"),
        ] {
            let response = api.request(method.clone(), path).send().await?;
            let allowed = response.headers().get("allow").and_then(|v| v.to_str().ok());
            assert_eq!(allowed, Some(allow), "{method} {path}");
            let answer = Api::send(api.request(method.clone(), path)).await?;
            assert_eq!((answer.status, answer.code()), (405, "METHOD_NOT_ALLOWED"), "{method} {path}");
        }
        for path in ["/", "/sub_1/", "/sub_1/archive", "/sub_1/pause/now"] {
            let answer = api.call(Method::GET, path, None).await?;
            assert_eq!((answer.status, answer.code()), (404, "NOT_FOUND"), "{path}");
        }
        // The tick takes POST only, with the admin token.
        let client = reqwest::Client::new();
        let tick = client.get(r.app.url("/dispatcher/tick")).send().await?;
        let tick = eventplane_tests::json(tick).await?;
        assert_eq!((tick.0, &tick.1["error"]["code"]), (405, &j!("METHOD_NOT_ALLOWED")));
        let tick = client.post(r.app.url("/dispatcher/tick")).send().await?;
        assert_eq!(tick.status(), 401);
        let tick = client
            .post(r.app.url("/dispatcher/tick?budgetMs=soon"))
            .bearer_auth(super::ADMIN_TOKEN)
            .send()
            .await?;
        let tick = eventplane_tests::json(tick).await?;
        assert_eq!((tick.0, &tick.1["error"]["code"]), (400, &j!("BAD_REQUEST")), "{tick:?}");
        r.stop().await
    }
}
