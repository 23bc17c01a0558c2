//! The observability flags of the real binary: `--metrics-port` serves `/metrics` while
//! intercept runs, and an OTLP protocol other than http/protobuf stops it at start.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::proxy_process::{Outcome, ProxyProcess};

const POLICY: &str = "tools:\n  echo:\n    rules:\n      - action: allow\n";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    stream.read_to_string(&mut out)?;
    Ok(out)
}

fn write_policy(dir: &Path) -> std::path::PathBuf {
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    policy
}

#[test]
fn metrics_port_serves_metrics_while_intercept_runs() {
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
    assert_eq!(proxy.call("echo", json!({ "message": "hi" })), Outcome::Ran);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let answer = get(addr, "/metrics").expect("metrics are served");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains(&format!(
            "intercept_build_info{{version=\"{}\"}} 1",
            intercept::VERSION
        )),
        "{answer}"
    );
    proxy.finish();
    // Gone with the process.
    assert!(get(addr, "/metrics").is_err());
}

#[test]
fn metrics_bind_needs_a_port_and_a_taken_port_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_intercept"))
        .arg("-c")
        .arg(&policy)
        .args(["--metrics-bind", "0.0.0.0", "--", "node", "-e", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--metrics-port"), "{stderr}");

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_intercept"))
        .arg("-c")
        .arg(&policy)
        .args([
            "--no-audit",
            "--metrics-port",
            &port,
            "--",
            "node",
            "-e",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("--metrics-port"), "{stderr}");
}

#[test]
fn an_otlp_protocol_other_than_http_protobuf_stops_intercept_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path());
    for (var, value) in [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_intercept"))
            .arg("-c")
            .arg(&policy)
            .args(["--no-audit", "--", "node", "-e", "0"])
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("{var}={value}")), "{stderr}");
        assert!(stderr.contains("http/protobuf"), "{stderr}");
    }
}
