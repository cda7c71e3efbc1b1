//! [`Timestamp`]: an instant in whole seconds, stored as Unix time and shown as RFC 3339.
//!
//! The calendar arithmetic is Howard Hinnant's `days_from_civil` / `civil_from_days`, so the
//! crate needs no date library for the one format it speaks.

use std::fmt;

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use serde::{Deserialize, Serialize};

const SECONDS_PER_DAY: i64 = 86_400;
/// `0000-01-01T00:00:00Z`, the earliest instant RFC 3339 can write.
const MIN_UNIX_SECONDS: i64 = -62_167_219_200;
/// `9999-12-31T23:59:59Z`, the latest instant RFC 3339 can write.
const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

/// An instant, to the second. Stored as Unix seconds; written as RFC 3339 in UTC
/// (`2026-11-27T19:04:05Z`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `seconds` after the Unix epoch, clamped to the years 0000 to 9999.
    pub fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds.clamp(MIN_UNIX_SECONDS, MAX_UNIX_SECONDS))
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(self) -> i64 {
        self.0
    }

    /// The instant as RFC 3339 in UTC, e.g. `2026-11-27T19:04:05Z`.
    pub fn to_rfc3339(self) -> String {
        let days = self.0.div_euclid(SECONDS_PER_DAY);
        let second_of_day = self.0.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            second_of_day / 3600,
            second_of_day % 3600 / 60,
            second_of_day % 60
        )
    }

    /// Parses RFC 3339 (`2026-11-27T19:04:05Z`, `2026-11-27T20:04:05.250+01:00`); fractions of a
    /// second are dropped.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() < 20 || !matches!(bytes[10], b'T' | b't' | b' ') {
            return None;
        }
        let separators_ok = bytes[4] == b'-' && bytes[7] == b'-' && bytes[13] == b':';
        if !separators_ok || bytes[16] != b':' {
            return None;
        }
        let year = digits(text, 0, 4)?;
        let month = digits(text, 5, 7)?;
        let day = digits(text, 8, 10)?;
        let (hour, minute, second) = (
            digits(text, 11, 13)?,
            digits(text, 14, 16)?,
            digits(text, 17, 19)?,
        );
        let valid = (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && hour < 24
            && minute < 60
            && second < 61;
        if !valid {
            return None;
        }
        let mut rest = &text[19..];
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits_len = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits_len == 0 {
                return None;
            }
            rest = &fraction[digits_len..];
        }
        let offset = match rest.as_bytes() {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
                let (hours, minutes) = (digits(rest, 1, 3)?, digits(rest, 4, 6)?);
                if hours >= 24 || minutes >= 60 {
                    return None;
                }
                let offset = hours * 3600 + minutes * 60;
                if *sign == b'-' { -offset } else { offset }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let seconds = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second.min(59) - offset;
        Some(Self::from_unix_seconds(seconds))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// An instant, written as RFC 3339 in UTC (`2026-11-27T19:04:05Z`).
#[Scalar(name = "Timestamp")]
impl ScalarType for Timestamp {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => Self::parse_rfc3339(text)
                .ok_or_else(|| InputValueError::custom("expected an RFC 3339 timestamp")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.to_rfc3339())
    }
}

/// The decimal number in `text[start..end]`, all ASCII digits.
fn digits(text: &str, start: usize, end: usize) -> Option<i64> {
    let part = text.get(start..end)?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of the proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (MAX_UNIX_SECONDS, "9999-12-31T23:59:59Z"),
            (MIN_UNIX_SECONDS, "0000-01-01T00:00:00Z"),
        ];
        for (seconds, text) in cases {
            assert_eq!(Timestamp::from_unix_seconds(seconds).to_rfc3339(), text);
            assert_eq!(
                Timestamp::parse_rfc3339(text),
                Some(Timestamp(seconds)),
                "{text}"
            );
        }
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        let start = days_from_civil(1900, 1, 1);
        for days in start..start + 146_097 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!((1..=days_in_month(y, m)).contains(&d));
        }
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let utc = Timestamp::parse_rfc3339("2023-11-14T22:13:20Z");
        for text in [
            "2023-11-14T23:13:20+01:00",
            "2023-11-14T21:13:20.999-01:00",
            "2023-11-14t22:13:20.5z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(text), utc, "{text}");
        }
    }

    #[test]
    fn rejects_malformed_text() {
        for text in [
            "",
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-13-14T22:13:20Z",
            "2023-02-29T22:13:20Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+0100",
            "2023-11-14T22:13:20+25:00",
            "２０２３-11-14T22:13:20Z",
            "+023-11-14T22:13:20Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(text), None, "{text}");
        }
    }
}
