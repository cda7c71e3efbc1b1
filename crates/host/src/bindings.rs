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
        "wasi:keyvalue/store.bucket": crate::wasi_keyvalue::BucketHandle,
        "wasi:keyvalue/atomics.cas": crate::wasi_keyvalue::CasHandle,
    },
});

pub use fermyon::spin::{key_value, variables};
pub use wasi::keyvalue::{atomics, batch, store as wasi_store};

/// The fully qualified names of the interfaces this module implements, so that the import
/// checker knows not to stub them.
pub const IMPLEMENTED_INTERFACES: &[&str] = &[
    "fermyon:spin/key-value@2.0.0",
    "fermyon:spin/variables@2.0.0",
    "wasi:keyvalue/store@0.2.0-draft2",
    "wasi:keyvalue/atomics@0.2.0-draft2",
    "wasi:keyvalue/batch@0.2.0-draft2",
];
