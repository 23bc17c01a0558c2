//! The log writer: every line intercept logs reaches stderr through [`redact_text`], so a
//! URL, command line or upstream error quoted in any log line loses its secrets there.

use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;

use super::redact_text;

/// Hands `tracing` a fresh buffer for each event; the buffer writes the redacted event to
/// stderr when it is dropped, in one write, as the event's whole line.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactedStderr;

impl<'a> MakeWriter<'a> for RedactedStderr {
    type Writer = EventBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        EventBuffer(Vec::new())
    }
}

/// One log event, written out redacted when dropped.
#[derive(Debug)]
pub struct EventBuffer(Vec<u8>);

impl Write for EventBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.0);
        // Nowhere left to report a failed write to stderr.
        let _ = std::io::stderr()
            .lock()
            .write_all(redact_text(&text).as_bytes());
    }
}
