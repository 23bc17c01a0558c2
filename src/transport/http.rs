//! Remote mode: stdio towards the client, Streamable HTTP (or legacy HTTP+SSE) towards the
//! server.
//!
//! Every client message is POSTed on its own task, so a slow tool call never holds up a
//! ping or a cancellation. Every failure (unreachable server, timeout, an HTTP error, an
//! HTML page, an expired session, an event stream that ends before the answer) reaches
//! the client as a JSON-RPC error on the request it concerns: the client never waits
//! forever. The proxy core is told how each request failed, which decides whether a call
//! counts (see [`RequestFailure`]).

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{Client, StatusCode, Url};
use serde_json::Value;
use tokio::sync::mpsc;

use super::child::ClientStreams;
use super::lines::Frame;
use super::sse::{Event, SseParser};
use super::stdio::{Sink, read_frames, write_bytes};
use super::{TransportError, sweep_interval};
use crate::proxy::{Closed, Failure, Inbound, Outbox, RequestFailure, RequestId, Session};
use crate::shutdown::Shutdown;
// Shared with the listener's upstream client and `intercept scan`.
pub(crate) use crate::upstream::errors::{
    auth_challenge, content_type, describe_send_error, parse_url, root_cause, send_failure,
    summarize,
};

pub(crate) use crate::upstream::http::{SESSION_HEADER, VERSION_HEADER};

#[derive(Debug, Clone)]
pub struct RemoteOptions {
    pub url: String,
    /// Extra request headers, as `Name: Value`.
    pub headers: Vec<String>,
    pub max_message_bytes: usize,
    /// Longest a single request may take (tool calls can be slow).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

/// An HTTP client for MCP servers (also used by `intercept scan`).
pub fn client(connect_timeout: Duration, read_timeout: Duration) -> Result<Client, TransportError> {
    // One process-wide TLS provider (ring: no C toolchain beyond cc is needed to build it).
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .connect_timeout(connect_timeout)
        .read_timeout(read_timeout)
        .build()
        .map_err(|e| TransportError::Http(e.to_string()))
}

/// What the connection has learnt about the server (the protocol version is the proxy
/// core's to know: [`Session::negotiated`]).
#[derive(Debug, Default)]
struct UpstreamSession {
    id: Option<String>,
    /// Legacy HTTP+SSE: where messages are POSTed, learnt from the `endpoint` event.
    legacy_endpoint: Option<Url>,
    stream_started: bool,
}

struct Remote {
    proxy: Arc<Session>,
    http: Client,
    url: Url,
    headers: HeaderMap,
    max: usize,
    to_client: Sink,
    session: Mutex<UpstreamSession>,
    /// Ends the GET stream's reconnection attempts.
    shutdown: Shutdown,
}

/// Runs the proxy between the client and a remote server until the client goes away or
/// a shutdown is requested; returns the exit code.
pub async fn serve<R: Read + Send + 'static>(
    proxy: Arc<Session>,
    options: RemoteOptions,
    client: ClientStreams<R>,
    shutdown: Shutdown,
) -> Result<i32, TransportError> {
    let url = parse_url(&options.url)?;
    let headers = super::header::parse_lines(&options.headers)?;
    let http = self::client(options.connect_timeout, options.request_timeout)?;
    let remote = Arc::new(Remote {
        proxy: proxy.clone(),
        http,
        url,
        headers,
        max: options.max_message_bytes,
        to_client: client.output.clone(),
        session: Mutex::new(UpstreamSession::default()),
        shutdown: shutdown.clone(),
    });
    tracing::info!(url = %remote.url, "proxying to a remote MCP server");

    let (to_server, mut server_rx) = mpsc::channel::<Outgoing>(1024);
    let max = options.max_message_bytes;
    let mut client_done = {
        let (proxy, to_client) = (proxy.clone(), client.output.clone());
        read_frames("intercept-client", client.input, max, move |frames| {
            let mut out = Collected::default();
            for frame in frames {
                let msg = match &frame {
                    Frame::Line(line) => Inbound::Line(line),
                    Frame::Oversize { prefix, len } => Inbound::Oversize {
                        prefix,
                        len: *len,
                        limit: max,
                    },
                };
                proxy.client_message(msg, &mut out);
            }
            for message in out.to_server {
                if to_server.blocking_send(message).is_err() {
                    return false;
                }
            }
            out.to_client.is_empty() || write_bytes(&to_client, &out.to_client)
        })
        .map_err(TransportError::Thread)?
    };

    let mut tasks = tokio::task::JoinSet::new();
    let mut sweep = tokio::time::interval(sweep_interval(options.request_timeout));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = server_rx.recv() => match message {
                // Everything after initialize needs what it establishes (the session id,
                // the protocol version, or the legacy endpoint): let it finish first.
                Some(message) if remote.is_initialize(&message.awaits) => {
                    remote.clone().post(message).await
                }
                Some(message) => {
                    let remote = remote.clone();
                    tasks.spawn(async move { remote.post(message).await });
                }
                None => break,
            },
            _ = &mut client_done => break,
            () = shutdown.requested() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            // Requests past --request-timeout: answered, and cancelled at the server.
            _ = sweep.tick() => {
                let mut out = Collected::default();
                proxy.expire(options.request_timeout, &mut out);
                for message in out.to_server {
                    let remote = remote.clone();
                    tasks.spawn(async move { remote.post(message).await });
                }
                remote.deliver(out.to_client).await;
            }
        }
    }
    // Messages read before the client left still go out.
    while let Ok(message) = server_rx.try_recv() {
        let remote = remote.clone();
        tasks.spawn(async move { remote.post(message).await });
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
    remote.close_session().await;
    let mut errors = Collected::default();
    proxy.close(
        Closed::UpstreamGone("connection was closed".into()),
        &mut errors,
    );
    remote.deliver(errors.to_client).await;
    Ok(0)
}

/// A client message for the server, with the requests in it that await an answer.
#[derive(Debug)]
struct Outgoing {
    line: Vec<u8>,
    awaits: Vec<RequestId>,
}

/// What the proxy core wrote: messages to POST, and lines for the client (with the
/// requests they answer).
#[derive(Debug, Default)]
struct Collected {
    to_server: Vec<Outgoing>,
    to_client: Vec<u8>,
    answered: Vec<RequestId>,
}

impl Outbox for Collected {
    fn to_server(&mut self, msg: &[u8], awaits: &[RequestId]) {
        self.to_server.push(Outgoing {
            line: msg.to_vec(),
            awaits: awaits.to_vec(),
        });
    }

    fn to_client(&mut self, msg: &[u8], answers: &[RequestId]) {
        self.to_client.extend_from_slice(msg);
        self.to_client.push(b'\n');
        self.answered.extend_from_slice(answers);
    }
}

impl Remote {
    /// Whether a message holds the client's `initialize` request.
    fn is_initialize(&self, awaits: &[RequestId]) -> bool {
        awaits.iter().any(|id| self.proxy.is_initialize(id))
    }

    /// POSTs one client message and relays whatever comes back.
    async fn post(self: Arc<Self>, message: Outgoing) {
        let is_initialize = self.is_initialize(&message.awaits);
        let Outgoing {
            line,
            awaits: mut ids,
        } = message;
        let endpoint = self.lock().legacy_endpoint.clone();
        let target = endpoint.clone().unwrap_or_else(|| self.url.clone());
        let response = match self
            .request(reqwest::Method::POST, target.clone())
            .body(line.clone())
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let message = describe_send_error(&self.url, &e);
                return self.fail(&ids, &message, send_failure(&e)).await;
            }
        };
        self.remember_session(response.headers());
        let status = response.status();
        if endpoint.is_none() && is_initialize && matches!(status.as_u16(), 400 | 404 | 405) {
            // A server that only speaks the legacy HTTP+SSE transport (2024-11-05).
            tracing::info!(%status, "POST initialize refused; trying the legacy HTTP+SSE transport");
            return self.start_legacy(line, ids).await;
        }
        if status == StatusCode::ACCEPTED {
            return;
        }
        let content_type = content_type(&response);
        if status.is_success() && content_type.starts_with("text/event-stream") {
            let end = match self.relay_stream(response, false, &mut ids).await {
                Some(broke) => format!("broke ({broke})"),
                None => "ended".into(),
            };
            let message = format!(
                "The MCP server's event stream {end} before it answered this request; the tool may have run"
            );
            self.fail(&ids, &message, RequestFailure::AnswerLost).await;
        } else if status.is_success() && content_type.starts_with("application/json") {
            match self.read_body(response).await {
                Ok(body) => {
                    self.relay_message(&body, &mut ids).await;
                    let message = "The MCP server's answer held no response to this request";
                    self.fail(&ids, message, RequestFailure::AnswerLost).await;
                }
                Err(e) => self.fail(&ids, &e, RequestFailure::AnswerLost).await,
            }
        } else if status.is_success() {
            let what = if content_type.is_empty() {
                "no content type".to_string()
            } else {
                content_type
            };
            self.fail(
                &ids,
                &format!(
                    "The MCP server at {} answered with {what} instead of JSON or an event stream",
                    self.url
                ),
                RequestFailure::AnswerLost,
            )
            .await;
        } else {
            self.http_error(response, &ids).await;
        }
        if is_initialize && status.is_success() {
            self.start_stream();
        }
    }

    /// A non-2xx answer: relayed if it is a JSON-RPC error for these requests, otherwise
    /// turned into one with a message that says what to do. A 4xx is the server refusing
    /// the request (the call does not count); anything else may have come after the tool
    /// ran (it counts).
    async fn http_error(&self, response: reqwest::Response, ids: &[RequestId]) {
        let status = response.status();
        let failure = if status.is_client_error() {
            RequestFailure::Refused
        } else {
            RequestFailure::AnswerLost
        };
        let had_session = self.lock().id.is_some();
        let auth_hint = auth_challenge(response.headers())
            .map(|v| format!(" (WWW-Authenticate: {v})"))
            .unwrap_or_default();
        let body = self.read_body(response).await.unwrap_or_default();
        if let Ok(v) = serde_json::from_slice::<Value>(&body)
            && v.get("error").is_some()
            && v.get("id").is_some_and(|id| !id.is_null())
        {
            let mut ids = ids.to_vec();
            self.relay_message(&body, &mut ids).await;
            let message = format!(
                "The MCP server at {} answered HTTP {status} without a response to this request",
                self.url
            );
            return self.fail(&ids, &message, failure).await;
        }
        let message = match status.as_u16() {
            401 | 403 => format!(
                "The MCP server at {} refused the request (HTTP {status}){auth_hint}: pass credentials with --header-env NAME, where the variable NAME holds \"Authorization: Bearer <token>\"",
                self.url
            ),
            404 if had_session => {
                self.lock().id = None;
                format!(
                    "The MCP server at {} no longer knows this session (HTTP 404): the session expired; reconnect the client",
                    self.url
                )
            }
            _ => format!(
                "The MCP server at {} answered HTTP {status}: {}",
                self.url,
                summarize(&body)
            ),
        };
        self.fail(ids, &message, failure).await;
    }

    /// Relays an event stream (a POST's response, the GET stream or the legacy stream),
    /// taking the requests it answers off `awaiting`; returns why it broke, if it did.
    /// On a `legacy` stream, the `endpoint` event says where to POST.
    async fn relay_stream(
        &self,
        mut response: reqwest::Response,
        legacy: bool,
        awaiting: &mut Vec<RequestId>,
    ) -> Option<String> {
        let mut parser = SseParser::new(self.max);
        let mut events = Vec::new();
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!("event stream from the MCP server broke: {e}");
                    return Some(root_cause(&e));
                }
            };
            parser.push(&chunk, &mut events);
            for event in events.drain(..) {
                if event.event == "endpoint" {
                    let text = String::from_utf8_lossy(&event.data);
                    match self.url.join(text.trim()) {
                        Ok(url) if legacy => self.lock().legacy_endpoint = Some(url),
                        Ok(_) => {}
                        Err(e) => tracing::warn!("bad legacy endpoint {text:?}: {e}"),
                    }
                    continue;
                }
                if !event.is_message() {
                    continue;
                }
                self.relay_event(event, awaiting).await;
            }
        }
    }

    async fn relay_event(&self, event: Event, awaiting: &mut Vec<RequestId>) {
        if event.truncated {
            let mut out = Collected::default();
            let msg = Inbound::Oversize {
                prefix: &event.data,
                len: event.len,
                limit: self.max,
            };
            self.proxy.server_message(msg, &mut out);
            awaiting.retain(|id| !out.answered.contains(id));
            self.deliver(out.to_client).await;
        } else if !event.data.iter().all(u8::is_ascii_whitespace) {
            self.relay_message(&event.data, awaiting).await;
        }
    }

    /// One message (or batch) from the server, through the proxy core to the client;
    /// the requests it answers come off `awaiting`.
    async fn relay_message(&self, body: &[u8], awaiting: &mut Vec<RequestId>) {
        // Servers may pretty-print; the client's stream is one message per line.
        let compact;
        let line = if body.contains(&b'\n') {
            compact = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| serde_json::to_vec(&v).ok())
                .unwrap_or_else(|| {
                    body.iter()
                        .copied()
                        .filter(|b| *b != b'\n' && *b != b'\r')
                        .collect()
                });
            &compact[..]
        } else {
            body
        };
        let mut out = Collected::default();
        self.proxy.server_message(Inbound::Line(line), &mut out);
        awaiting.retain(|id| !out.answered.contains(id));
        self.deliver(out.to_client).await;
    }

    /// Writes lines (each with its newline) to the client.
    async fn deliver(&self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let sink = self.to_client.clone();
        let _ = tokio::task::spawn_blocking(move || write_bytes(&sink, &bytes)).await;
    }

    /// Answers each request with a JSON-RPC error, through the proxy core, which settles
    /// what a call reserved as `failure` says.
    async fn fail(&self, ids: &[RequestId], message: &str, failure: RequestFailure) {
        if ids.is_empty() {
            return;
        }
        // The message names the upstream URL; the agent must not learn its credentials.
        let message = crate::redact::redact_text(message).into_owned();
        tracing::warn!("{message}");
        let mut out = Collected::default();
        for id in ids {
            let why = Failure::new(failure, message.clone());
            self.proxy.request_failed(id, why, &mut out);
        }
        self.deliver(out.to_client).await;
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(c)) => {
                    if body.len() + c.len() > self.max {
                        return Err(format!(
                            "The MCP server's response exceeds the proxy's limit of {} bytes (--max-message-bytes)",
                            self.max
                        ));
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => return Ok(body),
                Err(e) => return Err(format!("Reading the MCP server's response failed: {e}")),
            }
        }
    }

    /// After a successful initialize, listen for server-initiated messages on a GET
    /// stream, if the server offers one (405 means it does not).
    fn start_stream(self: &Arc<Self>) {
        {
            let mut s = self.lock();
            if s.stream_started || s.legacy_endpoint.is_some() {
                return;
            }
            s.stream_started = true;
        }
        let remote = self.clone();
        tokio::spawn(async move {
            for attempt in 0..5u32 {
                let req = remote
                    .request(reqwest::Method::GET, remote.url.clone())
                    .header(ACCEPT, "text/event-stream");
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        remote.relay_stream(r, false, &mut Vec::new()).await;
                    }
                    Ok(r) => {
                        tracing::debug!(status = %r.status(), "no server-initiated message stream");
                        return;
                    }
                    Err(e) => tracing::debug!("server-initiated message stream failed: {e}"),
                }
                if remote.shutdown.is_requested() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt + 1))).await;
            }
        });
    }

    /// Legacy HTTP+SSE: GET the URL for the event stream, learn the POST endpoint from its
    /// `endpoint` event, then send the initialize request there.
    async fn start_legacy(self: Arc<Self>, initialize: Vec<u8>, awaits: Vec<RequestId>) {
        let ids = &awaits[..];
        let response = match self
            .request(reqwest::Method::GET, self.url.clone())
            .header(ACCEPT, "text/event-stream")
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => return self.http_error(r, ids).await,
            Err(e) => {
                let message = describe_send_error(&self.url, &e);
                return self.fail(ids, &message, send_failure(&e)).await;
            }
        };
        let remote = self.clone();
        tokio::spawn(async move { remote.relay_stream(response, true, &mut Vec::new()).await });
        for _ in 0..100 {
            if self.lock().legacy_endpoint.is_some() {
                let message = Outgoing {
                    line: initialize,
                    awaits,
                };
                return Box::pin(self.clone().post(message)).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.fail(
            ids,
            &format!(
                "The MCP server at {} sent no endpoint event on its legacy SSE stream",
                self.url
            ),
            RequestFailure::NotSent,
        )
        .await;
    }

    fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        let s = self.lock();
        let mut req = self
            .http
            .request(method.clone(), url)
            .header(ACCEPT, "application/json, text/event-stream");
        if method == reqwest::Method::POST {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        if let Some(id) = &s.id {
            req = req.header(SESSION_HEADER, id);
        }
        drop(s);
        if let Some(negotiated) = self.proxy.negotiated() {
            req = req.header(VERSION_HEADER, negotiated.protocol_version);
        }
        req.headers(self.headers.clone())
    }

    fn remember_session(&self, headers: &HeaderMap) {
        if let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
            let mut s = self.lock();
            if s.id.as_deref() != Some(id) {
                s.id = Some(id.to_string());
            }
        }
    }

    /// Ends the server's session, if it has one.
    async fn close_session(&self) {
        if self.lock().id.is_none() {
            return;
        }
        let req = self.request(reqwest::Method::DELETE, self.url.clone());
        match tokio::time::timeout(Duration::from_secs(2), req.send()).await {
            Ok(Ok(r)) => tracing::debug!(status = %r.status(), "session closed"),
            _ => tracing::debug!("closing the session failed"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, UpstreamSession> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }
}
