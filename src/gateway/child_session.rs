//! A client session of the gateway served by a stdio server of its own.
//!
//! A stdio server was written for one client, so each HTTP client session gets its own
//! child. The session's policy core sees the conversation exactly as the stdio proxy's
//! does; what differs is the client side: messages arrive in POST bodies and leave on the
//! streams [`Streams`] picks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::collect;
use super::streams::{Awaited, Destination, Outgoing, Streams};
use crate::proxy::{Closed, Failure, Inbound, RequestFailure, Route, Session};
use crate::transport::TransportError;
use crate::transport::child::ServerCommand;
use crate::transport::lines::Frame;
use crate::upstream::child::ChildProcess;

/// How many messages may wait on one stream for a slow client before the server's output
/// waits too.
const STREAM_BACKLOG: usize = 32;

#[derive(Debug, Clone)]
pub struct ChildSessionOptions {
    pub max_message_bytes: usize,
    /// How long a request may await the server's answer (`--request-timeout`).
    pub request_timeout: Duration,
    /// Each step of stopping the server (`--shutdown-timeout`).
    pub shutdown_timeout: Duration,
    /// Legacy HTTP+SSE: one stream for everything, POSTs answered 202.
    pub single_stream: bool,
}

/// What a POST gets back.
#[derive(Debug)]
pub enum PostReply {
    /// Nothing to answer (notifications and responses only): HTTP 202.
    Accepted,
    /// The answer, as `application/json`.
    Json(Vec<u8>),
    /// Messages as server-sent events; the stream ends with the last answer.
    Stream(Events),
}

/// The messages of a streamed POST reply, or of the GET stream.
#[derive(Debug)]
pub struct Events {
    first: Option<Outgoing>,
    rest: mpsc::Receiver<Outgoing>,
}

impl Events {
    fn new(rest: mpsc::Receiver<Outgoing>) -> Self {
        Events { first: None, rest }
    }

    /// A stream whose first message was already received from `rest`.
    pub(super) fn starting_with(first: Outgoing, rest: mpsc::Receiver<Outgoing>) -> Self {
        Events {
            first: Some(first),
            rest,
        }
    }

    /// The next message; `None` once the stream is over.
    pub async fn next(&mut self) -> Option<Outgoing> {
        match self.first.take() {
            Some(first) => Some(first),
            None => self.rest.recv().await,
        }
    }
}

#[derive(Debug)]
pub struct ChildSession {
    proxy: Arc<Session>,
    child: ChildProcess,
    streams: Mutex<Streams>,
    options: ChildSessionOptions,
}

impl ChildSession {
    /// Starts the session's server and the tasks that read its output and time out its
    /// unanswered requests. Call from a runtime worker (see [`ChildProcess::spawn`]).
    pub fn start(
        server: &ServerCommand,
        env: &[(String, String)],
        proxy: Arc<Session>,
        options: ChildSessionOptions,
    ) -> Result<Arc<ChildSession>, TransportError> {
        let (child, output) = ChildProcess::spawn(server, env, options.max_message_bytes)?;
        tracing::info!(pid = ?child.pid(), command = %crate::redact::redact_command(server.words()), "started MCP server for a session");
        let streams = if options.single_stream {
            Streams::single_stream()
        } else {
            Streams::default()
        };
        let session = Arc::new(ChildSession {
            proxy,
            child,
            streams: Mutex::new(streams),
            options,
        });
        tokio::spawn(session.clone().pump(output));
        tokio::spawn(expire_unanswered(Arc::downgrade(&session)));
        Ok(session)
    }

    /// Whether the server has exited (the session is then over).
    pub fn is_gone(&self) -> bool {
        self.child.exit_status().is_some()
    }

    /// Handles one POST body (a message or a batch).
    pub async fn post(&self, body: &[u8]) -> PostReply {
        let body = super::one_line(body);
        let mut to_server = Vec::new();
        let mut answers = Vec::new();
        for route in collect::client_message(&self.proxy, Inbound::Line(&body)) {
            match route {
                Route::Server(line) => to_server.push(line),
                Route::Client(line) => answers.push(line),
            }
        }
        let awaited: Vec<Awaited> = to_server
            .iter()
            .flat_map(|m| Awaited::in_message(m))
            .collect();

        if self.options.single_stream {
            for answer in answers {
                self.deliver(answer).await;
            }
            self.send_to_server(&to_server, &awaited).await;
            return PostReply::Accepted;
        }
        if awaited.is_empty() {
            self.send_to_server(&to_server, &awaited).await;
            return match answers.len() {
                0 => PostReply::Accepted,
                1 => PostReply::Json(answers.pop().unwrap_or_default()),
                _ => PostReply::Json(json_array(&answers)),
            };
        }
        let (tx, mut rx) = mpsc::channel(STREAM_BACKLOG + answers.len());
        let immediate = !answers.is_empty();
        for message in answers {
            let _ = tx.try_send(Outgoing {
                message,
                last: false,
            });
        }
        lock(&self.streams).open_post(tx, &awaited);
        self.send_to_server(&to_server, &awaited).await;
        if immediate || awaited.len() > 1 {
            return PostReply::Stream(Events::new(rx));
        }
        // One request: a plain JSON answer unless something else comes first.
        match rx.recv().await {
            Some(first) if first.last => PostReply::Json(first.message),
            Some(first) => PostReply::Stream(Events::starting_with(first, rx)),
            // Only when the session ended between the checks above and the write.
            None => PostReply::Json(
                serde_json::to_vec(&crate::proxy::replies::error(
                    &serde_json::from_str(&awaited[0].id).unwrap_or(Value::Null),
                    crate::proxy::replies::code::INTERNAL_ERROR,
                    "The MCP server of this session is gone; start a new session",
                    None,
                ))
                .unwrap_or_default(),
            ),
        }
    }

    /// Opens the session's stream for messages that belong to no request (the GET stream,
    /// or the legacy stream); `None` if one is open already.
    pub fn listen(&self) -> Option<Events> {
        let (tx, rx) = mpsc::channel(STREAM_BACKLOG);
        let queued = lock(&self.streams).open_listener(tx.clone())?;
        for message in queued {
            if tx
                .try_send(Outgoing {
                    message,
                    last: false,
                })
                .is_err()
            {
                break;
            }
        }
        Some(Events::new(rx))
    }

    /// Ends the session: stops the server; requests it did not answer get an error.
    pub async fn close(&self) {
        if self.child.exit_status().is_none() {
            self.child.stop(self.options.shutdown_timeout).await;
        }
    }

    /// Writes one message (without its newline) to the server, as it is.
    pub async fn write_line(&self, message: &[u8]) {
        let mut line = Vec::with_capacity(message.len() + 1);
        line.extend_from_slice(message);
        line.push(b'\n');
        let _ = self.child.write(&line).await;
    }

    /// Writes the messages for the server; if it no longer reads its input, the requests
    /// among them are answered here as never sent.
    async fn send_to_server(&self, messages: &[Vec<u8>], awaited: &[Awaited]) {
        if messages.is_empty() {
            return;
        }
        let mut bytes = Vec::with_capacity(messages.iter().map(|m| m.len() + 1).sum());
        for m in messages {
            bytes.extend_from_slice(m);
            bytes.push(b'\n');
        }
        if self.child.write(&bytes).await.is_ok() {
            return;
        }
        for request in awaited {
            let Ok(id) = serde_json::from_str::<Value>(&request.id) else {
                continue;
            };
            let routes = collect::request_failed(
                &self.proxy,
                &id,
                Failure::new(
                    RequestFailure::NotSent,
                    "The MCP server is no longer reading its input (it exited or closed it); this request was not sent to it",
                ),
            );
            self.deliver_routes(routes).await;
        }
    }

    /// Moves the server's output through the policy core to the client's streams until the
    /// server closes it; then the requests it left unanswered get an error.
    async fn pump(self: Arc<Self>, mut output: mpsc::Receiver<Frame>) {
        let max = self.options.max_message_bytes;
        while let Some(frame) = output.recv().await {
            let routes = match &frame {
                Frame::Line(line) => collect::server_message(&self.proxy, Inbound::Line(line)),
                Frame::Oversize { prefix, len } => collect::server_message(
                    &self.proxy,
                    Inbound::Oversize {
                        prefix,
                        len: *len,
                        limit: max,
                    },
                ),
            };
            self.deliver_routes(routes).await;
        }
        let why = match self.child.exited().await {
            Some(status) => match status.code() {
                Some(c) => format!("exited (code {c})"),
                None => format!("was stopped ({status})"),
            },
            None => "closed its output".to_string(),
        };
        tracing::info!(pid = ?self.child.pid(), "MCP server of a session {why}");
        self.deliver_routes(collect::close(&self.proxy, Closed::UpstreamGone(why)))
            .await;
        // Ends every stream: the client sees them close, and re-initializes on its next
        // request (the session is gone).
        lock(&self.streams).take_all();
    }

    async fn deliver_routes(&self, routes: Vec<Route>) {
        for route in routes {
            match route {
                Route::Client(message) => self.deliver(message).await,
                Route::Server(mut message) => {
                    message.push(b'\n');
                    let _ = self.child.write(&message).await;
                }
            }
        }
    }

    async fn deliver(&self, message: Vec<u8>) {
        let (destination, last) = lock(&self.streams).route(&message);
        if let Destination::Stream(stream) = destination
            && stream.send(Outgoing { message, last }).await.is_err()
        {
            tracing::debug!("a message for a client stream that has closed was dropped");
        }
    }
}

/// Answers the requests the server leaves unanswered for `--request-timeout`, until the
/// session is gone.
async fn expire_unanswered(session: std::sync::Weak<ChildSession>) {
    let Some(timeout) = session.upgrade().map(|s| s.options.request_timeout) else {
        return;
    };
    let mut ticks = tokio::time::interval(crate::transport::sweep_interval(timeout));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(session) = session.upgrade() else {
            return;
        };
        if session.is_gone() {
            return;
        }
        let routes = collect::expire(&session.proxy, timeout);
        session.deliver_routes(routes).await;
    }
}

fn json_array(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![b'['];
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(m);
    }
    out.push(b']');
    out
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::gateway::test_server::{self, call};

    fn session() -> Arc<ChildSession> {
        ChildSession::start(
            &test_server::command(),
            &[],
            test_server::proxy(),
            ChildSessionOptions {
                max_message_bytes: 1 << 20,
                request_timeout: Duration::from_secs(30),
                shutdown_timeout: Duration::from_secs(2),
                single_stream: false,
            },
        )
        .unwrap()
    }

    fn text(v: &[u8]) -> Value {
        serde_json::from_slice(v).unwrap()
    }

    #[tokio::test]
    async fn a_call_is_answered_as_json_and_a_denial_never_reaches_the_server() {
        let s = session();
        let PostReply::Json(answer) = s.post(&call(1, "echo")).await else {
            panic!("expected JSON")
        };
        assert_eq!(text(&answer)["result"]["content"][0]["text"], "ran echo");
        let PostReply::Json(denied) = s.post(&call(2, "forbidden")).await else {
            panic!("expected JSON")
        };
        let denied = text(&denied);
        assert_eq!(denied["id"], 2);
        assert!(denied.to_string().contains("not here"), "{denied}");
        // Pretty-printed bodies (newlines between tokens) are framed as one line.
        let pretty = b"{\n \"jsonrpc\": \"2.0\",\n \"method\": \"notifications/initialized\"\n}";
        assert!(matches!(s.post(pretty).await, PostReply::Accepted));
        s.close().await;
    }

    #[tokio::test]
    async fn progress_and_server_requests_turn_the_answer_into_a_stream() {
        let s = session();
        let PostReply::Stream(mut events) = s.post(&call(7, "slow")).await else {
            panic!("expected a stream")
        };
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            seen.push((text(&event.message), event.last));
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(seen[0].0["method"], "notifications/progress");
        assert_eq!(
            seen[1].0["method"], "sampling/createMessage",
            "no GET stream: the POST takes it"
        );
        assert_eq!(seen[2].0["id"], 7);
        assert!(seen[2].1, "the answer ends the stream");

        let mut get = s.listen().expect("GET stream");
        assert!(s.listen().is_none(), "one GET stream at a time");
        let PostReply::Stream(mut events) = s.post(&call(8, "slow")).await else {
            panic!("expected a stream")
        };
        assert_eq!(
            text(&events.next().await.unwrap().message)["method"],
            "notifications/progress"
        );
        assert_eq!(
            text(&get.next().await.unwrap().message)["method"],
            "sampling/createMessage"
        );
        assert_eq!(text(&events.next().await.unwrap().message)["id"], 8);
        s.close().await;
    }

    #[tokio::test]
    async fn a_server_that_exits_answers_its_pending_requests_with_an_error() {
        let s = session();
        let PostReply::Json(answer) = s.post(&call(3, "exit")).await else {
            panic!("expected JSON")
        };
        let answer = text(&answer);
        assert_eq!(answer["id"], 3);
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("exited (code 3)"),
            "{answer}"
        );
        assert!(s.is_gone());
        let PostReply::Json(after) = s.post(&call(4, "echo")).await else {
            panic!("expected JSON")
        };
        assert!(
            text(&after)["error"]["data"]["reason"] == "not_sent",
            "{}",
            text(&after)
        );
    }
}
