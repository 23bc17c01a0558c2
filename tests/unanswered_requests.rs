//! Every request gets an answer or an error, and what counts toward a quota: a call given
//! back only when it provably never reached the server, counted whenever the tool may have
//! run. Each limited tool here allows one call, so a second call tells whether the first
//! one counted (denied) or was given back (not denied).

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use support::raw_session::{RawSession, call, is_denial};

const POLICY: &str = "tools:\n  '*':\n    rules:\n      - action: allow\n        rate_limit: {max: 1, window: 3600}\n";

/// `tests/fixtures/faulty-http-server.js`, listening on loopback.
struct FaultyServer {
    child: Child,
    url: String,
}

impl FaultyServer {
    fn start() -> FaultyServer {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/faulty-http-server.js");
        let mut child = Command::new("node")
            .arg(script)
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs the test server");
        let mut port = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        let port: u16 = port.trim().parse().expect("the server prints its port");
        FaultyServer {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn intercept(dir: &Path, flags: &[&str]) -> Command {
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_intercept"));
    cmd.arg("-c")
        .arg(&policy)
        .args(["--state", "memory", "--audit-log"])
        .arg(dir.join("audit.jsonl"))
        .args(flags)
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
    cmd
}

fn remote(dir: &Path, url: &str, flags: &[&str]) -> RawSession {
    let mut cmd = intercept(dir, flags);
    cmd.args(["--upstream", url]);
    RawSession::spawn(cmd)
}

fn reason(reply: &Value) -> &str {
    reply["error"]["data"]["reason"].as_str().unwrap_or("")
}

/// Calls `tool` twice: the first fails as `expected`, the second tells whether it counted.
fn fails_then_counts(s: &mut RawSession, tool: &str, expected: &str) -> bool {
    s.send(&[call(1, tool)]);
    let first = s.next();
    assert_eq!(first["id"], 1, "{first}");
    assert_eq!(reason(&first), expected, "{first}");
    s.send(&[call(2, tool)]);
    let second = s.next();
    assert_eq!(second["id"], 2, "{second}");
    is_denial(&second)
}

#[test]
fn a_refused_connection_gives_the_quota_back() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s = remote(dir.path(), &format!("http://127.0.0.1:{port}/mcp"), &[]);
    let init = s.initialize();
    assert_eq!(reason(&init), "not_sent", "{init}");
    let counted = fails_then_counts(&mut s, "anything", "not_sent");
    assert!(
        !counted,
        "a call that never reached the server does not count"
    );
    let result = audit_result(&mut s, dir.path(), "not_sent");
    assert_eq!(result["reservation"], "rolled_back", "{result}");
}

#[test]
fn a_timeout_counts() {
    let dir = tempfile::tempdir().unwrap();
    let server = FaultyServer::start();
    // Every request is bounded, `initialize` too: room for a busy machine.
    let mut s = remote(dir.path(), &server.url, &["--request-timeout", "2"]);
    assert!(s.initialize().get("result").is_some());
    assert!(fails_then_counts(&mut s, "hang", "timeout"));
}

#[test]
fn an_event_stream_that_breaks_still_answers_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let server = FaultyServer::start();
    let mut s = remote(dir.path(), &server.url, &[]);
    assert!(s.initialize().get("result").is_some());
    s.send(&[call(1, "drop")]);
    let reply = s.next();
    assert_eq!(reply["id"], 1, "{reply}");
    assert_eq!(reason(&reply), "answer_lost", "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("event stream"), "{message}");
    s.send(&[call(2, "drop")]);
    assert!(is_denial(&s.next()), "the tool may have run: it counts");
}

#[test]
fn a_server_error_counts() {
    let dir = tempfile::tempdir().unwrap();
    let server = FaultyServer::start();
    let mut s = remote(dir.path(), &server.url, &[]);
    assert!(s.initialize().get("result").is_some());
    assert!(fails_then_counts(&mut s, "fail", "answer_lost"));
}

/// A stdio server that stopped reading its input before the call was written: the call
/// never reached it.
#[test]
fn a_call_written_after_the_server_closed_its_input_is_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = dir.path().join("server.py");
    std::fs::write(
        &server,
        r#"import json, os, sys, time
msg = json.loads(sys.stdin.readline())
os.close(0)
sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": {
    "protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
    "serverInfo": {"name": "deaf", "version": "1"}}}) + "\n")
sys.stdout.flush()
time.sleep(1000)
"#,
    )
    .unwrap();
    let mut cmd = intercept(dir.path(), &["--shutdown-timeout", "0.5"]);
    cmd.arg("--").arg("python3").arg(&server);
    let mut s = RawSession::spawn(cmd);
    assert!(s.initialize().get("result").is_some());
    s.send(&[call(1, "anything")]);
    let reply = s.next();
    assert_eq!(reply["id"], 1, "{reply}");
    assert_eq!(reason(&reply), "not_sent", "{reply}");
    let result = audit_result(&mut s, dir.path(), "not_sent");
    assert_eq!(result["tool"], "anything");
    assert_eq!(result["reservation"], "rolled_back", "{result}");
}

/// The `tool_result` event with this outcome, once intercept has exited (so the log is
/// complete).
fn audit_result(s: &mut RawSession, dir: &Path, outcome: &str) -> Value {
    s.close_input();
    s.exit_status();
    let log = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    log.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["type"] == "tool_result" && e["outcome"] == outcome)
        .unwrap_or_else(|| panic!("no tool_result {outcome} in {log}"))
}

/// A stdio server that read the call and died before answering: the tool may have run.
#[test]
fn a_call_the_server_read_before_dying_counts() {
    let dir = tempfile::tempdir().unwrap();
    let server = dir.path().join("server.py");
    std::fs::write(
        &server,
        r#"import json, sys
msg = json.loads(sys.stdin.readline())
sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": {
    "protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
    "serverInfo": {"name": "crashing", "version": "1"}}}) + "\n")
sys.stdout.flush()
while "tools/call" not in sys.stdin.readline():
    pass
sys.exit(3)
"#,
    )
    .unwrap();
    let mut cmd = intercept(dir.path(), &[]);
    cmd.arg("--").arg("python3").arg(&server);
    let mut s = RawSession::spawn(cmd);
    assert!(s.initialize().get("result").is_some());
    s.send(&[call(1, "anything")]);
    let reply = s.next();
    assert_eq!(reply["id"], 1, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("exited (code 3)"), "{message}");
    let result = audit_result(&mut s, dir.path(), "upstream_gone");
    assert_eq!(result["reservation"], "committed", "{result}");
}
