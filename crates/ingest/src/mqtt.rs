//! Events published over MQTT: what a message means before it takes the common path.
//!
//! Per the CloudEvents MQTT 3.1.1 binding a message has no headers, so its payload is
//! structured-mode JSON: an object is one CloudEvent, an array a batch. The application's
//! access token travels in each event's extension attribute [`ACCESS_TOKEN`] (the bare JWT, or
//! `Bearer <JWT>`); it is taken out of every event ([`parse`]) before anything is checked or
//! stored, and it is never kept: what is recorded of a refused message has every token
//! replaced by [`REDACTED`] ([`redact`]).
//!
//! - The topic names the application: the segment at the `+` of the pattern `mqtt_topic`
//!   ([`TopicPattern`]); a pattern without `+` leaves it to the token.
//! - The token's application must be the topic's, with the scope `events:publish`, and every
//!   event's `source` must be that application's ([`authorize`]).
//! - A refused message is recorded in its application's [`rejected_log`] ([`rejected_record`])
//!   and a notice goes to `<topic>/rejected` ([`notice`]); messages on such topics are
//!   eventplane's own notices and are ignored ([`is_notice`]).

use std::collections::BTreeMap;

use eventplane_core::Error;
use eventplane_core::keys::Kind;
use eventplane_events::cloudevents::{self, Event};
use eventplane_events::limits;
use eventplane_events::token::{self, AuthError, Publisher, SCOPE_PUBLISH};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Rejection;
use crate::rejected::{RejectedLog, RejectedMessage};

/// The CloudEvents extension attribute carrying the application's access token.
pub const ACCESS_TOKEN: &str = "accesstoken";
/// What a token is replaced with wherever a refused message is kept.
pub const REDACTED: &str = "[redacted]";
/// The suffix of the topics rejection notices go to (`<topic>/rejected`).
pub const NOTICE_SUFFIX: &str = "/rejected";
/// The default of `mqtt_topic`.
pub const DEFAULT_TOPIC: &str = "eventplane/+/events";
/// The log name of refused messages whose application is not known.
pub const NO_APPLICATION: &str = "-";
/// Records and owned index: the refused MQTT messages of one application.
pub const MQTT_REJECTED: Kind = Kind::new("mqtt-rejected");
/// System counters electing the first writer of a refused-message list.
pub const MQTT_SEEDS: Kind = Kind::new("mqtt-seed");
/// Tokens shorter than this are only redacted as the attribute's value, not wherever the same
/// text appears (no real token is that short; redacting every such text would garble data).
const MIN_TOKEN_REDACTED_EVERYWHERE: usize = 16;

/// Whether `topic` is one of eventplane's rejection notices (`…/rejected`): such messages
/// never come back in.
pub fn is_notice(topic: &str) -> bool {
    topic.ends_with(NOTICE_SUFFIX)
}

/// The log of the refused MQTT messages of `application` ([`NO_APPLICATION`] when unknown):
/// records `t/<tenant>/r/mqtt-rejected/<application>:<message id>`, listed in
/// `t/<tenant>/i/mqtt-rejected/<application>`.
pub fn rejected_log(application: &str) -> RejectedLog {
    RejectedLog::new(MQTT_REJECTED, MQTT_REJECTED, MQTT_SEEDS, application)
}

/// The name of the log a refused message goes to: the application its topic names, else the
/// application of its token if the token verified, else [`NO_APPLICATION`].
pub fn log_name<'a>(
    topic_application: Option<&'a str>,
    token_application: Option<&'a str>,
) -> &'a str {
    topic_application
        .filter(|name| !name.is_empty())
        .or(token_application.filter(|name| !name.is_empty()))
        .unwrap_or(NO_APPLICATION)
}

/// One level of a topic pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    /// This exact text.
    Exact(String),
    /// `+`: any one level.
    One,
    /// `#` (last): any number of levels, none included.
    Rest,
}

/// The pattern `mqtt_topic`: MQTT topic levels with the wildcards `+` (one level) and `#`
/// (the rest); the level of the first `+` names the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    pattern: String,
    levels: Vec<Level>,
}

impl TopicPattern {
    /// Reads `pattern`; wildcards must fill their level, and `#` may only be the last.
    pub fn parse(pattern: &str) -> Result<Self, Error> {
        let pattern = pattern.trim();
        let invalid = |why: &str| Error::internal(format!("mqtt_topic {pattern:?} {why}"));
        if pattern.is_empty() {
            return Err(invalid("is empty"));
        }
        let parts: Vec<&str> = pattern.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            levels.push(match *part {
                "+" => Level::One,
                "#" if i + 1 == parts.len() => Level::Rest,
                "#" => return Err(invalid("has `#` before its last level")),
                text if text.contains(['+', '#']) => {
                    return Err(invalid("has a wildcard that does not fill its level"));
                }
                text => Level::Exact(text.to_owned()),
            });
        }
        Ok(Self {
            pattern: pattern.to_owned(),
            levels,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The application named by the concrete topic `topic`: the level at the pattern's first
    /// `+`; `None` when the pattern has no `+` (the token says who). An error when `topic`
    /// does not match the pattern at all (the trigger and `mqtt_topic` disagree: a deployment
    /// error).
    pub fn application<'t>(&self, topic: &'t str) -> Result<Option<&'t str>, Error> {
        let mut named = None;
        let mut levels = topic.split('/');
        let mismatch = || {
            Error::internal(format!(
                "the topic {topic:?} does not match mqtt_topic {:?}: the MQTT trigger's topic \
                 and mqtt_topic must agree",
                self.pattern
            ))
        };
        for level in &self.levels {
            match level {
                Level::Rest => return Ok(named),
                Level::One => {
                    let text = levels.next().ok_or_else(mismatch)?;
                    named = named.or(Some(text));
                }
                Level::Exact(exact) => {
                    if levels.next() != Some(exact.as_str()) {
                        return Err(mismatch());
                    }
                }
            }
        }
        match levels.next() {
            None => Ok(named),
            Some(_) => Err(mismatch()),
        }
    }

    /// The topic the application `name` publishes to: the pattern with its first `+` replaced
    /// by the name (the pattern itself when it has none).
    pub fn topic_of(&self, name: &str) -> String {
        let mut replaced = false;
        self.levels
            .iter()
            .map(|level| match level {
                Level::One if !replaced => {
                    replaced = true;
                    name.to_owned()
                }
                Level::One => "+".to_owned(),
                Level::Rest => "#".to_owned(),
                Level::Exact(text) => text.clone(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// How a payload carries its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A JSON object: one event (`application/cloudevents+json`).
    Single,
    /// A JSON array: a batch (`application/cloudevents-batch+json`), checked all or nothing.
    Batch,
}

/// The events of a message, their access token taken out.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// One event or a batch.
    pub mode: Mode,
    /// The events, without the [`ACCESS_TOKEN`] attribute.
    pub events: Vec<Event>,
    /// The access token they carried (the bare JWT).
    pub token: String,
}

/// The events of `payload` (at most `max_event_bytes` each; a batch at most
/// [`limits::max_batch_body_bytes`] in all) and their token, or why they are refused:
/// `PAYLOAD_TOO_LARGE`, `INVALID_CLOUDEVENT`, or `UNAUTHORIZED` when the token is missing,
/// or the events of a batch do not all carry the same one.
pub fn parse(payload: &[u8], max_event_bytes: u64) -> Result<Parsed, Rejection> {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    let mode = if first == Some(&b'[') {
        Mode::Batch
    } else {
        Mode::Single
    };
    let limit = match mode {
        Mode::Batch => limits::max_batch_body_bytes(max_event_bytes),
        Mode::Single => max_event_bytes,
    };
    limits::check_size(payload.len(), limit).map_err(|e| Rejection::from_error(&e))?;
    let mut events = match mode {
        Mode::Batch => cloudevents::from_batch(payload),
        Mode::Single => cloudevents::from_structured(payload).map(|event| vec![event]),
    }
    .map_err(|e| Rejection::from_error(&e))?;
    let token = take_token(&mut events)?;
    limits::check_events(&events, max_event_bytes).map_err(|e| Rejection::from_error(&e))?;
    Ok(Parsed {
        mode,
        events,
        token,
    })
}

fn unauthorized(reason: impl Into<String>) -> Rejection {
    Rejection {
        code: "UNAUTHORIZED".to_owned(),
        reason: reason.into(),
        status: 401,
    }
}

/// Takes the [`ACCESS_TOKEN`] attribute out of every event and answers the token (bare):
/// every event must carry one, and all the same.
pub fn take_token(events: &mut [Event]) -> Result<String, Rejection> {
    let batch = events.len() != 1;
    let which = |i: usize| {
        if batch {
            format!("event [{i}]")
        } else {
            "the event".to_owned()
        }
    };
    let mut token: Option<String> = None;
    let mut problem = None;
    for (i, event) in events.iter_mut().enumerate() {
        let this = match event.extensions.remove(ACCESS_TOKEN) {
            Some(Value::String(value)) => bare_token(&value).map(str::to_owned),
            Some(_) => Err(format!(
                "{} has an {ACCESS_TOKEN} attribute that is not a string",
                which(i)
            )),
            None => Err(format!(
                "{} carries no access token: put the application's token in the CloudEvents \
                 extension attribute {ACCESS_TOKEN}",
                which(i)
            )),
        };
        match (this, &token) {
            (Err(why), _) => problem = problem.or(Some(why)),
            (Ok(this), None) => token = Some(this),
            (Ok(this), Some(first)) if this == *first => {}
            (Ok(_), Some(_)) => {
                problem = problem.or(Some(format!(
                    "{} carries another access token than event [0]: all events of a batch \
                     must carry the same token",
                    which(i)
                )));
            }
        }
    }
    match (problem, token) {
        (Some(why), _) => Err(unauthorized(why)),
        (None, Some(token)) => Ok(token),
        (None, None) => Err(unauthorized(
            "the batch is empty: no event carries an access token",
        )),
    }
}

/// The JWT of an [`ACCESS_TOKEN`] value: the value itself, or what follows `Bearer `.
pub fn bare_token(value: &str) -> Result<&str, String> {
    let value = value.trim();
    let token = match value.split_once(char::is_whitespace) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => value,
    };
    if token.is_empty() {
        return Err(format!("the {ACCESS_TOKEN} attribute is empty"));
    }
    Ok(token)
}

/// Whether the verified `publisher` may publish `events` on a topic naming
/// `topic_application`: the scope `events:publish`, the topic's application (`FORBIDDEN`:
/// "the topic names application X, the token is for Y"), and each event's `source`.
pub fn authorize(
    publisher: &Publisher,
    topic_application: Option<&str>,
    events: &[Event],
) -> Result<(), Rejection> {
    if !publisher.has_scope(SCOPE_PUBLISH) {
        return Err(Rejection::from_auth(&AuthError::InsufficientScope {
            required: SCOPE_PUBLISH.to_owned(),
        }));
    }
    if let Some(named) = topic_application
        && named != publisher.app
    {
        return Err(Rejection::from_auth(&AuthError::Forbidden(format!(
            "the topic names application {named:?}, the token is for {:?}",
            publisher.app
        ))));
    }
    for event in events {
        token::authorize_source(publisher, &event.source).map_err(|e| Rejection::from_auth(&e))?;
    }
    Ok(())
}

/// The id of a message: the first 32 hex digits of the SHA-256 of its topic, a zero byte and
/// its payload, so a message delivered again is recorded once.
pub fn message_id(topic: &str, payload: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(topic.as_bytes());
    hash.update([0]);
    hash.update(payload);
    let mut id = hex::encode(hash.finalize());
    id.truncate(32);
    id
}

/// `payload` with every access token replaced by [`REDACTED`]: the value of each
/// [`ACCESS_TOKEN`] member (also in a payload that is not valid JSON, or cut short), and
/// wherever else those tokens appear. Answers the redacted payload and the tokens found.
pub fn redact(payload: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut tokens = Vec::new();
    let mut redacted = redact_members(payload, &mut tokens);
    // A JSON parser also reads member names written with escapes (`accesst\u006fken`).
    if let Ok(mut value) = serde_json::from_slice::<Value>(&redacted)
        && redact_value(&mut value, &mut tokens)
        && let Ok(rewritten) = serde_json::to_vec(&value)
    {
        redacted = rewritten;
    }
    let mut everywhere: Vec<Vec<u8>> = Vec::new();
    for token in &tokens {
        let text = String::from_utf8_lossy(token);
        for form in [text.trim(), bare_token(&text).unwrap_or_default()] {
            if form.len() >= MIN_TOKEN_REDACTED_EVERYWHERE
                && !everywhere.iter().any(|t| t == form.as_bytes())
            {
                everywhere.push(form.as_bytes().to_vec());
            }
        }
    }
    for token in &everywhere {
        redacted = replace_all(&redacted, token, REDACTED.as_bytes());
    }
    (redacted, everywhere)
}

/// Replaces the value of every `"accesstoken": …` member by `"[redacted]"`, reading the
/// payload as text (so that invalid or truncated JSON is redacted too); collects the values.
fn redact_members(payload: &[u8], tokens: &mut Vec<Vec<u8>>) -> Vec<u8> {
    let name = format!("\"{ACCESS_TOKEN}\"");
    let name = name.as_bytes();
    let mut out = Vec::with_capacity(payload.len());
    let mut i = 0;
    while i < payload.len() {
        let rest = &payload[i..];
        if rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name) {
            let colon = skip_whitespace(payload, i + name.len());
            if payload.get(colon) == Some(&b':') {
                let start = skip_whitespace(payload, colon + 1);
                out.extend_from_slice(&payload[i..start]);
                let (end, value) = value_at(payload, start);
                tokens.push(value);
                out.extend_from_slice(format!("\"{REDACTED}\"").as_bytes());
                i = end;
                continue;
            }
        }
        out.push(payload[i]);
        i += 1;
    }
    out
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

/// Where the JSON value starting at `start` ends, and its text (a string's contents): a
/// string up to its closing quote (or the end), anything else up to the next `,`, `}`, `]` or
/// line end.
fn value_at(bytes: &[u8], start: usize) -> (usize, Vec<u8>) {
    if bytes.get(start) == Some(&b'"') {
        let mut at = start + 1;
        while at < bytes.len() {
            match bytes[at] {
                b'\\' => at += 2,
                b'"' => return (at + 1, bytes[start + 1..at].to_vec()),
                _ => at += 1,
            }
        }
        return (bytes.len(), bytes[(start + 1).min(bytes.len())..].to_vec());
    }
    let end = bytes[start.min(bytes.len())..]
        .iter()
        .position(|b| matches!(b, b',' | b'}' | b']' | b'\n' | b'\r'))
        .map_or(bytes.len(), |p| start + p);
    (end, bytes[start.min(end)..end].trim_ascii().to_vec())
}

/// Redacts the value of every member named [`ACCESS_TOKEN`] (any case) not redacted yet,
/// at any depth; whether anything changed.
fn redact_value(value: &mut Value, tokens: &mut Vec<Vec<u8>>) -> bool {
    match value {
        Value::Object(members) => {
            let mut changed = false;
            for (name, member) in members.iter_mut() {
                if name.eq_ignore_ascii_case(ACCESS_TOKEN) {
                    if member.as_str() != Some(REDACTED) {
                        if let Some(text) = member.as_str() {
                            tokens.push(text.as_bytes().to_vec());
                        }
                        *member = Value::String(REDACTED.to_owned());
                        changed = true;
                    }
                } else {
                    changed |= redact_value(member, tokens);
                }
            }
            changed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| redact_value(item, tokens) | changed),
        _ => false,
    }
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// What is kept of the message (`topic`, `payload`) refused for `rejection` at `at` (Unix
/// ms): its [`message_id`], the code, the reason, the attribute `topic`, and the payload with
/// its tokens redacted (also from the reason), cut at 64 KiB.
pub fn rejected_record(
    topic: &str,
    payload: &[u8],
    rejection: &Rejection,
    at: u64,
) -> RejectedMessage {
    let (data, tokens) = redact(payload);
    let mut reason = rejection.reason.clone().into_bytes();
    for token in &tokens {
        reason = replace_all(&reason, token, REDACTED.as_bytes());
    }
    let rejection = Rejection {
        reason: String::from_utf8_lossy(&reason).into_owned(),
        ..rejection.clone()
    };
    RejectedMessage::new(
        message_id(topic, payload),
        &rejection,
        BTreeMap::from([("topic".to_owned(), topic.to_owned())]),
        &data,
        "",
        at,
    )
}

/// A rejection notice: where it goes and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `<topic>/rejected`.
    pub topic: String,
    /// `{"code", "reason", "topic", "id", "at"}` (`at` in RFC 3339): no payload, no token.
    pub body: Vec<u8>,
}

/// The notice of `record`, a message refused on `topic`.
pub fn notice(topic: &str, record: &RejectedMessage) -> Notice {
    let body = json!({
        "code": record.code,
        "reason": record.reason,
        "topic": topic,
        "id": record.message_id,
        "at": eventplane_dispatch::Timestamp::from_unix_ms(record.at).to_rfc3339(),
    });
    Notice {
        topic: format!("{topic}{NOTICE_SUFFIX}"),
        body: body.to_string().into_bytes(),
    }
}

/// The address to open an outbound connection to the broker at `address` with: Spin's
/// outbound MQTT takes the client id from the address's `client_id` query parameter and
/// requires one, and two connections with one id knock each other off the broker, so each
/// connection gets an id of its own (`eventplane-<instance>`) unless the address names one.
pub fn outbound_address(address: &str, instance: &str) -> String {
    let query = address.split_once('?').map_or("", |(_, query)| query);
    if query.split('&').any(|pair| pair.starts_with("client_id=")) {
        return address.to_owned();
    }
    let separator = if address.contains('?') { '&' } else { '?' };
    format!("{address}{separator}client_id=eventplane-{instance}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJhcHAiOiJzaG9wIn0.c2lnbmF0dXJl";

    fn event(id: &str, token: Option<Value>) -> Value {
        let mut event = json!({"specversion": "1.0", "id": id, "source": "/applications/shop",
            "type": "order.created.v1", "data": {"orderId": "o-1"}});
        if let (Some(token), Some(members)) = (token, event.as_object_mut()) {
            members.insert(ACCESS_TOKEN.to_owned(), token);
        }
        event
    }

    fn bytes(value: &Value) -> Vec<u8> {
        value.to_string().into_bytes()
    }

    fn publisher(app: &str, scopes: &[&str]) -> Publisher {
        Publisher {
            tenant: None,
            app: app.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            issuer: "https://issuer".into(),
            subject: None,
        }
    }

    #[test]
    fn the_topic_names_the_application() -> Result<(), Error> {
        let pattern = TopicPattern::parse(DEFAULT_TOPIC)?;
        assert_eq!(pattern.application("eventplane/shop/events")?, Some("shop"));
        assert_eq!(pattern.application("eventplane//events")?, Some(""));
        for other in [
            "eventplane/shop",
            "eventplane/shop/events/x",
            "other/shop/events",
        ] {
            assert!(pattern.application(other).is_err(), "{other}");
        }
        assert_eq!(pattern.topic_of("shop"), "eventplane/shop/events");
        let fixed = TopicPattern::parse("erp/events")?;
        assert_eq!(fixed.application("erp/events")?, None, "the token says who");
        assert_eq!(fixed.topic_of("shop"), "erp/events");
        let deep = TopicPattern::parse("t/+/x/+/#")?;
        assert_eq!(deep.application("t/erp/x/y")?, Some("erp"));
        assert_eq!(deep.application("t/erp/x/y/z/w")?, Some("erp"));
        assert_eq!(deep.topic_of("erp"), "t/erp/x/+/#");
        for bad in ["", "a/#/b", "a/b+", "a#"] {
            assert!(TopicPattern::parse(bad).is_err(), "{bad:?}");
        }
        Ok(())
    }

    #[test]
    fn notices_are_ignored_and_logs_are_named() {
        assert!(is_notice("eventplane/shop/events/rejected"));
        assert!(!is_notice("eventplane/shop/events"));
        assert_eq!(log_name(Some("shop"), Some("erp")), "shop");
        assert_eq!(log_name(Some(""), Some("erp")), "erp");
        assert_eq!(log_name(None, None), NO_APPLICATION);
    }

    #[test]
    fn an_object_is_one_event_and_its_token_is_taken_out() -> Result<(), Rejection> {
        let bearer = format!("Bearer {TOKEN}");
        for token in [TOKEN, bearer.as_str()] {
            let parsed = parse(&bytes(&event("1", Some(json!(token)))), 65536)?;
            assert_eq!(parsed.mode, Mode::Single);
            assert_eq!(parsed.token, TOKEN);
            assert_eq!(parsed.events.len(), 1);
            assert!(!parsed.events[0].extensions.contains_key(ACCESS_TOKEN));
        }
        Ok(())
    }

    #[test]
    fn a_batch_carries_one_token_in_every_event() -> Result<(), Rejection> {
        let batch = json!([
            event("1", Some(json!(TOKEN))),
            event("2", Some(json!(TOKEN)))
        ]);
        let parsed = parse(&bytes(&batch), 65536)?;
        assert_eq!((parsed.mode, parsed.events.len()), (Mode::Batch, 2));
        assert!(parsed.events.iter().all(|e| e.extensions.is_empty()));
        let missing = json!([event("1", Some(json!(TOKEN))), event("2", None)]);
        let refused = parse(&bytes(&missing), 65536).expect_err("missing");
        assert_eq!(
            (refused.code.as_str(), refused.status),
            ("UNAUTHORIZED", 401)
        );
        assert!(refused.reason.contains("event [1]"), "{}", refused.reason);
        let other = json!([
            event("1", Some(json!(TOKEN))),
            event("2", Some(json!("x.y.z")))
        ]);
        let refused = parse(&bytes(&other), 65536).expect_err("another token");
        assert_eq!(refused.code, "UNAUTHORIZED");
        assert!(refused.reason.contains("same token"), "{}", refused.reason);
        let empty = parse(b"[]", 65536).expect_err("empty");
        assert_eq!(empty.code, "UNAUTHORIZED");
        Ok(())
    }

    #[test]
    fn what_is_not_a_cloudevent_or_too_large_is_refused() {
        let code = |payload: &[u8], max| parse(payload, max).map(|_| ()).expect_err("refused");
        assert_eq!(code(b"not json", 65536).code, "INVALID_CLOUDEVENT");
        assert_eq!(code(b"{\"id\": \"1\"}", 65536).code, "INVALID_CLOUDEVENT");
        assert_eq!(code(b"42", 65536).code, "INVALID_CLOUDEVENT");
        let one = bytes(&event("1", Some(json!(TOKEN))));
        let large = code(&one, 64);
        assert_eq!(
            (large.code.as_str(), large.status),
            ("PAYLOAD_TOO_LARGE", 413)
        );
        let no_token = code(&bytes(&event("1", None)), 65536);
        assert_eq!(no_token.code, "UNAUTHORIZED");
        let not_text = code(&bytes(&event("1", Some(json!(7)))), 65536);
        assert_eq!(not_text.code, "UNAUTHORIZED");
    }

    #[test]
    fn the_token_must_be_for_the_topics_application() -> Result<(), Rejection> {
        let parsed = parse(&bytes(&event("1", Some(json!(TOKEN)))), 65536)?;
        let shop = publisher("shop", &[SCOPE_PUBLISH]);
        authorize(&shop, Some("shop"), &parsed.events)?;
        authorize(&shop, None, &parsed.events)?;
        let wrong = authorize(&shop, Some("erp"), &parsed.events).expect_err("other app");
        assert_eq!((wrong.code.as_str(), wrong.status), ("FORBIDDEN", 403));
        assert_eq!(
            wrong.reason,
            "the topic names application \"erp\", the token is for \"shop\""
        );
        let unscoped =
            authorize(&publisher("shop", &[]), Some("shop"), &parsed.events).expect_err("no scope");
        assert_eq!(unscoped.code, "FORBIDDEN");
        let erp = publisher("erp", &[SCOPE_PUBLISH]);
        let source = authorize(&erp, None, &parsed.events).expect_err("another source");
        assert_eq!(source.code, "FORBIDDEN");
        Ok(())
    }

    #[test]
    fn tokens_are_never_kept() {
        let payload = format!(
            "[{{\"id\":\"1\",\"accesstoken\" : \"Bearer {TOKEN}\",\"data\":\"{TOKEN}\"}},\
             {{\"id\":\"2\",\"accesst\\u006fken\":\"{TOKEN}x\"}}]"
        );
        let (redacted, _) = redact(payload.as_bytes());
        let text = String::from_utf8_lossy(&redacted);
        assert!(!text.contains(TOKEN), "{text}");
        assert!(text.contains(REDACTED), "{text}");
        // cut short, or not JSON at all
        let cut = format!("{{\"id\":\"1\",\"accesstoken\":\"{}", &TOKEN[..30]);
        let (redacted, _) = redact(cut.as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&redacted),
            "{\"id\":\"1\",\"accesstoken\":\"[redacted]\""
        );
        let number = redact(b"{\"accesstoken\": 12345, \"a\": 1}").0;
        assert_eq!(number, b"{\"accesstoken\": \"[redacted]\", \"a\": 1}");
        // an untouched payload stays byte for byte
        let plain = b"{ \"id\" : \"1\" }";
        assert_eq!(redact(plain).0, plain);
    }

    #[test]
    fn a_refused_message_is_recorded_without_its_token() {
        let payload = bytes(&event("1", Some(json!(TOKEN))));
        let rejection = Rejection::invalid(format!("odd: {TOKEN}"));
        let record = rejected_record("eventplane/shop/events", &payload, &rejection, 1_000);
        assert_eq!(record.message_id.len(), 32);
        assert_eq!(
            record.message_id,
            message_id("eventplane/shop/events", &payload),
            "the same message, the same id"
        );
        assert_ne!(
            record.message_id,
            message_id("eventplane/erp/events", &payload)
        );
        assert!(!record.data.contains(TOKEN) && !record.reason.contains(TOKEN));
        assert_eq!(record.attributes["topic"], "eventplane/shop/events");
        assert_eq!(
            (record.code.as_str(), record.at),
            ("INVALID_CLOUDEVENT", 1_000)
        );
        let notice = notice("eventplane/shop/events", &record);
        assert_eq!(notice.topic, "eventplane/shop/events/rejected");
        let body: Value = serde_json::from_slice(&notice.body).unwrap_or_default();
        assert_eq!(body["code"], "INVALID_CLOUDEVENT");
        assert_eq!(body["id"], record.message_id.as_str());
        assert_eq!(body["topic"], "eventplane/shop/events");
        assert_eq!(body["at"], "1970-01-01T00:00:01.000Z");
        assert!(body.get("data").is_none());
    }
    #[test]
    fn outbound_connections_get_a_client_id_of_their_own() {
        assert_eq!(
            outbound_address("mqtt://broker:1883", "n1"),
            "mqtt://broker:1883?client_id=eventplane-n1"
        );
        assert_eq!(
            outbound_address("mqtt://broker:1883?keep=1", "n1"),
            "mqtt://broker:1883?keep=1&client_id=eventplane-n1"
        );
        assert_eq!(
            outbound_address("mqtt://broker?client_id=mine", "n1"),
            "mqtt://broker?client_id=mine"
        );
    }
}
