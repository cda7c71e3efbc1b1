//! A loaded application: its components compiled and pre-instantiated, its router, its
//! key-value data; and the handling of one request from route to response.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use bytes::Bytes;
use eventplane_manifest::outbound::AllowedHosts;
use eventplane_manifest::routes::{RouteMatch, Router};
use eventplane_manifest::variables::ResolvedVariables;
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::{BodyExt as _, Full};
use wasmtime::component::Linker;
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::durable_body::DurableBody;
use crate::runtime_config::{self, DEFAULT_LABEL, RuntimeConfig, StoreConfig};
use crate::state::HostState;
use crate::stores::{StoreLocation, Stores};
use crate::timings::{Sample, Timings};

/// The client address Spin reports for service-chained and self requests.
const CHAINED_CLIENT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// One component, ready to be instantiated for a request.
pub(crate) struct ComponentRuntime {
    pub(crate) id: String,
    pub(crate) key_value_stores: HashSet<String>,
    /// The application's resolved variables; the component reads its own through them.
    pub(crate) variables: Arc<ResolvedVariables>,
    pub(crate) allowed_hosts: AllowedHosts,
    pub(crate) environment: Vec<(String, String)>,
    /// The component linked as an HTTP component; `None` for a component only the MQTT
    /// trigger calls.
    pre: Option<ProxyPre<HostState>>,
}

/// The running application, shared by every request.
pub(crate) struct AppRuntime {
    /// What `/.well-known/spin/info` answers.
    info: String,
    engine: Engine,
    components: HashMap<String, Arc<ComponentRuntime>>,
    pub(crate) router: Router,
    /// The key-value stores, by label.
    pub(crate) stores: Arc<Stores>,
    /// `host:port` the application is served on, for self requests and `spin-full-url`.
    authority: OnceLock<String>,
    /// Idle outbound `http://` connections, shared by all components (Spin's connection pool).
    pub(crate) connections: Arc<crate::pool::ConnectionPool>,
    /// Request timings, when `EVENTPLANE_TIMINGS` asks for them.
    timings: Option<Arc<Timings>>,
    /// Whether the manifest has `[[trigger.http]]` entries.
    has_http_triggers: bool,
    /// The MQTT triggers, if the application has any.
    pub(crate) mqtt: Option<Arc<crate::mqtt_trigger::MqttTriggers>>,
    /// Outbound MQTT connections, shared by all instances.
    pub(crate) mqtt_connections: Arc<crate::mqtt_outbound::Connections>,
}

/// What it takes to load an application.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Path of the `spin.toml`.
    pub manifest: PathBuf,
    /// Where the key-value database of `default` lives; default `.spin` beside the manifest (or
    /// the runtime config file's `state_dir`), as Spin.
    pub state_dir: Option<PathBuf>,
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// The environment `SPIN_VARIABLE_*` overrides are read from.
    pub env: HashMap<String, String>,
    /// Run each component's build command first (`spin build`).
    pub build: bool,
    /// Spin's runtime config file (`--runtime-config-file`): where the key-value stores live.
    /// `None`: only `default`, in the state directory.
    pub runtime_config_file: Option<PathBuf>,
}

impl LoadOptions {
    /// Options for `manifest` with the process environment and the default cache.
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        Self {
            manifest: manifest.into(),
            state_dir: None,
            cache_dir: crate::engine::default_cache_dir(),
            env: std::env::vars().collect(),
            build: false,
            runtime_config_file: None,
        }
    }
}

impl AppRuntime {
    /// Loads, validates, (optionally) builds and compiles the application.
    pub(crate) fn load(opts: &LoadOptions) -> anyhow::Result<(Arc<Self>, Vec<String>)> {
        let manifest_path = &opts.manifest;
        let manifest = eventplane_manifest::load(manifest_path)
            .with_context(|| format!("invalid manifest {}", manifest_path.display()))?;
        let manifest_dir = manifest_path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        if opts.build {
            crate::build_cmd::build_all(&manifest, &manifest_dir)?;
        }
        eventplane_manifest::check_sources(&manifest)?;
        let timings = Timings::from_env(&opts.env)?;
        let variables = Arc::new(eventplane_manifest::variables::resolve(
            &manifest, &opts.env,
        )?);
        let (router, route_warnings) = Router::from_manifest(&manifest)?;
        let mut warnings = manifest.warnings.clone();
        warnings.extend(route_warnings);
        for warning in &warnings {
            tracing::warn!("{warning}");
        }

        let stores = Arc::new(open_stores(opts, &manifest, &manifest_dir)?);

        let engine = crate::engine::new_engine()?;
        let http_linker = base_linker(&engine)?;
        // A component HTTP triggers route to must be an HTTP component; one only MQTT
        // triggers call is compiled for the trigger engine alone; one no trigger uses is
        // linked as an HTTP component when it is one (service chaining can reach it).
        let routed: HashSet<&str> = manifest
            .http_triggers
            .iter()
            .map(|t| t.component.as_str())
            .collect();
        let mqtt_called: HashSet<&str> = manifest
            .mqtt_triggers
            .iter()
            .map(|t| t.component.as_str())
            .collect();

        let mut components = HashMap::new();
        for spec in &manifest.components {
            let id = spec.id.as_str();
            let cache_dir = opts.cache_dir.as_deref();
            let pre = if routed.contains(id) {
                Some(link_http(&engine, &http_linker, spec, cache_dir)?)
            } else if mqtt_called.contains(id) {
                None
            } else {
                match link_http(&engine, &http_linker, spec, cache_dir) {
                    Ok(pre) => Some(pre),
                    Err(e) => {
                        warnings.push(format!(
                            "component {id:?} is used by no trigger and is not an HTTP component ({e:#}); service chaining to it will fail"
                        ));
                        None
                    }
                }
            };
            let allowed_hosts = match AllowedHosts::for_component(&manifest, &variables, &spec.id) {
                Ok(hosts) => hosts,
                Err(e) => {
                    // Spin starts, then refuses every outbound request of such a component.
                    let warning = format!(
                        "component {:?}: allowed_outbound_hosts cannot be resolved ({e}); all its outbound requests will be denied",
                        spec.id
                    );
                    warnings.push(warning);
                    AllowedHosts::default()
                }
            };
            components.insert(
                spec.id.clone(),
                Arc::new(ComponentRuntime {
                    id: spec.id.clone(),
                    key_value_stores: spec.key_value_stores.iter().cloned().collect(),
                    variables: variables.clone(),
                    allowed_hosts,
                    environment: spec.environment.clone(),
                    pre,
                }),
            );
        }

        let mqtt = crate::mqtt_trigger::MqttTriggers::load(
            &manifest,
            &variables,
            &components,
            base_linker,
            opts.cache_dir.as_deref(),
        )?
        .map(Arc::new);

        let app = Arc::new(Self {
            info: manifest.app_info_json(),
            engine,
            components,
            router,
            stores,
            authority: OnceLock::new(),
            connections: Arc::default(),
            timings,
            has_http_triggers: !manifest.http_triggers.is_empty(),
            mqtt,
            mqtt_connections: Arc::default(),
        });
        Ok((app, warnings))
    }

    /// `(label, where its data lives)` for every key-value store.
    pub(crate) fn stores(&self) -> Vec<(String, String)> {
        self.stores.descriptions().to_vec()
    }

    /// The request timings, if `EVENTPLANE_TIMINGS` asked for them.
    pub(crate) fn timings(&self) -> Option<&Arc<Timings>> {
        self.timings.as_ref()
    }

    pub(crate) fn set_authority(&self, authority: String) {
        let _ = self.authority.set(authority);
    }

    pub(crate) fn self_authority(&self) -> String {
        self.authority
            .get()
            .cloned()
            .unwrap_or_else(|| "localhost".to_string())
    }

    /// Whether `id` is a component that HTTP requests can reach (by service chaining).
    pub(crate) fn has_http_component(&self, id: &str) -> bool {
        self.components.get(id).is_some_and(|c| c.pre.is_some())
    }

    /// Whether the manifest has `[[trigger.http]]` entries.
    pub(crate) fn has_http_triggers(&self) -> bool {
        self.has_http_triggers
    }

    /// Handles a request that arrived over the network.
    pub(crate) async fn handle_incoming<B>(
        self: &Arc<Self>,
        req: http::Request<B>,
        client_addr: SocketAddr,
    ) -> http::Response<HyperOutgoingBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let path = req.uri().path().to_string();
        if let Some(well_known) = path.strip_prefix("/.well-known/spin/") {
            return self.well_known(well_known);
        }
        match self.router.route(&path) {
            Some(route_match) => self.invoke(req, route_match, client_addr).await,
            None => empty(StatusCode::NOT_FOUND),
        }
    }

    /// Handles a service-chained request (`Some(component)`) or a self request (`None`).
    pub(crate) async fn handle_chained<B>(
        self: &Arc<Self>,
        req: http::Request<B>,
        component: Option<&str>,
    ) -> http::Response<HyperOutgoingBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let route_match = match component {
            Some(id) => RouteMatch::synthetic(id, req.uri().path()),
            None => match self.router.route(req.uri().path()) {
                Some(m) => m,
                None => return empty(StatusCode::NOT_FOUND),
            },
        };
        self.invoke(req, route_match, CHAINED_CLIENT_ADDR).await
    }

    fn well_known(&self, what: &str) -> http::Response<HyperOutgoingBody> {
        match what {
            "health" => full(StatusCode::OK, "text/plain", Bytes::from_static(b"OK")),
            "info" => full(
                StatusCode::OK,
                "application/json",
                Bytes::from(self.info.clone()),
            ),
            _ => empty(StatusCode::NOT_FOUND),
        }
    }

    async fn invoke<B>(
        self: &Arc<Self>,
        mut req: http::Request<B>,
        route_match: RouteMatch,
        client_addr: SocketAddr,
    ) -> http::Response<HyperOutgoingBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let Some(component) = self.components.get(&route_match.component_id).cloned() else {
            tracing::error!(
                "route {} names unknown component {}",
                route_match.raw_route,
                route_match.component_id
            );
            return empty(StatusCode::INTERNAL_SERVER_ERROR);
        };
        if let Err(e) = self.prepare_request(&mut req, &route_match, client_addr) {
            tracing::info!("bad request: {e:#}");
            return empty(StatusCode::BAD_REQUEST);
        }
        match self.call(&component, req).await {
            Ok(response) => response,
            Err(e)
                if e.chain()
                    .any(|cause| cause.is::<wasmtime::PoolConcurrencyLimitError>()) =>
            {
                tracing::warn!(component = %component.id, "refused: {e}");
                overloaded()
            }
            Err(e) => {
                tracing::error!(component = %component.id, "request failed: {e:?}");
                empty(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    /// Gives the request an absolute URI and the spin-* headers, as Spin's HTTP trigger does:
    /// the authority comes from the URI or the `Host` header; `spin-full-url` is built from the
    /// `Host` header, or `localhost` when there is none (service-chained requests).
    fn prepare_request<B>(
        &self,
        req: &mut http::Request<B>,
        route_match: &RouteMatch,
        client_addr: SocketAddr,
    ) -> anyhow::Result<()> {
        let host_header = match req.headers().get(http::header::HOST) {
            Some(h) => Some(
                h.to_str()
                    .context("'Host' header is not valid UTF-8")?
                    .to_string(),
            ),
            None => None,
        };
        let authority = match (&host_header, req.uri().authority()) {
            (Some(h), None) => h.clone(),
            (None, Some(a)) => a.to_string(),
            (Some(h), Some(a)) if h == a.as_str() => h.clone(),
            (Some(_), Some(_)) => {
                anyhow::bail!("authority in 'Host' header does not match authority in URI")
            }
            (None, None) => anyhow::bail!("no 'Host' header present in request"),
        };
        let path_and_query = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        *req.uri_mut() = format!("http://{authority}{path_and_query}")
            .parse()
            .context("invalid request URI")?;
        let full_url = format!(
            "http://{}{path_and_query}",
            host_header.as_deref().unwrap_or("localhost")
        );
        let headers = req.headers_mut();
        // Transport information only meaningful to the server itself.
        headers.remove(http::header::CONNECTION);
        for (name, value) in route_match.spin_headers(&full_url, client_addr) {
            // Spin silently skips a header whose value is not valid (e.g. a non-ASCII path).
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.insert(name, value);
            }
        }
        Ok(())
    }

    async fn call<B>(
        self: &Arc<Self>,
        component: &Arc<ComponentRuntime>,
        req: http::Request<B>,
    ) -> anyhow::Result<http::Response<HyperOutgoingBody>>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let started = std::time::Instant::now();
        let mut store = Store::new(&self.engine, HostState::new(self, component));
        let kv = store.data().kv.clone();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let outparam = store.data_mut().http().new_response_outparam(sender)?;
        let Some(pre) = component.pre.clone() else {
            anyhow::bail!("component {:?} is not an HTTP component", component.id);
        };
        let mut guest = Box::pin(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
        });
        let mut receiver = receiver;
        // The guest runs on this task until it has sent the response head (no hop to another
        // worker thread on the common path); if it keeps running after that (streaming a body),
        // it finishes on a task of its own while the response is sent.
        let response = tokio::select! {
            biased;
            head = &mut receiver => {
                let id = component.id.clone();
                tokio::spawn(async move {
                    if let Err(e) = guest.await {
                        tracing::warn!(component = %id, "failed after sending its response head: {e:?}");
                    }
                });
                match head {
                    Ok(Ok(response)) => Ok(response),
                    Ok(Err(code)) => anyhow::bail!("the component answered with an error: {code:?}"),
                    Err(_) => anyhow::bail!("the component dropped its response"),
                }
            }
            outcome = &mut guest => match receiver.await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(code)) => anyhow::bail!("the component answered with an error: {code:?}"),
                Err(_) => match outcome {
                    Ok(()) => anyhow::bail!("the component returned without sending a response"),
                    Err(e) => Err(anyhow::Error::from(e)
                        .context("the component failed before sending a response")),
                },
            },
        }?;
        let head = started.elapsed();
        // The response shows what the instance has seen: not before it is on disk (kv_store
        // docs). Later body frames wait for whatever the instance saw meanwhile.
        if let Err(e) = kv.durable().await {
            tracing::error!(component = %component.id, "response held back: {e}");
            return Ok(storage_failed());
        }
        if let Some(timings) = &self.timings {
            let sample = Sample {
                head,
                writes: kv.write_wait(),
                durable: started.elapsed().saturating_sub(head),
                ops: kv.op_counts(),
            };
            timings.record(&component.id, sample);
        }
        Ok(response.map(|body| DurableBody::new(body, kv).boxed_unsync()))
    }

    /// `(route, component id)` for every public route, in routing table order.
    pub(crate) fn routes(&self) -> Vec<(String, String)> {
        self.router
            .routes()
            .map(|(route, id)| (route.to_string(), id.to_string()))
            .collect()
    }
}

/// A linker with every import the host gives a component (WASI, outbound HTTP, Spin's
/// interfaces), for components compiled on `engine`.
pub(crate) fn base_linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::<HostState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::bindings::SpinPlatform::add_to_linker::<
        HostState,
        wasmtime::component::HasSelf<HostState>,
    >(&mut linker, |state| state)?;
    Ok(linker)
}

/// Compiles `spec` for the HTTP engine and links it as an HTTP component.
fn link_http(
    engine: &Engine,
    base_linker: &Linker<HostState>,
    spec: &eventplane_manifest::Component,
    cache_dir: Option<&Path>,
) -> anyhow::Result<ProxyPre<HostState>> {
    let component = crate::engine::load_component(engine, &spec.source, cache_dir)?;
    let mut linker = base_linker.clone();
    let stubbed = crate::traps::stub_unimplemented_imports(engine, &mut linker, &component)?;
    if !stubbed.is_empty() {
        tracing::info!(component = %spec.id, "imports not provided by eventplane (calls trap): {}", stubbed.join(", "));
    }
    linker
        .instantiate_pre(&component)
        .and_then(ProxyPre::new)
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!(
                "component {:?} cannot be linked as an HTTP component",
                spec.id
            )
        })
}

/// Opens the application's key-value stores: `default` (in the state directory unless the
/// runtime config file says otherwise) and each label the runtime config file defines. Every
/// label a component lists must be one of them, and every label the file defines must be used
/// (module docs of [`crate::runtime_config`]).
fn open_stores(
    opts: &LoadOptions,
    manifest: &eventplane_manifest::Manifest,
    manifest_dir: &Path,
) -> anyhow::Result<Stores> {
    let config = match &opts.runtime_config_file {
        Some(path) => Some(RuntimeConfig::load(path)?),
        None => None,
    };
    let used: BTreeSet<String> = manifest
        .components
        .iter()
        .flat_map(|c| c.key_value_stores.iter().cloned())
        .collect();
    if let Some(config) = &config {
        config.check_used(&used, &opts.manifest)?;
    }
    let mut locations: Vec<(String, StoreLocation)> = Vec::new();
    if let Some(config) = &config {
        for (label, store) in config.stores() {
            locations.push((
                label.clone(),
                match store {
                    StoreConfig::Spin { path } => StoreLocation::Sqlite(path.clone()),
                    StoreConfig::Redis { url } => StoreLocation::Redis(url.clone()),
                },
            ));
        }
    }
    if !locations.iter().any(|(label, _)| label == DEFAULT_LABEL) {
        let default = runtime_config::default_location(
            opts.state_dir.as_deref(),
            config.as_ref(),
            manifest_dir,
        );
        locations.push((DEFAULT_LABEL.to_owned(), default));
    }
    for spec in &manifest.components {
        for label in &spec.key_value_stores {
            if !locations.iter().any(|(defined, _)| defined == label) {
                let hint = match &config {
                    Some(config) => format!(
                        "the runtime config file {} has no [key_value_store.{label}]",
                        config.path().display()
                    ),
                    None => format!(
                        "only \"{DEFAULT_LABEL}\" exists without a runtime config file (--runtime-config-file)"
                    ),
                };
                anyhow::bail!(
                    "unknown key_value_stores label {label:?} for component {:?}: {hint}",
                    spec.id
                );
            }
        }
    }
    Stores::open(&locations, |label, e| match &config {
        Some(config) if config.stores().contains_key(label) => config.table_error(label, e),
        _ => e.context(format!("key-value store {label:?}")),
    })
}

/// The answer when every instance slot is taken (more than
/// [`MAX_CONCURRENT_INSTANCES`](crate::engine::MAX_CONCURRENT_INSTANCES) requests at once): `503`
/// with `Retry-After: 1`, so that clients back off instead of seeing a server error.
fn overloaded() -> http::Response<HyperOutgoingBody> {
    unavailable(
        "OVERLOADED",
        &format!(
            "the server is handling its maximum of {} requests at once; retry shortly",
            crate::engine::MAX_CONCURRENT_INSTANCES
        ),
    )
}

/// The answer when the instance's writes cannot be made durable: `503`, since a `2xx` would
/// confirm what a crash could still lose.
fn storage_failed() -> http::Response<HyperOutgoingBody> {
    unavailable(
        "STORE_UNAVAILABLE",
        "the key-value store cannot make writes durable; the request's outcome is unknown",
    )
}

/// A `503` in the platform's error shape, with `Retry-After: 1`.
fn unavailable(code: &str, message: &str) -> http::Response<HyperOutgoingBody> {
    let body = serde_json::json!({"error": {"code": code, "message": message, "details": []}});
    let mut response = full(
        StatusCode::SERVICE_UNAVAILABLE,
        "application/json",
        Bytes::from(body.to_string()),
    );
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    response
}

fn empty(status: StatusCode) -> http::Response<HyperOutgoingBody> {
    let mut response = http::Response::new(
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}

fn full(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> http::Response<HyperOutgoingBody> {
    let mut response = http::Response::new(
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body and headers of a `503` the host answers itself.
    async fn unavailable_answer(
        response: http::Response<HyperOutgoingBody>,
    ) -> anyhow::Result<serde_json::Value> {
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "1");
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
        let body = response.into_body().collect().await?.to_bytes();
        Ok(serde_json::from_slice(&body)?)
    }

    /// Both answers the host gives when it cannot serve a request are `503`s in the
    /// platform's error shape, with `Retry-After`, and name their cause.
    #[tokio::test]
    async fn the_hosts_own_503s_say_why_and_when_to_retry() -> anyhow::Result<()> {
        let overloaded = unavailable_answer(overloaded()).await?;
        assert_eq!(overloaded["error"]["code"], "OVERLOADED");
        let message = overloaded["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&crate::engine::MAX_CONCURRENT_INSTANCES.to_string()),
            "{message}"
        );
        assert_eq!(overloaded["error"]["details"], serde_json::json!([]));

        let failed = unavailable_answer(storage_failed()).await?;
        assert_eq!(failed["error"]["code"], "STORE_UNAVAILABLE");
        assert!(
            failed["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("durable")),
            "{failed}"
        );
        assert_eq!(failed["error"]["details"], serde_json::json!([]));
        Ok(())
    }
}
