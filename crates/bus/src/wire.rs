//! The JSON shapes of Google Cloud Pub/Sub's REST API (v1) that eventplane uses: the
//! subscription resource (`GET`), `:pull`, `:acknowledge`, and the push envelope.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// A subscription resource, as `GET <url>` returns it (only what eventplane reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionResource {
    /// `projects/<project>/subscriptions/<subscription>`.
    #[serde(default)]
    pub name: String,
    /// The topic it is attached to; `_deleted-topic_` once its topic is gone.
    #[serde(default)]
    pub topic: String,
}

/// The body of `POST <url>:pull`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequest {
    /// The most messages to return.
    pub max_messages: u32,
    /// Answer at once when no message is available (so a tick never waits for messages).
    pub return_immediately: bool,
}

/// The answer to `:pull` (`{}` when there is nothing).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullResponse {
    /// The messages, each with the id to acknowledge it by.
    #[serde(default)]
    pub received_messages: Vec<ReceivedMessage>,
}

/// One pulled message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedMessage {
    /// What to acknowledge it with.
    pub ack_id: String,
    /// The message.
    pub message: PubsubMessage,
    /// How many times Pub/Sub has delivered it (when dead-lettering is on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_attempt: Option<u32>,
}

/// A Pub/Sub message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PubsubMessage {
    /// The data, base64.
    #[serde(default)]
    pub data: String,
    /// The attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Pub/Sub's id of the message.
    #[serde(default)]
    pub message_id: String,
    /// When Pub/Sub received it (RFC 3339).
    #[serde(default)]
    pub publish_time: String,
    /// The ordering key, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
}

impl PubsubMessage {
    /// The data, decoded; `Err` if it is not base64.
    pub fn decoded_data(&self) -> Result<Vec<u8>, String> {
        STANDARD
            .decode(self.data.trim())
            .map_err(|e| format!("the message data is not base64: {e}"))
    }
}

/// The body of `POST <url>:acknowledge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcknowledgeRequest {
    /// The ack ids of the messages done with.
    pub ack_ids: Vec<String>,
}

/// What Pub/Sub posts to a push endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushEnvelope {
    /// The message.
    pub message: PubsubMessage,
    /// The subscription that pushed it, `projects/<project>/subscriptions/<subscription>`.
    pub subscription: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_answers_parse_with_and_without_messages() {
        let empty: PullResponse = serde_json::from_str("{}").expect("empty");
        assert!(empty.received_messages.is_empty());
        let answer: PullResponse = serde_json::from_str(
            r#"{"receivedMessages":[{"ackId":"a1","deliveryAttempt":2,"message":{
                "data":"aGk=","attributes":{"ce-id":"1"},"messageId":"m1",
                "publishTime":"2026-12-04T07:00:00.123Z"}}]}"#,
        )
        .expect("answer");
        let message = &answer.received_messages[0];
        assert_eq!(message.ack_id, "a1");
        assert_eq!(message.message.decoded_data(), Ok(b"hi".to_vec()));
        assert_eq!(message.message.attributes["ce-id"], "1");
    }

    #[test]
    fn requests_use_pubsubs_field_names() {
        let pull = serde_json::to_value(PullRequest {
            max_messages: 100,
            return_immediately: true,
        })
        .expect("json");
        assert_eq!(
            pull,
            serde_json::json!({"maxMessages": 100, "returnImmediately": true})
        );
        let ack = serde_json::to_value(AcknowledgeRequest {
            ack_ids: vec!["a".into()],
        })
        .expect("json");
        assert_eq!(ack, serde_json::json!({"ackIds": ["a"]}));
    }

    #[test]
    fn bad_base64_data_is_reported() {
        let message = PubsubMessage {
            data: "***".into(),
            ..PubsubMessage::default()
        };
        assert!(message.decoded_data().is_err());
    }
}
