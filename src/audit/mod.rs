//! The audit log: one JSON line per event, in a tamper-evident chain.
//!
//! Every line carries `seq`, `prev` (the hash of the line before it) and, last, its own hash
//! (`chain`): a line that was changed no longer matches its hash, and one removed or inserted
//! breaks the sequence. The seal file beside the log (`seal`) holds the line count and the
//! last hash, so lines cut from the end are found too. With an audit key (`key`) the hashes
//! are HMACs that cannot be recomputed without it (`intercept audit verify`). The call path only queues a small plain struct on a bounded channel; building
//! the JSON, hashing the arguments, chaining and writing happen on a background thread, in
//! batches. A slow disk never slows a tool call; a full queue drops the event, says so on
//! stderr and reports the count in the next event written.

mod canonical;
mod chain;
mod counters;
mod event;
mod key;
pub mod retention;
mod seal;
pub mod status;
pub mod time;
mod verify;
mod writer;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{Map, Value};

pub use chain::Kind as ChainKind;
pub use counters::counter_snapshot;
pub use event::{Text, ToolCall, ToolResult};
pub use key::{AuditKey, KEY_ENV, KeyError};
pub use retention::Retention;
pub use seal::{SealError, path_for as seal_path};
pub use verify::{SealCheck, Verified, VerifyError, verify};

use event::Event;

/// Events waiting to be written; past this, events are dropped (and counted). With the
/// writer waking every 20 ms, room for 800 000 events a second, several times what the
/// proxy can carry.
const QUEUE: usize = 16_384;

#[derive(Debug)]
enum Message {
    Event(Event),
    /// Answered once everything queued before it has been written (or has failed to be).
    Sync(std::sync::mpsc::Sender<()>),
    Close,
}

/// How an audit log behaves.
#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    /// Record tool arguments (redacted): `--log-args`.
    pub log_args: bool,
    /// Deny calls while the log cannot be written: `--audit-required`.
    pub required: bool,
    /// Prune old event files at start and daily.
    pub retention: Option<Retention>,
    /// Chain with HMACs under this key (`--audit-key-file`, `INTERCEPT_AUDIT_KEY`).
    pub key: Option<AuditKey>,
}

/// What the call path and the writer thread share.
#[derive(Debug, Default)]
struct Shared {
    /// Events dropped because the queue was full.
    dropped: AtomicU64,
    /// The last write failed (and no write has succeeded since).
    failing: AtomicBool,
}

/// A handle to an instance's event file. Cheap to share; recording never blocks.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    options: AuditOptions,
    tx: SyncSender<Message>,
    shared: Arc<Shared>,
    last_drop_warning: AtomicI64,
    writer_thread: std::thread::Thread,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// The audit log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the audit directory {dir}: {cause}")]
    Dir { dir: PathBuf, cause: std::io::Error },
    #[error("cannot open the audit log {path}: {cause}")]
    File {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot start the audit writer: {0}")]
    Thread(std::io::Error),
    #[error(
        "the audit log {path} was written {found}, but this run has {wanted}: a file is keyed or not from its first line, so use another file"
    )]
    KindMismatch {
        path: PathBuf,
        found: &'static str,
        wanted: &'static str,
    },
    #[error(
        "the audit log {path} does not match its seal file: {reason}; check it with `intercept audit verify {path}` and move it away to start a new log"
    )]
    SealMismatch { path: PathBuf, reason: String },
    #[error(transparent)]
    Seal(#[from] SealError),
}

impl AuditLog {
    /// Opens (or continues) the event file at `path`: created `0600` in a `0700` directory.
    pub fn open(path: &Path, instance: &str, log_args: bool) -> Result<Self, OpenError> {
        Self::open_with(
            path,
            instance,
            AuditOptions {
                log_args,
                ..Default::default()
            },
        )
    }

    /// The same, with every option.
    pub fn open_with(
        path: &Path,
        instance: &str,
        options: AuditOptions,
    ) -> Result<Self, OpenError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private_fs::create_private_dir(dir).map_err(|cause| OpenError::Dir {
                dir: dir.to_path_buf(),
                cause,
            })?;
        }
        let file_error = |cause| OpenError::File {
            path: path.to_path_buf(),
            cause,
        };
        let chain = match &options.key {
            Some(key) => chain::Chain::Keyed(key.clone()),
            None => chain::Chain::Plain,
        };
        let seal = seal::Seal::read(path)?;
        let tail = chain_tail(path, seal.as_ref().map(|s| s.lines)).map_err(file_error)?;
        if tail.regular {
            check_continuation(path, &tail, &chain, seal.as_ref())?;
        }
        let file = open_private(path, true).map_err(file_error)?;
        let (tx, rx) = sync_channel(QUEUE);
        let shared = Arc::new(Shared::default());
        let writer = writer::Writer {
            file,
            path: path.to_path_buf(),
            keeps_seal: tail.regular,
            instance_json: serde_json::to_string(instance).unwrap_or_default(),
            log_args: options.log_args,
            clock: Default::default(),
            chain,
            seq: tail.seq,
            prev: tail.prev,
            lines: tail.lines,
            good_len: tail.len,
            shared: shared.clone(),
            lost: 0,
            seal_failing: false,
            retention: options.retention.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("intercept-audit".into())
            .spawn(move || writer.run(rx))
            .map_err(OpenError::Thread)?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            options,
            tx,
            shared,
            last_drop_warning: AtomicI64::new(0),
            writer_thread: handle.thread().clone(),
            writer: Mutex::new(Some(handle)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether raw (redacted) arguments go into the log (`--log-args`).
    pub fn logs_args(&self) -> bool {
        self.options.log_args
    }

    /// Whether calls must be denied while the log cannot be written (`--audit-required`).
    pub fn is_required(&self) -> bool {
        self.options.required
    }

    /// Why calls are refused right now: `Some` only with `--audit-required` while the last
    /// write failed.
    pub fn refusal(&self) -> Option<String> {
        (self.options.required && self.shared.failing.load(Ordering::Relaxed)).then(|| {
            format!(
                "The audit log ({}) cannot be written and --audit-required is set, so no tool call is allowed until it can",
                self.path.display()
            )
        })
    }

    /// Queues a decision; `false` if it could not be queued (and so will not be written).
    pub fn tool_call(&self, event: ToolCall) -> bool {
        self.send(Event::Call(Box::new(event)))
    }

    /// Queues the outcome of a forwarded call.
    pub fn tool_result(&self, event: ToolResult) -> bool {
        self.send(Event::Result(Box::new(event)))
    }

    /// Queues an event of `kind` with these fields (null ones are left out); time and
    /// instance are added.
    pub fn record(&self, kind: &str, fields: Value) {
        let fields = match fields {
            Value::Object(map) => map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
            _ => Map::new(),
        };
        self.send(Event::Other {
            at: crate::state::now_millis(),
            kind: kind.to_string(),
            fields,
        });
    }

    fn send(&self, event: Event) -> bool {
        match self.tx.try_send(Message::Event(event)) {
            // No counter of queued events to wake the writer early: one more atomic shared
            // with the writer thread would cost every call more than the timer does.
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
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
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Waits until everything queued so far has been written (or has failed to be).
    pub fn sync(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.tx.send(Message::Sync(done)).is_ok() {
            self.writer_thread.unpark();
            let _ = wait.recv();
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

/// Where an existing file's chain ends, to continue it.
#[derive(Debug, Default)]
struct Tail {
    /// A regular file (not a device or a pipe): only these have a chain to continue and a
    /// seal file.
    regular: bool,
    seq: u64,
    /// The last line's hash.
    prev: String,
    lines: u64,
    len: u64,
    /// The kind of hash the first line carries (`None`: no lines, or not a chained line).
    kind: Option<chain::Kind>,
    /// The hash of line `sealed` (the seal file's line count), to check the seal against.
    sealed_head: Option<String>,
}

fn chain_tail(path: &Path, sealed: Option<u64>) -> std::io::Result<Tail> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Tail {
                regular: true,
                ..Tail::default()
            });
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Tail::default());
    }
    let mut tail = Tail {
        regular: true,
        len: meta.len(),
        ..Tail::default()
    };
    if sealed == Some(0) {
        tail.sealed_head = Some(String::new());
    }
    let mut last = None;
    for line in BufReader::new(file).split(b'\n') {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let hashed = chain::split(&line);
        if tail.lines == 0 {
            tail.kind = hashed.as_ref().map(|s| s.kind);
        }
        // A line without a hash of its own (not written by this writer) is linked to by
        // the SHA-256 of its bytes.
        tail.prev = hashed.map_or_else(|| sha256_hex(&line), |s| s.hash.to_string());
        tail.lines += 1;
        if Some(tail.lines) == sealed {
            tail.sealed_head = Some(tail.prev.clone());
        }
        last = Some(line);
    }
    if let Some(line) = last {
        tail.seq = serde_json::from_slice::<Value>(&line)
            .ok()
            .and_then(|v| v.get("seq").and_then(Value::as_u64))
            .unwrap_or(0);
    }
    Ok(tail)
}

/// Refuses to continue a file whose chain this run could not extend honestly: one of the
/// other kind (keyed or not), or one that no longer matches its seal file (cut or changed
/// since it was last written). Continuing it would rewrite the seal to match, hiding that.
fn check_continuation(
    path: &Path,
    tail: &Tail,
    chain: &chain::Chain,
    seal: Option<&seal::Seal>,
) -> Result<(), OpenError> {
    if let Some(found) = tail.kind
        && found != chain.kind()
    {
        return Err(OpenError::KindMismatch {
            path: path.to_path_buf(),
            found: if found == chain::Kind::Keyed {
                "with an audit key"
            } else {
                "without an audit key"
            },
            wanted: if chain.key().is_some() { "one" } else { "none" },
        });
    }
    let Some(seal) = seal else {
        return Ok(());
    };
    let mismatch = |reason: String| OpenError::SealMismatch {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(key) = chain.key() {
        if seal.key_id.as_deref() != Some(key.id()) {
            return Err(mismatch(format!(
                "it was written with another key (id {}, this one is {})",
                seal.key_id.as_deref().unwrap_or("none"),
                key.id()
            )));
        }
        if !seal.mac_matches(key) {
            return Err(mismatch("its MAC does not match: it was rewritten".into()));
        }
    }
    match tail.sealed_head.as_deref() {
        None => Err(mismatch(format!(
            "{} lines were sealed and {} are left: lines were cut from the end",
            seal.lines, tail.lines
        ))),
        Some(head) if head != seal.head => Err(mismatch(format!(
            "line {} is not the line that was sealed: the log was rewritten",
            seal.lines
        ))),
        Some(_) => Ok(()),
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// `sha256:<hex>` of the arguments in canonical form (keys sorted, compact), so equal
/// arguments hash alike whatever order the client wrote them in.
pub fn args_hash(args: Option<&Value>) -> String {
    canonical_hash(&canonical_args(args))
}

/// The canonical JSON text of a call's arguments (`{}` when it has none).
pub fn canonical_args(args: Option<&Value>) -> Vec<u8> {
    match args {
        Some(v) => {
            let mut out = Vec::with_capacity(512);
            canonical::write(v, &mut out);
            out
        }
        None => b"{}".to_vec(),
    }
}

/// `sha256:<hex>` of canonical argument text.
fn canonical_hash(canonical: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(canonical))
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-24T19:41:37.250Z`.
pub fn now_rfc3339() -> String {
    time::rfc3339(crate::state::now_millis())
}

/// Opens `path` for appending (`append`) or replaces its contents, creating it `0600`.
fn open_private(path: &Path, append: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    if append {
        options.create(true).append(true);
    } else {
        options.create(true).write(true).truncate(true);
    }
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
    use serde_json::json;

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
        let checked = verify(&path, None).unwrap();
        assert_eq!(checked.lines, 5, "each run ends with a seal line");
        assert!(checked.is_complete() && checked.ends_with_seal_line);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[3]["seq"], 4);
        assert_eq!(lines[3]["type"], "shutdown");
        assert_eq!(lines[2]["type"], "seal");
        assert_eq!(lines[2]["lines"], 3);
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

    #[test]
    fn a_log_is_continued_only_with_the_same_key_and_while_it_matches_its_seal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let key = AuditKey::from_bytes(b"0123456789abcdef", "test").unwrap();
        let open = |key: Option<&AuditKey>| {
            AuditLog::open_with(
                &path,
                "abc",
                AuditOptions {
                    key: key.cloned(),
                    ..Default::default()
                },
            )
        };
        let log = open(None).unwrap();
        log.record("startup", json!({}));
        log.close();
        let err = open(Some(&key)).unwrap_err();
        assert!(matches!(err, OpenError::KindMismatch { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("was written without an audit key, but this run has one")
        );

        // Cut its last line: continuing would seal the cut log as if whole.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.lines().next().unwrap().to_string() + "\n").unwrap();
        let err = open(None).unwrap_err();
        assert!(
            err.to_string()
                .contains("2 lines were sealed and 1 are left"),
            "{err}"
        );
        std::fs::write(&path, &text).unwrap();
        let log = open(None).unwrap();
        log.close();
        assert_eq!(verify(&path, None).unwrap().lines, 3);
    }

    #[test]
    fn decisions_and_results_become_complete_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let log = AuditLog::open(&path, "abc", true).unwrap();
        let at = time::parse_rfc3339("2026-11-25T06:40:12.045Z").unwrap();
        let args = json!({"b": 1, "token": "t0p", "a": "x"});
        assert!(log.tool_call(ToolCall {
            at,
            session: Some("s1".into()),
            identity: None,
            client: Some("c".into()),
            tool: "t".into(),
            decision: "deny",
            reason: "rate_limit",
            rule: Some(Arc::from("r")),
            message: Some(Arc::from("m \"quoted\"")),
            retry_after_seconds: Some(3),
            unenforced: None,
            latency: std::time::Duration::from_nanos(1234),
            args: Some(crate::engine::OwnedArgs::Value(args.clone())),
        }));
        assert!(log.tool_result(ToolResult {
            at: at + 1000,
            session: Some("s1".into()),
            identity: Some("alice".into()),
            tool: "t".into(),
            outcome: "error",
            reservation: Some("rolled_back"),
            duration: std::time::Duration::from_micros(2500),
        }));
        log.record(
            "config_reload",
            json!({"status": "failure", "policy_sha256": null, "errors": ["p.yaml:3:7: bad"]}),
        );
        log.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            json!({
                "seq": 1, "prev": "", "ts": "2026-11-25T06:40:12.045Z", "type": "tool_call",
                "instance": "abc", "session": "s1", "client": "c", "tool": "t",
                "decision": "deny", "reason": "rate_limit", "rule": "r", "message": "m \"quoted\"",
                "retry_after_seconds": 3, "latency_us": 1.2,
                "args_hash": args_hash(Some(&args)),
                "args": {"b": 1, "token": "[REDACTED]", "a": "x"},
                "hash": lines[0]["hash"].clone(),
            })
        );
        assert_eq!(lines[0]["hash"].as_str().map(str::len), Some(64));
        assert_eq!(lines[1]["prev"], lines[0]["hash"]);
        assert_eq!(lines[1]["ts"], "2026-11-25T06:40:13.045Z");
        assert_eq!(lines[1]["identity"], "alice");
        assert_eq!(lines[1]["reservation"], "rolled_back");
        assert_eq!(lines[1]["duration_ms"], 2.5);
        assert_eq!(lines[2]["status"], "failure");
        assert_eq!(lines[2]["errors"], json!(["p.yaml:3:7: bad"]));
        assert!(lines[2].get("policy_sha256").is_none());
        assert_eq!(verify(&path, None).unwrap().lines, 4);
    }

    #[test]
    fn events_dropped_on_a_full_queue_are_counted_in_the_next_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let log = AuditLog::open(&path, "abc", false).unwrap();
        // Hold the writer up: a sync request waits behind nothing, so queue past capacity
        // from this thread before the writer's next wake-up drains it.
        let mut refused = 0;
        for i in 0..QUEUE * 2 {
            if !log.send(Event::Other {
                at: 0,
                kind: "x".into(),
                fields: Map::from_iter([("i".to_string(), json!(i))]),
            }) {
                refused += 1;
            }
        }
        log.record("last", json!({}));
        log.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let written = text.lines().count();
        let reported: u64 = text
            .lines()
            .filter_map(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()?
                    .get("dropped_events")?
                    .as_u64()
            })
            .sum();
        assert!(refused > 0, "the queue never filled");
        // Every line but the closing seal is an event that was queued.
        assert_eq!(written as u64 - 1 + reported, QUEUE as u64 * 2 + 1);
        assert_eq!(verify(&path, None).unwrap().lines as usize, written);
    }
}
