//! Secrets on the server's command line and in a call's arguments reach neither stderr nor
//! the audit log, through the real binary.

mod support;

use serde_json::{Value, json};
use support::proxy_process::{Outcome, ProxyProcess};

/// Every secret below, each of which must be missing from everything intercept wrote.
const SECRETS: &[&str] = &[
    "SECRETTOKEN",
    "APIKEY123",
    "DBPASS",
    "dXNlcjpwYXNzd29yZA",
    "PWDVALUE1",
    "ghp_0123456789abcdefghijKLMNOP",
    "0123456789abcdefghijKLMNOP",
    "URLPASS",
    "QUERYKEY",
    "eyJhbGciOiJIUzI1NiJ9",
    "MIIEvQIBADANBg",
    "sk_live_51Habcdefgh",
    "AKIAIOSFODNN7EXAMPLE",
];

#[test]
fn secrets_never_reach_stderr_or_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "tools:\n  blocked:\n    rules:\n      - action: deny\n",
    )
    .unwrap();
    let audit = dir.path().join("audit.jsonl");
    let stderr = dir.path().join("stderr.txt");
    let audit_flag = audit.display().to_string();
    let mut proxy = ProxyProcess::start_with_server_args(
        &policy,
        &[
            "--log-args",
            "--audit-log",
            &audit_flag,
            "--state",
            "memory",
        ],
        &[
            "--token",
            "SECRETTOKEN",
            "--api-key=APIKEY123",
            "postgres://u:DBPASS@h/db",
            "--port",
            "8080",
        ],
        &[],
        &stderr,
    );
    let args = json!({
        "title": "hello world",
        "auth": "Basic dXNlcjpwYXNzd29yZA==",
        "pwd": "PWDVALUE1",
        "github_pat": "ghp_0123456789abcdefghijKLMNOP",
        "url": "https://user:URLPASS@api.example.com/v1?key=QUERYKEY&page=2",
        "note": "signed eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl and AKIAIOSFODNN7EXAMPLE",
        "key_file": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
        "nested": [{"charge_with": "sk_live_51Habcdefgh"}],
    });
    assert_eq!(proxy.call("create_issue", args.clone()), Outcome::Ran);
    assert!(matches!(proxy.call("blocked", args), Outcome::Denied(_)));
    proxy.finish();

    let stderr = std::fs::read_to_string(&stderr).unwrap();
    let log = std::fs::read_to_string(&audit).unwrap();
    for secret in SECRETS {
        assert!(!stderr.contains(secret), "{secret} in stderr:\n{stderr}");
        assert!(!log.contains(secret), "{secret} in the audit log:\n{log}");
    }

    // What is not secret stays readable.
    let server = "--token [REDACTED] --api-key=[REDACTED] postgres://u:[REDACTED]@h/db --port 8080";
    assert!(
        stderr.contains(&format!("tool-server.js {server}")),
        "{stderr}"
    );
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let startup = events.iter().find(|e| e["type"] == "startup").unwrap();
    assert!(
        startup["server"].as_str().unwrap().ends_with(server),
        "{startup}"
    );
    let calls: Vec<&Value> = events.iter().filter(|e| e["type"] == "tool_call").collect();
    assert_eq!(calls.len(), 2);
    for call in calls {
        assert_eq!(
            call["args"],
            json!({
                "title": "hello world",
                "auth": "[REDACTED]",
                "pwd": "[REDACTED]",
                "github_pat": "[REDACTED]",
                "url": "https://user:[REDACTED]@api.example.com/v1?key=[REDACTED]&page=2",
                "note": "signed [REDACTED] and AKIA[REDACTED]",
                "key_file": "-----BEGIN PRIVATE KEY-----[REDACTED]-----END PRIVATE KEY-----",
                "nested": [{"charge_with": "sk_live_[REDACTED]"}],
            }),
            "{call}"
        );
    }
}

/// Runs intercept to its end, feeding it `input`; killed if it has not ended in a minute
/// (a guard against a hung test, not an assertion on speed). Its output is small enough
/// to wait in the pipes.
fn run_to_end(args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_intercept"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("intercept starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child
        .try_wait()
        .expect("intercept can be waited for")
        .is_none()
    {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("intercept ends")
}

#[test]
fn the_agent_and_stderr_never_see_the_upstream_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "tools: {}\n").unwrap();
    let policy = policy.display().to_string();
    // Port 9 (discard) is closed on test machines: the connection is refused.
    let out = run_to_end(
        &[
            "-c",
            &policy,
            "--no-audit",
            "--state",
            "memory",
            "--upstream",
            "http://u:URLPASS@127.0.0.1:9/mcp?key=QUERYKEY",
        ],
        concat!(
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
            "\n"
        ),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reply: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .split(": ")
            .next(),
        Some("Cannot reach the MCP server at http://u:[REDACTED]@127.0.0.1:9/mcp?key=[REDACTED]")
    );
    for secret in ["URLPASS", "QUERYKEY"] {
        assert!(!stdout.contains(secret), "{stdout}");
        assert!(!stderr.contains(secret), "{stderr}");
    }
    assert!(
        stderr.contains("url=http://u:[REDACTED]@127.0.0.1:9/mcp?key=[REDACTED]"),
        "{stderr}"
    );
}

#[test]
fn a_scanned_policy_and_the_scan_progress_name_the_command_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("policy.yaml");
    let out_flag = out_file.display().to_string();
    let server = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("__tests__/fixtures/scan-server.js")
        .display()
        .to_string();
    let out = run_to_end(
        &[
            "scan",
            "-o",
            &out_flag,
            "--",
            "node",
            &server,
            "paged",
            "--api-key",
            "APIKEY123",
            "postgres://u:DBPASS@h/db",
        ],
        "",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let policy = std::fs::read_to_string(&out_file).unwrap();
    let shown = format!("node {server} paged --api-key [REDACTED] postgres://u:[REDACTED]@h/db");
    assert!(
        stderr.contains(&format!("intercept scan: Starting {shown}\n")),
        "{stderr}"
    );
    assert!(
        policy.contains(&format!("\n# Command: {shown}\n")),
        "{policy}"
    );
    for secret in ["APIKEY123", "DBPASS"] {
        assert!(!stderr.contains(secret), "{stderr}");
        assert!(!policy.contains(secret), "{policy}");
    }
}
