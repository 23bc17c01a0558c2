//! A real `intercept` process driven with raw JSON-RPC lines, whose answers are read with a
//! bound: a request left unanswered fails the test instead of hanging it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// How long to wait for an answer before the test fails (a bound, not a measurement).
pub const PATIENCE: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub struct RawSession {
    intercept: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
}

impl RawSession {
    /// Starts `intercept` as `cmd` says (its arguments and stderr), speaking over pipes.
    pub fn spawn(mut cmd: Command) -> RawSession {
        let mut intercept = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("intercept starts");
        let stdin = intercept.stdin.take();
        let stdout = BufReader::new(intercept.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).expect("intercept writes JSON");
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        RawSession {
            intercept,
            stdin,
            lines,
        }
    }

    /// Sends `initialize` and returns its answer.
    pub fn initialize(&mut self) -> Value {
        self.send(&[
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw-session", "version": "1"}}}),
        ]);
        self.next()
    }

    /// Writes the messages in one write, as a busy client would.
    pub fn send(&mut self, messages: &[Value]) {
        let mut bytes = Vec::new();
        for m in messages {
            bytes.extend(serde_json::to_vec(m).unwrap());
            bytes.push(b'\n');
        }
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(&bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Writes one line exactly as given: for messages no JSON library would write (a key
    /// twice, escapes in keys).
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// The next message from intercept, if one comes within `wait`.
    pub fn next_within(&self, wait: Duration) -> Option<Value> {
        self.lines.recv_timeout(wait).ok()
    }

    /// Closes intercept's stdin: the client goes away.
    pub fn close_input(&mut self) {
        drop(self.stdin.take());
    }

    /// The next message from intercept.
    pub fn next(&self) -> Value {
        self.lines
            .recv_timeout(PATIENCE)
            .expect("intercept answers (it must never leave a request unanswered)")
    }

    /// Waits for intercept to exit by itself (failing the test after [`PATIENCE`]).
    pub fn exit_status(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self
                .intercept
                .try_wait()
                .expect("intercept can be waited for")
            {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "intercept did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RawSession {
    fn drop(&mut self) {
        let _ = self.intercept.kill();
        let _ = self.intercept.wait();
    }
}

/// A `tools/call` of `tool` with no arguments.
pub fn call(id: u64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": {}}})
}

/// The text of a tool result (empty for an error).
pub fn text(reply: &Value) -> &str {
    reply
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Whether a reply is the proxy's policy denial.
pub fn is_denial(reply: &Value) -> bool {
    text(reply).starts_with("[INTERCEPT POLICY DENIED]")
}
