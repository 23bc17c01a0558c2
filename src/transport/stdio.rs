//! Blocking stdio on dedicated threads.
//!
//! tokio's stdio runs every read and write on its blocking pool, and channels between
//! tasks add a thread wake-up per message; on the hot path of a proxy those hops cost more
//! than the policy. So each input stream gets one thread that reads, frames, hands the
//! frames to the proxy core and writes the results itself, and outputs are shared writers.

use std::io::{BufWriter, Read, Write};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::lines::{Frame, Line, LineSplitter};

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

/// Writes bytes that are already whole lines, and flushes; false once the sink is closed
/// or broken. The bytes go to the underlying writer in one write where it allows.
pub fn write_bytes(sink: &Sink, bytes: &[u8]) -> bool {
    write_bytes_counted(sink, bytes).is_ok()
}

/// [`write_bytes`], saying on failure how many of the bytes had gone out before it: the
/// lines past that point provably never reached the other side.
pub fn write_bytes_counted(sink: &Sink, bytes: &[u8]) -> Result<(), usize> {
    let mut guard = sink.lock().unwrap_or_else(|p| p.into_inner());
    let Some(w) = guard.as_mut() else {
        return Err(0);
    };
    // Past whatever an earlier writer left buffered (normally nothing), straight through.
    let result = match w.flush() {
        Err(e) => Err((e, 0)),
        Ok(()) => write_counting(w.get_mut(), bytes)
            .and_then(|_| w.get_mut().flush().map_err(|e| (e, bytes.len()))),
    };
    if let Err((e, written)) = result {
        tracing::debug!("write failed, the other side has closed: {e}");
        *guard = None;
        return Err(written);
    }
    Ok(())
}

/// `write_all`, keeping count of what was written when it fails.
fn write_counting<W: Write + ?Sized>(
    w: &mut W,
    bytes: &[u8],
) -> Result<(), (std::io::Error, usize)> {
    let mut written = 0;
    while written < bytes.len() {
        match w.write(&bytes[written..]) {
            Ok(0) => return Err((std::io::ErrorKind::WriteZero.into(), written)),
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, written)),
        }
    }
    Ok(())
}

/// What a [`read_lines`] thread does with its input.
pub trait LineHandler: Send + 'static {
    /// One line, in place where it can be.
    fn line(&mut self, line: Line<'_>);
    /// The end of a read: deliver what its lines produced. False stops the reading.
    fn deliver(&mut self) -> bool;
}

/// Reads `input` on its own thread, framing lines of at most `max` bytes, and hands each
/// to `handler`, then asks it to deliver after each read: a burst of messages costs one
/// read and one write per direction, and a line costs no allocation of its own. The
/// receiver fires at the end of the input.
pub fn read_lines<R, H>(
    name: &str,
    mut input: R,
    max: usize,
    mut handler: H,
) -> std::io::Result<oneshot::Receiver<()>>
where
    R: Read + Send + 'static,
    H: LineHandler,
{
    let (done_tx, done) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let mut splitter = LineSplitter::new(max);
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                // Before reading again, let other runnable threads go first: under load the
                // writer at the other end is often among them, halfway through a burst,
                // and one read then takes the whole burst instead of its first message.
                // With 64 calls in flight this roughly halved the proxy's system time per
                // call; on an idle core it returns at once.
                std::thread::yield_now();
                match input.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => splitter.feed(&chunk[..n], |line| handler.line(line)),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::debug!("read failed: {e}");
                        break;
                    }
                }
                if !handler.deliver() {
                    break;
                }
            }
            if let Some(last) = splitter.finish() {
                match &last {
                    Frame::Line(l) => handler.line(Line::Whole(l)),
                    Frame::Oversize { prefix, len } => {
                        handler.line(Line::Oversize { prefix, len: *len })
                    }
                }
                handler.deliver();
            }
            let _ = done_tx.send(());
        })?;
    Ok(done)
}

/// Closes a sink (for a child's stdin: the request to exit).
pub fn close(sink: &Sink) {
    let mut guard = sink.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(mut w) = guard.take() {
        let _ = w.flush();
    }
}

/// Reads `input` on its own thread, framing lines of at most `max` bytes, and passes the
/// frames of each read to `handle` (which returns false to stop), as owned values for a
/// consumer that sends them on. The receiver fires at the end of the input.
pub fn read_frames<R, F>(
    name: &str,
    input: R,
    max: usize,
    handle: F,
) -> std::io::Result<oneshot::Receiver<()>>
where
    R: Read + Send + 'static,
    F: FnMut(Vec<Frame>) -> bool + Send + 'static,
{
    read_lines(
        name,
        input,
        max,
        Batches {
            frames: Vec::new(),
            handle,
        },
    )
}

/// The lines of one read, collected as owned frames.
struct Batches<F> {
    frames: Vec<Frame>,
    handle: F,
}

impl<F: FnMut(Vec<Frame>) -> bool + Send + 'static> LineHandler for Batches<F> {
    fn line(&mut self, line: Line<'_>) {
        self.frames.push(line.to_frame());
    }

    fn deliver(&mut self) -> bool {
        self.frames.is_empty() || (self.handle)(std::mem::take(&mut self.frames))
    }
}
