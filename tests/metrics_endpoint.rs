//! The Prometheus endpoint, scraped over real HTTP: the series intercept keeps, their
//! labels, and the rule that keeps a client from minting series with made-up tool names.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use intercept::engine::Verdict;
use intercept::telemetry::{
    CallRecord, Telemetry, TelemetryOptions, Transport, bind_metrics, serve_metrics,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn call<'a>(tool: &'a str, decision: Verdict, outcome: &'a str, took: Duration) -> CallRecord<'a> {
    let ended = Instant::now();
    CallRecord {
        server: "github",
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
        session_id: None,
        request_id: None,
        protocol_version: None,
        client: None,
        transport: Transport::Http,
        traceparent: None,
        tracestate: None,
        arguments: None,
        result: None,
    }
}

/// One HTTP/1.1 request; returns the status line, the headers and the body.
async fn request(addr: SocketAddr, method: &str, path: &str) -> (String, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut raw))
        .await
        .expect("an answer")
        .unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_lowercase(), body.to_string())
}

/// The value of the series written exactly as `series`, if present.
fn value(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_with_bounded_labels() {
    let telemetry = Telemetry::new(TelemetryOptions {
        prometheus: true,
        ..Default::default()
    })
    .unwrap();
    let known = telemetry.known_tools().unwrap();
    known.set_policy_names("github", ["create_issue"]);
    known.set_listed("github", ["list_issues", "create_issue"]);

    let listener = bind_metrics("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_metrics(
        listener,
        telemetry.metrics().unwrap().clone(),
        async {
            let _ = stopped.await;
        },
    ));

    telemetry.call_finished(&call(
        "create_issue",
        Verdict::Allow,
        "ok",
        Duration::from_millis(15),
    ));
    telemetry.call_finished(&call(
        "list_issues",
        Verdict::Allow,
        "is_error",
        Duration::from_millis(3),
    ));
    // Names a client made up: one series between them, whatever they are.
    telemetry.call_finished(&call(
        "zz_made_up_1",
        Verdict::Deny,
        "denied",
        Duration::ZERO,
    ));
    telemetry.call_finished(&call(
        "zz_made_up_2",
        Verdict::Deny,
        "denied",
        Duration::ZERO,
    ));
    telemetry.call_finished(&call(
        "create_issue",
        Verdict::ShadowDeny,
        "ok",
        Duration::from_secs(2),
    ));
    telemetry.policy_evaluated("github", Duration::from_micros(3));
    telemetry.session_opened("github", Transport::Http);
    telemetry.session_opened("github", Transport::Http);
    telemetry.session_closed("github", Transport::Http, "idle", Duration::from_secs(60));
    telemetry.session_rejected("github", "max_sessions");
    telemetry.upstream_error("github", "timeout");
    telemetry.store_error("redis", "reserve");
    telemetry.http_request("/mcp", "POST", 200);
    telemetry.http_rejected("origin");
    telemetry.policy_reloaded("github", "error");
    let in_flight = telemetry.in_flight("github");

    let (status, headers, body) = request(addr, "GET", "/metrics").await;
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        headers.contains("content-type: application/openmetrics-text"),
        "{headers}"
    );
    let series = |s: &str| value(&body, s);
    let calls = |tool: &str, decision: &str, outcome: &str| {
        series(&format!(
            "intercept_tool_calls_total{{server=\"github\",tool=\"{tool}\",decision=\"{decision}\",outcome=\"{outcome}\"}}"
        ))
    };
    assert_eq!(calls("create_issue", "allow", "ok"), Some(1.0), "{body}");
    assert_eq!(
        calls("list_issues", "allow", "is_error"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(calls("_other", "deny", "denied"), Some(2.0), "{body}");
    assert_eq!(
        calls("create_issue", "shadow_deny", "ok"),
        Some(1.0),
        "{body}"
    );
    assert!(
        !body.contains("zz_made_up"),
        "a client minted a series:\n{body}"
    );

    // Latency histograms, in seconds, with the semantic conventions' buckets.
    let duration = |tool: &str, decision: &str, le: &str| {
        series(&format!(
            "intercept_tool_call_duration_seconds_bucket{{le=\"{le}\",server=\"github\",tool=\"{tool}\",decision=\"{decision}\"}}"
        ))
    };
    assert_eq!(
        duration("create_issue", "allow", "0.01"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        duration("create_issue", "allow", "0.02"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        duration("create_issue", "shadow_deny", "1.0"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        duration("create_issue", "shadow_deny", "2.0"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        duration("create_issue", "allow", "+Inf"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        series(
            "intercept_policy_evaluation_duration_seconds_bucket{le=\"0.000005\",server=\"github\"}"
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        series("intercept_policy_evaluation_duration_seconds_count{server=\"github\"}"),
        Some(1.0)
    );

    assert_eq!(
        series("intercept_sessions_active{server=\"github\",transport=\"http\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        series("intercept_sessions_opened_total{server=\"github\",transport=\"http\"}"),
        Some(2.0)
    );
    assert_eq!(
        series("intercept_sessions_closed_total{server=\"github\",reason=\"idle\"}"),
        Some(1.0)
    );
    assert_eq!(
        series("intercept_sessions_rejected_total{server=\"github\",reason=\"max_sessions\"}"),
        Some(1.0)
    );
    assert_eq!(
        series("intercept_upstream_errors_total{server=\"github\",kind=\"timeout\"}"),
        Some(1.0)
    );
    assert_eq!(
        series("intercept_store_errors_total{store=\"redis\",op=\"reserve\"}"),
        Some(1.0)
    );
    assert_eq!(
        series("intercept_http_requests_total{endpoint=\"/mcp\",method=\"POST\",status=\"200\"}"),
        Some(1.0)
    );
    assert_eq!(
        series("intercept_http_rejected_total{reason=\"origin\"}"),
        Some(1.0)
    );
    assert_eq!(
        series("intercept_policy_reloads_total{server=\"github\",result=\"error\"}"),
        Some(1.0)
    );
    assert_eq!(
        series("intercept_in_flight_requests{server=\"github\"}"),
        Some(1.0)
    );
    assert_eq!(
        series(&format!(
            "intercept_build_info{{version=\"{}\"}}",
            intercept::VERSION
        )),
        Some(1.0),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");

    drop(in_flight);
    let (_, _, body) = request(addr, "GET", "/metrics").await;
    assert_eq!(
        value(&body, "intercept_in_flight_requests{server=\"github\"}"),
        Some(0.0)
    );

    let (status, _, body) = request(addr, "GET", "/").await;
    assert!(status.contains(" 404 "), "{status}");
    assert!(body.contains("/metrics"), "{body}");
    let (status, headers, _) = request(addr, "POST", "/metrics").await;
    assert!(status.contains(" 405 "), "{status}");
    assert!(headers.contains("allow: get"), "{headers}");

    // Shut down: the server returns and the port stops answering.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the metrics server stops")
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let e = bind_metrics(addr).await.unwrap_err().to_string();
    assert!(e.contains(&addr.to_string()), "{e}");
    assert!(e.contains("--metrics-port"), "{e}");
}

#[test]
fn disabled_telemetry_keeps_nothing() {
    let telemetry = Telemetry::disabled();
    assert!(!telemetry.is_enabled());
    assert!(telemetry.metrics().is_none());
    // Reports are accepted and dropped.
    telemetry.call_finished(&call("x", Verdict::Allow, "ok", Duration::ZERO));
    let _guard = telemetry.in_flight("github");
    assert!(
        Telemetry::new(TelemetryOptions::default())
            .unwrap()
            .metrics()
            .is_none()
    );
}
