//! A schema over a `MemoryStore`, queried with `schema.execute` as the component does.

use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use async_graphql::{Request, Variables};
use eventplane_core::{Key, KvStore, MemoryStore, StoreError, TenantId};
use eventplane_registry_api::{
    FixedClock, NoFetcher, RegistryConfig, RegistrySchema, RequestScope, SpecFetcher, schema,
};
use serde_json::{Value, json};

/// 2023-11-14T22:13:20Z.
pub const NOW: i64 = 1_700_000_000;
pub const BASE_URL: &str = "https://events.example.com";

/// A small valid AsyncAPI 2.6 document (YAML) with one event type.
pub const SHOP_SPEC: &str = r#"
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

/// A valid AsyncAPI 3.0 document (JSON) with two event types and a `$ref`.
pub const ERP_SPEC: &str = r##"{
  "asyncapi": "3.0.0",
  "info": {"title": "ERP", "version": "2.0.0"},
  "channels": {
    "invoices": {
      "address": "invoice.issued",
      "messages": {"issued": {"$ref": "#/components/messages/InvoiceIssued"}}
    },
    "stock": {
      "address": "stock.changed.v3",
      "messages": {"changed": {"payload": {"type": "object"}}}
    }
  },
  "components": {
    "messages": {
      "InvoiceIssued": {
        "summary": "An invoice was issued.",
        "payload": {"$ref": "#/components/schemas/Invoice"}
      }
    },
    "schemas": {"Invoice": {"type": "object", "properties": {"total": {"type": "number"}}}}
  }
}"##;

/// An AsyncAPI document without `info.title`.
pub const INVALID_SPEC: &str = r#"{"asyncapi": "2.6.0", "info": {"version": "1"}}"#;

pub struct Harness {
    pub store: Arc<MemoryStore>,
    pub schema: RegistrySchema,
    pub clock: Arc<FixedClock>,
    pub config: RegistryConfig,
    pub tenant: TenantId,
    pub fetcher: Arc<dyn SpecFetcher>,
    backend: Arc<dyn KvStore + Send + Sync>,
}

impl Harness {
    /// A fresh store, tenant `acme`.
    pub fn new() -> Self {
        let store = Arc::new(MemoryStore::new());
        Self::over(Arc::clone(&store), store)
    }

    /// A harness whose schema uses `backend` (e.g. a failing store) while `store` is what tests
    /// look at.
    pub fn over(store: Arc<MemoryStore>, backend: Arc<dyn KvStore + Send + Sync>) -> Self {
        Self {
            store,
            schema: schema(),
            clock: Arc::new(FixedClock::at(NOW)),
            config: RegistryConfig {
                events_base_url: BASE_URL.to_owned(),
                spec_max_bytes: 64 * 1024,
                ..RegistryConfig::default()
            },
            tenant: TenantId::new("acme").expect("valid tenant"),
            fetcher: Arc::new(NoFetcher),
            backend,
        }
    }

    /// The same store and schema, seen as another tenant.
    pub fn as_tenant(&self, tenant: &str) -> Self {
        Self {
            store: Arc::clone(&self.store),
            schema: self.schema.clone(),
            clock: Arc::clone(&self.clock),
            config: self.config.clone(),
            tenant: TenantId::new(tenant).expect("valid tenant"),
            fetcher: Arc::clone(&self.fetcher),
            backend: Arc::clone(&self.backend),
        }
    }

    pub fn scope(&self) -> RequestScope {
        RequestScope::new(
            Arc::clone(&self.backend),
            self.tenant.clone(),
            self.config.clone(),
        )
        .with_clock(self.clock.clone())
        .with_fetcher(self.fetcher.clone())
    }

    /// The same harness, fetching specs with `fetcher`.
    pub fn with_fetcher(mut self, fetcher: Arc<dyn SpecFetcher>) -> Self {
        self.fetcher = fetcher;
        self
    }

    /// Runs `query` with `variables`; the whole response as JSON (`data`, `errors`).
    pub fn run(&self, query: &str, variables: Value) -> Value {
        let request = Request::new(query).variables(Variables::from_json(variables));
        let response =
            futures::executor::block_on(self.schema.execute(self.scope().attach(request)));
        serde_json::to_value(&response)
            .unwrap_or_else(|err| json!({"serialization": err.to_string()}))
    }

    /// Runs `query`, which must succeed; its `data`.
    pub fn ok(&self, query: &str, variables: Value) -> Result<Value> {
        let response = self.run(query, variables);
        if let Some(errors) = response.get("errors") {
            bail!("unexpected errors: {errors:#}");
        }
        response.get("data").cloned().context("no data")
    }

    /// Runs `query`, which must fail with exactly one error; that error.
    pub fn error(&self, query: &str, variables: Value) -> Result<Value> {
        let response = self.run(query, variables);
        let errors = response
            .get("errors")
            .and_then(Value::as_array)
            .with_context(|| format!("expected an error, got {response:#}"))?;
        match errors.as_slice() {
            [error] => Ok(error.clone()),
            _ => bail!("expected one error, got {errors:#?}"),
        }
    }

    /// Runs `query`, which must fail; the error's `extensions.code`.
    pub fn error_code(&self, query: &str, variables: Value) -> Result<String> {
        let error = self.error(query, variables)?;
        error["extensions"]["code"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no code in {error:#}"))
    }

    /// Creates an application from `input` (an `ApplicationInput`); its id.
    pub fn create_app(&self, input: Value) -> Result<String> {
        let data = self.ok(
            "mutation($in: ApplicationInput!) { createApplication(in: $in) { id } }",
            json!({ "in": input }),
        )?;
        id_at(&data, "/createApplication/id")
    }

    /// Adds an event API with an inline YAML spec to `app`; its id.
    pub fn add_api(&self, app: &str, name: &str, spec: &str) -> Result<String> {
        let data = self.ok(
            "mutation($app: ID!, $in: EventAPIDefinitionInput!) {
                addEventAPI(applicationID: $app, in: $in) { id } }",
            json!({"app": app, "in": api_input(name, spec)}),
        )?;
        id_at(&data, "/addEventAPI/id")
    }

    /// Every stored key.
    pub fn keys(&self) -> Vec<String> {
        self.store.keys()
    }
}

/// An `EventAPIDefinitionInput` with an inline spec.
pub fn api_input(name: &str, spec: &str) -> Value {
    json!({"name": name, "spec": {"data": spec, "eventSpecType": "ASYNC_API"}})
}

/// The string at JSON pointer `pointer` of `data`.
pub fn id_at(data: &Value, pointer: &str) -> Result<String> {
    data.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no string at {pointer} in {data:#}"))
}

/// A store whose every operation fails, as if the backend were down.
pub struct BrokenStore;

impl KvStore for BrokenStore {
    fn get(&self, _: &Key) -> Result<Option<Vec<u8>>, StoreError> {
        Err(broken())
    }
    fn set(&self, _: &Key, _: &[u8]) -> Result<(), StoreError> {
        Err(broken())
    }
    fn delete(&self, _: &Key) -> Result<(), StoreError> {
        Err(broken())
    }
    fn exists(&self, _: &Key) -> Result<bool, StoreError> {
        Err(broken())
    }
    fn compare_and_swap(&self, _: &Key, _: Option<&[u8]>, _: &[u8]) -> Result<bool, StoreError> {
        Err(broken())
    }
    fn increment(&self, _: &Key, _: i64) -> Result<i64, StoreError> {
        Err(broken())
    }
}

fn broken() -> StoreError {
    StoreError::Backend("sqlite: disk I/O error at /var/lib/spin/kv.db".to_owned())
}
