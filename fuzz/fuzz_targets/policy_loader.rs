//! The policy loader on any bytes: it never panics, finishes fast (libFuzzer's `-timeout`
//! and `-rss_limit_mb` catch blow-ups such as alias bombs), `validate` and `parse` agree,
//! and every error points into the text.
#![no_main]

use intercept::policy::{self, LoadError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A policy file is read as UTF-8 and refused whole when it is not; decoding lossily
    // lets every input reach the YAML parser instead of being thrown away here.
    let text = String::from_utf8_lossy(data);
    let errors = policy::validate(&text);
    match policy::parse(&text, "fuzz.yaml") {
        Ok(_) => assert!(errors.is_empty(), "parsed, yet validate found {errors:?}"),
        Err(LoadError::Invalid { errors: found, .. }) => assert_eq!(found, errors),
        Err(other) => panic!("parsing text failed as {other:?}"),
    }
    // YAML also ends a line at a lone `\r`: counting both bounds the last line from above.
    // The end of a text with no final line break is the start of the line after it.
    let lines = 2 + text.matches(['\n', '\r']).count();
    for e in &errors {
        assert!(!e.message.is_empty(), "an error without a message: {e:?}");
        assert!(
            (1..=lines).contains(&e.line) && e.column >= 1,
            "{e:?} is outside the text's {lines} lines"
        );
    }
});
