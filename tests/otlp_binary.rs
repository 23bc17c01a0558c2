//! What the real binary reports about the calls it handles: spans and metrics sent over
//! OTLP (decoded from the protobuf by a receiver), and the Prometheus series served on
//! `--metrics-port`, for the stdio proxy and the HTTP listener in front of a real MCP
//! server (`tests/fixtures/tool-server.js`).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::{Span, span};
use serde_json::{Value, json};
use support::otlp::{Receiver, attribute};
use support::proxy_process::{Outcome, ProxyProcess};

const PATIENCE: Duration = Duration::from_secs(20);
/// `echo` is allowed; `wipe` is denied by a named rule.
const POLICY: &str = "tools:\n  echo:\n    rules:\n      - action: allow\n  wipe:\n    rules:\n      - name: never wipe\n        action: deny\n        on_deny: wiping is not allowed\n";
/// An argument value that must never reach a collector without `--log-args`.
const SECRET_ARG: &str = "s3cr3t-argument-value";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_policy(dir: &Path) -> PathBuf {
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    policy
}

fn tool_server() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tool-server.js")
}

/// `GET /metrics`: the exposition text.
fn scrape(port: u16) -> String {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

/// The value of the series written exactly as `series`, if present.
fn value(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn span_named<'a>(spans: &'a [Span], tool: &str) -> &'a Span {
    let name = format!("tools/call {tool}");
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}: {spans:?}"))
}

/// No attribute of any span carries the argument's value.
fn assert_no_argument_values(spans: &[Span]) {
    for s in spans {
        for kv in &s.attributes {
            let text = kv
                .value
                .as_ref()
                .map(support::otlp::any_value_text)
                .unwrap_or_default();
            assert!(!text.contains(SECRET_ARG), "{} = {text}", kv.key);
        }
    }
}

/// The duration histogram's data points with `gen_ai.tool.name` = `tool`, over every
/// export so far.
fn duration_points(receiver: &Receiver, tool: &str) -> u64 {
    use opentelemetry_proto::tonic::metrics::v1::metric;
    receiver
        .metrics()
        .iter()
        .filter(|m| m.name == "mcp.server.operation.duration")
        .filter_map(|m| match &m.data {
            Some(metric::Data::Histogram(h)) => Some(h),
            _ => None,
        })
        .flat_map(|h| &h.data_points)
        .filter(|p| attribute(&p.attributes, "gen_ai.tool.name").as_deref() == Some(tool))
        .map(|p| p.count)
        .max()
        .unwrap_or(0)
}

#[test]
fn the_stdio_proxy_reports_each_call_as_a_span_and_in_its_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path());
    let receiver = Receiver::start();
    let port = free_port();
    let port_text = port.to_string();
    let base = receiver.base_url();
    let mut proxy = ProxyProcess::start(
        &policy,
        &["--state", "memory", "--metrics-port", &port_text],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", base.as_str()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ],
        &dir.path().join("stderr.txt"),
    );
    assert_eq!(
        proxy.call("echo", json!({ "message": SECRET_ARG })),
        Outcome::Ran
    );
    assert!(matches!(
        proxy.call("wipe", json!({ "path": SECRET_ARG })),
        Outcome::Denied(_)
    ));

    let metrics = scrape(port);
    let calls = |tool: &str, decision: &str, outcome: &str| {
        value(
            &metrics,
            &format!(
                "intercept_tool_calls_total{{server=\"default\",tool=\"{tool}\",decision=\"{decision}\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!(calls("echo", "allow", "ok"), Some(1.0), "{metrics}");
    assert_eq!(calls("wipe", "deny", "denied"), Some(1.0), "{metrics}");
    assert!(
        metrics.contains(
            "intercept_tool_call_duration_seconds_count{server=\"default\",tool=\"echo\""
        ),
        "{metrics}"
    );

    // Exiting flushes what the exporters hold.
    proxy.finish();
    receiver.wait_for(PATIENCE, "both spans", |r| r.spans().len() >= 2);
    let spans = receiver.spans();
    let allowed = span_named(&spans, "echo");
    assert_eq!(allowed.kind, span::SpanKind::Server as i32);
    let attr = |s: &Span, key: &str| attribute(&s.attributes, key);
    assert_eq!(
        attr(allowed, "intercept.decision").as_deref(),
        Some("allow")
    );
    assert_eq!(attr(allowed, "intercept.outcome").as_deref(), Some("ok"));
    assert_eq!(attr(allowed, "gen_ai.tool.name").as_deref(), Some("echo"));
    assert_eq!(attr(allowed, "network.transport").as_deref(), Some("pipe"));
    assert_eq!(
        attr(allowed, "mcp.protocol.version").as_deref(),
        Some("2025-06-18")
    );
    assert!(attr(allowed, "jsonrpc.request.id").is_some());
    let denied = span_named(&spans, "wipe");
    assert_eq!(attr(denied, "intercept.decision").as_deref(), Some("deny"));
    assert_eq!(attr(denied, "intercept.outcome").as_deref(), Some("denied"));
    assert_eq!(
        attr(denied, "intercept.rule").as_deref(),
        Some("never wipe")
    );
    assert_no_argument_values(&spans);
    receiver.wait_for(PATIENCE, "the duration histogram", |r| {
        duration_points(r, "echo") >= 1 && duration_points(r, "wipe") >= 1
    });
}

struct Gateway {
    child: Child,
    port: u16,
}

impl Gateway {
    fn start(policy: &Path, env: &[(&str, &str)], flags: &[&str]) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_intercept"))
            .args(["-c", policy.to_str().unwrap()])
            .args(["--state", "memory", "--no-audit", "--log-level", "info"])
            .args(["--transport", "http", "--port", "0"])
            .args(flags)
            .arg("--")
            .arg("node")
            .arg(tool_server())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("intercept starts");
        let (tx, lines) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        let port = loop {
            let line = lines
                .recv_timeout(PATIENCE.saturating_sub(started.elapsed()))
                .expect("intercept says where it listens");
            let listening = line.contains("listening on http");
            if let Some(rest) = line.split("://127.0.0.1:").nth(1).filter(|_| listening) {
                break rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
            }
        };
        // Keep reading, so intercept never blocks on a full pipe.
        std::thread::spawn(move || while lines.recv().is_ok() {});
        Gateway { child, port }
    }

    /// One request on its own connection: the status, the headers (lower case) and the
    /// JSON-RPC message of the body (JSON or one SSE event).
    fn request(&self, method: &str, session: Option<&str>, body: &Value) -> (u16, String, Value) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let mut req = format!(
            "{method} /mcp HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nconnection: close\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-protocol-version: 2025-06-18\r\n",
            self.port
        );
        if let Some(id) = session {
            req += &format!("mcp-session-id: {id}\r\n");
        }
        req += &format!("content-length: {}\r\n\r\n{body}", body.len());
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let message = body
            .lines()
            .find_map(|l| serde_json::from_str::<Value>(l.strip_prefix("data: ").unwrap_or(l)).ok())
            .unwrap_or(Value::Null);
        (status, head.to_ascii_lowercase(), message)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tools_call(id: u64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": tool, "arguments": { "message": SECRET_ARG },
        "_meta": { "traceparent": format!("00-{TRACE_ID}-{PARENT_ID}-01") }}})
}

#[test]
fn the_http_listener_reports_calls_sessions_and_requests() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path());
    let receiver = Receiver::start();
    let metrics_port = free_port();
    let metrics_port_text = metrics_port.to_string();
    let base = receiver.base_url();
    let gw = Gateway::start(
        &policy,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", base.as_str()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
        &["--metrics-port", &metrics_port_text],
    );
    let init = json!({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "metrics-test", "version": "1"}}});
    let (status, head, answer) = gw.request("POST", None, &init);
    assert_eq!(status, 200, "{head} {answer}");
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .expect("a session id")
        .trim()
        .to_string();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    gw.request("POST", Some(&session), &initialized);
    let (_, _, answer) = gw.request("POST", Some(&session), &tools_call(1, "echo"));
    assert_eq!(answer["result"]["content"][0]["text"], "ok", "{answer}");
    let (_, _, answer) = gw.request("POST", Some(&session), &tools_call(2, "wipe"));
    assert_eq!(answer["result"]["isError"], true, "{answer}");

    let metrics = scrape(metrics_port);
    let series = |s: &str| value(&metrics, s);
    assert_eq!(
        series(
            "intercept_tool_calls_total{server=\"default\",tool=\"echo\",decision=\"allow\",outcome=\"ok\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        series(
            "intercept_tool_calls_total{server=\"default\",tool=\"wipe\",decision=\"deny\",outcome=\"denied\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        series("intercept_sessions_active{server=\"default\",transport=\"http\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        series("intercept_http_requests_total{endpoint=\"mcp\",method=\"POST\",status=\"200\"}"),
        Some(3.0),
        "{metrics}"
    );

    let (status, _, _) = gw.request("DELETE", Some(&session), &Value::Null);
    assert_eq!(status, 200);
    let metrics = scrape(metrics_port);
    let series = |s: &str| value(&metrics, s);
    assert_eq!(
        series("intercept_sessions_active{server=\"default\",transport=\"http\"}"),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        series("intercept_sessions_closed_total{server=\"default\",reason=\"delete\"}"),
        Some(1.0),
        "{metrics}"
    );

    receiver.wait_for(PATIENCE, "both spans", |r| r.spans().len() >= 2);
    let spans = receiver.spans();
    let allowed = span_named(&spans, "echo");
    assert_eq!(allowed.kind, span::SpanKind::Server as i32);
    // The client's trace context makes the span its child.
    assert_eq!(hex(&allowed.trace_id), TRACE_ID);
    assert_eq!(hex(&allowed.parent_span_id), PARENT_ID);
    let attr = |s: &Span, key: &str| attribute(&s.attributes, key);
    assert_eq!(
        attr(allowed, "intercept.decision").as_deref(),
        Some("allow")
    );
    assert_eq!(
        attr(allowed, "mcp.session.id").as_deref(),
        Some(session.as_str())
    );
    let denied = span_named(&spans, "wipe");
    assert_eq!(attr(denied, "intercept.decision").as_deref(), Some("deny"));
    assert_no_argument_values(&spans);
    receiver.wait_for(PATIENCE, "the duration histogram", |r| {
        duration_points(r, "echo") >= 1
    });
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_state_store_that_fails_is_counted_by_store_and_operation() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "tools:\n  limited:\n    rules:\n      - name: calls\n        rate_limit: 3/hour\n",
    )
    .unwrap();
    let port = free_port();
    let port_text = port.to_string();
    // Nothing listens on port 1: every reservation fails, and the call is denied.
    let mut proxy = ProxyProcess::start(
        &policy,
        &[
            "--state",
            "redis://127.0.0.1:1",
            "--metrics-port",
            &port_text,
        ],
        &[],
        &dir.path().join("stderr.txt"),
    );
    assert!(matches!(
        proxy.call("limited", json!({})),
        Outcome::Denied(_)
    ));
    let metrics = scrape(port);
    assert_eq!(
        value(
            &metrics,
            "intercept_store_errors_total{store=\"redis\",op=\"reserve\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        value(
            &metrics,
            "intercept_tool_calls_total{server=\"default\",tool=\"limited\",decision=\"deny\",outcome=\"denied\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    proxy.finish();
}

#[test]
fn a_tool_name_becomes_a_label_once_the_reloaded_policy_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path());
    let port = free_port();
    let port_text = port.to_string();
    let mut proxy = ProxyProcess::start(
        &policy,
        &["--state", "memory", "--metrics-port", &port_text],
        &[],
        &dir.path().join("stderr.txt"),
    );
    let series = |tool: &str| {
        format!(
            "intercept_tool_calls_total{{server=\"default\",tool=\"{tool}\",decision=\"allow\",outcome=\"ok\"}}"
        )
    };
    // Neither the policy nor the server names it: a client cannot mint a series.
    assert_eq!(proxy.call("made_up", json!({})), Outcome::Ran);
    let metrics = scrape(port);
    assert_eq!(value(&metrics, &series("_other")), Some(1.0), "{metrics}");
    assert_eq!(value(&metrics, &series("made_up")), None, "{metrics}");

    std::fs::write(
        &policy,
        format!("{POLICY}  made_up:\n    rules:\n      - action: allow\n"),
    )
    .unwrap();
    let reloaded = "intercept_policy_reloads_total{server=\"default\",result=\"ok\"}";
    let deadline = Instant::now() + PATIENCE;
    while value(&scrape(port), reloaded) != Some(1.0) {
        assert!(Instant::now() < deadline, "{}", scrape(port));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(proxy.call("made_up", json!({})), Outcome::Ran);
    let metrics = scrape(port);
    assert_eq!(value(&metrics, &series("made_up")), Some(1.0), "{metrics}");
    proxy.finish();
}

#[test]
fn with_log_args_the_span_carries_the_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path());
    let receiver = Receiver::start();
    let base = receiver.base_url();
    let mut proxy = ProxyProcess::start(
        &policy,
        &["--state", "memory", "--log-args"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", base.as_str())],
        &dir.path().join("stderr.txt"),
    );
    assert_eq!(
        proxy.call("echo", json!({ "message": "shown-with-log-args" })),
        Outcome::Ran
    );
    proxy.finish();
    receiver.wait_for(PATIENCE, "the span", |r| !r.spans().is_empty());
    let spans = receiver.spans();
    let span = span_named(&spans, "echo");
    let arguments = attribute(&span.attributes, "gen_ai.tool.call.arguments").unwrap_or_default();
    assert!(arguments.contains("shown-with-log-args"), "{arguments}");
}
