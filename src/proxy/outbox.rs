//! The proxy core's side of a transport: what it is handed ([`Inbound`]), where its output
//! goes ([`Outbox`]), and how a transport reports what it could not deliver ([`Failure`],
//! [`Closed`]).

use std::borrow::Cow;

use serde_json::Value;

use super::failure::RequestFailure;
use super::pending::IdKey;

/// One message (or batch) as a transport read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// The whole message, without its line ending.
    Line(&'a [u8]),
    /// A message longer than `limit` bytes (`--max-message-bytes`): only its first bytes
    /// were kept, to read its id.
    Oversize {
        prefix: &'a [u8],
        len: usize,
        limit: usize,
    },
}

/// A JSON-RPC request id, as the proxy matches answers to requests: by value (`1`, `1.0`
/// and `1e0` are one id), a string by its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(pub(super) IdKey);

impl RequestId {
    pub fn from_value(id: &Value) -> Self {
        RequestId(IdKey::from_value(id))
    }

    /// The id as JSON, written as the request wrote it.
    pub fn to_value(&self) -> Value {
        self.0.to_value()
    }

    /// The id an answer of the proxy's own carries, if it has one.
    pub(super) fn of_reply(reply: &Value) -> Option<RequestId> {
        reply
            .get("id")
            .filter(|id| !id.is_null())
            .map(RequestId::from_value)
    }
}

/// Where the proxy core writes the messages it lets through and the answers it gives
/// itself. Each message is one JSON-RPC message or batch, without a line ending.
pub trait Outbox {
    /// A message for the server; `awaits` holds the ids of the requests in it that expect
    /// an answer (none for notifications), so that a transport that cannot deliver it
    /// can report each one with [`super::Session::request_failed`].
    fn to_server(&mut self, msg: &[u8], awaits: &[RequestId]);
    /// A message for the client; `answers` holds the ids of the client requests it
    /// answers (none for the server's own requests and notifications), so that a
    /// transport can route it to the exchange that asked.
    fn to_client(&mut self, msg: &[u8], answers: &[RequestId]);
}

/// Why a transport could not complete a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Decides whether a call counts toward its quota.
    pub kind: RequestFailure,
    /// What the client is told.
    pub message: Cow<'static, str>,
}

impl Failure {
    pub fn new(kind: RequestFailure, message: impl Into<Cow<'static, str>>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

/// Why a conversation ended with requests still awaiting the server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The server went away; how, as in "The MCP server {how} before answering".
    UpstreamGone(String),
    ClientGone,
    Shutdown,
    /// The client's session was idle too long.
    Idle,
}

/// What `initialize` fixed for the rest of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The version the server answered with.
    pub protocol_version: String,
    /// The capabilities the client declared (null when it declared none).
    pub client_capabilities: Value,
}

/// Where a message goes (see [`Routes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To the MCP server (one line, without the newline).
    Server(Vec<u8>),
    /// To the MCP client (one line, without the newline).
    Client(Vec<u8>),
}

/// An outbox that keeps each message in order, for tests, fuzz targets and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes(pub Vec<Route>);

impl Outbox for Routes {
    fn to_server(&mut self, msg: &[u8], _awaits: &[RequestId]) {
        self.0.push(Route::Server(msg.to_vec()));
    }

    fn to_client(&mut self, msg: &[u8], _answers: &[RequestId]) {
        self.0.push(Route::Client(msg.to_vec()));
    }
}

/// The outbox of a stream transport (stdio): each message is appended, with its newline,
/// to the bytes bound for its side, which the transport writes once per read. Where each
/// request went in `to_server` is recorded, so that when a write stops short the requests
/// past that point can be reported as never sent.
#[derive(Debug, Default)]
pub struct LineBuffers {
    pub to_server: Vec<u8>,
    pub to_client: Vec<u8>,
    /// Offset in `to_server` of the message each awaited request went in.
    sent: Vec<(usize, RequestId)>,
}

impl LineBuffers {
    /// The requests whose message starts at or after byte `written` of `to_server`: those
    /// a write that stopped there did not deliver.
    pub fn unsent(&self, written: usize) -> impl Iterator<Item = &RequestId> {
        self.sent
            .iter()
            .filter(move |(at, _)| *at >= written)
            .map(|(_, id)| id)
    }

    /// Empties the buffers for the next read, keeping their memory unless one huge message
    /// grew them.
    pub fn clear(&mut self) {
        for buf in [&mut self.to_server, &mut self.to_client] {
            buf.clear();
            buf.shrink_to(1 << 20);
        }
        self.sent.clear();
    }
}

impl Outbox for LineBuffers {
    fn to_server(&mut self, msg: &[u8], awaits: &[RequestId]) {
        let at = self.to_server.len();
        self.sent.extend(awaits.iter().map(|id| (at, id.clone())));
        push_line(&mut self.to_server, msg);
    }

    fn to_client(&mut self, msg: &[u8], _answers: &[RequestId]) {
        push_line(&mut self.to_client, msg);
    }
}

/// Appends a line and its newline.
fn push_line(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(line);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_buffers_know_which_requests_a_short_write_left_out() {
        let mut out = LineBuffers::default();
        let one = RequestId::from_value(&Value::from(1));
        let two = RequestId::from_value(&Value::from("two"));
        out.to_server(br#"{"id":1}"#, std::slice::from_ref(&one));
        out.to_server(br#"{"method":"n"}"#, &[]);
        let second = out.to_server.len();
        out.to_server(br#"{"id":"two"}"#, std::slice::from_ref(&two));
        out.to_client(b"{}", &[]);
        assert_eq!(out.to_client, b"{}\n");
        assert_eq!(out.unsent(0).collect::<Vec<_>>(), [&one, &two]);
        assert_eq!(out.unsent(second).collect::<Vec<_>>(), [&two]);
        assert_eq!(out.unsent(out.to_server.len()).count(), 0);
        out.clear();
        assert!(out.to_server.is_empty() && out.unsent(0).count() == 0);
    }
}
