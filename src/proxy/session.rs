//! One client conversation's view of the policy: the entry points a transport calls.

use std::sync::Arc;

use super::parking::{MemoryParking, RetryParking};
use super::*;
use crate::telemetry::{Telemetry, Transport};

/// Per-connection settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Who is calling, for grants and identity-scoped counters.
    pub identity: Option<String>,
    /// This client connection, for session-scoped counters.
    pub session: String,
    /// Where decisions and outcomes are recorded.
    pub audit: Option<std::sync::Arc<crate::audit::AuditLog>>,
    /// What pending requests' age, timeouts and the audit log's times are read from.
    pub clock: SharedClock,
    /// Where the reservations of calls answered with `input_required` await the retry.
    pub parking: Arc<dyn RetryParking>,
    /// Where each decided call is reported (metrics, spans); disabled costs one branch.
    pub telemetry: Telemetry,
    /// The server's name in those reports: its name in a gateway file, else `default`.
    pub server: Arc<str>,
    /// How the client reaches this session, for those reports.
    pub transport: Transport,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            identity: None,
            session: String::new(),
            audit: None,
            clock: crate::clock::system(),
            parking: Arc::new(MemoryParking::new()),
            telemetry: Telemetry::disabled(),
            server: Arc::from("default"),
            transport: Transport::Stdio,
        }
    }
}

/// One client connection's view of the policy.
#[derive(Debug)]
pub struct Session {
    pub(super) engine: Engine,
    pub(super) options: SessionOptions,
    /// Shared, so each call takes it without copying the text.
    pub(super) client_name: Mutex<Option<std::sync::Arc<str>>>,
    pub(super) pending: Mutex<PendingTable>,
    /// Beyond this many requests awaiting an answer, a call is refused at once.
    pub(super) max_in_flight: usize,
    pub(super) answered: AnsweredByProxy,
    /// The client's capabilities from `initialize`, then the version its answer fixed.
    pub(super) negotiation: Mutex<Negotiation>,
}

#[derive(Debug, Default)]
pub(super) struct Negotiation {
    pub(super) client_capabilities: Option<Value>,
    pub(super) done: Option<Negotiated>,
}

impl Session {
    pub fn new(engine: Engine, options: SessionOptions) -> Self {
        Session {
            engine,
            options,
            client_name: Mutex::new(None),
            pending: Mutex::new(PendingTable::new(PENDING_CAPACITY, PENDING_TTL)),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            answered: AnsweredByProxy::default(),
            negotiation: Mutex::new(Negotiation::default()),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The client's name from `initialize` (the first name given is the name).
    pub fn client_name(&self) -> Option<std::sync::Arc<str>> {
        lock(&self.client_name).clone()
    }

    /// Takes up a conversation that began elsewhere (another instance behind a load
    /// balancer): the client's name is what its `initialize` said there.
    pub fn resume(&self, client_name: Option<&str>) {
        let mut slot = lock(&self.client_name);
        if slot.is_none() {
            *slot = client_name.map(Into::into);
        }
    }

    /// Requests forwarded and not yet answered.
    pub fn pending_count(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Handles one message (or batch) from the client: what goes on to the server and
    /// what the proxy answers itself are written to `out`.
    pub fn client_message(&self, msg: Inbound<'_>, out: &mut impl Outbox) {
        match msg {
            Inbound::Line(line) => match self.tools_call_fast(line) {
                Some(handled) => handled.emit(line, out),
                None => self.client_message_exact(line, out),
            },
            Inbound::Oversize { prefix, len, limit } => {
                self.client_oversize(prefix, len, limit, out)
            }
        }
    }

    /// What `initialize` fixed: the protocol version the server answered with and the
    /// client's capabilities. None before the server has answered it (and always, for a
    /// 2026-07-28 client, which sends no `initialize`).
    pub fn negotiated(&self) -> Option<Negotiated> {
        lock(&self.negotiation).done.clone()
    }

    /// Whether `id` is the client's `initialize` request, still awaiting its answer: what
    /// follows it needs what its answer establishes.
    pub fn is_initialize(&self, id: &RequestId) -> bool {
        matches!(lock(&self.pending).get(&id.0), Some(Pending::Initialize))
    }

    /// Handles one message (or batch) from the server: what reaches the client is written
    /// to `out`. An answer to a request the proxy already answered itself (it timed out,
    /// it failed) is dropped: the client must not get two.
    pub fn server_message(&self, msg: Inbound<'_>, out: &mut impl Outbox) {
        match msg {
            Inbound::Line(line) if self.is_late_answer(line) => {}
            Inbound::Line(line) => match self.server_message_fast(line) {
                Some(answers) => out.to_client(line, answers.as_slice()),
                None => self.server_message_exact(line, out),
            },
            Inbound::Oversize { prefix, len, limit } => {
                self.server_oversize(prefix, len, limit, out)
            }
        }
    }

    /// The conversation is over: every request the server never answered gets an error
    /// (which a transport whose client is gone simply drops). Those calls had been written
    /// to the server, so they count.
    pub fn close(&self, why: Closed, out: &mut impl Outbox) {
        let drained = lock(&self.pending).drain();
        let (outcome, message, reason) = match &why {
            Closed::UpstreamGone(how) => (
                Outcome::UpstreamGone,
                format!("The MCP server {how} before answering this request"),
                None,
            ),
            Closed::Shutdown => (
                Outcome::ShuttingDown,
                "The proxy is shutting down; the MCP server did not answer this request in time"
                    .to_string(),
                Some(RequestFailure::ShuttingDown),
            ),
            Closed::ClientGone | Closed::Idle => (
                Outcome::ClientGone,
                "The client went away before the MCP server answered this request".to_string(),
                None,
            ),
        };
        for (key, pending) in drained {
            if let Pending::Call(info) = pending {
                self.finish_call(info, outcome);
            }
            let id = key.to_value();
            self.answered.remember(key.clone());
            let data = reason.map(|r| json!({ "reason": r.as_str() }));
            let reply = replies::error(&id, code::INTERNAL_ERROR, &message, data);
            out.to_client(&to_line(&reply), &[RequestId(key)]);
        }
    }

    /// [`Session::client_message`] through the exact path only, so the fuzz targets
    /// (`fuzz/`) can check that the fast path answers as it does. Not for transports.
    #[doc(hidden)]
    pub fn client_message_exact_for_fuzzing(&self, line: &[u8]) -> Vec<Route> {
        let mut out = Routes::default();
        self.client_message_exact(line, &mut out);
        out.0
    }

    /// [`Session::server_message`] through the exact path only; see
    /// [`Session::client_message_exact_for_fuzzing`].
    #[doc(hidden)]
    pub fn server_message_exact_for_fuzzing(&self, line: &[u8]) -> Vec<Route> {
        let mut out = Routes::default();
        self.server_message_exact(line, &mut out);
        out.0
    }

    // Bounded waits: what the transports report about requests the server did not answer.

    /// Caps the requests awaiting the server's answer (`--max-in-flight`, at least 1).
    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.max(1);
        self
    }

    /// Requests forwarded `timeout` ago or earlier and still unanswered: each gets an
    /// error, the server a `notifications/cancelled` for it, and a late answer from the
    /// server is dropped. A call counts (the tool may have run).
    pub fn expire(&self, timeout: Duration, out: &mut impl Outbox) {
        let Some(cutoff) = self.options.clock.now().checked_sub(timeout) else {
            return;
        };
        let expired = lock(&self.pending).take_older_than(cutoff);
        let seconds = timeout.as_secs_f64();
        for (key, pending) in expired {
            let id = key.to_value();
            self.answered.remember(key.clone());
            if let Pending::Call(info) = pending {
                self.finish_call(info, Outcome::Timeout);
            }
            let message = format!(
                "The MCP server did not answer within {seconds} seconds (--request-timeout); the request was cancelled"
            );
            tracing::warn!(%id, "{message}");
            let cancel = json!({
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": { "requestId": id, "reason": "intercept: no answer within --request-timeout" },
            });
            out.to_server(&to_line(&cancel), &[]);
            let reply = replies::error(
                &id,
                code::INTERNAL_ERROR,
                &message,
                Some(json!({ "reason": RequestFailure::TimedOut.as_str() })),
            );
            out.to_client(&to_line(&reply), &[RequestId(key)]);
        }
    }

    /// A request the transport could not complete: it gets an error saying why (unless the
    /// proxy already answered it), and a call's reservation is settled as the failure's
    /// kind says (see [`RequestFailure`]).
    pub fn request_failed(&self, id: &RequestId, why: Failure, out: &mut impl Outbox) {
        let key = &id.0;
        if self.answered.contains(key) {
            return;
        }
        let pending = lock(&self.pending).remove(key);
        if let Some(Pending::Call(info)) = pending {
            self.finish_call(info, Outcome::of_failure(why.kind));
        }
        self.answered.remember(key.clone());
        let reply = replies::error(
            &key.to_value(),
            code::INTERNAL_ERROR,
            &why.message,
            Some(json!({ "reason": why.kind.as_str() })),
        );
        out.to_client(&to_line(&reply), std::slice::from_ref(id));
    }
}

#[cfg(test)]
impl Session {
    /// [`Session::client_message`] of one line, collected.
    pub(super) fn client_routes(&self, line: &[u8]) -> Vec<Route> {
        let mut out = Routes::default();
        self.client_message(Inbound::Line(line), &mut out);
        out.0
    }

    /// [`Session::server_message`] of one line, collected.
    pub(super) fn server_routes(&self, line: &[u8]) -> Vec<Route> {
        let mut out = Routes::default();
        self.server_message(Inbound::Line(line), &mut out);
        out.0
    }

    pub(super) fn expire_routes(&self, timeout: Duration) -> Vec<Route> {
        let mut out = Routes::default();
        self.expire(timeout, &mut out);
        out.0
    }
}
