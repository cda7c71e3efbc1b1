//! Turns the raw serde shape into a validated [`Manifest`], refusing what Spin refuses.

use std::path::Path;

use super::ids::{check_kebab, check_label, check_lower_snake};
use super::raw::{
    RawCommands, RawComponent, RawFileMount, RawHttpMetadata, RawHttpTrigger, RawManifest,
    RawMqttMetadata, RawMqttTrigger, VersionProbe,
};
use super::{
    Application, BuildConfig, Component, FileMount, HttpRoute, HttpTrigger, Manifest,
    ManifestError, Variable,
};
use crate::mqtt::{
    BrokerAddress, MAX_KEEP_ALIVE_SECS, MqttQos, MqttSettings, MqttTrigger, check_topic_filter,
};
use crate::outbound::AllowedHosts;
use crate::variables::Template;

const BASE_WARNING: &str = "This application has the deprecated trigger 'base' set to the default value '/'. This may be an error in the future!";

pub fn parse(text: &str, base_dir: &Path) -> Result<Manifest, ManifestError> {
    let probe: VersionProbe = toml::from_str(text).map_err(toml_error)?;
    let version = probe.spin_manifest_version;
    if version.as_str() == Some("1") {
        return Err(ManifestError::Version1);
    }
    if version.as_integer() != Some(2) {
        return Err(ManifestError::InvalidVersion(version.to_string()));
    }
    let raw: RawManifest = toml::from_str(text).map_err(toml_error)?;

    let mut warnings = Vec::new();
    let application = application(&raw, &mut warnings)?;
    let variables = raw
        .variables
        .into_iter()
        .map(|(name, v)| {
            check_lower_snake(&name)
                .map_err(|reason| invalid_id("variable name", &name, reason))?;
            if v.required == v.default.is_some() {
                return Err(ManifestError::InvalidVariable {
                    name,
                    reason: "must be `required` OR have a `default`".to_owned(),
                });
            }
            let variable = Variable {
                description: v.description,
                default: v.default,
                required: v.required,
                secret: v.secret,
            };
            Ok((name, variable))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let components = raw
        .component
        .into_iter()
        .map(|(id, c)| component(id, c, base_dir, &variables))
        .collect::<Result<Vec<_>, _>>()?;

    let mut http_triggers = Vec::new();
    let mut mqtt_triggers = Vec::new();
    for (trigger_type, tables) in raw.trigger {
        let known = |c: &str| components.iter().any(|component| component.id == c);
        match trigger_type.as_str() {
            "http" => {
                for (index, table) in tables.into_iter().enumerate() {
                    let trigger = http_trigger(index + 1, table)?;
                    if !known(&trigger.component) {
                        return Err(ManifestError::UnknownComponent {
                            trigger: describe("http", index + 1, trigger.id.as_deref()),
                            component: trigger.component,
                        });
                    }
                    http_triggers.push(trigger);
                }
            }
            "mqtt" => {
                for (index, table) in tables.into_iter().enumerate() {
                    let trigger = mqtt_trigger(index + 1, table, &variables)?;
                    if !known(&trigger.component) {
                        return Err(ManifestError::UnknownComponent {
                            trigger: describe("mqtt", index + 1, trigger.id.as_deref()),
                            component: trigger.component,
                        });
                    }
                    mqtt_triggers.push(trigger);
                }
            }
            _ => {
                return Err(ManifestError::Unsupported(format!(
                    "the `{trigger_type}` trigger type ([[trigger.{trigger_type}]])"
                )));
            }
        }
    }
    // The plugin reads its metadata only when the application has MQTT triggers.
    let mqtt = if mqtt_triggers.is_empty() {
        None
    } else {
        Some(mqtt_settings(
            raw.application.trigger.get("mqtt"),
            &variables,
        )?)
    };

    Ok(Manifest {
        base_dir: base_dir.to_owned(),
        application,
        variables,
        http_triggers,
        mqtt,
        mqtt_triggers,
        components,
        warnings,
    })
}

fn toml_error(e: toml::de::Error) -> ManifestError {
    ManifestError::Toml(e.to_string().trim_end().to_owned())
}

fn invalid_id(kind: &'static str, id: &str, reason: String) -> ManifestError {
    ManifestError::InvalidId {
        kind,
        id: id.to_owned(),
        reason,
    }
}

fn application(
    raw: &RawManifest,
    warnings: &mut Vec<String>,
) -> Result<Application, ManifestError> {
    let app = &raw.application;
    if let Some(meta) = app.trigger.get("http") {
        let meta: RawHttpMetadata = meta.clone().try_into().map_err(|e: toml::de::Error| {
            ManifestError::Toml(format!(
                "invalid metadata value for \"http\" ([application.trigger.http]): {}",
                e.to_string().trim_end()
            ))
        })?;
        match meta.base.as_deref() {
            None => {}
            Some("/") => warnings.push(BASE_WARNING.to_owned()),
            Some(_) => return Err(ManifestError::DeprecatedBase),
        }
    }
    Ok(Application {
        name: app.name.clone(),
        version: app.version.clone(),
        description: app.description.clone(),
        authors: app.authors.clone(),
        // Spin routes with base "/" whatever the manifest says (other values are refused).
        http_base: "/".to_owned(),
    })
}

fn component(
    id: String,
    c: RawComponent,
    base_dir: &Path,
    app_variables: &[(String, Variable)],
) -> Result<Component, ManifestError> {
    check_kebab(&id).map_err(|reason| invalid_id("component ID", &id, reason))?;
    let source_raw = match c.source {
        toml::Value::String(path) => path,
        toml::Value::Table(t) if t.contains_key("url") => {
            return Err(ManifestError::Unsupported(format!(
                "component `{id}`: a remote `source = {{ url, digest }}` (download it and use a local path)"
            )));
        }
        toml::Value::Table(t) if t.contains_key("package") || t.contains_key("registry") => {
            return Err(ManifestError::Unsupported(format!(
                "component `{id}`: a registry `source = {{ registry, package, version }}`"
            )));
        }
        other => {
            return Err(ManifestError::InvalidComponent {
                component: id,
                reason: format!(
                    "`source` must be a file path, `{{ url, digest }}` or `{{ registry, package, version }}`; got {other}"
                ),
            });
        }
    };
    if !c.allowed_http_hosts.is_empty() {
        return Err(ManifestError::Unsupported(format!(
            "component `{id}`: the deprecated `allowed_http_hosts` (use `allowed_outbound_hosts`, e.g. \"https://example.com\")"
        )));
    }
    if !c.dependencies.is_empty() {
        return Err(ManifestError::Unsupported(format!(
            "component `{id}`: component `dependencies` (composition)"
        )));
    }
    for (name, text) in &c.variables {
        check_lower_snake(name).map_err(|reason| invalid_id("variable name", name, reason))?;
        Template::parse(text)
            .and_then(|t| t.check_names(|n| app_variables.iter().any(|(v, _)| v == n)))
            .map_err(|e| ManifestError::InvalidTemplate {
                component: id.clone(),
                variable: name.clone(),
                reason: e.to_string(),
            })?;
    }
    for label in &c.key_value_stores {
        check_label(label).map_err(|reason| invalid_id("key-value store label", label, reason))?;
    }
    for label in &c.sqlite_databases {
        check_label(label).map_err(|reason| invalid_id("SQLite database label", label, reason))?;
    }
    // Spin checks literal entries, and templated ones whose variables all have defaults.
    let default_of = |name: &str| {
        app_variables
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.default.clone())
    };
    AllowedHosts::validate(&c.allowed_outbound_hosts, default_of).map_err(|e| {
        ManifestError::InvalidAllowedHosts {
            component: id.clone(),
            reason: e.to_string(),
        }
    })?;
    let files = c
        .files
        .into_iter()
        .map(|f| match f {
            RawFileMount::Pattern(p) => FileMount::Pattern(p),
            RawFileMount::Placement(p) => FileMount::Placement {
                source: p.source,
                destination: p.destination,
            },
        })
        .collect();
    let build = c.build.map(|b| BuildConfig {
        commands: match b.command {
            RawCommands::One(c) => vec![c],
            RawCommands::Many(cs) => cs,
        },
        workdir: b.workdir,
        watch: b.watch,
    });
    Ok(Component {
        source: base_dir.join(&source_raw),
        source_raw,
        id,
        description: c.description,
        variables: c.variables,
        environment: c.environment,
        files,
        exclude_files: c.exclude_files,
        allowed_outbound_hosts: c.allowed_outbound_hosts,
        key_value_stores: c.key_value_stores,
        sqlite_databases: c.sqlite_databases,
        ai_models: c.ai_models,
        build,
    })
}

fn describe(kind: &str, index: usize, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("[[trigger.{kind}]] #{index} (id `{id}`)"),
        None => format!("[[trigger.{kind}]] #{index}"),
    }
}

fn http_trigger(index: usize, table: toml::Table) -> Result<HttpTrigger, ManifestError> {
    let invalid = |id: Option<&str>, reason: String| ManifestError::InvalidTrigger {
        trigger: describe("http", index, id),
        reason,
    };
    let raw: RawHttpTrigger = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| invalid(None, e.to_string().trim_end().to_owned()))?;
    let id = raw.id.as_deref();
    let unsupported = |what: &str| {
        ManifestError::Unsupported(format!("{what} (in {})", describe("http", index, id)))
    };
    if raw.components.is_some_and(|c| !c.is_empty()) {
        return Err(unsupported("trigger `components` (middleware)"));
    }
    if raw.dependencies.is_some_and(|d| !d.is_empty()) {
        return Err(unsupported("trigger `dependencies`"));
    }
    let component = match (raw.component, raw.static_response.is_some()) {
        (_, true) => return Err(unsupported("`static_response`")),
        (None, false) => {
            return Err(invalid(
                id,
                "Triggers must specify either component or static_response - this one has neither"
                    .to_owned(),
            ));
        }
        (Some(toml::Value::String(c)), false) => {
            check_kebab(&c).map_err(|reason| invalid_id("component reference", &c, reason))?;
            c
        }
        (Some(toml::Value::Table(_)), false) => {
            return Err(unsupported(
                "an inline component (`component = { ... }`); define it as [component.<id>] and use `component = \"<id>\"`",
            ));
        }
        (Some(other), false) => {
            return Err(invalid(
                id,
                format!("`component` must be a component id; got {other}"),
            ));
        }
    };
    if let Some(executor) = raw.executor {
        let kind = executor.get("type").and_then(toml::Value::as_str);
        match kind {
            Some("http" | "spin") if executor.as_table().is_some_and(|t| t.len() == 1) => {}
            Some("wagi") => return Err(unsupported("the WAGI executor")),
            _ => {
                return Err(invalid(
                    id,
                    format!("`executor` must be {{ type = \"http\" }}; got {executor}"),
                ));
            }
        }
    }
    let route = match raw.route {
        toml::Value::String(path) => HttpRoute::Path(path),
        toml::Value::Table(t) => match (t.get("private").and_then(toml::Value::as_bool), t.len()) {
            (Some(true), 1) => HttpRoute::Private,
            (Some(false), 1) => {
                return Err(invalid(
                    id,
                    format!(
                        "route must be a string pattern or '{{ private = true }}': '{component}' has {{ private = false }}"
                    ),
                ));
            }
            _ => {
                return Err(invalid(
                    id,
                    format!("`route` must be a string or {{ private = true }}; got {t}"),
                ));
            }
        },
        other => {
            return Err(invalid(
                id,
                format!("`route` must be a string or {{ private = true }}; got {other}"),
            ));
        }
    };
    Ok(HttpTrigger {
        id: raw.id,
        route,
        component,
    })
}

/// Checks a template field of the MQTT tables: valid syntax, only application variables.
fn check_template(
    field: &str,
    text: &str,
    app_variables: &[(String, Variable)],
) -> Result<crate::variables::Template, String> {
    Template::parse(text)
        .and_then(|t| {
            t.check_names(|n| app_variables.iter().any(|(v, _)| v == n))?;
            Ok(t)
        })
        .map_err(|e| format!("`{field}`: {e}"))
}

/// `[application.trigger.mqtt]`, required once there are `[[trigger.mqtt]]` entries.
fn mqtt_settings(
    table: Option<&toml::Value>,
    app_variables: &[(String, Variable)],
) -> Result<MqttSettings, ManifestError> {
    let invalid = |reason: String| ManifestError::InvalidMqttSettings(reason);
    let Some(table) = table else {
        return Err(invalid(
            "the application has [[trigger.mqtt]] entries but no [application.trigger.mqtt] table; it needs the broker's `address`, `username`, `password` and `keep_alive_interval`".to_owned(),
        ));
    };
    let raw: RawMqttMetadata = table
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| invalid(e.to_string().trim_end().to_owned()))?;
    let address = check_template("address", &raw.address, app_variables).map_err(invalid)?;
    if address.is_literal() {
        BrokerAddress::parse(&raw.address).map_err(|e| invalid(format!("`address`: {e}")))?;
    }
    check_template("username", &raw.username, app_variables).map_err(invalid)?;
    check_template("password", &raw.password, app_variables).map_err(invalid)?;
    let keep_alive_interval = raw.keep_alive_interval.trim().parse::<u16>().map_err(|_| {
        invalid(format!(
            "`keep_alive_interval` must be a whole number of seconds from 0 to {MAX_KEEP_ALIVE_SECS}, as a string (e.g. \"30\"); got {:?}",
            raw.keep_alive_interval
        ))
    })?;
    Ok(MqttSettings {
        address: raw.address,
        username: raw.username,
        password: raw.password,
        keep_alive_interval,
    })
}

fn mqtt_trigger(
    index: usize,
    table: toml::Table,
    app_variables: &[(String, Variable)],
) -> Result<MqttTrigger, ManifestError> {
    let invalid = |id: Option<&str>, reason: String| ManifestError::InvalidMqttTrigger {
        trigger: describe("mqtt", index, id),
        reason,
    };
    let raw: RawMqttTrigger = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| invalid(None, e.to_string().trim_end().to_owned()))?;
    let id = raw.id.as_deref();
    let unsupported = |what: &str| {
        ManifestError::Unsupported(format!("{what} (in {})", describe("mqtt", index, id)))
    };
    if raw.components.is_some_and(|c| !c.is_empty()) {
        return Err(unsupported("trigger `components`"));
    }
    if raw.dependencies.is_some_and(|d| !d.is_empty()) {
        return Err(unsupported("trigger `dependencies`"));
    }
    let component = match raw.component {
        None => return Err(invalid(id, "`component` is missing".to_owned())),
        Some(toml::Value::String(c)) => {
            check_kebab(&c).map_err(|reason| invalid_id("component reference", &c, reason))?;
            c
        }
        Some(toml::Value::Table(_)) => {
            return Err(unsupported(
                "an inline component (`component = { ... }`); define it as [component.<id>] and use `component = \"<id>\"`",
            ));
        }
        Some(other) => {
            return Err(invalid(
                id,
                format!("`component` must be a component id; got {other}"),
            ));
        }
    };
    let qos = MqttQos::parse(raw.qos.trim()).ok_or_else(|| {
        invalid(
            id,
            format!("`qos` must be \"0\", \"1\" or \"2\"; got {:?}", raw.qos),
        )
    })?;
    let topic = check_template("topic", &raw.topic, app_variables).map_err(|e| invalid(id, e))?;
    if topic.is_literal() {
        check_topic_filter(&raw.topic).map_err(|e| invalid(id, format!("`topic`: {e}")))?;
    }
    Ok(MqttTrigger {
        id: raw.id,
        component,
        topic: raw.topic,
        qos,
    })
}
