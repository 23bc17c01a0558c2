//! One client message through the proxy core to the server and back: what both the
//! Streamable HTTP and the legacy endpoints do with a POSTed message. Whatever the server
//! answers is relayed through the core (so `tools/list` is filtered and late answers are
//! dropped); whatever goes wrong becomes a JSON-RPC error for each request concerned.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Gateway;
use super::Signal;
use super::body::sse_event;
use super::sessions::{SERVER, Session};
pub(super) use crate::gateway::one_line;
use crate::proxy::{Failure, Inbound, Outbox, RequestFailure, RequestId};
use crate::upstream::http::{EventStream, Reply, SendError};

/// What came of a message.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Nothing to send back (notifications and responses the server took).
    Accepted,
    /// Messages for the client, all known now.
    Lines {
        lines: Vec<Vec<u8>>,
        /// The server no longer knows the session: the client must start a new one.
        session_gone: bool,
    },
    /// The server streams its answer: `first` goes out before its events.
    Stream {
        first: Vec<Vec<u8>>,
        relay: StreamRelay,
    },
}

/// An upstream event stream still to relay, and the requests it should answer.
#[derive(Debug)]
pub(super) struct StreamRelay {
    pub(super) events: Box<EventStream>,
    pub(super) awaiting: Vec<RequestId>,
}

/// What the proxy core wrote for one message: messages for the server with the requests
/// in each that await an answer, and messages for the client with the requests they answer.
#[derive(Debug, Default)]
struct Exchange {
    to_server: Vec<(Vec<u8>, Vec<RequestId>)>,
    to_client: Vec<Vec<u8>>,
    answered: Vec<RequestId>,
}

impl Outbox for Exchange {
    fn to_server(&mut self, msg: &[u8], awaits: &[RequestId]) {
        self.to_server.push((msg.to_vec(), awaits.to_vec()));
    }

    fn to_client(&mut self, msg: &[u8], answers: &[RequestId]) {
        self.to_client.push(msg.to_vec());
        self.answered.extend_from_slice(answers);
    }
}

/// Passes one client message (or batch) through the proxy core and on to the server.
pub(super) async fn client_message(
    gw: &Gateway,
    session: &Arc<Session>,
    body: &[u8],
    version: Option<&str>,
) -> Outcome {
    let line = one_line(body);
    let mut exchange = Exchange::default();
    session
        .proxy
        .client_message(Inbound::Line(&line), &mut exchange);
    let mut lines = exchange.to_client;
    let mut session_gone = false;
    let mut forwarded = exchange.to_server.into_iter().peekable();
    while let Some((line, awaits)) = forwarded.next() {
        match send(gw, session, line, awaits, version).await {
            Outcome::Accepted => {}
            Outcome::Lines {
                lines: more,
                session_gone: gone,
            } => {
                lines.extend(more);
                session_gone |= gone;
            }
            // A reply that streams is relayed last: it may run for as long as a tool does.
            Outcome::Stream { first, relay } if forwarded.peek().is_none() => {
                lines.extend(first);
                return Outcome::Stream {
                    first: lines,
                    relay,
                };
            }
            Outcome::Stream { first, relay } => {
                lines.extend(first);
                let (tx, mut rx) = mpsc::channel(64);
                let deadline = Instant::now() + gw.backend.request_timeout;
                pump(
                    gw,
                    session,
                    relay,
                    PumpTo::Lines(tx),
                    Some(deadline),
                    &gw.give_up,
                )
                .await;
                while let Ok(l) = rx.try_recv() {
                    lines.push(l.to_vec());
                }
            }
        }
    }
    if lines.is_empty() && !session_gone {
        Outcome::Accepted
    } else {
        Outcome::Lines {
            lines,
            session_gone,
        }
    }
}

/// Sends one message the core let through.
async fn send(
    gw: &Gateway,
    session: &Arc<Session>,
    line: Vec<u8>,
    mut ids: Vec<RequestId>,
    version: Option<&str>,
) -> Outcome {
    let timeout = gw.backend.request_timeout;
    let _in_flight = (!ids.is_empty()).then(|| session.telemetry.in_flight(SERVER));
    let sent = tokio::select! {
        sent = tokio::time::timeout(timeout, session.link.send(Bytes::from(line), version)) => sent,
        () = gw.give_up.wait() => {
            return lines(failed(session, &ids, SHUTTING_DOWN, RequestFailure::AnswerLost), false);
        }
    };
    match sent {
        Err(_) => {
            session.telemetry.upstream_error(SERVER, "timeout");
            lines(timed_out(session, &ids, timeout), false)
        }
        Ok(Err(e)) => {
            session
                .telemetry
                .upstream_error(SERVER, upstream_error_kind(&e));
            let mut out = Vec::new();
            if let SendError::Status { body, .. } = &e
                && is_error_response(body)
            {
                out = relay_message(session, body, &mut ids);
            }
            let message = crate::redact::redact_text(&e.to_string()).into_owned();
            tracing::warn!(session = %short(&session.id), "{message}");
            out.extend(failed(session, &ids, &message, e.failure()));
            lines(out, e.is_session_gone())
        }
        Ok(Ok(Reply::Accepted)) if ids.is_empty() => Outcome::Accepted,
        Ok(Ok(Reply::Accepted)) => {
            session.telemetry.upstream_error(SERVER, "answer_lost");
            let message = "The MCP server accepted this request without answering it";
            lines(
                failed(session, &ids, message, RequestFailure::AnswerLost),
                false,
            )
        }
        Ok(Ok(Reply::Json(body))) => {
            let mut out = relay_message(session, &body, &mut ids);
            out.extend(failed(
                session,
                &ids,
                "The MCP server's answer held no response to this request",
                RequestFailure::AnswerLost,
            ));
            lines(out, false)
        }
        Ok(Ok(Reply::Stream(events))) => Outcome::Stream {
            first: Vec::new(),
            relay: StreamRelay {
                events,
                awaiting: ids,
            },
        },
    }
}

fn lines(lines: Vec<Vec<u8>>, session_gone: bool) -> Outcome {
    Outcome::Lines {
        lines,
        session_gone,
    }
}

pub(super) const SHUTTING_DOWN: &str = "intercept is shutting down and stopped waiting for the MCP server's answer; the tool may have run";

/// Where relayed messages go.
#[derive(Debug)]
pub(super) enum PumpTo {
    /// As SSE events, on the client's stream.
    Events(mpsc::Sender<Bytes>),
    /// As bare lines, to be sent together later.
    Lines(mpsc::Sender<Bytes>),
}

impl PumpTo {
    async fn put(&self, line: &[u8], id: Option<&str>) -> bool {
        match self {
            PumpTo::Events(tx) => tx.send(sse_event(None, id, line)).await.is_ok(),
            PumpTo::Lines(tx) => tx.send(Bytes::copy_from_slice(line)).await.is_ok(),
        }
    }
}

/// Relays an upstream event stream to the client until it ends, `stop` fires, the client
/// goes away or (with a `deadline`) the requests it should answer time out. Those still
/// unanswered then get an error. Upstream event ids are passed on, so that a client's
/// `Last-Event-ID` resumes at the server.
pub(super) async fn pump(
    gw: &Gateway,
    session: &Arc<Session>,
    mut relay: StreamRelay,
    to: PumpTo,
    deadline: Option<Instant>,
    stop: &Signal,
) {
    let why = loop {
        let awaiting = !relay.awaiting.is_empty();
        tokio::select! {
            event = relay.events.next() => match event {
                None => break Some((
                    "The MCP server's event stream ended before it answered this request; the tool may have run".to_string(),
                    RequestFailure::AnswerLost,
                )),
                Some(Err(broke)) => break Some((
                    format!("The MCP server's event stream broke ({broke}) before it answered this request; the tool may have run"),
                    RequestFailure::AnswerLost,
                )),
                Some(Ok(event)) => {
                    if !event.is_message() || event.data.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let out = if event.truncated {
                        oversize(session, &event.data, event.len, gw.backend.max_message_bytes, &mut relay.awaiting)
                    } else {
                        relay_message(session, &event.data, &mut relay.awaiting)
                    };
                    let last = out.len().saturating_sub(1);
                    for (i, line) in out.iter().enumerate() {
                        let id = if i == last { event.id.as_deref() } else { None };
                        if !to.put(line, id).await {
                            // The client went away: what it awaited is settled, unheard.
                            let _ = failed(session, &relay.awaiting, "client gone", RequestFailure::AnswerLost);
                            return;
                        }
                    }
                }
            },
            () = sleep_until(deadline), if awaiting => {
                session.telemetry.upstream_error(SERVER, "timeout");
                let timeout = gw.backend.request_timeout;
                for line in timed_out(session, &relay.awaiting, timeout) {
                    let _ = to.put(&line, None).await;
                }
                return;
            }
            () = stop.wait() => break Some((SHUTTING_DOWN.to_string(), RequestFailure::AnswerLost)),
        }
    };
    if let Some((message, failure)) = why {
        for line in failed(session, &relay.awaiting, &message, failure) {
            if !to.put(&line, None).await {
                break;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// One server message (or batch) through the proxy core; returns what goes to the client.
/// The requests it answers come off `awaiting`.
pub(super) fn relay_message(
    session: &Arc<Session>,
    body: &[u8],
    awaiting: &mut Vec<RequestId>,
) -> Vec<Vec<u8>> {
    relay(session, Inbound::Line(&one_line(body)), awaiting)
}

fn relay(
    session: &Arc<Session>,
    message: Inbound<'_>,
    awaiting: &mut Vec<RequestId>,
) -> Vec<Vec<u8>> {
    let mut exchange = Exchange::default();
    session.proxy.server_message(message, &mut exchange);
    awaiting.retain(|id| !exchange.answered.contains(id));
    // The core answers a server request itself (one it could not read).
    for (line, _) in exchange.to_server {
        let session = session.clone();
        let version = session.version();
        tokio::spawn(async move {
            let _ = session
                .link
                .send(Bytes::from(line), version.as_deref())
                .await;
        });
    }
    exchange.to_client
}

fn oversize(
    session: &Arc<Session>,
    prefix: &[u8],
    len: usize,
    max: usize,
    awaiting: &mut Vec<RequestId>,
) -> Vec<Vec<u8>> {
    let message = Inbound::Oversize {
        prefix,
        len,
        limit: max,
    };
    relay(session, message, awaiting)
}

/// The `kind` label of an upstream failure.
fn upstream_error_kind(e: &SendError) -> &'static str {
    if e.is_session_gone() {
        "upstream_gone"
    } else {
        e.failure().as_str()
    }
}

/// Errors for requests that will get no answer, their reservations settled by `failure`.
pub(super) fn failed(
    session: &Session,
    ids: &[RequestId],
    message: &str,
    failure: RequestFailure,
) -> Vec<Vec<u8>> {
    let message = crate::redact::redact_text(message).into_owned();
    let mut exchange = Exchange::default();
    for id in ids {
        let why = Failure::new(failure, message.clone());
        session.proxy.request_failed(id, why, &mut exchange);
    }
    exchange.to_client
}

/// Requests past `--request-timeout`: each gets an error, and the server a cancellation.
fn timed_out(session: &Arc<Session>, ids: &[RequestId], timeout: Duration) -> Vec<Vec<u8>> {
    let message = format!(
        "The MCP server did not answer within {} seconds (--request-timeout); the request was cancelled",
        timeout.as_secs_f64()
    );
    for id in ids {
        let cancel = json!({
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": { "requestId": id.to_value(), "reason": "intercept: no answer within --request-timeout" },
        });
        let session = session.clone();
        let version = session.version();
        tokio::spawn(async move {
            let body = Bytes::from(cancel.to_string());
            let _ = session.link.send(body, version.as_deref()).await;
        });
    }
    failed(session, ids, &message, RequestFailure::TimedOut)
}

/// A JSON-RPC error response that names a request (a server may send one with an HTTP
/// error status).
fn is_error_response(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .is_ok_and(|v| v.get("error").is_some() && v.get("id").is_some_and(|id| !id.is_null()))
}

/// Whether a message is an `initialize` request (which opens a session).
pub(super) fn is_initialize(body: &[u8]) -> Option<Value> {
    memchr::memmem::find(body, b"initialize")?;
    let v: Value = serde_json::from_slice(body).ok()?;
    (v.get("method").and_then(Value::as_str) == Some("initialize"))
        .then(|| v.get("id").cloned().unwrap_or(Value::Null))
}

/// A session id shortened for logs.
pub(super) fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

/// Several messages for one response: one alone, or a batch. A message that is itself a
/// batch (the answers to a batch, or the proxy's own answers to some of its requests) gives
/// its members, so the client gets one flat batch.
pub(super) fn join(lines: &[Vec<u8>]) -> Bytes {
    if let [one] = lines {
        return Bytes::copy_from_slice(one);
    }
    let mut out = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum::<usize>() + 2);
    out.push(b'[');
    for line in lines {
        let trimmed = line.trim_ascii();
        let members = match trimmed
            .strip_prefix(b"[")
            .and_then(|l| l.strip_suffix(b"]"))
        {
            Some(inner) => inner.trim_ascii(),
            None => trimmed,
        };
        if members.is_empty() {
            continue;
        }
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(members);
    }
    out.push(b']');
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_joined_for_one_response_are_one_flat_batch() {
        let lines = vec![
            br#"[{"jsonrpc":"2.0","id":2,"result":{}}]"#.to_vec(),
            br#"[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":3,"result":{}}]"#
                .to_vec(),
            br#"{"jsonrpc":"2.0","id":4,"result":{}}"#.to_vec(),
        ];
        let joined: Value = serde_json::from_slice(&join(&lines)).unwrap();
        let ids: Vec<i64> = joined
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [2, 1, 3, 4]);
        assert_eq!(
            &join(&lines[2..])[..],
            &lines[2][..],
            "one message stays as it is"
        );
    }
}
