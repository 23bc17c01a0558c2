//! Newline-delimited JSON framing with a size limit.
//!
//! Three outcomes are kept apart: a line, a line over the limit (reported with its first
//! bytes, so its id can still be answered), and the end of the stream. An over-long line
//! is consumed to its end and discarded, never buffered whole. The splitter is fed raw
//! chunks, so the same framing serves blocking threads and async pipes. A line that lies
//! whole in the chunk read is handed over in place, without a copy.

/// How much of an over-long line is kept, to find its id.
const OVERSIZE_PREFIX: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Line(Vec<u8>),
    Oversize { prefix: Vec<u8>, len: usize },
}

/// A [`Frame`] borrowed from the chunk read or from the splitter's buffer.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Line<'a> {
    Whole(&'a [u8]),
    Oversize { prefix: &'a [u8], len: usize },
}

impl Line<'_> {
    pub(crate) fn to_frame(self) -> Frame {
        match self {
            Line::Whole(l) => Frame::Line(l.to_vec()),
            Line::Oversize { prefix, len } => Frame::Oversize {
                prefix: prefix.to_vec(),
                len,
            },
        }
    }
}

#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    buf: Vec<u8>,
    len: usize,
    oversize: bool,
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        LineSplitter {
            max,
            buf: Vec::new(),
            len: 0,
            oversize: false,
        }
    }

    /// Feeds bytes; complete, non-blank lines (without `\n` or `\r\n`) go to `out`.
    #[cfg(test)]
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Frame>) {
        self.feed(chunk, |line| out.push(line.to_frame()));
    }

    /// Feeds bytes; complete, non-blank lines (without `\n` or `\r\n`) go to `each`, in
    /// place where they lie whole in `chunk`.
    pub fn feed(&mut self, mut chunk: &[u8], mut each: impl FnMut(Line<'_>)) {
        while let Some(i) = memchr::memchr(b'\n', chunk) {
            let part = &chunk[..i];
            if self.len == 0 && part.len() <= self.max {
                if let Some(line) = content(part) {
                    each(Line::Whole(line));
                }
            } else {
                self.take(part);
                self.end_line(&mut each);
            }
            chunk = &chunk[i + 1..];
        }
        if !chunk.is_empty() {
            self.take(chunk);
        }
    }

    /// The end of input: a last line without a newline still counts.
    pub fn finish(&mut self) -> Option<Frame> {
        let mut last = None;
        self.end_line(|line| last = Some(line.to_frame()));
        last
    }

    fn take(&mut self, part: &[u8]) {
        self.len += part.len();
        if !self.oversize && self.buf.len() + part.len() > self.max {
            self.oversize = true;
        }
        let room = if self.oversize {
            OVERSIZE_PREFIX.saturating_sub(self.buf.len())
        } else {
            part.len()
        };
        self.buf.extend_from_slice(&part[..part.len().min(room)]);
    }

    /// Ends the buffered line; the buffer keeps its capacity for the next one.
    fn end_line(&mut self, mut each: impl FnMut(Line<'_>)) {
        let len = std::mem::take(&mut self.len);
        if std::mem::take(&mut self.oversize) {
            each(Line::Oversize {
                prefix: &self.buf,
                len,
            });
        } else if let Some(line) = content(&self.buf) {
            each(Line::Whole(line));
        }
        self.buf.clear();
        // One huge line must not pin its memory for the rest of the session.
        self.buf.shrink_to(1 << 20);
    }
}

/// A line without its `\r`, unless it is blank.
fn content(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (!line.iter().all(u8::is_ascii_whitespace)).then_some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], max: usize, chunk: usize) -> Vec<Frame> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            s.push(c, &mut out);
        }
        out.extend(s.finish());
        out
    }

    #[test]
    fn lines_blank_lines_crlf_and_a_final_line_without_newline() {
        for chunk in [1, 3, 7, 1000] {
            let got = frames(b"{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}", 100, chunk);
            assert_eq!(
                got,
                vec![
                    Frame::Line(b"{\"a\":1}".to_vec()),
                    Frame::Line(b"{\"b\":2}".to_vec()),
                    Frame::Line(b"{\"c\":3}".to_vec()),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn an_over_long_line_is_reported_and_the_next_one_still_read() {
        let mut input = b"{\"id\":9,\"x\":\"".to_vec();
        input.extend(std::iter::repeat_n(b'a', 200));
        input.extend(b"\"}\n{\"ok\":true}\n");
        for chunk in [5, 64, 4096] {
            let got = frames(&input, 50, chunk);
            assert_eq!(got.len(), 2);
            match &got[0] {
                Frame::Oversize { prefix, len } => {
                    assert_eq!(*len, 215);
                    assert!(prefix.starts_with(b"{\"id\":9"));
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(got[1], Frame::Line(b"{\"ok\":true}".to_vec()));
        }
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes() {
        let got = frames(b"12345\n123456\n", 5, 2);
        assert_eq!(got[0], Frame::Line(b"12345".to_vec()));
        assert!(matches!(got[1], Frame::Oversize { len: 6, .. }));
    }

    #[test]
    fn whole_lines_are_handed_over_in_place_and_split_ones_from_the_buffer() {
        let mut s = LineSplitter::new(100);
        let chunk = b"{\"a\":1}\n{\"b\":\r\n\n{\"c\"";
        let mut seen = Vec::new();
        s.feed(chunk, |line| {
            if let Line::Whole(l) = line {
                // In place: the slice points into the chunk itself.
                let inside = chunk.as_ptr_range().contains(&l.as_ptr());
                seen.push((l.to_vec(), inside));
            }
        });
        s.feed(b":3}\n", |line| {
            if let Line::Whole(l) = line {
                seen.push((l.to_vec(), false));
            }
        });
        assert_eq!(
            seen,
            vec![
                (b"{\"a\":1}".to_vec(), true),
                (b"{\"b\":".to_vec(), true),
                (b"{\"c\":3}".to_vec(), false),
            ]
        );
        assert_eq!(s.finish(), None);
    }
}
