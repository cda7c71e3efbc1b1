//! `spin-mqtt.toml` is `spin.toml` plus Spin's MQTT trigger in the plugin's own format, and
//! each runs where it should: on real Spin, `spin.toml` needs no plugin, and `spin-mqtt.toml`
//! with the `trigger-mqtt` plugin takes events over MQTT. Spin is found on `SPIN_BIN` or
//! `PATH`; where it (or the plugin, or mosquitto) is absent the Spin checks are skipped,
//! saying so.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use eventplane_tests::bench::{ADMIN, counting_subscriber, register_shop};
use eventplane_tests::mosquitto::Mosquitto;
use eventplane_tests::mqtt::MqttClient;
use eventplane_tests::spin::{SpinApp, spin_binary};
use eventplane_tests::workspace_root;
use serde_json::json as j;
use toml::Value;

/// Every leaf of `value` by its dotted path (arrays of tables by index).
fn leaves(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Table(table) => {
            for (key, value) in table {
                leaves(&format!("{prefix}{key}."), value, out);
            }
        }
        Value::Array(items) if items.iter().all(Value::is_table) && !items.is_empty() => {
            for (n, item) in items.iter().enumerate() {
                leaves(&format!("{prefix}{n}."), item, out);
            }
        }
        other => {
            out.insert(prefix.trim_end_matches('.').to_owned(), other.clone());
        }
    }
}

fn manifest(name: &str) -> anyhow::Result<Value> {
    Ok(toml::from_str(&std::fs::read_to_string(
        workspace_root().join(name),
    )?)?)
}

#[test]
fn spin_mqtt_toml_is_spin_toml_plus_the_mqtt_trigger_in_the_plugins_format() -> anyhow::Result<()> {
    let (plain, mqtt) = (manifest("spin.toml")?, manifest("spin-mqtt.toml")?);
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    leaves("", &plain, &mut a);
    leaves("", &mqtt, &mut b);
    // Everything spin.toml says, spin-mqtt.toml says the same, but the broker's address,
    // which the trigger needs.
    for (key, value) in &a {
        if key == "variables.mqtt_address.default" {
            continue;
        }
        assert_eq!(b.get(key), Some(value), "spin-mqtt.toml differs at {key}");
    }
    // What it adds: the trigger and the mqtt component, nothing else.
    let added: Vec<&String> = b
        .keys()
        .filter(|k| !a.contains_key(*k))
        .filter(|k| {
            !k.starts_with("application.trigger.mqtt.")
                && !k.starts_with("trigger.mqtt.")
                && !k.starts_with("component.mqtt.")
        })
        .collect();
    assert_eq!(added, Vec::<&String>::new());

    // The plugin's manifest format (trigger-mqtt 0.8.0): the application table has exactly
    // these four keys, all strings, the keep-alive a number as written (it is not templated).
    let app = mqtt["application"]["trigger"]["mqtt"]
        .as_table()
        .ok_or_else(|| anyhow::anyhow!("no [application.trigger.mqtt]"))?;
    let mut keys: Vec<&str> = app.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["address", "keep_alive_interval", "password", "username"]
    );
    assert!(app.values().all(Value::is_str));
    app["keep_alive_interval"]
        .as_str()
        .unwrap_or_default()
        .parse::<u64>()?;
    // Each trigger: component, topic, qos (and optionally id), strings; qos "0", "1" or "2";
    // the component exists.
    let triggers = mqtt["trigger"]["mqtt"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("no [[trigger.mqtt]]"))?;
    assert!(!triggers.is_empty());
    for trigger in triggers {
        let table = trigger
            .as_table()
            .ok_or_else(|| anyhow::anyhow!("{trigger}"))?;
        for key in table.keys() {
            assert!(
                ["component", "topic", "qos", "id"].contains(&key.as_str()),
                "{key}"
            );
        }
        assert!(table.values().all(Value::is_str), "{trigger}");
        assert!(["0", "1", "2"].contains(&table["qos"].as_str().unwrap_or_default()));
        let component = table["component"].as_str().unwrap_or_default();
        assert!(mqtt["component"].get(component).is_some(), "{component}");
    }
    Ok(())
}

/// Whether the Spin data directory `data_dir` (`SPIN_DATA_DIR`; `None`: the user's) has the
/// `trigger-mqtt` plugin.
fn has_plugin(spin: &Path, data_dir: Option<&Path>) -> bool {
    let mut command = std::process::Command::new(spin);
    command.args(["plugins", "list", "--installed"]);
    if let Some(dir) = data_dir {
        command.env("SPIN_DATA_DIR", dir);
    }
    command
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("trigger-mqtt"))
}

crate::e2e_test! {
    async fn spin_up_without_the_plugin_serves_spin_toml_and_names_what_spin_mqtt_toml_needs() -> anyhow::Result<()> {
        let Some(spin) = spin_binary() else {
            eprintln!("skipped: no spin on SPIN_BIN or PATH");
            return Ok(());
        };
        // A Spin data directory of its own: no plugins at all.
        let data = tempfile::tempdir()?;
        let data_dir = data.path().to_string_lossy().into_owned();
        assert!(!has_plugin(&spin, Some(data.path())));
        let env = [
            ("SPIN_DATA_DIR", data_dir.as_str()),
            ("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN),
        ];
        let state = tempfile::tempdir()?;
        let app = SpinApp::start(&spin, &workspace_root().join("spin.toml"), state.path(), &env).await?;
        let answer = reqwest::Client::new()
            .post(app.url("/graphql"))
            .bearer_auth(ADMIN)
            .json(&j!({"query": "{ applications { totalCount } }"}))
            .send()
            .await?;
        assert_eq!(answer.status(), 200);
        app.stop().await?;

        let state = tempfile::tempdir()?;
        let refused = SpinApp::start(&spin, &workspace_root().join("spin-mqtt.toml"), state.path(), &env).await;
        let message = match refused {
            Ok(app) => {
                let log = app.log_text();
                app.stop().await?;
                anyhow::bail!("spin up -f spin-mqtt.toml ran without the plugin:\n{log}")
            }
            Err(err) => format!("{err:#}"),
        };
        assert!(message.contains("mqtt"), "{message}");
        Ok(())
    }
}

crate::e2e_test! {
    async fn on_spin_with_the_plugin_events_published_over_mqtt_are_stored_and_delivered() -> anyhow::Result<()> {
        let Some(spin) = spin_binary() else {
            eprintln!("skipped: no spin on SPIN_BIN or PATH");
            return Ok(());
        };
        if !has_plugin(&spin, None) {
            eprintln!("skipped: the trigger-mqtt plugin is not installed (../shared/tools/install-trigger-mqtt)");
            return Ok(());
        }
        let Some(broker) = Mosquitto::start()? else {
            return Ok(());
        };
        let url = broker.url();
        let env = [
            ("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN),
            ("SPIN_VARIABLE_TOKEN_TTL_SECONDS", "3600"),
            ("SPIN_VARIABLE_DELIVERY_ALLOWED_HOSTS", "http://127.0.0.1:*"),
            ("SPIN_VARIABLE_MQTT_ADDRESS", url.as_str()),
            ("SPIN_VARIABLE_MQTT_ALLOWED_HOSTS", url.as_str()),
        ];
        let state = tempfile::tempdir()?;
        let app = SpinApp::start(&spin, &workspace_root().join("spin-mqtt.toml"), state.path(), &env).await?;
        let http = reqwest::Client::new();
        let (subscriber, arrivals) = counting_subscriber().await?;
        let token = register_shop(&http, &app, &subscriber.url("/in")).await?;
        let client = MqttClient::connect(&url, "e2e-spin-publisher").await?;
        let notices = MqttClient::connect(&url, "e2e-spin-notices").await?;
        notices.subscribe("eventplane/+/events/rejected").await?;
        // The plugin subscribes once its process runs: publish until the first event is taken.
        let event = |id: &str| {
            j!({"specversion": "1.0", "id": id, "source": "/applications/bench-shop",
                "type": "order.created.v1", "datacontenttype": "application/json",
                "accesstoken": token, "data": {"orderId": id}})
            .to_string()
            .into_bytes()
        };
        let topic = "eventplane/bench-shop/events";
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempts = 0;
        loop {
            client.publish_acked(topic, event("spin-1")).await?;
            attempts += 1;
            // Delivered by the hand-off, or else by the tick a scheduler makes.
            tokio::time::sleep(Duration::from_millis(500)).await;
            http.post(app.url("/dispatcher/tick")).bearer_auth(ADMIN).send().await?;
            if arrivals.lock().expect("lock").contains_key("spin-1") {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "not delivered:\n{}", app.log_text());
        }
        // Stored once however often it came.
        tokio::time::sleep(Duration::from_secs(1)).await;
        http.post(app.url("/dispatcher/tick")).bearer_auth(ADMIN).send().await?;
        assert_eq!(arrivals.lock().expect("lock")["spin-1"].1, 1, "after {attempts} publishes");
        // A refused message is recorded and noticed on Spin too.
        client.publish_acked(topic, b"{not json".to_vec()).await?;
        let notice = notices.wait_received(1, Duration::from_secs(30)).await?;
        assert_eq!(notice[0].json()["code"], "INVALID_CLOUDEVENT", "{}", app.log_text());
        app.stop().await
    }
}
