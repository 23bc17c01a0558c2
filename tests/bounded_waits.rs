//! Every request a client sends through a stdio server gets an answer: one the server
//! never answers gets an error after `--request-timeout`, and calls beyond
//! `--max-in-flight` are refused at once instead of queueing.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::raw_session::{PATIENCE, RawSession, call, is_denial, text};

/// Answers `initialize` and calls to `fast`; never answers any other call. Every line it
/// reads goes to the log file named by its argument. Told a request is cancelled, it
/// answers it anyway, as a server that ignores cancellations would.
const SERVER: &str = r#"
const fs = require('node:fs')
const log = process.argv[2]
const send = (m) => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', ...m }) + '\n')
const ok = (text) => ({ content: [{ type: 'text', text }] })
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  fs.appendFileSync(log, line + '\n')
  const msg = JSON.parse(line)
  if (msg.method === 'initialize') {
    send({ id: msg.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'silent', version: '1' } } })
  } else if (msg.method === 'notifications/cancelled') {
    send({ id: msg.params.requestId, result: ok('too late') })
  } else if (msg.method === 'tools/call' && msg.params.name !== 'hold' && msg.params.name !== 'slow') {
    send({ id: msg.id, result: ok('ok') })
  }
})
"#;

const POLICY: &str = "tools:\n  slow:\n    rules:\n      - action: allow\n        rate_limit: {max: 1, window: 3600}\n  limited:\n    rules:\n      - action: allow\n        rate_limit: {max: 1, window: 3600}\n";

struct Session {
    raw: RawSession,
    server_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Session {
    fn start(flags: &[&str]) -> Session {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            path
        };
        let policy = write("policy.yaml", POLICY);
        let server = write("server.js", SERVER);
        let server_log = dir.path().join("server.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_intercept"));
        cmd.arg("-c")
            .arg(&policy)
            .args(["--state", "memory", "--no-audit"])
            .args(flags)
            .arg("--")
            .arg("node")
            .arg(&server)
            .arg(&server_log)
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap());
        let mut raw = RawSession::spawn(cmd);
        assert!(raw.initialize().get("result").is_some());
        Session {
            raw,
            server_log,
            _dir: dir,
        }
    }

    fn send(&mut self, messages: &[Value]) {
        self.raw.send(messages)
    }

    fn next(&self) -> Value {
        self.raw.next()
    }

    /// Waits until the server has read a line containing `text`.
    fn server_read(&self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !std::fs::read_to_string(&self.server_log)
            .unwrap_or_default()
            .contains(text)
        {
            assert!(Instant::now() < deadline, "the server never read {text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_call_the_server_never_answers_gets_an_error_and_still_counts() {
    // Every request is bounded, `initialize` too: long enough for node to start on a
    // busy machine.
    let mut s = Session::start(&["--request-timeout", "2"]);
    s.send(&[call(1, "slow")]);
    let reply = s.next();
    assert_eq!(reply["id"], 1, "{reply}");
    assert_eq!(reply["error"]["data"]["reason"], "timeout", "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("--request-timeout"), "{message}");

    // The server is told, and its late answer never reaches the client: the next line the
    // client reads answers its next request.
    s.server_read(r#""method":"notifications/cancelled","params":{"requestId":1"#);
    s.send(&[call(2, "fast")]);
    let reply = s.next();
    assert_eq!(reply["id"], 2, "the late answer to 1 was dropped: {reply}");
    assert_eq!(text(&reply), "ok");

    // The call may have run, so it counted: the limit of one is reached.
    s.send(&[call(3, "slow")]);
    let reply = s.next();
    assert_eq!(reply["id"], 3);
    assert!(is_denial(&reply), "{reply}");
}

#[test]
fn calls_beyond_max_in_flight_are_refused_at_once_and_not_counted() {
    let mut s = Session::start(&["--max-in-flight", "2", "--request-timeout", "3"]);
    // A flood: two calls the server sits on, then one over the cap.
    s.send(&[call(1, "hold"), call(2, "hold"), call(3, "limited")]);
    let reply = s.next();
    assert_eq!(
        reply["id"], 3,
        "the call over the cap is answered first: {reply}"
    );
    assert_eq!(reply["error"]["data"]["reason"], "max_in_flight", "{reply}");

    // Once the held calls are answered (here: timed out), calls go through again, and the
    // refused one took none of `limited`'s quota of one.
    let mut timed_out: Vec<Value> = vec![s.next()["id"].clone(), s.next()["id"].clone()];
    timed_out.sort_by_key(|id| id.as_u64());
    assert_eq!(timed_out, [json!(1), json!(2)]);
    s.send(&[call(4, "limited")]);
    let reply = s.next();
    assert_eq!(reply["id"], 4);
    assert_eq!(text(&reply), "ok", "{reply}");
    assert!(
        !std::fs::read_to_string(&s.server_log)
            .unwrap()
            .contains(r#""id":3"#),
        "the refused call was not forwarded"
    );
}

#[test]
fn bounds_that_make_no_sense_stop_start_up() {
    for (flag, value, complaint) in [
        ("--max-in-flight", "0", "--max-in-flight must be at least 1"),
        (
            "--request-timeout",
            "0",
            "--request-timeout must be a positive number",
        ),
        (
            "--request-timeout",
            "1e30",
            "--request-timeout must be a positive number",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_intercept"))
            .args(["-c", "policy.yaml", flag, value, "--", "true"])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(complaint), "{flag} {value}: {stderr}");
    }
}
