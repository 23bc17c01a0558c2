//! Messages the proxy writes itself: policy denials and JSON-RPC errors.

use serde_json::{Value, json};

use crate::engine::Decision;

/// The `_meta` key under which denials describe themselves (a reverse-DNS prefix of our
/// own, as MCP asks of implementations adding metadata).
pub const META_KEY: &str = "dev.policylayer/intercept";

/// Prefix of every denial text the agent sees.
pub const DENIED_PREFIX: &str = "[INTERCEPT POLICY DENIED] ";

/// JSON-RPC error codes used by the proxy.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// A call held for human approval.
    pub const APPROVAL_REQUIRED: i64 = -32003;
}

/// A denial as a normal tool result, so the agent reads it as the tool's answer.
pub fn denial(id: &Value, d: &Decision) -> Value {
    let message = d.message.as_deref().unwrap_or("Denied by policy");
    let mut meta = json!({
        "decision": d.verdict.as_str(),
        "reason": d.reason.as_str(),
    });
    if let Some(rule) = &d.rule {
        meta["rule"] = json!(&**rule);
    }
    if let Some(s) = d.retry_after_seconds {
        meta["retryAfterSeconds"] = json!(s);
    }
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {
            "content": [{"type": "text", "text": format!("{DENIED_PREFIX}{message}")}],
            "isError": true,
            "_meta": { META_KEY: meta },
        },
    })
}

/// A JSON-RPC error response.
pub fn error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut err = json!({ "code": code, "message": message });
    if let Some(data) = data {
        err["data"] = data;
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": err })
}
