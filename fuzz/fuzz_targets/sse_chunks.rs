//! The SSE parser on any stream, cut into chunks anywhere: the same events come out whatever
//! the chunk boundaries, each with the length of its data in the stream and no more of that
//! data than the parser's limit.
//!
//! Input: the first byte picks the limit; the rest is the stream, where each 0xFF byte
//! (never valid in UTF-8 text) marks a chunk boundary and is removed.
#![no_main]

use intercept::transport::sse::{Event, SseParser};
use libfuzzer_sys::fuzz_target;

/// A boundary between two chunks, not part of the stream.
const CUT: u8 = 0xFF;

fn events<'a>(max: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Event> {
    let mut parser = SseParser::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        parser.push(chunk, &mut out);
    }
    out
}

/// How much of an over-long event's data the parser keeps at most.
const TRUNCATED_PREFIX: usize = 64 * 1024;

/// The data of each event, read by the rules of the event stream format with no limit.
fn unlimited(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut events = Vec::new();
    let mut data: Option<Vec<u8>> = None;
    let mut lines: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    lines.pop(); // not ended by a newline yet
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            events.extend(data.take());
            continue;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &line[line.len()..]),
        };
        if name == b"data" {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            match &mut data {
                Some(d) => {
                    d.push(b'\n');
                    d.extend_from_slice(value);
                }
                None => data = Some(value.to_vec()),
            }
        }
    }
    events
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    // Small limits, so events go over them; the high bit gives a few large ones too.
    let max = if first & 0x80 == 0 {
        usize::from(first)
    } else {
        usize::from(first & 0x7f) * 1024
    };
    let stream: Vec<u8> = rest.iter().copied().filter(|&b| b != CUT).collect();

    let whole = events(max, [stream.as_slice()]);
    let cut = events(max, rest.split(|&b| b == CUT));
    assert_eq!(cut, whole, "chunks cut at the marks");
    let bytes = events(max, stream.chunks(1));
    assert_eq!(bytes, whole, "one byte at a time");

    // Against a parser with no limit: the same events, each with its full length and as
    // much of its data as the limit keeps.
    let full = unlimited(&stream);
    assert_eq!(
        whole.len(),
        full.len(),
        "events: {whole:?}, expected data {full:?}"
    );
    for (e, data) in whole.iter().zip(&full) {
        assert_eq!(e.len, data.len(), "the full length of {e:?}");
        assert_eq!(e.truncated, data.len() > max, "{e:?}");
        let kept = if e.truncated {
            (max + 1).min(TRUNCATED_PREFIX)
        } else {
            data.len()
        };
        assert_eq!(e.data, data[..kept.min(data.len())], "the data of {e:?}");
        // Field values come from lines buffered up to the limit (and a field name); lossy
        // decoding may triple an invalid byte.
        let field_bound = 3 * (max + 16);
        assert!(e.event.len() <= field_bound, "{e:?}");
        assert!(
            e.id.as_ref().is_none_or(|i| i.len() <= field_bound),
            "{e:?}"
        );
    }
});
