//! The registration API (issue 3) through the real application: GraphQL over HTTP at
//! `/graphql`, served by the `registry` component in eventplane's host.
//!
//! [`Registry::start`] runs the repository's `spin.toml` on a fresh state directory; [`Gql`]
//! posts GraphQL requests with the admin token and, when asked, a `Tenant` header.

mod applications;
mod concurrency;
mod credentials;
mod event_apis;
mod fetching;
mod limits;
mod pagination;
mod specs;
mod tenancy;
mod transport;
mod validation;
mod webhooks;

use anyhow::{Context as _, bail};
use eventplane_tests::{TestApp, json, workspace_root};
use serde_json::{Value, json as j};

/// The admin token every test application is started with.
pub(crate) const ADMIN_TOKEN: &str = "test-admin-token";

/// The real application on a fresh key-value store.
pub(crate) struct Registry {
    pub app: TestApp,
    _state: tempfile::TempDir,
}

impl Registry {
    /// Starts the application with the admin token and webhooks allowed to loopback servers.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&[]).await
    }

    /// Like [`start`](Self::start), with more `SPIN_VARIABLE_*` environment.
    pub async fn start_with(env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let state = tempfile::tempdir()?;
        let app = Self::builder(state.path(), env).start().await?;
        Ok(Self { app, _state: state })
    }

    /// Like [`start_with`](Self::start_with), on the state directory `state` (kept by the
    /// caller, e.g. to look at the store afterwards).
    pub async fn start_in(state: &std::path::Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let app = Self::builder(state, env).start().await?;
        Ok(Self {
            app,
            _state: tempfile::tempdir()?,
        })
    }

    /// Like [`start_with`](Self::start_with), from the repository's manifest `manifest` (e.g.
    /// `spin-mqtt.toml`) instead of `spin.toml`, with the runtime config file `runtime_config`
    /// if given.
    pub async fn start_from(
        manifest: &str,
        env: &[(&str, &str)],
        runtime_config: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let state = tempfile::tempdir()?;
        let mut builder = Self::builder_from(manifest, state.path(), env);
        if let Some(config) = runtime_config {
            builder = builder.runtime_config(config);
        }
        let app = builder.start().await?;
        Ok(Self { app, _state: state })
    }

    fn builder(state: &std::path::Path, env: &[(&str, &str)]) -> eventplane_tests::TestAppBuilder {
        Self::builder_from("spin.toml", state, env)
    }

    fn builder_from(
        manifest: &str,
        state: &std::path::Path,
        env: &[(&str, &str)],
    ) -> eventplane_tests::TestAppBuilder {
        let mut builder = TestApp::builder(&workspace_root().join(manifest))
            .state_dir(state)
            .env("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("SPIN_VARIABLE_WEBHOOK_ALLOWED_HOSTS", "http://127.0.0.1:*");
        for (key, value) in env {
            builder = builder.env(key, value);
        }
        builder
    }

    /// A client of the default tenant.
    pub fn gql(&self) -> Gql {
        Gql::new(&self.app)
    }

    /// A client of `tenant` (sent as the `Tenant` header).
    pub fn gql_as(&self, tenant: &str) -> Gql {
        Gql {
            tenant: Some(tenant.to_owned()),
            ..self.gql()
        }
    }

    /// `http://127.0.0.1:<port>/graphql`.
    pub fn endpoint(&self) -> String {
        self.app.url("/graphql")
    }

    /// Stops the application.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.app.stop().await
    }
}

/// POSTs `{query, variables}` to `/graphql` of `app` with the admin token; the status and the
/// JSON body.
pub(crate) async fn gql(
    app: &TestApp,
    query: &str,
    variables: Value,
) -> anyhow::Result<(u16, Value)> {
    Gql::new(app).post(query, variables).await
}

/// A GraphQL client of one application and tenant. Cheap to clone into concurrent tasks.
#[derive(Clone)]
pub(crate) struct Gql {
    endpoint: String,
    tenant: Option<String>,
    http: reqwest::Client,
}

impl Gql {
    /// A client of `app`'s default tenant.
    pub fn new(app: &TestApp) -> Self {
        Self {
            endpoint: app.url("/graphql"),
            tenant: None,
            http: reqwest::Client::new(),
        }
    }

    /// A POST to `/graphql` with the admin token and the tenant, without a body yet.
    pub fn request(&self) -> reqwest::RequestBuilder {
        let request = self.http.post(&self.endpoint).bearer_auth(ADMIN_TOKEN);
        match &self.tenant {
            Some(tenant) => request.header("Tenant", tenant),
            None => request,
        }
    }

    /// Runs `query` with `variables`; the status and the whole JSON body.
    pub async fn post(&self, query: &str, variables: Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .request()
            .json(&j!({"query": query, "variables": variables}))
            .send()
            .await?;
        json(response).await
    }

    /// Runs `query`, which must answer 200 without errors; its `data`.
    pub async fn ok(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let (status, body) = self.post(query, variables).await?;
        if status != 200 || body.get("errors").is_some() {
            bail!("expected 200 without errors, got {status}: {body:#}\nquery: {query}");
        }
        body.get("data").cloned().context("no data")
    }

    /// Runs `query`, which must answer 200 with exactly one error; that error.
    pub async fn error(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let (status, body) = self.post(query, variables).await?;
        anyhow::ensure!(status == 200, "expected 200, got {status}: {body:#}");
        match body["errors"].as_array().map(Vec::as_slice) {
            Some([error]) => Ok(error.clone()),
            _ => bail!("expected exactly one error, got {body:#}\nquery: {query}"),
        }
    }

    /// Runs `query`, which must fail with one error; its `extensions.code`.
    pub async fn error_code(&self, query: &str, variables: Value) -> anyhow::Result<String> {
        let error = self.error(query, variables).await?;
        error["extensions"]["code"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no extensions.code in {error:#}"))
    }

    /// Creates an application from `input` (an `ApplicationInput`); its id.
    pub async fn create_app(&self, input: Value) -> anyhow::Result<String> {
        let data = self
            .ok(
                "mutation($in: ApplicationInput!) { createApplication(in: $in) { id } }",
                j!({ "in": input }),
            )
            .await?;
        string_at(&data, "/createApplication/id")
    }

    /// Adds the event API `input` (an `EventAPIDefinitionInput`) to `app`; its id.
    pub async fn add_api(&self, app: &str, input: Value) -> anyhow::Result<String> {
        let data = self
            .ok(
                "mutation($app: ID!, $in: EventAPIDefinitionInput!) {
                    addEventAPI(applicationID: $app, in: $in) { id } }",
                j!({"app": app, "in": input}),
            )
            .await?;
        string_at(&data, "/addEventAPI/id")
    }

    /// How many event APIs `app` has.
    pub async fn api_count(&self, app: &str) -> anyhow::Result<i64> {
        let data = self
            .ok(
                "query($id: ID!) { application(id: $id) { eventAPIs { totalCount } } }",
                j!({ "id": app }),
            )
            .await?;
        data["application"]["eventAPIs"]["totalCount"]
            .as_i64()
            .with_context(|| format!("no totalCount in {data}"))
    }
}

/// A small valid AsyncAPI 2.6 document (YAML) with one event type, `order.created.v1`.
pub(crate) const SHOP_SPEC: &str = r#"
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

/// An `EventAPIDefinitionInput` with the inline spec `spec`.
pub(crate) fn api_input(name: &str, spec: &str) -> Value {
    j!({"name": name, "spec": {"data": spec, "eventSpecType": "ASYNC_API"}})
}

/// The text of `crates/spec/tests/fixtures/<name>`, the real-world-shaped AsyncAPI documents.
pub(crate) fn fixture(name: &str) -> anyhow::Result<String> {
    let path = workspace_root()
        .join("crates/spec/tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// The string at JSON pointer `pointer` of `value`.
pub(crate) fn string_at(value: &Value, pointer: &str) -> anyhow::Result<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no string at {pointer} in {value:#}"))
}

/// The `extensions.code` of the only error of a transport-level error body
/// (`{"errors": [{"message", "extensions": {"code"}}]}`).
pub(crate) fn only_code(body: &Value) -> Option<&str> {
    match body["errors"].as_array().map(Vec::as_slice) {
        Some([error]) if error["message"].is_string() => error["extensions"]["code"].as_str(),
        _ => None,
    }
}

/// The strings at `field` of every element of the array `list`.
pub(crate) fn strings(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item[field].as_str().map(str::to_owned))
        .collect()
}
