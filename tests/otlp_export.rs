//! OTLP export: what a collector receives from intercept's telemetry, decoded from the
//! protobuf on the wire by a receiver that speaks OTLP/HTTP.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use intercept::engine::Verdict;
use intercept::telemetry::{CallRecord, OtelConfig, Telemetry, TelemetryOptions, Transport};
use opentelemetry_proto::tonic::metrics::v1::metric;
use opentelemetry_proto::tonic::trace::v1::{Span, span, status};
use serde_json::json;
use support::otlp::{Receiver, attribute};

const PATIENCE: Duration = Duration::from_secs(20);
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn telemetry(receiver: &Receiver, log_args: bool) -> Telemetry {
    let base = receiver.base_url();
    Telemetry::new(TelemetryOptions {
        prometheus: false,
        otel: Some(OtelConfig {
            traces_endpoint: Some(format!("{base}/v1/traces")),
            metrics_endpoint: Some(format!("{base}/v1/metrics")),
            service_name: "intercept-under-test".into(),
            headers: vec![("x-tenant".into(), "team-a".into())],
            metrics_interval: None,
        }),
        log_args,
    })
    .expect("telemetry starts")
}

/// A call as the proxy reports it: received `took` ago, answered now.
fn call<'a>(tool: &'a str, decision: Verdict, outcome: &'a str, took: Duration) -> CallRecord<'a> {
    let ended = Instant::now();
    CallRecord {
        server: "default",
        method: "tools/call",
        tool,
        decision,
        rule: None,
        reason: None,
        outcome,
        reservation: None,
        error_code: None,
        error_message: None,
        is_error: false,
        started: ended - took,
        started_at: SystemTime::now() - took,
        ended,
        session_id: Some("0123456789abcdef"),
        request_id: None,
        protocol_version: Some("2025-06-18"),
        client: None,
        transport: Transport::Stdio,
        traceparent: None,
        tracestate: None,
        arguments: None,
        result: None,
    }
}

fn span_named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        panic!(
            "no span {name:?} among {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    })
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

#[test]
fn calls_become_server_spans_with_the_decision_and_no_argument_values() {
    let receiver = Receiver::start();
    let telemetry = telemetry(&receiver, false);
    let arguments = json!({ "message": "ARGUMENT-VALUE-7f3a" });
    let result = json!({ "content": [{ "type": "text", "text": "RESULT-VALUE-9c1d" }] });

    let mut allowed = call("echo", Verdict::Allow, "ok", Duration::from_millis(30));
    allowed.request_id = Some("7");
    allowed.reservation = Some("committed");
    allowed.arguments = Some(&arguments);
    allowed.result = Some(&result);
    telemetry.call_finished(&allowed);

    // A denial is answered with `isError: true`, as a tool result.
    let mut denied = call(
        "delete_repo",
        Verdict::Deny,
        "denied",
        Duration::from_micros(40),
    );
    denied.request_id = Some("\"req-8\"");
    denied.rule = Some("no-deletes");
    denied.reason = Some("denied");
    denied.is_error = true;
    denied.arguments = Some(&arguments);
    telemetry.call_finished(&denied);

    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let mut traced = call(
        "get-sum",
        Verdict::Allow,
        "error",
        Duration::from_millis(300),
    );
    traced.request_id = Some("9");
    traced.error_code = Some(-32602);
    traced.error_message = Some("Invalid params: a must be a number");
    traced.traceparent = Some(&traceparent);
    traced.tracestate = Some("vendor=abc");
    traced.transport = Transport::Http;
    traced.client = Some("127.0.0.1:51234".parse().unwrap());
    telemetry.call_finished(&traced);

    // Flushes what the batch processors hold, and the metrics.
    telemetry.shutdown_blocking();
    receiver.wait_for(PATIENCE, "three spans", |r| r.spans().len() >= 3);
    let spans = receiver.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");

    let requests = receiver.requests();
    for r in &requests {
        assert_eq!(r.content_type, "application/x-protobuf", "{}", r.path);
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == "x-tenant" && v == "team-a"),
            "OTEL_EXPORTER_OTLP_HEADERS not sent to {}: {:?}",
            r.path,
            r.headers
        );
        // Neither arguments nor results leave intercept without --log-args.
        let body = String::from_utf8_lossy(&r.body);
        assert!(!body.contains("ARGUMENT-VALUE"), "{}: {body}", r.path);
        assert!(!body.contains("RESULT-VALUE"), "{}: {body}", r.path);
    }
    let resource = &receiver.traces()[0].resource_spans[0].resource;
    assert_eq!(
        attribute(&resource.as_ref().unwrap().attributes, "service.name").as_deref(),
        Some("intercept-under-test")
    );

    let s = span_named(&spans, "tools/call echo");
    assert_eq!(s.kind, span::SpanKind::Server as i32);
    let a = |s: &Span, key: &str| attribute(&s.attributes, key);
    assert_eq!(a(s, "mcp.method.name").as_deref(), Some("tools/call"));
    assert_eq!(a(s, "gen_ai.tool.name").as_deref(), Some("echo"));
    assert_eq!(
        a(s, "gen_ai.operation.name").as_deref(),
        Some("execute_tool")
    );
    assert_eq!(a(s, "jsonrpc.request.id").as_deref(), Some("7"));
    assert_eq!(a(s, "mcp.session.id").as_deref(), Some("0123456789abcdef"));
    assert_eq!(a(s, "mcp.protocol.version").as_deref(), Some("2025-06-18"));
    assert_eq!(a(s, "network.transport").as_deref(), Some("pipe"));
    assert_eq!(a(s, "intercept.decision").as_deref(), Some("allow"));
    assert_eq!(a(s, "intercept.outcome").as_deref(), Some("ok"));
    assert_eq!(a(s, "intercept.reservation").as_deref(), Some("committed"));
    assert_eq!(a(s, "intercept.server").as_deref(), Some("default"));
    assert_eq!(a(s, "error.type"), None);
    assert_eq!(a(s, "gen_ai.tool.call.arguments"), None);
    assert_eq!(a(s, "gen_ai.tool.call.result"), None);
    assert_ne!(
        s.status.as_ref().map(|st| st.code),
        Some(status::StatusCode::Error as i32)
    );
    // No trace context came with it: a new trace, no parent.
    assert!(s.parent_span_id.is_empty());
    // The timestamps are the call's own, not the export's.
    assert_eq!(
        s.end_time_unix_nano - s.start_time_unix_nano,
        Duration::from_millis(30).as_nanos() as u64
    );
    assert_eq!(s.start_time_unix_nano, nanos(allowed.started_at));

    let s = span_named(&spans, "tools/call delete_repo");
    assert_eq!(s.kind, span::SpanKind::Server as i32);
    assert_eq!(a(s, "intercept.decision").as_deref(), Some("deny"));
    assert_eq!(a(s, "intercept.rule").as_deref(), Some("no-deletes"));
    assert_eq!(a(s, "intercept.reason").as_deref(), Some("denied"));
    assert_eq!(a(s, "intercept.outcome").as_deref(), Some("denied"));
    assert_eq!(a(s, "jsonrpc.request.id").as_deref(), Some("\"req-8\""));
    assert_eq!(a(s, "error.type").as_deref(), Some("tool_error"));
    assert_eq!(
        s.status.as_ref().map(|st| st.code),
        Some(status::StatusCode::Error as i32)
    );

    let s = span_named(&spans, "tools/call get-sum");
    assert_eq!(hex(&s.trace_id), TRACE_ID, "the caller's trace continues");
    assert_eq!(hex(&s.parent_span_id), PARENT_ID);
    assert_eq!(s.trace_state, "vendor=abc");
    assert_eq!(a(s, "error.type").as_deref(), Some("-32602"));
    assert_eq!(a(s, "rpc.response.status_code").as_deref(), Some("-32602"));
    assert_eq!(a(s, "network.transport").as_deref(), Some("tcp"));
    assert_eq!(a(s, "network.protocol.name").as_deref(), Some("http"));
    assert_eq!(a(s, "client.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(a(s, "client.port").as_deref(), Some("51234"));
    let st = s.status.as_ref().expect("a status");
    assert_eq!(st.code, status::StatusCode::Error as i32);
    assert_eq!(st.message, "Invalid params: a must be a number");

    // The operation-duration histogram, with the advised buckets.
    receiver.wait_for(PATIENCE, "the duration histogram", |r| {
        r.metrics()
            .iter()
            .any(|m| m.name == "mcp.server.operation.duration")
    });
    let metrics = receiver.metrics();
    let m = metrics
        .iter()
        .find(|m| m.name == "mcp.server.operation.duration")
        .unwrap();
    assert_eq!(m.unit, "s");
    let Some(metric::Data::Histogram(h)) = &m.data else {
        panic!("not a histogram: {m:#?}");
    };
    assert_eq!(
        h.data_points[0].explicit_bounds,
        [
            0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0
        ]
    );
    let total: u64 = h.data_points.iter().map(|p| p.count).sum();
    assert_eq!(total, 3);
    // Tools neither the policy nor the server named share one label; points differ only
    // by error.type and transport.
    for p in &h.data_points {
        assert_eq!(
            attribute(&p.attributes, "gen_ai.tool.name").as_deref(),
            Some("_other"),
            "{p:#?}"
        );
        assert_eq!(
            attribute(&p.attributes, "mcp.method.name").as_deref(),
            Some("tools/call")
        );
    }
    let with_error = |e: Option<&str>| {
        h.data_points
            .iter()
            .filter(|p| attribute(&p.attributes, "error.type").as_deref() == e)
            .map(|p| p.count)
            .sum::<u64>()
    };
    assert_eq!(with_error(None), 1);
    assert_eq!(with_error(Some("tool_error")), 1);
    assert_eq!(with_error(Some("-32602")), 1);
    let sum: f64 = h.data_points.iter().map(|p| p.sum.unwrap_or(0.0)).sum();
    assert!((sum - 0.33004).abs() < 1e-6, "sum {sum}");
}

#[test]
fn known_tools_are_metric_labels_and_log_args_exports_redacted_arguments() {
    let receiver = Receiver::start();
    let telemetry = telemetry(&receiver, true);
    telemetry
        .known_tools()
        .unwrap()
        .set_listed("default", ["echo"]);
    let arguments = json!({ "message": "hello there", "api_key": "sk-live-SECRET1234567890" });
    let result = json!({ "content": [{ "type": "text", "text": "hello there" }] });
    let mut c = call("echo", Verdict::Allow, "ok", Duration::from_millis(5));
    c.arguments = Some(&arguments);
    c.result = Some(&result);
    telemetry.call_finished(&c);
    telemetry.session_closed(
        "default",
        Transport::Http,
        "delete",
        Duration::from_secs(42),
    );
    telemetry.shutdown_blocking();

    receiver.wait_for(PATIENCE, "a span", |r| !r.spans().is_empty());
    let spans = receiver.spans();
    let s = span_named(&spans, "tools/call echo");
    let args = attribute(&s.attributes, "gen_ai.tool.call.arguments").expect("arguments");
    let args: serde_json::Value = serde_json::from_str(&args).unwrap();
    assert_eq!(args["message"], "hello there");
    assert_ne!(args["api_key"], "sk-live-SECRET1234567890");
    let result_attr = attribute(&s.attributes, "gen_ai.tool.call.result").expect("result");
    assert!(result_attr.contains("hello there"), "{result_attr}");
    for r in receiver.requests() {
        assert!(!String::from_utf8_lossy(&r.body).contains("SECRET1234567890"));
    }

    receiver.wait_for(PATIENCE, "the metrics", |r| {
        r.metrics()
            .iter()
            .any(|m| m.name == "mcp.server.session.duration")
    });
    let metrics = receiver.metrics();
    let histogram = |name: &str| {
        let m = metrics.iter().find(|m| m.name == name).unwrap();
        match &m.data {
            Some(metric::Data::Histogram(h)) => h.data_points.clone(),
            other => panic!("{name} is not a histogram: {other:?}"),
        }
    };
    let op = histogram("mcp.server.operation.duration");
    assert_eq!(
        attribute(&op[0].attributes, "gen_ai.tool.name").as_deref(),
        Some("echo")
    );
    let session = histogram("mcp.server.session.duration");
    assert_eq!(session[0].count, 1);
    assert_eq!(session[0].sum, Some(42.0));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
