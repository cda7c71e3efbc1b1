//! Concurrent requests: the indexes are updated with compare-and-swap, so nothing written by
//! one request is lost to another.

use std::collections::HashSet;

use serde_json::{Value, json as j};
use tokio::task::JoinSet;

use super::{Gql, Registry, SHOP_SPEC, api_input, strings};
use crate::e2e_test;

/// Runs `count` requests at once, the `i`th made by `request(g, i)`; their results in order.
async fn all_at_once<F, Fut, T>(g: &Gql, count: usize, request: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(Gql, usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(count));
    let mut tasks = JoinSet::new();
    for i in 0..count {
        let start = start.clone();
        let call = request(g.clone(), i);
        tasks.spawn(async move {
            start.wait().await;
            (i, call.await)
        });
    }
    let mut results: Vec<(usize, anyhow::Result<T>)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        results.push(done?);
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, result)| result).collect()
}

e2e_test! {
    async fn sixteen_concurrent_add_event_apis_are_all_listed() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let app = g.create_app(j!({"name": "shop"})).await?;
        let ids = all_at_once(&g, 16, |g, i| {
            let app = app.clone();
            async move { g.add_api(&app, api_input(&format!("api-{i:02}"), SHOP_SPEC)).await }
        })
        .await?;
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), 16, "{ids:?}");

        let data = g
            .ok("query($id: ID!) { application(id: $id) { eventAPIs(first: 100) {
                    totalCount data { id name } } } }",
                j!({"id": app}))
            .await?;
        let page = &data["application"]["eventAPIs"];
        assert_eq!(page["totalCount"], 16, "{page}");
        let listed: HashSet<String> = strings(&page["data"], "id").into_iter().collect();
        let added: HashSet<String> = ids.into_iter().collect();
        assert_eq!(listed, added);
        for id in &added {
            let data = g
                .ok("query($id: ID!) { eventAPI(id: $id) { events { name } } }", j!({"id": id}))
                .await?;
            assert_eq!(data["eventAPI"]["events"], j!([{"name": "order.created.v1"}]));
        }
        r.stop().await
    }
}

e2e_test! {
    async fn sixteen_concurrent_create_applications_are_all_listed() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let ids = all_at_once(&g, 16, |g, i| async move {
            g.create_app(j!({"name": format!("app-{i:02}")})).await
        })
        .await?;
        let data = g.ok("{ applications { totalCount data { id } } }", j!({})).await?;
        assert_eq!(data["applications"]["totalCount"], 16, "{data}");
        let listed: HashSet<String> = strings(&data["applications"]["data"], "id").into_iter().collect();
        assert_eq!(listed, ids.into_iter().collect::<HashSet<_>>());
        r.stop().await
    }
}

e2e_test! {
    async fn of_concurrent_creations_with_one_name_exactly_one_wins() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        let answers: Vec<Value> = all_at_once(&g, 8, |g, _| async move {
            let (status, body) = g
                .post("mutation { createApplication(in: {name: \"shop\"}) { id } }", j!({}))
                .await?;
            anyhow::ensure!(status == 200, "{status}: {body}");
            Ok(body)
        })
        .await?;
        let created = answers.iter().filter(|a| a["data"]["createApplication"]["id"].is_string()).count();
        let refused = answers
            .iter()
            .filter(|a| a["errors"][0]["extensions"]["code"] == "NOT_UNIQUE")
            .count();
        assert_eq!((created, refused), (1, 7), "{answers:#?}");
        let data = g.ok("{ applications { totalCount } }", j!({})).await?;
        assert_eq!(data["applications"]["totalCount"], 1);
        r.stop().await
    }
}
