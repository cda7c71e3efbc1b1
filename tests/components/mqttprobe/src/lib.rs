//! A component for Spin's MQTT trigger (`spin:mqtt-trigger/spin-mqtt`, the project's
//! `wit/mqtt-trigger`) that records what it receives in the key-value store `default`, for the
//! host's MQTT tests.
//!
//! For every message, with `<payload>` its payload as (lossy) UTF-8 and `<topic>` the concrete
//! topic it was published to:
//!
//! | key | value |
//! |---|---|
//! | `count/<payload>` | how many times the payload was delivered (`wasi:keyvalue/atomics` increment: 8 bytes, little-endian) |
//! | `msg/<topic>/<payload>` | the payload |
//!
//! Then, by payload:
//! - `fail-once:...`: the first delivery returns an error (so the trigger must deliver it
//!   again); later ones succeed.
//! - `busy:<ms>`: computes for that many milliseconds without calling the host (almost), then
//!   succeeds.
//! - `publish:<topic>`: publishes `ok` to `<topic>` at QoS 1 with `spin_sdk::mqtt`, on the
//!   broker named by the component variable `mqtt_address`. A failure is recorded under
//!   `error/<payload>` (and the message counts as handled).
#![expect(
    unsafe_code,
    reason = "wit-bindgen's generated exports are unsafe ABI glue"
)]

use spin_sdk::key_value::Store;
use spin_sdk::mqtt::{Connection, Error as MqttError, Qos};
use spin_sdk::wit::wasi::keyvalue::{atomics, store as wasi_store};

wit_bindgen::generate!({
    path: "../../../wit/mqtt-trigger",
    world: "spin-mqtt",
});

/// The exported `handle-message`.
struct MqttProbe;

export!(MqttProbe);

impl Guest for MqttProbe {
    async fn handle_message(message: Vec<u8>, metadata: Metadata) -> Result<(), Error> {
        handle(&message, &metadata.topic)
    }
}

fn other(context: &str, e: impl std::fmt::Debug) -> Error {
    Error::Other(format!("{context}: {e:?}"))
}

fn handle(message: &[u8], topic: &str) -> Result<(), Error> {
    let payload = String::from_utf8_lossy(message);
    let bucket = wasi_store::open("default").map_err(|e| other("open", e))?;
    let deliveries = atomics::increment(&bucket, &format!("count/{payload}"), 1)
        .map_err(|e| other("increment", e))?;
    let store = Store::open_default().map_err(|e| other("open", e))?;
    store
        .set(&format!("msg/{topic}/{payload}"), message)
        .map_err(|e| other("set", e))?;
    if payload.starts_with("fail-once:") && deliveries == 1 {
        return Err(Error::Other(format!(
            "failing the first delivery of {payload:?}, as asked"
        )));
    }
    if let Some(ms) = payload
        .strip_prefix("busy:")
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        busy(ms);
    }
    if let Some(target) = payload.strip_prefix("publish:")
        && let Err(e) = publish(target)
    {
        store
            .set(&format!("error/{payload}"), describe(&e).as_bytes())
            .map_err(|e| other("set", e))?;
    }
    Ok(())
}

/// Spins for `ms` milliseconds, reading the clock only every million rounds.
fn busy(ms: u64) {
    let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
    let mut x = 1u64;
    while std::time::Instant::now() < until {
        for _ in 0..1_000_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

fn publish(topic: &str) -> Result<(), MqttError> {
    let address = spin_sdk::variables::get("mqtt_address")
        .map_err(|e| MqttError::Other(format!("variable mqtt_address: {e}")))?;
    let connection = Connection::open(&address, "", "", 30)?;
    connection.publish(topic, b"ok", Qos::AtLeastOnce)
}

fn describe(e: &MqttError) -> String {
    match e {
        MqttError::InvalidAddress => "invalid-address".to_owned(),
        MqttError::TooManyConnections => "too-many-connections".to_owned(),
        MqttError::ConnectionFailed(message) => format!("connection-failed: {message}"),
        MqttError::Other(message) => format!("other: {message}"),
    }
}
