//! Spin's MQTT trigger (the `trigger-mqtt` plugin, 0.8.0 for Spin 4): its manifest tables and
//! the rules for broker addresses and topic filters.
//!
//! ```toml
//! [application.trigger.mqtt]
//! address = "mqtt://localhost:1883"   # templates allowed
//! username = "{{ mqtt_user }}"         # templates allowed; "" and "" mean anonymous
//! password = "{{ mqtt_password }}"     # templates allowed
//! keep_alive_interval = "30"           # seconds
//!
//! [[trigger.mqtt]]
//! id = "sensor-readings"               # optional
//! component = "sensor"
//! topic = "sensors/+/readings"         # MQTT wildcards and templates allowed
//! qos = "1"                            # "0", "1" or "2"
//! ```
//!
//! All four keys of `[application.trigger.mqtt]` are required strings, and unknown keys are
//! refused in both tables, as the plugin's `deny_unknown_fields` does. A manifest with
//! `[[trigger.mqtt]]` entries needs the `[application.trigger.mqtt]` table.
//!
//! Templates are checked against the application variables when the manifest is parsed; a
//! literal address and a literal topic are checked then too. Templated ones can only be
//! checked once resolved: [`BrokerAddress::parse`] and [`check_topic_filter`] are for that.

use std::fmt;

/// `[application.trigger.mqtt]`: the broker every `[[trigger.mqtt]]` entry connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttSettings {
    /// `address`, as written (may be a template): `mqtt://host[:port]` or `tcp://host[:port]`.
    pub address: String,
    /// `username`, as written (may be a template); empty with an empty password: anonymous.
    pub username: String,
    /// `password`, as written (may be a template).
    pub password: String,
    /// `keep_alive_interval`, in seconds (`0`: no keep-alive).
    pub keep_alive_interval: u16,
}

/// The quality of service of a `[[trigger.mqtt]]` subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MqttQos {
    /// `"0"`: at most once.
    AtMostOnce,
    /// `"1"`: at least once.
    AtLeastOnce,
    /// `"2"`: exactly once.
    ExactlyOnce,
}

impl MqttQos {
    /// Parses the manifest's `qos` string: `"0"`, `"1"` or `"2"`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "0" => Some(Self::AtMostOnce),
            "1" => Some(Self::AtLeastOnce),
            "2" => Some(Self::ExactlyOnce),
            _ => None,
        }
    }

    /// The level as a number (0, 1 or 2).
    pub fn level(self) -> u8 {
        match self {
            Self::AtMostOnce => 0,
            Self::AtLeastOnce => 1,
            Self::ExactlyOnce => 2,
        }
    }
}

/// One `[[trigger.mqtt]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttTrigger {
    /// `id`, if given.
    pub id: Option<String>,
    /// `component`: the id of a `[component.<id>]`.
    pub component: String,
    /// `topic`, as written: an MQTT topic filter (`+` and `#` wildcards), maybe a template.
    pub topic: String,
    /// `qos`
    pub qos: MqttQos,
}

/// The most a keep-alive interval can be: MQTT carries it as 16-bit seconds.
pub const MAX_KEEP_ALIVE_SECS: u16 = u16::MAX;

/// The port an address without one uses.
pub const DEFAULT_PORT: u16 = 1883;

/// A broker address the trigger can connect to: plain MQTT over TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    /// The host: a domain name, an IPv4 address, or an IPv6 address in brackets (`[::1]`).
    pub host: String,
    /// The port (1883 unless the address gives one).
    pub port: u16,
}

impl BrokerAddress {
    /// Parses `mqtt://host[:port]` or `tcp://host[:port]` (a trailing `/` is tolerated). Any
    /// other scheme, credentials, a path or a query are refused, with the reason.
    pub fn parse(address: &str) -> Result<Self, String> {
        let address = address.trim();
        let Some((scheme, _)) = address.split_once("://") else {
            return Err(format!(
                "{address:?} is not a broker address: expected mqtt://host[:port] or tcp://host[:port]"
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => {}
            "mqtts" | "ssl" | "wss" => {
                return Err(format!(
                    "{address:?}: TLS connections ({scheme}://) are not supported by eventplane; use mqtt://host[:port] or tcp://host[:port]"
                ));
            }
            _ => {
                return Err(format!(
                    "{address:?}: the {scheme}:// scheme is not supported; use mqtt://host[:port] or tcp://host[:port]"
                ));
            }
        }
        let url = url::Url::parse(address).map_err(|e| format!("{address:?}: {e}"))?;
        let host = match url.host_str() {
            Some(host) if !host.is_empty() => host.to_owned(),
            _ => return Err(format!("{address:?} has no host")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "{address:?}: give credentials as `username` and `password`, not in the address"
            ));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{address:?}: an address is mqtt://host[:port], without a path or query"
            ));
        }
        Ok(Self {
            host,
            port: url.port().unwrap_or(DEFAULT_PORT),
        })
    }
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mqtt://{}:{}", self.host, self.port)
    }
}

/// Checks an MQTT 3.1.1 topic filter: not empty, at most 65,535 bytes, no NUL; `+` only as a
/// whole level; `#` only as the whole last level.
pub fn check_topic_filter(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("the topic is empty".to_owned());
    }
    if topic.len() > usize::from(u16::MAX) {
        return Err(format!(
            "the topic is {} bytes long (at most 65535)",
            topic.len()
        ));
    }
    if topic.contains('\0') {
        return Err(format!("the topic {topic:?} contains a NUL character"));
    }
    let levels: Vec<&str> = topic.split('/').collect();
    for (index, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || index + 1 != levels.len()) {
            return Err(format!(
                "the topic {topic:?} uses `#` other than as its whole last level"
            ));
        }
        if level.contains('+') && *level != "+" {
            return Err(format!(
                "the topic {topic:?} uses `+` other than as a whole level"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_plain_mqtt_with_default_port() {
        let parse = |a: &str| BrokerAddress::parse(a);
        assert_eq!(
            parse("mqtt://localhost"),
            Ok(BrokerAddress {
                host: "localhost".into(),
                port: 1883
            })
        );
        assert_eq!(
            parse("tcp://10.0.0.1:1884/"),
            Ok(BrokerAddress {
                host: "10.0.0.1".into(),
                port: 1884
            })
        );
        assert_eq!(
            parse("mqtt://[::1]:2000").map(|a| a.to_string()),
            Ok("mqtt://[::1]:2000".to_owned())
        );
        let refused = |a: &str, why: &str| {
            let err = parse(a).err().unwrap_or_default();
            assert!(err.contains(why), "{a}: {err}");
        };
        refused("mqtts://broker:8883", "TLS");
        refused("ssl://broker:8883", "TLS");
        refused("ws://broker:8000", "ws:// scheme is not supported");
        refused("localhost:1883", "not a broker address");
        refused("mqtt://user:pw@broker", "credentials");
        refused("mqtt://broker/path", "without a path");
        refused("mqtt://broker?client_id=1", "without a path or query");
        refused("mqtt://:1883", "host");
        refused("mqtt://broker:99999", "invalid port");
    }

    #[test]
    fn topic_filters_follow_mqtt() {
        for ok in ["a", "a/b", "a/+/c", "+", "#", "a/#", "/a", "a//b", "$SYS/#"] {
            assert_eq!(check_topic_filter(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a/#/b", "a#", "a/b+", "+a/b", "a\0b"] {
            assert!(check_topic_filter(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn qos_levels_are_strings() {
        assert_eq!(MqttQos::parse("0"), Some(MqttQos::AtMostOnce));
        assert_eq!(MqttQos::parse("2").map(MqttQos::level), Some(2));
        assert_eq!(MqttQos::parse("3"), None);
        assert_eq!(MqttQos::parse(" 1"), None);
    }
}
