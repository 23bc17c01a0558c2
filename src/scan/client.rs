//! A minimal MCP client: start or reach a server, initialise, page through `tools/list`,
//! and stop. It speaks stdio to a child process, and Streamable HTTP (falling back to the
//! legacy HTTP+SSE transport) to a URL.
//!
//! Protocol eras: it opens with a session-based `initialize` at the newest revision of
//! that era, which every server in the field understands; a server that refuses it as an
//! unknown method or an unsupported version is asked `server/discover` and scanned
//! statelessly (2026-07-28). Probing with `server/discover` first would be the other way
//! round, but some servers of the older era stop when a request arrives before
//! `initialize`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{Client, StatusCode, Url};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::Tool;
use crate::transport::TransportError;
use crate::transport::http::{SESSION_HEADER, VERSION_HEADER};
use crate::transport::process_group::{GroupSignal, ProcessGroup};
use crate::transport::program::Unrunnable;
use crate::transport::sse::SseParser;

/// The revision offered in `initialize`.
pub const SESSION_REVISION: &str = "2025-11-25";
/// The stateless revision, used when a server refuses `initialize`.
pub const STATELESS_REVISION: &str = "2026-07-28";
/// Revisions of the session era this client understands.
const KNOWN_REVISIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
const MAX_PAGES: usize = 1000;
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
const STDERR_TAIL_LINES: usize = 20;

/// What to scan.
#[derive(Debug, Clone)]
pub enum Target {
    /// A command that starts the server on stdio.
    Command(Vec<String>),
    /// A remote server: URL and `Name: Value` headers.
    Url { url: String, headers: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// The whole scan, from start to the last page.
    pub timeout: Duration,
    /// Extra environment for a server command (on top of this process's).
    pub env: Vec<(String, String)>,
}

/// What the scan learnt.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub server_name: Option<String>,
    pub server_version: Option<String>,
    pub protocol_version: String,
    /// `http`, `sse` (legacy) or `stdio`.
    pub transport: &'static str,
    pub tools: Vec<Tool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("no server command given after --")]
    NoCommand,
    #[error("cannot find the server command \"{0}\" on PATH")]
    NotFound(String),
    #[error("cannot start the server command \"{command}\": {why}")]
    Unrunnable {
        command: String,
        why: crate::transport::program::Unrunnable,
    },
    #[error("cannot start \"{command}\": {cause}")]
    Spawn {
        command: String,
        cause: std::io::Error,
    },
    #[error("the server exited ({status}) while {stage}{}", tail(.stderr))]
    Exited {
        stage: &'static str,
        status: String,
        stderr: Vec<String>,
    },
    #[error("the server needs credentials: {detail}{}", tail(.stderr))]
    Credentials { detail: String, stderr: Vec<String> },
    #[error("timed out after {}s while {stage}{}", .after.as_secs_f64(), tail(.stderr))]
    Timeout {
        stage: &'static str,
        after: Duration,
        stderr: Vec<String>,
    },
    #[error("{method} failed: {message} (code {code})")]
    Rpc {
        method: String,
        code: i64,
        message: String,
    },
    #[error("unexpected answer to {method}: {detail}")]
    Protocol { method: String, detail: String },
    #[error("{0}")]
    Http(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "\n--- last lines of the server's stderr ---\n{}",
        lines.join("\n")
    )
}

/// Progress reports, for a person watching stderr.
pub type Progress<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// Lists every tool of a server.
pub async fn discover(
    target: &Target,
    options: &ScanOptions,
    progress: Progress<'_>,
) -> Result<Discovery, ScanError> {
    let shared = Arc::new(Shared::default());
    let mut conn = match target {
        Target::Command(command) => {
            progress(&format!(
                "Starting {}",
                crate::redact::redact_command(command)
            ));
            Conn::Stdio(StdioConn::start(command, &options.env, shared.clone())?)
        }
        Target::Url { url, headers } => {
            progress(&format!(
                "Connecting to {}",
                crate::redact::redact_text(url)
            ));
            Conn::Http(HttpConn::new(url, headers, options.timeout)?)
        }
    };
    let result = tokio::time::timeout(options.timeout, session(&mut conn, &shared, progress)).await;
    conn.close().await;
    match result {
        Ok(r) => r,
        Err(_) => Err(ScanError::Timeout {
            stage: shared.stage(),
            after: options.timeout,
            stderr: shared.stderr_tail(),
        }),
    }
}

/// What the scan and the background readers share: the current stage (for a timeout's
/// message) and the tail of the server's stderr.
#[derive(Debug, Default)]
struct Shared {
    stage: Mutex<&'static str>,
    stderr: Mutex<VecDeque<String>>,
}

impl Shared {
    fn set_stage(&self, stage: &'static str) {
        *self.stage.lock().unwrap_or_else(|p| p.into_inner()) = stage;
    }
    fn stage(&self) -> &'static str {
        let s = *self.stage.lock().unwrap_or_else(|p| p.into_inner());
        if s.is_empty() {
            "starting the server"
        } else {
            s
        }
    }
    fn push_stderr(&self, line: String) {
        let mut t = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() == STDERR_TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line);
    }
    fn stderr_tail(&self) -> Vec<String> {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

fn client_info() -> Value {
    json!({"name": "intercept-scan", "version": crate::VERSION})
}

async fn session(
    conn: &mut Conn,
    shared: &Shared,
    progress: Progress<'_>,
) -> Result<Discovery, ScanError> {
    shared.set_stage("waiting for the answer to initialize");
    progress("Initialising");
    let init = json!({
        "protocolVersion": SESSION_REVISION,
        "capabilities": {},
        "clientInfo": client_info(),
    });
    let (protocol, server_info, stateless) = match conn.request("initialize", init).await {
        Ok(result) => {
            let version = result
                .get("protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !KNOWN_REVISIONS.contains(&version.as_str()) {
                progress(&format!(
                    "warning: the server chose protocol revision \"{version}\", which this client does not know; carrying on"
                ));
            }
            conn.set_protocol(&version);
            shared.set_stage("sending notifications/initialized");
            conn.notify("notifications/initialized", json!({})).await?;
            (version, result.get("serverInfo").cloned(), false)
        }
        Err(e) if refuses_session_era(&e) => {
            progress(
                "The server refused initialize; trying the stateless revision (server/discover)",
            );
            shared.set_stage("waiting for the answer to server/discover");
            let meta = stateless_meta();
            let result = conn
                .request("server/discover", json!({"_meta": meta}))
                .await
                .map_err(|_| e)?;
            conn.set_protocol(STATELESS_REVISION);
            let info = result.get("serverInfo").cloned().or_else(|| {
                result
                    .pointer("/_meta/io.modelcontextprotocol~1serverInfo")
                    .cloned()
            });
            (STATELESS_REVISION.to_string(), info, true)
        }
        Err(e) => return Err(e),
    };
    let text = |key: &str| {
        server_info
            .as_ref()
            .and_then(|i| i.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (server_name, server_version) = (text("name"), text("version"));
    progress(&format!(
        "Server {} {} (protocol {protocol}, {})",
        server_name.as_deref().unwrap_or("(unnamed)"),
        server_version.as_deref().unwrap_or("(no version)"),
        conn.kind()
    ));

    shared.set_stage("listing tools");
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = serde_json::Map::new();
        if let Some(c) = &cursor {
            params.insert("cursor".into(), Value::String(c.clone()));
        }
        if stateless {
            params.insert("_meta".into(), stateless_meta());
        }
        let result = conn.request("tools/list", Value::Object(params)).await?;
        pages += 1;
        let list = result
            .get("tools")
            .and_then(Value::as_array)
            .ok_or_else(|| ScanError::Protocol {
                method: "tools/list".into(),
                detail: "the result has no \"tools\" array".into(),
            })?;
        for t in list {
            match Tool::from_json(t) {
                Some(tool) => tools.push(tool),
                None => progress("warning: skipped a tool without a name"),
            }
        }
        let next = result
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        if pages > 1 || next.is_some() {
            progress(&format!("Tools: {} so far (page {pages})", tools.len()));
        }
        match next {
            Some(n) if cursor.as_deref() == Some(n.as_str()) => {
                return Err(ScanError::Protocol {
                    method: "tools/list".into(),
                    detail: format!("the server returned the same cursor twice ({n:?})"),
                });
            }
            Some(_) if pages >= MAX_PAGES => {
                return Err(ScanError::Protocol {
                    method: "tools/list".into(),
                    detail: format!("more than {MAX_PAGES} pages"),
                });
            }
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    progress(&format!("Found {} tools", tools.len()));
    Ok(Discovery {
        server_name,
        server_version,
        protocol_version: protocol,
        transport: conn.kind(),
        tools,
    })
}

fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": STATELESS_REVISION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": client_info(),
    })
}

/// Does this answer to `initialize` mean "I only speak the stateless revision"?
fn refuses_session_era(e: &ScanError) -> bool {
    match e {
        // Method not found, or UnsupportedProtocolVersion.
        ScanError::Rpc { code, .. } => *code == -32601 || *code == -32022,
        _ => false,
    }
}

enum Conn {
    Stdio(StdioConn),
    Http(HttpConn),
}

impl Conn {
    async fn request(&mut self, method: &str, params: Value) -> Result<Value, ScanError> {
        match self {
            Conn::Stdio(c) => c.request(method, params).await,
            Conn::Http(c) => c.request(method, params).await,
        }
    }
    async fn notify(&mut self, method: &str, params: Value) -> Result<(), ScanError> {
        let msg = json!({"jsonrpc": "2.0", "method": method, "params": params});
        match self {
            Conn::Stdio(c) => c.send(&msg).await,
            Conn::Http(c) => c.notify(&msg).await,
        }
    }
    fn set_protocol(&mut self, version: &str) {
        if let Conn::Http(c) = self {
            c.protocol = Some(version.to_string());
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Conn::Stdio(_) => "stdio",
            Conn::Http(c) if c.legacy.is_some() => "legacy HTTP+SSE",
            Conn::Http(_) => "Streamable HTTP",
        }
    }
    async fn close(&mut self) {
        match self {
            Conn::Stdio(c) => c.close().await,
            Conn::Http(c) => c.close().await,
        }
    }
}

/// The result of a JSON-RPC response, or its error.
fn result_of(method: &str, response: Value) -> Result<Value, ScanError> {
    if let Some(err) = response.get("error") {
        return Err(ScanError::Rpc {
            method: method.to_string(),
            code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
                .to_string(),
        });
    }
    response
        .get("result")
        .cloned()
        .ok_or_else(|| ScanError::Protocol {
            method: method.to_string(),
            detail: "a response with neither result nor error".into(),
        })
}

/// What a message from the server is, for a client waiting on request `id`.
enum Incoming {
    /// The response to our request.
    Ours(Value),
    /// A request from the server, which deserves an answer.
    Request(Value),
    Other,
}

fn sort_incoming(msg: Value, id: u64) -> Vec<Incoming> {
    let items = match msg {
        Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .map(|m| {
            let is_request = m.get("method").is_some() && m.get("id").is_some();
            if is_request {
                Incoming::Request(m)
            } else if m.get("method").is_none() && m.get("id").and_then(Value::as_u64) == Some(id) {
                Incoming::Ours(m)
            } else {
                Incoming::Other
            }
        })
        .collect()
}

/// Our answer to a server's request: `ping` gets `{}`, anything else "not supported"
/// (we declared no client capabilities).
fn answer_server_request(request: &Value) -> Value {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    if request.get("method").and_then(Value::as_str) == Some("ping") {
        json!({"jsonrpc": "2.0", "id": id, "result": {}})
    } else {
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "not supported by intercept scan"}})
    }
}

// ---------------------------------------------------------------------------------------
// stdio

struct StdioConn {
    child: tokio::process::Child,
    /// The server's process group, recorded at spawn: the group outlives the server's own
    /// process when it started others. Dropping it kills what is left of the group.
    group: ProcessGroup,
    stdin: Option<tokio::process::ChildStdin>,
    lines: mpsc::Receiver<Vec<u8>>,
    shared: Arc<Shared>,
    next_id: u64,
}

impl StdioConn {
    fn start(
        command: &[String],
        env: &[(String, String)],
        shared: Arc<Shared>,
    ) -> Result<Self, ScanError> {
        let (program, args) = command.split_first().ok_or(ScanError::NoCommand)?;
        let path = crate::transport::program::locate(program).map_err(|why| match why {
            Unrunnable::NotOnPath => ScanError::NotFound(program.clone()),
            why => ScanError::Unrunnable {
                command: program.clone(),
                why,
            },
        })?;
        let group = ProcessGroup::start().map_err(|cause| ScanError::Spawn {
            command: "/bin/sh (the process-group watchdog)".into(),
            cause,
        })?;
        let mut cmd = tokio::process::Command::new(path);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            // The audit key is intercept's own secret, never the server's.
            .env_remove(crate::audit::KEY_ENV)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        // Its own process group, so that stopping it also stops what it started (npx,
        // uvx and shell wrappers run the real server as a grandchild).
        #[cfg(unix)]
        cmd.process_group(group.id());
        let mut child = cmd.spawn().map_err(|cause| ScanError::Spawn {
            command: program.clone(),
            cause,
        })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut reader = BufReader::with_capacity(256 * 1024, stdout);
            loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let s = shared.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match (&mut reader)
                    .take(64 * 1024)
                    .read_until(b'\n', &mut buf)
                    .await
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                        if !line.is_empty() {
                            s.push_stderr(line);
                        }
                    }
                }
            }
        });
        let stdin = child.stdin.take();
        Ok(StdioConn {
            child,
            group,
            stdin,
            lines,
            shared,
            next_id: 0,
        })
    }

    async fn send(&mut self, msg: &Value) -> Result<(), ScanError> {
        let mut line = serde_json::to_vec(msg).expect("JSON values serialise");
        line.push(b'\n');
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.exited().await);
        };
        if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
            return Err(self.exited().await);
        }
        Ok(())
    }

    async fn request(&mut self, method: &str, params: Value) -> Result<Value, ScanError> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        loop {
            let Some(line) = self.lines.recv().await else {
                return Err(self.exited().await);
            };
            // Servers that print banners or logs to stdout: skip what is not JSON.
            let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            for item in sort_incoming(msg, id) {
                match item {
                    Incoming::Ours(response) => return result_of(method, response),
                    Incoming::Request(req) => self.send(&answer_server_request(&req)).await?,
                    Incoming::Other => {}
                }
            }
        }
    }

    /// The server went away: why, in the words of its exit status and stderr.
    async fn exited(&mut self) -> ScanError {
        let status = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        // Let the stderr reader catch up with the last lines.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stderr = self.shared.stderr_tail();
        let status = match status {
            Ok(Ok(s)) => s.to_string(),
            _ => "closed its output".to_string(),
        };
        if let Some(detail) = credential_complaint(&stderr) {
            return ScanError::Credentials { detail, stderr };
        }
        ScanError::Exited {
            stage: self.shared.stage(),
            status,
            stderr,
        }
    }

    /// Close stdin, wait; then SIGTERM and SIGKILL to the whole process group.
    async fn close(&mut self) {
        self.stdin = None;
        let wait = Duration::from_secs(2);
        let mut exited = tokio::time::timeout(wait, self.child.wait()).await.is_ok();
        if !exited {
            self.group.signal(GroupSignal::Terminate);
            exited = tokio::time::timeout(wait, self.child.wait()).await.is_ok();
        }
        // Whatever is left of the group goes, exited child or not.
        self.group.signal(GroupSignal::Kill);
        if !exited {
            let _ = self.child.kill().await;
        }
    }
}

/// A line of stderr that says credentials are missing or wrong, if any.
fn credential_complaint(stderr: &[String]) -> Option<String> {
    const HINTS: &[&str] = &[
        "api key",
        "api_key",
        "apikey",
        "access token",
        "access_token",
        "token is required",
        "token not",
        "credential",
        "unauthorized",
        "unauthorised",
        "authentication",
        "not authenticated",
        "environment variable",
        "env var",
        "is not set",
        "must be set",
        "missing required",
    ];
    stderr
        .iter()
        .rev()
        .find(|line| {
            let l = line.to_lowercase();
            HINTS.iter().any(|h| l.contains(h))
        })
        .map(|line| line.trim().chars().take(300).collect())
}

// ---------------------------------------------------------------------------------------
// HTTP

struct Legacy {
    endpoint: Url,
    events: mpsc::Receiver<Vec<u8>>,
    reader: tokio::task::JoinHandle<()>,
}

struct HttpConn {
    http: Client,
    url: Url,
    headers: HeaderMap,
    session: Option<String>,
    protocol: Option<String>,
    legacy: Option<Legacy>,
    next_id: u64,
}

impl HttpConn {
    fn new(url: &str, headers: &[String], timeout: Duration) -> Result<Self, ScanError> {
        let parsed = crate::transport::http::parse_url(url)?;
        let headers =
            crate::transport::header::parse_lines(headers).map_err(TransportError::from)?;
        let http = crate::transport::http::client(timeout.min(Duration::from_secs(10)), timeout)?;
        Ok(HttpConn {
            http,
            url: parsed,
            headers,
            session: None,
            protocol: None,
            legacy: None,
            next_id: 0,
        })
    }

    fn post(&self, url: Url, body: &Value, mcp_method: Option<&str>) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(url)
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).expect("JSON values serialise"));
        if let Some(id) = &self.session {
            req = req.header(SESSION_HEADER, id);
        }
        if let Some(v) = &self.protocol {
            req = req.header(VERSION_HEADER, v);
        }
        if let (Some(m), Some(STATELESS_REVISION)) = (mcp_method, self.protocol.as_deref()) {
            req = req.header("mcp-method", m);
        }
        req.headers(self.headers.clone())
    }

    async fn send(
        &mut self,
        body: &Value,
        mcp_method: Option<&str>,
    ) -> Result<reqwest::Response, ScanError> {
        let target = match &self.legacy {
            Some(l) => l.endpoint.clone(),
            None => self.url.clone(),
        };
        let response = self
            .post(target, body, mcp_method)
            .send()
            .await
            .map_err(|e| {
                ScanError::Http(crate::transport::http::describe_send_error(&self.url, &e))
            })?;
        if let Some(id) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            self.session = Some(id.to_string());
        }
        Ok(response)
    }

    async fn request(&mut self, method: &str, params: Value) -> Result<Value, ScanError> {
        self.next_id += 1;
        let id = self.next_id;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.send(&body, Some(method)).await?;
        let status = response.status();
        if self.legacy.is_none()
            && method == "initialize"
            && matches!(status.as_u16(), 400 | 404 | 405)
        {
            // A 400 that is a JSON-RPC error is the server's word on initialize (e.g. a
            // stateless-only server); anything else means the legacy transport.
            let body_bytes = response.bytes().await.unwrap_or_default();
            if let Ok(v) = serde_json::from_slice::<Value>(&body_bytes)
                && v.get("error").is_some()
                && status == StatusCode::BAD_REQUEST
            {
                return result_of(method, v);
            }
            self.start_legacy().await?;
            return Box::pin(self.request(method, params)).await;
        }
        if self.legacy.is_some() {
            if !status.is_success() {
                return Err(self.http_error(response).await);
            }
            loop {
                let data = match self.legacy.as_mut() {
                    Some(l) => l.events.recv().await,
                    None => None,
                };
                let Some(data) = data else {
                    return Err(ScanError::Http(format!(
                        "the legacy SSE stream from {} ended before the answer to {method}",
                        self.url
                    )));
                };
                let Ok(msg) = serde_json::from_slice::<Value>(&data) else {
                    continue;
                };
                for item in sort_incoming(msg, id) {
                    match item {
                        Incoming::Ours(r) => return result_of(method, r),
                        Incoming::Request(req) => {
                            let answer = answer_server_request(&req);
                            let _ = self.send(&answer, None).await;
                        }
                        Incoming::Other => {}
                    }
                }
            }
        }
        if !status.is_success() {
            return Err(self.http_error(response).await);
        }
        let content_type = crate::transport::http::content_type(&response);
        if content_type.starts_with("text/event-stream") {
            self.read_stream(response, method, id).await
        } else if content_type.starts_with("application/json") {
            let bytes = response
                .bytes()
                .await
                .map_err(|e| ScanError::Http(format!("reading the answer to {method}: {e}")))?;
            let msg: Value = serde_json::from_slice(&bytes).map_err(|e| ScanError::Protocol {
                method: method.to_string(),
                detail: format!("invalid JSON: {e}"),
            })?;
            for item in sort_incoming(msg, id) {
                if let Incoming::Ours(r) = item {
                    return result_of(method, r);
                }
            }
            Err(ScanError::Protocol {
                method: method.to_string(),
                detail: "the JSON body holds no response to the request".into(),
            })
        } else {
            Err(ScanError::Protocol {
                method: method.to_string(),
                detail: format!(
                    "HTTP {status} with content type {:?}, neither JSON nor an event stream",
                    content_type
                ),
            })
        }
    }

    /// Reads an SSE response until the event that answers request `id`.
    async fn read_stream(
        &self,
        mut response: reqwest::Response,
        method: &str,
        id: u64,
    ) -> Result<Value, ScanError> {
        let mut parser = SseParser::new(MAX_MESSAGE);
        let mut events = Vec::new();
        loop {
            let chunk = response.chunk().await.map_err(|e| {
                ScanError::Http(format!("the event stream for {method} broke: {e}"))
            })?;
            let Some(chunk) = chunk else {
                return Err(ScanError::Protocol {
                    method: method.to_string(),
                    detail: "the event stream ended without a response".into(),
                });
            };
            parser.push(&chunk, &mut events);
            for event in events.drain(..) {
                if !event.is_message() {
                    continue;
                }
                let Ok(msg) = serde_json::from_slice::<Value>(&event.data) else {
                    continue;
                };
                for item in sort_incoming(msg, id) {
                    match item {
                        Incoming::Ours(r) => return result_of(method, r),
                        Incoming::Request(req) => {
                            let answer = answer_server_request(&req);
                            let _ = self.post(self.url.clone(), &answer, None).send().await;
                        }
                        Incoming::Other => {}
                    }
                }
            }
        }
    }

    async fn notify(&mut self, msg: &Value) -> Result<(), ScanError> {
        let response = self.send(msg, None).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.http_error(response).await)
        }
    }

    async fn http_error(&self, response: reqwest::Response) -> ScanError {
        let status = response.status();
        let challenge = crate::transport::http::auth_challenge(response.headers());
        let body = response.bytes().await.unwrap_or_default();
        if matches!(status.as_u16(), 401 | 403) {
            return ScanError::Credentials {
                detail: format!(
                    "{} answered HTTP {status}{}; pass them with --header-env NAME, where the variable NAME holds \"Authorization: Bearer <token>\"",
                    self.url,
                    challenge
                        .map(|c| format!(" (WWW-Authenticate: {c})"))
                        .unwrap_or_default()
                ),
                stderr: Vec::new(),
            };
        }
        ScanError::Http(format!(
            "{} answered HTTP {status}: {}",
            self.url,
            crate::transport::http::summarize(&body)
        ))
    }

    /// Legacy HTTP+SSE: GET the URL, wait for the `endpoint` event, keep reading the
    /// stream in the background.
    async fn start_legacy(&mut self) -> Result<(), ScanError> {
        let mut req = self
            .http
            .get(self.url.clone())
            .header(ACCEPT, "text/event-stream");
        req = req.headers(self.headers.clone());
        let response = req.send().await.map_err(|e| {
            ScanError::Http(crate::transport::http::describe_send_error(&self.url, &e))
        })?;
        if !response.status().is_success() {
            return Err(self.http_error(response).await);
        }
        let (endpoint_tx, endpoint_rx) = tokio::sync::oneshot::channel::<String>();
        let (tx, events) = mpsc::channel(64);
        let reader = tokio::spawn(async move {
            let mut response = response;
            let mut parser = SseParser::new(MAX_MESSAGE);
            let mut out = Vec::new();
            let mut endpoint_tx = Some(endpoint_tx);
            while let Ok(Some(chunk)) = response.chunk().await {
                parser.push(&chunk, &mut out);
                for event in out.drain(..) {
                    if event.event == "endpoint" {
                        if let Some(tx) = endpoint_tx.take() {
                            let _ =
                                tx.send(String::from_utf8_lossy(&event.data).trim().to_string());
                        }
                    } else if event.is_message() && tx.send(event.data).await.is_err() {
                        return;
                    }
                }
            }
        });
        let endpoint = endpoint_rx.await.map_err(|_| {
            ScanError::Http(format!(
                "{} refused POST initialize and its event stream sent no endpoint event: not an MCP server?",
                self.url
            ))
        })?;
        let endpoint = self.url.join(&endpoint).map_err(|e| {
            ScanError::Http(format!("bad endpoint {endpoint:?} from {}: {e}", self.url))
        })?;
        self.legacy = Some(Legacy {
            endpoint,
            events,
            reader,
        });
        Ok(())
    }

    async fn close(&mut self) {
        if let Some(l) = self.legacy.take() {
            l.reader.abort();
        }
        if let Some(id) = self.session.take() {
            let mut req = self
                .http
                .delete(self.url.clone())
                .header(SESSION_HEADER, id)
                .headers(self.headers.clone());
            if let Some(v) = &self.protocol {
                req = req.header(VERSION_HEADER, v);
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), req.send()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_complaints_are_recognised() {
        let lines = vec![
            "starting".to_string(),
            "Error: TAVILY_API_KEY environment variable is required".to_string(),
        ];
        assert_eq!(
            credential_complaint(&lines).as_deref(),
            Some("Error: TAVILY_API_KEY environment variable is required")
        );
        assert_eq!(credential_complaint(&["listening".to_string()]), None);
    }

    #[test]
    fn responses_are_matched_by_id_and_server_requests_answered() {
        let msg = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "ping"},
            {"jsonrpc": "2.0", "id": 2, "result": {}},
            {"jsonrpc": "2.0", "method": "notifications/message", "params": {}},
            {"jsonrpc": "2.0", "id": 1, "result": {"ok": true}}
        ]);
        let items = sort_incoming(msg, 1);
        assert!(matches!(&items[0], Incoming::Request(_)));
        assert!(matches!(&items[1], Incoming::Other));
        assert!(matches!(&items[2], Incoming::Other));
        assert!(matches!(&items[3], Incoming::Ours(r) if r["result"]["ok"] == true));
        assert_eq!(
            answer_server_request(&json!({"id": "a", "method": "ping"})),
            json!({"jsonrpc": "2.0", "id": "a", "result": {}})
        );
        assert_eq!(
            answer_server_request(&json!({"id": 3, "method": "roots/list"}))["error"]["code"],
            -32601
        );
    }
}
