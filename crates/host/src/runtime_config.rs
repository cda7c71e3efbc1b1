//! Spin's runtime configuration file (`eventplane up --runtime-config-file`, as
//! `spin up --runtime-config-file`): where each key-value store lives.
//!
//! What eventplane up honours, with Spin's meaning:
//!
//! - `[key_value_store.<label>]` with `type = "spin"`: a SQLite file in Spin's layout at `path`
//!   (relative to the runtime config file's directory); without `path` the store is temporary,
//!   gone when the host stops, as Spin keeps such a store in memory;
//! - `[key_value_store.<label>]` with `type = "redis"` and `url = "redis://host:port"`;
//! - `state_dir`, where `default` lives unless configured (`--state-dir` wins; relative to the
//!   working directory; `""`: no state directory, so `default` is temporary), as on Spin.
//!
//! With a runtime config file a label exists if it has a table; `default` always does (in the
//! state directory unless it has a table). Anything eventplane up cannot honour stops start-up
//! with an error naming the file, the table and the problem, rather than being ignored: the
//! other store types Spin has (`azure_cosmos`, `aws_dynamo`), the rest of Spin's runtime config
//! (`[sqlite_database.*]`, variable providers, `[llm_compute]`, TLS and outbound HTTP settings,
//! `log_dir`, `max_instance_memory`), unknown keys (Spin refuses those too), and a table for a
//! label no component uses (Spin accepts it; here it is most likely a typo).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::stores::StoreLocation;

/// The label every application has.
pub(crate) const DEFAULT_LABEL: &str = "default";

/// A store's table in the runtime config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreConfig {
    /// `type = "spin"`: SQLite, at `path` (resolved against the file's directory) or temporary.
    Spin { path: Option<PathBuf> },
    /// `type = "redis"`.
    Redis { url: String },
}

/// `state_dir` in the runtime config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StateDir {
    /// Not given.
    Unspecified,
    /// `state_dir = ""`: none, so `default` is temporary.
    Unset,
    /// A directory.
    Dir(PathBuf),
}

/// A runtime config file eventplane up can honour.
#[derive(Debug, Clone)]
pub(crate) struct RuntimeConfig {
    /// The file, for messages.
    path: PathBuf,
    state_dir: StateDir,
    /// Each `[key_value_store.<label>]`, by label.
    stores: BTreeMap<String, StoreConfig>,
}

/// Top-level keys of Spin's runtime config that eventplane up does not honour, and why.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "sqlite_database",
        "Spin's SQLite databases: eventplane up does not offer the SQLite database interface",
    ),
    (
        "variables_provider",
        "Spin's variable providers: eventplane up takes variables from the manifest's defaults and SPIN_VARIABLE_* environment variables only",
    ),
    (
        "config_provider",
        "Spin's variable providers: eventplane up takes variables from the manifest's defaults and SPIN_VARIABLE_* environment variables only",
    ),
    (
        "llm_compute",
        "Spin's LLM settings: eventplane up does not offer the LLM interface",
    ),
    (
        "client_tls",
        "Spin's TLS client settings: eventplane up's outbound requests use plain HTTP and the system's defaults",
    ),
    (
        "outbound_networking",
        "Spin's outbound network settings: eventplane up does not block networks",
    ),
    (
        "outbound_http",
        "Spin's outbound HTTP settings: eventplane up always pools connections and does not limit concurrent requests",
    ),
    (
        "log_dir",
        "Spin's component log files: eventplane up passes components' output to its own stdout and stderr",
    ),
    (
        "max_instance_memory",
        "eventplane up's memory limit per instance is fixed (256 MiB)",
    ),
];

impl RuntimeConfig {
    /// Reads and checks the runtime config file at `path`.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read runtime config file {}: {e}", path.display())
        })?;
        Self::parse(&text, path)
    }

    /// Checks `text`, the content of the runtime config file at `path`.
    pub(crate) fn parse(text: &str, path: &Path) -> anyhow::Result<Self> {
        let fail =
            |problem: String| anyhow::anyhow!("runtime config file {}: {problem}", path.display());
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| format!(" at line {}", before.matches('\n').count() + 1));
            fail(format!(
                "invalid TOML{}: {}",
                line.unwrap_or_default(),
                e.message().trim_end()
            ))
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        let mut config = Self {
            path: path.to_path_buf(),
            state_dir: StateDir::Unspecified,
            stores: BTreeMap::new(),
        };
        for (key, value) in &table {
            match key.as_str() {
                "key_value_store" => {
                    let toml::Value::Table(stores) = value else {
                        return Err(fail(
                            "`key_value_store` must be a table of stores, e.g. [key_value_store.default]"
                                .into(),
                        ));
                    };
                    for (label, store) in stores {
                        let store = parse_store(store, base).map_err(|problem| {
                            fail(format!("[key_value_store.{label}]: {problem}"))
                        })?;
                        config.stores.insert(label.clone(), store);
                    }
                }
                "state_dir" => {
                    let toml::Value::String(dir) = value else {
                        return Err(fail("`state_dir` must be a string".into()));
                    };
                    config.state_dir = if dir.is_empty() {
                        StateDir::Unset
                    } else {
                        StateDir::Dir(PathBuf::from(dir))
                    };
                }
                other => {
                    return Err(fail(match UNSUPPORTED.iter().find(|(k, _)| *k == other) {
                        Some((_, why)) => {
                            format!("`{other}` is not supported by eventplane up ({why})")
                        }
                        None => format!(
                            "unknown key `{other}` (Spin's runtime config has no such key either)"
                        ),
                    }));
                }
            }
        }
        Ok(config)
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `state_dir` as the file gives it.
    pub(crate) fn state_dir(&self) -> &StateDir {
        &self.state_dir
    }

    /// The stores the file configures, by label.
    pub(crate) fn stores(&self) -> &BTreeMap<String, StoreConfig> {
        &self.stores
    }

    /// An error about the table of `label`, naming the file and the table.
    pub(crate) fn table_error(
        &self,
        label: &str,
        problem: impl std::fmt::Display,
    ) -> anyhow::Error {
        anyhow::anyhow!(
            "runtime config file {}: [key_value_store.{label}]: {problem}",
            self.path.display()
        )
    }

    /// Refuses a table for a label no component lists in `key_value_stores` (`used`).
    pub(crate) fn check_used(
        &self,
        used: &BTreeSet<String>,
        manifest: &Path,
    ) -> anyhow::Result<()> {
        for label in self.stores.keys() {
            if !used.contains(label) {
                return Err(self.table_error(
                    label,
                    format!(
                        "no component of {} lists {label:?} in its key_value_stores",
                        manifest.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// One `[key_value_store.<label>]` table; a relative `path` is resolved against `base`.
fn parse_store(value: &toml::Value, base: &Path) -> Result<StoreConfig, String> {
    let toml::Value::Table(table) = value else {
        return Err("must be a table, with a `type`".into());
    };
    let kind = match table.get("type") {
        None => return Err("has no `type` (eventplane up supports \"spin\" and \"redis\")".into()),
        Some(toml::Value::String(kind)) => kind.as_str(),
        Some(_) => return Err("`type` must be a string".into()),
    };
    let (fields, store) = match kind {
        "spin" => {
            let path = match table.get("path") {
                None => None,
                Some(toml::Value::String(path)) if !path.is_empty() => Some(base.join(path)),
                Some(_) => return Err("`path` must be a file path".into()),
            };
            (&["type", "path"][..], StoreConfig::Spin { path })
        }
        "redis" => {
            let url =
                match table.get("url") {
                    None => return Err(
                        "a \"redis\" store needs a `url`, e.g. url = \"redis://127.0.0.1:6379\""
                            .into(),
                    ),
                    Some(toml::Value::String(url)) => url.clone(),
                    Some(_) => return Err("`url` must be a string".into()),
                };
            (&["type", "url"][..], StoreConfig::Redis { url })
        }
        "azure_cosmos" | "aws_dynamo" => {
            return Err(format!(
                "store type {kind:?} is one Spin has, but eventplane up does not: it supports \"spin\" (SQLite) and \"redis\""
            ));
        }
        other => {
            return Err(format!(
                "unknown store type {other:?} (eventplane up supports \"spin\" and \"redis\")"
            ));
        }
    };
    if let Some(unknown) = table.keys().find(|k| !fields.contains(&k.as_str())) {
        let fields = fields.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>();
        return Err(format!(
            "unknown field `{unknown}` (a {kind:?} store has {})",
            fields.join(" and ")
        ));
    }
    Ok(store)
}

/// Where `default` lives unless a runtime config table says otherwise: `state_dir` (given on
/// the command line, else by the runtime config file, else `.spin` beside the manifest), in
/// Spin's file; temporary if there is no state directory.
pub(crate) fn default_location(
    cli_state_dir: Option<&Path>,
    config: Option<&RuntimeConfig>,
    manifest_dir: &Path,
) -> StoreLocation {
    let dir = match (cli_state_dir, config.map(RuntimeConfig::state_dir)) {
        (Some(dir), _) => Some(dir.to_path_buf()),
        (None, Some(StateDir::Dir(dir))) => Some(dir.clone()),
        (None, Some(StateDir::Unset)) => None,
        (None, Some(StateDir::Unspecified) | None) => Some(manifest_dir.join(".spin")),
    };
    StoreLocation::Sqlite(dir.map(|d| d.join(crate::kv_store::DB_FILE_NAME)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<RuntimeConfig> {
        RuntimeConfig::parse(text, Path::new("/etc/app/rc.toml"))
    }

    /// The message for `text`, which must be refused.
    fn refused(text: &str) -> String {
        match parse(text) {
            Ok(config) => panic!("accepted {text:?}: {config:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn spin_and_redis_stores_are_read_with_spins_meaning() -> anyhow::Result<()> {
        let config = parse(
            r#"
            state_dir = "/var/lib/app"
            [key_value_store.default]
            type = "redis"
            url = "redis://127.0.0.1:6390"
            [key_value_store.relative]
            type = "spin"
            path = "data/kv.db"
            [key_value_store.absolute]
            type = "spin"
            path = "/srv/kv.db"
            [key_value_store.memory]
            type = "spin"
            "#,
        )?;
        let stores = config.stores();
        assert_eq!(
            stores["default"],
            StoreConfig::Redis {
                url: "redis://127.0.0.1:6390".into()
            }
        );
        assert_eq!(
            stores["relative"],
            StoreConfig::Spin {
                path: Some(PathBuf::from("/etc/app/data/kv.db"))
            }
        );
        assert_eq!(
            stores["absolute"],
            StoreConfig::Spin {
                path: Some(PathBuf::from("/srv/kv.db"))
            }
        );
        assert_eq!(stores["memory"], StoreConfig::Spin { path: None });
        assert_eq!(
            config.state_dir(),
            &StateDir::Dir(PathBuf::from("/var/lib/app"))
        );
        // An empty file is Spin's defaults.
        let empty = parse("")?;
        assert!(empty.stores().is_empty());
        assert_eq!(empty.state_dir(), &StateDir::Unspecified);
        assert_eq!(parse("state_dir = \"\"")?.state_dir(), &StateDir::Unset);
        Ok(())
    }

    #[test]
    fn every_problem_is_refused_naming_the_file_the_table_and_the_problem() {
        let cases: &[(&str, &[&str])] = &[
            (
                "[key_value_store.default]\ntype = \"spin\"\ntype = 1",
                &["invalid TOML at line 3"],
            ),
            (
                "[key_value_store.default\ntype = 1",
                &["invalid TOML at line 1"],
            ),
            (
                "[key_value_store.cache]\ntype = \"azure_cosmos\"",
                &["[key_value_store.cache]", "\"azure_cosmos\"", "Spin has"],
            ),
            (
                "[key_value_store.cache]\ntype = \"aws_dynamo\"",
                &["[key_value_store.cache]", "\"aws_dynamo\"", "Spin has"],
            ),
            (
                "[key_value_store.cache]\ntype = \"memcached\"",
                &[
                    "[key_value_store.cache]",
                    "unknown store type \"memcached\"",
                ],
            ),
            (
                "[key_value_store.default]\ntype = \"redis\"",
                &["[key_value_store.default]", "needs a `url`"],
            ),
            (
                "[key_value_store.default]\ntype = \"redis\"\nurl = 6379",
                &["`url` must be a string"],
            ),
            (
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://x\"\npath = \"a.db\"",
                &[
                    "[key_value_store.default]",
                    "unknown field `path`",
                    "`type` and `url`",
                ],
            ),
            (
                "[key_value_store.default]\ntype = \"spin\"\nurl = \"redis://x\"",
                &["unknown field `url`", "`type` and `path`"],
            ),
            (
                "[key_value_store.default]\npath = \"a.db\"",
                &["[key_value_store.default]", "has no `type`"],
            ),
            (
                "[key_value_store.default]\ntype = \"spin\"\npath = \"\"",
                &["`path` must be a file path"],
            ),
            ("key_value_store = 1", &["must be a table"]),
            (
                "[key_value_store]\ndefault = 1",
                &["[key_value_store.default]", "must be a table"],
            ),
            (
                "[sqlite_database.default]\ntype = \"spin\"",
                &[
                    "`sqlite_database` is not supported by eventplane up",
                    "SQLite database",
                ],
            ),
            (
                "[[variables_provider]]\ntype = \"vault\"",
                &["`variables_provider` is not supported", "SPIN_VARIABLE_"],
            ),
            (
                "[llm_compute]\ntype = \"spin\"",
                &["`llm_compute` is not supported"],
            ),
            ("log_dir = \"logs\"", &["`log_dir` is not supported"]),
            ("baz = 1", &["unknown key `baz`"]),
            ("state_dir = 1", &["`state_dir` must be a string"]),
        ];
        for (text, expected) in cases {
            let message = refused(text);
            assert!(
                message.starts_with("runtime config file /etc/app/rc.toml: "),
                "{message}"
            );
            for part in *expected {
                assert!(
                    message.contains(part),
                    "{text:?}: {message:?} lacks {part:?}"
                );
            }
        }
    }

    #[test]
    fn a_table_for_a_label_no_component_uses_is_refused() -> anyhow::Result<()> {
        let config = parse("[key_value_store.cache]\ntype = \"spin\"")?;
        let used: BTreeSet<String> = ["default".to_owned()].into();
        let err = config
            .check_used(&used, Path::new("spin.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[key_value_store.cache]"), "{err}");
        assert!(
            err.contains("no component of spin.toml lists \"cache\""),
            "{err}"
        );
        let used: BTreeSet<String> = ["default".to_owned(), "cache".to_owned()].into();
        config.check_used(&used, Path::new("spin.toml"))?;
        Ok(())
    }

    #[test]
    fn a_missing_file_is_refused_naming_it() {
        let err = RuntimeConfig::load(Path::new("/nonexistent/rc.toml")).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot read runtime config file /nonexistent/rc.toml"),
            "{err}"
        );
    }

    /// `default` lives in the state directory: the command line's, else the file's, else
    /// `.spin` beside the manifest; with `state_dir = ""` it is temporary.
    #[test]
    fn the_default_store_follows_the_state_directory() -> anyhow::Result<()> {
        let manifest_dir = Path::new("/app");
        let file =
            |dir: &str| StoreLocation::Sqlite(Some(Path::new(dir).join("sqlite_key_value.db")));
        assert_eq!(
            default_location(None, None, manifest_dir),
            file("/app/.spin")
        );
        let with_dir = parse("state_dir = \"/state\"")?;
        assert_eq!(
            default_location(None, Some(&with_dir), manifest_dir),
            file("/state")
        );
        assert_eq!(
            default_location(Some(Path::new("/cli")), Some(&with_dir), manifest_dir),
            file("/cli")
        );
        let unset = parse("state_dir = \"\"")?;
        assert_eq!(
            default_location(None, Some(&unset), manifest_dir),
            StoreLocation::Sqlite(None)
        );
        assert_eq!(
            default_location(None, Some(&parse("")?), manifest_dir),
            file("/app/.spin")
        );
        Ok(())
    }
}
