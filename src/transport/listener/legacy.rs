//! The legacy HTTP+SSE transport (protocol 2024-11-05): `GET /sse` opens a session and its
//! one event stream, whose first event names where to POST; `POST /message?sessionId=…`
//! answers 202 at once, and everything for the session comes on that stream.

use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::Value;
use tokio::time::Instant;

use super::Gateway;
use super::body::{empty, event_stream, sse_event};
use super::errors::{Response, rpc_error};
use super::exchange::{self, Outcome, PumpTo, StreamRelay, short};
use super::sessions::Session;
use super::streamable::event_response;
use crate::proxy::replies::code;

/// GET /sse
pub(super) async fn open(gw: &Arc<Gateway>) -> Response {
    let (tx, body) = event_stream();
    let session = match gw.open_session(Some(tx.clone())) {
        Ok(s) => s,
        Err(full) => return full.response(&Value::Null),
    };
    let endpoint = format!("message?sessionId={}", session.id);
    let _ = tx.try_send(sse_event(Some("endpoint"), None, endpoint.as_bytes()));
    if let Some(child) = session.link.child() {
        super::child::legacy_stream(child, tx.clone(), session.enter());
    }
    let busy = session.enter();
    let gw = gw.clone();
    tokio::spawn(async move {
        let _busy = busy;
        tokio::select! {
            () = tx.closed() => {}
            () = gw.stopping.wait() => {}
        }
        drop(tx);
        tracing::debug!(session = %short(&session.id), "legacy event stream closed");
        if gw.sessions.remove(&session.id).is_some() {
            session.close("closed the session", Some("delete")).await;
        }
    });
    event_response(body)
}

/// POST /message?sessionId=…
pub(super) async fn message(gw: &Arc<Gateway>, query: Option<&str>, body: Bytes) -> Response {
    let id = query.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("sessionId="))
            .map(str::to_string)
    });
    let Some(session) = id.as_deref().and_then(|id| gw.sessions.get(id)) else {
        return rpc_error(
            StatusCode::NOT_FOUND,
            &Value::Null,
            code::INVALID_REQUEST,
            "Session not found: open a new one with GET /sse",
        );
    };
    let Some(stream) = session.legacy_stream() else {
        return rpc_error(
            StatusCode::NOT_FOUND,
            &Value::Null,
            code::INVALID_REQUEST,
            "Session not found: open a new one with GET /sse",
        );
    };
    let busy = session.enter();
    if let Some(child) = session.link.child() {
        // Answers go on the session's stream; awaited here, so messages keep their order.
        let _ = child.post(&body).await;
        drop(busy);
        let mut r = hyper::Response::new(empty());
        *r.status_mut() = StatusCode::ACCEPTED;
        return r;
    }
    let gw = gw.clone();
    tokio::spawn(async move {
        let _busy = busy;
        let initialize = exchange::is_initialize(&exchange::one_line(&body)).is_some();
        let outcome = exchange::client_message(&gw, &session, &body, None).await;
        let mut opened = false;
        match outcome {
            Outcome::Accepted => {}
            Outcome::Lines { lines, .. } => {
                opened = initialize && lines.iter().any(|l| has_result(l));
                for line in lines {
                    if stream.send(sse_event(None, None, &line)).await.is_err() {
                        return;
                    }
                }
            }
            Outcome::Stream { first, relay } => {
                for line in first {
                    if stream.send(sse_event(None, None, &line)).await.is_err() {
                        return;
                    }
                }
                let deadline = Instant::now() + gw.backend.request_timeout;
                exchange::pump(
                    &gw,
                    &session,
                    relay,
                    PumpTo::Events(stream.clone()),
                    Some(deadline),
                    &gw.give_up,
                )
                .await;
                opened = initialize;
            }
        }
        if opened {
            listen(gw, session, stream).await;
        }
    });
    let mut r = hyper::Response::new(empty());
    *r.status_mut() = StatusCode::ACCEPTED;
    r
}

/// After initialize: what the server sends on its own goes on the session's stream too.
async fn listen(gw: Arc<Gateway>, session: Arc<Session>, stream: tokio::sync::mpsc::Sender<Bytes>) {
    let version = session.version();
    match session.link.listen(None, version.as_deref()).await {
        Ok(Some(events)) => {
            let relay = StreamRelay {
                events,
                awaiting: Vec::new(),
            };
            exchange::pump(
                &gw,
                &session,
                relay,
                PumpTo::Events(stream),
                None,
                &gw.stopping,
            )
            .await;
        }
        Ok(None) => {}
        Err(e) => tracing::debug!(session = %short(&session.id), "no server stream: {e}"),
    }
}

fn has_result(line: &[u8]) -> bool {
    serde_json::from_slice::<Value>(line).is_ok_and(|v| v.get("result").is_some())
}
