//! Every refusal of the listener is an HTTP status plus a JSON-RPC error body, with the
//! request's id whenever it could be read, so an MCP client reports it against the right
//! request instead of failing on an opaque status.

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use serde_json::Value;

use super::body::{Body, full};
use crate::proxy::replies::{self, code};

pub(super) type Response = hyper::Response<Body>;

/// `status` with a JSON-RPC error for request `id` (`null` when unknown).
pub(super) fn rpc_error(status: StatusCode, id: &Value, code: i64, message: &str) -> Response {
    let body = serde_json::to_vec(&replies::error(id, code, message, None)).unwrap_or_default();
    json(status, body.into())
}

/// A JSON body with `status`.
pub(super) fn json(status: StatusCode, body: Bytes) -> Response {
    let mut response = hyper::Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A plain-text body with `status` (health endpoints).
pub(super) fn text(status: StatusCode, body: &'static str) -> Response {
    let mut response = hyper::Response::new(full(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The request was refused before its body was read: there is no id to answer.
pub(super) fn refused(status: StatusCode, message: &str) -> Response {
    rpc_error(status, &Value::Null, code::INVALID_REQUEST, message)
}

/// The body is over `--max-message-bytes`. The rest of it is not read, so the connection
/// cannot carry another request.
pub(super) fn too_large(id: &Value, len: Option<u64>, max: usize) -> Response {
    let size = len.map(|n| format!("of {n} bytes ")).unwrap_or_default();
    let mut response = rpc_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        id,
        code::INVALID_REQUEST,
        &format!(
            "Invalid Request: message {size}exceeds the limit of {max} bytes (--max-message-bytes); it was not forwarded"
        ),
    );
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}
