//! `load_catalog` against what the real registry writes: applications and event APIs are
//! created through the registry's GraphQL schema on a `MemoryStore`, then read back.

use std::sync::Arc;

use async_graphql::{Request, Variables};
use eventplane_core::{AppId, MemoryStore, TenantId};
use eventplane_eventstore::load_catalog;
use eventplane_registry_api::{RegistryConfig, RegistrySchema, RequestScope, schema};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SHOP_SPEC: &str = r#"
asyncapi: 2.6.0
info: { title: Shop, version: "1.4.0" }
channels:
  order.created.v1:
    subscribe:
      message:
        summary: An order was placed.
        payload:
          type: object
          required: [orderId]
          properties:
            orderId: { type: string }
"#;

const ERP_SPEC: &str = r#"{
  "asyncapi": "3.0.0",
  "info": {"title": "ERP", "version": "2.0.0"},
  "channels": {
    "invoices": {"address": "invoice.issued", "messages": {"issued": {"payload": {"type": "object"}}}},
    "stock": {"address": "stock.changed.v3", "messages": {"changed": {"summary": "no payload"}}}
  }
}"#;

struct Registry {
    store: Arc<MemoryStore>,
    schema: RegistrySchema,
    tenant: TenantId,
}

impl Registry {
    fn new() -> Self {
        Self {
            store: Arc::new(MemoryStore::spin_sqlite_like()),
            schema: schema(),
            tenant: TenantId::new("acme").expect("tenant"),
        }
    }

    fn run(&self, query: &str, variables: Value) -> Result<Value, Box<dyn std::error::Error>> {
        let scope = RequestScope::new(
            self.store.clone(),
            self.tenant.clone(),
            RegistryConfig::default(),
        );
        let request = scope.attach(Request::new(query).variables(Variables::from_json(variables)));
        let response = futures::executor::block_on(self.schema.execute(request));
        if !response.errors.is_empty() {
            return Err(format!("{:?}", response.errors).into());
        }
        Ok(response.data.into_json()?)
    }

    fn create_app(&self, name: &str) -> Result<AppId, Box<dyn std::error::Error>> {
        let data = self.run(
            "mutation($in: ApplicationInput!) { createApplication(in: $in) { id } }",
            json!({"in": {"name": name}}),
        )?;
        Ok(data["createApplication"]["id"]
            .as_str()
            .ok_or("no id")?
            .parse()?)
    }

    /// Adds an event API; its id and its events as the registry reports them.
    fn add_api(
        &self,
        app: &AppId,
        name: &str,
        spec: &str,
    ) -> Result<(String, Vec<Value>), Box<dyn std::error::Error>> {
        let data = self.run(
            "mutation($app: ID!, $in: EventAPIDefinitionInput!) {
                addEventAPI(applicationID: $app, in: $in) {
                    id events { name version payloadSchema } } }",
            json!({"app": app.as_str(),
                   "in": {"name": name, "spec": {"data": spec, "eventSpecType": "ASYNC_API"}}}),
        )?;
        let api = &data["addEventAPI"];
        let events = api["events"].as_array().ok_or("no events")?.clone();
        Ok((api["id"].as_str().ok_or("no id")?.to_owned(), events))
    }
}

/// The registry's `payloadSchema` (a JSON string, or null) as a value.
fn payload_schema(event: &Value) -> Result<Option<Value>, serde_json::Error> {
    event["payloadSchema"]
        .as_str()
        .map(serde_json::from_str)
        .transpose()
}

#[test]
fn the_catalog_holds_every_event_type_of_every_api_of_the_application() -> TestResult {
    let registry = Registry::new();
    let app = registry.create_app("shop")?;
    registry.create_app("other")?;
    let (shop_api, shop_events) = registry.add_api(&app, "orders", SHOP_SPEC)?;
    let (erp_api, erp_events) = registry.add_api(&app, "erp", ERP_SPEC)?;
    assert_eq!((shop_events.len(), erp_events.len()), (1, 2));

    let catalog =
        load_catalog(registry.store.as_ref(), &registry.tenant, "shop")?.ok_or("no catalog")?;
    assert_eq!(catalog.app_id, app);
    assert_eq!(catalog.app_name, "shop");
    assert_eq!(catalog.entries.len(), 3);
    for (api, events) in [(&shop_api, &shop_events), (&erp_api, &erp_events)] {
        for event in events {
            let name = event["name"].as_str().ok_or("no name")?;
            let version = event["version"].as_str().ok_or("no version")?;
            let entry = catalog
                .find(name, Some(version))
                .ok_or_else(|| format!("{name} {version} missing"))?;
            assert_eq!(entry.api_id.as_str(), api.as_str());
            assert_eq!(entry.payload_schema, payload_schema(event)?, "{name}");
        }
    }
    let order = catalog
        .find("order.created.v1", None)
        .ok_or("no order event")?;
    assert_eq!(
        order.payload_schema.as_ref().map(|s| s["required"].clone()),
        Some(json!(["orderId"]))
    );
    assert!(
        catalog
            .find("order.created.v1", Some("no-such-version"))
            .is_none()
    );
    assert!(catalog.find("never.registered", None).is_none());
    Ok(())
}

#[test]
fn unknown_applications_have_no_catalog_and_new_ones_an_empty_one() -> TestResult {
    let registry = Registry::new();
    assert_eq!(
        load_catalog(registry.store.as_ref(), &registry.tenant, "shop")?,
        None
    );
    let app = registry.create_app("shop")?;
    let catalog =
        load_catalog(registry.store.as_ref(), &registry.tenant, "shop")?.ok_or("no catalog")?;
    assert_eq!((catalog.app_id, catalog.entries.len()), (app, 0));
    let other = TenantId::new("other")?;
    assert_eq!(load_catalog(registry.store.as_ref(), &other, "shop")?, None);
    for hostile in ["", "../shop", "shop/x", "%2F"] {
        assert_eq!(
            load_catalog(registry.store.as_ref(), &registry.tenant, hostile)?,
            None
        );
    }
    Ok(())
}

#[test]
fn deleted_apis_and_applications_leave_the_catalog() -> TestResult {
    let registry = Registry::new();
    let app = registry.create_app("shop")?;
    let (orders, _) = registry.add_api(&app, "orders", SHOP_SPEC)?;
    registry.add_api(&app, "erp", ERP_SPEC)?;
    registry.run(
        "mutation($id: ID!) { deleteEventAPI(id: $id) { id } }",
        json!({"id": orders}),
    )?;
    let catalog =
        load_catalog(registry.store.as_ref(), &registry.tenant, "shop")?.ok_or("no catalog")?;
    assert_eq!(catalog.entries.len(), 2);
    assert!(catalog.find("order.created.v1", None).is_none());

    registry.run(
        "mutation($id: ID!) { deleteApplication(id: $id) { id } }",
        json!({"id": app.as_str()}),
    )?;
    assert_eq!(
        load_catalog(registry.store.as_ref(), &registry.tenant, "shop")?,
        None
    );
    Ok(())
}
