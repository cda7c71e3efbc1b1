use std::path::Path;

use super::*;

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "vars"
[variables]
api_host = { default = "api.example.com" }
api_key = { required = true, secret = true }
empty = { default = "" }
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "web.wasm"
allowed_outbound_hosts = ["https://{{ api_host }}", "https://{{ empty }}", "http://*.spin.internal"]
[component.web.variables]
endpoint = "https://{{api_host}}/v1?key={{ api_key }}"
static = "plain"
[component.other]
source = "other.wasm"
"#;

fn manifest() -> anyhow::Result<Manifest> {
    Ok(crate::parse(APP, Path::new("/app"))?)
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn env_var_names_are_prefixed_and_uppercased() {
    assert_eq!(env_var_name("api_key"), "SPIN_VARIABLE_API_KEY");
    assert_eq!(env_var_name("a1"), "SPIN_VARIABLE_A1");
}

#[test]
fn missing_required_variable_is_named() -> anyhow::Result<()> {
    let err = resolve(&manifest()?, &env(&[])).unwrap_err();
    assert_eq!(
        err,
        VariablesError::MissingRequired {
            names: vec!["api_key".into()]
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("api_key") && text.contains("SPIN_VARIABLE_API_KEY"),
        "{text}"
    );
    // A lower-case environment variable does not count.
    assert!(resolve(&manifest()?, &env(&[("spin_variable_api_key", "x")])).is_err());
    Ok(())
}

#[test]
fn environment_overrides_defaults() -> anyhow::Result<()> {
    let m = manifest()?;
    let vars = resolve(&m, &env(&[("SPIN_VARIABLE_API_KEY", "k")]))?;
    assert_eq!(vars.value("api_host"), Some("api.example.com"));
    let vars = resolve(
        &m,
        &env(&[
            ("SPIN_VARIABLE_API_KEY", "k"),
            ("SPIN_VARIABLE_API_HOST", "other.test"),
        ]),
    )?;
    assert_eq!(vars.value("api_host"), Some("other.test"));
    assert_eq!(
        vars.component("web").get("endpoint")?,
        "https://other.test/v1?key=k"
    );
    assert_eq!(vars.render("{{ api_key }}!")?, "k!");
    Ok(())
}

#[test]
fn component_get_reports_spin_errors() -> anyhow::Result<()> {
    let vars = resolve(&manifest()?, &env(&[("SPIN_VARIABLE_API_KEY", "k")]))?;
    let web = vars.component("web");
    assert_eq!(web.get("static")?, "plain");
    // Application variables are not visible unless the component declares them.
    assert_eq!(
        web.get("api_host"),
        Err(VariableError::Undefined(
            r#"no variable for "web"."api_host""#.into()
        ))
    );
    assert_eq!(
        vars.component("other").get("endpoint"),
        Err(VariableError::Undefined(
            r#"no variable for "other"."endpoint""#.into()
        ))
    );
    assert_eq!(
        vars.component("ghost").get("x"),
        Err(VariableError::Undefined(
            r#"no variable for component "ghost""#.into()
        ))
    );
    for (name, reason) in [
        ("", "must not be empty"),
        ("Endpoint", "invalid character 'E'"),
        ("a-b", "invalid character '-'"),
        ("1abc", "must start with a lowercase ASCII letter"),
        ("_x", "must start with a lowercase ASCII letter"),
        ("x_", "must end with a lowercase ASCII letter or digit"),
        ("a__b", "must not contain multiple consecutive underscores"),
    ] {
        match web.get(name) {
            Err(VariableError::InvalidName(msg)) => {
                assert!(msg.starts_with(&format!("{name:?}: ")), "{msg}");
                assert!(msg.contains(reason), "{name:?}: {msg}");
            }
            other => panic!("{name:?}: {other:?}"),
        }
    }
    // `a_1` is a valid key for `get` even though the manifest refuses it as a name.
    assert!(matches!(web.get("a_1"), Err(VariableError::Undefined(_))));
    assert_eq!(
        web.all()?,
        [
            (
                "endpoint".to_owned(),
                "https://api.example.com/v1?key=k".to_owned()
            ),
            ("static".to_owned(), "plain".to_owned()),
        ]
    );
    assert!(vars.component("other").all()?.is_empty());
    Ok(())
}

#[test]
fn allowed_hosts_templates_resolve_per_component() -> anyhow::Result<()> {
    let m = manifest()?;
    let vars = resolve(&m, &env(&[("SPIN_VARIABLE_API_KEY", "k")]))?;
    let hosts = crate::AllowedHosts::for_component(&m, &vars, "web")?;
    // The empty variable's entry is skipped; `*.spin.internal` became one entry per component.
    assert_eq!(hosts.entries().len(), 3);
    assert!(hosts.allows_url("https://api.example.com/v1", "https"));
    assert!(hosts.allows_service_chaining("other"));
    assert!(hosts.allows_service_chaining("web"));
    assert!(!hosts.allows_service_chaining("ghost"));
    let none = crate::AllowedHosts::for_component(&m, &vars, "other")?;
    assert!(none.entries().is_empty());
    Ok(())
}

#[test]
fn unknown_variable_in_allowed_hosts_fails_at_use() -> anyhow::Result<()> {
    // Spin does not catch this at load time (it cannot resolve the name, so it skips the
    // check); resolving the hosts fails, and Spin then refuses the component's requests.
    let m = crate::parse(
        r#"
        spin_manifest_version = 2
        [application]
        name = "x"
        [[trigger.http]]
        route = "/"
        component = "c"
        [component.c]
        source = "c.wasm"
        allowed_outbound_hosts = ["https://{{ nope }}"]
        "#,
        Path::new("."),
    )?;
    let vars = resolve(&m, &HashMap::new())?;
    assert!(crate::AllowedHosts::for_component(&m, &vars, "c").is_err());
    Ok(())
}
