//! OpenTelemetry export over OTLP (http/protobuf): one SERVER span per `tools/call`, and the
//! `mcp.server.operation.duration` and `mcp.server.session.duration` histograms, named and
//! attributed as the MCP semantic conventions of OpenTelemetry say.
//!
//! Configured by the standard environment variables ([`OtelConfig::from_env`]). The SDK
//! batches and sends on threads of its own with a blocking HTTP client, so a slow collector
//! never holds up a call, and no gRPC stack is needed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use super::metrics::CALL_DURATION_BUCKETS;
use super::{CallRecord, Transport};

const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
const METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
const PROTOCOLS: [&str; 3] = [
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
];
const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
const SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
const SDK_DISABLED: &str = "OTEL_SDK_DISABLED";

/// The only protocol intercept speaks to a collector.
const HTTP_PROTOBUF: &str = "http/protobuf";

/// Where and how to export, resolved from the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtelConfig {
    /// Full URL spans are posted to (`…/v1/traces`), or none to send no spans.
    pub traces_endpoint: Option<String>,
    /// Full URL metrics are posted to (`…/v1/metrics`), or none to send no metrics.
    pub metrics_endpoint: Option<String>,
    /// `service.name` of the resource.
    pub service_name: String,
    /// Extra request headers (`OTEL_EXPORTER_OTLP_HEADERS`: `key=value,key2=value2`).
    pub headers: Vec<(String, String)>,
    /// How often metrics are sent (the SDK's `OTEL_METRIC_EXPORT_INTERVAL` otherwise).
    pub metrics_interval: Option<Duration>,
}

/// The OTLP configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    #[error(
        "{var}={value} is not supported: intercept exports OTLP over http/protobuf only; set {var}=http/protobuf (or unset it) and point the endpoint at the collector's HTTP port (usually 4318)"
    )]
    Protocol { var: &'static str, value: String },
    #[error("{var}=\"{value}\" is not a URL: use e.g. http://localhost:4318 (or https://…)")]
    Endpoint { var: &'static str, value: String },
    #[error("{HEADERS} has an entry without \"=\": \"{entry}\"; use key=value,key2=value2")]
    Header { entry: String },
    #[error("cannot set up the OTLP {signal} exporter: {cause}")]
    Exporter { signal: &'static str, cause: String },
}

impl OtelConfig {
    /// Reads the standard `OTEL_*` variables. `None` when no endpoint is set (or
    /// `OTEL_SDK_DISABLED=true`): nothing is exported.
    pub fn from_env() -> Result<Option<Self>, OtelError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The same, reading variables through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, OtelError> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if get(SDK_DISABLED).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let base = get(ENDPOINT);
        let traces = get(TRACES_ENDPOINT);
        let metrics = get(METRICS_ENDPOINT);
        if base.is_none() && traces.is_none() && metrics.is_none() {
            return Ok(None);
        }
        for var in PROTOCOLS {
            if let Some(value) = get(var).filter(|v| v != HTTP_PROTOBUF) {
                return Err(OtelError::Protocol { var, value });
            }
        }
        for (var, value) in [
            (ENDPOINT, &base),
            (TRACES_ENDPOINT, &traces),
            (METRICS_ENDPOINT, &metrics),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !is_http_url(v)) {
                return Err(OtelError::Endpoint {
                    var,
                    value: crate::redact::redact_text(value).into_owned(),
                });
            }
        }
        // As the specification says: a signal's own variable is the whole URL; the
        // general one is a base that the signal's path is added to.
        let with_path = |path: &str| {
            base.as_deref()
                .map(|b| format!("{}/{path}", b.trim_end_matches('/')))
        };
        Ok(Some(OtelConfig {
            traces_endpoint: traces.or_else(|| with_path("v1/traces")),
            metrics_endpoint: metrics.or_else(|| with_path("v1/metrics")),
            service_name: get(SERVICE_NAME).unwrap_or_else(|| "intercept".into()),
            headers: get(HEADERS)
                .map(|h| parse_headers(&h))
                .transpose()?
                .unwrap_or_default(),
            metrics_interval: None,
        }))
    }
}

fn is_http_url(v: &str) -> bool {
    (v.starts_with("http://") || v.starts_with("https://")) && v.parse::<hyper::Uri>().is_ok()
}

/// `key=value,key2=value2`, values percent-decoded (the W3C baggage format the
/// specification uses).
fn parse_headers(text: &str) -> Result<Vec<(String, String)>, OtelError> {
    text.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (k, v) = entry.split_once('=').ok_or_else(|| OtelError::Header {
                entry: entry.split('=').next().unwrap_or_default().to_string(),
            })?;
            Ok((k.trim().to_string(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|&b| hex(b)),
            bytes.get(i + 2).and_then(|&b| hex(b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The running exporters.
#[derive(Debug)]
pub struct Otel {
    tracer: Option<(SdkTracerProvider, SdkTracer)>,
    meters: Option<Meters>,
}

#[derive(Debug)]
struct Meters {
    provider: SdkMeterProvider,
    operation: Histogram<f64>,
    session: Histogram<f64>,
}

/// Session durations: from seconds to days.
const SESSION_DURATION_BUCKETS: [f64; 12] = [
    1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0, 43200.0, 86400.0,
];

impl Otel {
    /// Starts the exporters `config` asks for.
    pub fn start(config: OtelConfig) -> Result<Self, OtelError> {
        // The HTTP client is built without a TLS provider of its own: use the one the
        // rest of intercept uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(KeyValue::new("service.version", crate::VERSION))
            .build();
        let headers: HashMap<String, String> = config.headers.iter().cloned().collect();
        let tracer = match &config.traces_endpoint {
            Some(url) => {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(url)
                    .with_headers(headers.clone())
                    .build()
                    .map_err(|e| OtelError::Exporter {
                        signal: "trace",
                        cause: e.to_string(),
                    })?;
                let provider = SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource.clone())
                    .build();
                let tracer = provider.tracer("intercept");
                Some((provider, tracer))
            }
            None => None,
        };
        let meters = match &config.metrics_endpoint {
            Some(url) => {
                let exporter = opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(url)
                    .with_headers(headers)
                    .build()
                    .map_err(|e| OtelError::Exporter {
                        signal: "metrics",
                        cause: e.to_string(),
                    })?;
                let mut reader = opentelemetry_sdk::metrics::PeriodicReader::builder(exporter);
                if let Some(interval) = config.metrics_interval {
                    reader = reader.with_interval(interval);
                }
                let provider = SdkMeterProvider::builder()
                    .with_reader(reader.build())
                    .with_resource(resource)
                    .build();
                let meter = provider.meter("intercept");
                let operation = meter
                    .f64_histogram("mcp.server.operation.duration")
                    .with_unit("s")
                    .with_description("Duration of the MCP request or notification as observed on the receiver from the time it was received until the result or ack is sent.")
                    .with_boundaries(CALL_DURATION_BUCKETS.to_vec())
                    .build();
                let session = meter
                    .f64_histogram("mcp.server.session.duration")
                    .with_unit("s")
                    .with_description(
                        "The duration of the MCP session as observed on the MCP server.",
                    )
                    .with_boundaries(SESSION_DURATION_BUCKETS.to_vec())
                    .build();
                Some(Meters {
                    provider,
                    operation,
                    session,
                })
            }
            None => None,
        };
        Ok(Otel { tracer, meters })
    }

    /// `tool` is the tool's label (see [`super::KnownTools`]) for the metric; the span,
    /// which mints no series, carries the name as called.
    pub(super) fn call_finished(&self, call: &CallRecord<'_>, tool: &str, log_args: bool) {
        let error_type = call.error_type();
        if let Some(m) = &self.meters {
            let mut attributes = vec![
                KeyValue::new("mcp.method.name", call.method.to_string()),
                KeyValue::new("gen_ai.tool.name", tool.to_string()),
                KeyValue::new("network.transport", network_transport(call.transport)),
            ];
            if let Some(e) = &error_type {
                attributes.push(KeyValue::new("error.type", e.clone()));
            }
            m.operation
                .record(call.duration().as_secs_f64(), &attributes);
        }
        if let Some((_, tracer)) = &self.tracer {
            self.span(tracer, call, error_type, log_args);
        }
    }

    fn span(
        &self,
        tracer: &SdkTracer,
        call: &CallRecord<'_>,
        error_type: Option<Cow<'static, str>>,
        log_args: bool,
    ) {
        let parent = TraceContextPropagator::new().extract(&TraceContext {
            traceparent: call.traceparent,
            tracestate: call.tracestate,
        });
        let mut attributes = vec![
            KeyValue::new("mcp.method.name", call.method.to_string()),
            KeyValue::new("gen_ai.operation.name", "execute_tool"),
            KeyValue::new("gen_ai.tool.name", call.tool.to_string()),
            KeyValue::new("network.transport", network_transport(call.transport)),
            KeyValue::new("intercept.decision", call.decision.as_str()),
            KeyValue::new("intercept.outcome", call.outcome.to_string()),
            KeyValue::new("intercept.server", call.server.to_string()),
        ];
        let mut optional = |key: &'static str, value: Option<&str>| {
            if let Some(v) = value {
                attributes.push(KeyValue::new(key, v.to_string()));
            }
        };
        optional("jsonrpc.request.id", call.request_id);
        optional("mcp.session.id", call.session_id);
        optional("mcp.protocol.version", call.protocol_version);
        optional("intercept.rule", call.rule);
        optional("intercept.reason", call.reason);
        optional("intercept.reservation", call.reservation);
        if call.transport == Transport::Http {
            attributes.push(KeyValue::new("network.protocol.name", "http"));
            attributes.push(KeyValue::new("network.protocol.version", "1.1"));
        }
        if let Some(addr) = call.client {
            attributes.push(KeyValue::new("client.address", addr.ip().to_string()));
            attributes.push(KeyValue::new("client.port", i64::from(addr.port())));
        }
        if let Some(code) = call.error_code {
            attributes.push(KeyValue::new("rpc.response.status_code", code.to_string()));
        }
        if let Some(e) = &error_type {
            attributes.push(KeyValue::new("error.type", e.clone()));
        }
        if log_args {
            // Opt-in attributes, redacted as the audit log's arguments are.
            for (key, value) in [
                ("gen_ai.tool.call.arguments", call.arguments),
                ("gen_ai.tool.call.result", call.result),
            ] {
                if let Some(v) = value {
                    let redacted = crate::redact::redact_arguments(v);
                    attributes.push(KeyValue::new(key, redacted.to_string()));
                }
            }
        }
        let mut span = tracer
            .span_builder(format!("{} {}", call.method, call.tool))
            .with_kind(SpanKind::Server)
            .with_start_time(call.started_at)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        if error_type.is_some() {
            let description = call
                .error_message
                .map(|m| crate::redact::redact_text(m).into_owned())
                .unwrap_or_else(|| call.outcome.to_string());
            span.set_status(Status::error(description));
        }
        span.end_with_timestamp(call.ended_at());
    }

    pub(super) fn session_closed(&self, transport: Transport, lasted: Duration) {
        if let Some(m) = &self.meters {
            m.session.record(
                lasted.as_secs_f64(),
                &[KeyValue::new(
                    "network.transport",
                    network_transport(transport),
                )],
            );
        }
    }

    /// Sends what is buffered and stops. Blocks (up to the exporters' timeouts).
    pub fn shutdown(&self) {
        if let Some((provider, _)) = &self.tracer
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!("OTLP trace export at shutdown: {e}");
        }
        if let Some(m) = &self.meters
            && let Err(e) = m.provider.shutdown()
        {
            tracing::warn!("OTLP metrics export at shutdown: {e}");
        }
    }
}

/// The semantic conventions' `network.transport`: `pipe` for stdio, `tcp` for HTTP.
fn network_transport(t: Transport) -> &'static str {
    match t {
        Transport::Stdio => "pipe",
        Transport::Http => "tcp",
    }
}

/// The two trace-context keys of `params._meta`, read as a propagator carrier.
struct TraceContext<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl Extractor for TraceContext<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Option<OtelConfig>, OtelError> {
        OtelConfig::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        assert_eq!(config(&[]).unwrap(), None);
        assert_eq!(config(&[(SERVICE_NAME, "x")]).unwrap(), None);
        assert_eq!(
            config(&[(ENDPOINT, "http://c:4318"), (SDK_DISABLED, "true")]).unwrap(),
            None
        );
    }

    #[test]
    fn the_general_endpoint_gets_each_signals_path_and_a_signal_endpoint_is_whole() {
        let c = config(&[
            (ENDPOINT, "http://collector:4318/"),
            (TRACES_ENDPOINT, "https://traces.example/custom"),
            (SERVICE_NAME, "edge-gw"),
            (HEADERS, "api-key=a%20b, tenant=t1"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            c.traces_endpoint.as_deref(),
            Some("https://traces.example/custom")
        );
        assert_eq!(
            c.metrics_endpoint.as_deref(),
            Some("http://collector:4318/v1/metrics")
        );
        assert_eq!(c.service_name, "edge-gw");
        assert_eq!(
            c.headers,
            [
                ("api-key".into(), "a b".into()),
                ("tenant".into(), "t1".into())
            ]
        );
        // Only the metrics endpoint: no spans.
        let c = config(&[(METRICS_ENDPOINT, "http://m:4318/v1/metrics")])
            .unwrap()
            .unwrap();
        assert_eq!(c.traces_endpoint, None);
        assert_eq!(c.service_name, "intercept");
    }

    #[test]
    fn grpc_is_refused_with_a_message_naming_http_protobuf() {
        let e = config(&[
            (ENDPOINT, "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc"), "{e}");
        assert!(e.contains("http/protobuf"), "{e}");
        assert!(
            config(&[
                (ENDPOINT, "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ])
            .is_err()
        );
        assert!(
            config(&[
                (ENDPOINT, "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ])
            .unwrap()
            .is_some()
        );
    }

    #[test]
    fn bad_endpoints_and_headers_are_named() {
        let e = config(&[(ENDPOINT, "collector:4318")])
            .unwrap_err()
            .to_string();
        assert!(e.contains(ENDPOINT) && e.contains("http://"), "{e}");
        let e = config(&[(ENDPOINT, "http://c:4318"), (HEADERS, "a=1,broken")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("broken") && e.contains("key=value"), "{e}");
    }
}
