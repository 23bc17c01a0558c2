//! A real `intercept` process in front of `tests/fixtures/tool-server.js`, driven with raw
//! JSON-RPC lines over its stdin and stdout.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

#[derive(Debug)]
pub struct ProxyProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

/// What became of one `tools/call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The tool ran and answered.
    Ran,
    /// The tool ran and failed with a JSON-RPC error (its quota is given back).
    Failed,
    /// The proxy denied it, with this message.
    Denied(String),
}

impl ProxyProcess {
    /// Starts `intercept -c <policy> <flags> -- node tool-server.js` and initializes it.
    pub fn start(policy: &Path, flags: &[&str], env: &[(&str, &str)], stderr: &Path) -> Self {
        Self::start_with_server_args(policy, flags, &[], env, stderr)
    }

    /// The same, with arguments for the server after `tool-server.js` (it ignores them).
    pub fn start_with_server_args(
        policy: &Path,
        flags: &[&str],
        server_args: &[&str],
        env: &[(&str, &str)],
        stderr: &Path,
    ) -> Self {
        let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tool-server.js");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_intercept"));
        cmd.arg("-c")
            .arg(policy)
            .args(flags)
            .arg("--")
            .arg("node")
            .arg(server)
            .args(server_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).expect("stderr file"));
        // The audit log is on by default: keep it beside the test's other files, never in
        // the real home directory (a test's own env may still override this).
        if let Some(dir) = stderr.parent() {
            cmd.env("INTERCEPT_AUDIT_DIR", dir.join("events"));
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("intercept starts");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut p = ProxyProcess {
            child,
            stdin,
            stdout,
            next_id: 1,
        };
        p.send(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "state-test", "version": "1"}}}),
        );
        let init = p.receive();
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        p.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        p
    }

    fn send(&mut self, msg: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        let mut line = serde_json::to_vec(msg).unwrap();
        line.push(b'\n');
        stdin.write_all(&line).expect("write to intercept");
        stdin.flush().expect("flush");
    }

    fn receive(&mut self) -> Value {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .expect("read from intercept");
        assert!(n > 0, "intercept closed its stdout");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Sends all calls at once (as a busy client would), then reads every answer.
    pub fn pipeline(&mut self, calls: &[(&str, Value)]) -> Vec<Outcome> {
        let first = self.next_id;
        let mut batch = Vec::new();
        for (tool, args) in calls {
            let msg = json!({"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
                "params": {"name": tool, "arguments": args}});
            self.next_id += 1;
            batch.extend(serde_json::to_vec(&msg).unwrap());
            batch.push(b'\n');
        }
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(&batch).expect("write to intercept");
        stdin.flush().expect("flush");
        let mut outcomes = vec![None; calls.len()];
        for _ in 0..calls.len() {
            let reply = self.receive();
            let id = reply["id"].as_u64().expect("numeric id");
            outcomes[(id - first) as usize] = Some(outcome(&reply));
        }
        outcomes.into_iter().map(Option::unwrap).collect()
    }

    pub fn call(&mut self, tool: &str, args: Value) -> Outcome {
        self.pipeline(&[(tool, args)]).remove(0)
    }

    /// Closes stdin and waits for the proxy to exit.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("intercept exits");
        assert!(status.success(), "intercept exited with {status}");
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn outcome(reply: &Value) -> Outcome {
    if reply.get("error").is_some() {
        return Outcome::Failed;
    }
    let text = reply
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or("");
    match text.strip_prefix("[INTERCEPT POLICY DENIED] ") {
        Some(message) => Outcome::Denied(message.to_string()),
        None => Outcome::Ran,
    }
}
