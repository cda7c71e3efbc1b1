//! Size limits of published events (`413`).
//!
//! The limit (`max_event_bytes`, default [`DEFAULT_MAX_EVENT_BYTES`]) applies to each event: the
//! request body in binary, structured and legacy mode, and each event of a batch (measured in the
//! JSON event format, [`Event::encoded_len`]). A batch body may be up to
//! [`MAX_BATCH_EVENTS`] times the limit (plus a little framing), so that the gateway can refuse a
//! huge body before parsing it.

use eventplane_core::Error;

use crate::cloudevents::{Event, MAX_BATCH_EVENTS};

/// The default largest event accepted: 64 KiB.
pub const DEFAULT_MAX_EVENT_BYTES: u64 = 65_536;

/// `Ok` when `len` bytes fit in `limit`, else `413` naming the limit.
pub fn check_size(len: usize, limit: u64) -> Result<(), Error> {
    if u64::try_from(len).map_or(true, |len| len > limit) {
        Err(Error::payload_too_large(limit))
    } else {
        Ok(())
    }
}

/// The largest batch body accepted with a per-event `limit`: room for [`MAX_BATCH_EVENTS`] events
/// of `limit` bytes, the commas between them and the brackets.
pub fn max_batch_body_bytes(limit: u64) -> u64 {
    let events = MAX_BATCH_EVENTS as u64;
    limit.saturating_mul(events).saturating_add(events + 1)
}

/// Checks every event of a batch against the per-event `limit` (`413` for the first that is too
/// large).
pub fn check_events(events: &[Event], limit: u64) -> Result<(), Error> {
    events
        .iter()
        .try_for_each(|event| check_size(event.encoded_len(), limit))
}

/// The limit configured by the `max_event_bytes` variable: empty or absent means
/// [`DEFAULT_MAX_EVENT_BYTES`]; anything but a positive integer is a configuration error
/// (a message for the logs).
pub fn parse_limit(variable: Option<&str>) -> Result<u64, String> {
    match variable.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_MAX_EVENT_BYTES),
        Some(text) => match text.parse::<u64>() {
            Ok(limit) if limit > 0 => Ok(limit),
            _ => Err(format!(
                "max_event_bytes must be a positive integer (bytes), not {text:?}"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert!(check_size(65_536, DEFAULT_MAX_EVENT_BYTES).is_ok());
        let err = check_size(65_537, DEFAULT_MAX_EVENT_BYTES).unwrap_err();
        assert_eq!(err.status(), 413);
        assert!(err.public_message().contains("65536"), "{err}");
        assert_eq!(max_batch_body_bytes(10), 1_101);
        assert_eq!(max_batch_body_bytes(u64::MAX), u64::MAX);
    }

    #[test]
    fn batch_events_are_measured_one_by_one() {
        let small = Event::new("1", "/applications/a", "t");
        let mut big = small.clone();
        big.subject = Some("x".repeat(500));
        assert!(check_events(&[small.clone(), small.clone()], 200).is_ok());
        assert_eq!(
            check_events(&[small, big], 200).map_err(|e| e.status()),
            Err(413)
        );
    }

    #[test]
    fn limits_from_variables() {
        assert_eq!(parse_limit(None), Ok(DEFAULT_MAX_EVENT_BYTES));
        assert_eq!(parse_limit(Some(" ")), Ok(DEFAULT_MAX_EVENT_BYTES));
        assert_eq!(parse_limit(Some("1024")), Ok(1024));
        assert!(parse_limit(Some("0")).is_err());
        assert!(parse_limit(Some("64k")).is_err());
    }
}
