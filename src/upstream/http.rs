//! One MCP session with a server over Streamable HTTP, request-scoped: each message is one
//! POST, and its reply (nothing, a JSON body or an event stream) is handed back as it is,
//! for the caller to relay. The server's session id stays here, never shown to anyone.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{Client, Method, StatusCode, Url};

use super::errors::{auth_challenge, content_type, describe_send_error, send_failure};
use crate::proxy::RequestFailure;
use crate::transport::sse::{Event, SseParser};

pub(crate) const SESSION_HEADER: &str = "mcp-session-id";
pub(crate) const VERSION_HEADER: &str = "mcp-protocol-version";
const LAST_EVENT_ID: &str = "last-event-id";

/// What the server made of one message.
#[derive(Debug)]
pub enum Reply {
    /// 202: a notification or response was taken; nothing comes back.
    Accepted,
    /// The answer, as one JSON body.
    Json(Bytes),
    /// The answer, and whatever the server sends before it, as an event stream.
    Stream(Box<EventStream>),
}

/// Why a message got no usable reply.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The request did not complete: `failure` says whether the server may have got it.
    #[error("{message}")]
    Transport {
        message: String,
        failure: RequestFailure,
    },
    /// The server answered with an HTTP error; `body` may hold a JSON-RPC error to relay.
    #[error("{message}")]
    Status {
        status: StatusCode,
        message: String,
        body: Bytes,
        failure: RequestFailure,
    },
}

impl SendError {
    /// How the request failed, for the proxy core's bookkeeping.
    pub fn failure(&self) -> RequestFailure {
        match self {
            SendError::Transport { failure, .. } | SendError::Status { failure, .. } => *failure,
        }
    }

    /// The server answered "no such session": the client must start again.
    pub fn is_session_gone(&self) -> bool {
        matches!(self, SendError::Status { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

/// The server's events, read as they arrive.
#[derive(Debug)]
pub struct EventStream {
    response: reqwest::Response,
    parser: SseParser,
    ready: std::collections::VecDeque<Event>,
}

impl EventStream {
    fn new(response: reqwest::Response, max: usize) -> Self {
        EventStream {
            response,
            parser: SseParser::new(max),
            ready: Default::default(),
        }
    }

    /// The next event; `None` at the end of the stream, `Err` with why it broke.
    pub async fn next(&mut self) -> Option<Result<Event, String>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(Ok(event));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => {
                    let mut events = Vec::new();
                    self.parser.push(&chunk, &mut events);
                    self.ready.extend(events);
                }
                Ok(None) => return None,
                Err(e) => return Some(Err(super::errors::root_cause(&e))),
            }
        }
    }
}

/// One upstream session; `client` is shared by every session to the same server.
#[derive(Debug)]
pub struct HttpUpstream {
    client: Client,
    url: Url,
    headers: HeaderMap,
    max: usize,
    session: Mutex<Option<String>>,
}

impl HttpUpstream {
    pub fn new(client: Client, url: Url, headers: HeaderMap, max: usize) -> Self {
        HttpUpstream {
            client,
            url,
            headers,
            max,
            session: Mutex::new(None),
        }
    }

    /// An upstream session another instance opened: the server's session id is known.
    pub fn resume(
        client: Client,
        url: Url,
        headers: HeaderMap,
        max: usize,
        session: Option<String>,
    ) -> Self {
        HttpUpstream {
            session: Mutex::new(session),
            ..HttpUpstream::new(client, url, headers, max)
        }
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The server's session id, once it has given one.
    pub fn session_id(&self) -> Option<String> {
        self.lock().clone()
    }

    /// POSTs one message (or batch); `version` is the client's `MCP-Protocol-Version`.
    pub async fn send(&self, msg: Bytes, version: Option<&str>) -> Result<Reply, SendError> {
        let response = self
            .request(Method::POST, version)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(msg)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if let Some(id) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            *self.lock() = Some(id.to_string());
        }
        let status = response.status();
        if status == StatusCode::ACCEPTED {
            return Ok(Reply::Accepted);
        }
        if !status.is_success() {
            return Err(self.status_error(response).await);
        }
        let kind = content_type(&response);
        if kind.starts_with("text/event-stream") {
            Ok(Reply::Stream(Box::new(EventStream::new(
                response, self.max,
            ))))
        } else if kind.starts_with("application/json") {
            self.read_body(response).await.map(Reply::Json)
        } else {
            let what = if kind.is_empty() {
                "no content type".to_string()
            } else {
                kind
            };
            Err(SendError::Transport {
                message: format!(
                    "The MCP server at {} answered with {what} instead of JSON or an event stream",
                    self.url
                ),
                failure: RequestFailure::AnswerLost,
            })
        }
    }

    /// Opens the server's GET stream of server-initiated messages; `None` if it has none
    /// (405).
    pub async fn listen(
        &self,
        last_event_id: Option<&str>,
        version: Option<&str>,
    ) -> Result<Option<Box<EventStream>>, SendError> {
        let mut req = self
            .request(Method::GET, version)
            .header(ACCEPT, "text/event-stream");
        if let Some(last) = last_event_id {
            req = req.header(LAST_EVENT_ID, last);
        }
        let response = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.status_error(response).await);
        }
        Ok(Some(Box::new(EventStream::new(response, self.max))))
    }

    /// Ends the server's session, if it has one (waits at most 2 s: it is a courtesy).
    pub async fn close(&self, version: Option<&str>) {
        if self.lock().is_none() {
            return;
        }
        let req = self.request(Method::DELETE, version);
        match tokio::time::timeout(Duration::from_secs(2), req.send()).await {
            Ok(Ok(r)) => tracing::debug!(status = %r.status(), "upstream session closed"),
            _ => tracing::debug!("closing the upstream session failed"),
        }
        *self.lock() = None;
    }

    fn request(&self, method: Method, version: Option<&str>) -> reqwest::RequestBuilder {
        let mut req = self.client.request(method, self.url.clone());
        if let Some(id) = self.lock().as_deref() {
            req = req.header(SESSION_HEADER, id);
        }
        if let Some(v) = version {
            req = req.header(VERSION_HEADER, v);
        }
        req.headers(self.headers.clone())
    }

    fn transport_error(&self, e: &reqwest::Error) -> SendError {
        SendError::Transport {
            message: describe_send_error(&self.url, e),
            failure: send_failure(e),
        }
    }

    /// A non-2xx answer. A 4xx is the server refusing the request (a call does not count);
    /// anything else may have come after the tool ran (it counts).
    async fn status_error(&self, response: reqwest::Response) -> SendError {
        let status = response.status();
        let failure = if status.is_client_error() {
            RequestFailure::Refused
        } else {
            RequestFailure::AnswerLost
        };
        let hint = auth_challenge(response.headers())
            .map(|v| format!(" (WWW-Authenticate: {v})"))
            .unwrap_or_default();
        let body = self.read_body(response).await.unwrap_or_default();
        let message = match status.as_u16() {
            401 | 403 => format!(
                "The MCP server at {} refused the request (HTTP {status}){hint}: intercept passes credentials given with --header-env NAME",
                self.url
            ),
            404 => format!(
                "The MCP server at {} no longer knows this session (HTTP 404): reconnect the client",
                self.url
            ),
            _ => format!(
                "The MCP server at {} answered HTTP {status}: {}",
                self.url,
                super::errors::summarize(&body)
            ),
        };
        SendError::Status {
            status,
            message,
            body,
            failure,
        }
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Bytes, SendError> {
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(c)) => {
                    if body.len() + c.len() > self.max {
                        return Err(SendError::Transport {
                            message: format!(
                                "The MCP server's response exceeds the proxy's limit of {} bytes (--max-message-bytes)",
                                self.max
                            ),
                            failure: RequestFailure::AnswerLost,
                        });
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => return Ok(body.into()),
                Err(e) => {
                    return Err(SendError::Transport {
                        message: format!("Reading the MCP server's response failed: {e}"),
                        failure: RequestFailure::AnswerLost,
                    });
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }
}
