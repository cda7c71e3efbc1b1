//! Host-side bindings for the Spin interfaces in the project's `wit/` tree, generated once here.
//!
//! Every import is `trappable`: a host function returns `wasmtime::Result` so that a host
//! failure (a bug, a poisoned table) traps the guest instead of being dressed up as a WIT error.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "eventplane:host/spin-platform",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/key-value.store": crate::key_value::StoreHandle,
        "fermyon:spin/mqtt.connection": crate::mqtt_outbound::ConnectionHandle,
        "wasi:keyvalue/store.bucket": crate::wasi_keyvalue::BucketHandle,
        "wasi:keyvalue/atomics.cas": crate::wasi_keyvalue::CasHandle,
    },
});

pub use fermyon::spin::{key_value, mqtt, variables};
pub use wasi::keyvalue::{atomics, batch, store as wasi_store};

/// The fully qualified names of the interfaces this module implements, so that the import
/// checker knows not to stub them.
pub const IMPLEMENTED_INTERFACES: &[&str] = &[
    "fermyon:spin/key-value@2.0.0",
    "fermyon:spin/variables@2.0.0",
    "fermyon:spin/mqtt@2.0.0",
    "wasi:keyvalue/store@0.2.0-draft2",
    "wasi:keyvalue/atomics@0.2.0-draft2",
    "wasi:keyvalue/batch@0.2.0-draft2",
];

/// Host-side bindings for Spin's MQTT trigger: the `handle-message` export of
/// `spin:mqtt-trigger/spin-mqtt` (the project's `wit/mqtt-trigger`), an `async func` called
/// with `run_concurrent` on the trigger's engine ([`crate::engine::new_trigger_engine`]).
pub mod mqtt_trigger {
    wasmtime::component::bindgen!({
        path: "../../wit/mqtt-trigger",
        world: "spin:mqtt-trigger/spin-mqtt",
    });
}
