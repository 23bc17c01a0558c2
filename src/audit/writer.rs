//! The writer thread: turns queued events into chained JSON lines and appends them in
//! batches, one write per batch.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use super::chain::Chain;
use super::event::Event;
use super::seal::Seal;
use super::{Message, Shared, retention, time};

/// How often the writer wakes to write what has been queued. Waking per event would cost a
/// thread switch and a system call for every tool call; this costs at most this much delay
/// (and, if the process is killed outright, at most this much of the log).
pub(super) const WRITE_INTERVAL: Duration = Duration::from_millis(20);

/// Most events written at once.
const MAX_BATCH: u64 = 4096;

/// How often old files are pruned while running (they are also pruned at start).
const PRUNE_INTERVAL: Duration = Duration::from_secs(24 * 3600);

pub(super) struct Writer {
    pub file: File,
    pub path: PathBuf,
    /// Whether a seal file is kept: only for a regular file (not `/dev/stdout`, a pipe).
    pub keeps_seal: bool,
    /// The instance id as a JSON string, ready to copy into every line.
    pub instance_json: String,
    pub log_args: bool,
    pub clock: Clock,
    pub chain: Chain,
    /// The chain so far: the last line's `seq` and hash, and the file's line count.
    pub seq: u64,
    pub prev: String,
    pub lines: u64,
    /// Bytes of the file known to be whole lines, to cut a partly written batch back to.
    pub good_len: u64,
    pub shared: Arc<Shared>,
    /// Events that failed to be written, reported in the next line that is.
    pub lost: u64,
    /// The last seal file update failed (said once on stderr, until one succeeds).
    pub seal_failing: bool,
    pub retention: Option<retention::Retention>,
}

impl Writer {
    pub(super) fn run(mut self, rx: Receiver<Message>) {
        let mut last_prune = None;
        let mut more = false;
        let mut batch = Vec::with_capacity(64 * 1024);
        loop {
            if let Some(r) = &self.retention
                && last_prune.is_none_or(|t: Instant| t.elapsed() >= PRUNE_INTERVAL)
            {
                retention::prune(r, &self.path);
                last_prune = Some(Instant::now());
            }
            if !more {
                std::thread::park_timeout(WRITE_INTERVAL);
            }
            more = false;
            let mut closing = false;
            let mut waiters = Vec::new();
            let (start_seq, start_prev, start_lines) = (self.seq, self.prev.clone(), self.lines);
            let mut carried = 0;
            let mut count = 0u64;
            batch.clear();
            loop {
                match rx.try_recv() {
                    Ok(Message::Event(event)) => {
                        // Read per event: drops can happen while a batch is being drained,
                        // and the last batch must report them too.
                        let mut lost = self.take_dropped();
                        if count == 0 {
                            lost += self.lost;
                        }
                        carried += lost;
                        self.append(&event, lost, &mut batch);
                        count += 1;
                        // Write in bounded batches while events keep coming.
                        if count == MAX_BATCH {
                            more = true;
                            break;
                        }
                    }
                    Ok(Message::Sync(done)) => waiters.push(done),
                    Ok(Message::Close) | Err(TryRecvError::Disconnected) => {
                        closing = true;
                        // Events dropped after the last one queued have no later line to be
                        // counted in: one more line says how many.
                        let lost = self.take_dropped() + if count == 0 { self.lost } else { 0 };
                        if lost > 0 {
                            let event = Event::Other {
                                at: crate::state::now_millis(),
                                kind: "dropped".into(),
                                fields: Default::default(),
                            };
                            carried += lost;
                            self.append(&event, lost, &mut batch);
                            count += 1;
                        }
                        // The log ends with a seal line: one that ends without one was
                        // cut, or its writer was killed.
                        self.append(&self.seal_event(), 0, &mut batch);
                        count += 1;
                        break;
                    }
                    Err(TryRecvError::Empty) => break,
                }
            }
            if count > 0 {
                match self.file.write_all(&batch) {
                    Ok(()) => {
                        self.good_len += batch.len() as u64;
                        self.lost = 0;
                        self.write_seal();
                        if self.shared.failing.swap(false, Ordering::Relaxed) {
                            eprintln!(
                                "intercept: the audit log {} is written again; {carried} earlier events were lost (recorded in it)",
                                self.path.display()
                            );
                        }
                    }
                    Err(e) => {
                        // Cut back to the last whole line, so the file stays a valid chain,
                        // and carry on the chain from there.
                        let _ = self.file.set_len(self.good_len);
                        self.seq = start_seq;
                        self.prev = start_prev;
                        self.lines = start_lines;
                        self.lost = carried + count;
                        if !self.shared.failing.swap(true, Ordering::Relaxed) {
                            eprintln!(
                                "intercept: writing the audit log {} failed: {e} (lost events are counted in the next one written)",
                                self.path.display()
                            );
                        }
                    }
                }
            }
            for done in waiters {
                let _ = done.send(());
            }
            if closing {
                return;
            }
        }
    }

    /// Events dropped since the last call, resetting the count. Loads first: the swap
    /// writes the cache line the call path reads (`Shared::failing`), so only when needed.
    fn take_dropped(&self) -> u64 {
        if self.shared.dropped.load(Ordering::Relaxed) != 0 {
            self.shared.dropped.swap(0, Ordering::Relaxed)
        } else {
            0
        }
    }

    /// The line written last: how many lines the file holds with it, and under which key.
    fn seal_event(&self) -> Event {
        let mut fields = serde_json::Map::new();
        fields.insert("lines".into(), (self.lines + 1).into());
        if let Some(key) = self.chain.key() {
            fields.insert("key_id".into(), key.id().into());
        }
        Event::Other {
            at: crate::state::now_millis(),
            kind: "seal".into(),
            fields,
        }
    }

    /// Records the line count and last hash beside the log, after each batch written.
    fn write_seal(&mut self) {
        if !self.keeps_seal {
            return;
        }
        match Seal::new(self.lines, &self.prev, self.chain.key()).write(&self.path) {
            Ok(()) => self.seal_failing = false,
            Err(e) => {
                if !std::mem::replace(&mut self.seal_failing, true) {
                    eprintln!(
                        "intercept: cannot update the seal file of the audit log {}: {e} (lines cut from its end may go unnoticed)",
                        self.path.display()
                    );
                }
            }
        }
    }

    /// Appends one line: `seq` and `prev` first, then the time, kind and instance, then the
    /// event's own fields, then its hash.
    fn append(&mut self, event: &Event, lost: u64, out: &mut Vec<u8>) {
        let start = out.len();
        self.seq += 1;
        let _ = write!(out, "{{\"seq\":{},\"prev\":\"{}\",", self.seq, self.prev);
        if lost > 0 {
            let _ = write!(out, "\"dropped_events\":{lost},");
        }
        out.extend_from_slice(b"\"ts\":\"");
        self.clock.write(event.at(), out);
        out.extend_from_slice(b"\",\"type\":");
        let _ = serde_json::to_writer(&mut *out, event.kind());
        out.extend_from_slice(b",\"instance\":");
        out.extend_from_slice(self.instance_json.as_bytes());
        event.write_fields(self.log_args, out);
        self.prev = self.chain.close_line(start, out);
        self.lines += 1;
        out.push(b'\n');
    }
}

/// Timestamps, formatted once per second: events come in bursts within the same second.
#[derive(Default)]
pub(super) struct Clock {
    second: Option<i64>,
    /// `2026-11-25T06:40:12.` for `second`.
    prefix: String,
}

impl Clock {
    fn write(&mut self, at: crate::state::Millis, out: &mut Vec<u8>) {
        let second = at.div_euclid(1000);
        if self.second != Some(second) {
            let full = time::rfc3339(at);
            self.prefix = full[..full.len() - 4].to_string();
            self.second = Some(second);
        }
        out.extend_from_slice(self.prefix.as_bytes());
        let ms = at.rem_euclid(1000);
        let _ = write!(out, "{ms:03}Z");
    }
}
