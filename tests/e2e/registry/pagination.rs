//! Pages of applications over HTTP: 250 applications walked with `first` and `after`, and
//! label filters across pages.

use std::collections::HashSet;

use serde_json::{Value, json as j};

use super::{Gql, Registry};
use crate::e2e_test;

const APPLICATIONS: &str = "query($filter: [LabelFilter!], $first: Int, $after: PageCursor) {
    applications(filter: $filter, first: $first, after: $after) {
        totalCount pageInfo { startCursor endCursor hasNextPage } data { id name } } }";

/// How many `createApplication`s one request carries (as aliases).
const BATCH: usize = 25;

/// 250 applications `app-000` … `app-249`, in that order: every one has `tier: [t<i % 3>]`;
/// those divisible by 5 also have `region: [eu]`, by 2 `region: [us]` (both for multiples of
/// 10).
async fn two_hundred_fifty_apps(g: &Gql) -> anyhow::Result<()> {
    for start in (0..250).step_by(BATCH) {
        let mut mutation = String::from("mutation {");
        for i in start..start + BATCH {
            let mut region = Vec::new();
            if i % 5 == 0 {
                region.push("\"eu\"");
            }
            if i % 2 == 0 {
                region.push("\"us\"");
            }
            let region = if region.is_empty() {
                String::new()
            } else {
                format!(", region: [{}]", region.join(", "))
            };
            mutation.push_str(&format!(
                " a{i}: createApplication(in: {{name: \"app-{i:03}\", \
                 labels: {{tier: [\"t{}\"]{region}}}}}) {{ id }}",
                i % 3
            ));
        }
        mutation.push_str(" }");
        let data = g.ok(&mutation, j!({})).await?;
        anyhow::ensure!(
            data.as_object().map(|o| o.len()) == Some(BATCH),
            "expected {BATCH} applications: {data}"
        );
    }
    Ok(())
}

/// Follows `endCursor` from the first page to the last: every item and every page's
/// `totalCount`.
async fn walk(g: &Gql, filter: Value, first: i64) -> anyhow::Result<(Vec<Value>, Vec<i64>)> {
    let mut items = Vec::new();
    let mut totals = Vec::new();
    let mut after = Value::Null;
    for _ in 0..300 {
        let data = g
            .ok(
                APPLICATIONS,
                j!({"filter": filter, "first": first, "after": after}),
            )
            .await?;
        let page = &data["applications"];
        totals.push(page["totalCount"].as_i64().unwrap_or(-1));
        let page_items = page["data"].as_array().cloned().unwrap_or_default();
        anyhow::ensure!(
            i64::try_from(page_items.len())? <= first,
            "a page longer than first = {first}: {page}"
        );
        items.extend(page_items);
        if page["pageInfo"]["hasNextPage"] != j!(true) {
            return Ok((items, totals));
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    anyhow::bail!("pages never end")
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| item["name"].as_str().map(str::to_owned))
        .collect()
}

fn expected(keep: impl Fn(usize) -> bool) -> Vec<String> {
    (0..250)
        .filter(|i| keep(*i))
        .map(|i| format!("app-{i:03}"))
        .collect()
}

e2e_test! {
    async fn pages_of_100_walk_250_applications_without_duplicates() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        two_hundred_fifty_apps(&g).await?;

        let data = g.ok(APPLICATIONS, j!({})).await?;
        let page = &data["applications"];
        assert_eq!(page["totalCount"], 250);
        assert_eq!(page["data"].as_array().map(Vec::len), Some(100), "first defaults to 100");
        assert_eq!(page["pageInfo"]["hasNextPage"], true);

        let (items, totals) = walk(&g, Value::Null, 100).await?;
        assert_eq!(totals, [250, 250, 250]);
        assert_eq!(names(&items), expected(|_| true), "every application once, in creation order");
        let ids: HashSet<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
        assert_eq!(ids.len(), 250, "no duplicate ids");

        let (items, totals) = walk(&g, Value::Null, 200).await?;
        assert_eq!(totals, [250, 250]);
        assert_eq!(items.len(), 250);
        r.stop().await
    }
}

e2e_test! {
    async fn label_filters_select_all_or_any_values_across_pages() -> anyhow::Result<()> {
        let r = Registry::start().await?;
        let g = r.gql();
        two_hundred_fifty_apps(&g).await?;

        let eu = j!([{"label": "region", "values": ["eu"]}]);
        let (items, totals) = walk(&g, eu, 20).await?;
        assert_eq!(names(&items), expected(|i| i % 5 == 0));
        assert!(totals.iter().all(|total| *total == 50), "{totals:?}");
        assert_eq!(totals.len(), 3);

        // ALL (the default): both eu and us.
        let all = j!([{"label": "region", "values": ["eu", "us"]}]);
        let (items, totals) = walk(&g, all, 7).await?;
        assert_eq!(names(&items), expected(|i| i % 10 == 0));
        assert!(totals.iter().all(|total| *total == 25), "{totals:?}");

        let any = j!([{"label": "region", "values": ["eu", "us"], "operator": "ANY"}]);
        let (items, totals) = walk(&g, any, 100).await?;
        let either = expected(|i| i % 5 == 0 || i % 2 == 0);
        assert_eq!(totals[0], i64::try_from(either.len())?);
        assert_eq!(names(&items), either);

        // Filters combine with AND; no values: having the label is enough.
        let both = j!([
            {"label": "region", "values": []},
            {"label": "tier", "values": ["t0"], "operator": "ANY"},
        ]);
        let (items, _) = walk(&g, both, 200).await?;
        assert_eq!(names(&items), expected(|i| (i % 5 == 0 || i % 2 == 0) && i % 3 == 0));

        let data = g
            .ok(APPLICATIONS, j!({"filter": [{"label": "missing", "values": []}]}))
            .await?;
        assert_eq!(data["applications"]["totalCount"], 0);
        assert_eq!(data["applications"]["data"], j!([]));
        assert_eq!(data["applications"]["pageInfo"]["hasNextPage"], false);
        r.stop().await
    }
}
