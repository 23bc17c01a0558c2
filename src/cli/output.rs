//! Command output whose reader may go away.

use std::io::{self, Write};

/// Writes through to `inner` until a write finds the pipe closed (`intercept validate --json
/// … | head -c1`); from then on everything is dropped, so the command runs to its end and
/// exits with its own status instead of failing on the reader's choice to stop reading.
pub struct UntilClosed<'a> {
    inner: &'a mut dyn Write,
    closed: bool,
}

impl<'a> UntilClosed<'a> {
    pub fn new(inner: &'a mut dyn Write) -> Self {
        UntilClosed {
            inner,
            closed: false,
        }
    }

    fn absorb<T>(&mut self, result: io::Result<T>, done: T) -> io::Result<T> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(done)
            }
            other => other,
        }
    }
}

impl Write for UntilClosed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let result = self.inner.write(buf);
        self.absorb(result, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.inner.flush();
        self.absorb(result, ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `room` bytes, then answers as a closed pipe does.
    struct Pipe {
        taken: Vec<u8>,
        room: usize,
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.taken.len() >= self.room {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room - self.taken.len());
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_ends_the_output_not_the_command() {
        let mut pipe = Pipe {
            taken: Vec::new(),
            room: 3,
        };
        let mut out = UntilClosed::new(&mut pipe);
        writeln!(out, "first line").unwrap();
        writeln!(out, "second line").unwrap();
        out.flush().unwrap();
        assert_eq!(pipe.taken, b"fir");
    }

    #[test]
    fn other_errors_still_fail() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut full = Full;
        let mut out = UntilClosed::new(&mut full);
        assert!(writeln!(out, "x").is_err());
    }
}
