//! MCP-aware message handling, independent of the transport.
//!
//! The transport hands every message it reads to [`Session::client_message`] or
//! [`Session::server_message`], with an [`Outbox`] that takes what goes to either side, and
//! reports what it could not deliver ([`Session::request_failed`], [`Session::expire`],
//! [`Session::close`]). It never reads JSON-RPC itself: the outbox is told which requests a
//! message to the server awaits answers for, and which requests a message to the client
//! answers. Only `tools/call` requests and `tools/list` responses are changed; everything
//! else is forwarded byte for byte, in both directions.

mod answered;
mod calls;
mod client_side;
mod envelope;
mod failure;
#[cfg(test)]
mod fast_path_tests;
pub mod json;
pub mod keys;
mod outbox;
mod parking;
mod pending;
pub mod replies;
mod server_side;
mod session;
#[cfg(test)]
mod tracking_tests;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::clock::SharedClock;
use crate::engine::{Args, Call, Decision, Engine, Verdict};
use crate::state::Reservation;
use answered::AnsweredByProxy;
pub use failure::RequestFailure;
use json::{JsonProblem, Keys};
pub use outbox::{
    Closed, Failure, Inbound, LineBuffers, Negotiated, Outbox, RequestId, Route, Routes,
};
pub use parking::{MemoryParking, RetryParking};
use pending::{CallInfo, IdKey, Pending, PendingTable};
use replies::code;
pub use session::{Session, SessionOptions};

use calls::{CallRequest, Meta, Outcome};
use envelope::{
    Answer, Handled, Read, ResponseEnvelope, lenient_id, near_miss, reply_to_client, request_id,
    to_line,
};

/// How many forwarded requests may await a response at once.
const PENDING_CAPACITY: usize = 10_000;
/// How long a forwarded request may await its response before it is forgotten.
const PENDING_TTL: Duration = Duration::from_secs(6 * 3600);
/// How many forwarded requests may await an answer before further calls are refused
/// (`--max-in-flight`).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
