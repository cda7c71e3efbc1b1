//! The state of one component instance: one per request, dropped with the response.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::app::{AppRuntime, ComponentRuntime};
use crate::outbound::OutboundHooks;
use crate::stores::StoreSession;

/// How many key-value stores one instance may hold open at once (`store-table-full` past it).
pub const MAX_OPEN_STORES: usize = 256;

/// Everything the host functions of one instance can reach.
pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) hooks: OutboundHooks,
    pub(crate) component: Arc<ComponentRuntime>,
    /// The instance's key-value session: what it has seen is made durable before it is shown.
    pub(crate) kv: StoreSession,
    pub(crate) open_stores: usize,
    /// The host's outbound MQTT connections (`fermyon:spin/mqtt`).
    pub(crate) mqtt: Arc<crate::mqtt_outbound::Connections>,
}

impl HostState {
    /// State for a new instance of `component`.
    pub(crate) fn new(app: &Arc<AppRuntime>, component: &Arc<ComponentRuntime>) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr();
        for (k, v) in &component.environment {
            wasi.env(k, v);
        }
        // Outbound traffic goes through wasi:http, where allowed_outbound_hosts is enforced;
        // raw sockets are not offered.
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        // Writes are timed only when the application reports timings (crate::timings).
        let kv = if app.timings().is_some() {
            StoreSession::timed(&app.stores)
        } else {
            StoreSession::new(&app.stores)
        };
        Self {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks::new(app.clone(), component.clone(), kv.clone()),
            component: component.clone(),
            kv,
            open_stores: 0,
            mqtt: app.mqtt_connections.clone(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
