//! Instants: [`Timestamp`] (Unix milliseconds, written as RFC 3339) and [`parse_http_date`]
//! (the `Retry-After` date forms of RFC 9110), both on the `time` crate.

use std::fmt;
use std::num::NonZeroU8;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::format_description::well_known::iso8601::{
    Config, EncodedConfig, Iso8601, TimePrecision,
};
use time::parsing::Parsed;
use time::{OffsetDateTime, PrimitiveDateTime};

const NANOS_PER_MS: i128 = 1_000_000;
/// `9999-12-31T23:59:59.999Z`, the latest instant RFC 3339 can write, in Unix milliseconds.
const MAX_UNIX_MS: u64 = 253_402_300_799_999;

/// ISO 8601 in its RFC 3339 profile, in UTC (`Z`), with exactly three fraction digits.
const RFC3339_MILLIS: EncodedConfig = Config::DEFAULT
    .set_time_precision(TimePrecision::Second {
        decimal_digits: NonZeroU8::new(3),
    })
    .encode();

/// An instant, to the millisecond, not before the Unix epoch nor after the year 9999. Written
/// (and serialized) as RFC 3339 in UTC with milliseconds: `2026-11-27T19:04:05.250Z`;
/// deserialized from any RFC 3339 text (other offsets, any number of fraction digits).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The instant `ms` milliseconds after the Unix epoch (clamped to the year 9999).
    pub fn from_unix_ms(ms: u64) -> Self {
        Self(ms.min(MAX_UNIX_MS))
    }

    /// The current instant, from the system clock (`wasi:clocks` in a component); the epoch if
    /// the clock is before it.
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self::from_unix_ms(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_ms(self) -> u64 {
        self.0
    }

    /// The instant `ms` milliseconds later (clamped to the year 9999).
    pub fn plus_ms(self, ms: u64) -> Self {
        Self::from_unix_ms(self.0.saturating_add(ms))
    }

    /// The instant as RFC 3339 in UTC, e.g. `2026-11-27T19:04:05.250Z`.
    pub fn to_rfc3339(self) -> String {
        // At most MAX_UNIX_MS, so neither step can fail; the epoch is only a fallback.
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * NANOS_PER_MS)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .format(&Iso8601::<RFC3339_MILLIS>)
            .unwrap_or_default()
    }

    /// Parses RFC 3339 (`2026-11-27T19:04:05Z`, `2026-11-27T20:04:05.25+01:00`). Fraction digits
    /// after the third are dropped; instants before the epoch are `None`. Date and time must be
    /// separated by `T` (or `t`); a leap second (`23:59:60` at the end of a month) reads as the
    /// last millisecond before the next minute.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        // The `time` crate accepts any separator (RFC 3339 allows a space by a note); we do not.
        if !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
            return None;
        }
        let instant = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let ms = instant.unix_timestamp_nanos().div_euclid(NANOS_PER_MS);
        u64::try_from(ms).ok().map(Self::from_unix_ms)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// As [`Display`](fmt::Display): the RFC 3339 text.
impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp after 1970"))
    }
}

/// One form of HTTP-date, as a `time` format description (for words separated by one space).
struct DateForm {
    description: &'static str,
    /// The year is two digits (RFC 850): below 70 it is 20xx, else 19xx.
    two_digit_year: bool,
}

/// The three forms of RFC 9110 §5.6.7, preferred first.
const HTTP_DATE_FORMS: [DateForm; 3] = [
    // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
    DateForm {
        description: "[weekday repr:short case_sensitive:false], [day] \
                      [month repr:short case_sensitive:false] [year] [hour]:[minute]:[second] GMT",
        two_digit_year: false,
    },
    // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
    DateForm {
        description: "[weekday repr:long case_sensitive:false], \
                      [day]-[month repr:short case_sensitive:false]-[year repr:last_two] \
                      [hour]:[minute]:[second] GMT",
        two_digit_year: true,
    },
    // asctime: `Sun Nov  6 08:49:37 1994`
    DateForm {
        description: "[weekday repr:short case_sensitive:false] \
                      [month repr:short case_sensitive:false] [day padding:none] \
                      [hour]:[minute]:[second] [year]",
        two_digit_year: false,
    },
];

/// Parses an HTTP-date (RFC 9110 §5.6.7) into Unix seconds: the preferred IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) and the two obsolete forms recipients must accept,
/// RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`; a two-digit year below 70 is 20xx, else 19xx) and
/// asctime (`Sun Nov  6 08:49:37 1994`). Runs of white space count as one space; names of days
/// and months are matched without regard to case; the day name is checked for form, not against
/// the date; a leap second (`:60`) reads as `:59`. `None` if it is none of these.
pub fn parse_http_date(text: &str) -> Option<i64> {
    // Years are unsigned digits: the `time` crate would take a sign before a four-digit year.
    if text.contains('+') {
        return None;
    }
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    let text = words.join(" ");
    HTTP_DATE_FORMS
        .iter()
        .find_map(|form| parse_date_form(&text, form))
}

fn parse_date_form(text: &str, form: &DateForm) -> Option<i64> {
    let items = time::format_description::parse_borrowed::<2>(form.description).ok()?;
    let mut parsed = Parsed::new();
    let rest = parsed.parse_items(text.as_bytes(), &items).ok()?;
    if !rest.is_empty() || parsed.year().is_some_and(i32::is_negative) {
        return None;
    }
    if form.two_digit_year {
        let short_year = i32::from(parsed.year_last_two()?);
        let century = if short_year < 70 { 2000 } else { 1900 };
        parsed.set_year(century + short_year)?;
    }
    if parsed.second() == Some(60) {
        parsed.set_second(59)?;
    }
    let instant = PrimitiveDateTime::try_from(parsed).ok()?;
    Some(instant.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_rfc3339_with_milliseconds() {
        assert_eq!(
            Timestamp::from_unix_ms(0).to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms(1_614_265_330_250).to_rfc3339(),
            "2021-02-25T15:02:10.250Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms(951_782_400_000).to_rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms(u64::MAX).to_rfc3339(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms(u64::MAX - 1).plus_ms(u64::MAX),
            Timestamp::from_unix_ms(MAX_UNIX_MS)
        );
    }

    #[test]
    fn rfc3339_round_trips_and_honours_offsets() {
        for ms in [0, 1, 999, 1_614_265_330_250, 951_782_400_000, MAX_UNIX_MS] {
            let ts = Timestamp::from_unix_ms(ms);
            assert_eq!(Timestamp::parse_rfc3339(&ts.to_rfc3339()), Some(ts), "{ms}");
        }
        assert_eq!(
            Timestamp::parse_rfc3339("2021-02-25T16:02:10.25+01:00"),
            Some(Timestamp::from_unix_ms(1_614_265_330_250))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2021-02-25T15:02:10.2509999Z"),
            Some(Timestamp::from_unix_ms(1_614_265_330_250))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2021-02-25T15:02:10Z"),
            Some(Timestamp::from_unix_ms(1_614_265_330_000))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2021-02-25t15:02:10z"),
            Some(Timestamp::from_unix_ms(1_614_265_330_000))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2016-12-31T23:59:60Z"),
            Some(Timestamp::from_unix_ms(1_483_228_799_999))
        );
        for bad in [
            "",
            "2021-02-25",
            "2021-02-25 15:02:10Z",
            "2021-02-30T15:02:10Z",
            "2021-02-25T25:02:10Z",
            "2021-02-25T15:02:10.Z",
            "2021-02-25T15:02:10+0100",
            "1969-12-31T23:59:59Z",
            "2021-02-25T15:02:10Zjunk",
            "２０２1-02-25T15:02:10Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn timestamps_serialize_as_strings() -> Result<(), serde_json::Error> {
        let ts = Timestamp::from_unix_ms(1_614_265_330_250);
        let json = serde_json::to_string(&ts)?;
        assert_eq!(json, "\"2021-02-25T15:02:10.250Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json)?, ts);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
        assert!(serde_json::from_str::<Timestamp>("17").is_err());
        Ok(())
    }

    #[test]
    fn http_dates_in_all_three_forms() {
        let expected = Some(784_111_777);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), expected);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), expected);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), expected);
        assert_eq!(
            parse_http_date("  sun, 06 nov 1994 08:49:37 GMT "),
            expected
        );
        assert_eq!(
            parse_http_date("Thursday, 01-Jan-26 00:00:00 GMT"),
            Some(1_767_225_600)
        );
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 23:59:60 GMT"),
            Some(1_709_251_199)
        );
    }

    #[test]
    fn malformed_http_dates_are_rejected() {
        for bad in [
            "",
            "soon",
            "120",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 2023 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08-49-37 GMT",
            "Sun, +6 Nov 1994 08:49:37 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sunday, 06-Nov-94-1 08:49:37 GMT",
            "Sun Nov 123 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sun, 06 Nov 1994 08:49:3é GMT",
            "Sun, 06 Nov +1994 08:49:37 GMT",
            "Sun, 06 Nov -1994 08:49:37 GMT",
            "Sun Nov +6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }
}
