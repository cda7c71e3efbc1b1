//! The mqtt component: CloudEvents published over MQTT take the same ingestion path as those
//! published to the gateway. Spin's MQTT trigger calls [`handle-message`] once per message, in
//! a fresh instance; [`message::handle`] does the work.
//!
//! A message is either accepted (stored, handed to the dispatcher) or refused (recorded in the
//! application's log of rejected MQTT messages, with a notice to `<topic>/rejected`): both are
//! `Ok`, so the trigger acknowledges the message. Only a failure of eventplane itself (the
//! store, a variable) is an `Err`: the message is not acknowledged and comes again.
//!
//! [`handle-message`]: exports::Guest::handle_message
#![expect(
    unsafe_code,
    reason = "wit-bindgen's generated export glue converts raw ABI values"
)]

mod message;
mod settings;

wit_bindgen::generate!({
    path: "../../wit/mqtt-trigger",
    world: "spin:mqtt-trigger/spin-mqtt@3.0.0",
});

/// The component.
struct Mqtt;

impl Guest for Mqtt {
    async fn handle_message(message: Payload, metadata: Metadata) -> Result<(), Error> {
        // spin-sdk's calls (outbound HTTP, timers) run on its own executor, which waits with
        // `wasi:io/poll`: the work runs to completion on it, inside this export.
        eventplane_spin::timer::block_on(message::handle(&metadata.topic, &message))
            .map_err(|err| Error::Other(err.to_string()))
    }
}

export!(Mqtt);
