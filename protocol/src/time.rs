//! Dates on the wire: Dart's `DateTime.toUtc().toString()` form and ISO-8601.

use jiff::Timestamp;

/// The text is neither a Dart UTC date nor an ISO-8601 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid date {0:?}")]
pub struct DateError(pub String);

/// Formats as `YYYY-MM-DD HH:MM:SS.mmmZ` (6 fractional digits when microseconds are set,
/// like Dart; sub-microsecond precision is dropped).
pub fn format_dart(ts: Timestamp) -> String {
    let micros = ts.subsec_microsecond();
    if micros % 1000 == 0 {
        ts.strftime("%Y-%m-%d %H:%M:%S.%3fZ").to_string()
    } else {
        ts.strftime("%Y-%m-%d %H:%M:%S.%6fZ").to_string()
    }
}

/// [`format_dart`] of epoch milliseconds, the form stored records and notifications carry;
/// `None` for milliseconds outside the representable range (years -9999 to 9999).
pub fn format_dart_millis(ms: i64) -> Option<String> {
    Timestamp::from_millisecond(ms).ok().map(format_dart)
}

/// Formats as ISO-8601 with a `T` and the shortest exact fraction (`2024-10-24T01:35:02.123Z`),
/// the form the `:cAt:`… metadata items carry.
pub fn format_iso(ts: Timestamp) -> String {
    ts.to_string()
}

/// Reads the Dart form, ISO-8601 with `T` (or a space), with or without a fraction, with `Z`
/// or a numeric offset. Digits finer than a microsecond are dropped: the wire's dates are Dart
/// `DateTime`s, and [`format_dart`] could not write them back, so a date read from one JSON
/// shape would come back different from the other (found by the `metadata` fuzz target).
pub fn parse_date(text: &str) -> Result<Timestamp, DateError> {
    let invalid = || DateError(text.to_string());
    let ts = text.trim().parse::<Timestamp>().map_err(|_| invalid())?;
    // Integer division truncates toward zero, so the nanoseconds keep the seconds' sign.
    let nanos = ts.subsec_nanosecond() / 1000 * 1000;
    Timestamp::new(ts.as_second(), nanos).map_err(|_| invalid())
}

/// Whether `text` has the exact shape the newer metadata grammar accepts for `cAt`/`uAt`/
/// `eAt`/`aAt`/`dAt`: `\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z`.
pub fn is_wire_iso(text: &str) -> bool {
    wire_iso_len(text) == Some(text.len())
}

/// Length of the wire ISO timestamp at the start of `text`, if there is one.
pub fn wire_iso_len(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let ok = digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && at(10, b'T')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19);
    if !ok {
        return None;
    }
    let mut i = 19;
    if at(i, b'.') {
        let frac = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac == 0 {
            return None;
        }
        i += 1 + frac;
    }
    at(i, b'Z').then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dart_format() {
        let ts: Timestamp = "2024-10-24T01:35:02.123Z".parse().unwrap();
        assert_eq!(format_dart(ts), "2024-10-24 01:35:02.123Z");
        let ts: Timestamp = "2024-10-24T01:35:02Z".parse().unwrap();
        assert_eq!(format_dart(ts), "2024-10-24 01:35:02.000Z");
        let ts: Timestamp = "2024-10-24T01:35:02.123456Z".parse().unwrap();
        assert_eq!(format_dart(ts), "2024-10-24 01:35:02.123456Z");
        assert_eq!(format_iso(ts), "2024-10-24T01:35:02.123456Z");
    }

    #[test]
    fn dart_format_of_millis() {
        assert_eq!(
            format_dart_millis(1_729_733_702_123).as_deref(),
            Some("2024-10-24 01:35:02.123Z")
        );
        assert_eq!(
            format_dart_millis(0).as_deref(),
            Some("1970-01-01 00:00:00.000Z")
        );
        assert_eq!(format_dart_millis(i64::MAX), None);
        assert_eq!(format_dart_millis(i64::MIN), None);
    }

    #[test]
    fn reads_both_forms() {
        let want: Timestamp = "2024-10-24T01:35:02.123Z".parse().unwrap();
        for text in [
            "2024-10-24 01:35:02.123Z",
            "2024-10-24T01:35:02.123Z",
            "2024-10-24T01:35:02.123000Z",
            "2024-10-24T03:35:02.123+02:00",
        ] {
            assert_eq!(parse_date(text), Ok(want), "{text}");
        }
        assert!(parse_date("yesterday").is_err());
        assert!(parse_date("2024-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn wire_iso_shape() {
        assert!(is_wire_iso("2024-10-24T01:35:02Z"));
        assert!(is_wire_iso("2024-10-24T01:35:02.5Z"));
        assert!(!is_wire_iso("2024-10-24 01:35:02Z"));
        assert!(!is_wire_iso("2024-10-24T01:35:02."));
        assert!(!is_wire_iso("2024-10-24T01:35:02"));
        assert_eq!(wire_iso_len("2024-10-24T01:35:02Z:ttl:5"), Some(20));
    }
}
