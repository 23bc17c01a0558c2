//! What the call path hands to the audit log: plain values, cheap to build. Turning them
//! into JSON (hashing the arguments, redacting them) happens on the writer thread.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::engine::OwnedArgs;
use crate::state::Millis;

/// A short string kept inline when it fits (tool names, session ids, client names), so
/// recording one costs the call path no allocation of its own.
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

const INLINE: usize = 46;

impl Text {
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Always valid: copied from a `&str` that fitted whole.
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Heap(s) => s,
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Text(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            Text(Repr::Heap(s.into()))
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        if s.len() <= INLINE {
            Text::from(s.as_str())
        } else {
            Text(Repr::Heap(s.into_boxed_str()))
        }
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A `tools/call` decision.
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// When the decision was made (milliseconds since the epoch).
    pub at: Millis,
    pub session: Option<Text>,
    pub identity: Option<Text>,
    /// `clientInfo.name` of the MCP client.
    pub client: Option<Text>,
    pub tool: Text,
    /// `allow`, `deny`, `require_approval`, `shadow_deny`, …: the verdict's name.
    pub decision: &'static str,
    pub reason: &'static str,
    pub rule: Option<Arc<str>>,
    pub message: Option<Arc<str>>,
    pub retry_after_seconds: Option<u64>,
    /// Why a call that needed counters went through without them (fail-open mode while the
    /// state store was unavailable).
    pub unenforced: Option<Arc<str>>,
    /// How long evaluation took.
    pub latency: Duration,
    /// The call's arguments: always hashed, recorded (redacted) only with `--log-args`.
    /// A copy of what the call path has, a tree or text: parsing, hashing and serialising
    /// happen on the writer's thread.
    pub args: Option<OwnedArgs>,
}

/// How a forwarded call ended.
#[derive(Debug, Clone)]
pub struct ToolResult {
    pub at: Millis,
    pub session: Option<Text>,
    pub identity: Option<Text>,
    pub tool: Text,
    /// `ok`, `is_error`, `error`, `input_required`, …
    pub outcome: &'static str,
    /// What became of the call's counter reservation, when it had one.
    pub reservation: Option<&'static str>,
    /// From forwarding the call to its answer.
    pub duration: Duration,
}

/// One queued event.
#[derive(Debug)]
pub(super) enum Event {
    Call(Box<ToolCall>),
    Result(Box<ToolResult>),
    /// Any other kind, with its fields (null ones are left out).
    Other {
        at: Millis,
        kind: String,
        fields: Map<String, Value>,
    },
}

#[derive(Serialize)]
struct CallBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'a str>,
    tool: &'a str,
    decision: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    /// Denial and fail-open texts may quote a store's or server's error: redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unenforced: Option<Cow<'a, str>>,
    latency_us: f64,
    args_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<Value>,
}

#[derive(Serialize)]
struct ResultBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<&'a str>,
    tool: &'a str,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reservation: Option<&'a str>,
    duration_ms: f64,
}

impl Event {
    pub(super) fn at(&self) -> Millis {
        match self {
            Event::Call(c) => c.at,
            Event::Result(r) => r.at,
            Event::Other { at, .. } => *at,
        }
    }

    pub(super) fn kind(&self) -> &str {
        match self {
            Event::Call(_) => "tool_call",
            Event::Result(_) => "tool_result",
            Event::Other { kind, .. } => kind,
        }
    }

    /// Appends the event's own fields as JSON members (`,"a":1,"b":2`, no braces).
    pub(super) fn write_fields(&self, log_args: bool, out: &mut Vec<u8>) {
        let start = out.len();
        let _ = match self {
            Event::Call(c) => {
                let tree = c.args.as_ref().map(OwnedArgs::to_value);
                let args = tree.as_deref();
                serde_json::to_writer(
                    &mut *out,
                    &CallBody {
                        session: c.session.as_ref().map(Text::as_str),
                        identity: c.identity.as_ref().map(Text::as_str),
                        client: c.client.as_ref().map(Text::as_str),
                        tool: c.tool.as_str(),
                        decision: c.decision,
                        reason: c.reason,
                        rule: c.rule.as_deref(),
                        message: c.message.as_deref().map(crate::redact::redact_text),
                        retry_after_seconds: c.retry_after_seconds,
                        unenforced: c.unenforced.as_deref().map(crate::redact::redact_text),
                        latency_us: round(c.latency.as_secs_f64() * 1e6, 10.0),
                        args_hash: super::args_hash(args),
                        args: log_args
                            .then(|| crate::redact::redact_arguments(args.unwrap_or(&Value::Null))),
                    },
                )
            }
            Event::Result(r) => serde_json::to_writer(
                &mut *out,
                &ResultBody {
                    session: r.session.as_ref().map(Text::as_str),
                    identity: r.identity.as_ref().map(Text::as_str),
                    tool: r.tool.as_str(),
                    outcome: r.outcome,
                    reservation: r.reservation,
                    duration_ms: round(r.duration.as_secs_f64() * 1e3, 1000.0),
                },
            ),
            // Start-up and reload events quote command lines, URLs and policy errors.
            Event::Other { fields, .. } => {
                serde_json::to_writer(&mut *out, &crate::redact::redact_string_fields(fields))
            }
        };
        // `{...}` → `,...`; an empty object (or a failure) adds nothing.
        if out.len() > start + 2 && out[start] == b'{' {
            out[start] = b',';
            out.pop();
        } else {
            out.truncate(start);
        }
    }
}

/// Rounds to 1/`per` (latencies to 0.1 µs, durations to 1 µs): finer digits are noise.
fn round(v: f64, per: f64) -> f64 {
    (v * per).round() / per
}
