//! ISO 8601 durations, the subset that names an exact length of time: days, hours, minutes and
//! seconds (`PnDTnHnMnS`), the seconds with an optional decimal fraction (`PT0.5S`, `P1D`,
//! `PT1H30M`). Years, months and weeks are rejected (a month has no fixed length; say `P7D` for
//! a week), as are signs, lower-case designators and empty durations (`P`, `PT`).
//!
//! Durations are held as milliseconds; fraction digits after the third are dropped.
//! [`format_duration`] writes the canonical form: largest units first, zero components left
//! out, `PT0S` for zero.

use std::fmt;

/// Milliseconds per second, minute, hour and day.
const MS_PER_SECOND: u64 = 1000;
const MS_PER_MINUTE: u64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: u64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;

/// Text that is not a duration this module accepts; the message is written for an API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(String);

impl DurationError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// What is wrong, for the client.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurationError {}

/// The components in the order they must appear, with their length in milliseconds.
const UNITS: [(char, bool, u64); 4] = [
    ('D', false, MS_PER_DAY),
    ('H', true, MS_PER_HOUR),
    ('M', true, MS_PER_MINUTE),
    ('S', true, MS_PER_SECOND),
];

const EXAMPLES: &str = "an ISO 8601 duration of days, hours, minutes and seconds, e.g. PT5S, \
                        PT0.5S, PT1H30M or P1D";

/// Parses an ISO 8601 duration (`PT5S`, `PT0.5S`, `PT1H30M`, `P1DT12H`) into milliseconds.
///
/// ```
/// use eventplane_dispatch::duration::parse_duration_ms;
/// assert_eq!(parse_duration_ms("PT1H30M"), Ok(5_400_000));
/// assert_eq!(parse_duration_ms("PT0.5S"), Ok(500));
/// assert!(parse_duration_ms("P1M").is_err());
/// ```
pub fn parse_duration_ms(text: &str) -> Result<u64, DurationError> {
    if text.starts_with('-') {
        return Err(DurationError::new("must not be negative"));
    }
    let Some(body) = text.strip_prefix('P') else {
        return Err(DurationError::new(format!("must be {EXAMPLES}")));
    };
    let (date, time) = match body.split_once('T') {
        Some((date, time)) => {
            if time.is_empty() {
                return Err(DurationError::new(
                    "has a T but no hours, minutes or seconds after it",
                ));
            }
            (date, Some(time))
        }
        None => (body, None),
    };
    if date.is_empty() && time.is_none() {
        return Err(DurationError::new(format!(
            "has no components; it must be {EXAMPLES}"
        )));
    }
    let mut total: u64 = 0;
    // Position in UNITS the next component must not precede.
    let mut next_unit = 0;
    for (part, in_time) in [(date, false), (time.unwrap_or_default(), true)] {
        let mut rest = part;
        while !rest.is_empty() {
            let number_len = rest
                .bytes()
                .take_while(|b| b.is_ascii_digit() || *b == b'.' || *b == b',')
                .count();
            let (number, after) = rest.split_at(number_len);
            let Some(designator) = after.chars().next() else {
                return Err(DurationError::new(format!(
                    "{number:?} has no unit designator (D, H, M or S)"
                )));
            };
            rest = &after[designator.len_utf8()..];
            if number.is_empty() {
                return Err(DurationError::new(if designator.is_ascii_uppercase() {
                    format!("expected a number before {designator:?}")
                } else {
                    format!("unexpected character {designator:?}")
                }));
            }
            let unit = UNITS
                .iter()
                .position(|(d, time_unit, _)| *d == designator && *time_unit == in_time);
            let Some(unit) = unit else {
                return Err(unsupported(designator, in_time));
            };
            if unit < next_unit {
                return Err(DurationError::new(format!(
                    "{designator:?} is repeated or out of order (use the order D, T, H, M, S)"
                )));
            }
            next_unit = unit + 1;
            let (_, _, unit_ms) = UNITS[unit];
            let ms = component_ms(number, designator, unit_ms)?;
            total = total.checked_add(ms).ok_or_else(too_large)?;
        }
    }
    Ok(total)
}

fn unsupported(designator: char, in_time: bool) -> DurationError {
    match (designator, in_time) {
        ('Y' | 'M' | 'W', false) => DurationError::new(
            "years, months and weeks are not supported; use days (D), hours (H), minutes (M) \
             and seconds (S)",
        ),
        ('D', true) => DurationError::new("days (D) go before the T"),
        ('H' | 'S', false) => {
            DurationError::new(format!("{designator:?} belongs after the T (e.g. PT5S)"))
        }
        _ => DurationError::new(format!(
            "{designator:?} is not a unit here; use D before the T and H, M, S after it"
        )),
    }
}

/// The milliseconds of `number` units of `unit_ms`; only seconds may have a fraction.
fn component_ms(number: &str, designator: char, unit_ms: u64) -> Result<u64, DurationError> {
    let (whole, fraction) = match number.split_once(['.', ',']) {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (number, None),
    };
    let well_formed = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        return Err(DurationError::new(format!(
            "{number:?} is not a number (digits, and for seconds an optional fraction)"
        )));
    }
    if fraction.is_some() && designator != 'S' {
        return Err(DurationError::new(
            "only seconds may have a fraction (e.g. PT1.5S)",
        ));
    }
    let whole: u64 = whole.parse().map_err(|_| too_large())?;
    let mut ms = whole.checked_mul(unit_ms).ok_or_else(too_large)?;
    if let Some(fraction) = fraction {
        let millis = fraction
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0, |acc, b| acc * 10 + u64::from(b - b'0'));
        ms = ms.checked_add(millis).ok_or_else(too_large)?;
    }
    Ok(ms)
}

fn too_large() -> DurationError {
    DurationError::new("is too large")
}

/// The canonical ISO 8601 form of `ms` milliseconds: `PT5S`, `PT0.5S`, `PT1H30M`, `P1DT2H`,
/// `PT0S`.
///
/// ```
/// use eventplane_dispatch::duration::format_duration;
/// assert_eq!(format_duration(5_400_000), "PT1H30M");
/// assert_eq!(format_duration(86_400_000), "P1D");
/// ```
pub fn format_duration(ms: u64) -> String {
    if ms == 0 {
        return "PT0S".to_owned();
    }
    let days = ms / MS_PER_DAY;
    let hours = ms % MS_PER_DAY / MS_PER_HOUR;
    let minutes = ms % MS_PER_HOUR / MS_PER_MINUTE;
    let seconds = ms % MS_PER_MINUTE / MS_PER_SECOND;
    let millis = ms % MS_PER_SECOND;
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if hours > 0 || minutes > 0 || seconds > 0 || millis > 0 {
        out.push('T');
        if hours > 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes > 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if seconds > 0 || millis > 0 {
            out.push_str(&seconds.to_string());
            if millis > 0 {
                let fraction = format!("{millis:03}");
                out.push('.');
                out.push_str(fraction.trim_end_matches('0'));
            }
            out.push('S');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_days_hours_minutes_and_seconds() {
        for (text, ms) in [
            ("PT5S", 5_000),
            ("PT0.5S", 500),
            ("PT0,25S", 250),
            ("PT1.0005S", 1_000),
            ("P1D", 86_400_000),
            ("PT1H30M", 5_400_000),
            ("P1DT2H3M4.567S", 93_784_567),
            ("PT2M", 120_000),
            ("PT0S", 0),
            ("P0D", 0),
            ("PT90M", 5_400_000),
            ("PT36H", 129_600_000),
            ("PT007S", 7_000),
        ] {
            assert_eq!(parse_duration_ms(text), Ok(ms), "{text}");
        }
    }

    #[test]
    fn rejects_what_is_not_an_exact_duration() {
        for (text, expected) in [
            ("", "must be an ISO 8601 duration"),
            ("5S", "must be an ISO 8601 duration"),
            ("pt5s", "must be an ISO 8601 duration"),
            ("P", "has no components"),
            ("PT", "has a T but no"),
            ("P1DT", "has a T but no"),
            ("-PT5S", "negative"),
            ("P-5D", "unexpected character '-'"),
            ("PT-5S", "unexpected character '-'"),
            ("P1Y", "years, months and weeks"),
            ("P1M", "years, months and weeks"),
            ("P2W", "years, months and weeks"),
            ("PT1D", "days (D) go before the T"),
            ("P5S", "belongs after the T"),
            ("P1H", "belongs after the T"),
            ("PT5", "no unit designator"),
            ("PTS", "expected a number"),
            ("PT5s", "not a unit here"),
            ("PT5X", "not a unit here"),
            ("PT1M1H", "out of order"),
            ("PT1S1S", "repeated"),
            ("P1DT1H1D", "days (D) go before the T"),
            ("PT1.5M", "only seconds may have a fraction"),
            ("P1.5D", "only seconds may have a fraction"),
            ("PT.5S", "is not a number"),
            ("PT5.S", "is not a number"),
            ("PT1.2.3S", "is not a number"),
            ("PT5S ", "unexpected character ' '"),
            ("PT5É", "not a unit here"),
            ("PT99999999999999999999S", "too large"),
            ("P300000000000D", "too large"),
            ("P100000000DT100000000000000H", "too large"),
            ("PT18446744073709551S18446744073709551S", "repeated"),
        ] {
            let err = parse_duration_ms(text).expect_err(text);
            assert!(err.message().contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn sums_that_overflow_are_rejected() {
        let err = parse_duration_ms("P213503982334DT23H").expect_err("overflow");
        assert_eq!(err.message(), "is too large");
    }

    #[test]
    fn formats_canonically() {
        for (ms, text) in [
            (0, "PT0S"),
            (500, "PT0.5S"),
            (1, "PT0.001S"),
            (1_250, "PT1.25S"),
            (5_000, "PT5S"),
            (120_000, "PT2M"),
            (3_600_000, "PT1H"),
            (5_400_000, "PT1H30M"),
            (86_400_000, "P1D"),
            (93_784_567, "P1DT2H3M4.567S"),
            (86_400_001, "P1DT0.001S"),
        ] {
            assert_eq!(format_duration(ms), text, "{ms}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for ms in [
            0,
            1,
            999,
            1_000,
            59_999,
            3_599_999,
            86_399_999,
            123_456_789,
            u64::MAX,
        ] {
            assert_eq!(parse_duration_ms(&format_duration(ms)), Ok(ms), "{ms}");
        }
    }
}
