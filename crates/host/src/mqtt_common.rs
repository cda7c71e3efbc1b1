//! What the MQTT trigger ([`crate::mqtt_trigger`]) and outbound MQTT ([`crate::mqtt_outbound`])
//! share: client options, reconnection back-off, and how connection errors are reported.

use std::time::Duration;

use rumqttc::{ConnectReturnCode, ConnectionError, MqttOptions, QoS};

/// The largest packet MQTT 3.1.1 can carry (its remaining-length field tops out at
/// 268,435,455 bytes): the host accepts whatever the broker accepts.
pub const MAX_PACKET_BYTES: usize = 268_435_455;

/// The first wait before reconnecting.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between reconnections (also the wait after a refusal of the credentials).
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Waits between reconnection attempts: 100 ms, doubling up to 5 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: FIRST_BACKOFF,
        }
    }
}

impl Backoff {
    /// The wait before the next attempt; the one after it is twice as long (at most 5 s).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        wait
    }

    /// Starts again from 100 ms (after a success).
    pub fn reset(&mut self) {
        self.next = FIRST_BACKOFF;
    }

    /// Goes straight to the longest wait (the broker refused us: retrying fast is pointless).
    pub fn jump_to_max(&mut self) {
        self.next = MAX_BACKOFF;
    }
}

/// Options for a plain-TCP MQTT 3.1.1 client of `host:port`: credentials only when a username
/// or password is given (both empty: anonymous), packets up to MQTT's limit.
pub fn client_options(
    client_id: &str,
    host: &str,
    port: u16,
    username: &str,
    password: &str,
    keep_alive: Duration,
) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, host, port);
    // rumqttc refuses (panics on) keep-alives under a second other than zero: whole seconds
    // only, as MQTT carries them.
    let keep_alive = Duration::from_secs(keep_alive.as_secs().min(u64::from(u16::MAX)));
    options
        .set_keep_alive(keep_alive)
        .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    if !username.is_empty() || !password.is_empty() {
        options.set_credentials(username, password);
    }
    options
}

/// Whether the broker refused the connection itself (bad credentials, not authorised, client
/// id refused): retrying at once will not help.
pub fn is_refusal(error: &ConnectionError) -> bool {
    matches!(error, ConnectionError::ConnectionRefused(_))
}

/// A connection error in words a user can act on.
pub fn describe(error: &ConnectionError) -> String {
    match error {
        ConnectionError::ConnectionRefused(code) => {
            let why = match code {
                ConnectReturnCode::BadUserNamePassword => {
                    "bad username or password (check `username` and `password`)"
                }
                ConnectReturnCode::NotAuthorized => {
                    "not authorized (check `username` and `password`, and the broker's access rules)"
                }
                ConnectReturnCode::BadClientId => "client id rejected",
                ConnectReturnCode::ServiceUnavailable => "service unavailable",
                ConnectReturnCode::RefusedProtocolVersion => "MQTT 3.1.1 not supported",
                ConnectReturnCode::Success => "no reason given",
            };
            format!("the broker refused the connection: {why}")
        }
        ConnectionError::NetworkTimeout => "no answer from the broker in time".to_owned(),
        ConnectionError::Io(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// rumqttc's QoS for a level (0, 1 or 2; anything else is treated as 2).
pub fn qos_of_level(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_to_5s() {
        let mut backoff = Backoff::default();
        let waits: Vec<u128> = (0..9).map(|_| backoff.next_wait().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), FIRST_BACKOFF);
        backoff.jump_to_max();
        assert_eq!(backoff.next_wait(), MAX_BACKOFF);
    }

    #[test]
    fn anonymous_clients_send_no_credentials() {
        let options = client_options("c", "h", 1, "", "", Duration::from_secs(30));
        assert!(options.credentials().is_none());
        assert_eq!(options.keep_alive(), Duration::from_secs(30));
        let options = client_options("c", "h", 1, "u", "", Duration::from_secs(1 << 20));
        assert!(options.credentials().is_some());
        assert_eq!(options.keep_alive(), Duration::from_secs(65535));
    }
}
