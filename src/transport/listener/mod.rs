//! The HTTP listener (`--transport http|sse`): many remote clients, each in its own session
//! with its own view of the policy, in front of one MCP server.
//!
//! hyper's HTTP/1.1 server is used directly for the knobs a public listener needs: a
//! deadline for request heads (and for the gap between kept-alive requests), a cap on
//! their size, a cap on connections, and a graceful shutdown.

mod body;
mod child;
mod errors;
mod exchange;
pub(crate) mod guard;
mod legacy;
mod link;
mod sessions;
mod stateless;
mod streamable;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};

use crate::audit::AuditLog;
use crate::engine::Engine;
use crate::gateway::child_session::{ChildSession, ChildSessionOptions};
use crate::gateway::directory::{SessionDirectory, SessionRecord};
use crate::gateway::stateless_pool::{PoolOptions, StatelessPool};
use crate::proxy::MemoryParking;
use crate::proxy::replies::code;
use crate::proxy::{self, SessionOptions};
use crate::shutdown::Shutdown;
use crate::telemetry::{Telemetry, Transport};
use crate::transport::child::ServerCommand;
use crate::upstream::http::HttpUpstream;
use errors::{Response, refused, rpc_error};
use guard::Guard;
use link::Link;
use sessions::{Session, Sessions};

/// Which transports the listener serves.
#[derive(Debug, Clone, Copy)]
pub struct Serve {
    /// Streamable HTTP on the configured path.
    pub streamable: bool,
    /// The legacy HTTP+SSE pair, `/sse` and `/message`.
    pub legacy: bool,
}

/// The listener's own settings (`--transport`, `--port`, `--bind` …).
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub addr: SocketAddr,
    pub serve: Serve,
    pub path: String,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub cors_origins: Vec<String>,
    pub session_idle_timeout: Duration,
    pub max_sessions: usize,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    /// HTTPS: the certificate chain and its key (PEM files), reloaded when they change.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// What each session is made of: the policy, who calls, the audit log, and the server.
#[derive(Debug, Clone)]
pub struct Backend {
    pub engine: Engine,
    pub identity: Option<String>,
    pub audit: Option<Arc<AuditLog>>,
    pub max_in_flight: usize,
    pub upstream: UpstreamSpec,
    pub max_message_bytes: usize,
    pub request_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// Where calls, sessions, HTTP requests and upstream failures are reported.
    pub telemetry: Telemetry,
}

/// The MCP server behind the listener.
#[derive(Debug, Clone)]
pub enum UpstreamSpec {
    /// Reached by URL: one upstream session per client session.
    Url {
        url: String,
        /// Extra request headers for the server, as `Name: Value`.
        headers: Vec<String>,
    },
    /// Started as a command: a child of its own per client session (a stdio server was
    /// written for one client).
    Command {
        server: ServerCommand,
        env: Vec<(String, String)>,
    },
}

/// The upstream, ready to open sessions with.
#[derive(Debug)]
enum Upstream {
    Url {
        client: reqwest::Client,
        url: reqwest::Url,
        headers: reqwest::header::HeaderMap,
    },
    Command {
        server: ServerCommand,
        env: Vec<(String, String)>,
    },
}

impl Upstream {
    fn prepare(spec: &UpstreamSpec, request_timeout: Duration) -> Result<Self, ListenerError> {
        Ok(match spec {
            UpstreamSpec::Url { url, headers } => Upstream::Url {
                url: crate::upstream::errors::parse_url(url)?,
                headers: super::header::parse_lines(headers)
                    .map_err(super::TransportError::from)?,
                client: super::http::client(Duration::from_secs(10), request_timeout)?,
            },
            UpstreamSpec::Command { server, env } => Upstream::Command {
                server: server.clone(),
                env: env.clone(),
            },
        })
    }

    /// For logs: the URL, or the command with secrets hidden.
    fn describe(&self) -> String {
        match self {
            Upstream::Url { url, .. } => crate::redact::redact_text(url.as_str()).into_owned(),
            Upstream::Command { server, .. } => crate::redact::redact_command(server.words()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Upstream(#[from] super::TransportError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Fires once; everything waiting on it wakes.
#[derive(Debug, Default)]
struct Signal {
    fired: AtomicBool,
    notify: Notify,
}

impl Signal {
    fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.fired.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

#[derive(Debug)]
struct Gateway {
    cfg: ListenerConfig,
    backend: Backend,
    upstream: Upstream,
    /// Children shared by stateless clients, started on the first such request.
    pool: std::sync::OnceLock<StatelessPool>,
    /// Where calls answered with `input_required` await their retry: shared by the
    /// requests of stateless clients (of this process), whose retry comes in a request of
    /// its own.
    parking: Arc<MemoryParking>,
    /// Sessions with a server reached by URL, kept in the state store, so that an instance
    /// behind a load balancer can take up a session another opened.
    directory: SessionDirectory,
    guard: Guard,
    sessions: Sessions,
    /// Shutdown has begun: open streams end, new work is refused.
    stopping: Signal,
    /// `--shutdown-timeout` has passed: requests still awaiting the server get an error.
    give_up: Signal,
}

/// Why no session was opened.
#[derive(Debug)]
enum NoSession {
    /// `--max-sessions` are open.
    Sessions(usize),
    /// Shutdown has begun.
    ShuttingDown,
    /// The server command could not be started.
    Unstartable(super::TransportError),
}

impl NoSession {
    fn response(&self, id: &Value) -> Response {
        let message = match self {
            NoSession::Sessions(max) => format!(
                "intercept serves at most {max} sessions at once (--max-sessions): retry later, or close unused sessions"
            ),
            NoSession::ShuttingDown => {
                "intercept is shutting down: no new sessions; retry with another instance or later"
                    .to_string()
            }
            NoSession::Unstartable(e) => format!("The MCP server could not be started: {e}"),
        };
        rpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            id,
            code::INTERNAL_ERROR,
            &message,
        )
    }
}

impl Gateway {
    /// The proxy core's view of the policy for one session, or (`stateless`) for one
    /// request of a stateless client, whose retry comes in a request of its own and so finds
    /// its parked reservation in the parking all stateless requests share. A session parks
    /// its own: no session can spend another's.
    fn policy_session(&self, id: String, stateless: bool) -> proxy::Session {
        let defaults = SessionOptions::default();
        let parking = if stateless {
            self.parking.clone()
        } else {
            defaults.parking.clone()
        };
        proxy::Session::new(
            self.backend.engine.clone(),
            SessionOptions {
                identity: self.backend.identity.clone(),
                session: id,
                audit: self.backend.audit.clone(),
                parking,
                telemetry: self.backend.telemetry.clone(),
                transport: Transport::Http,
                ..defaults
            },
        )
        .with_max_in_flight(self.backend.max_in_flight)
    }

    /// The session `id`: this instance's, or one another instance opened with a server
    /// reached by URL, taken up from the session directory. `None`: the client must start a
    /// new session (404).
    fn session(&self, id: &str) -> Option<Arc<Session>> {
        if let Some(session) = self.sessions.get(id) {
            if let Session {
                link: Link::Http(_),
                ..
            } = &*session
                && !self.renew(id)
            {
                // Another instance ended it.
                self.sessions.remove(id);
                return None;
            }
            return Some(session);
        }
        let Upstream::Url {
            client,
            url,
            headers,
        } = &self.upstream
        else {
            return None;
        };
        let record = match self.directory.find(id) {
            Ok(Some(record)) => record,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(
                    "the session directory cannot be read ({e}); the session is treated as unknown"
                );
                return None;
            }
        };
        if record.identity != self.backend.identity {
            tracing::warn!(session = %exchange::short(id), "a session opened by another identity was refused");
            return None;
        }
        let core = Arc::new(self.policy_session(id.to_string(), false));
        core.resume(record.client_name.as_deref());
        let link = Link::Http(Box::new(HttpUpstream::resume(
            client.clone(),
            url.clone(),
            headers.clone(),
            self.backend.max_message_bytes,
            record.upstream_session,
        )));
        let session = Arc::new(Session::new(
            id.to_string(),
            core,
            link,
            None,
            self.backend.telemetry.clone(),
        ));
        session.set_version(record.protocol_version.as_deref());
        match self.sessions.insert(session.clone()) {
            Ok(()) => {
                tracing::debug!(session = %exchange::short(id), "session taken up from the directory");
                Some(session)
            }
            Err(_) => self.sessions.get(id),
        }
    }

    /// Publishes a session with a server reached by URL once its `initialize` succeeded.
    fn publish(&self, session: &Session) {
        let Link::Http(upstream) = &session.link else {
            return;
        };
        let record = SessionRecord {
            server: String::new(),
            upstream_session: upstream.session_id(),
            protocol_version: session.version(),
            client_name: session.proxy.client_name().map(|n| n.to_string()),
            identity: self.backend.identity.clone(),
        };
        if let Err(e) = self.directory.publish(&session.id, &record) {
            tracing::warn!(
                "the session directory cannot be written ({e}); other instances will not know this session"
            );
        }
    }

    /// Renews a session's record; `false` if another instance ended it.
    fn renew(&self, id: &str) -> bool {
        match self.directory.renew(id) {
            Ok(known) => known,
            Err(e) => {
                tracing::debug!("the session directory cannot be renewed ({e})");
                true
            }
        }
    }

    /// The session ended: no instance may take it up.
    fn forget(&self, id: &str) {
        if let Err(e) = self.directory.forget(id) {
            tracing::debug!("the session directory cannot be updated ({e})");
        }
    }

    /// The stdio children stateless clients share, started on first use.
    fn stateless_pool(&self, server: &ServerCommand, env: &[(String, String)]) -> &StatelessPool {
        self.pool.get_or_init(|| {
            StatelessPool::new(
                server.clone(),
                env.to_vec(),
                PoolOptions {
                    size: STATELESS_POOL,
                    max_message_bytes: self.backend.max_message_bytes,
                    shutdown_timeout: self.backend.shutdown_timeout,
                    request_timeout: self.backend.request_timeout,
                },
            )
        })
    }

    /// A new session (minted id, its own proxy core and upstream session), counted
    /// against `--max-sessions`.
    fn open_session(
        &self,
        legacy: Option<tokio::sync::mpsc::Sender<Bytes>>,
    ) -> Result<Arc<Session>, NoSession> {
        let opened = self.try_open_session(legacy);
        let telemetry = &self.backend.telemetry;
        match &opened {
            Ok(_) => telemetry.session_opened(sessions::SERVER, Transport::Http),
            Err(NoSession::Sessions(_)) => {
                telemetry.session_rejected(sessions::SERVER, "max_sessions")
            }
            Err(NoSession::ShuttingDown) => {
                telemetry.session_rejected(sessions::SERVER, "shutting_down")
            }
            Err(NoSession::Unstartable(_)) => {
                telemetry.session_rejected(sessions::SERVER, "unstartable")
            }
        }
        opened
    }

    fn try_open_session(
        &self,
        legacy: Option<tokio::sync::mpsc::Sender<Bytes>>,
    ) -> Result<Arc<Session>, NoSession> {
        if self.stopping.fired.load(Ordering::SeqCst) {
            return Err(NoSession::ShuttingDown);
        }
        // Before a child is started for nothing (checked again when the session is added).
        if !self.sessions.has_room() {
            return Err(NoSession::Sessions(self.cfg.max_sessions));
        }
        let id = Sessions::mint_id();
        let proxy = Arc::new(self.policy_session(id.clone(), false));
        let link = match &self.upstream {
            Upstream::Url {
                client,
                url,
                headers,
            } => Link::Http(Box::new(HttpUpstream::new(
                client.clone(),
                url.clone(),
                headers.clone(),
                self.backend.max_message_bytes,
            ))),
            Upstream::Command { server, env } => {
                let options = ChildSessionOptions {
                    max_message_bytes: self.backend.max_message_bytes,
                    request_timeout: self.backend.request_timeout,
                    shutdown_timeout: self.backend.shutdown_timeout,
                    single_stream: legacy.is_some(),
                };
                let child = ChildSession::start(server, env, proxy.clone(), options)
                    .map_err(NoSession::Unstartable)?;
                Link::Child(child)
            }
        };
        let telemetry = self.backend.telemetry.clone();
        let session = Arc::new(Session::new(id, proxy, link, legacy, telemetry));
        match self.sessions.insert(session.clone()) {
            Ok(()) => {
                tracing::debug!(session = %exchange::short(&session.id), "session opened");
                Ok(session)
            }
            Err(max) => {
                tracing::warn!(max, "session refused: --max-sessions are open");
                tokio::spawn(async move { session.close("was not needed", None).await });
                Err(NoSession::Sessions(max))
            }
        }
    }

    /// Takes a session out and ends it in the background; `reason` is reported.
    fn close_session(&self, id: &str, why: &'static str, reason: &'static str) {
        self.forget(id);
        if let Some(session) = self.sessions.remove(id) {
            tokio::spawn(async move { session.close(why, Some(reason)).await });
        }
    }
}

/// Serves until a shutdown is requested; returns the exit code.
pub async fn serve(
    cfg: ListenerConfig,
    backend: Backend,
    shutdown: Shutdown,
) -> Result<i32, ListenerError> {
    let upstream = Upstream::prepare(&backend.upstream, backend.request_timeout)?;
    let tls = match &cfg.tls {
        Some((cert, key)) => Some(tls::serve(cert, key)?),
        None => None,
    };
    let listener = TcpListener::bind(cfg.addr)
        .await
        .map_err(|cause| ListenerError::Bind {
            addr: cfg.addr,
            cause,
        })?;
    let bound = listener.local_addr().map_err(|cause| ListenerError::Bind {
        addr: cfg.addr,
        cause,
    })?;
    let gw = Arc::new(Gateway {
        guard: Guard::new(
            bound,
            &cfg.allowed_hosts,
            &cfg.allowed_origins,
            &cfg.cors_origins,
        ),
        sessions: Sessions::new(cfg.max_sessions),
        stopping: Signal::default(),
        give_up: Signal::default(),
        upstream,
        pool: std::sync::OnceLock::new(),
        parking: Arc::new(MemoryParking::new()),
        directory: SessionDirectory::new(backend.engine.store().clone(), cfg.session_idle_timeout),
        backend,
        cfg,
    });
    let what = match (gw.cfg.serve.streamable, gw.cfg.serve.legacy) {
        (true, true) => format!(
            "{} (Streamable HTTP), /sse and /message (legacy SSE)",
            gw.cfg.path
        ),
        (true, false) => format!("{} (Streamable HTTP)", gw.cfg.path),
        _ => "/sse and /message (legacy SSE)".to_string(),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(upstream = %gw.upstream.describe(), "listening on {scheme}://{bound}: {what}");

    let reaper = tokio::spawn(reap_idle(gw.clone()));
    let connections = Arc::new(Semaphore::new(gw.cfg.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(gw.cfg.header_read_timeout)
        .max_buf_size(HEAD_BUFFER);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = shutdown.requested() => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.requested() => break,
        };
        let _ = tcp.set_nodelay(true);
        let (gw, http, watcher) = (gw.clone(), http.clone(), graceful.watcher());
        let acceptor = tls.as_ref().map(|t| t.acceptor.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let Some(acceptor) = acceptor else {
                return serve_connection(gw, &http, watcher, tcp, peer).await;
            };
            match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => serve_connection(gw, &http, watcher, stream, peer).await,
                Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "TLS handshake not finished in time"),
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections");
    gw.stopping.fire();
    reaper.abort();
    let all_done = graceful.shutdown();
    tokio::pin!(all_done);
    tokio::select! {
        () = &mut all_done => {}
        () = tokio::time::sleep(gw.backend.shutdown_timeout) => {
            // Requests still waiting for the server are answered with an error now.
            gw.give_up.fire();
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut all_done).await;
        }
    }
    gw.give_up.fire();
    let mut closing = tokio::task::JoinSet::new();
    for session in gw.sessions.drain() {
        closing.spawn(async move { session.close("was stopped", Some("shutdown")).await });
    }
    while closing.join_next().await.is_some() {}
    if let Some(pool) = gw.pool.get() {
        pool.close().await;
    }
    Ok(0)
}

/// Longest a client may take over the TLS handshake.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

/// Serves one connection's requests until it closes or the shutdown ends it.
async fn serve_connection<I>(
    gw: Arc<Gateway>,
    http: &hyper::server::conn::http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
    io: I,
    peer: SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let gw = gw.clone();
        async move { Ok::<_, Infallible>(handle(gw, req, peer).await) }
    });
    if let Err(e) = watcher
        .watch(http.serve_connection(TokioIo::new(io), service))
        .await
    {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// How many stdio children stateless clients share.
const STATELESS_POOL: usize = 2;

/// Largest request head (request line and headers) accepted.
const HEAD_BUFFER: usize = 64 * 1024;

/// Closes sessions idle for `--session-idle-timeout`: one task for all of them.
async fn reap_idle(gw: Arc<Gateway>) {
    let timeout = gw.cfg.session_idle_timeout;
    let tick = (timeout / 10).clamp(Duration::from_millis(50), Duration::from_secs(30));
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for session in gw.sessions.take_idle(timeout) {
            // A store that cannot answer is no proof the session ended elsewhere.
            if matches!(session.link, Link::Http(_))
                && !matches!(gw.directory.find(&session.id), Ok(None))
            {
                // In use through another instance: only this instance's copy goes.
                continue;
            }
            gw.forget(&session.id);
            tracing::debug!(session = %exchange::short(&session.id), "idle session closed");
            tokio::spawn(
                async move { session.close("closed the idle session", Some("idle")).await },
            );
        }
    }
}

async fn handle(gw: Arc<Gateway>, req: Request<Incoming>, peer: SocketAddr) -> Response {
    let telemetry = gw.backend.telemetry.clone();
    if !telemetry.is_enabled() {
        return handle_request(gw, req, peer).await;
    }
    let endpoint = endpoint_label(&gw.cfg, req.uri().path());
    let method = req.method().clone();
    let response = handle_request(gw, req, peer).await;
    telemetry.http_request(endpoint, method.as_str(), response.status().as_u16());
    response
}

/// The `endpoint` label: one of a closed set, whatever path a client asks for.
fn endpoint_label(cfg: &ListenerConfig, path: &str) -> &'static str {
    match path {
        p if p == cfg.path => "mcp",
        "/sse" => "sse",
        "/message" => "message",
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        _ => "other",
    }
}

async fn handle_request(gw: Arc<Gateway>, req: Request<Incoming>, peer: SocketAddr) -> Response {
    if let Err(why) = gw.guard.check_host(req.headers()) {
        tracing::warn!(%peer, "request refused: {why}");
        gw.backend.telemetry.http_rejected("host");
        return refused(StatusCode::FORBIDDEN, &why.to_string());
    }
    let path = req.uri().path().to_string();
    if matches!(path.as_str(), "/healthz" | "/readyz") && req.method() == Method::GET {
        return health(&gw, &path).await;
    }
    if let Err(why) = gw.guard.check_origin(req.headers()) {
        tracing::warn!(%peer, "request refused: {why}");
        gw.backend.telemetry.http_rejected("origin");
        return refused(StatusCode::FORBIDDEN, &why.to_string());
    }
    let cors = gw.guard.cors_origin(req.headers());
    let (parts, body) = req.into_parts();
    if let Err(never) = guard::authenticate(&parts) {
        match never {}
    }
    let mut response = if parts.method == Method::OPTIONS && cors.is_some() {
        preflight()
    } else {
        route(&gw, parts, body).await
    };
    if let Some(origin) = cors {
        cors_headers(&mut response, &origin);
    }
    response
}

async fn route(gw: &Arc<Gateway>, parts: hyper::http::request::Parts, body: Incoming) -> Response {
    let serve = gw.cfg.serve;
    let path = parts.uri.path();
    let method = &parts.method;
    if serve.streamable && path == gw.cfg.path {
        return match *method {
            Method::POST => match read_body(gw, &parts, body).await {
                Ok(body) => streamable::post(gw, &parts.headers, &body).await,
                Err(response) => response,
            },
            Method::GET => streamable::get(gw, &parts.headers).await,
            Method::DELETE => streamable::delete(gw, &parts.headers).await,
            _ => not_allowed("GET, POST, DELETE"),
        };
    }
    if serve.legacy && path == "/sse" {
        return match *method {
            Method::GET => legacy::open(gw).await,
            _ => not_allowed("GET"),
        };
    }
    if serve.legacy && path == "/message" {
        return match *method {
            Method::POST => match read_body(gw, &parts, body).await {
                Ok(body) => legacy::message(gw, parts.uri.query(), body).await,
                Err(response) => response,
            },
            _ => not_allowed("POST"),
        };
    }
    rpc_error(
        StatusCode::NOT_FOUND,
        &Value::Null,
        code::INVALID_REQUEST,
        &format!("No MCP endpoint at {path}: {}", endpoints(&gw.cfg)),
    )
}

fn endpoints(cfg: &ListenerConfig) -> String {
    match (cfg.serve.streamable, cfg.serve.legacy) {
        (true, true) => format!("use {} (Streamable HTTP) or /sse (legacy SSE)", cfg.path),
        (true, false) => format!("use {} (Streamable HTTP)", cfg.path),
        _ => "use /sse (legacy SSE)".to_string(),
    }
}

async fn read_body(
    gw: &Gateway,
    parts: &hyper::http::request::Parts,
    body: Incoming,
) -> Result<Bytes, Response> {
    let max = gw.backend.max_message_bytes;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match body::read(body, declared, max, gw.cfg.body_read_timeout).await {
        Ok(b) => Ok(b),
        Err(body::BodyError::TooLarge { id, len }) => {
            tracing::warn!("request body over --max-message-bytes ({max}); refused");
            gw.backend.telemetry.http_rejected("too_large");
            Err(errors::too_large(&id, len, max))
        }
        Err(body::BodyError::Timeout) => {
            tracing::warn!("request body not received within --body-read-timeout; refused");
            gw.backend.telemetry.http_rejected("body_timeout");
            let mut r = refused(
                StatusCode::REQUEST_TIMEOUT,
                "Request body not received in time (--body-read-timeout)",
            );
            r.headers_mut()
                .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
            Err(r)
        }
        Err(body::BodyError::Broken) => Err(refused(
            StatusCode::BAD_REQUEST,
            "The request body could not be read",
        )),
    }
}

fn not_allowed(allow: &'static str) -> Response {
    let mut r = rpc_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &Value::Null,
        code::INVALID_REQUEST,
        &format!("Method not allowed here: use {allow}"),
    );
    r.headers_mut()
        .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// `/healthz`: the process answers. `/readyz`: the server and the state store answer too.
async fn health(gw: &Gateway, path: &str) -> Response {
    if path == "/healthz" {
        return errors::text(StatusCode::OK, "ok\n");
    }
    let mut failed = Vec::new();
    match &gw.upstream {
        Upstream::Url { url, .. } => {
            let host = url.host_str().unwrap_or("").to_string();
            let port = url.port_or_known_default().unwrap_or(80);
            let reachable = tokio::time::timeout(
                Duration::from_secs(1),
                tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)),
            )
            .await;
            if !matches!(reachable, Ok(Ok(_))) {
                failed.push(format!("upstream {host}:{port} unreachable"));
            }
        }
        Upstream::Command { server, .. } => {
            if let Err(e) = ServerCommand::locate(server.words().to_vec()) {
                failed.push(format!("upstream command: {e}"));
            }
        }
    }
    let store = gw.backend.engine.store().clone();
    match tokio::task::spawn_blocking(move || store.check()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failed.push(format!("state store: {e}")),
        Err(_) => failed.push("state store check failed".to_string()),
    }
    if failed.is_empty() {
        errors::json(StatusCode::OK, Bytes::from_static(b"{\"ready\":true}"))
    } else {
        let body = serde_json::json!({ "ready": false, "failed": failed }).to_string();
        errors::json(StatusCode::SERVICE_UNAVAILABLE, body.into())
    }
}

const CORS_ALLOW_HEADERS: &str = "content-type, accept, authorization, mcp-session-id, mcp-protocol-version, last-event-id, mcp-method, mcp-name";

fn preflight() -> Response {
    let mut r = hyper::Response::new(body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static(CORS_ALLOW_HEADERS),
    );
    h.insert("access-control-max-age", HeaderValue::from_static("600"));
    r
}

fn cors_headers(response: &mut Response, origin: &str) {
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert("access-control-allow-origin", v);
    }
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("mcp-session-id, mcp-protocol-version"),
    );
    h.append(hyper::header::VARY, HeaderValue::from_static("origin"));
}
