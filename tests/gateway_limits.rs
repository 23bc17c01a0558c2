//! The HTTP listener's defences and limits, against the real binary and a real HTTP MCP
//! server: Host and Origin checks, the body limit, slow clients, an unreachable server,
//! `--max-sessions`, the non-loopback bind refusal, and a shutdown in the middle of a call.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long to wait for anything before the test fails (a bound, not a measurement).
const PATIENCE: Duration = Duration::from_secs(15);

/// A Streamable HTTP MCP server answering in JSON: `initialize` (with a session id), `echo`,
/// and `hold`, which it never answers. It prints its port, and logs each method and each
/// DELETE to the file named by its argument.
const SERVER: &str = r#"
const fs = require('node:fs')
const log = process.argv[1]
const http = require('node:http')
const srv = http.createServer((req, res) => {
  if (req.method === 'DELETE') { fs.appendFileSync(log, 'DELETE\n'); res.writeHead(200); return res.end() }
  let body = ''
  req.on('data', (d) => (body += d))
  req.on('end', () => {
    const msg = JSON.parse(body)
    fs.appendFileSync(log, (msg.method || 'response') + '\n')
    const reply = (m, headers = {}) => { res.writeHead(200, { 'content-type': 'application/json', ...headers }); res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, ...m })) }
    if (msg.id === undefined) { res.writeHead(202); return res.end() }
    if (msg.method === 'initialize') return reply({ result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'json-server', version: '1' } } }, { 'mcp-session-id': 'upstream-secret' })
    if (msg.method === 'tools/call' && msg.params.name === 'hold') return
    reply({ result: { content: [{ type: 'text', text: 'ok' }] } })
  })
})
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port))
"#;

struct Upstream {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Upstream {
    fn start(dir: &Path) -> Upstream {
        let log = dir.join("upstream.log");
        let mut child = Command::new("node")
            .args(["-e", SERVER, log.to_str().unwrap()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("node starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the server prints its port");
        Upstream { child, port, log }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Gateway {
    child: Child,
    port: u16,
    stderr: mpsc::Receiver<String>,
}

impl Gateway {
    fn start(dir: &Path, upstream: &str, flags: &[&str]) -> Gateway {
        let policy = dir.join("policy.yaml");
        std::fs::write(&policy, "tools: {}\n").unwrap();
        let mut child = intercept(&policy, upstream, flags)
            .stderr(Stdio::piped())
            .spawn()
            .expect("intercept starts");
        let (tx, stderr) = mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in lines.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        let port = loop {
            let line = stderr
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
        Gateway {
            child,
            port,
            stderr,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s
    }

    /// One request on a new connection; returns the status, the headers and the body.
    fn request(&self, head: &[(&str, &str)], body: &str) -> Response {
        let mut s = self.connect();
        let mut req = "POST /mcp HTTP/1.1\r\nconnection: close\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\n".to_string();
        if !head.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req += &format!("host: {}\r\n", self.host());
        }
        for (k, v) in head {
            req += &format!("{k}: {v}\r\n");
        }
        req += &format!("content-length: {}\r\n\r\n{body}", body.len());
        s.write_all(req.as_bytes()).unwrap();
        read_response(&mut s)
    }

    fn initialize(&self) -> Response {
        self.request(&[], &initialize().to_string())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn intercept(policy: &Path, upstream: &str, flags: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_intercept"));
    cmd.args(["-c", policy.to_str().unwrap()])
        .args(["--state", "memory", "--log-level", "info"])
        .args(["--transport", "http", "--port", "0"])
        .args(["--upstream", upstream])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "limits", "version": "1"}}})
}

#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    body: Value,
}

fn read_response(s: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Response {
        status,
        head: head.to_ascii_lowercase(),
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

/// Whether the server closes the connection within `PATIENCE` without sending a
/// successful response.
fn closed_without_answer(s: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let started = Instant::now();
    let ended = s.read_to_end(&mut buf).is_ok();
    let text = String::from_utf8_lossy(&buf);
    ended && started.elapsed() < PATIENCE && !text.starts_with("HTTP/1.1 2")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn foreign_origins_and_hosts_are_refused_before_anything_is_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path());
    let gw = Gateway::start(dir.path(), &upstream.url(), &[]);
    let body = initialize().to_string();

    let r = gw.request(&[("origin", "https://evil.example.com")], &body);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.body["error"]["code"], -32600);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--allowed-origin https://evil.example.com"),
        "{r:?}"
    );

    let r = gw.request(&[("host", "evil.example.com")], &body);
    assert!((400..500).contains(&r.status), "{r:?}");
    let r = gw.request(&[("host", &format!("attacker.test:{}", gw.port))], &body);
    assert!((400..500).contains(&r.status), "{r:?}");
    assert!(
        !upstream.log().contains("initialize"),
        "nothing refused reached the server"
    );

    // A loopback page, and the listener's own names, are fine.
    let local = format!("http://localhost:{}", gw.port);
    let r = gw.request(&[("origin", &local)], &body);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["result"]["serverInfo"]["name"], "json-server");
    let r = gw.request(&[("host", &format!("localhost:{}", gw.port))], &body);
    assert_eq!(r.status, 200, "{r:?}");
    // The server's own session id is never shown.
    assert!(!r.head.contains("upstream-secret"), "{}", r.head);
    assert!(r.head.contains("mcp-session-id: "), "{}", r.head);
}

#[test]
fn an_oversize_body_gets_413_with_its_id_declared_or_chunked() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path());
    let gw = Gateway::start(
        dir.path(),
        &upstream.url(),
        &["--max-message-bytes", "2000"],
    );
    let big = json!({"jsonrpc": "2.0", "id": 42, "method": "initialize", "params": {"pad": "x".repeat(5000)}})
        .to_string();
    let r = gw.request(&[], &big);
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.body["id"], 42);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-message-bytes"),
        "{r:?}"
    );

    // Chunked, with no declared length: cut off once over the limit.
    let mut s = gw.connect();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        gw.host()
    );
    s.write_all(head.as_bytes()).unwrap();
    for piece in big.as_bytes().chunks(1000) {
        let _ = s.write_all(format!("{:x}\r\n", piece.len()).as_bytes());
        let _ = s.write_all(piece);
        let _ = s.write_all(b"\r\n");
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let r = read_response(&mut s);
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.body["id"], 42);
    assert!(!upstream.log().contains("initialize"));
}

#[test]
fn slow_and_idle_clients_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path());
    let gw = Gateway::start(
        dir.path(),
        &upstream.url(),
        &[
            "--header-read-timeout",
            "300ms",
            "--body-read-timeout",
            "300ms",
        ],
    );
    // An idle socket.
    let mut idle = gw.connect();
    assert!(closed_without_answer(&mut idle), "idle socket closed");
    // A head that never ends.
    let mut slow_head = gw.connect();
    slow_head.write_all(b"POST /mcp HTTP/1.1\r\nHo").unwrap();
    assert!(closed_without_answer(&mut slow_head), "slow head closed");
    // A body that never ends.
    let mut slow_body = gw.connect();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"jsonrpc\"",
        gw.host()
    );
    slow_body.write_all(head.as_bytes()).unwrap();
    let r = read_response(&mut slow_body);
    assert_eq!(r.status, 408, "{r:?}");
    // The listener still serves others.
    assert_eq!(gw.initialize().status, 200);
}

#[test]
fn an_unreachable_server_is_a_json_rpc_error_with_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let gw = Gateway::start(dir.path(), &url, &[]);
    let r = gw.initialize();
    assert_eq!(r.body["id"], "init", "{r:?}");
    assert_eq!(r.body["error"]["code"], -32603);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("Cannot reach the MCP server at {url}")),
        "{message}"
    );
    assert!(
        !r.head.contains("mcp-session-id"),
        "no session for a failed start"
    );
}

#[test]
fn sessions_beyond_max_sessions_get_503_with_a_json_rpc_body() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path());
    let gw = Gateway::start(dir.path(), &upstream.url(), &["--max-sessions", "1"]);
    assert_eq!(gw.initialize().status, 200);
    let r = gw.initialize();
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.body["id"], "init");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-sessions"),
        "{r:?}"
    );
}

#[test]
fn a_non_loopback_bind_without_authentication_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "tools: {}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_intercept"))
        .args([
            "-c",
            policy.to_str().unwrap(),
            "--state",
            "memory",
            "--no-audit",
        ])
        .args(["--transport", "http", "--port", "8080", "--bind", "0.0.0.0"])
        .args(["--upstream", "http://127.0.0.1:9/mcp"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:8080")
            && stderr.contains("without authentication")
            && stderr.contains("--allow-unauthenticated"),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn sigterm_mid_call_answers_the_call_closes_upstream_sessions_and_flushes_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path());
    let audit = dir.path().join("audit.jsonl");
    let gw = Gateway::start(
        dir.path(),
        &upstream.url(),
        &[
            "--shutdown-timeout",
            "1",
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    );
    let init = gw.initialize();
    let session = init
        .head
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .expect("a session id")
        .trim()
        .to_string();
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "hold", "arguments": {}}});
    let (tx, rx) = mpsc::channel();
    let port = gw.port;
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let body = call.to_string();
        let req = format!(
            "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {session}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let _ = tx.send(read_response(&mut s));
    });
    // The call reached the server before the signal.
    let started = Instant::now();
    while !upstream.log().contains("tools/call") {
        assert!(started.elapsed() < PATIENCE, "the call reached the server");
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &gw.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let r = rx.recv_timeout(PATIENCE).expect("the call is answered");
    assert_eq!(r.body["id"], 9, "{r:?}");
    assert_eq!(r.body["error"]["code"], -32603);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("shutting down"),
        "{r:?}"
    );
    // Within --shutdown-timeout, with room for a loaded machine.
    assert!(signalled.elapsed() < Duration::from_secs(5));
    let mut gw = gw;
    let started = Instant::now();
    let status = loop {
        if let Some(s) = gw.child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < PATIENCE, "intercept exits");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.code().is_some(), "exited by itself: {status:?}");
    while gw.stderr.try_recv().is_ok() {}
    assert!(upstream.log().contains("DELETE"), "upstream session closed");
    let events = std::fs::read_to_string(&audit).unwrap();
    assert!(
        events.lines().any(|l| l.contains("\"shutdown\"")),
        "{events}"
    );
}

/// A GET on a new connection; returns the status and the body as text.
fn get(gw: &Gateway, path: &str, head: &[(&str, &str)]) -> (u16, String, String) {
    let mut s = gw.connect();
    let mut req = format!(
        "{} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
        head.iter()
            .find(|(k, _)| *k == "method")
            .map_or("GET", |(_, v)| *v),
        gw.host()
    );
    for (k, v) in head.iter().filter(|(k, _)| *k != "method") {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
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
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn health_and_readiness_say_whether_the_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut upstream = Upstream::start(dir.path());
    let gw = Gateway::start(dir.path(), &upstream.url(), &[]);
    let (status, _, body) = get(&gw, "/healthz", &[]);
    assert_eq!((status, body.contains("ok")), (200, true));
    let (status, _, body) = get(&gw, "/readyz", &[]);
    assert_eq!(status, 200, "{body}");
    let _ = upstream.child.kill();
    let _ = upstream.child.wait();
    let (status, _, body) = get(&gw, "/readyz", &[]);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("unreachable"), "{body}");
    let (status, _, _) = get(&gw, "/healthz", &[]);
    assert_eq!(status, 200);
}

#[test]
fn cors_headers_only_for_the_configured_origin() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path());
    let ide = "https://ide.example.com";
    let gw = Gateway::start(dir.path(), &upstream.url(), &["--cors-origin", ide]);
    let (status, head, _) = get(
        &gw,
        "/mcp",
        &[
            ("method", "OPTIONS"),
            ("origin", ide),
            ("access-control-request-method", "POST"),
        ],
    );
    assert_eq!(status, 204, "{head}");
    assert!(
        head.contains(&format!("access-control-allow-origin: {ide}")),
        "{head}"
    );
    assert!(head.contains("mcp-session-id"), "{head}");
    let r = gw.request(&[("origin", ide)], &initialize().to_string());
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.head
            .contains("access-control-expose-headers: mcp-session-id"),
        "{}",
        r.head
    );
    // A loopback page may call, but gets no CORS headers.
    let r = gw.request(
        &[("origin", "http://localhost:3000")],
        &initialize().to_string(),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        !r.head.contains("access-control-allow-origin"),
        "{}",
        r.head
    );
}

#[test]
fn listener_flags_that_do_not_fit_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "tools: {}\n").unwrap();
    let url = "http://127.0.0.1:9/mcp";
    let cases: &[(&[&str], &str)] = &[
        (
            &["--upstream", url, "--port", "8080"],
            "--port applies to the HTTP listener: add --transport http",
        ),
        (
            &[
                "--upstream",
                url,
                "--transport",
                "sse",
                "--port",
                "0",
                "--no-sse",
            ],
            "--no-sse turns off the legacy HTTP+SSE endpoints",
        ),
        (
            &["--upstream", url, "--transport", "http"],
            "--transport http|sse needs --port N",
        ),
        (
            &[
                "--upstream",
                url,
                "--transport",
                "http",
                "--port",
                "0",
                "--tls-cert",
                "c.pem",
            ],
            "--tls-cert needs --tls-key",
        ),
        (
            &[
                "--upstream",
                url,
                "--transport",
                "http",
                "--port",
                "0",
                "--allowed-origin",
                "evil",
            ],
            "invalid origin \"evil\"",
        ),
        (
            &[
                "--upstream",
                url,
                "--transport",
                "http",
                "--port",
                "0",
                "--session-idle-timeout",
                "soon",
            ],
            "\"soon\" is not a duration",
        ),
    ];
    for (flags, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_intercept"))
            .args([
                "-c",
                policy.to_str().unwrap(),
                "--state",
                "memory",
                "--no-audit",
            ])
            .args(*flags)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
}

/// A self-signed certificate for localhost with this serial, written over `cert` and `key`.
fn certificate(dir: &Path, serial: u32, cert: &Path, key: &Path) {
    let (tmp_cert, tmp_key) = (dir.join("new-cert.pem"), dir.join("new-key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-set_serial", &serial.to_string()])
        .args(["-keyout", tmp_key.to_str().unwrap()])
        .args(["-out", tmp_cert.to_str().unwrap()])
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp_key, key).unwrap();
    std::fs::rename(&tmp_cert, cert).unwrap();
}

/// The serial of the certificate the listener serves, as openssl prints it (`serial=02`).
fn served_serial(port: u16) -> String {
    let mut client = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut pem = String::new();
    client
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut pem)
        .unwrap();
    let _ = client.wait();
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    x509.stdin
        .take()
        .unwrap()
        .write_all(pem.as_bytes())
        .unwrap();
    let out = x509.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn https_is_served_and_a_renewed_certificate_is_picked_up_a_bad_one_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    certificate(dir.path(), 1, &cert, &key);
    let upstream = Upstream::start(dir.path());
    let gw = Gateway::start(
        dir.path(),
        &upstream.url(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(served_serial(gw.port), "serial=01");
    let out = Command::new("curl")
        .args(["-s", "--cacert", cert.to_str().unwrap()])
        .arg(format!("https://localhost:{}/healthz", gw.port))
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");

    certificate(dir.path(), 2, &cert, &key);
    let started = Instant::now();
    while served_serial(gw.port) != "serial=02" {
        assert!(
            started.elapsed() < PATIENCE,
            "the renewed certificate is served"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A broken certificate file: reported, and the one in force stays.
    std::fs::write(&cert, "not a certificate\n").unwrap();
    let started = Instant::now();
    loop {
        let line = gw
            .stderr
            .recv_timeout(PATIENCE.saturating_sub(started.elapsed()))
            .expect("the bad certificate is reported");
        if line.contains("the certificate in force stays") {
            break;
        }
    }
    assert_eq!(served_serial(gw.port), "serial=02");
}
