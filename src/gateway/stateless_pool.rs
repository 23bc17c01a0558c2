//! Stateless clients (revision 2026-07-28) in front of a stdio server: a small pool of
//! children that the gateway starts and initializes itself, shared by every such client.
//!
//! A stateless request carries everything about its client in `_meta`, so any child can
//! serve it. Each request is relabelled on the shared child (see [`super::relabel`]) and its
//! answer goes back to the POST that sent it. The server cannot ask a stateless client
//! anything (the revision has no server-to-client requests), so a sampling, elicitation or
//! roots request from the child is answered by the gateway: declined, or "method not
//! found", and logged. Each POST has its own view of the policy (a per-request session),
//! so what is pending belongs to the request that sent it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use super::child_session::{Events, PostReply};
use super::collect;
use super::one_line;
use super::relabel;
use super::streams::Outgoing;
use crate::proxy::{Closed, Failure, Inbound, Route, Session};
use crate::transport::TransportError;
use crate::transport::child::ServerCommand;
use crate::transport::lines::Frame;
use crate::upstream::child::ChildProcess;

/// The revision the gateway asks a pooled child for when it initializes it.
const INITIALIZE_REVISION: &str = "2025-11-25";
const STREAM_BACKLOG: usize = 32;

#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub size: usize,
    pub max_message_bytes: usize,
    /// How long the child may take to answer `initialize`, and each step of stopping it.
    pub shutdown_timeout: Duration,
    pub request_timeout: Duration,
}

#[derive(Debug)]
pub struct StatelessPool {
    server: ServerCommand,
    env: Vec<(String, String)>,
    options: PoolOptions,
    members: Vec<tokio::sync::Mutex<Option<Arc<PooledChild>>>>,
    next_member: AtomicUsize,
}

/// One shared child and the requests it is answering.
#[derive(Debug)]
struct PooledChild {
    child: ChildProcess,
    /// Random, so that no client can name another client's request on the shared child.
    label_prefix: String,
    next_id: AtomicU64,
    in_flight: Mutex<HashMap<String, InFlight>>,
}

#[derive(Debug)]
struct InFlight {
    original_id: Box<RawValue>,
    original_token: Option<Box<RawValue>>,
    proxy: Arc<Session>,
    replies: mpsc::Sender<Outgoing>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    method: Option<String>,
    #[serde(borrow, default)]
    params: Option<ProgressParams<'a>>,
}

#[derive(Deserialize)]
struct ProgressParams<'a> {
    #[serde(borrow, default, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
}

impl StatelessPool {
    pub fn new(server: ServerCommand, env: Vec<(String, String)>, options: PoolOptions) -> Self {
        let members = (0..options.size.max(1))
            .map(|_| tokio::sync::Mutex::new(None))
            .collect();
        StatelessPool {
            server,
            env,
            options,
            members,
            next_member: AtomicUsize::new(0),
        }
    }

    /// Handles one stateless POST with `proxy`, a view of the policy for this request only.
    pub async fn post(&self, body: &[u8], proxy: Arc<Session>) -> PostReply {
        let mut to_server = Vec::new();
        let mut answers = Vec::new();
        for route in collect::client_message(&proxy, Inbound::Line(&one_line(body))) {
            match route {
                Route::Server(line) => to_server.push(line),
                Route::Client(line) => answers.push(line),
            }
        }
        if to_server.is_empty() {
            return match answers.len() {
                0 => PostReply::Accepted,
                _ => PostReply::Json(answers.swap_remove(0)),
            };
        }
        let child = match self.member().await {
            Ok(child) => child,
            Err(why) => return fail_all(&proxy, &to_server, &why),
        };
        let (tx, mut rx) = mpsc::channel(STREAM_BACKLOG);
        let mut lines = Vec::new();
        let mut awaited_ids = Vec::new();
        let mut refused = Vec::new();
        for message in to_server {
            let label = child.label();
            match relabel::request(&message, &label) {
                Some(r) => {
                    awaited_ids.push(r.original_id.clone());
                    lock(&child.in_flight).insert(
                        label,
                        InFlight {
                            original_id: r.original_id,
                            original_token: r.original_token,
                            proxy: proxy.clone(),
                            replies: tx.clone(),
                        },
                    );
                    lines.push(r.message);
                }
                // Only a request relabelled for this child may reach it: a notification or
                // a response under the client's own ids could cancel or answer another
                // client's request on the shared child.
                None => refused.extend(refuse(&proxy, &message)),
            }
        }
        drop(tx);
        if awaited_ids.is_empty()
            && let Some(answer) = refused.into_iter().next()
        {
            return PostReply::Json(answer);
        }
        if lines.is_empty() {
            return PostReply::Accepted;
        }
        let mut bytes = Vec::new();
        for line in &lines {
            bytes.extend_from_slice(line);
            bytes.push(b'\n');
        }
        if child.child.write(&bytes).await.is_err() {
            child.fail_all("is no longer reading its input").await;
        }
        match rx.recv().await {
            Some(first) if first.last && awaited_ids.len() == 1 => PostReply::Json(first.message),
            Some(first) => PostReply::Stream(Events::starting_with(first, rx)),
            // Its answer was lost in a race with the request's expiry: never a silent 202.
            None => PostReply::Json(
                serde_json::to_vec(&crate::proxy::replies::error(
                    &serde_json::from_str(awaited_ids[0].get()).unwrap_or_default(),
                    crate::proxy::replies::code::INTERNAL_ERROR,
                    "The MCP server's answer to this request was lost",
                    None,
                ))
                .unwrap_or_default(),
            ),
        }
    }

    /// A running, initialized child of the pool, taking turns.
    async fn member(&self) -> Result<Arc<PooledChild>, String> {
        let at = self.next_member.fetch_add(1, Ordering::Relaxed) % self.members.len();
        let mut slot = self.members[at].lock().await;
        if let Some(child) = slot.as_ref().filter(|c| c.child.exit_status().is_none()) {
            return Ok(child.clone());
        }
        let child = self.start().await?;
        *slot = Some(child.clone());
        Ok(child)
    }

    async fn start(&self) -> Result<Arc<PooledChild>, String> {
        let (child, mut output) =
            ChildProcess::spawn(&self.server, &self.env, self.options.max_message_bytes)
                .map_err(|e: TransportError| e.to_string())?;
        let initialize = json!({
            "jsonrpc": "2.0", "id": "intercept-initialize", "method": "initialize",
            "params": {
                "protocolVersion": INITIALIZE_REVISION,
                "capabilities": {},
                "clientInfo": { "name": "intercept-gateway", "version": crate::VERSION },
            },
        });
        let mut line = serde_json::to_vec(&initialize).unwrap_or_default();
        line.push(b'\n');
        let answered = async {
            child.write(&line).await.map_err(|e| e.to_string())?;
            while let Some(frame) = output.recv().await {
                let Frame::Line(line) = frame else { continue };
                let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(&line) else {
                    continue;
                };
                if envelope.method.is_none()
                    && envelope.id.map(RawValue::get) == Some("\"intercept-initialize\"")
                {
                    return Ok(line);
                }
            }
            Err("closed its output".to_string())
        };
        let answer = tokio::time::timeout(
            self.options.shutdown_timeout.max(Duration::from_secs(10)),
            answered,
        )
        .await
        .map_err(|_| "did not answer initialize in time".to_string())??;
        if serde_json::from_slice::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v.get("error").cloned())
            .is_some()
        {
            child.stop(self.options.shutdown_timeout).await;
            return Err(format!(
                "refused initialize: {}",
                crate::transport::http::summarize(&answer)
            ));
        }
        let initialized = b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";
        child.write(initialized).await.map_err(|e| e.to_string())?;
        tracing::info!(pid = ?child.pid(), "started a pooled MCP server for stateless clients");
        let pooled = Arc::new(PooledChild {
            child,
            label_prefix: random_hex(),
            next_id: AtomicU64::new(1),
            in_flight: Mutex::new(HashMap::new()),
        });
        tokio::spawn(pooled.clone().pump(output, self.options.max_message_bytes));
        tokio::spawn(expire_unanswered(
            Arc::downgrade(&pooled),
            self.options.request_timeout,
        ));
        Ok(pooled)
    }

    /// Stops every child of the pool.
    pub async fn close(&self) {
        for member in &self.members {
            if let Some(child) = member.lock().await.take() {
                child.child.stop(self.options.shutdown_timeout).await;
            }
        }
    }
}

impl PooledChild {
    /// A request id of the gateway's own on this child.
    fn label(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("intercept-{}-{n}", self.label_prefix)
    }

    async fn pump(self: Arc<Self>, mut output: mpsc::Receiver<Frame>, max: usize) {
        while let Some(frame) = output.recv().await {
            match frame {
                Frame::Line(line) => self.server_message(&line).await,
                Frame::Oversize { prefix, len } => {
                    let Some(id) = crate::proxy::json::top_level_id(&prefix) else {
                        continue;
                    };
                    let request = lock(&self.in_flight).remove(&unquote(&id));
                    if let Some(request) = request {
                        let prefix =
                            format!("{{\"jsonrpc\":\"2.0\",\"id\":{}", request.original_id.get());
                        let routes = collect::server_message(
                            &request.proxy,
                            Inbound::Oversize {
                                prefix: prefix.as_bytes(),
                                len,
                                limit: max,
                            },
                        );
                        deliver(&request, routes, true).await;
                    }
                }
            }
        }
        let why = match self.child.exited().await {
            Some(status) => match status.code() {
                Some(c) => format!("exited (code {c})"),
                None => format!("was stopped ({status})"),
            },
            None => "closed its output".to_string(),
        };
        self.fail_all(&why).await;
    }

    async fn server_message(&self, line: &[u8]) {
        let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(line) else {
            tracing::warn!(
                "a pooled MCP server wrote something that is not a JSON-RPC message; dropped"
            );
            return;
        };
        match (&envelope.method, envelope.id) {
            (None, Some(id)) => {
                let request = lock(&self.in_flight).remove(&unquote(id.get()));
                let Some(request) = request else {
                    return;
                };
                let Some(restored) = relabel::answer(line, &request.original_id) else {
                    return;
                };
                let routes = collect::server_message(&request.proxy, Inbound::Line(&restored));
                deliver(&request, routes, true).await;
            }
            (Some(method), Some(id)) => {
                tracing::warn!(
                    method,
                    "a pooled MCP server asked a stateless client something it cannot be asked; the gateway answered for it"
                );
                let reply = if method == "elicitation/create" {
                    json!({ "jsonrpc": "2.0", "id": id, "result": { "action": "decline" } })
                } else {
                    json!({ "jsonrpc": "2.0", "id": id, "error": {
                        "code": crate::proxy::replies::code::METHOD_NOT_FOUND,
                        "message": format!("{method} is not available: the client is stateless (protocol revision 2026-07-28)"),
                    }})
                };
                let mut bytes = serde_json::to_vec(&reply).unwrap_or_default();
                bytes.push(b'\n');
                let _ = self.child.write(&bytes).await;
            }
            (Some(method), None) if method == "notifications/progress" => {
                let token = envelope
                    .params
                    .and_then(|p| p.progress_token)
                    .map(|t| unquote(t.get()));
                let target = token.and_then(|t| {
                    lock(&self.in_flight)
                        .get(&t)
                        .map(|r| (r.original_token.clone(), r.proxy.clone(), r.replies.clone()))
                });
                if let Some((Some(original), proxy, replies)) = target
                    && let Some(restored) = relabel::progress(line, &original)
                {
                    for route in collect::server_message(&proxy, Inbound::Line(&restored)) {
                        if let Route::Client(message) = route {
                            let _ = replies
                                .send(Outgoing {
                                    message,
                                    last: false,
                                })
                                .await;
                        }
                    }
                }
            }
            // Logging and list changes belong to no stateless request.
            _ => {}
        }
    }

    /// The child is gone: every request it had gets an error.
    async fn fail_all(&self, why: &str) {
        let requests: Vec<InFlight> = lock(&self.in_flight).drain().map(|(_, r)| r).collect();
        for request in requests {
            let routes = collect::close(&request.proxy, Closed::UpstreamGone(why.to_string()));
            deliver(&request, routes, true).await;
        }
    }
}

/// Sends the client's part of `routes` to the request's POST; the answer ends it.
async fn deliver(request: &InFlight, routes: Vec<Route>, answer: bool) {
    let messages: Vec<Vec<u8>> = routes
        .into_iter()
        .filter_map(|r| match r {
            Route::Client(m) => Some(m),
            Route::Server(_) => None,
        })
        .collect();
    let count = messages.len();
    for (i, message) in messages.into_iter().enumerate() {
        let last = answer && i + 1 == count;
        let _ = request.replies.send(Outgoing { message, last }).await;
    }
}

/// Requests of every client that the child leaves unanswered for `--request-timeout`.
async fn expire_unanswered(child: std::sync::Weak<PooledChild>, timeout: Duration) {
    let mut ticks = tokio::time::interval(crate::transport::sweep_interval(timeout));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(child) = child.upgrade() else { return };
        if child.child.exit_status().is_some() {
            return;
        }
        let proxies: Vec<(String, Arc<Session>)> = lock(&child.in_flight)
            .iter()
            .map(|(label, r)| (label.clone(), r.proxy.clone()))
            .collect();
        for (label, proxy) in proxies {
            let routes = collect::expire(&proxy, timeout);
            if routes.iter().any(|r| matches!(r, Route::Client(_))) {
                let request = lock(&child.in_flight).remove(&label);
                if let Some(request) = request {
                    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": label, "reason": "intercept: no answer within --request-timeout"}});
                    let mut bytes = serde_json::to_vec(&cancel).unwrap_or_default();
                    bytes.push(b'\n');
                    let _ = child.child.write(&bytes).await;
                    deliver(&request, routes, true).await;
                }
            }
        }
    }
}

/// Every request of a POST that could not reach a child gets an error.
fn fail_all(proxy: &Session, to_server: &[Vec<u8>], why: &str) -> PostReply {
    let mut answers = Vec::new();
    for message in to_server {
        for awaited in super::streams::Awaited::in_message(message) {
            let Ok(id) = serde_json::from_str(&awaited.id) else {
                continue;
            };
            let failure = Failure::new(
                crate::proxy::RequestFailure::NotSent,
                format!("The MCP server could not be started for this request: {why}"),
            );
            for route in collect::request_failed(proxy, &id, failure) {
                if let Route::Client(m) = route {
                    answers.push(m);
                }
            }
        }
    }
    match answers.len() {
        0 => PostReply::Accepted,
        _ => PostReply::Json(answers.swap_remove(0)),
    }
}

/// Answers for the requests in a message that cannot go to a shared child as it is (not
/// one request object with object params); a notification or a response is dropped.
fn refuse(proxy: &Session, message: &[u8]) -> Vec<Vec<u8>> {
    let mut answers = Vec::new();
    for awaited in super::streams::Awaited::in_message(message) {
        let Ok(id) = serde_json::from_str(&awaited.id) else {
            continue;
        };
        let failure = Failure::new(
            crate::proxy::RequestFailure::NotSent,
            "A stateless request must be one JSON-RPC request whose params (and their _meta) are objects; this one was not sent to the MCP server",
        );
        for route in collect::request_failed(proxy, &id, failure) {
            if let Route::Client(m) = route {
                answers.push(m);
            }
        }
    }
    if answers.is_empty() {
        tracing::debug!(
            "a stateless client's notification or response was not passed to the shared MCP server"
        );
    }
    answers
}

/// 64 random bits, in hex.
fn random_hex() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random number generator failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A label's text as the map holds it: the JSON string without its quotes.
fn unquote(text: &str) -> String {
    serde_json::from_str::<String>(text).unwrap_or_else(|_| text.to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::gateway::test_server::{self, call};
    use serde_json::Value;

    fn pool(size: usize) -> StatelessPool {
        StatelessPool::new(
            test_server::command(),
            Vec::new(),
            PoolOptions {
                size,
                max_message_bytes: 1 << 20,
                shutdown_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(30),
            },
        )
    }

    fn json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    async fn answer(reply: PostReply) -> Vec<Value> {
        match reply {
            PostReply::Json(m) => vec![json(&m)],
            PostReply::Stream(mut events) => {
                let mut all = Vec::new();
                while let Some(e) = events.next().await {
                    all.push(json(&e.message));
                }
                all
            }
            PostReply::Accepted => Vec::new(),
        }
    }

    #[tokio::test]
    async fn clients_that_use_the_same_id_on_one_child_each_get_their_own_answer() {
        let pool = pool(1);
        let (alpha, beta) = (call(1, "alpha"), call(1, "beta"));
        let (a, b) = tokio::join!(
            pool.post(&alpha, test_server::proxy()),
            pool.post(&beta, test_server::proxy()),
        );
        let (a, b) = (answer(a).await, answer(b).await);
        assert_eq!(a[0]["id"], 1);
        assert_eq!(a[0]["result"]["content"][0]["text"], "ran alpha");
        assert_eq!(b[0]["id"], 1);
        assert_eq!(b[0]["result"]["content"][0]["text"], "ran beta");
        pool.close().await;
    }

    #[tokio::test]
    async fn progress_keeps_its_token_and_the_server_cannot_ask_a_stateless_client() {
        let pool = pool(2);
        let messages = answer(pool.post(&call(5, "slow"), test_server::proxy()).await).await;
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(messages[0]["method"], "notifications/progress");
        assert_eq!(
            messages[0]["params"]["progressToken"], "p5",
            "the client's own token"
        );
        assert_eq!(messages[1]["id"], 5);
        pool.close().await;
    }

    #[tokio::test]
    async fn a_denial_never_reaches_a_child_and_a_child_that_exits_is_replaced() {
        let pool = pool(1);
        let denied = answer(pool.post(&call(2, "forbidden"), test_server::proxy()).await).await;
        assert!(denied[0].to_string().contains("not here"), "{denied:?}");
        let gone = answer(pool.post(&call(3, "exit"), test_server::proxy()).await).await;
        assert_eq!(gone[0]["id"], 3);
        assert!(
            gone[0]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("exited (code 3)"),
            "{gone:?}"
        );
        let again = answer(pool.post(&call(4, "echo"), test_server::proxy()).await).await;
        assert_eq!(
            again[0]["result"]["content"][0]["text"], "ran echo",
            "a new child took over"
        );
        pool.close().await;
    }

    #[tokio::test]
    async fn only_relabelled_requests_reach_the_shared_child() {
        let pool = pool(1);
        // _meta that is not an object cannot be relabelled: it would reach the child under
        // the client's own id, which could answer another client's request there.
        let odd = br#"{"jsonrpc":"2.0","id":"intercept-1","method":"tools/call","params":{"name":"echo","arguments":{},"_meta":[]}}"#;
        let refused = answer(pool.post(odd, test_server::proxy()).await).await;
        assert_eq!(refused[0]["id"], "intercept-1");
        assert_eq!(
            refused[0]["error"]["data"]["reason"], "not_sent",
            "{refused:?}"
        );
        let cancel = br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"intercept-1"}}"#;
        assert!(matches!(
            pool.post(cancel, test_server::proxy()).await,
            PostReply::Accepted
        ));
        // The pool still serves, under labels no client can guess.
        let ok = answer(pool.post(&call(9, "echo"), test_server::proxy()).await).await;
        assert_eq!(ok[0]["result"]["content"][0]["text"], "ran echo");
        pool.close().await;
    }
}
