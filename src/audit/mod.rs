//! The audit log: one JSON line per event, in a tamper-evident chain.
//!
//! Every line carries `seq` and `prev`, the SHA-256 of the line before it, so a line that
//! was changed, removed or inserted breaks the chain at that point (`intercept audit
//! verify`). Writing happens on a background thread fed by a bounded queue, in batches:
//! a slow disk never slows a tool call; a full queue drops the event, says so on stderr and
//! reports the count in the next event written.

mod redact;
mod verify;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

pub use redact::redact_secrets;
pub use verify::{VerifyError, verify};

/// Events waiting to be written; past this, events are dropped (and counted).
const QUEUE: usize = 8192;

enum Message {
    /// A serialised event without its opening brace; the writer puts `seq` and `prev` first.
    Event(String),
    Close,
}

/// A handle to an instance's event file. Cheap to share; recording never blocks.
#[derive(Debug)]
pub struct AuditLog {
    instance: String,
    path: PathBuf,
    log_args: bool,
    tx: SyncSender<Message>,
    /// Events queued and not yet taken by the writer: past half the queue, the writer is
    /// woken early instead of at its next interval.
    queued: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    last_drop_warning: std::sync::atomic::AtomicI64,
    writer_thread: std::thread::Thread,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Message")
    }
}

impl AuditLog {
    /// Opens (or continues) the event file at `path`: created `0600` in a `0700` directory.
    pub fn open(path: &Path, instance: &str, log_args: bool) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private_fs::create_private_dir(dir)?;
        }
        let (seq, prev) = chain_tail(path)?;
        let file = open_private(path)?;
        let (tx, rx) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let queued = Arc::new(AtomicU64::new(0));
        let writer = std::thread::Builder::new()
            .name("intercept-audit".into())
            .spawn({
                let (dropped, queued) = (dropped.clone(), queued.clone());
                move || write_events(rx, file, seq, prev, dropped, queued)
            })?;
        Ok(AuditLog {
            instance: instance.to_string(),
            path: path.to_path_buf(),
            log_args,
            tx,
            queued,
            dropped,
            last_drop_warning: Default::default(),
            writer_thread: writer.thread().clone(),
            writer: Mutex::new(Some(writer)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether raw (redacted) arguments go into the log (`--log-args`).
    pub fn logs_args(&self) -> bool {
        self.log_args
    }

    /// Queues an event of `kind` with these fields; time and instance are added.
    pub fn record(&self, kind: &str, fields: Value) {
        let mut event = Map::new();
        event.insert("ts".into(), json!(now_rfc3339()));
        event.insert("type".into(), json!(kind));
        event.insert("instance".into(), json!(self.instance));
        if let Value::Object(fields) = fields {
            for (k, v) in fields {
                if !v.is_null() {
                    event.insert(k, v);
                }
            }
        }
        // Serialised here, so the writer frees one string rather than a tree of values
        // allocated on this thread.
        let text = serde_json::to_string(&Value::Object(event)).unwrap_or_default();
        let body = text.strip_prefix('{').unwrap_or(&text).to_string();
        match self.tx.try_send(Message::Event(body)) {
            Ok(()) => {
                if self.queued.fetch_add(1, Ordering::Relaxed) == QUEUE as u64 / 2 {
                    self.writer_thread.unpark();
                }
            }
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                // Say so on stderr, but at most every ten seconds.
                let now = crate::state::now_millis();
                let last = self.last_drop_warning.load(Ordering::Relaxed);
                if now - last >= 10_000
                    && self
                        .last_drop_warning
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    eprintln!(
                        "intercept: the audit log cannot keep up; events are being dropped (counted in the next event)"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Writes everything queued and closes the file.
    pub fn close(&self) {
        let _ = self.tx.send(Message::Close);
        if let Some(handle) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            self.writer_thread.unpark();
            let _ = handle.join();
        }
    }
}

/// How often the writer wakes to write what has been queued. Waking per event would cost a
/// thread switch and a system call for every tool call; this costs at most this much delay
/// (and, if the process is killed outright, at most this much of the log).
const WRITE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

fn write_events(
    rx: Receiver<Message>,
    file: File,
    mut seq: u64,
    mut prev: String,
    dropped: Arc<AtomicU64>,
    queued: Arc<AtomicU64>,
) {
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let mut failures = 0u64;
    loop {
        std::thread::park_timeout(WRITE_INTERVAL);
        let mut closing = false;
        loop {
            let body = match rx.try_recv() {
                Ok(Message::Event(event)) => event,
                Ok(Message::Close) | Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    closing = true;
                    break;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
            };
            queued.fetch_sub(1, Ordering::Relaxed);
            let lost = dropped.swap(0, Ordering::Relaxed) + failures;
            let lost = if lost > 0 {
                format!("\"dropped_events\":{lost},")
            } else {
                String::new()
            };
            seq += 1;
            let line = format!("{{\"seq\":{seq},\"prev\":\"{prev}\",{lost}{body}");
            match writeln!(out, "{line}") {
                Ok(()) => {
                    prev = sha256_hex(line.as_bytes());
                    failures = 0;
                }
                Err(e) => {
                    failures += 1;
                    seq -= 1;
                    eprintln!("intercept: writing the audit log failed: {e}");
                }
            }
        }
        if let Err(e) = out.flush() {
            eprintln!("intercept: writing the audit log failed: {e}");
        }
        if closing {
            return;
        }
    }
}

/// The `seq` and line hash at the end of an existing file, to continue its chain.
fn chain_tail(path: &Path) -> std::io::Result<(u64, String)> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, String::new())),
        Err(e) => return Err(e),
    };
    let mut last = None;
    for line in BufReader::new(file).lines() {
        let line = line?;
        if !line.trim().is_empty() {
            last = Some(line);
        }
    }
    Ok(match last {
        Some(line) => {
            let seq = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|v| v.get("seq").and_then(Value::as_u64))
                .unwrap_or(0);
            (seq, sha256_hex(line.as_bytes()))
        }
        None => (0, String::new()),
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `sha256:<hex>` of the arguments in canonical form (keys sorted, compact), so equal
/// arguments hash alike whatever order the client wrote them in.
pub fn args_hash(args: Option<&Value>) -> String {
    let mut canonical = String::new();
    write_canonical(args.unwrap_or(&Value::Object(Map::new())), &mut canonical);
    format!("sha256:{}", sha256_hex(canonical.as_bytes()))
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-24T19:41:37.250Z`.
pub fn now_rfc3339() -> String {
    let ms = crate::state::now_millis();
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rendered_in_utc() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_417), (2025, 11, 25));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn argument_hashes_ignore_key_order() {
        let a = json!({"b": 1, "a": [1, {"y": 2, "x": "s"}]});
        let b = json!({"a": [1, {"x": "s", "y": 2}], "b": 1});
        assert_eq!(args_hash(Some(&a)), args_hash(Some(&b)));
        assert_ne!(args_hash(Some(&a)), args_hash(Some(&json!({"b": 2}))));
        assert!(args_hash(None).starts_with("sha256:"));
    }

    #[test]
    fn events_chain_and_a_reopened_file_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events").join("abc.jsonl");
        let log = AuditLog::open(&path, "abc", false).unwrap();
        log.record("startup", json!({"pid": 1}));
        log.record("tool_call", json!({"tool": "t", "rule": null}));
        log.close();
        let log = AuditLog::open(&path, "abc", false).unwrap();
        log.record("shutdown", json!({}));
        log.close();
        assert_eq!(verify(&path).unwrap(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[2]["seq"], 3);
        assert_eq!(lines[1]["type"], "tool_call");
        assert!(lines[1].get("rule").is_none(), "null fields are left out");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
    }
}
