//! The subscriptions API through the real application: REST and JSON at `/subscriptions`,
//! served by the `dispatcher` component in eventplane's host.
//!
//! The application is started with [`Registry::start`] (the repository's `spin.toml` on a fresh
//! state directory); an [`Api`] client sends requests with the admin token and, when asked, a
//! `Tenant` header.

mod access;
mod by_cloud_event_id;
mod concurrency;
mod contract;
mod delivery;
mod lifecycle;
mod outcomes;
mod validation;

use anyhow::{Context as _, ensure};
use eventplane_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json as j};

use super::registry::ADMIN_TOKEN;

/// A client of the subscriptions API of one application, as one tenant with one token.
#[derive(Clone)]
pub(crate) struct Api {
    base: String,
    tenant: Option<String>,
    token: Option<String>,
    http: reqwest::Client,
}

/// A response: its status, `Location` and `WWW-Authenticate` headers, and its JSON body
/// (`Null` when the body is empty).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub www_authenticate: Option<String>,
    pub body: Value,
}

impl Answer {
    /// `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// The `field` of each of `error.details`.
    pub fn fields(&self) -> Vec<&str> {
        self.body["error"]["details"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|detail| detail["field"].as_str())
            .collect()
    }
}

impl Api {
    /// A client of `app`'s default tenant with the admin token.
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.url("/subscriptions"),
            tenant: None,
            token: Some(ADMIN_TOKEN.to_owned()),
            http: reqwest::Client::new(),
        }
    }

    /// The same client as `tenant` (sent as the `Tenant` header).
    pub fn as_tenant(&self, tenant: &str) -> Self {
        Self {
            tenant: Some(tenant.to_owned()),
            ..self.clone()
        }
    }

    /// The same client with bearer token `token` (none: no `Authorization` header).
    pub fn with_token(&self, token: Option<&str>) -> Self {
        Self {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    /// A request to `/subscriptions<path>` with the token and the tenant, without a body.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(tenant) = &self.tenant {
            request = request.header("Tenant", tenant);
        }
        request
    }

    /// Sends `request` and reads the answer.
    pub async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let response = request.send().await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let (location, www_authenticate) = (header("location"), header("www-authenticate"));
        let status = response.status().as_u16();
        let text = response.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .with_context(|| format!("status {status}, body is not JSON: {text:?}"))?
        };
        Ok(Answer {
            status,
            location,
            www_authenticate,
            body,
        })
    }

    /// `method /subscriptions<path>`, with `body` as JSON if given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let request = self.request(method, path);
        Self::send(match body {
            Some(body) => request.json(body),
            None => request,
        })
        .await
    }

    /// Creates a subscription from `body`, which must answer 201; the answer's body.
    pub async fn create(&self, body: &Value) -> anyhow::Result<Value> {
        let answer = self.call(Method::POST, "", Some(body)).await?;
        ensure!(answer.status == 201, "create answered {answer:?}");
        Ok(answer.body)
    }

    /// Creates the subscription [`subscription`]`(name)`; its id.
    pub async fn create_named(&self, name: &str) -> anyhow::Result<String> {
        let created = self.create(&subscription(name)).await?;
        id_of(&created)
    }

    /// `GET /subscriptions<query>`, which must answer 200; the page.
    pub async fn list(&self, query: &str) -> anyhow::Result<Value> {
        let answer = self.call(Method::GET, query, None).await?;
        ensure!(answer.status == 200, "list answered {answer:?}");
        Ok(answer.body)
    }
}

/// A valid subscription body named `name`: every event of the application `shop` to a
/// webhook.
pub(crate) fn subscription(name: &str) -> Value {
    j!({
        "name": name,
        "sink": {"url": "https://billing.example/hooks"},
        "filter": {"application": "shop"},
    })
}

/// The `id` of a subscription view.
pub(crate) fn id_of(view: &Value) -> anyhow::Result<String> {
    view["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no id in {view}"))
}

/// The ids of a list page's `data`.
pub(crate) fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|view| view["id"].as_str().map(str::to_owned))
        .collect()
}
