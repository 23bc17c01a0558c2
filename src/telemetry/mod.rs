//! What intercept reports about its traffic, beside the audit log: Prometheus metrics
//! ([`metrics`]) and OpenTelemetry spans and metrics sent over OTLP ([`otel`]).
//!
//! The transports and the proxy hold one [`Telemetry`] and tell it what happened (a call
//! finished, a session opened, an upstream failed). When nothing is configured it holds
//! nothing, and each report costs one branch. Reports never block and never fail: a
//! collector that is down loses data, not calls.

pub mod known_tools;
pub mod metrics;
pub mod otel;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::engine::Verdict;

pub use known_tools::{KnownTools, OTHER};
pub use metrics::{BindError, Metrics, bind_metrics, serve_metrics};
pub use otel::{Otel, OtelConfig, OtelError};

/// How the client reached intercept (the span's `network.transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// stdin/stdout of the intercept process.
    Stdio,
    /// Streamable HTTP or the legacy HTTP+SSE transport.
    Http,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
        }
    }
}

/// One finished `tools/call`: decided, and either denied or forwarded and answered (or
/// failed). Borrowed values only, so reporting a call copies nothing it does not keep.
#[derive(Debug, Clone)]
pub struct CallRecord<'a> {
    /// The server's name in a gateway file, or `default` for a single server.
    pub server: &'a str,
    /// The JSON-RPC method: `tools/call`.
    pub method: &'a str,
    pub tool: &'a str,
    pub decision: Verdict,
    /// The rule that decided, if one did.
    pub rule: Option<&'a str>,
    /// The engine's reason code (`rate_limit`, `hidden`, …) for a denial.
    pub reason: Option<&'a str>,
    /// How the call ended, as the audit log names it: `ok`, `is_error`, `error`, `timeout`,
    /// `answer_lost`, …, or `denied` for a call that was not forwarded.
    pub outcome: &'a str,
    /// What became of the call's counter reservation (`committed`, `rolled_back`, …).
    pub reservation: Option<&'a str>,
    /// The JSON-RPC error code of the answer, when it was an error.
    pub error_code: Option<i64>,
    /// The JSON-RPC error's message (the span's status description).
    pub error_message: Option<&'a str>,
    /// The answer the client got had `isError: true`: the tool ran and failed, or intercept
    /// denied the call (a denial is a tool result with `isError: true`).
    pub is_error: bool,
    /// When the call was received, on the monotonic clock and on the wall clock.
    pub started: Instant,
    pub started_at: SystemTime,
    /// When its answer (or denial) was sent.
    pub ended: Instant,
    pub session_id: Option<&'a str>,
    /// The JSON-RPC id, as text (`7`, `"abc"`).
    pub request_id: Option<&'a str>,
    /// The negotiated MCP protocol version.
    pub protocol_version: Option<&'a str>,
    /// The client's address, for HTTP.
    pub client: Option<SocketAddr>,
    pub transport: Transport,
    /// `params._meta.traceparent` and `tracestate` of the request (W3C trace context).
    pub traceparent: Option<&'a str>,
    pub tracestate: Option<&'a str>,
    /// The call's arguments and result: exported (redacted) only with `--log-args`.
    pub arguments: Option<&'a Value>,
    pub result: Option<&'a Value>,
}

impl CallRecord<'_> {
    /// From receipt to answer.
    pub fn duration(&self) -> Duration {
        self.ended.saturating_duration_since(self.started)
    }

    /// The wall-clock time the call ended.
    pub fn ended_at(&self) -> SystemTime {
        self.started_at + self.duration()
    }

    /// The low-cardinality `error.type` of the semantic conventions: the JSON-RPC code,
    /// `tool_error` for `isError`, the outcome of a call that got no answer (or `error`
    /// for a JSON-RPC error whose code was not read), or none.
    pub fn error_type(&self) -> Option<std::borrow::Cow<'static, str>> {
        if let Some(code) = self.error_code {
            return Some(code.to_string().into());
        }
        if self.is_error {
            return Some("tool_error".into());
        }
        match self.outcome {
            "ok" | "denied" | "input_required" | "is_error" => None,
            other => Some(other.to_string().into()),
        }
    }
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(transparent)]
    Otel(#[from] OtelError),
}

/// What to report to.
#[derive(Debug, Default)]
pub struct TelemetryOptions {
    /// Keep Prometheus metrics (served by [`serve_metrics`]).
    pub prometheus: bool,
    /// Export over OTLP.
    pub otel: Option<OtelConfig>,
    /// Tool arguments and results may be exported (redacted): `--log-args`.
    pub log_args: bool,
}

/// The handle every part of intercept reports to. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    metrics: Option<Metrics>,
    otel: Option<Otel>,
    known_tools: KnownTools,
    log_args: bool,
}

impl Telemetry {
    /// Reports nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Sets up what `options` asks for; with nothing asked, the same as [`Self::disabled`].
    pub fn new(options: TelemetryOptions) -> Result<Self, TelemetryError> {
        if !options.prometheus && options.otel.is_none() {
            return Ok(Self::disabled());
        }
        let otel = options.otel.map(Otel::start).transpose()?;
        Ok(Self {
            inner: Some(Arc::new(Inner {
                metrics: options.prometheus.then(Metrics::new),
                otel,
                known_tools: KnownTools::default(),
                log_args: options.log_args,
            })),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Whether tool arguments may be exported (`--log-args`).
    pub fn logs_args(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.log_args)
    }

    /// The Prometheus metrics, when kept.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.inner.as_ref()?.metrics.as_ref()
    }

    /// The tool names allowed as labels (see [`KnownTools`]), when anything is reported.
    pub fn known_tools(&self) -> Option<&KnownTools> {
        self.inner.as_ref().map(|i| &i.known_tools)
    }

    pub fn call_finished(&self, call: &CallRecord<'_>) {
        let Some(inner) = &self.inner else { return };
        let tool = inner.known_tools.label(call.server, call.tool);
        if let Some(m) = &inner.metrics {
            m.call_finished(call, tool);
        }
        if let Some(o) = &inner.otel {
            o.call_finished(call, tool, inner.log_args);
        }
    }

    /// How long the policy took to decide one call.
    pub fn policy_evaluated(&self, server: &str, took: Duration) {
        if let Some(m) = self.inner.as_ref().and_then(|i| i.metrics.as_ref()) {
            m.policy_evaluated(server, took);
        }
    }

    pub fn session_opened(&self, server: &str, transport: Transport) {
        if let Some(m) = self.inner.as_ref().and_then(|i| i.metrics.as_ref()) {
            m.session_opened(server, transport);
        }
    }

    /// A session ended: `reason` is `delete`, `idle`, `shutdown` or `upstream_gone`;
    /// `lasted` is its whole life.
    pub fn session_closed(
        &self,
        server: &str,
        transport: Transport,
        reason: &str,
        lasted: Duration,
    ) {
        let Some(inner) = &self.inner else { return };
        if let Some(m) = &inner.metrics {
            m.session_closed(server, transport, reason);
        }
        if let Some(o) = &inner.otel {
            o.session_closed(transport, lasted);
        }
    }

    /// A session was refused (`max_sessions`, …).
    pub fn session_rejected(&self, server: &str, reason: &str) {
        if let Some(m) = self.inner.as_ref().and_then(|i| i.metrics.as_ref()) {
            m.session_rejected(server, reason);
        }
    }

    /// A request to the server failed: `kind` is `not_sent`, `refused`, `timeout`,
    /// `answer_lost` or `upstream_gone`.
    pub fn upstream_error(&self, server: &str, kind: &str) {
        if let Some(m) = self.inner.as_ref().and_then(|i| i.metrics.as_ref()) {
            m.upstream_error(server, kind);
        }
    }

    /// The state store failed: `store` is `sqlite`, `redis`, …; `op` is `reserve`,
    /// `commit`, `rollback`, `read` or `check`.
    pub fn store_error(&self, store: &str, op: &str) {
        if let Some(m) = self.inner.as_ref().and_then(|i| i.metrics.as_ref()) {
            m.store_error(store, op);
        }
    }

    /// An HTTP request was answered.
    pub fn http_request(&self, endpoint: &str, method: &str, status: u16) {
        if let Some(m) = self.inner.as_ref().and_then(|i| i.metrics.as_ref()) {
            m.http_request(endpoint, method, status);
        }
    }

    /// An HTTP request was refused at the edge: `origin`, `host`, `too_large`,
    /// `header_timeout`, `body_timeout` or `overloaded`.
    pub fn http_rejected(&self, reason: &str) {
        if let Some(m) = self.inner.as_ref().and_then(|i| i.metrics.as_ref()) {
            m.http_rejected(reason);
        }
    }

    /// A request to `server` is awaiting its answer until the guard is dropped.
    pub fn in_flight(&self, server: &str) -> InFlight {
        InFlight {
            _guard: self
                .inner
                .as_ref()
                .and_then(|i| i.metrics.as_ref())
                .map(|m| m.in_flight(server)),
        }
    }

    /// A policy reload was tried: `result` is `ok` or `error`.
    pub fn policy_reloaded(&self, server: &str, result: &str) {
        if let Some(m) = self.inner.as_ref().and_then(|i| i.metrics.as_ref()) {
            m.policy_reloaded(server, result);
        }
    }

    /// Sends what is still buffered and stops the exporters. Blocks for up to a few
    /// seconds when a collector is slow: call it off the async threads (see
    /// [`Self::shutdown`]).
    pub fn shutdown_blocking(&self) {
        if let Some(o) = self.inner.as_ref().and_then(|i| i.otel.as_ref()) {
            o.shutdown();
        }
    }

    /// [`Self::shutdown_blocking`] on a blocking thread.
    pub async fn shutdown(&self) {
        if self.inner.as_ref().is_some_and(|i| i.otel.is_some()) {
            let this = self.clone();
            let _ = tokio::task::spawn_blocking(move || this.shutdown_blocking()).await;
        }
    }
}

/// Counts one request in `intercept_in_flight_requests` while it lives.
#[derive(Debug)]
pub struct InFlight {
    _guard: Option<metrics::InFlightGuard>,
}
