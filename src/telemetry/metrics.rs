//! Prometheus metrics, and the small HTTP server that exposes them on `GET /metrics`.
//!
//! Label values come from a closed set (decisions, outcomes, reasons chosen by intercept)
//! or from configuration (server names), never from a client as it is: tool names go
//! through [`super::KnownTools`] first.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;

use super::{CallRecord, Transport};

/// The buckets the MCP semantic conventions advise for operation durations, in seconds.
pub const CALL_DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Policy evaluation takes microseconds; a store round trip pushes it to milliseconds.
const POLICY_DURATION_BUCKETS: [f64; 13] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2,
];

type Labels<const N: usize> = [(&'static str, String); N];
type Histograms<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

/// Every metric intercept keeps, in one registry. Cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Families>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

struct Families {
    registry: Registry,
    tool_calls: Family<Labels<4>, Counter>,
    tool_call_duration: Histograms<3>,
    policy_duration: Histograms<1>,
    sessions_active: Family<Labels<2>, Gauge>,
    sessions_opened: Family<Labels<2>, Counter>,
    sessions_closed: Family<Labels<2>, Counter>,
    sessions_rejected: Family<Labels<2>, Counter>,
    upstream_errors: Family<Labels<2>, Counter>,
    store_errors: Family<Labels<2>, Counter>,
    http_requests: Family<Labels<3>, Counter>,
    http_rejected: Family<Labels<1>, Counter>,
    in_flight: Family<Labels<1>, Gauge>,
    policy_reloads: Family<Labels<2>, Counter>,
}

fn call_histogram() -> Histogram {
    Histogram::new(CALL_DURATION_BUCKETS)
}

fn policy_histogram() -> Histogram {
    Histogram::new(POLICY_DURATION_BUCKETS)
}

fn s(v: &str) -> String {
    v.to_string()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("intercept");
        let f = Families {
            tool_calls: Family::default(),
            tool_call_duration: Family::new_with_constructor(call_histogram),
            policy_duration: Family::new_with_constructor(policy_histogram),
            sessions_active: Family::default(),
            sessions_opened: Family::default(),
            sessions_closed: Family::default(),
            sessions_rejected: Family::default(),
            upstream_errors: Family::default(),
            store_errors: Family::default(),
            http_requests: Family::default(),
            http_rejected: Family::default(),
            in_flight: Family::default(),
            policy_reloads: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "tool_calls",
            "Tool calls by server, tool, decision and outcome",
            f.tool_calls.clone(),
        );
        registry.register_with_unit(
            "tool_call_duration",
            "Time from receiving a tool call to sending its answer or denial",
            Unit::Seconds,
            f.tool_call_duration.clone(),
        );
        registry.register_with_unit(
            "policy_evaluation_duration",
            "Time the policy took to decide a tool call, state store included",
            Unit::Seconds,
            f.policy_duration.clone(),
        );
        registry.register(
            "sessions_active",
            "Client sessions open now",
            f.sessions_active.clone(),
        );
        registry.register(
            "sessions_opened",
            "Client sessions opened",
            f.sessions_opened.clone(),
        );
        registry.register(
            "sessions_closed",
            "Client sessions closed, by reason (delete, idle, shutdown, upstream_gone)",
            f.sessions_closed.clone(),
        );
        registry.register(
            "sessions_rejected",
            "Client sessions refused, by reason",
            f.sessions_rejected.clone(),
        );
        registry.register(
            "upstream_errors",
            "Requests to the server that failed, by kind",
            f.upstream_errors.clone(),
        );
        registry.register(
            "store_errors",
            "State store operations that failed",
            f.store_errors.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by endpoint, method and status",
            f.http_requests.clone(),
        );
        registry.register(
            "http_rejected",
            "HTTP requests refused before reaching a session, by reason",
            f.http_rejected.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Requests awaiting the server's answer",
            f.in_flight.clone(),
        );
        registry.register(
            "policy_reloads",
            "Policy reloads, by result (ok, error)",
            f.policy_reloads.clone(),
        );
        // `_info` is added by the type: intercept_build_info{version="…"} 1.
        registry.register(
            "build",
            "The running intercept",
            Info::new([("version", crate::VERSION)]),
        );
        Metrics(Arc::new(Families { registry, ..f }))
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.0.registry);
        out
    }

    /// `tool` is already the label (see [`super::KnownTools`]).
    pub(super) fn call_finished(&self, call: &CallRecord<'_>, tool: &str) {
        let f = &self.0;
        let decision = call.decision.as_str();
        f.tool_calls
            .get_or_create(&[
                ("server", s(call.server)),
                ("tool", s(tool)),
                ("decision", s(decision)),
                ("outcome", s(call.outcome)),
            ])
            .inc();
        f.tool_call_duration
            .get_or_create(&[
                ("server", s(call.server)),
                ("tool", s(tool)),
                ("decision", s(decision)),
            ])
            .observe(call.duration().as_secs_f64());
    }

    pub(super) fn policy_evaluated(&self, server: &str, took: Duration) {
        self.0
            .policy_duration
            .get_or_create(&[("server", s(server))])
            .observe(took.as_secs_f64());
    }

    pub(super) fn session_opened(&self, server: &str, transport: Transport) {
        let labels = [("server", s(server)), ("transport", s(transport.as_str()))];
        self.0.sessions_opened.get_or_create(&labels).inc();
        self.0.sessions_active.get_or_create(&labels).inc();
    }

    pub(super) fn session_closed(&self, server: &str, transport: Transport, reason: &str) {
        let active = [("server", s(server)), ("transport", s(transport.as_str()))];
        self.0.sessions_active.get_or_create(&active).dec();
        self.0
            .sessions_closed
            .get_or_create(&[("server", s(server)), ("reason", s(reason))])
            .inc();
    }

    pub(super) fn session_rejected(&self, server: &str, reason: &str) {
        self.0
            .sessions_rejected
            .get_or_create(&[("server", s(server)), ("reason", s(reason))])
            .inc();
    }

    pub(super) fn upstream_error(&self, server: &str, kind: &str) {
        self.0
            .upstream_errors
            .get_or_create(&[("server", s(server)), ("kind", s(kind))])
            .inc();
    }

    pub(super) fn store_error(&self, store: &str, op: &str) {
        self.0
            .store_errors
            .get_or_create(&[("store", s(store)), ("op", s(op))])
            .inc();
    }

    pub(super) fn http_request(&self, endpoint: &str, method: &str, status: u16) {
        self.0
            .http_requests
            .get_or_create(&[
                ("endpoint", s(endpoint)),
                ("method", s(method)),
                ("status", status.to_string()),
            ])
            .inc();
    }

    pub(super) fn http_rejected(&self, reason: &str) {
        self.0
            .http_rejected
            .get_or_create(&[("reason", s(reason))])
            .inc();
    }

    pub(super) fn in_flight(&self, server: &str) -> InFlightGuard {
        let gauge = self
            .0
            .in_flight
            .get_or_create_owned(&[("server", s(server))]);
        gauge.inc();
        InFlightGuard(gauge)
    }

    pub(super) fn policy_reloaded(&self, server: &str, result: &str) {
        self.0
            .policy_reloads
            .get_or_create(&[("server", s(server)), ("result", s(result))])
            .inc();
    }
}

/// Takes one off the in-flight gauge when dropped.
#[derive(Debug)]
pub struct InFlightGuard(Gauge);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The metrics listener could not be opened.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot listen for metrics on {addr}: {cause}; choose another --metrics-port (or --metrics-bind)"
)]
pub struct BindError {
    pub addr: SocketAddr,
    pub cause: std::io::Error,
}

/// Opens the metrics listener (port 0 picks a free port: see `local_addr`).
pub async fn bind_metrics(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|cause| BindError { addr, cause })
}

/// A slow or idle scraper may not hold a connection open forever.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers `GET /metrics` on `listener` until `shutdown` resolves; every other path is a
/// 404, every other method on `/metrics` a 405. HTTP/1.1 only, as Prometheus scrapes.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) {
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of fds, most likely: wait a moment rather than spin.
                    tracing::warn!("metrics listener: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let metrics = metrics.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(answer(&req, &metrics)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    // A scrape is one short request: nothing worth waiting for.
    connections.abort_all();
}

fn answer(req: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &'static str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(content_type),
        );
        response
    };
    if req.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: metrics are at /metrics\n".into(),
        );
    }
    if req.method() != Method::GET {
        let mut response = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET /metrics\n".into(),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
        return response;
    }
    reply(
        StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        metrics.encode(),
    )
}
