//! The audit log's timestamp parser on any text: it never panics, accepts only ASCII, and
//! what it accepts reads back the same after being written the way the log writes it.
#![no_main]

use intercept::audit::time::{parse_rfc3339, rfc3339};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The parser takes a &str: the log is read as UTF-8, and invalid lines never reach it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(ms) = parse_rfc3339(text) else {
        return;
    };
    assert!(text.is_ascii(), "accepted non-ASCII text {text:?}");
    // Written back (UTC, milliseconds) and read again: the same instant. Years outside
    // 0000..=9999 (reachable through an offset) have no four-digit form to write.
    let written = rfc3339(ms);
    if written.len() == 24 && !written.starts_with('-') {
        assert_eq!(
            parse_rfc3339(&written),
            Some(ms),
            "{text:?} read as {ms}, written as {written:?}"
        );
    }
});
