//! The admin token and the tenant, as the registry checks them.

use reqwest::Method;
use serde_json::Value;

use super::{Api, ids, subscription};
use crate::e2e_test;
use crate::registry::Registry;

e2e_test! {
    async fn every_route_needs_the_admin_token() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let api = Api::new(&r.app);
        let id = api.create_named("s").await?;
        let body = subscription("s");
        for token in [None, Some("wrong-token"), Some("")] {
            let client = api.with_token(token);
            for (method, path, body) in [
                (Method::POST, String::new(), Some(&body)),
                (Method::GET, String::new(), None),
                (Method::GET, format!("/{id}"), None),
                (Method::PUT, format!("/{id}"), Some(&body)),
                (Method::DELETE, format!("/{id}"), None),
                (Method::POST, format!("/{id}/pause"), None),
                (Method::POST, format!("/{id}/resume"), None),
            ] {
                let answer = client.call(method.clone(), &path, body).await?;
                assert_eq!((answer.status, answer.code()), (401, "UNAUTHORIZED"), "{token:?} {method} {path}");
                assert_eq!(answer.www_authenticate.as_deref(), Some("Bearer"));
            }
        }
        // Nothing was changed.
        let got = api.call(Method::GET, &format!("/{id}"), None).await?;
        assert_eq!((got.status, got.body["version"].as_u64()), (200, Some(1)));
        r.stop().await
    }
}

e2e_test! {
    async fn tenants_do_not_see_each_others_subscriptions() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let acme = Api::new(&r.app).as_tenant("acme");
        let globex = Api::new(&r.app).as_tenant("globex");
        let default = Api::new(&r.app);
        let id = acme.create_named("acme's").await?;
        let other = globex.create_named("globex's").await?;

        assert_eq!(ids(&acme.list("").await?), [id.as_str()]);
        assert_eq!(ids(&globex.list("").await?), [other]);
        assert!(ids(&default.list("").await?).is_empty());
        for (method, path) in [
            (Method::GET, format!("/{id}")),
            (Method::DELETE, format!("/{id}")),
            (Method::POST, format!("/{id}/pause")),
        ] {
            let answer = globex.call(method.clone(), &path, None).await?;
            assert_eq!((answer.status, answer.code()), (404, "NOT_FOUND"), "{method} {path}");
        }
        let answer = globex.call(Method::PUT, &format!("/{id}"), Some(&subscription("x"))).await?;
        assert_eq!(answer.status, 404);
        let got = acme.call(Method::GET, &format!("/{id}"), None).await?;
        assert_eq!((got.status, got.body["name"].as_str()), (200, Some("acme's")));
        assert_eq!(got.body["status"], "active");

        // The default tenant is the `default_tenant` variable.
        let named_default = Api::new(&r.app).as_tenant("default");
        let mine = default.create_named("default's").await?;
        assert_eq!(ids(&named_default.list("").await?), [mine]);

        let answer = Api::new(&r.app).as_tenant("Not A Tenant!").call(Method::GET, "", None).await?;
        assert_eq!((answer.status, answer.fields()), (400, vec!["Tenant"]), "{answer:?}");
        assert_ne!(answer.body, Value::Null);
        r.stop().await
    }
}
