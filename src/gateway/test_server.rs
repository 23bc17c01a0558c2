//! A stdio MCP server for the gateway's unit tests, small enough to read at a glance: it
//! answers every request with "ran NAME"; a `tools/call` of `slow` first sends a progress
//! notification and a sampling request, and one of `exit` ends the server unanswered.
//! (The end-to-end tests use real servers from npm.)

use std::sync::Arc;

use crate::engine::Engine;
use crate::proxy::{Session, SessionOptions};
use crate::transport::child::ServerCommand;

const SERVER: &str = r#"
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m or "method" not in m:
        continue
    name = m.get("params", {}).get("name")
    if name == "exit":
        sys.exit(3)
    if name == "slow":
        token = m["params"]["_meta"]["progressToken"]
        print(json.dumps({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, "progress": 1}}), flush=True)
        print(json.dumps({"jsonrpc": "2.0", "id": "s1", "method": "sampling/createMessage", "params": {}}), flush=True)
    print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": {"content": [{"type": "text", "text": "ran " + str(name)}]}}), flush=True)
"#;

pub fn command() -> ServerCommand {
    ServerCommand::locate(vec!["python3".into(), "-c".into(), SERVER.into()]).unwrap()
}

/// A view of a policy that denies the tool `forbidden` with the reason "not here".
pub fn proxy() -> Arc<Session> {
    let policy = crate::policy::parse(
        "version: \"1\"\ntools:\n  forbidden:\n    rules:\n      - action: deny\n        reason: not here\n",
        "test.yaml",
    )
    .unwrap();
    let engine = Engine::new(Arc::new(policy), Arc::new(crate::state::MemoryStore::new()));
    Arc::new(Session::new(engine, SessionOptions::default()))
}

/// A `tools/call` of `name` with id `id` and progress token `p<id>`.
pub fn call(id: u32, name: &str) -> Vec<u8> {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}","arguments":{{}},"_meta":{{"progressToken":"p{id}"}}}}}}"#).into_bytes()
}
