use super::*;

const HEAD: &str = "spin_manifest_version = 2\n[application]\nname = \"app\"\n";

fn parse_ok(text: &str) -> anyhow::Result<Manifest> {
    Ok(parse(text, Path::new("/srv/app"))?)
}

/// Parses `HEAD` + `body` and returns the error text.
fn error_of(body: &str) -> String {
    match parse(&format!("{HEAD}{body}"), Path::new("/srv/app")) {
        Ok(_) => panic!("should have been refused:\n{body}"),
        Err(e) => e.to_string(),
    }
}

const FULL: &str = r#"
spin_manifest_version = 2

[application]
name = "shop"
version = "1.2.3"
description = "A shop"
authors = ["a@example.com"]

[application.trigger.http]
base = "/"

[application.tool.lint]
level = "high"

[variables]
db_url = { default = "sqlite://x" }
api_key = { required = true, secret = true, description = "the key" }

[[trigger.http]]
route = "/cart/..."
component = "cart"

[[trigger.http]]
id = "internal"
route = { private = true }
component = "worker"
executor = { type = "http" }

[component.cart]
source = "target/cart.wasm"
description = "Cart"
allowed_outbound_hosts = ["https://api.example.com", "http://worker.spin.internal"]
key_value_stores = ["default", "snake_case", "kebab-case"]
sqlite_databases = ["default"]
ai_models = ["llama2-chat"]
environment = { Z = "1", A = "2" }
files = ["static/*", { source = "assets", destination = "/assets" }]
exclude_files = ["**/secret"]
variables = { key = "{{ api_key }}", url = "{{db_url}}/x" }

[component.cart.build]
command = ["npm install", "npm run build"]
workdir = "cart"
watch = ["src/**/*.ts"]

[component.cart.tool.clean]
command = "rm -rf target"

[component.worker]
source = "/abs/worker.wasm"

[component.worker.build]
command = "cargo build"
"#;

#[test]
fn full_manifest_parses_in_manifest_order() -> anyhow::Result<()> {
    let m = parse_ok(FULL)?;
    assert_eq!(m.application.name, "shop");
    assert_eq!(m.application.version, "1.2.3");
    assert_eq!(m.application.description, "A shop");
    assert_eq!(m.application.authors, ["a@example.com"]);
    assert_eq!(m.application.http_base, "/");
    assert_eq!(
        m.warnings.len(),
        1,
        "base = \"/\" is deprecated: {:?}",
        m.warnings
    );

    assert_eq!(
        m.variables
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        ["db_url", "api_key"]
    );
    let key = m
        .variable("api_key")
        .ok_or_else(|| anyhow::anyhow!("api_key"))?;
    assert!(key.required && key.secret && key.default.is_none());
    assert_eq!(key.description.as_deref(), Some("the key"));

    assert_eq!(
        m.http_triggers,
        [
            HttpTrigger {
                id: None,
                route: HttpRoute::Path("/cart/...".into()),
                component: "cart".into()
            },
            HttpTrigger {
                id: Some("internal".into()),
                route: HttpRoute::Private,
                component: "worker".into()
            },
        ]
    );
    assert_eq!(m.component_ids(), ["cart", "worker"]);

    let cart = m.component("cart").ok_or_else(|| anyhow::anyhow!("cart"))?;
    assert_eq!(cart.source, Path::new("/srv/app/target/cart.wasm"));
    assert_eq!(cart.source_raw, "target/cart.wasm");
    assert_eq!(
        cart.environment,
        [("Z".into(), "1".into()), ("A".into(), "2".into())]
    );
    assert_eq!(cart.variables[0], ("key".into(), "{{ api_key }}".into()));
    assert_eq!(
        cart.files,
        [
            FileMount::Pattern("static/*".into()),
            FileMount::Placement {
                source: "assets".into(),
                destination: "/assets".into()
            }
        ]
    );
    assert_eq!(cart.key_value_stores.len(), 3);
    assert_eq!(cart.sqlite_databases, ["default"]);
    let build = cart
        .build
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("build"))?;
    assert_eq!(build.commands, ["npm install", "npm run build"]);
    assert_eq!(build.workdir.as_deref(), Some("cart"));
    assert_eq!(build.watch, ["src/**/*.ts"]);

    let worker = m
        .component("worker")
        .ok_or_else(|| anyhow::anyhow!("worker"))?;
    assert_eq!(worker.source, Path::new("/abs/worker.wasm"));
    assert_eq!(
        worker.build.as_ref().map(|b| b.commands.clone()),
        Some(vec!["cargo build".to_owned()])
    );
    assert_eq!(
        m.app_info_json(),
        "{\n  \"name\": \"shop\",\n  \"version\": \"1.2.3\"\n}"
    );
    Ok(())
}

#[test]
fn manifest_versions_are_checked_like_spin() {
    let v1 = parse(
        "spin_manifest_version = \"1\"\nname = \"x\"",
        Path::new("."),
    );
    assert!(matches!(v1, Err(ManifestError::Version1)), "{v1:?}");
    let v1_alias = parse("spin_version = \"1\"", Path::new("."));
    assert!(matches!(v1_alias, Err(ManifestError::Version1)));
    let bad = parse("spin_manifest_version = \"0\"", Path::new(".")).unwrap_err();
    assert_eq!(bad.to_string(), "invalid manifest version: \"0\"");
    let three = parse("spin_manifest_version = 3", Path::new(".")).unwrap_err();
    assert_eq!(three.to_string(), "invalid manifest version: 3");
    let empty = parse("", Path::new(".")).unwrap_err().to_string();
    assert!(
        empty.contains("missing field `spin_manifest_version`"),
        "{empty}"
    );
    // The alias passes the probe but is not a v2 key.
    let alias = parse(
        "spin_version = 2\n[application]\nname=\"a\"\n[trigger]",
        Path::new("."),
    );
    assert!(alias.unwrap_err().to_string().contains("spin_version"));
}

#[test]
fn unknown_keys_are_refused_where_spin_refuses_them() {
    for (body, key) in [
        ("extra = 1\n", "extra"),
        (
            "[trigger]\n[component.a]\nsource = \"a.wasm\"\nsorce = \"x\"\n",
            "sorce",
        ),
        (
            "[variables]\nx = { default = \"1\", secret = true, hidden = true }\n[trigger]\n",
            "hidden",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nroutes = \"/x\"\n[component.a]\nsource = \"a.wasm\"\n",
            "routes",
        ),
        (
            "[trigger]\n[component.a]\nsource = \"a.wasm\"\n[component.a.build]\ncommand = \"x\"\ndir = \"y\"\n",
            "dir",
        ),
        (
            "[application.trigger.http]\nbase = \"/\"\nport = 3\n[trigger]\n",
            "port",
        ),
    ] {
        let err = error_of(body);
        assert!(err.contains(key), "{body}\n=> {err}");
    }
    // `application` keys are checked too.
    let err = parse(
        "spin_manifest_version = 2\n[application]\nname = \"a\"\nnmae = \"b\"\n[trigger]",
        Path::new("."),
    )
    .unwrap_err();
    assert!(err.to_string().contains("nmae"), "{err}");
}

#[test]
fn triggers_are_required_and_only_http_is_supported() {
    assert!(error_of("").contains("missing field `trigger`"));
    let err = error_of(
        "[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n",
    );
    assert!(
        err.contains("`redis` trigger") && err.contains("not supported by eventplane"),
        "{err}"
    );
    assert!(parse_ok(&format!("{HEAD}[trigger]\n")).is_ok());
}

#[test]
fn ids_and_names_are_validated() {
    for (body, expected) in [
        (
            "[trigger]\n[component.bad_id]\nsource = \"a.wasm\"\n",
            "invalid component ID `bad_id`: words must be separated with '-', not '_'",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"1-2-3\"\n",
            "invalid component reference `1-2-3`: '-'-separated words must start with an ASCII letter; got '1'",
        ),
        (
            "[variables]\n\"bad+name\" = { required = true }\n[trigger]\n",
            "invalid variable name `bad+name`: '_'-separated words may only contain alphanumeric ASCII; got '+'",
        ),
        (
            "[variables]\nUpper = { required = true }\n[trigger]\n",
            "invalid variable name `Upper`",
        ),
        (
            "[trigger]\n[component.a]\nsource = \"a.wasm\"\nvariables = { \"a-b\" = \"x\" }\n",
            "invalid variable name `a-b`",
        ),
        (
            "[trigger]\n[component.a]\nsource = \"a.wasm\"\nkey_value_stores = [\"b@d\"]\n",
            "invalid key-value store label `b@d`: expected kebab-case or snake_case",
        ),
    ] {
        let err = error_of(body);
        assert!(err.starts_with(expected), "{body}\n=> {err}");
    }
}

#[test]
fn variables_must_be_required_or_defaulted_not_both() {
    for def in [
        "{ required = true, default = \"x\" }",
        "{ }",
        "{ required = false }",
    ] {
        let err = error_of(&format!("[variables]\nv = {def}\n[trigger]\n"));
        assert_eq!(
            err,
            "invalid variable definition for `v`: must be `required` OR have a `default`"
        );
    }
    assert!(
        parse_ok(&format!(
            "{HEAD}[variables]\nv = {{ default = \"\", required = false }}\n[trigger]\n"
        ))
        .is_ok()
    );
}

#[test]
fn triggers_must_reference_defined_components() {
    let err = error_of(
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"ghost\"\n[component.real]\nsource = \"r.wasm\"\n",
    );
    assert_eq!(
        err,
        "[[trigger.http]] #1 uses component `ghost`, which is not defined (no [component.ghost])"
    );
    let err = error_of("[[trigger.http]]\nroute = \"/\"\n");
    assert!(err.contains("has neither"), "{err}");
    let err = error_of("[[trigger.http]]\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n");
    assert!(err.contains("missing field `route`"), "{err}");
}

#[test]
fn component_variables_must_use_defined_application_variables() {
    let err = error_of(
        "[variables]\nknown = { default = \"k\" }\n[trigger]\n[component.a]\nsource = \"a.wasm\"\nvariables = { v = \"{{ known }}-{{ unknown }}\" }\n",
    );
    assert_eq!(
        err,
        "component `a` variable `v`: invalid variable template: unknown variable \"unknown\""
    );
    let err = error_of(
        "[trigger]\n[component.a]\nsource = \"a.wasm\"\nvariables = { v = \"{{ open\" }\n",
    );
    assert!(err.contains("unmatched '{{'"), "{err}");
}

#[test]
fn malformed_allowed_hosts_are_refused_at_load() {
    for (hosts, expected) in [
        (
            "[\"insecure:allow-all\"]",
            "'insecure:allow-all' is not allowed",
        ),
        ("[\"example.com\"]", "does not contain a scheme"),
        ("[\"https://example.com/path\"]", "must not include a path"),
        (
            "[\"https://{{ host }}\"]",
            "resolves to \"https://not a host\"",
        ),
    ] {
        let err = error_of(&format!(
            "[variables]\nhost = {{ default = \"not a host\" }}\n[trigger]\n[component.a]\nsource = \"a.wasm\"\nallowed_outbound_hosts = {hosts}\n"
        ));
        assert!(
            err.starts_with("component `a`: `allowed_outbound_hosts` is malformed"),
            "{err}"
        );
        assert!(err.contains(expected), "{hosts}: {err}");
    }
    // A template over a required variable cannot be checked at load time.
    assert!(
        parse_ok(&format!(
            "{HEAD}[variables]\nhost = {{ required = true }}\n[trigger]\n[component.a]\nsource = \"a.wasm\"\nallowed_outbound_hosts = [\"https://{{{{ host }}}}\"]\n"
        ))
        .is_ok()
    );
}

#[test]
fn routes_private_and_invalid_forms() {
    let err = error_of(
        "[[trigger.http]]\nroute = { private = false }\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n",
    );
    assert!(
        err.contains(
            "route must be a string pattern or '{ private = true }': 'a' has { private = false }"
        ),
        "{err}"
    );
    let err = error_of(
        "[[trigger.http]]\nroute = 3\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n",
    );
    assert!(err.contains("`route` must be a string"), "{err}");
}

#[test]
fn unsupported_spin_features_say_so() {
    for (body, what) in [
        (
            "[[trigger.http]]\nroute = \"/\"\ncomponent = { source = \"inline.wasm\" }\n",
            "inline component",
        ),
        (
            "[trigger]\n[component.a]\nsource = { url = \"https://x/a.wasm\", digest = \"sha256:00\" }\n",
            "remote `source",
        ),
        (
            "[trigger]\n[component.a]\nsource = { registry = \"r.io\", package = \"a:b\", version = \"1.0.0\" }\n",
            "registry `source",
        ),
        (
            "[trigger]\n[component.a]\nsource = \"a.wasm\"\nallowed_http_hosts = [\"example.com\"]\n",
            "allowed_http_hosts",
        ),
        (
            "[trigger]\n[component.a]\nsource = \"a.wasm\"\n[component.a.dependencies]\n\"a:b/c\" = \"1.0.0\"\n",
            "dependencies",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\nstatic_response = { status_code = 404 }\n",
            "static_response",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nexecutor = { type = \"wagi\" }\n[component.a]\nsource = \"a.wasm\"\n",
            "WAGI",
        ),
        (
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\ncomponents = { middleware = [\"b\"] }\n[component.a]\nsource = \"a.wasm\"\n",
            "middleware",
        ),
    ] {
        let err = error_of(body);
        assert!(
            err.contains(what) && err.ends_with("is not supported by eventplane"),
            "{body}\n=> {err}"
        );
    }
}

#[test]
fn non_root_base_is_refused_like_spin() {
    let err = error_of("[application.trigger.http]\nbase = \"/api\"\n[trigger]\n");
    assert!(err.contains("deprecated trigger 'base' field"), "{err}");
}

#[test]
fn check_sources_reports_missing_files() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("eventplane-manifest-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("spin.toml");
    std::fs::write(
        &path,
        format!(
            "{HEAD}[trigger]\n[component.here]\nsource = \"here.wasm\"\n[component.gone]\nsource = \"gone.wasm\"\n"
        ),
    )?;
    std::fs::write(dir.join("here.wasm"), b"\0asm")?;
    let m = load(&path)?;
    assert_eq!(m.base_dir, dir);
    let err = check_sources(&m).unwrap_err().to_string();
    std::fs::remove_dir_all(&dir)?;
    assert!(
        err.starts_with("component `gone`: source file ")
            && err.ends_with("gone.wasm does not exist"),
        "{err}"
    );
    assert!(matches!(
        load(&dir.join("nope.toml")),
        Err(ManifestError::Io { .. })
    ));
    Ok(())
}

const MQTT_APP: &str = r#"
[variables]
broker = { default = "mqtt://localhost" }
zone = { default = "north" }
password = { required = true, secret = true }

[application.trigger.mqtt]
address = "{{ broker }}"
username = "admin"
password = "{{ password }}"
keep_alive_interval = "30"

[[trigger.mqtt]]
id = "readings"
component = "sensor"
topic = "sensors/{{ zone }}/+"
qos = "1"

[[trigger.mqtt]]
component = "sensor"
topic = "alerts/#"
qos = "0"

[[trigger.http]]
route = "/..."
component = "sensor"

[component.sensor]
source = "sensor.wasm"
"#;

#[test]
fn mqtt_triggers_and_their_broker_parse() -> anyhow::Result<()> {
    use crate::mqtt::{MqttQos, MqttSettings, MqttTrigger};
    let m = parse_ok(&format!("{HEAD}{MQTT_APP}"))?;
    assert_eq!(
        m.mqtt,
        Some(MqttSettings {
            address: "{{ broker }}".into(),
            username: "admin".into(),
            password: "{{ password }}".into(),
            keep_alive_interval: 30,
        })
    );
    assert_eq!(
        m.mqtt_triggers,
        [
            MqttTrigger {
                id: Some("readings".into()),
                component: "sensor".into(),
                topic: "sensors/{{ zone }}/+".into(),
                qos: MqttQos::AtLeastOnce,
            },
            MqttTrigger {
                id: None,
                component: "sensor".into(),
                topic: "alerts/#".into(),
                qos: MqttQos::AtMostOnce,
            },
        ]
    );
    assert_eq!(m.http_triggers.len(), 1);
    // Without MQTT triggers the plugin never reads its table: no settings, whatever it says.
    let m = parse_ok(&format!(
        "{HEAD}[application.trigger.mqtt]\nwhatever = 1\n[trigger]\n"
    ))?;
    assert_eq!(m.mqtt, None);
    Ok(())
}

#[test]
fn mqtt_tables_refuse_what_the_plugin_refuses() {
    let with = |from: &str, to: &str| {
        assert!(MQTT_APP.contains(from), "{from}");
        error_of(&MQTT_APP.replacen(from, to, 1))
    };
    let cases = [
        // unknown keys, in either table
        (
            "keep_alive_interval = \"30\"",
            "keep_alive_interval = \"30\"\nclient_id = \"x\"",
            "invalid [application.trigger.mqtt]: unknown field `client_id`",
        ),
        (
            "qos = \"1\"",
            "qos = \"1\"\nretain = true",
            "invalid `mqtt` trigger config for [[trigger.mqtt]] #1: unknown field `retain`",
        ),
        // missing keys
        (
            "username = \"admin\"\n",
            "",
            "invalid [application.trigger.mqtt]: missing field `username`",
        ),
        (
            "topic = \"alerts/#\"\n",
            "",
            "[[trigger.mqtt]] #2: missing field `topic`",
        ),
        // no table at all
        (
            "[application.trigger.mqtt]",
            "[application.trigger.other]",
            "the application has [[trigger.mqtt]] entries but no [application.trigger.mqtt] table",
        ),
        // bad qos: a number, or not 0-2
        (
            "qos = \"1\"",
            "qos = 1",
            "invalid `mqtt` trigger config for [[trigger.mqtt]] #1: invalid type: integer `1`, expected a string",
        ),
        (
            "qos = \"0\"",
            "qos = \"3\"",
            "invalid `mqtt` trigger config for [[trigger.mqtt]] #2: `qos` must be \"0\", \"1\" or \"2\"; got \"3\"",
        ),
        // bad address schemes
        (
            "address = \"{{ broker }}\"",
            "address = \"mqtts://broker:8883\"",
            "invalid [application.trigger.mqtt]: `address`: \"mqtts://broker:8883\": TLS connections (mqtts://) are not supported by eventplane",
        ),
        (
            "address = \"{{ broker }}\"",
            "address = \"http://broker\"",
            "the http:// scheme is not supported; use mqtt://host[:port] or tcp://host[:port]",
        ),
        // templates name application variables
        (
            "address = \"{{ broker }}\"",
            "address = \"{{ brocker }}\"",
            "invalid [application.trigger.mqtt]: `address`: invalid variable template: unknown variable \"brocker\"",
        ),
        (
            "topic = \"sensors/{{ zone }}/+\"",
            "topic = \"sensors/{{ zones }}/+\"",
            "[[trigger.mqtt]] #1 (id `readings`): `topic`: invalid variable template: unknown variable \"zones\"",
        ),
        // keep-alive seconds
        (
            "keep_alive_interval = \"30\"",
            "keep_alive_interval = \"30s\"",
            "`keep_alive_interval` must be a whole number of seconds from 0 to 65535",
        ),
        (
            "keep_alive_interval = \"30\"",
            "keep_alive_interval = 30",
            "invalid [application.trigger.mqtt]: invalid type: integer `30`, expected a string",
        ),
        // topic filters and components
        (
            "topic = \"alerts/#\"",
            "topic = \"alerts/#/x\"",
            "`topic`: the topic \"alerts/#/x\" uses `#` other than as its whole last level",
        ),
        (
            "component = \"sensor\"\ntopic = \"alerts/#\"",
            "component = \"ghost\"\ntopic = \"alerts/#\"",
            "[[trigger.mqtt]] #2 uses component `ghost`, which is not defined",
        ),
        (
            "component = \"sensor\"\ntopic = \"alerts/#\"",
            "topic = \"alerts/#\"",
            "[[trigger.mqtt]] #2: `component` is missing",
        ),
    ];
    for (from, to, expected) in cases {
        let err = with(from, to);
        assert!(
            err.contains(expected),
            "{from} -> {to}:\n{err}\nwanted: {expected}"
        );
    }
}
