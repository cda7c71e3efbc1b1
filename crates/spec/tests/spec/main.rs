//! `eventplane_spec::parse` on whole documents: the catalogs of real-world-shaped specs
//! ([`catalog`]) and the errors for broken ones ([`broken`]). The documents live in
//! `tests/fixtures/`.

mod broken;
mod catalog;
mod naming;

use std::path::Path;

use anyhow::{Context, anyhow};
use eventplane_spec::{EventType, Spec};
use serde_json::Value;

/// The text of `tests/fixtures/<name>`.
fn fixture(name: &str) -> anyhow::Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// The catalog as `(name, version, summary)` rows, in order.
fn rows(spec: &Spec) -> Vec<(&str, &str, Option<&str>)> {
    spec.events
        .iter()
        .map(|e| (e.name.as_str(), e.version.as_str(), e.summary.as_deref()))
        .collect()
}

/// The payload schema of the event `name`, which must have one.
fn payload<'s>(spec: &'s Spec, name: &str) -> anyhow::Result<&'s Value> {
    event(spec, name)?
        .payload_schema
        .as_ref()
        .ok_or_else(|| anyhow!("event `{name}` has no payload schema"))
}

fn event<'s>(spec: &'s Spec, name: &str) -> anyhow::Result<&'s EventType> {
    spec.event(name)
        .ok_or_else(|| anyhow!("no event `{name}` in {:?}", rows(spec)))
}
