//! Blocking stdio on dedicated threads.
//!
//! tokio's stdio runs every read and write on its blocking pool, and channels between
//! tasks add a thread wake-up per message; on the hot path of a proxy those hops cost more
//! than the policy. So each input stream gets one thread that reads, frames, hands the
//! frames to the proxy core and writes the results itself, and outputs are shared writers.

use std::io::{BufWriter, Read, Write};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::lines::{Frame, LineSplitter};

/// An output shared by the threads that write to it; each writer flushes after a burst.
pub type Sink = Arc<Mutex<Option<BufWriter<Box<dyn Write + Send>>>>>;

/// Wraps a writer as a [`Sink`].
pub fn sink<W: Write + Send + 'static>(w: W) -> Sink {
    Arc::new(Mutex::new(Some(BufWriter::with_capacity(
        256 * 1024,
        Box::new(w) as Box<dyn Write + Send>,
    ))))
}

/// Writes lines (adding the newline) and flushes; false once the sink is closed or broken.
pub fn write_lines<'a>(sink: &Sink, lines: impl IntoIterator<Item = &'a [u8]>) -> bool {
    let mut guard = sink.lock().unwrap_or_else(|p| p.into_inner());
    let Some(w) = guard.as_mut() else {
        return false;
    };
    let mut result = Ok(());
    for line in lines {
        result = result
            .and_then(|_| w.write_all(line))
            .and_then(|_| w.write_all(b"\n"));
    }
    if let Err(e) = result.and_then(|_| w.flush()) {
        tracing::debug!("write failed, the other side has closed: {e}");
        *guard = None;
        return false;
    }
    true
}

/// Closes a sink (for a child's stdin: the request to exit).
pub fn close(sink: &Sink) {
    let mut guard = sink.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(mut w) = guard.take() {
        let _ = w.flush();
    }
}

/// Reads `input` on its own thread, framing lines of at most `max` bytes, and passes the
/// frames of each read to `handle` (which returns false to stop). The receiver fires at
/// the end of the input.
pub fn read_frames<R, F>(
    name: &str,
    mut input: R,
    max: usize,
    mut handle: F,
) -> std::io::Result<oneshot::Receiver<()>>
where
    R: Read + Send + 'static,
    F: FnMut(Vec<Frame>) -> bool + Send + 'static,
{
    let (done_tx, done) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let mut splitter = LineSplitter::new(max);
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                let mut frames = Vec::new();
                match input.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => splitter.push(&chunk[..n], &mut frames),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::debug!("read failed: {e}");
                        break;
                    }
                }
                if !frames.is_empty() && !handle(frames) {
                    break;
                }
            }
            if let Some(last) = splitter.finish() {
                handle(vec![last]);
            }
            let _ = done_tx.send(());
        })?;
    Ok(done)
}
