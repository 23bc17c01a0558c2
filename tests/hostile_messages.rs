//! Messages written to be read one way by the proxy and another by the server or the
//! client, sent through the real binary to real servers: a Go server that decodes JSON as
//! Go's `encoding/json` does (keys matched ignoring case under Unicode folding, the last
//! one winning), the MCP reference server (JavaScript, which rewrites ids such as `2.0`
//! as `2`), and a server that writes lines that are not JSON-RPC messages.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::raw_session::{PATIENCE, RawSession};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"hostile-test","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// An intercept process driven line by line, with its stderr and audit log in `dir`.
struct Session {
    raw: RawSession,
    dir: tempfile::TempDir,
}

impl Session {
    fn start(policy: &str, server: &[&str], env: &[(&str, &Path)]) -> Session {
        let dir = tempfile::tempdir().unwrap();
        let policy_path = dir.path().join("policy.yaml");
        std::fs::write(&policy_path, policy).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_intercept"));
        cmd.arg("-c")
            .arg(&policy_path)
            .args(["--state", "memory", "--audit-log"])
            .arg(dir.path().join("audit.jsonl"))
            .arg("--")
            .args(server)
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut s = Session {
            raw: RawSession::spawn(cmd),
            dir,
        };
        let init = s.ask(INIT);
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        s.send(INITIALIZED);
        s
    }

    fn send(&mut self, line: &str) {
        self.raw.send_line(line);
    }

    /// The next response (the server's own notifications and requests are skipped).
    fn receive(&mut self) -> Value {
        loop {
            let msg = self
                .raw
                .next_within(PATIENCE)
                .unwrap_or_else(|| panic!("no answer from intercept; stderr:\n{}", self.stderr()));
            if msg.get("method").is_none() {
                return msg;
            }
        }
    }

    /// The line the client gets for `request`.
    fn ask(&mut self, request: &str) -> Value {
        self.send(request);
        self.receive()
    }

    /// Nothing more arrives within a short wait.
    fn assert_quiet(&self) {
        if let Some(msg) = self.raw.next_within(Duration::from_millis(500)) {
            panic!("unexpected output: {msg}");
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Closes stdin, waits for intercept to exit, and returns its stderr and audit log.
    fn finish(mut self) -> (String, String) {
        self.raw.close_input();
        self.raw.exit_status();
        let audit = std::fs::read_to_string(self.dir.path().join("audit.jsonl"));
        (self.stderr(), audit.unwrap_or_default())
    }
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn go_server() -> PathBuf {
    support::go_server::binary()
}

const GO_POLICY: &str = r#"hide: [delete_repo]
tools:
  read_file:
    rules:
      - name: no system files
        conditions:
          - {path: args.path, op: regex, value: '^/ok'}
"#;

fn error_code(reply: &Value) -> Option<i64> {
    reply.pointer("/error/code").and_then(Value::as_i64)
}

/// What the Go server ran, one JSON object per call.
fn executed(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn keys_a_go_server_folds_are_refused_before_it_sees_them() {
    let server = go_server();
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("executed.jsonl");
    let mut s = Session::start(
        GO_POLICY,
        &[server.to_str().unwrap()],
        &[("GO_SERVER_LOG", &log)],
    );
    let hostile = [
        // The method under another case: forwarded unevaluated today.
        r#"{"jsonrpc":"2.0","id":2,"Method":"tools/call","params":{"name":"delete_repo","arguments":{}}}"#,
        // params twice, the second spelt with U+017F: the server takes the last.
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/ok"}},"paramſ":{"name":"delete_repo","arguments":{}}}"#,
        // arguments twice.
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/ok"},"argumentſ":{"path":"/etc/shadow"}}}"#,
        // A near miss alone: the proxy would read no arguments, the server these.
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"read_file","Arguments":{"path":"/etc/shadow"}}}"#,
        // The same with K (U+212A) in a key inside the arguments.
        r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/ok","kind":1,"Kind":2}}}"#,
        // Escaped key text, so the fast path cannot read it.
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"na\u006de":"read_file","NAME":"delete_repo","arguments":{"path":"/ok"}}}"#,
        // In a batch.
        r#"[{"jsonrpc":"2.0","id":8,"Method":"tools/call","params":{"name":"delete_repo","arguments":{}}}]"#,
    ];
    for line in hostile {
        let reply = s.ask(line);
        let reply = match &reply {
            Value::Array(items) => items[0].clone(),
            _ => reply,
        };
        assert_eq!(error_code(&reply), Some(-32600), "{line} → {reply}");
        let message = reply
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap();
        assert!(message.contains("not forwarded"), "{message}");
    }
    // The listing the Go client would read is the filtered one, or none at all.
    let list = s.ask(r#"{"jsonrpc":"2.0","id":9,"Method":"tools/list"}"#);
    assert_eq!(error_code(&list), Some(-32600), "{list}");
    let list = s.ask(r#"{"jsonrpc":"2.0","id":10,"method":"tools/list"}"#);
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["read_file"]);
    // An honest call still goes through, and it is the only one the server ran.
    let ok = s.ask(r#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/ok/a"}}}"#);
    assert!(ok.get("result").is_some(), "{ok}");
    s.finish();
    let ran = executed(&log);
    assert_eq!(ran.len(), 1, "the server ran: {ran:?}");
    assert_eq!(ran[0]["name"], "read_file");
    assert_eq!(ran[0]["arguments"]["path"], "/ok/a");
}

const EVERYTHING: &str = "node_modules/@modelcontextprotocol/server-everything/dist/index.js";

fn everything() -> Vec<String> {
    vec![
        "node".into(),
        repo(EVERYTHING).to_string_lossy().into_owned(),
    ]
}

fn tool_names(reply: &Value) -> Vec<String> {
    reply["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {reply}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_listing_is_filtered_however_the_server_writes_its_id() {
    let policy = std::fs::read_to_string(repo("policies/examples/server-everything.yaml")).unwrap();
    let server = everything();
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    let mut s = Session::start(&policy, &server, &[]);
    for id in ["2.0", "1e0", "-0", "30.0", r#""2""#] {
        let reply = s.ask(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#
        ));
        let names = tool_names(&reply);
        assert!(names.iter().any(|n| n == "echo"), "{id}: {names:?}");
        assert!(
            !names.iter().any(|n| n == "get-env"),
            "{id} showed get-env: {names:?}"
        );
    }
    let (stderr, _) = s.finish();
    assert!(!stderr.contains("before answering"), "{stderr}");
}

#[test]
fn an_id_still_pending_cannot_be_reused() {
    let policy = "tools: {}\n";
    let server = everything();
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    let mut s = Session::start(policy, &server, &[]);
    // A slow call holds id 7; a listing, then a call, with the same id are refused.
    s.send(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"trigger-long-running-operation","arguments":{"duration":2,"steps":1}}}"#);
    for line in [
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":7.0,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}"#,
    ] {
        let reply = s.ask(line);
        assert_eq!(error_code(&reply), Some(-32600), "{reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("id already in use"),
            "{reply}"
        );
    }
    let done = s.receive();
    assert_eq!(done["id"], 7);
    assert!(done["result"]["content"].is_array(), "{done}");
    // Once answered, the id is free again.
    let list = s.ask(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#);
    assert!(!tool_names(&list).is_empty());
    s.finish();
}

/// A server that writes log text and a pretty-printed message on stdout among its answers.
const NOISY_SERVER: &str = r#"
const readline = require('node:readline')
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const msg = JSON.parse(line)
  if (msg.id === undefined) return
  const out = (v) => process.stdout.write(JSON.stringify(v) + '\n')
  if (msg.method === 'initialize') {
    out({ jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'noisy', version: '1' } } })
  } else if (msg.method === 'tools/list') {
    process.stdout.write('server: listing tools\n')
    process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { tools: [{ name: 'secret_tool', inputSchema: { type: 'object' } }] } }, null, 2) + '\n')
  } else {
    process.stdout.write('{"jsonrpc":"2.0","id":' + JSON.stringify(msg.id) + ',"result":{"content":[{"type":"text","text":"cut off\n')
  }
})
"#;

#[test]
fn server_lines_that_are_not_messages_are_not_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("noisy.js");
    std::fs::write(&script, NOISY_SERVER).unwrap();
    let mut s = Session::start(
        "hide: [secret_tool]\n",
        &["node", script.to_str().unwrap()],
        &[],
    );
    // The pretty-printed listing arrives in pieces none of which is a message: the client
    // sees none of it (the request is answered by its timeout or when the server ends).
    s.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
    s.assert_quiet();
    // A response cut off mid-line: its request gets an error, never the fragment.
    let reply = s.ask(
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x","arguments":{}}}"#,
    );
    assert_eq!(reply["id"], 3);
    assert_eq!(error_code(&reply), Some(-32603), "{reply}");
    let (stderr, audit) = s.finish();
    assert!(stderr.contains("not a JSON-RPC message"), "{stderr}");
    assert!(!stderr.contains("secret_tool"), "{stderr}");
    let dropped = audit
        .lines()
        .filter(|l| l.contains(r#""server_output_dropped""#))
        .count();
    assert!(dropped >= 3, "{audit}");
}

#[test]
fn the_client_name_is_fixed_at_initialize() {
    let policy = r#"tools:
  echo:
    rules:
      - name: only the test client
        conditions:
          - {path: client.name, op: eq, value: hostile-test}
"#;
    let server = everything();
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    let mut s = Session::start(policy, &server, &[]);
    // A later message that names another client changes nothing.
    s.send(r#"{"jsonrpc":"2.0","id":2,"method":"ping","params":{"clientInfo":{"name":"other","version":"1"}}}"#);
    assert!(s.receive().get("result").is_some());
    let call = s.ask(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"},"_meta":{"io.modelcontextprotocol/clientInfo":{"name":"other","version":"1"}}}}"#);
    let text = call["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("Echo: hi"), "{call}");
    s.finish();
}
