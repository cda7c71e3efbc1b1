//! Parsing and validating a Spin application manifest (`spin.toml`, manifest version 2).
//!
//! What is accepted and refused follows Spin (`spin-manifest` schema v2, the loader, and the
//! HTTP trigger's start-up checks):
//! - Unknown keys are refused in `[application]`, `[variables.*]`, `[component.*]`,
//!   `[component.*.build]` and `[[trigger.http]]`, as Spin's `deny_unknown_fields` does.
//! - Component ids are kebab-case words (each word starts with an ASCII letter, all lowercase
//!   or all UPPERCASE); variable names are lower_snake_case words.
//! - A variable must be `required = true` or have a `default`, not both.
//! - `[application.trigger.http] base` is deprecated: `"/"` gives a warning, any other value
//!   is refused (Spin then always routes with base `/`).
//! - Spin features eventplane does not implement are refused with an error saying so
//!   (inline trigger components, remote/registry sources, component dependencies, trigger
//!   middleware, static responses, the WAGI executor, triggers other than HTTP and MQTT, the
//!   deprecated `allowed_http_hosts`).
//! - `[[trigger.mqtt]]` and `[application.trigger.mqtt]` follow Spin's MQTT trigger plugin
//!   (see [`crate::mqtt`]).

mod ids;
mod raw;
#[cfg(test)]
mod tests;
mod validate;

use std::path::{Path, PathBuf};

pub use ids::{check_kebab, check_label, check_lower_snake, check_snake};

use crate::mqtt::{MqttSettings, MqttTrigger};

/// A parsed, validated v2 manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The directory holding the manifest; relative paths are resolved from it.
    pub base_dir: PathBuf,
    /// `[application]`
    pub application: Application,
    /// `[variables]`, in manifest order.
    pub variables: Vec<(String, Variable)>,
    /// `[[trigger.http]]`, in manifest order.
    pub http_triggers: Vec<HttpTrigger>,
    /// `[application.trigger.mqtt]`: present (and required) exactly when there are
    /// `[[trigger.mqtt]]` entries.
    pub mqtt: Option<MqttSettings>,
    /// `[[trigger.mqtt]]`, in manifest order.
    pub mqtt_triggers: Vec<MqttTrigger>,
    /// `[component.<id>]`, in manifest order.
    pub components: Vec<Component>,
    /// Warnings Spin would print when loading this manifest.
    pub warnings: Vec<String>,
}

/// `[application]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// `name`
    pub name: String,
    /// `version` (empty if absent)
    pub version: String,
    /// `description` (empty if absent)
    pub description: String,
    /// `authors`
    pub authors: Vec<String>,
    /// `[application.trigger.http] base`; always `"/"` once validated (Spin refuses any other
    /// value).
    pub http_base: String,
}

/// An application variable (`[variables] name = { ... }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// `description`
    pub description: Option<String>,
    /// `default`; `None` exactly when the variable is required.
    pub default: Option<String>,
    /// `required = true`
    pub required: bool,
    /// `secret = true`
    pub secret: bool,
}

/// The `route` of an HTTP trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRoute {
    /// `route = "/path"`, as written.
    Path(String),
    /// `route = { private = true }`: reachable only by service chaining.
    Private,
}

/// One `[[trigger.http]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTrigger {
    /// `id`, if given.
    pub id: Option<String>,
    /// `route`
    pub route: HttpRoute,
    /// `component`: the id of a `[component.<id>]`.
    pub component: String,
}

/// `[component.<id>]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// The component id.
    pub id: String,
    /// `description`
    pub description: String,
    /// `source` as written.
    pub source_raw: String,
    /// `source` resolved against the manifest's directory.
    pub source: PathBuf,
    /// `variables`: name → template, in manifest order.
    pub variables: Vec<(String, String)>,
    /// `environment`, in manifest order.
    pub environment: Vec<(String, String)>,
    /// `files`
    pub files: Vec<FileMount>,
    /// `exclude_files`
    pub exclude_files: Vec<String>,
    /// `allowed_outbound_hosts`, as written (may contain templates).
    pub allowed_outbound_hosts: Vec<String>,
    /// `key_value_stores`
    pub key_value_stores: Vec<String>,
    /// `sqlite_databases` (kept; the host decides whether it supports them).
    pub sqlite_databases: Vec<String>,
    /// `ai_models` (kept; the host decides whether it supports them).
    pub ai_models: Vec<String>,
    /// `[component.<id>.build]`
    pub build: Option<BuildConfig>,
}

/// One `files` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMount {
    /// A glob pattern or path relative to the manifest's directory.
    Pattern(String),
    /// `{ source = "dir", destination = "/guest/dir" }`
    Placement {
        /// Host path, relative to the manifest's directory.
        source: String,
        /// Absolute guest path.
        destination: String,
    },
}

/// `[component.<id>.build]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildConfig {
    /// `command`: one command, or several run in order (`command = ["a", "b"]`).
    pub commands: Vec<String>,
    /// `workdir`, relative to the manifest's directory.
    pub workdir: Option<String>,
    /// `watch` globs.
    pub watch: Vec<String>,
}

/// Why a manifest is refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file cannot be read.
    #[error("cannot read Spin manifest {}: {source}", path.display())]
    Io {
        /// The manifest path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not valid TOML, or not the v2 schema (unknown key, wrong type, missing key).
    #[error("invalid Spin manifest: {0}")]
    Toml(String),
    /// `spin_manifest_version = "1"`.
    #[error(
        "this is a version 1 Spin manifest (spin_manifest_version = \"1\"); eventplane supports only `spin_manifest_version = 2` (run `spin doctor` or convert it by hand)"
    )]
    Version1,
    /// Any other version.
    #[error("invalid manifest version: {0}")]
    InvalidVersion(String),
    /// A malformed component id, variable name, label, ...
    #[error("invalid {kind} `{id}`: {reason}")]
    InvalidId {
        /// What the identifier names (`component ID`, `variable name`, ...).
        kind: &'static str,
        /// The identifier.
        id: String,
        /// Why it is refused.
        reason: String,
    },
    /// A bad `[variables]` entry.
    #[error("invalid variable definition for `{name}`: {reason}")]
    InvalidVariable {
        /// The variable.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// A bad `[[trigger.http]]` entry.
    #[error("invalid `http` trigger config for {trigger}: {reason}")]
    InvalidTrigger {
        /// Which trigger (`#n`, id and component when known).
        trigger: String,
        /// Why it is refused.
        reason: String,
    },
    /// A bad `[[trigger.mqtt]]` entry.
    #[error("invalid `mqtt` trigger config for {trigger}: {reason}")]
    InvalidMqttTrigger {
        /// Which trigger (`#n`, and its id when it has one).
        trigger: String,
        /// Why it is refused.
        reason: String,
    },
    /// A missing or bad `[application.trigger.mqtt]`.
    #[error("invalid [application.trigger.mqtt]: {0}")]
    InvalidMqttSettings(String),
    /// A trigger names a component that is not defined.
    #[error(
        "{trigger} uses component `{component}`, which is not defined (no [component.{component}])"
    )]
    UnknownComponent {
        /// Which trigger.
        trigger: String,
        /// The missing component id.
        component: String,
    },
    /// A component variable's template is invalid or uses an undefined application variable.
    #[error("component `{component}` variable `{variable}`: {reason}")]
    InvalidTemplate {
        /// The component.
        component: String,
        /// The component variable.
        variable: String,
        /// Why it is refused.
        reason: String,
    },
    /// A component's `allowed_outbound_hosts` is malformed.
    #[error("component `{component}`: `allowed_outbound_hosts` is malformed: {reason}")]
    InvalidAllowedHosts {
        /// The component.
        component: String,
        /// Why it is refused.
        reason: String,
    },
    /// Any other invalid component setting.
    #[error("component `{component}`: {reason}")]
    InvalidComponent {
        /// The component.
        component: String,
        /// Why it is refused.
        reason: String,
    },
    /// A Spin feature eventplane does not implement.
    #[error("{0} is not supported by eventplane")]
    Unsupported(String),
    /// `[application.trigger.http] base` other than `/`.
    #[error(
        "This application is using the deprecated trigger 'base' field. The base must be prepended to each [[trigger.http]]'s 'route'."
    )]
    DeprecatedBase,
    /// A component's source file does not exist (see [`check_sources`]).
    #[error("component `{component}`: source file {} does not exist", path.display())]
    MissingSource {
        /// The component.
        component: String,
        /// The resolved source path.
        path: PathBuf,
    },
}

/// Reads and parses the manifest at `path` (relative paths resolve from its directory,
/// made absolute).
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
        path: path.to_owned(),
        source,
    })?;
    // Like Spin, resolve relative paths from the manifest's directory made absolute.
    let dir = path.parent().unwrap_or(Path::new(""));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let base_dir = std::path::absolute(dir).map_err(|source| ManifestError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, &base_dir)
}

/// Parses manifest text; `base_dir` is the directory relative paths resolve from.
pub fn parse(text: &str, base_dir: &Path) -> Result<Manifest, ManifestError> {
    validate::parse(text, base_dir)
}

/// Checks that every component's source file exists. Separate from [`parse`] because the
/// host may run the build commands first.
pub fn check_sources(manifest: &Manifest) -> Result<(), ManifestError> {
    for c in &manifest.components {
        if !c.source.is_file() {
            return Err(ManifestError::MissingSource {
                component: c.id.clone(),
                path: c.source.clone(),
            });
        }
    }
    Ok(())
}

impl Manifest {
    /// The component with this id.
    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.id == id)
    }

    /// The application variable with this name.
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// All component ids, in manifest order.
    pub fn component_ids(&self) -> Vec<&str> {
        self.components.iter().map(|c| c.id.as_str()).collect()
    }

    /// The `(route, component id)` pairs of the HTTP triggers, for [`crate::routes::Router`].
    pub fn http_routes(&self) -> Vec<(HttpRoute, String)> {
        self.http_triggers
            .iter()
            .map(|t| (t.route.clone(), t.component.clone()))
            .collect()
    }

    /// The JSON body Spin serves at `/.well-known/spin/info`: the app name and, when not
    /// empty, its version.
    pub fn app_info_json(&self) -> String {
        let mut info = serde_json::Map::new();
        info.insert("name".into(), self.application.name.clone().into());
        if !self.application.version.is_empty() {
            info.insert("version".into(), self.application.version.clone().into());
        }
        serde_json::to_string_pretty(&serde_json::Value::Object(info))
            .unwrap_or_else(|_| "{}".to_owned())
    }
}
