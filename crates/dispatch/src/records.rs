//! What the dispatcher records about deliveries: one [`Attempt`] per try, and a [`DeadLetter`]
//! for an event it gave up on. Both serialize camelCase, times as RFC 3339, absent optional
//! fields as `null`; the stored form is also the API's.

use eventplane_core::{EventId, SubscriptionId};
use eventplane_eventstore::StoredEvent;
use serde::{Deserialize, Serialize};

use crate::policy::ErrorClass;
use crate::time::Timestamp;

/// How much of a response body an attempt keeps, in bytes.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;

/// Whether an attempt delivered the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    /// The sink answered 2xx.
    Succeeded,
    /// Anything else.
    Failed,
}

/// What started an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The first attempt, when the event was accepted.
    First,
    /// A scheduled retry after a failed attempt.
    Retry,
    /// A client asked to deliver the event again (e.g. a dead letter).
    Redeliver,
    /// A client replayed past events to the subscription.
    Replay,
}

/// An event as its publisher and its subscribers know it: the CloudEvents `id`, `source` and
/// `type` it was published with (a subscriber sees them as `ce-id`, `ce-source`, `ce-type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudEventRef {
    /// CloudEvents `id`, the publisher's.
    pub id: String,
    /// CloudEvents `source`.
    pub source: String,
    /// CloudEvents `type`.
    #[serde(rename = "type")]
    pub type_name: String,
}

impl CloudEventRef {
    /// The CloudEvents identity of a stored event.
    pub fn of(event: &StoredEvent) -> Self {
        Self {
            id: event.event_id.clone(),
            source: event.source.clone(),
            type_name: event.type_name.clone(),
        }
    }
}

/// One delivery attempt of an event to a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// The event.
    pub event_id: EventId,
    /// The event as published (`null` in records older than this field).
    #[serde(default)]
    pub cloud_event: Option<CloudEventRef>,
    /// Its number, 1-based.
    pub attempt: u32,
    /// Whether it delivered the event.
    pub outcome: AttemptOutcome,
    /// The response status, if the sink responded.
    pub response_status: Option<u16>,
    /// How long it took, milliseconds.
    pub duration_ms: u64,
    /// Why it failed (`None` on success).
    pub error_class: Option<ErrorClass>,
    /// The start of the response body ([`response_excerpt`]), if there was one.
    pub response_body: Option<String>,
    /// When the next attempt is due, if one is scheduled.
    pub next_attempt_at: Option<Timestamp>,
    /// What started it.
    pub trigger: Trigger,
    /// When it started.
    pub at: Timestamp,
}

/// An event the dispatcher gave up delivering to a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The event.
    pub event_id: EventId,
    /// The event as published (`null` if it was no longer retained when it was given up on and
    /// no attempt recorded it).
    #[serde(default)]
    pub cloud_event: Option<CloudEventRef>,
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// Why ([`Decision`](crate::policy::Decision)'s reason).
    pub reason: String,
    /// How many attempts were made.
    pub attempts: u32,
    /// The last response status, if the sink responded.
    pub last_status: Option<u16>,
    /// When it was dead-lettered.
    pub at: Timestamp,
}

/// The first [`RESPONSE_EXCERPT_BYTES`] of a response body as text, for attempt records:
/// cut on a UTF-8 character boundary, invalid UTF-8 replaced by `U+FFFD`, and never longer than
/// the limit. `None` for an empty body.
pub fn response_excerpt(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let mut cut = body.len().min(RESPONSE_EXCERPT_BYTES);
    if cut < body.len() {
        // Back off to the start of a character, if the cut splits one (at most 3 bytes back).
        let mut back = 0;
        while back < 3 && cut > 0 && is_continuation(body[cut]) {
            cut -= 1;
            back += 1;
        }
        if back == 3 && is_continuation(body[cut]) {
            // Not UTF-8 here anyway: keep the full length and let the lossy decode cope.
            cut = RESPONSE_EXCERPT_BYTES;
        }
    }
    let mut text = String::from_utf8_lossy(&body[..cut]).into_owned();
    if text.len() > RESPONSE_EXCERPT_BYTES {
        // Replacement characters (3 bytes each) grew it: cut again on a character boundary.
        let mut end = RESPONSE_EXCERPT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Some(text)
}

fn is_continuation(byte: u8) -> bool {
    byte & 0b1100_0000 == 0b1000_0000
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event() -> EventId {
        "evt_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f"
            .parse()
            .expect("event id")
    }

    #[test]
    fn attempts_serialize_with_the_documented_names() -> Result<(), serde_json::Error> {
        let failed = Attempt {
            event_id: event(),
            cloud_event: Some(CloudEventRef {
                id: "4711".into(),
                source: "/applications/shop".into(),
                type_name: "order.created.v1".into(),
            }),
            attempt: 2,
            outcome: AttemptOutcome::Failed,
            response_status: Some(503),
            duration_ms: 120,
            error_class: Some(ErrorClass::Http5xx),
            response_body: Some("busy".into()),
            next_attempt_at: Some(Timestamp::from_unix_ms(1_700_000_010_000)),
            trigger: Trigger::Retry,
            at: Timestamp::from_unix_ms(1_700_000_000_000),
        };
        let json = serde_json::to_value(&failed)?;
        assert_eq!(
            json,
            json!({
                "eventId": "evt_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f",
                "cloudEvent": {"id": "4711", "source": "/applications/shop", "type": "order.created.v1"},
                "attempt": 2,
                "outcome": "failed",
                "responseStatus": 503,
                "durationMs": 120,
                "errorClass": "http_5xx",
                "responseBody": "busy",
                "nextAttemptAt": "2023-11-14T22:13:30.000Z",
                "trigger": "retry",
                "at": "2023-11-14T22:13:20.000Z",
            })
        );
        assert_eq!(serde_json::from_value::<Attempt>(json)?, failed);
        let succeeded = Attempt {
            outcome: AttemptOutcome::Succeeded,
            response_status: None,
            error_class: None,
            response_body: None,
            next_attempt_at: None,
            trigger: Trigger::Replay,
            ..failed
        };
        let json = serde_json::to_value(&succeeded)?;
        assert_eq!(json["errorClass"], json!(null));
        assert_eq!(json["nextAttemptAt"], json!(null));
        assert_eq!(json["trigger"], json!("replay"));
        assert_eq!(serde_json::from_value::<Attempt>(json)?, succeeded);
        for (trigger, name) in [(Trigger::First, "first"), (Trigger::Redeliver, "redeliver")] {
            assert_eq!(serde_json::to_value(trigger)?, json!(name));
        }
        Ok(())
    }

    #[test]
    fn dead_letters_serialize_with_the_documented_names() -> Result<(), serde_json::Error> {
        let sub: SubscriptionId = "sub_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f"
            .parse()
            .map_err(serde::de::Error::custom)?;
        let dead = DeadLetter {
            event_id: event(),
            cloud_event: None,
            subscription_id: sub,
            reason: "gave up".into(),
            attempts: 11,
            last_status: None,
            at: Timestamp::from_unix_ms(0),
        };
        let json = serde_json::to_value(&dead)?;
        assert_eq!(
            json,
            json!({
                "eventId": "evt_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f",
                "cloudEvent": null,
                "subscriptionId": "sub_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f",
                "reason": "gave up",
                "attempts": 11,
                "lastStatus": null,
                "at": "1970-01-01T00:00:00.000Z",
            })
        );
        assert_eq!(serde_json::from_value::<DeadLetter>(json)?, dead);
        Ok(())
    }

    #[test]
    fn excerpts_keep_the_first_kibibyte() {
        assert_eq!(response_excerpt(b""), None);
        assert_eq!(response_excerpt(b"ok").as_deref(), Some("ok"));
        let long = "a".repeat(5000);
        assert_eq!(response_excerpt(long.as_bytes()), Some("a".repeat(1024)));
        let exact = "b".repeat(1024);
        assert_eq!(response_excerpt(exact.as_bytes()), Some(exact));
    }

    #[test]
    fn excerpts_cut_on_a_character_boundary() {
        for prefix in 0..4 {
            // "€" is 3 bytes; shift it across the 1024-byte line.
            let body = format!("{}{}", "a".repeat(1022 + prefix), "€".repeat(10));
            let excerpt = response_excerpt(body.as_bytes()).expect("excerpt");
            assert!(excerpt.len() <= 1024, "{prefix}");
            assert!(body.starts_with(&excerpt), "{prefix}");
            assert!(excerpt.len() >= 1022, "{prefix}");
            assert!(!excerpt.contains('\u{FFFD}'), "{prefix}");
        }
        let emoji = "😀".repeat(400);
        let excerpt = response_excerpt(emoji.as_bytes()).expect("excerpt");
        assert_eq!(excerpt, "😀".repeat(256));
    }

    #[test]
    fn excerpts_of_binary_bodies_are_lossy_and_bounded() {
        let binary: Vec<u8> = (0..4000u32).map(|i| (i % 256) as u8).collect();
        let excerpt = response_excerpt(&binary).expect("excerpt");
        assert!(excerpt.len() <= 1024);
        assert!(excerpt.contains('\u{FFFD}'));
        let continuations = vec![0x80u8; 3000];
        let excerpt = response_excerpt(&continuations).expect("excerpt");
        assert!(excerpt.len() <= 1024);
        assert!(excerpt.chars().all(|c| c == '\u{FFFD}'));
        let invalid_then_text = [vec![0xFFu8; 10], b"after".to_vec()].concat();
        let excerpt = response_excerpt(&invalid_then_text).expect("excerpt");
        assert!(excerpt.ends_with("after"));
    }
}
