//! Specs fetched from a `fetchRequest` through the `SpecFetcher` port: what the registry sends
//! the fetcher, and how each outcome lands on the event API (the fetcher itself is tested end
//! to end through the host).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use anyhow::{Result, bail};
use eventplane_core::TenantId;
use eventplane_outbound::{Credential, FetchJob, FetchMode, FetchOutcome, FetchedFormat};
use eventplane_registry_api::SpecFetcher;
use serde_json::{Value, json};

use crate::support::{ERP_SPEC, Harness, SHOP_SPEC, id_at};

/// A fetcher that answers queued outcomes and records the jobs it got.
#[derive(Default)]
struct Scripted {
    outcomes: Mutex<VecDeque<FetchOutcome>>,
    jobs: Mutex<Vec<(String, FetchJob)>>,
}

impl Scripted {
    fn answering(outcomes: impl IntoIterator<Item = FetchOutcome>) -> Arc<Self> {
        Arc::new(Self {
            outcomes: Mutex::new(outcomes.into_iter().collect()),
            jobs: Mutex::default(),
        })
    }

    fn jobs(&self) -> Vec<(String, FetchJob)> {
        self.jobs.lock().map(|j| j.clone()).unwrap_or_default()
    }
}

impl SpecFetcher for Scripted {
    fn fetch(&self, tenant: &TenantId, job: &FetchJob) -> FetchOutcome {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.push((tenant.to_string(), job.clone()));
        }
        self.outcomes
            .lock()
            .ok()
            .and_then(|mut o| o.pop_front())
            .unwrap_or_else(|| FetchOutcome::failed("no scripted outcome left"))
    }
}

fn fetched(data: &str, format: FetchedFormat) -> FetchOutcome {
    FetchOutcome::Succeeded {
        data: data.to_owned(),
        format,
    }
}

const API_FIELDS: &str = "id events { name version } spec { data format
    fetchRequest { url status { condition message timestamp } } }";

fn add(h: &Harness, app: &str, input: Value) -> Result<Value> {
    let data = h.ok(
        &format!(
            "mutation($app: ID!, $in: EventAPIDefinitionInput!) {{
                addEventAPI(applicationID: $app, in: $in) {{ {API_FIELDS} }} }}"
        ),
        json!({"app": app, "in": input}),
    )?;
    Ok(data["addEventAPI"].clone())
}

fn refetch(h: &Harness, api: &str) -> Result<Value> {
    let data = h.ok(
        "mutation($id: ID!) { refetchEventAPISpec(eventID: $id) {
            data format fetchRequest { status { condition message } } } }",
        json!({"id": api}),
    )?;
    Ok(data["refetchEventAPISpec"].clone())
}

fn event_names(h: &Harness, api: &str) -> Result<Vec<String>> {
    let data = h.ok(
        "query($id: ID!) { eventAPI(id: $id) { events { name } } }",
        json!({"id": api}),
    );
    let data = match data {
        Ok(data) => data,
        Err(e) => bail!("{e}"),
    };
    Ok(data["eventAPI"]["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

fn remote(url: &str) -> Value {
    json!({"name": "remote", "spec": {"eventSpecType": "ASYNC_API", "fetchRequest": {"url": url}}})
}

#[test]
fn a_fetched_spec_gives_data_format_catalog_and_succeeded() -> Result<()> {
    let fetcher = Scripted::answering([fetched(SHOP_SPEC, FetchedFormat::Yaml)]);
    let h = Harness::new().with_fetcher(fetcher.clone());
    let app = h.create_app(json!({"name": "shop"}))?;
    let mut input = remote("https://specs.example.com/shop.yaml");
    input["spec"]["fetchRequest"]["auth"] = json!({
        "credential": {"basic": {"username": "u", "password": "p"}},
        "additionalHeaders": {"X-Key": ["k"]},
        "additionalQueryParams": {"v": ["2"]},
        "requestAuth": {"csrf": {"tokenEndpointURL": "https://specs.example.com/csrf",
            "credential": {"oauth": {"clientId": "c", "clientSecret": "s",
                                     "url": "https://auth.example.com/token"}}}},
    });
    let api = add(&h, &app, input)?;
    assert_eq!(api["spec"]["data"], SHOP_SPEC);
    assert_eq!(api["spec"]["format"], "YAML");
    assert_eq!(
        api["events"],
        json!([{"name": "order.created.v1", "version": "v1"}])
    );
    let status = &api["spec"]["fetchRequest"]["status"];
    assert_eq!(status["condition"], "SUCCEEDED");
    assert_eq!(status["message"], Value::Null);
    assert_eq!(status["timestamp"], "2023-11-14T22:13:20Z");

    let jobs = fetcher.jobs();
    let [(tenant, job)] = jobs.as_slice() else {
        bail!("expected one job: {jobs:?}");
    };
    assert_eq!(tenant, "acme");
    assert_eq!(job.url, "https://specs.example.com/shop.yaml");
    assert_eq!(job.mode, FetchMode::Single);
    let auth = job.auth.clone().unwrap_or_default();
    assert_eq!(
        auth.credential,
        Some(Credential::Basic {
            username: "u".into(),
            password: "p".into()
        })
    );
    assert_eq!(auth.headers.get("X-Key"), Some(&vec!["k".to_owned()]));
    assert_eq!(auth.query_params.get("v"), Some(&vec!["2".to_owned()]));
    let csrf = auth.csrf.unwrap_or_else(|| panic!("no csrf in the job"));
    assert_eq!(csrf.token_endpoint_url, "https://specs.example.com/csrf");
    assert!(matches!(
        csrf.auth.credential,
        Some(Credential::OAuth { .. })
    ));
    Ok(())
}

#[test]
fn a_failed_fetch_still_stores_the_api_with_the_reason() -> Result<()> {
    let fetcher = Scripted::answering([FetchOutcome::failed("HTTP 404 from https://x/s.yaml")]);
    let h = Harness::new().with_fetcher(fetcher);
    let app = h.create_app(json!({"name": "shop"}))?;
    let api = add(&h, &app, remote("https://x/s.yaml"))?;
    assert_eq!(api["spec"]["data"], Value::Null);
    assert_eq!(api["events"], json!([]));
    let status = &api["spec"]["fetchRequest"]["status"];
    assert_eq!(status["condition"], "FAILED");
    assert_eq!(status["message"], "HTTP 404 from https://x/s.yaml");
    assert_eq!(event_names(&h, &id_at(&api, "/id")?)?, Vec::<String>::new());
    Ok(())
}

#[test]
fn a_fetched_document_the_registry_cannot_use_fails_with_the_parser_message() -> Result<()> {
    let fetcher = Scripted::answering([fetched("{\"asyncapi\": \"2.6.0\"}", FetchedFormat::Json)]);
    let h = Harness::new().with_fetcher(fetcher);
    let app = h.create_app(json!({"name": "shop"}))?;
    let api = add(&h, &app, remote("https://x/s.json"))?;
    let status = &api["spec"]["fetchRequest"]["status"];
    assert_eq!(status["condition"], "FAILED");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("info")),
        "{status}"
    );
    Ok(())
}

#[test]
fn refetch_replaces_the_catalog_and_a_failed_refetch_keeps_the_last_good_spec() -> Result<()> {
    let fetcher = Scripted::answering([
        fetched(SHOP_SPEC, FetchedFormat::Yaml),
        fetched(ERP_SPEC, FetchedFormat::Json),
        FetchOutcome::failed("timed out after 10 s fetching https://x/s"),
    ]);
    let h = Harness::new().with_fetcher(fetcher);
    let app = h.create_app(json!({"name": "shop"}))?;
    let api = id_at(&add(&h, &app, remote("https://x/s"))?, "/id")?;
    assert_eq!(event_names(&h, &api)?, ["order.created.v1"]);

    let spec = refetch(&h, &api)?;
    assert_eq!(spec["format"], "JSON");
    assert_eq!(spec["data"], ERP_SPEC);
    assert_eq!(spec["fetchRequest"]["status"]["condition"], "SUCCEEDED");
    assert_eq!(
        event_names(&h, &api)?,
        ["invoice.issued", "stock.changed.v3"]
    );

    let spec = refetch(&h, &api)?;
    assert_eq!(
        spec["data"], ERP_SPEC,
        "a failed refetch keeps the document"
    );
    assert_eq!(spec["fetchRequest"]["status"]["condition"], "FAILED");
    assert_eq!(
        spec["fetchRequest"]["status"]["message"],
        "timed out after 10 s fetching https://x/s"
    );
    assert_eq!(
        event_names(&h, &api)?,
        ["invoice.issued", "stock.changed.v3"]
    );
    Ok(())
}

#[test]
fn data_given_inline_is_used_and_not_fetched_until_refetch() -> Result<()> {
    let fetcher = Scripted::answering([fetched(ERP_SPEC, FetchedFormat::Json)]);
    let h = Harness::new().with_fetcher(fetcher.clone());
    let app = h.create_app(json!({"name": "shop"}))?;
    let mut input = remote("https://x/s");
    input["spec"]["data"] = json!(SHOP_SPEC);
    let api = add(&h, &app, input)?;
    assert!(fetcher.jobs().is_empty());
    assert_eq!(
        api["spec"]["fetchRequest"]["status"]["condition"],
        "INITIAL"
    );
    let id = id_at(&api, "/id")?;
    refetch(&h, &id)?;
    assert_eq!(fetcher.jobs().len(), 1);
    assert_eq!(
        event_names(&h, &id)?,
        ["invoice.issued", "stock.changed.v3"]
    );
    Ok(())
}

#[test]
fn refetch_needs_a_fetch_request_and_an_existing_api() -> Result<()> {
    let h = Harness::new().with_fetcher(Scripted::answering([]));
    let app = h.create_app(json!({"name": "shop"}))?;
    let api = h.add_api(&app, "orders", SHOP_SPEC)?;
    let query = "mutation($id: ID!) { refetchEventAPISpec(eventID: $id) { data } }";
    let error = h.error(query, json!({"id": api}))?;
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("no fetchRequest")),
        "{error}"
    );
    assert_eq!(
        h.error_code(query, json!({"id": "api_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f"}))?,
        "NOT_FOUND"
    );
    Ok(())
}

#[test]
fn update_event_api_with_only_a_fetch_request_fetches_before_it_returns() -> Result<()> {
    let fetcher = Scripted::answering([fetched(ERP_SPEC, FetchedFormat::Json)]);
    let h = Harness::new().with_fetcher(fetcher.clone());
    let app = h.create_app(json!({"name": "shop"}))?;
    let api = h.add_api(&app, "orders", SHOP_SPEC)?;
    assert!(fetcher.jobs().is_empty());
    let data = h.ok(
        &format!(
            "mutation($id: ID!, $in: EventAPIDefinitionInput!) {{
                updateEventAPI(id: $id, in: $in) {{ {API_FIELDS} }} }}"
        ),
        json!({"id": api, "in": remote("https://x/erp.json")}),
    )?;
    let updated = &data["updateEventAPI"];
    assert_eq!(updated["id"], api.as_str());
    assert_eq!(
        updated["spec"]["fetchRequest"]["status"]["condition"],
        "SUCCEEDED"
    );
    assert_eq!(updated["spec"]["format"], "JSON");
    assert_eq!(fetcher.jobs().len(), 1);
    assert_eq!(
        event_names(&h, &api)?,
        ["invoice.issued", "stock.changed.v3"]
    );
    Ok(())
}
