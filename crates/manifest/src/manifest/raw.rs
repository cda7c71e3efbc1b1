//! The serde shape of a v2 `spin.toml`, mirroring which tables Spin accepts and where it
//! refuses unknown keys (Spin's `AppManifest`, `AppDetails`, `Component`, `Variable` and
//! `ComponentBuildConfig` all use `deny_unknown_fields`; a trigger keeps its extra keys, which
//! the HTTP trigger then checks with its own `deny_unknown_fields` config).

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

/// The keys a manifest is first probed for (Spin also accepts `spin_version` here, which then
/// fails the v2 parse as an unknown field).
#[derive(Deserialize)]
pub struct VersionProbe {
    #[serde(alias = "spin_version")]
    pub spin_manifest_version: toml::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    #[allow(dead_code)]
    pub spin_manifest_version: u64,
    pub application: RawApplication,
    #[serde(default, deserialize_with = "ordered")]
    pub variables: Vec<(String, RawVariable)>,
    /// `[[trigger.<type>]]`: required by Spin's schema (no `#[serde(default)]`).
    #[serde(deserialize_with = "ordered")]
    pub trigger: Vec<(String, Vec<toml::Table>)>,
    #[serde(default, deserialize_with = "ordered")]
    pub component: Vec<(String, RawComponent)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApplication {
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    pub targets: Vec<toml::Value>,
    /// `[application.trigger.<type>]`
    #[serde(default)]
    pub trigger: toml::Table,
    #[serde(default)]
    #[allow(dead_code)]
    pub tool: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariable {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

/// `[application.trigger.http]`: the HTTP trigger's metadata has only `base`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpMetadata {
    pub base: Option<String>,
}

/// One `[[trigger.http]]`: Spin's generic trigger keys (`id`, `component`, `components`,
/// `dependencies`) plus the HTTP trigger config (`route`, `static_response`, `executor`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpTrigger {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub component: Option<toml::Value>,
    #[serde(default)]
    pub components: Option<toml::Table>,
    #[serde(default)]
    pub dependencies: Option<toml::Table>,
    pub route: toml::Value,
    #[serde(default)]
    pub static_response: Option<toml::Value>,
    #[serde(default)]
    pub executor: Option<toml::Value>,
}

/// `[application.trigger.mqtt]`: the MQTT trigger plugin's metadata, all four keys required
/// strings (the plugin's `TriggerMetadata`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqttMetadata {
    pub address: String,
    pub username: String,
    pub password: String,
    pub keep_alive_interval: String,
}

/// One `[[trigger.mqtt]]`: Spin's generic trigger keys plus the plugin's `ComponentConfig`
/// (`component`, `topic`, `qos`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqttTrigger {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub component: Option<toml::Value>,
    #[serde(default)]
    pub components: Option<toml::Table>,
    #[serde(default)]
    pub dependencies: Option<toml::Table>,
    pub topic: String,
    pub qos: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawComponent {
    pub source: toml::Value,
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "ordered")]
    pub variables: Vec<(String, String)>,
    #[serde(default, deserialize_with = "ordered")]
    pub environment: Vec<(String, String)>,
    #[serde(default)]
    pub files: Vec<RawFileMount>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub allowed_http_hosts: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub ai_models: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    pub targets: Option<Vec<toml::Value>>,
    #[serde(default)]
    pub build: Option<RawBuild>,
    #[serde(default)]
    #[allow(dead_code)]
    pub tool: toml::Table,
    #[serde(default)]
    #[allow(dead_code)]
    pub dependencies_inherit_configuration: Option<bool>,
    #[serde(default)]
    pub dependencies: toml::Table,
    #[serde(default)]
    #[allow(dead_code)]
    pub profile: toml::Table,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum RawFileMount {
    Pattern(String),
    Placement(RawPlacement),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlacement {
    pub source: String,
    pub destination: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBuild {
    pub command: RawCommands,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum RawCommands {
    One(String),
    Many(Vec<String>),
}

/// Deserializes a TOML table into `(key, value)` pairs in document order (with toml's
/// `preserve_order` feature the parser keeps that order).
fn ordered<'de, D, T>(deserializer: D) -> Result<Vec<(String, T)>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Ordered<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Ordered<T> {
        type Value = Vec<(String, T)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = map.next_entry::<String, T>()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }

    deserializer.deserialize_map(Ordered(PhantomData))
}
