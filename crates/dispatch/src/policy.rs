//! What to do after an attempt: [`classify`] its result, compute backoff delays
//! ([`next_delay_ms`]), and [`decide`] between done, retry later and dead letter.
//!
//! | result | outcome | error class |
//! |---|---|---|
//! | 2xx | succeeded | none |
//! | 408 Request Timeout | retry | `http_408` |
//! | 429 Too Many Requests | retry, honouring `Retry-After` | `http_429` |
//! | 503 Service Unavailable | retry, honouring `Retry-After` | `http_5xx` |
//! | other 5xx | retry | `http_5xx` |
//! | timeout | retry | `timeout` |
//! | connection failure (DNS, refused, reset before a response) | retry | `connection` |
//! | other transport error (TLS, malformed response, …) | retry | `transport` |
//! | 410 Gone | dead letter and pause the subscription | `http_410` |
//! | other 4xx | dead letter | `http_4xx` |
//! | 3xx (redirects are not followed) | dead letter | `http_3xx` |
//! | 1xx (a final response must not be informational) | dead letter | `http_1xx` |
//! | a status outside 100–599 | dead letter | `http_invalid` |
//!
//! Transport errors other than timeouts and connection failures are retried: they are usually
//! transient, and retries are bounded anyway.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{BackoffPolicy, Delivery};
use crate::time::parse_http_date;

/// How an attempt ended, as the HTTP client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult<'a> {
    /// The sink responded.
    Response {
        /// The status code.
        status: u16,
        /// The `Retry-After` header's value, if any.
        retry_after: Option<&'a str>,
    },
    /// No response within the subscription's timeout.
    Timeout,
    /// No connection could be made (name resolution, refused, reset before a response).
    Connection,
    /// Any other transport error.
    Transport,
}

/// Why an attempt failed, for attempt records (`errorClass`) and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// An informational (1xx) final status.
    #[serde(rename = "http_1xx")]
    Http1xx,
    /// A redirect (3xx); redirects are not followed.
    #[serde(rename = "http_3xx")]
    Http3xx,
    /// 408 Request Timeout.
    #[serde(rename = "http_408")]
    Http408,
    /// 410 Gone.
    #[serde(rename = "http_410")]
    Http410,
    /// 429 Too Many Requests.
    #[serde(rename = "http_429")]
    Http429,
    /// Any other 4xx.
    #[serde(rename = "http_4xx")]
    Http4xx,
    /// Any 5xx.
    #[serde(rename = "http_5xx")]
    Http5xx,
    /// A status outside 100 to 599.
    #[serde(rename = "http_invalid")]
    HttpInvalid,
    /// No response in time.
    Timeout,
    /// No connection.
    Connection,
    /// Another transport error.
    Transport,
}

impl ErrorClass {
    /// The class's name, as serialized: `http_5xx`, `timeout`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http1xx => "http_1xx",
            Self::Http3xx => "http_3xx",
            Self::Http408 => "http_408",
            Self::Http410 => "http_410",
            Self::Http429 => "http_429",
            Self::Http4xx => "http_4xx",
            Self::Http5xx => "http_5xx",
            Self::HttpInvalid => "http_invalid",
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::Transport => "transport",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an attempt's result calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered.
    Succeeded,
    /// Failed, worth retrying; `retry_after_ms` is the sink's `Retry-After` (429 and 503 only),
    /// as a delay from now in milliseconds (0 for a date in the past).
    Retry {
        /// The delay the sink asked for, if it did.
        retry_after_ms: Option<u64>,
    },
    /// Failed in a way retrying will not fix.
    DeadLetter,
    /// The sink is gone (410): dead-letter the event and pause the subscription.
    DeadLetterAndPause,
}

/// An attempt's result, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// What to do.
    pub outcome: Outcome,
    /// Why it failed (`None` on success).
    pub error_class: Option<ErrorClass>,
    /// The response status, if there was a response.
    pub status: Option<u16>,
}

impl Classification {
    /// The failure in words, for dead-letter reasons: `HTTP 503 (http_5xx)`, `a timeout`, …
    pub fn describe(&self) -> String {
        match (self.status, self.error_class) {
            (Some(status), Some(class)) => format!("HTTP {status} ({class})"),
            (Some(status), None) => format!("HTTP {status}"),
            (None, Some(ErrorClass::Timeout)) => "a timeout".to_owned(),
            (None, Some(ErrorClass::Connection)) => "a connection failure".to_owned(),
            (None, Some(class)) => format!("a transport error ({class})"),
            (None, None) => "no error".to_owned(),
        }
    }
}

/// Classifies an attempt's result (see the [module docs](self) for the table). `now_ms` (Unix
/// milliseconds) turns a `Retry-After` date into a delay.
pub fn classify(result: &AttemptResult<'_>, now_ms: u64) -> Classification {
    let (status, retry_after) = match *result {
        AttemptResult::Response {
            status,
            retry_after,
        } => (status, retry_after),
        AttemptResult::Timeout => return transport_failure(ErrorClass::Timeout),
        AttemptResult::Connection => return transport_failure(ErrorClass::Connection),
        AttemptResult::Transport => return transport_failure(ErrorClass::Transport),
    };
    let retry = |class, honour_retry_after: bool| {
        let retry_after_ms = if honour_retry_after {
            retry_after.and_then(|value| retry_after_ms(value, now_ms))
        } else {
            None
        };
        (Outcome::Retry { retry_after_ms }, Some(class))
    };
    let (outcome, error_class) = match status {
        200..=299 => (Outcome::Succeeded, None),
        408 => retry(ErrorClass::Http408, false),
        429 => retry(ErrorClass::Http429, true),
        503 => retry(ErrorClass::Http5xx, true),
        500..=599 => retry(ErrorClass::Http5xx, false),
        410 => (Outcome::DeadLetterAndPause, Some(ErrorClass::Http410)),
        400..=499 => (Outcome::DeadLetter, Some(ErrorClass::Http4xx)),
        300..=399 => (Outcome::DeadLetter, Some(ErrorClass::Http3xx)),
        100..=199 => (Outcome::DeadLetter, Some(ErrorClass::Http1xx)),
        _ => (Outcome::DeadLetter, Some(ErrorClass::HttpInvalid)),
    };
    Classification {
        outcome,
        error_class,
        status: Some(status),
    }
}

fn transport_failure(class: ErrorClass) -> Classification {
    Classification {
        outcome: Outcome::Retry {
            retry_after_ms: None,
        },
        error_class: Some(class),
        status: None,
    }
}

/// A `Retry-After` value (RFC 9110 §10.2.3) as a delay from `now_ms` in milliseconds:
/// delta-seconds (`120`), or an HTTP-date (a date in the past is a delay of 0). `None` if it
/// is neither.
pub fn retry_after_ms(value: &str, now_ms: u64) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than fit are a very long delay; it is capped by maxBackoff anyway.
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(seconds.saturating_mul(1000));
    }
    let date_seconds = parse_http_date(value)?;
    let date_ms = u64::try_from(date_seconds)
        .unwrap_or(0)
        .saturating_mul(1000);
    Some(date_ms.saturating_sub(now_ms))
}

/// The delay before retry number `retry_number` (1-based; 0 counts as 1):
/// `base_ms · 2^(n-1)` (exponential) or `base_ms · n` (linear), then jittered by ±20%
/// (`jitter` in [0, 1): 0 → -20%, 0.5 → unchanged, towards 1 → +20%; values outside [0, 1]
/// are clamped, NaN counts as 0.5), then capped at `max_ms`. Saturating: never overflows.
pub fn next_delay_ms(
    policy: BackoffPolicy,
    base_ms: u64,
    max_ms: u64,
    retry_number: u32,
    jitter: f64,
) -> u64 {
    let n = retry_number.max(1);
    let raw = match policy {
        BackoffPolicy::Exponential => {
            let factor = 1u64.checked_shl(n - 1).unwrap_or(u64::MAX);
            base_ms.saturating_mul(factor)
        }
        BackoffPolicy::Linear => base_ms.saturating_mul(u64::from(n)),
    };
    let jitter = if jitter.is_nan() {
        0.5
    } else {
        jitter.clamp(0.0, 1.0)
    };
    let factor = 0.8 + 0.4 * jitter;
    // A delay needs no more than f64 precision; the product is finite and non-negative, and
    // float-to-integer casts saturate, so the cast back cannot wrap.
    let jittered = ((raw as f64) * factor).round() as u64;
    jittered.min(max_ms)
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Delivered: nothing more to do.
    Done,
    /// Attempt again after this many milliseconds.
    RetryAt(u64),
    /// Give up on the event: record a dead letter (and send it to the dead-letter sink, if
    /// any).
    DeadLetter {
        /// Why, for the dead-letter record.
        reason: String,
    },
    /// Give up on the event as for [`Decision::DeadLetter`], and pause the subscription.
    DeadLetterAndPause {
        /// Why, for the dead-letter record and the subscription's `pausedReason`.
        reason: String,
    },
}

/// Decides what follows attempt number `attempt` (1-based) of an event, given its
/// classification, under the subscription's `delivery` settings. A retryable failure is
/// retried while `attempt <= delivery.retry` (so an event gets at most `retry + 1` attempts),
/// after the sink's `Retry-After` (capped at `maxBackoff`) or else [`next_delay_ms`] for retry
/// number `attempt`; after that it is dead-lettered.
pub fn decide(
    delivery: &Delivery,
    attempt: u32,
    classified: &Classification,
    jitter: f64,
) -> Decision {
    match classified.outcome {
        Outcome::Succeeded => Decision::Done,
        Outcome::DeadLetter => Decision::DeadLetter {
            reason: format!(
                "attempt {attempt} failed with {}, which is not retried",
                classified.describe()
            ),
        },
        Outcome::DeadLetterAndPause => Decision::DeadLetterAndPause {
            reason: format!(
                "attempt {attempt} failed with {}: the sink is gone, so the subscription was \
                 paused",
                classified.describe()
            ),
        },
        Outcome::Retry { .. } if attempt > delivery.retry => Decision::DeadLetter {
            reason: format!(
                "gave up after {attempt} {}; the last failed with {}",
                if attempt == 1 { "attempt" } else { "attempts" },
                classified.describe()
            ),
        },
        Outcome::Retry { retry_after_ms } => {
            let delay = match retry_after_ms {
                Some(ms) => ms.min(delivery.max_backoff_ms),
                None => next_delay_ms(
                    delivery.backoff_policy,
                    delivery.backoff_delay_ms,
                    delivery.max_backoff_ms,
                    attempt,
                    jitter,
                ),
            };
            Decision::RetryAt(delay)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 784_111_777_000; // Sun, 06 Nov 1994 08:49:37 GMT

    fn response(status: u16, retry_after: Option<&str>) -> Classification {
        classify(
            &AttemptResult::Response {
                status,
                retry_after,
            },
            NOW_MS,
        )
    }

    fn retry(retry_after_ms: Option<u64>) -> Outcome {
        Outcome::Retry { retry_after_ms }
    }

    #[test]
    fn statuses_are_classified() {
        for (status, outcome, class) in [
            (200, Outcome::Succeeded, None),
            (202, Outcome::Succeeded, None),
            (204, Outcome::Succeeded, None),
            (299, Outcome::Succeeded, None),
            (100, Outcome::DeadLetter, Some(ErrorClass::Http1xx)),
            (301, Outcome::DeadLetter, Some(ErrorClass::Http3xx)),
            (304, Outcome::DeadLetter, Some(ErrorClass::Http3xx)),
            (400, Outcome::DeadLetter, Some(ErrorClass::Http4xx)),
            (401, Outcome::DeadLetter, Some(ErrorClass::Http4xx)),
            (404, Outcome::DeadLetter, Some(ErrorClass::Http4xx)),
            (408, retry(None), Some(ErrorClass::Http408)),
            (410, Outcome::DeadLetterAndPause, Some(ErrorClass::Http410)),
            (429, retry(None), Some(ErrorClass::Http429)),
            (499, Outcome::DeadLetter, Some(ErrorClass::Http4xx)),
            (500, retry(None), Some(ErrorClass::Http5xx)),
            (502, retry(None), Some(ErrorClass::Http5xx)),
            (503, retry(None), Some(ErrorClass::Http5xx)),
            (599, retry(None), Some(ErrorClass::Http5xx)),
            (0, Outcome::DeadLetter, Some(ErrorClass::HttpInvalid)),
            (99, Outcome::DeadLetter, Some(ErrorClass::HttpInvalid)),
            (600, Outcome::DeadLetter, Some(ErrorClass::HttpInvalid)),
            (u16::MAX, Outcome::DeadLetter, Some(ErrorClass::HttpInvalid)),
        ] {
            let classified = response(status, None);
            assert_eq!(
                (
                    classified.outcome,
                    classified.error_class,
                    classified.status
                ),
                (outcome, class, Some(status)),
                "{status}"
            );
        }
    }

    #[test]
    fn transport_failures_are_retried() {
        for (result, class) in [
            (AttemptResult::Timeout, ErrorClass::Timeout),
            (AttemptResult::Connection, ErrorClass::Connection),
            (AttemptResult::Transport, ErrorClass::Transport),
        ] {
            assert_eq!(
                classify(&result, NOW_MS),
                Classification {
                    outcome: retry(None),
                    error_class: Some(class),
                    status: None
                }
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_only_on_429_and_503() {
        assert_eq!(response(429, Some("120")).outcome, retry(Some(120_000)));
        assert_eq!(response(503, Some(" 7 ")).outcome, retry(Some(7_000)));
        for status in [408, 500, 502, 504] {
            assert_eq!(
                response(status, Some("120")).outcome,
                retry(None),
                "{status}"
            );
        }
        assert_eq!(response(429, Some("soon")).outcome, retry(None));
        assert_eq!(response(429, Some("-5")).outcome, retry(None));
        assert_eq!(response(429, Some("")).outcome, retry(None));
    }

    #[test]
    fn retry_after_accepts_http_dates_relative_to_now() {
        assert_eq!(
            retry_after_ms("Sun, 06 Nov 1994 08:50:37 GMT", NOW_MS),
            Some(60_000)
        );
        assert_eq!(
            retry_after_ms("Sunday, 06-Nov-94 08:49:38 GMT", NOW_MS),
            Some(1_000)
        );
        assert_eq!(
            retry_after_ms("Sun Nov  6 08:49:37 1994", NOW_MS + 500),
            Some(0)
        );
        // in the past: retry now
        assert_eq!(
            retry_after_ms("Sat, 05 Nov 1994 08:49:37 GMT", NOW_MS),
            Some(0)
        );
        assert_eq!(
            retry_after_ms("Thu, 01 Jan 1970 00:00:00 GMT", NOW_MS),
            Some(0)
        );
        assert_eq!(retry_after_ms("0", NOW_MS), Some(0));
        assert_eq!(
            retry_after_ms("99999999999999999999999", NOW_MS),
            Some(u64::MAX)
        );
        assert_eq!(
            retry_after_ms("Sun, 06 Nov 1994 08:50:37 CET", NOW_MS),
            None
        );
        assert_eq!(
            response(503, Some("Sun, 06 Nov 1994 08:51:37 GMT")).outcome,
            retry(Some(120_000))
        );
    }

    #[test]
    fn exponential_and_linear_delays() {
        let exp = |n| next_delay_ms(BackoffPolicy::Exponential, 5_000, u64::MAX, n, 0.5);
        let lin = |n| next_delay_ms(BackoffPolicy::Linear, 5_000, u64::MAX, n, 0.5);
        assert_eq!(
            [exp(1), exp(2), exp(3), exp(4)],
            [5_000, 10_000, 20_000, 40_000]
        );
        assert_eq!(
            [lin(1), lin(2), lin(3), lin(4)],
            [5_000, 10_000, 15_000, 20_000]
        );
        assert_eq!(exp(0), exp(1));
        assert_eq!(lin(0), lin(1));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let delay = |jitter| next_delay_ms(BackoffPolicy::Linear, 10_000, u64::MAX, 1, jitter);
        assert_eq!(delay(0.0), 8_000);
        assert_eq!(delay(0.25), 9_000);
        assert_eq!(delay(0.5), 10_000);
        assert_eq!(delay(0.75), 11_000);
        assert_eq!(delay(0.999_999_9), 12_000);
        assert_eq!(delay(-3.0), 8_000);
        assert_eq!(delay(7.0), 12_000);
        assert_eq!(delay(f64::NAN), 10_000);
        assert_eq!(delay(f64::INFINITY), 12_000);
        assert_eq!(delay(f64::NEG_INFINITY), 8_000);
        for i in 0..1000 {
            let d = delay(f64::from(i) / 1000.0);
            assert!((8_000..=12_000).contains(&d), "{i}: {d}");
        }
    }

    #[test]
    fn the_cap_applies_after_jitter_and_nothing_overflows() {
        let max = 3_600_000;
        for policy in [BackoffPolicy::Exponential, BackoffPolicy::Linear] {
            for n in [1, 2, 10, 11, 12, 63, 64, 65, 100, u32::MAX] {
                for jitter in [0.0, 0.5, 0.999] {
                    let d = next_delay_ms(policy, 5_000, max, n, jitter);
                    assert!(d <= max, "{policy:?} {n} {jitter}: {d}");
                }
                assert_eq!(next_delay_ms(policy, u64::MAX, u64::MAX, n, 0.5), u64::MAX);
                assert_eq!(next_delay_ms(policy, u64::MAX, max, n, 0.0), max);
            }
        }
        // 5 s · 2^10 = 5120 s: over the cap even at -20% (4096 s)
        assert_eq!(
            next_delay_ms(BackoffPolicy::Exponential, 5_000, max, 11, 0.0),
            max
        );
        // 5 s · 2^9 = 2560 s: +20% is 3072 s, under the cap
        assert_eq!(
            next_delay_ms(BackoffPolicy::Exponential, 5_000, max, 10, 1.0),
            3_072_000
        );
        // 3200 s · 1.2 = 3840 s: capped after jitter
        assert_eq!(
            next_delay_ms(BackoffPolicy::Linear, 3_200_000, max, 1, 1.0),
            max
        );
        assert_eq!(next_delay_ms(BackoffPolicy::Linear, 0, max, 100, 1.0), 0);
    }

    fn delivery(retry: u32) -> Delivery {
        Delivery {
            retry,
            ..Delivery::default()
        }
    }

    #[test]
    fn decisions_follow_the_outcome() {
        let d = delivery(3);
        assert_eq!(decide(&d, 1, &response(200, None), 0.5), Decision::Done);
        assert_eq!(decide(&d, 4, &response(204, None), 0.5), Decision::Done);
        assert_eq!(
            decide(&d, 1, &response(500, None), 0.5),
            Decision::RetryAt(5_000)
        );
        assert_eq!(
            decide(&d, 3, &response(500, None), 0.5),
            Decision::RetryAt(20_000)
        );
        assert_eq!(
            decide(&d, 2, &classify(&AttemptResult::Timeout, NOW_MS), 0.0),
            Decision::RetryAt(8_000)
        );
        assert_eq!(
            decide(&d, 1, &response(404, None), 0.5),
            Decision::DeadLetter {
                reason: "attempt 1 failed with HTTP 404 (http_4xx), which is not retried".into()
            }
        );
        assert_eq!(
            decide(&d, 2, &response(410, None), 0.5),
            Decision::DeadLetterAndPause {
                reason: "attempt 2 failed with HTTP 410 (http_410): the sink is gone, so the \
                         subscription was paused"
                    .into()
            }
        );
    }

    #[test]
    fn retries_run_out_after_retry_plus_one_attempts() {
        let d = delivery(3);
        assert_eq!(
            decide(&d, 4, &response(503, None), 0.5),
            Decision::DeadLetter {
                reason: "gave up after 4 attempts; the last failed with HTTP 503 (http_5xx)".into()
            }
        );
        assert_eq!(
            decide(
                &delivery(0),
                1,
                &classify(&AttemptResult::Connection, 0),
                0.5
            ),
            Decision::DeadLetter {
                reason: "gave up after 1 attempt; the last failed with a connection failure".into()
            }
        );
        assert_eq!(
            decide(&d, u32::MAX, &classify(&AttemptResult::Timeout, 0), 0.5),
            Decision::DeadLetter {
                reason: format!(
                    "gave up after {} attempts; the last failed with a timeout",
                    u32::MAX
                )
            }
        );
        let d = delivery(100);
        assert_eq!(
            decide(&d, 100, &response(500, None), 0.5),
            Decision::RetryAt(3_600_000)
        );
        assert!(matches!(
            decide(&d, 101, &response(500, None), 0.5),
            Decision::DeadLetter { .. }
        ));
    }

    #[test]
    fn retry_after_replaces_the_backoff_within_max_backoff() {
        let d = delivery(3);
        assert_eq!(
            decide(&d, 1, &response(429, Some("2")), 0.0),
            Decision::RetryAt(2_000)
        );
        assert_eq!(
            decide(&d, 3, &response(503, Some("0")), 1.0),
            Decision::RetryAt(0)
        );
        assert_eq!(
            decide(&d, 1, &response(429, Some("86400")), 0.5),
            Decision::RetryAt(3_600_000)
        );
        assert_eq!(
            decide(
                &d,
                1,
                &response(503, Some("Sat, 05 Nov 1994 08:49:37 GMT")),
                0.5
            ),
            Decision::RetryAt(0)
        );
        // exhausted retries win over Retry-After
        assert!(matches!(
            decide(&d, 4, &response(429, Some("1")), 0.5),
            Decision::DeadLetter { .. }
        ));
    }

    #[test]
    fn error_classes_serialize_as_their_names() -> Result<(), serde_json::Error> {
        for class in [
            ErrorClass::Http1xx,
            ErrorClass::Http3xx,
            ErrorClass::Http408,
            ErrorClass::Http410,
            ErrorClass::Http429,
            ErrorClass::Http4xx,
            ErrorClass::Http5xx,
            ErrorClass::HttpInvalid,
            ErrorClass::Timeout,
            ErrorClass::Connection,
            ErrorClass::Transport,
        ] {
            let json = serde_json::to_value(class)?;
            assert_eq!(json, serde_json::json!(class.as_str()));
            assert_eq!(serde_json::from_value::<ErrorClass>(json)?, class);
        }
        Ok(())
    }
}
