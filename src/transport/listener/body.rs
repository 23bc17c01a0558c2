//! Response bodies: whole ones, and event streams written one event per frame, so that
//! each event reaches the client as soon as it is sent.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use serde_json::Value;
use tokio::sync::mpsc;

pub(super) type Body = BoxBody<Bytes, Infallible>;

pub(super) fn full(bytes: Bytes) -> Body {
    Full::new(bytes).boxed()
}

pub(super) fn empty() -> Body {
    full(Bytes::new())
}

/// How many events may wait for a slow reader before the writer waits too.
const EVENT_BUFFER: usize = 256;

/// An event stream: what is sent on the returned sender goes out as it comes; the stream
/// ends when every sender is dropped.
pub(super) fn event_stream() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel(EVENT_BUFFER);
    (tx, EventBody { rx }.boxed())
}

struct EventBody {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// One SSE event: `data` is a single line (a compact JSON message).
pub(super) fn sse_event(event: Option<&str>, id: Option<&str>, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 48);
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.unwrap_or("message").as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    out.freeze()
}

/// Why a request body was not read whole.
#[derive(Debug)]
pub(super) enum BodyError {
    /// Over the limit; `id` is the request's id, read from the first bytes.
    TooLarge { id: Value, len: Option<u64> },
    /// The client did not send it within `--body-read-timeout`.
    Timeout,
    /// The connection broke.
    Broken,
}

/// How much of an over-long body is read to find its id.
const ID_PREFIX: usize = 64 * 1024;

/// Reads a request body of at most `max` bytes within `timeout`. A declared length over
/// the limit is refused after reading only enough to find the id.
pub(super) async fn read(
    mut body: Incoming,
    declared: Option<u64>,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    let over = declared.is_some_and(|n| n > max as u64);
    let read = async {
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Err(BodyError::Broken);
            };
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
            }
            if over && buf.len() >= ID_PREFIX.min(max) {
                break;
            }
            if buf.len() > max {
                return Err(too_large(&buf, None));
            }
        }
        if over {
            return Err(too_large(&buf, declared));
        }
        Ok(buf.freeze())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) if over => Err(BodyError::TooLarge {
            id: Value::Null,
            len: declared,
        }),
        Err(_) => Err(BodyError::Timeout),
    }
}

fn too_large(prefix: &[u8], len: Option<u64>) -> BodyError {
    let id = crate::proxy::json::top_level_id(&prefix[..prefix.len().min(ID_PREFIX)])
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    BodyError::TooLarge { id, len }
}
