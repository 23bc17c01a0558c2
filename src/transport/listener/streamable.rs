//! Streamable HTTP: POST a message, GET the server's own stream, DELETE the session.

use std::sync::Arc;

use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{HeaderMap, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use super::Gateway;
use super::body::{Body, empty, event_stream, sse_event};
use super::errors::{Response, json, rpc_error};
use super::exchange::{self, Outcome, PumpTo, StreamRelay, short};
use super::sessions::{Busy, Session};
use crate::gateway::standard_headers::{self, HEADER_MISMATCH, StandardHeaders};
use crate::proxy::replies::code;
use crate::upstream::http::{SESSION_HEADER, VERSION_HEADER};

const LAST_EVENT_ID: &str = "last-event-id";

/// The protocol revisions a client may name in `MCP-Protocol-Version`.
const KNOWN_REVISIONS: [&str; 5] = [
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// POST: one message (or batch); `initialize` without a session id opens a session.
pub(super) async fn post(gw: &Arc<Gateway>, headers: &HeaderMap, body: &[u8]) -> Response {
    let version = header(headers, VERSION_HEADER).map(str::to_string);
    if let Some(v) = version.as_deref()
        && !KNOWN_REVISIONS.contains(&v)
    {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &first_id(body),
            code::INVALID_REQUEST,
            &format!(
                "Bad Request: unsupported MCP-Protocol-Version \"{v}\" (supported: {})",
                KNOWN_REVISIONS.join(", ")
            ),
        );
    }
    // A balancer in front may have routed on these headers: they must say what the body says.
    let mirrored = StandardHeaders {
        protocol_version: version.as_deref(),
        method: header(headers, "mcp-method"),
        name: header(headers, "mcp-name"),
    };
    if let Err(mismatch) = standard_headers::check(mirrored, body) {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &first_id(body),
            HEADER_MISMATCH,
            &format!("Header mismatch: {mismatch}"),
        );
    }
    let stateless = version
        .as_deref()
        .is_some_and(standard_headers::is_stateless)
        || standard_headers::body_revision(body)
            .is_some_and(|v| standard_headers::is_stateless(&v));
    if stateless && header(headers, SESSION_HEADER).is_none() {
        return super::stateless::post(gw, body, version.as_deref()).await;
    }
    let (session, created) = match header(headers, SESSION_HEADER) {
        Some(id) => match gw.session(id) {
            Some(s) => (s, false),
            None => return unknown_session(body),
        },
        None => match exchange::is_initialize(&exchange::one_line(body)) {
            Some(id) => match gw.open_session(None) {
                Ok(s) => (s, true),
                Err(full) => return full.response(&id),
            },
            None => {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    &first_id(body),
                    code::INVALID_REQUEST,
                    "Bad Request: no Mcp-Session-Id header; a session starts with an initialize request",
                );
            }
        },
    };
    let busy = session.enter();
    session.set_version(version.as_deref());
    if let Some(child) = session.link.child() {
        return super::child::post(gw, &session, child, body, created, busy).await;
    }
    let version = session.version();
    let outcome = exchange::client_message(gw, &session, body, version.as_deref()).await;
    respond(gw, &session, outcome, created, busy)
}

/// The HTTP response to a POST whose message went to an upstream reached by URL.
pub(super) fn respond(
    gw: &Arc<Gateway>,
    session: &Arc<Session>,
    outcome: Outcome,
    created: bool,
    busy: Busy,
) -> Response {
    let mut response = match outcome {
        Outcome::Accepted => {
            let mut r = hyper::Response::new(empty());
            *r.status_mut() = StatusCode::ACCEPTED;
            r
        }
        Outcome::Lines {
            lines,
            session_gone,
        } => {
            if session_gone || (created && !initialized(&lines)) {
                // No session to report: the client starts again.
                gw.close_session(&session.id, "closed the session", "upstream_gone");
                let status = if session_gone {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::OK
                };
                return json(status, exchange::join(&lines));
            }
            json(StatusCode::OK, exchange::join(&lines))
        }
        Outcome::Stream { first, relay } => {
            let (tx, body) = event_stream();
            for line in &first {
                let _ = tx.try_send(sse_event(None, None, line));
            }
            let (gw, session) = (gw.clone(), session.clone());
            let deadline = Instant::now() + gw.backend.request_timeout;
            tokio::spawn(async move {
                let _busy = busy;
                exchange::pump(
                    &gw,
                    &session,
                    relay,
                    PumpTo::Events(tx),
                    Some(deadline),
                    &gw.give_up,
                )
                .await;
            });
            event_response(body)
        }
    };
    if created {
        set_session_header(&mut response, &session.id);
        gw.publish(session);
    }
    response
}

/// The initialize request was answered with a result, so the session is open.
fn initialized(lines: &[Vec<u8>]) -> bool {
    lines
        .iter()
        .any(|l| serde_json::from_slice::<Value>(l).is_ok_and(|v| v.get("result").is_some()))
}

/// GET: the server's stream of messages it sends on its own.
pub(super) async fn get(gw: &Arc<Gateway>, headers: &HeaderMap) -> Response {
    let Some(id) = header(headers, SESSION_HEADER) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            code::INVALID_REQUEST,
            "Bad Request: no Mcp-Session-Id header",
        );
    };
    let Some(session) = gw.session(id) else {
        return unknown_session(b"");
    };
    let busy = session.enter();
    session.set_version(header(headers, VERSION_HEADER));
    if let Some(child) = session.link.child() {
        return super::child::get(child, busy);
    }
    let version = session.version();
    let last = header(headers, LAST_EVENT_ID);
    match session.link.listen(last, version.as_deref()).await {
        Ok(Some(events)) => {
            let (tx, body) = event_stream();
            let (gw, session) = (gw.clone(), session.clone());
            tokio::spawn(async move {
                let _busy = busy;
                let relay = StreamRelay {
                    events,
                    awaiting: Vec::new(),
                };
                exchange::pump(&gw, &session, relay, PumpTo::Events(tx), None, &gw.stopping).await;
            });
            event_response(body)
        }
        Ok(None) => rpc_error(
            StatusCode::METHOD_NOT_ALLOWED,
            &Value::Null,
            code::INVALID_REQUEST,
            "The MCP server offers no stream of server-initiated messages",
        ),
        Err(e) => {
            let message = crate::redact::redact_text(&e.to_string()).into_owned();
            tracing::warn!(session = %short(&session.id), "GET stream: {message}");
            let status = if e.is_session_gone() {
                gw.close_session(&session.id, "closed the session", "upstream_gone");
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_GATEWAY
            };
            rpc_error(status, &Value::Null, code::INTERNAL_ERROR, &message)
        }
    }
}

/// DELETE: ends the session on both sides.
pub(super) async fn delete(gw: &Arc<Gateway>, headers: &HeaderMap) -> Response {
    let Some(id) = header(headers, SESSION_HEADER) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            code::INVALID_REQUEST,
            "Bad Request: no Mcp-Session-Id header",
        );
    };
    // A session another instance opened is taken up, so that it can be ended here.
    let _ = gw.session(id);
    gw.forget(id);
    match gw.sessions.remove(id) {
        Some(session) => {
            session.close("closed the session", Some("delete")).await;
            tracing::debug!(session = %short(id), "session closed by the client");
            hyper::Response::new(empty())
        }
        None => unknown_session(b""),
    }
}

/// 404: the client must start a new session.
pub(super) fn unknown_session(body: &[u8]) -> Response {
    rpc_error(
        StatusCode::NOT_FOUND,
        &first_id(body),
        code::INVALID_REQUEST,
        "Session not found: it was closed or expired; start a new one with initialize",
    )
}

/// The id of a message, or of a batch's first request, when it can be read.
fn first_id(body: &[u8]) -> Value {
    crate::proxy::json::top_level_id(body)
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

pub(super) fn event_response(body: Body) -> Response {
    let mut r = hyper::Response::new(body);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub(super) fn set_session_header(response: &mut Response, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        response.headers_mut().insert(SESSION_HEADER, v);
    }
}
