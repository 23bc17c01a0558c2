//! Newline-delimited JSON framing with a size limit.
//!
//! Three outcomes are kept apart: a line, a line over the limit (reported with its first
//! bytes, so its id can still be answered), and the end of the stream. An over-long line
//! is read to its end and discarded, never buffered whole.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// How much of an over-long line is kept, to find its id.
const OVERSIZE_PREFIX: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Line(Vec<u8>),
    Oversize { prefix: Vec<u8>, len: usize },
}

/// Reads the next non-blank line (without its `\n` or `\r\n`); `None` at the end of input.
/// A last line without a newline still counts.
pub async fn read_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Frame>> {
    loop {
        let mut buf = Vec::new();
        let mut len = 0usize;
        let mut oversize = false;
        let mut saw_any = false;
        loop {
            let available = reader.fill_buf().await?;
            if available.is_empty() {
                break;
            }
            saw_any = true;
            let (chunk, consumed, done) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            len += chunk.len();
            if !oversize && buf.len() + chunk.len() > max {
                oversize = true;
                let room = OVERSIZE_PREFIX.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            } else if !oversize {
                buf.extend_from_slice(chunk);
            } else if buf.len() < OVERSIZE_PREFIX {
                let room = OVERSIZE_PREFIX - buf.len();
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            reader.consume(consumed);
            if done {
                break;
            }
        }
        if !saw_any {
            return Ok(None);
        }
        if oversize {
            return Ok(Some(Frame::Oversize { prefix: buf, len }));
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        return Ok(Some(Frame::Line(buf)));
    }
}

/// Writes one message and its newline, and flushes.
pub async fn write_line<W: AsyncWrite + Unpin>(writer: &mut W, line: &[u8]) -> std::io::Result<()> {
    writer.write_all(line).await?;
    writer.write_all(b"\n").await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], max: usize) -> Vec<Frame> {
        let mut reader = tokio::io::BufReader::with_capacity(7, input);
        let mut out = Vec::new();
        while let Some(f) = read_frame(&mut reader, max).await.unwrap() {
            out.push(f);
        }
        out
    }

    #[tokio::test]
    async fn lines_blank_lines_crlf_and_a_final_line_without_newline() {
        let got = frames(b"{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}", 100).await;
        assert_eq!(
            got,
            vec![
                Frame::Line(b"{\"a\":1}".to_vec()),
                Frame::Line(b"{\"b\":2}".to_vec()),
                Frame::Line(b"{\"c\":3}".to_vec()),
            ]
        );
    }

    #[tokio::test]
    async fn an_over_long_line_is_reported_and_the_next_one_still_read() {
        let mut input = b"{\"id\":9,\"x\":\"".to_vec();
        input.extend(std::iter::repeat_n(b'a', 200));
        input.extend(b"\"}\n{\"ok\":true}\n");
        let got = frames(&input, 50).await;
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
