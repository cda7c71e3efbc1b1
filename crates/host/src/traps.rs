//! Stubs for the imports this host does not implement.
//!
//! A component built with spin-sdk may import Spin interfaces that eventplane's host does not
//! provide (SQLite, Redis, MQTT, LLM, ...). Like Spin with a factor missing, the component still
//! loads; calling such a function traps with a message naming the interface and function, so
//! the failure is obvious in the log rather than a link error at start-up. WASI imports are left
//! alone: they are all provided by wasmtime-wasi and wasmtime-wasi-http.

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceType};

use crate::bindings::IMPLEMENTED_INTERFACES;

/// The resource type given to imported resources of unimplemented interfaces.
struct Unimplemented;

/// Defines a trapping stub in `linker` for every function of every imported interface of
/// `component` that is neither WASI nor implemented by this host. Returns the stubbed
/// interface names.
pub fn stub_unimplemented_imports<T: 'static>(
    engine: &Engine,
    linker: &mut Linker<T>,
    component: &Component,
) -> anyhow::Result<Vec<String>> {
    let mut stubbed = Vec::new();
    let ty = component.component_type();
    for (name, import) in ty.imports(engine) {
        if name.starts_with("wasi:") || IMPLEMENTED_INTERFACES.contains(&name) {
            continue;
        }
        let ComponentItem::ComponentInstance(instance_ty) = import.ty else {
            anyhow::bail!("the component imports {name:?}, which eventplane cannot provide");
        };
        let mut instance = linker.instance(name)?;
        let mut stubs = 0;
        for (item_name, item) in instance_ty.exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => {
                    let what = format!("{name}#{item_name}");
                    instance.func_new(item_name, move |_, _, _, _| {
                        wasmtime::bail!("eventplane does not implement `{what}`")
                    })?;
                    stubs += 1;
                }
                ComponentItem::Resource(_) => {
                    instance.resource(
                        item_name,
                        ResourceType::host::<Unimplemented>(),
                        |_, _| Ok(()),
                    )?;
                    stubs += 1;
                }
                _ => {}
            }
        }
        // An interface of types alone (like the MQTT trigger's `spin-mqtt-types`) needs an
        // instance, but lacks nothing.
        if stubs > 0 {
            stubbed.push(name.to_string());
        }
    }
    Ok(stubbed)
}
