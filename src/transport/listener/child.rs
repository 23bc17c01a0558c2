//! Requests of sessions served by a stdio server of their own (`-- <command>`): the child
//! session routes the server's messages to the session's streams itself, so a POST gets its
//! answer as JSON, or as an event stream when the server sends something first.

use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::Value;
use tokio::sync::mpsc;

use super::Gateway;
use super::body::{empty, event_stream, sse_event};
use super::errors::{Response, json, rpc_error};
use super::sessions::{Busy, Session};
use super::streamable::{event_response, set_session_header, unknown_session};
use crate::gateway::child_session::{ChildSession, Events, PostReply};
use crate::proxy::replies::code;

/// POST to a child's session; `created` when this request opened it (initialize).
pub(super) async fn post(
    gw: &Arc<Gateway>,
    session: &Arc<Session>,
    child: &Arc<ChildSession>,
    body: &[u8],
    created: bool,
    busy: Busy,
) -> Response {
    if child.is_gone() {
        gw.close_session(&session.id, "exited", "upstream_gone");
        return unknown_session(body);
    }
    let reply = child.post(body).await;
    if created
        && let PostReply::Json(message) = &reply
        && !has_result(message)
    {
        // initialize failed: there is no session to report.
        gw.close_session(&session.id, "refused initialize", "upstream_gone");
        return json(StatusCode::OK, Bytes::from(message.clone()));
    }
    let mut response = respond(reply, busy);
    if created {
        set_session_header(&mut response, &session.id);
    }
    response
}

/// The HTTP response to a POST a child (or the stateless pool) handled.
/// `busy` is held until the reply is sent (a session is not idle meanwhile).
pub(super) fn respond(reply: PostReply, busy: impl Send + 'static) -> Response {
    match reply {
        PostReply::Accepted => {
            let mut r = hyper::Response::new(empty());
            *r.status_mut() = StatusCode::ACCEPTED;
            r
        }
        PostReply::Json(message) => json(StatusCode::OK, Bytes::from(message)),
        PostReply::Stream(events) => {
            let (tx, body) = event_stream();
            tokio::spawn(relay(events, tx, busy));
            event_response(body)
        }
    }
}

/// GET: what the server sends that belongs to no request.
pub(super) fn get(child: &Arc<ChildSession>, busy: Busy) -> Response {
    match child.listen() {
        Some(events) => {
            let (tx, body) = event_stream();
            tokio::spawn(relay(events, tx, busy));
            event_response(body)
        }
        None => rpc_error(
            StatusCode::CONFLICT,
            &Value::Null,
            code::INVALID_REQUEST,
            "This session already has a stream open for server messages (GET); close it first",
        ),
    }
}

/// The legacy transport's one stream: everything for the session.
pub(super) fn legacy_stream(child: &Arc<ChildSession>, stream: mpsc::Sender<Bytes>, busy: Busy) {
    if let Some(events) = child.listen() {
        tokio::spawn(relay(events, stream, busy));
    }
}

/// Passes a child's messages to an event stream until either ends; the session stays busy
/// (not idle) meanwhile.
async fn relay(mut events: Events, to: mpsc::Sender<Bytes>, _busy: impl Send) {
    while let Some(event) = events.next().await {
        if to
            .send(sse_event(None, None, &event.message))
            .await
            .is_err()
        {
            return;
        }
    }
}

fn has_result(message: &[u8]) -> bool {
    serde_json::from_slice::<Value>(message).is_ok_and(|v| v.get("result").is_some())
}
