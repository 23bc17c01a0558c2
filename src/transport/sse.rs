//! Server-sent events: an incremental parser with no limit on line length other than the
//! proxy's message limit, so events of any size are relayed.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; empty means the default type, `message`.
    pub event: String,
    pub data: Vec<u8>,
    pub id: Option<String>,
    /// The data went over the limit: only its first bytes are kept.
    pub truncated: bool,
    /// Full length of the data.
    pub len: usize,
}

impl Event {
    /// Is this a `message` event (named so, or of the default type)?
    pub(crate) fn is_message(&self) -> bool {
        self.event.is_empty() || self.event == "message"
    }
}

#[derive(Debug)]
pub struct SseParser {
    max: usize,
    line: Vec<u8>,
    event: String,
    data: Vec<u8>,
    len: usize,
    id: Option<String>,
    has_data: bool,
    /// Bytes of the current line past what is buffered: counted toward the event's length
    /// only if the line turns out to be data.
    line_dropped: usize,
    /// The last byte of the current line so far is `\r` (it may be past what is buffered).
    line_ends_in_cr: bool,
}

/// How much of an over-long event is kept, to find its id.
const TRUNCATED_PREFIX: usize = 64 * 1024;

impl SseParser {
    pub fn new(max: usize) -> Self {
        SseParser {
            max,
            line: Vec::new(),
            event: String::new(),
            data: Vec::new(),
            len: 0,
            id: None,
            has_data: false,
            line_dropped: 0,
            line_ends_in_cr: false,
        }
    }

    /// Feeds bytes; complete events go to `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<Event>) {
        while !chunk.is_empty() {
            match memchr::memchr(b'\n', chunk) {
                Some(i) => {
                    self.extend_line(&chunk[..i]);
                    let mut line = std::mem::take(&mut self.line);
                    let mut dropped = std::mem::take(&mut self.line_dropped);
                    if std::mem::take(&mut self.line_ends_in_cr) {
                        // The `\r` of a `\r\n` ending, buffered or not.
                        match dropped {
                            0 => _ = line.pop(),
                            _ => dropped -= 1,
                        }
                    }
                    self.field(&line, dropped, out);
                    chunk = &chunk[i + 1..];
                }
                None => {
                    self.extend_line(chunk);
                    chunk = &[];
                }
            }
        }
    }

    /// Lines are only buffered up to the limit (plus room for the field name); the data
    /// field itself is capped in `field`.
    fn extend_line(&mut self, part: &[u8]) {
        if let Some(&last) = part.last() {
            self.line_ends_in_cr = last == b'\r';
        }
        let room = (self.max + 16).saturating_sub(self.line.len());
        if part.len() > room {
            self.line_dropped += part.len() - room;
        }
        self.line.extend_from_slice(&part[..part.len().min(room)]);
    }

    /// Keeps data up to one byte past the limit (enough to tell the event is over it).
    fn keep(&mut self, bytes: &[u8]) {
        let room = (self.max + 1).saturating_sub(self.data.len());
        self.data.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// One line, of which `dropped` bytes past its end were not buffered.
    fn field(&mut self, line: &[u8], dropped: usize, out: &mut Vec<Event>) {
        if line.is_empty() {
            if self.has_data {
                let truncated = self.len > self.max;
                let mut data = std::mem::take(&mut self.data);
                if truncated {
                    data.truncate(TRUNCATED_PREFIX);
                }
                out.push(Event {
                    event: std::mem::take(&mut self.event),
                    data,
                    id: self.id.clone(),
                    truncated,
                    len: std::mem::take(&mut self.len),
                });
            }
            self.event.clear();
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &line[line.len()..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.len += 1;
                    self.keep(b"\n");
                }
                self.has_data = true;
                self.len += value.len() + dropped;
                self.keep(value);
            }
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"id" => self.id = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8], max: usize, chunk: usize) -> Vec<Event> {
        let mut p = SseParser::new(max);
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            p.push(c, &mut out);
        }
        out
    }

    #[test]
    fn events_fields_comments_and_multiline_data() {
        let input = b": hello\r\nevent: endpoint\r\ndata: /message?sessionId=1\r\n\r\nid: 7\ndata: {\"a\":\ndata: 1}\n\ndata\n\n";
        for chunk in [1, 2, 5, 1000] {
            let got = parse(input, 1000, chunk);
            assert_eq!(got.len(), 3, "chunk {chunk}: {got:?}");
            assert_eq!(got[0].event, "endpoint");
            assert_eq!(got[0].data, b"/message?sessionId=1");
            assert_eq!(got[1].event, "");
            assert_eq!(got[1].data, b"{\"a\":\n1}");
            assert_eq!(got[1].id.as_deref(), Some("7"));
            assert_eq!(got[2].data, b"");
        }
    }

    #[test]
    fn over_long_events_are_marked_and_do_not_grow_memory() {
        let mut input = b"data: {\"id\":3,\"x\":\"".to_vec();
        input.extend(std::iter::repeat_n(b'a', 100_000));
        input.extend(b"\"}\n\ndata: ok\n\n");
        let got = parse(&input, 1000, 4096);
        assert_eq!(got.len(), 2);
        assert!(got[0].truncated);
        assert!(got[0].len > 100_000, "{}", got[0].len);
        assert!(got[0].data.len() <= 1001);
        assert!(got[0].data.starts_with(b"{\"id\":3"));
        assert_eq!(got[1].data, b"ok");
        assert!(!got[1].truncated);
    }

    /// Found by fuzzing: the `\r` of an over-long data line ending in `\r\n` was counted as
    /// data when it fell past what is buffered.
    #[test]
    fn a_crlf_ending_is_not_data_however_long_the_line() {
        let input = [b"data: ".as_slice(), &[b'z'; 100], b"\r\n\n"].concat();
        for chunk in [1, 2, 7, 1000] {
            let got = parse(&input, 10, chunk);
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!((got[0].len, got[0].truncated), (100, true), "chunk {chunk}");
        }
    }

    /// Found by fuzzing: the newline between two data lines went past the limit, so a
    /// stream of bare `data` lines grew one event's buffer without bound.
    #[test]
    fn newlines_between_data_lines_stay_within_the_limit() {
        let input = [b"data\n".repeat(10_000), b"\n".to_vec()].concat();
        let got = parse(&input, 4, 7);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].len, got[0].truncated), (9_999, true));
        assert_eq!(got[0].data, b"\n\n\n\n\n");
    }

    /// Found by fuzzing: what an over-long comment or `event:` line did not buffer was
    /// counted as the next event's data, which then looked over the limit.
    #[test]
    fn only_data_lines_count_toward_an_events_length() {
        for input in [
            b"\n:cccccccccccccccccccccccccccccccccccccccccc\ndata: x\n\n".as_slice(),
            b"event: eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\ndata: x\n\n",
        ] {
            for chunk in [1, 3, 1000] {
                let got = parse(input, 8, chunk);
                assert_eq!(got.len(), 1, "{got:?}");
                assert_eq!((got[0].len, got[0].truncated), (1, false), "{got:?}");
                assert_eq!(got[0].data, b"x");
            }
        }
    }
}
