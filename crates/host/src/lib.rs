//! `eventplane-host`: runs a Spin application (a `spin.toml` and its WebAssembly components)
//! on wasmtime, with Spin's semantics, where the Spin CLI is not installed.
//!
//! It implements what eventplane's components use — HTTP triggers with Spin's routing and
//! `spin-*` headers, `wasi:http` outbound requests with `allowed_outbound_hosts` and service
//! chaining, key-value stores (in Spin's SQLite file, or on Redis with Spin's runtime config
//! file: `--runtime-config-file`), application variables — plus Spin's MQTT trigger (the
//! `trigger-mqtt` plugin's `[[trigger.mqtt]]`, see `mqtt_trigger`) and outbound MQTT
//! (`fermyon:spin/mqtt`), and stubs the rest of Spin's interfaces with traps that name them.
//! The host knows nothing of eventplane's domain: it runs any Spin application within those
//! interfaces.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use eventplane_host::{Application, LoadOptions};
//! let app = Application::load(LoadOptions::new("spin.toml"))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! app.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

mod app;
mod bindings;
mod build_cmd;
pub mod cli;
mod durable_body;
mod engine;
mod key_value;
mod kv_store;
mod mqtt_common;
mod mqtt_outbound;
mod mqtt_trigger;
mod outbound;
mod pool;
mod redis_kv;
mod runtime_config;
mod server;
mod state;
mod stores;
mod timings;
mod traps;
mod variables;
mod wasi_keyvalue;

use std::future::Future;
use std::sync::Arc;

pub use app::LoadOptions;
pub use engine::{MAX_CONCURRENT_INSTANCES, default_cache_dir};
pub use kv_store::DB_FILE_NAME;
pub use mqtt_trigger::{MESSAGE_TIMEOUT, MqttSubscription};

/// A loaded application, ready to serve.
pub struct Application {
    runtime: Arc<app::AppRuntime>,
    warnings: Vec<String>,
}

impl Application {
    /// Reads and validates the manifest, runs the build commands if asked, resolves variables,
    /// reads the runtime config file if any, opens the key-value stores (a Redis server must
    /// answer) and compiles every component. Any problem Spin would refuse to start with, and
    /// anything in the runtime config file eventplane up cannot honour, is an error here, with
    /// a message naming what is wrong.
    pub fn load(opts: LoadOptions) -> anyhow::Result<Self> {
        let (runtime, warnings) = app::AppRuntime::load(&opts)?;
        Ok(Self { runtime, warnings })
    }

    /// Warnings found while loading (for example duplicate routes, where the last one wins).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// `(label, where its data lives)` for every key-value store the application has, by
    /// label: e.g. `("default", "SQLite /app/.spin/sqlite_key_value.db")`.
    pub fn stores(&self) -> Vec<(String, String)> {
        self.runtime.stores()
    }

    /// `(route, component id)` for every public route.
    pub fn routes(&self) -> Vec<(String, String)> {
        self.runtime.routes()
    }

    /// Whether the manifest has `[[trigger.http]]` entries.
    pub fn has_http_triggers(&self) -> bool {
        self.runtime.has_http_triggers()
    }

    /// The MQTT broker (`mqtt://host:port`) and what each `[[trigger.mqtt]]` entry subscribes
    /// to; `None` when the application has no MQTT triggers.
    pub fn mqtt_triggers(&self) -> Option<(String, Vec<MqttSubscription>)> {
        self.runtime
            .mqtt
            .as_ref()
            .map(|mqtt| (mqtt.broker(), mqtt.subscriptions()))
    }

    /// Serves the application on `listener`, and runs its MQTT triggers, until `shutdown`
    /// completes; then waits for the requests and messages in flight.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        self.run(Some(listener), shutdown).await
    }

    /// Runs the application until `shutdown` completes: serves HTTP on `listener` when there
    /// is one, and runs the MQTT triggers (each connecting, and reconnecting, by itself: a
    /// broker that is down never stops the HTTP server). Then waits for the requests and
    /// messages in flight.
    pub async fn run(
        self,
        listener: Option<tokio::net::TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mqtt = tokio::spawn(mqtt_trigger::run(self.runtime.clone(), stopped.clone()));
        let runtime = self.runtime;
        let http = async move {
            let mut stopped = stopped;
            let stop_serving = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            let Some(listener) = listener else {
                stop_serving.await;
                return Ok(());
            };
            runtime.set_authority(listener.local_addr()?.to_string());
            if let Some(timings) = runtime.timings() {
                timings::report_on_signal(timings.clone())?;
            }
            server::serve(runtime, listener, stop_serving).await
        };
        let mut http = std::pin::pin!(http);
        let served = tokio::select! {
            // Serving ended by itself: an error.
            served = &mut http => served,
            () = shutdown => {
                stop.send_replace(true);
                http.await
            }
        };
        stop.send_replace(true);
        if let Err(e) = mqtt.await {
            tracing::error!("the MQTT triggers stopped abnormally: {e}");
        }
        served
    }
}

/// Runs every component's build command from the manifest at `manifest` (`spin build`).
pub fn build(manifest: &std::path::Path) -> anyhow::Result<()> {
    let parsed = eventplane_manifest::load(manifest)?;
    let dir = manifest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    build_cmd::build_all(&parsed, dir)
}
