//! What the document states in words only, because JSON Schema cannot say it: the [`RULES`] the
//! generator keeps to (and the negative cases break), and the [`LENIENCIES`], where the server
//! takes more than the document's schemas allow (the negative cases stay clear of them).
//!
//! Each is checked to be still written where it says (the `description` at a JSON pointer of
//! the document): a rule that the document stops stating fails the run. Keep this list short:
//! anything a schema keyword can say belongs in the schema, where the generator reads it.

use rand::RngExt as _;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::document::{Document, Operation};
use super::{Body, Request};

/// A rule of the document that no schema keyword states.
pub(crate) struct Rule {
    pub name: &'static str,
    /// Where the document states it: the JSON pointer of an object whose `description` ...
    pub stated_at: &'static str,
    /// ... contains these words.
    pub says: &'static str,
    /// Whether it is about the requests of this operation.
    pub applies: fn(&Document, &Operation) -> bool,
    /// Whether a request keeps it.
    pub holds: fn(&Document, &Request) -> bool,
    /// Makes a generated request keep it, where generating from the schemas alone would rarely
    /// do (else the request is generated again until it holds).
    pub keep: fn(&mut StdRng, &mut Request),
    /// Makes a valid request break it; `false` if this one cannot be.
    pub breaks: fn(&mut StdRng, &mut Request) -> bool,
    /// The status a request breaking it gets, if only one is right.
    pub refused_with: Option<u16>,
}

/// Where the server takes more than the document's schemas allow: the negative cases avoid
/// these (the document says so where it points).
pub(crate) const LENIENCIES: &[(&str, &str, &str)] = &[
    // A member given as null is the same as a member left out: type violations never use null.
    (
        "null members",
        "/components/schemas/SubscriptionInput",
        "null counts as absent",
    ),
    // `limit=` is no limit: query parameters are never sent empty.
    (
        "empty query values",
        "/components/parameters/Limit",
        "An empty value counts as absent",
    ),
    // ` acme ` is `acme`: a Tenant that breaks the pattern must still break it once trimmed.
    (
        "tenant whitespace",
        "/components/parameters/Tenant",
        "Surrounding whitespace is ignored",
    ),
];

pub(crate) const RULES: &[Rule] = &[
    // Durations are ISO 8601 text (the pattern) with a range that no pattern can state
    // (PT2M is also PT120S, PT1M60S, PT0.5S · 240 ...): longer than zero once cut to whole
    // milliseconds; timeout at most 2 minutes, maxBackoff at most a day, backoffDelay at most
    // maxBackoff, where a member left out counts as its default (backoffDelay 5 seconds,
    // maxBackoff an hour).
    Rule {
        name: "delivery durations",
        stated_at: "/components/schemas/Delivery",
        says: "backoffDelay at most maxBackoff",
        applies: takes_subscription,
        holds: durations_hold,
        keep: keep_durations,
        breaks: break_durations,
        refused_with: Some(422),
    },
    // A replay's `until` is later than its `since`.
    Rule {
        name: "replay window",
        stated_at: "/components/schemas/ReplayRequest",
        says: "until must be later than since",
        applies: |_, op| op.id == "replay",
        holds: |_, request| {
            let body = json_body(request);
            match (instant(&body["since"]), instant(&body["until"])) {
                (Some(since), Some(until)) => until > since,
                _ => true,
            }
        },
        keep: |_, request| {
            if let Body::Json(body) = &mut request.body
                && let (Some(since), Some(until)) =
                    (instant(&body["since"]), instant(&body["until"]))
                && until <= since
            {
                let (since, until) = (body["since"].clone(), body["until"].clone());
                body["since"] = until;
                body["until"] = since;
            }
        },
        breaks: |_, request| match &mut request.body {
            Body::Json(body) if body.get("since").is_some() => {
                body["until"] = body["since"].clone();
                true
            }
            _ => false,
        },
        refused_with: Some(422),
    },
    // Instants are RFC 3339 (`format: date-time`) and not before the Unix epoch. The
    // generator's instants start on 1970-01-02, so they keep it whatever their offset.
    Rule {
        name: "instants after the epoch",
        stated_at: "/components/schemas/Instant",
        says: "not before 1970-01-01T00:00:00Z",
        applies: |_, op| op.id == "replay" || op.id == "listAttempts",
        holds: |_, request| {
            let body = json_body(request);
            let query_since = request
                .query
                .iter()
                .filter(|(name, _)| name == "since")
                .map(|(_, value)| value);
            [&body["since"], &body["until"]]
                .into_iter()
                .chain(query_since)
                .all(|value| instant(value).is_none_or(|t| t.unix_timestamp() >= 0))
        },
        keep: |_, _| {},
        breaks: |rng, request| {
            let before = *[
                "1969-12-31T23:59:59.999Z",
                "1969-07-20T20:17:40Z",
                "1970-01-01T00:30:00+01:00",
            ]
            .choose(rng)
            .unwrap_or(&"1969-12-31T23:59:59Z");
            match &mut request.body {
                Body::Json(body) => {
                    body["since"] = json!(before);
                    if let Some(map) = body.as_object_mut() {
                        map.remove("until");
                    }
                }
                _ => {
                    request.query.retain(|(name, _)| name != "since");
                    request.query.push(("since".into(), json!(before)));
                }
            }
            true
        },
        refused_with: None,
    },
    // Some lengths count UTF-8 bytes, not characters: in the schemas whose description says
    // so, `maxLength` is the number of bytes (and so also a bound on the characters).
    Rule {
        name: "lengths in bytes",
        stated_at: "/components/schemas/Text",
        says: BYTES,
        applies: takes_subscription,
        holds: |doc, request| {
            let Body::Json(body) = &request.body else {
                return true;
            };
            doc.sites("/components/schemas/SubscriptionInput", body)
                .iter()
                .filter(|(_, schema)| {
                    doc.at(schema)["description"]
                        .as_str()
                        .is_some_and(|d| d.contains(BYTES))
                })
                .all(|(at, schema)| {
                    let max = doc.at(schema)["maxLength"].as_u64().unwrap_or(u64::MAX);
                    body.pointer(at)
                        .and_then(Value::as_str)
                        .is_none_or(|text| text.len() as u64 <= max)
                })
        },
        keep: |_, _| {},
        breaks: |_, request| match &mut request.body {
            Body::Json(body) if body["sink"].is_object() => {
                // 1,100 characters, 2,218 bytes: within 2,048 characters, over 2,048 bytes.
                body["sink"]["url"] = json!(format!("https://h.example/{}", "\u{e9}".repeat(1100)));
                true
            }
            _ => false,
        },
        refused_with: Some(422),
    },
    // Header names are unique without regard to case (`X-Team` and `x-team` are one header).
    Rule {
        name: "header names unique without regard to case",
        stated_at: "/components/schemas/Sink/properties/headers",
        says: "unique without regard to case",
        applies: takes_subscription,
        holds: |_, request| {
            let body = json_body(request);
            let Some(headers) = body["sink"]["headers"].as_object() else {
                return true;
            };
            let mut names: Vec<String> = headers.keys().map(|n| n.to_ascii_lowercase()).collect();
            names.sort();
            names.windows(2).all(|pair| pair[0] != pair[1])
        },
        keep: |_, _| {},
        breaks: |_, request| match &mut request.body {
            Body::Json(body) if body["sink"].is_object() => {
                body["sink"]["headers"] = json!({"X-Team": "billing", "x-team": "billing"});
                true
            }
            _ => false,
        },
        refused_with: Some(422),
    },
    // A request body is at most 64 KiB (413 beyond).
    Rule {
        name: "body size",
        stated_at: "/components/requestBodies/Subscription",
        says: "at most 65536 bytes",
        applies: |_, op| op.body.is_some(),
        holds: |_, request| match &request.body {
            Body::Json(body) => serde_json::to_vec(body).map_or(0, |b| b.len()) <= 65536,
            Body::Raw(text) => text.len() <= 65536,
            Body::None => true,
        },
        keep: |_, _| {},
        breaks: |_, request| {
            request.body = Body::Json(json!({ "padding": "x".repeat(70_000) }));
            true
        },
        refused_with: Some(413),
    },
];

/// What the description of a string schema says when its `maxLength` counts UTF-8 bytes.
const BYTES: &str = "maxLength counts bytes";

/// Whether `op` takes a subscription (create, replace).
fn takes_subscription(doc: &Document, op: &Operation) -> bool {
    op.body
        .as_ref()
        .is_some_and(|(_, schema)| doc.follow(schema) == "/components/schemas/SubscriptionInput")
}

fn json_body(request: &Request) -> Value {
    match &request.body {
        Body::Json(body) => body.clone(),
        _ => Value::Null,
    }
}

fn instant(value: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value.as_str()?, &Rfc3339).ok()
}

// ---- durations ------------------------------------------------------------------------------

const SECOND: u64 = 1000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// The longest timeout, maxBackoff; the defaults of maxBackoff and backoffDelay.
const MAX_TIMEOUT: u64 = 2 * MINUTE;
const MAX_MAX_BACKOFF: u64 = DAY;
const DEFAULT_MAX_BACKOFF: u64 = HOUR;
const DEFAULT_BACKOFF_DELAY: u64 = 5 * SECOND;

/// The milliseconds of a duration of the document's pattern (fraction digits past the third
/// dropped); `None` if it is not one.
pub(crate) fn duration_ms(text: &str) -> Option<u64> {
    let body = text.strip_prefix('P')?;
    let (date, time) = match body.split_once('T') {
        Some((date, time)) => (date, time),
        None => (body, ""),
    };
    let mut total: u128 = 0;
    for (part, units) in [
        (date, &[('D', DAY)][..]),
        (time, &[('H', HOUR), ('M', MINUTE), ('S', SECOND)][..]),
    ] {
        let mut rest = part;
        while !rest.is_empty() {
            let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))?;
            let (number, after) = rest.split_at(end);
            let designator = after.chars().next()?;
            let (_, unit) = units.iter().find(|(d, _)| *d == designator)?;
            let (whole, fraction) = number.split_once(['.', ',']).unwrap_or((number, ""));
            if !fraction.is_empty() && designator != 'S' {
                return None;
            }
            total += whole.parse::<u128>().ok()? * u128::from(*unit);
            let millis: String = fraction
                .chars()
                .chain(std::iter::repeat('0'))
                .take(3)
                .collect();
            total += millis.parse::<u128>().ok()?;
            rest = &after[1..];
        }
    }
    u64::try_from(total).ok()
}

/// `ms` as a duration of the document's pattern, in one of its many spellings: units split
/// at random, zero components, leading zeros, `.` or `,`, fraction digits past milliseconds.
pub(crate) fn spell_duration(rng: &mut StdRng, ms: u64) -> String {
    let mut rest = ms;
    let mut take = |unit: u64, p: f64, rng: &mut StdRng| {
        let count = if rng.random_bool(p) {
            rng.random_range(0..=rest / unit)
        } else {
            0
        };
        rest -= count * unit;
        count
    };
    let days = take(DAY, 0.5, rng);
    let hours = take(HOUR, 0.5, rng);
    let minutes = take(MINUTE, 0.5, rng);
    let (seconds, millis) = (rest / SECOND, rest % SECOND);
    let number = |n: u64, rng: &mut StdRng| {
        let zeros = if rng.random_bool(0.1) { "00" } else { "" };
        format!("{zeros}{n}")
    };
    let show = |n: u64, rng: &mut StdRng| n > 0 || rng.random_bool(0.1);
    let mut text = String::from("P");
    if show(days, rng) {
        text.push_str(&format!("{}D", number(days, rng)));
    }
    let mut time = String::new();
    if show(hours, rng) {
        time.push_str(&format!("{}H", number(hours, rng)));
    }
    if show(minutes, rng) {
        time.push_str(&format!("{}M", number(minutes, rng)));
    }
    if millis > 0 || show(seconds, rng) || (time.is_empty() && text == "P") {
        time.push_str(&number(seconds, rng));
        if millis > 0 || rng.random_bool(0.1) {
            time.push(if rng.random_bool(0.8) { '.' } else { ',' });
            time.push_str(&format!("{millis:03}"));
            if rng.random_bool(0.3) {
                time.push_str(&rng.random_range(0..1000).to_string());
            }
        }
        time.push('S');
    }
    if !time.is_empty() {
        text.push('T');
        text.push_str(&time);
    }
    text
}

fn durations_hold(_: &Document, request: &Request) -> bool {
    let body = json_body(request);
    let delivery = &body["delivery"];
    let ms = |key: &str| delivery.get(key).and_then(Value::as_str).map(duration_ms);
    let in_range = |value: Option<Option<u64>>, max: u64| match value {
        None => true,
        Some(None) => false,
        Some(Some(ms)) => (1..=max).contains(&ms),
    };
    let max_backoff = ms("maxBackoff").flatten().unwrap_or(DEFAULT_MAX_BACKOFF);
    let delay = ms("backoffDelay")
        .flatten()
        .unwrap_or(DEFAULT_BACKOFF_DELAY);
    in_range(ms("timeout"), MAX_TIMEOUT)
        && in_range(ms("maxBackoff"), MAX_MAX_BACKOFF)
        && in_range(ms("backoffDelay"), max_backoff)
        && delay <= max_backoff
}

fn keep_durations(rng: &mut StdRng, request: &mut Request) {
    let Body::Json(body) = &mut request.body else {
        return;
    };
    let Some(delivery) = body.get_mut("delivery").and_then(Value::as_object_mut) else {
        return;
    };
    let mut max_backoff = DEFAULT_MAX_BACKOFF;
    if delivery.get("maxBackoff").is_some_and(Value::is_string) {
        max_backoff = near_or_any(rng, MAX_MAX_BACKOFF);
        delivery.insert("maxBackoff".into(), json!(spell_duration(rng, max_backoff)));
    }
    // The default backoffDelay must not exceed a short maxBackoff either.
    let needs_delay = max_backoff < DEFAULT_BACKOFF_DELAY;
    if needs_delay || delivery.get("backoffDelay").is_some_and(Value::is_string) {
        let delay = near_or_any(rng, max_backoff);
        delivery.insert("backoffDelay".into(), json!(spell_duration(rng, delay)));
    }
    if delivery.get("timeout").is_some_and(Value::is_string) {
        let timeout = near_or_any(rng, MAX_TIMEOUT);
        delivery.insert("timeout".into(), json!(spell_duration(rng, timeout)));
    }
}

/// From 1 to `max` ms: often a bound, else anywhere.
fn near_or_any(rng: &mut StdRng, max: u64) -> u64 {
    match rng.random_range(0..8) {
        0 => 1,
        1 => max,
        _ => rng.random_range(1..=max),
    }
}

fn break_durations(rng: &mut StdRng, request: &mut Request) -> bool {
    let Body::Json(body) = &mut request.body else {
        return false;
    };
    if !body["delivery"].is_object() {
        body["delivery"] = json!({});
    }
    let delivery = &mut body["delivery"];
    match rng.random_range(0..5) {
        0 => {
            let field = *["timeout", "maxBackoff", "backoffDelay"]
                .choose(rng)
                .unwrap_or(&"timeout");
            let zero = *["PT0S", "P0D", "PT0.0009S", "PT0,0S"]
                .choose(rng)
                .unwrap_or(&"PT0S");
            delivery[field] = json!(zero);
        }
        1 => {
            let timeout = rng.random_range(MAX_TIMEOUT + 1..=10 * DAY);
            delivery["timeout"] = json!(spell_duration(rng, timeout));
        }
        2 => {
            let max_backoff = rng.random_range(MAX_MAX_BACKOFF + 1..=1000 * DAY);
            delivery["maxBackoff"] = json!(spell_duration(rng, max_backoff));
            if let Some(map) = delivery.as_object_mut() {
                map.remove("backoffDelay");
            }
        }
        3 => {
            // The default backoffDelay, 5 s, over a shorter maxBackoff.
            let max_backoff = rng.random_range(1..DEFAULT_BACKOFF_DELAY);
            delivery["maxBackoff"] = json!(spell_duration(rng, max_backoff));
            if let Some(map) = delivery.as_object_mut() {
                map.remove("backoffDelay");
            }
        }
        _ => {
            let max_backoff = rng.random_range(1..MAX_MAX_BACKOFF);
            let delay = rng.random_range(max_backoff + 1..=max_backoff * 2);
            delivery["maxBackoff"] = json!(spell_duration(rng, max_backoff));
            delivery["backoffDelay"] = json!(spell_duration(rng, delay));
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_as_the_server_reads_them() {
        for (text, ms) in [
            ("PT5S", Some(5_000)),
            ("PT0.5S", Some(500)),
            ("PT0,25S", Some(250)),
            ("PT1.0005S", Some(1_000)),
            ("P1DT2H3M4.567S", Some(93_784_567)),
            ("PT90M", Some(5_400_000)),
            ("P1.5D", None),
            ("PT5X", None),
        ] {
            assert_eq!(duration_ms(text), ms, "{text}");
        }
        let mut rng = super::super::generate::rng_from(7);
        for ms in [1, 999, 1_000, 120_000, 3_600_001, 86_400_000] {
            for _ in 0..50 {
                let text = spell_duration(&mut rng, ms);
                assert_eq!(duration_ms(&text), Some(ms), "{text}");
            }
        }
    }
}
