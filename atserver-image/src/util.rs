//! Small helpers shared by several modules.

/// Formats epoch milliseconds the way the Dart server prints `DateTime.toUtc()`:
/// `YYYY-MM-DD HH:MM:SS.mmmZ`.
pub fn format_millis(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S.%3fZ").to_string(),
        Err(_) => String::from("null"),
    }
}

/// `YYYY-MM-DD` (UTC) of epoch milliseconds, used for `notify:list` date filters.
pub fn day_of_millis(ms: i64) -> Option<jiff::civil::Date> {
    let ts = jiff::Timestamp::from_millisecond(ms).ok()?;
    Some(ts.to_zoned(jiff::tz::TimeZone::UTC).date())
}

/// Compares two strings in time independent of where they first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_dart() {
        assert_eq!(format_millis(1_729_733_702_123), "2024-10-24 01:35:02.123Z");
        assert_eq!(format_millis(0), "1970-01-01 00:00:00.000Z");
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
