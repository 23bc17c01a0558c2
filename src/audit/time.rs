//! Event timestamps: RFC 3339 UTC with milliseconds (`2026-11-24T19:41:37.250Z`).
//!
//! Parsing reads whatever an event file holds, including lines someone edited by hand, so it
//! must turn any text into a time or `None`, never panic: `jiff` does the calendar work.

use jiff::Timestamp;

use crate::state::Millis;

/// `2026-11-24T19:41:37.250Z` for milliseconds since the Unix epoch. Times outside the years
/// -9999..=9999 are written as the nearest one inside.
pub fn rfc3339(ms: Millis) -> String {
    let at = Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    });
    // Precision 3: always milliseconds, so every line's `ts` has the same width.
    format!("{at:.3}")
}

/// Milliseconds since the epoch of an RFC 3339 time (`Z` or `±hh:mm`, any fraction, which is
/// truncated to milliseconds); `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    // A time with an offset is required: a bare local date-time names no instant.
    s.parse::<Timestamp>().ok().map(Timestamp::as_millisecond)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_764_100_897_250), "2025-11-25T20:01:37.250Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(Millis::MAX), "9999-12-30T22:00:00.999Z");
        assert_eq!(rfc3339(Millis::MIN), "-009999-01-02T01:59:59.000Z");
    }

    #[test]
    fn times_read_back_as_written() {
        for ms in [0, -1, 951_782_400_000, 1_764_100_897_250, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(
            parse_rfc3339("2025-11-25T21:01:37.25+01:00"),
            Some(1_764_100_897_250)
        );
        assert_eq!(
            parse_rfc3339("2025-11-25T20:01:37Z"),
            Some(1_764_100_897_000)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T14:30:15.2509+02:00"),
            Some(951_827_415_250)
        );
        assert_eq!(
            parse_rfc3339("2100-01-01T00:00:00.000Z"),
            Some(4_102_444_800_000)
        );
    }

    #[test]
    fn anything_else_is_not_a_time_and_never_a_panic() {
        for odd in [
            "",
            "2025-11-25",
            "2025-11-25T20:01:37",
            "2025-13-25T20:01:37Z",
            "2025-02-30T20:01:37Z",
            "2025-11-25T24:01:37Z",
            "2025-11-25T20:01:37.Z",
            "not a time",
            // Multi-byte characters where digits and separators are expected: slicing
            // this by byte index used to panic.
            "2025-11-25T20:01:37é000Z",
            "2025-11-25T20:01:37é0:00",
            "2025-11-25T20:01:3é.000Z",
            "2025-11-25T20:01:37.250+0é:00",
            "２０２５-11-25T20:01:37Z",
            "2025-11-25T20:01:37.250Z\u{0}",
            "\u{feff}2025-11-25T20:01:37Z",
        ] {
            assert_eq!(parse_rfc3339(odd), None, "{odd:?}");
        }
    }
}
