//! Byte movers: they frame messages, hand them to the proxy core and deliver what it
//! returns. They know nothing of policy.

pub mod child;
pub mod header;
pub mod http;
pub mod lines;
pub mod listener;
pub mod process_group;
pub mod program;
pub mod sse;
pub mod stdio;

use crate::proxy::{Proxy, Route};
use lines::Frame;
use program::Unrunnable;
use serde_json::Value;

/// What the proxy core makes of one frame from the client.
fn client_routes(proxy: &Proxy, frame: Frame, max: usize) -> Vec<Route> {
    match frame {
        Frame::Line(line) => proxy.client_message(&line),
        Frame::Oversize { prefix, len } => proxy.client_oversize(&prefix, len, max),
    }
}

/// The lines of `routes` that go to the client.
fn to_client_lines(routes: Vec<Route>) -> impl Iterator<Item = Vec<u8>> {
    routes.into_iter().filter_map(|r| match r {
        Route::Client(l) => Some(l),
        Route::Server(_) => None,
    })
}

/// The ids of the requests in a message (or batch), to answer them if it cannot be
/// delivered.
pub(crate) fn request_ids(line: &[u8]) -> Vec<Value> {
    let Ok(v) = serde_json::from_slice::<Value>(line) else {
        return Vec::new();
    };
    let items = match v {
        Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .filter(|m| m.get("method").is_some())
        .filter_map(|m| m.get("id").cloned())
        .filter(|id| !id.is_null())
        .collect()
}

/// The ids a server message (or batch) answers.
pub(crate) fn response_ids(body: &[u8]) -> Vec<Value> {
    let items = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items,
        Ok(other) => vec![other],
        Err(_) => return Vec::new(),
    };
    items
        .into_iter()
        .filter(|m| m.get("method").is_none())
        .filter_map(|m| m.get("id").cloned())
        .collect()
}

/// How often to look for requests past `--request-timeout`: a tenth of it, within 10 ms
/// and 1 s.
pub(crate) fn sweep_interval(timeout: std::time::Duration) -> std::time::Duration {
    use std::time::Duration;
    (timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Like every error of the crate, its text is whole, cause included, and it has no
/// `source()`: printed alone or as a chain, the cause appears once.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("no upstream command given after --")]
    NoCommand,
    #[error("cannot find the upstream command \"{0}\" on PATH")]
    NotFound(String),
    #[error("cannot start the upstream command \"{command}\": {why}")]
    Unrunnable {
        command: String,
        why: program::Unrunnable,
    },
    #[error("cannot start the upstream command \"{command}\": {cause}")]
    Spawn {
        command: String,
        cause: std::io::Error,
    },
    #[error(
        "cannot start the watchdog that stops the MCP server's processes with intercept (/bin/sh): {0}"
    )]
    Watchdog(std::io::Error),
    #[error("cannot start a proxy thread: {0}")]
    Thread(std::io::Error),
    #[error("lost track of the upstream server process")]
    Lost,
    #[error(transparent)]
    Header(#[from] header::HeaderError),
    #[error("invalid --upstream URL \"{0}\": {1}")]
    Url(String, String),
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
}

impl TransportError {
    /// Why the server command `command` cannot be started.
    pub(crate) fn unrunnable(command: &str, why: Unrunnable) -> Self {
        match why {
            Unrunnable::NotOnPath => TransportError::NotFound(command.to_string()),
            why => TransportError::Unrunnable {
                command: command.to_string(),
                why,
            },
        }
    }
}
