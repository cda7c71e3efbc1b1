use std::collections::HashSet;

use anyhow::Result;
use serde_json::{Value, json};

use crate::support::Harness;

const APPLICATIONS: &str = "query($filter: [LabelFilter!], $first: Int, $after: PageCursor) {
    applications(filter: $filter, first: $first, after: $after) {
        totalCount pageInfo { startCursor endCursor hasNextPage } data { id name labels } } }";

/// 250 applications `app-000` … `app-249`: every one has `tier: [t<i % 3>]`; those divisible
/// by 5 also have `region: [eu]`, by 2 `region: [us]` (both for multiples of 10).
fn two_hundred_fifty_apps(h: &Harness) -> Result<()> {
    for i in 0..250 {
        let mut region = Vec::new();
        if i % 5 == 0 {
            region.push("eu");
        }
        if i % 2 == 0 {
            region.push("us");
        }
        let mut labels = json!({"tier": [format!("t{}", i % 3)]});
        if !region.is_empty() {
            labels["region"] = json!(region);
        }
        h.create_app(json!({"name": format!("app-{i:03}"), "labels": labels}))?;
    }
    Ok(())
}

/// Follows `endCursor` from the first page to the last; every page's data.
fn walk(h: &Harness, filter: Value, first: i64) -> Result<(Vec<Value>, Vec<i64>)> {
    let mut items = Vec::new();
    let mut totals = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = h.ok(
            APPLICATIONS,
            json!({"filter": filter, "first": first, "after": after}),
        )?;
        let page = &data["applications"];
        totals.push(page["totalCount"].as_i64().unwrap_or(-1));
        items.extend(page["data"].as_array().cloned().unwrap_or_default());
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            return Ok((items, totals));
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| item["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn pages_walk_250_applications_in_creation_order() -> Result<()> {
    let h = Harness::new();
    two_hundred_fifty_apps(&h)?;

    let data = h.ok(APPLICATIONS, json!({}))?;
    let page = &data["applications"];
    assert_eq!(page["totalCount"], 250);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(100));
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    assert_eq!(page["data"][0]["name"], "app-000");
    assert_ne!(
        page["pageInfo"]["startCursor"],
        page["pageInfo"]["endCursor"]
    );

    let (items, totals) = walk(&h, Value::Null, 200)?;
    assert_eq!(totals, [250, 250]);
    let expected: Vec<String> = (0..250).map(|i| format!("app-{i:03}")).collect();
    assert_eq!(names(&items), expected);
    let ids: HashSet<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids.len(), 250);
    Ok(())
}

#[test]
fn label_filters_select_all_or_any_values_across_pages() -> Result<()> {
    let h = Harness::new();
    two_hundred_fifty_apps(&h)?;

    // ALL (the default): both eu and us: multiples of 10.
    let all = json!([{"label": "region", "values": ["eu", "us"]}]);
    let (items, totals) = walk(&h, all, 7)?;
    let expected: Vec<String> = (0..250)
        .step_by(10)
        .map(|i| format!("app-{i:03}"))
        .collect();
    assert_eq!(names(&items), expected);
    assert!(totals.iter().all(|total| *total == 25), "{totals:?}");

    // ANY: eu or us.
    let any = json!([{"label": "region", "values": ["eu", "us"], "operator": "ANY"}]);
    let (items, totals) = walk(&h, any, 40)?;
    let expected: Vec<String> = (0..250)
        .filter(|i| i % 5 == 0 || i % 2 == 0)
        .map(|i| format!("app-{i:03}"))
        .collect();
    assert_eq!(names(&items), expected);
    assert_eq!(totals[0], i64::try_from(expected.len())?);

    // No values: having the label is enough; filters combine with AND.
    let both = json!([
        {"label": "region", "values": []},
        {"label": "tier", "values": ["t0"], "operator": "ANY"},
    ]);
    let (items, _) = walk(&h, both, 200)?;
    let expected: Vec<String> = (0..250)
        .filter(|i| (i % 5 == 0 || i % 2 == 0) && i % 3 == 0)
        .map(|i| format!("app-{i:03}"))
        .collect();
    assert_eq!(names(&items), expected);

    let none = json!([{"label": "missing", "values": []}]);
    let data = h.ok(APPLICATIONS, json!({"filter": none}))?;
    assert_eq!(data["applications"]["totalCount"], 0);
    assert_eq!(
        data["applications"]["pageInfo"],
        json!({"startCursor": "", "endCursor": "", "hasNextPage": false})
    );
    Ok(())
}

#[test]
fn first_is_at_most_200_and_cursors_must_be_ours() -> Result<()> {
    let h = Harness::new();
    h.create_app(json!({"name": "shop"}))?;
    for first in [201, -1] {
        let err = h.error(APPLICATIONS, json!({"first": first}))?;
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err}");
        assert_eq!(err["extensions"]["details"][0]["field"], "first");
    }
    let err = h.error_code(APPLICATIONS, json!({"after": "not a cursor!"}))?;
    assert_eq!(err, "BAD_USER_INPUT");
    let data = h.ok(APPLICATIONS, json!({"first": 0}))?;
    assert_eq!(data["applications"]["data"], json!([]));
    assert_eq!(data["applications"]["totalCount"], 1);
    assert_eq!(data["applications"]["pageInfo"]["hasNextPage"], true);
    let data = h.ok(APPLICATIONS, json!({"after": ""}))?;
    assert_eq!(data["applications"]["totalCount"], 1);
    Ok(())
}
