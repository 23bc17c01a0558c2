//! MCP-aware message handling, independent of the transport.
//!
//! The transport hands every message it reads to [`Proxy::client_message`] or
//! [`Proxy::server_message`], with an [`Outbox`] that takes what goes to either side, and
//! reports what it could not deliver ([`Proxy::request_failed`], [`Proxy::expire`],
//! [`Proxy::close`]). It never reads JSON-RPC itself: the outbox is told which requests a
//! message to the server awaits answers for, and which requests a message to the client
//! answers. Only `tools/call` requests and `tools/list` responses are changed; everything
//! else is forwarded byte for byte, in both directions.

mod answered;
mod failure;
#[cfg(test)]
mod fast_path_tests;
pub mod json;
pub mod keys;
mod outbox;
mod pending;
pub mod replies;
#[cfg(test)]
mod tracking_tests;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::clock::SharedClock;
use crate::engine::{Args, Call, Decision, Engine, Verdict};
use crate::state::Reservation;
use answered::AnsweredByProxy;
pub use failure::RequestFailure;
use json::{JsonProblem, Keys};
pub use outbox::{
    Closed, Failure, Inbound, LineBuffers, Negotiated, Outbox, RequestId, Route, Routes,
};
use pending::{CallInfo, IdKey, Pending, PendingTable};
use replies::code;

/// How many forwarded requests may await a response at once.
const PENDING_CAPACITY: usize = 10_000;
/// How long a forwarded request may await its response before it is forgotten.
const PENDING_TTL: Duration = Duration::from_secs(6 * 3600);
/// How many calls may await an `inputResponses` retry at once.
const AWAITING_INPUT_CAPACITY: usize = 1_000;
/// How many forwarded requests may await an answer before further calls are refused
/// (`--max-in-flight`).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// Per-connection settings.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Who is calling, for grants and identity-scoped counters.
    pub identity: Option<String>,
    /// This client connection, for session-scoped counters.
    pub session: String,
    /// Where decisions and outcomes are recorded.
    pub audit: Option<std::sync::Arc<crate::audit::AuditLog>>,
    /// What pending requests' age, timeouts and the audit log's times are read from.
    pub clock: SharedClock,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            identity: None,
            session: String::new(),
            audit: None,
            clock: crate::clock::system(),
        }
    }
}

/// One client connection's view of the policy.
#[derive(Debug)]
pub struct Proxy {
    engine: Engine,
    options: ProxyOptions,
    /// Shared, so each call takes it without copying the text.
    client_name: Mutex<Option<std::sync::Arc<str>>>,
    pending: Mutex<PendingTable>,
    /// Reservations of calls the server answered with `input_required`, keyed by tool and
    /// arguments: the client's retry with `inputResponses` is the same call.
    awaiting_input: Mutex<HashMap<u64, Reservation>>,
    /// Keys the retry hashes, so a client cannot craft a collision.
    retry_hasher: foldhash::quality::RandomState,
    /// Beyond this many requests awaiting an answer, a call is refused at once.
    max_in_flight: usize,
    answered: AnsweredByProxy,
    /// The client's capabilities from `initialize`, then the version its answer fixed.
    negotiation: Mutex<Negotiation>,
}

#[derive(Debug, Default)]
struct Negotiation {
    client_capabilities: Option<Value>,
    done: Option<Negotiated>,
}

impl Proxy {
    pub fn new(engine: Engine, options: ProxyOptions) -> Self {
        Proxy {
            engine,
            options,
            client_name: Mutex::new(None),
            pending: Mutex::new(PendingTable::new(PENDING_CAPACITY, PENDING_TTL)),
            awaiting_input: Mutex::new(HashMap::new()),
            retry_hasher: Default::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            answered: AnsweredByProxy::default(),
            negotiation: Mutex::new(Negotiation::default()),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
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

    /// The exact path: the whole message parsed as a tree, every ambiguity rejected.
    fn client_message_exact(&self, line: &[u8], out: &mut impl Outbox) {
        let value = match json::parse(line, Keys::UniqueIgnoringCase) {
            Ok(v) => v,
            Err(JsonProblem::Syntax(m)) => {
                tracing::warn!("client sent malformed JSON: {m}");
                let reply = replies::error(
                    &Value::Null,
                    code::PARSE_ERROR,
                    &format!("Parse error: {m}"),
                    None,
                );
                return reply_to_client(out, &reply);
            }
            Err(JsonProblem::Ambiguous(m)) => {
                tracing::warn!("client sent an ambiguous message (not forwarded): {m}");
                let id = lenient_id(line);
                let reply = replies::error(
                    &id,
                    code::INVALID_REQUEST,
                    &format!("Invalid Request: {m}; the message was not forwarded"),
                    None,
                );
                return reply_to_client(out, &reply);
            }
        };
        match value {
            Value::Object(_) => self.client_object(value).emit(line, out),
            Value::Array(items) => self.client_batch(items, out),
            _ => reply_to_client(
                out,
                &replies::error(
                    &Value::Null,
                    code::INVALID_REQUEST,
                    "Invalid Request: a JSON-RPC message must be an object or a batch array",
                    None,
                ),
            ),
        }
    }

    /// A batch: every element is evaluated; the allowed ones go upstream as one batch, and
    /// the proxy's own answers come back to the client as one batch.
    fn client_batch(&self, items: Vec<Value>, out: &mut impl Outbox) {
        if items.is_empty() {
            let reply = replies::error(
                &Value::Null,
                code::INVALID_REQUEST,
                "Invalid Request: empty batch",
                None,
            );
            return reply_to_client(out, &reply);
        }
        let mut forward = Vec::new();
        let mut awaits = Vec::new();
        let mut answers = Vec::new();
        for item in items {
            if !item.is_object() {
                answers.push(replies::error(
                    &Value::Null,
                    code::INVALID_REQUEST,
                    "Invalid Request: a batch element must be an object",
                    None,
                ));
                continue;
            }
            let original = item.clone();
            match self.client_object(item) {
                Handled::Forward(bytes, id) => {
                    awaits.extend(id);
                    match bytes.map(|b| serde_json::from_slice(&b)) {
                        Some(Ok(v)) => forward.push(v),
                        _ => forward.push(original),
                    }
                }
                Handled::Reply(r) => answers.push(r),
            }
        }
        if !forward.is_empty() {
            out.to_server(&to_line(&Value::Array(forward)), &awaits);
        }
        if !answers.is_empty() {
            let ids: Vec<RequestId> = answers.iter().filter_map(RequestId::of_reply).collect();
            out.to_client(&to_line(&Value::Array(answers)), &ids);
        }
    }

    fn client_object(&self, msg: Value) -> Handled {
        if let Some(problem) = misread_keys(&msg) {
            tracing::warn!(
                "client sent a message a server could read otherwise (not forwarded): {problem}"
            );
            return Handled::Reply(replies::error(
                &request_id(&msg),
                code::INVALID_REQUEST,
                &format!("Invalid Request: {problem}; the message was not forwarded"),
                None,
            ));
        }
        let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
        self.note_client_name(method, &msg);
        // A request other than a call (which is checked as it is evaluated): its id must
        // not be in use, and it is tracked until answered.
        let request = msg
            .get("id")
            .filter(|_| !method.is_empty() && method != "tools/call");
        let mut awaits = None;
        if let Some(id) = request {
            let key = IdKey::from_value(id);
            if let Some(refusal) = self.admit_request(id, &key, method) {
                return refusal;
            }
            let pending = match method {
                "tools/list" => Pending::List,
                "initialize" => {
                    self.note_initialize(&msg);
                    Pending::Initialize
                }
                _ => Pending::Other,
            };
            awaits = Some(RequestId(key.clone()));
            self.track(key, pending, self.options.clock.now());
        }
        match method {
            "tools/call" => self.tools_call(msg),
            "notifications/cancelled" => {
                // The server may never answer a cancelled request: stop tracking it. A call's
                // reservation stays, since the tool may already have run. A listing stays
                // tracked, so that an answer the server sends all the same is filtered.
                if let Some(id) = msg.pointer("/params/requestId") {
                    lock(&self.pending).take_answered(IdKey::from_value(id));
                }
                Handled::Forward(None, None)
            }
            _ => Handled::Forward(None, awaits),
        }
    }

    /// Keeps the capabilities the client declares in `initialize`, for [`Proxy::negotiated`].
    fn note_initialize(&self, msg: &Value) {
        let capabilities = msg.pointer("/params/capabilities").cloned();
        lock(&self.negotiation).client_capabilities = capabilities;
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

    fn note_client_name(&self, method: &str, msg: &Value) {
        let params = msg.get("params");
        let client_info = params
            .and_then(|p| p.get("clientInfo"))
            .filter(|_| method == "initialize");
        self.note_client_info(client_info, params.and_then(|p| p.get("_meta")));
    }

    /// Remembers the client's name from `initialize`'s `params.clientInfo.name`, or else
    /// from a request's `params._meta["io.modelcontextprotocol/clientInfo"].name` (the
    /// stateless revision, which has no `initialize`). The first name given is the name:
    /// policies may rely on `client.name`, so a later message cannot change it.
    fn note_client_info(&self, client_info: Option<&Value>, meta: Option<&Value>) {
        let name = client_info
            .and_then(|c| c.get("name"))
            .or_else(|| {
                meta.and_then(|m| m.get("io.modelcontextprotocol/clientInfo"))
                    .and_then(|c| c.get("name"))
            })
            .and_then(Value::as_str);
        let Some(name) = name else { return };
        let mut slot = lock(&self.client_name);
        match slot.as_deref() {
            None => *slot = Some(name.into()),
            Some(known) if known != name => tracing::warn!(
                "client named itself \"{name}\" after \"{known}\"; the name stays \"{known}\""
            ),
            Some(_) => {}
        }
    }

    fn tools_call(&self, msg: Value) -> Handled {
        let Some(id) = msg.get("id").cloned() else {
            tracing::warn!("client sent tools/call as a notification (no id); not forwarded");
            return Handled::Reply(replies::error(
                &Value::Null,
                code::INVALID_REQUEST,
                "Invalid Request: tools/call must be a request with an id; it was not forwarded",
                None,
            ));
        };
        if !(id.is_string() || id.is_number()) {
            return Handled::Reply(replies::error(
                &id,
                code::INVALID_REQUEST,
                "Invalid Request: the id must be a string or a number",
                None,
            ));
        }
        let invalid = |m: &str| Handled::Reply(replies::error(&id, code::INVALID_PARAMS, m, None));
        let Some(params) = msg.get("params").and_then(Value::as_object) else {
            return invalid("Invalid params: tools/call params must be an object");
        };
        let Some(tool) = params.get("name").and_then(Value::as_str) else {
            return invalid("Invalid params: params.name must be a string");
        };
        let args = match params.get("arguments") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v),
            Some(_) => return invalid("Invalid params: params.arguments must be an object"),
        };
        let args_text = to_line(args.unwrap_or(&Value::Null));
        let request = CallRequest {
            id,
            tool,
            args: args.map(Args::Value),
            args_text: &args_text,
            // A 2026-07-28 retry carries the input the server asked for, or the state it
            // handed out, or both.
            input_responses: params.contains_key("inputResponses")
                || params.contains_key("requestState"),
        };
        self.evaluate_call(request, Some(&msg))
    }

    /// The fast path for the commonest message: a well-formed `tools/call` that is written
    /// canonically (see [`json::is_canonical`]), so it is unambiguous and its bytes are the
    /// re-serialisation of what it parses to. Only the arguments are built as a tree, and an
    /// allowed call is forwarded as received. None: the exact path decides (and words any
    /// error).
    fn tools_call_fast(&self, line: &[u8]) -> Option<Handled> {
        if !line.starts_with(b"{") {
            return None;
        }
        let outline = json::canonical_outline(line)?;
        let (mut method, mut id, mut params) = (None, None, None);
        for (at, m) in outline.iter().enumerate().filter(|(_, m)| m.depth == 1) {
            match m.key {
                b"method" => method = Some(m.value),
                b"id" => id = Some(m.value),
                b"params" => params = Some((at, m.value)),
                b"jsonrpc" => {}
                other if near_miss(other, keys::ENVELOPE) => return None,
                _ => {}
            }
        }
        let (id, (params_at, params)) = (id?, params?);
        let id_is_string_or_number = matches!(id[0], b'"' | b'-' | b'0'..=b'9');
        if method != Some(br#""tools/call""#.as_slice()) || !id_is_string_or_number {
            return None;
        }
        if params[0] != b'{' {
            return None;
        }
        let (mut name, mut arguments, mut input_responses) = (None, None, false);
        let mut meta = None;
        for &json::Member { key, value, .. } in json::children(&outline, params_at) {
            match key {
                b"name" => name = Some(value),
                b"arguments" => arguments = Some(value),
                b"inputResponses" | b"requestState" => input_responses = true,
                b"_meta" => meta = Some(value),
                other if near_miss(other, keys::PARAMS) => return None,
                _ => {}
            }
        }
        let name = name?;
        let tool = match serde_json::from_slice::<&str>(name) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            // Escapes: decode (a name that is not a string is the exact path's error).
            Err(_) => std::borrow::Cow::Owned(serde_json::from_slice::<String>(name).ok()?),
        };
        let args_text = arguments.unwrap_or(b"null");
        // Canonical text is unambiguous: the engine reads the fields it needs from it.
        let args = match args_text[0] {
            b'n' => None,
            b'{' => Some(Args::Text(args_text)),
            _ => return None,
        };
        // `params.clientInfo` names the client only in `initialize`.
        if meta.is_some() && lock(&self.client_name).is_none() {
            let meta = meta.and_then(|v| serde_json::from_slice::<Value>(v).ok());
            self.note_client_info(None, meta.as_ref());
        }
        let request = CallRequest {
            id: serde_json::from_slice(id).ok()?,
            tool: &tool,
            args,
            args_text,
            input_responses,
        };
        Some(self.evaluate_call(request, None))
    }

    /// Evaluates a well-formed `tools/call`; an allowed call is forwarded as `msg`
    /// re-serialised, or as received when `msg` is None (the fast path, where the two are
    /// the same bytes).
    fn evaluate_call(&self, request: CallRequest<'_>, msg: Option<&Value>) -> Handled {
        let CallRequest {
            id,
            tool,
            args,
            args_text,
            input_responses,
        } = request;
        let key = IdKey::from_value(&id);
        if let Some(refusal) = self.admit_request(&id, &key, tool) {
            return refusal;
        }
        let client_name = lock(&self.client_name).clone();
        let call = Call {
            tool,
            args,
            identity: self.options.identity.as_deref(),
            session: Some(&self.options.session),
            client_name: client_name.as_deref(),
        };
        let retry_key = self.retry_key(tool, args_text);
        let earlier = if input_responses {
            lock(&self.awaiting_input).remove(&retry_key)
        } else {
            None
        };
        // One clock read per call serves the pending entry; the audit log alone needs a
        // second, for the evaluation's latency (clock reads are a visible share of a call).
        let evaluating = self.options.clock.now();
        let mut decision = match &earlier {
            // The same call again, with the input the server asked for: evaluate it, but
            // do not count it twice.
            Some(_) => self.engine.evaluate_without_reservation(&call),
            None => self.engine.evaluate(&call),
        };
        if let Some(r) = earlier {
            if decision.is_allowed() {
                decision.reservation = Some(r);
            } else {
                self.settle(Some(&r), false);
            }
        }
        let forwarded = match &self.options.audit {
            Some(_) => self.options.clock.now(),
            None => evaluating,
        };
        self.audit_decision(&call, &mut decision, forwarded - evaluating);
        match decision.verdict {
            Verdict::Allow | Verdict::ShadowDeny => {
                log_forwarded(tool, &decision);
                let awaits = RequestId(key.clone());
                self.track(
                    key,
                    Pending::Call(CallInfo {
                        tool: tool.into(),
                        reservation: decision.reservation,
                        retry_key,
                        forwarded,
                    }),
                    forwarded,
                );
                Handled::Forward(msg.map(to_line), Some(awaits))
            }
            Verdict::Deny => {
                tracing::info!(
                    tool,
                    rule = decision.rule.as_deref().unwrap_or(""),
                    reason = decision.reason.as_str(),
                    "denied: {}",
                    decision.message.as_deref().unwrap_or("")
                );
                Handled::Reply(replies::denial(&id, &decision))
            }
            Verdict::RequireApproval => {
                tracing::info!(
                    tool,
                    rule = decision.rule.as_deref().unwrap_or(""),
                    "held for approval"
                );
                Handled::Reply(approval_required(&id, tool, &decision))
            }
        }
    }

    /// Identifies a call (tool and arguments) across a 2026-07-28 `inputResponses` retry,
    /// which comes with a new id: a keyed hash of the arguments' canonical text (key order
    /// kept, as they are forwarded), not a copy of them.
    fn retry_key(&self, tool: &str, args_text: &[u8]) -> u64 {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = self.retry_hasher.build_hasher();
        tool.hash(&mut h);
        h.write(args_text);
        h.finish()
    }

    fn track(&self, id: IdKey, pending: Pending, now: Instant) {
        let displaced = lock(&self.pending).insert(id, pending, now);
        for p in displaced {
            if let Pending::Call(info) = p {
                self.finish_call(info, Outcome::Forgotten);
            }
        }
    }

    /// Commits (`kept`) or rolls back a reservation; a store failure is logged, the
    /// message flow goes on.
    fn settle(&self, reservation: Option<&Reservation>, kept: bool) {
        let Some(r) = reservation else { return };
        let result = if kept {
            self.engine.commit(r)
        } else {
            self.engine.rollback(r)
        };
        if let Err(e) = result {
            tracing::warn!(
                "could not {} a reservation: {e}",
                if kept { "commit" } else { "roll back" }
            );
        }
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

    /// The fast path for the commonest server messages, which pass unchanged: anything while
    /// no request awaits an answer, and a single response to a forwarded call (read for its
    /// envelope only, in one pass, without building the possibly large result). Some: pass
    /// it on, as the answer to that request if it is one. None: the exact path decides.
    fn server_message_fast(&self, line: &[u8]) -> Option<Option<RequestId>> {
        // Reading the envelope also checks the line is one JSON value: anything else is
        // the exact path's to refuse.
        let response = match ResponseEnvelope::read(line) {
            Read::Unsure => return None,
            Read::NotAResponse => return Some(None),
            Read::Response(response) => response,
        };
        let id = RequestId(response.key.clone());
        match lock(&self.pending).take_answered(response.key) {
            Some(Pending::Call(info)) => {
                let outcome = Outcome::of(
                    response.failed,
                    response.result_type.as_deref(),
                    response.is_error,
                );
                self.finish_call(info, outcome);
                Some(Some(id))
            }
            Some(Pending::Other) => Some(Some(id)),
            // A `tools/list` or `initialize` response, or one that answers nothing: the
            // exact path.
            Some(Pending::List | Pending::Initialize) | None => None,
        }
    }

    /// The exact path for server messages: the whole message parsed as a tree.
    fn server_message_exact(&self, line: &[u8], out: &mut impl Outbox) {
        let value = match json::parse(line, Keys::Unique) {
            Ok(v) => v,
            Err(JsonProblem::Syntax(m)) => return self.not_a_message(line, &m, out),
            Err(problem @ JsonProblem::Ambiguous(_)) => {
                return self.unreadable_server_message(line, &problem.to_string(), out);
            }
        };
        match value {
            Value::Object(_) => {
                let id = response_id(&value);
                match self.server_object(value) {
                    Answer::Unchanged => out.to_client(line, id.as_slice()),
                    Answer::Replaced(v) => out.to_client(&to_line(&v), id.as_slice()),
                    Answer::Dropped => {}
                }
            }
            Value::Array(items) => {
                let mut changed = false;
                let items: Vec<Value> = items
                    .into_iter()
                    .filter_map(|item| {
                        let original = item.clone();
                        let answer = self.server_object(item);
                        changed |= !matches!(answer, Answer::Unchanged);
                        match answer {
                            Answer::Unchanged => Some(original),
                            Answer::Replaced(v) => Some(v),
                            Answer::Dropped => None,
                        }
                    })
                    .collect();
                let ids: Vec<RequestId> = items.iter().filter_map(response_id).collect();
                match (changed, items.is_empty()) {
                    (false, _) => out.to_client(line, &ids),
                    (true, true) => {}
                    (true, false) => out.to_client(&to_line(&Value::Array(items)), &ids),
                }
            }
            _ => self.not_a_message(
                line,
                "a JSON-RPC message is an object or a batch array",
                out,
            ),
        }
    }

    /// A server line that is not a JSON-RPC message (log text, a pretty-printed message
    /// split over lines): never forwarded, since a client reading the stream could take
    /// part of it for a message the proxy never read. A response whose id can be made out
    /// is answered with an error instead; any other request is answered by its timeout or
    /// when the server goes away.
    fn not_a_message(&self, line: &[u8], problem: &str, out: &mut impl Outbox) {
        tracing::warn!(
            "the server wrote a line of {} bytes that is not a JSON-RPC message ({problem}); not forwarded",
            line.len()
        );
        if let Some(audit) = &self.options.audit {
            audit.record(
                "server_output_dropped",
                json!({"session": self.options.session, "bytes": line.len(), "problem": problem}),
            );
        }
        let Some(id) = json::top_level_id(line) else {
            return;
        };
        if let Some(reply) = self.answer_unreadable(IdKey::from_text(&id), "could not be read") {
            reply_to_client(out, &reply);
        }
    }

    /// Answers the request a server's unusable response was for (if one awaits it) with an
    /// error, never with what the server wrote. A call keeps its reservation: it reached
    /// the server.
    fn answer_unreadable(&self, key: IdKey, why: &str) -> Option<Value> {
        let (key, pending) = lock(&self.pending).remove_entry(&key)?;
        if let Pending::Call(info) = pending {
            self.finish_call(info, Outcome::Unreadable);
        }
        Some(replies::error(
            &key.to_value(),
            code::INTERNAL_ERROR,
            &format!("The MCP server's response {why}, so the proxy withheld it"),
            None,
        ))
    }

    /// Settles a forwarded call once its fate is known, and records it: a JSON-RPC error,
    /// or a request that provably never reached the server or that it refused, gives the
    /// quota back; `input_required` keeps it for the retry; anything else keeps it (the
    /// tool may have run).
    fn finish_call(&self, info: CallInfo, outcome: Outcome) {
        let CallInfo {
            tool,
            reservation,
            retry_key,
            forwarded,
        } = info;
        let had_reservation = reservation.is_some();
        match outcome {
            o if o.gives_quota_back() => {
                tracing::debug!(tool = tool.as_str(), "no result: quota given back");
                self.settle(reservation.as_ref(), false);
            }
            Outcome::InputRequired if reservation.is_some() => {
                let mut awaiting = lock(&self.awaiting_input);
                if awaiting.len() >= AWAITING_INPUT_CAPACITY {
                    awaiting.clear();
                }
                awaiting.insert(retry_key, reservation.expect("checked above"));
            }
            _ => self.settle(reservation.as_ref(), true),
        }
        if let Some(audit) = &self.options.audit {
            // Plain values only: the JSON is built on the audit writer's thread.
            audit.tool_result(crate::audit::ToolResult {
                at: self.options.clock.wall_millis(),
                session: Some(self.options.session.as_str().into()),
                identity: self.options.identity.as_deref().map(Into::into),
                tool,
                outcome: outcome.as_str(),
                reservation: had_reservation.then_some(match outcome {
                    o if o.gives_quota_back() => "rolled_back",
                    Outcome::InputRequired => "kept_for_retry",
                    _ => "committed",
                }),
                duration: self
                    .options
                    .clock
                    .now()
                    .saturating_duration_since(forwarded),
            });
        }
    }

    /// Records a decision in the audit log, as plain values: the arguments are hashed (and,
    /// with `--log-args`, redacted) on the writer's thread. With `--audit-required`, a call
    /// is denied while the log cannot be written, or when its decision cannot be queued.
    fn audit_decision(&self, call: &Call<'_>, d: &mut Decision, latency: Duration) {
        let Some(audit) = &self.options.audit else {
            return;
        };
        let refuse = |d: &mut Decision, message: String| {
            if d.verdict != Verdict::Deny {
                self.settle(d.reservation.as_ref(), false);
                *d = Decision::deny(
                    crate::engine::Reason::AuditUnavailable,
                    std::sync::Arc::from("(audit required)"),
                    message,
                );
            }
        };
        if let Some(message) = audit.refusal() {
            refuse(d, message);
        }
        let queued = audit.tool_call(crate::audit::ToolCall {
            at: self.options.clock.wall_millis(),
            session: call.session.map(Into::into),
            identity: call.identity.map(Into::into),
            client: call.client_name.map(Into::into),
            tool: call.tool.into(),
            decision: d.verdict.as_str(),
            reason: d.reason.as_str(),
            rule: d.rule.clone(),
            message: d.message.clone(),
            retry_after_seconds: d.retry_after_seconds,
            unenforced: d.unenforced.clone(),
            latency,
            args: call.args.map(Args::to_owned_args),
        });
        if !queued && audit.is_required() {
            refuse(
                d,
                "The audit log cannot keep up and --audit-required is set, so this tool call was not allowed".into(),
            );
        }
    }

    fn server_object(&self, msg: Value) -> Answer {
        if let Some(problem) = msg
            .as_object()
            .and_then(|m| keys::problem(m.keys(), keys::ENVELOPE))
        {
            tracing::warn!(
                "the server wrote a message a client could read otherwise ({problem}); not forwarded"
            );
            // The id the client would read: the key that folds to `id`.
            let id = msg
                .as_object()
                .and_then(|m| m.iter().find(|(k, _)| keys::same(k, "id")).map(|(_, v)| v));
            let answer = id.and_then(|id| {
                self.answer_unreadable(IdKey::from_value(id), "could be misread by the client")
            });
            return answer.map_or(Answer::Dropped, Answer::Replaced);
        }
        if msg.get("method").is_some() {
            return Answer::Unchanged;
        }
        let Some(id) = msg.get("id").cloned() else {
            return Answer::Unchanged;
        };
        // Every client request is tracked until answered, so a response that answers none
        // (a second answer, one to a request the proxy answered itself, an id the client
        // never used) has no one to go to; passed on, it could be a listing never filtered.
        let Some(pending) = lock(&self.pending).remove(&IdKey::from_value(&id)) else {
            tracing::warn!(%id, "the server answered no pending request; not forwarded");
            return Answer::Dropped;
        };
        let failed = msg.get("error").is_some_and(|e| !e.is_null());
        match pending {
            Pending::Call(info) => {
                let outcome = Outcome::of(
                    failed,
                    msg.pointer("/result/resultType").and_then(Value::as_str),
                    msg.pointer("/result/isError").and_then(Value::as_bool),
                );
                self.finish_call(info, outcome);
                Answer::Unchanged
            }
            Pending::List if !failed => self.filter_tools_list(msg, id),
            Pending::Initialize => {
                self.note_negotiated(&msg);
                Answer::Unchanged
            }
            Pending::List | Pending::Other => Answer::Unchanged,
        }
    }

    /// The server's answer to `initialize` fixes the protocol version (an error leaves
    /// nothing negotiated).
    fn note_negotiated(&self, answer: &Value) {
        let Some(version) = answer
            .pointer("/result/protocolVersion")
            .and_then(Value::as_str)
        else {
            return;
        };
        let mut negotiation = lock(&self.negotiation);
        negotiation.done = Some(Negotiated {
            protocol_version: version.to_string(),
            client_capabilities: negotiation
                .client_capabilities
                .take()
                .unwrap_or(Value::Null),
        });
    }

    /// Removes hidden, ungranted and (with `default: deny`) unlisted tools from one page,
    /// keeping `nextCursor`, `_meta` and every other field. A page that cannot be read, or
    /// that a client could read otherwise (`tools` beside `Tools`), is withheld: passing it
    /// on could show the client tools the policy hides. So is a tool whose keys a client
    /// could read otherwise (`name` beside `Name`).
    fn filter_tools_list(&self, mut msg: Value, id: Value) -> Answer {
        let misread = msg
            .get("result")
            .and_then(Value::as_object)
            .and_then(|r| keys::problem(r.keys(), &["tools"]));
        let tools = msg
            .pointer_mut("/result/tools")
            .and_then(Value::as_array_mut)
            .filter(|_| misread.is_none());
        let Some(tools) = tools else {
            tracing::warn!(
                "the server's tools/list result has no tools array{}; withheld",
                misread
                    .map(|m| format!(" that a client reads as this proxy does ({m})"))
                    .unwrap_or_default()
            );
            return Answer::Replaced(replies::error(
                &id,
                code::INTERNAL_ERROR,
                "The MCP server's tools/list result could not be read, so the proxy withheld it",
                None,
            ));
        };
        let identity = self.options.identity.as_deref();
        let before = tools.len();
        // One policy for the whole page, even if a reload lands while it is filtered.
        let policy = self.engine.snapshot();
        tools.retain(|t| {
            let unambiguous = t
                .as_object()
                .is_some_and(|t| keys::problem(t.keys(), keys::TOOL).is_none());
            unambiguous
                && t.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| policy.is_visible(name, identity))
        });
        if tools.len() == before {
            return Answer::Unchanged;
        }
        tracing::debug!(
            "tools/list: {} of {before} tools hidden by policy",
            before - tools.len()
        );
        Answer::Replaced(msg)
    }

    /// A server message that is JSON but has a key twice. When its envelope reads
    /// unambiguously (the duplicates are below it, where the proxy reads nothing), it is
    /// handled as the fast path handles it: passed on when it is a request, a notification,
    /// or the answer to a pending call or request. A `tools/list` answer is withheld (its
    /// tools are read), and anything else is dropped, its request answered with an error:
    /// a client could read it otherwise than the proxy did.
    fn unreadable_server_message(&self, line: &[u8], problem: &str, out: &mut impl Outbox) {
        let key = json::top_level_id(line).map(|t| IdKey::from_text(&t));
        match ResponseEnvelope::read(line) {
            Read::NotAResponse => return out.to_client(line, &[]),
            Read::Response(response) => {
                let id = RequestId(response.key.clone());
                match lock(&self.pending).take_answered(response.key) {
                    Some(Pending::Call(info)) => {
                        self.finish_call(info, Outcome::Unreadable);
                        return out.to_client(line, &[id]);
                    }
                    Some(Pending::Other) => return out.to_client(line, &[id]),
                    Some(Pending::List | Pending::Initialize) | None => {}
                }
            }
            Read::Unsure => {}
        }
        tracing::warn!("the server wrote an ambiguous message ({problem}); not forwarded");
        if let Some(reply) = key.and_then(|k| self.answer_unreadable(k, "is ambiguous")) {
            reply_to_client(out, &reply);
        }
    }

    /// A client line longer than the limit: answered with an error, never forwarded.
    fn client_oversize(&self, prefix: &[u8], len: usize, max: usize, out: &mut impl Outbox) {
        let id = json::top_level_id(prefix)
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        tracing::warn!(
            "client message of {len} bytes exceeds the limit of {max} bytes; not forwarded"
        );
        let reply = replies::error(
            &id,
            code::INVALID_REQUEST,
            &format!(
                "Invalid Request: message of {len} bytes exceeds the limit of {max} bytes (--max-message-bytes); it was not forwarded"
            ),
            None,
        );
        reply_to_client(out, &reply);
    }

    /// A server line longer than the limit: its request gets an error instead.
    fn server_oversize(&self, prefix: &[u8], len: usize, max: usize, out: &mut impl Outbox) {
        let key = json::top_level_id(prefix);
        let pending = key
            .as_ref()
            .and_then(|k| lock(&self.pending).remove(&IdKey::from_text(k)));
        tracing::warn!("server message of {len} bytes exceeds the limit of {max} bytes; dropped");
        let (Some(key), Some(pending)) = (key, pending) else {
            return;
        };
        if let Pending::Call(info) = pending {
            self.finish_call(info, Outcome::Oversize);
        }
        let id: Value = serde_json::from_str(&key).unwrap_or(Value::Null);
        let reply = replies::error(
            &id,
            code::INTERNAL_ERROR,
            &format!(
                "The MCP server's response of {len} bytes exceeds the proxy's limit of {max} bytes (--max-message-bytes)"
            ),
            None,
        );
        reply_to_client(out, &reply);
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

    /// [`Proxy::client_message`] through the exact path only, so the fuzz targets
    /// (`fuzz/`) can check that the fast path answers as it does. Not for transports.
    #[doc(hidden)]
    pub fn client_message_exact_for_fuzzing(&self, line: &[u8]) -> Vec<Route> {
        let mut out = Routes::default();
        self.client_message_exact(line, &mut out);
        out.0
    }

    /// [`Proxy::server_message`] through the exact path only; see
    /// [`Proxy::client_message_exact_for_fuzzing`].
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

    /// The refusal of a request that cannot join those awaiting the server, before the
    /// policy reserves anything for a call: its id is in use, or `--max-in-flight` requests
    /// already await an answer. An id is in use while a request with it awaits its answer,
    /// or after the proxy answered one itself (timed out, failed) while the server's late
    /// answer could still come and be taken for the new request's. `what` is the tool, or
    /// the method of another request.
    fn admit_request(&self, id: &Value, key: &IdKey, what: &str) -> Option<Handled> {
        let (in_use, in_flight) = {
            let pending = lock(&self.pending);
            (pending.contains(key), pending.len())
        };
        if in_use || self.answered.contains(key) {
            return Some(Handled::Reply(id_in_use_reply(id)));
        }
        if in_flight < self.max_in_flight {
            return None;
        }
        tracing::warn!(
            what,
            in_flight,
            "request refused: too many requests await the MCP server's answer"
        );
        Some(Handled::Reply(replies::error(
            id,
            code::INTERNAL_ERROR,
            &format!(
                "Too many requests are awaiting the MCP server's answer ({in_flight}, the limit of --max-in-flight); this request was not forwarded, retry once some have been answered"
            ),
            Some(json!({ "reason": "max_in_flight" })),
        )))
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

    /// Whether a server message answers a request the proxy has already answered itself
    /// (it timed out): the client must not get a second answer, so it is dropped.
    fn is_late_answer(&self, line: &[u8]) -> bool {
        if self.answered.is_empty() {
            return false;
        }
        let Some(id) = json::top_level_id(line) else {
            return false;
        };
        if !self.answered.contains(&IdKey::from_text(&id)) {
            return false;
        }
        // A request from the server may carry the same id: only a response is dropped.
        let is_response =
            serde_json::from_slice::<Value>(line).is_ok_and(|v| v.get("method").is_none());
        if is_response {
            tracing::debug!(id, "late answer to a request already answered; dropped");
        }
        is_response
    }
}

#[cfg(test)]
impl Proxy {
    /// [`Proxy::client_message`] of one line, collected.
    fn client_routes(&self, line: &[u8]) -> Vec<Route> {
        let mut out = Routes::default();
        self.client_message(Inbound::Line(line), &mut out);
        out.0
    }

    /// [`Proxy::server_message`] of one line, collected.
    fn server_routes(&self, line: &[u8]) -> Vec<Route> {
        let mut out = Routes::default();
        self.server_message(Inbound::Line(line), &mut out);
        out.0
    }

    fn expire_routes(&self, timeout: Duration) -> Vec<Route> {
        let mut out = Routes::default();
        self.expire(timeout, &mut out);
        out.0
    }
}

/// What the fast path reads of a server message that is a response.
struct ResponseEnvelope<'a> {
    /// The pending-table key.
    key: IdKey,
    /// A JSON-RPC error (not null).
    failed: bool,
    result_type: Option<std::borrow::Cow<'a, str>>,
    is_error: Option<bool>,
}

/// What the fast path made of a server line.
enum Read<'a> {
    /// A request or a notification, in one JSON value whose envelope is unambiguous.
    NotAResponse,
    Response(ResponseEnvelope<'a>),
    /// For the exact path to read: not one JSON object, or not read unambiguously here.
    Unsure,
}

impl<'a> ResponseEnvelope<'a> {
    fn read(line: &'a [u8]) -> Read<'a> {
        if line.starts_with(b"{")
            && let Some(outline) = json::envelope_outline(line)
        {
            return Self::read_outline(&outline);
        }
        // serde_json checks the UTF-8 of the strings it reads, not of those it skips, so
        // the whole line is checked first: text that is not UTF-8 is not JSON.
        let Ok(text) = std::str::from_utf8(line) else {
            return Read::Unsure;
        };
        let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(text) else {
            return Read::Unsure;
        };
        if envelope.method.is_some() {
            return Read::NotAResponse;
        }
        let Some(id) = envelope
            .id
            .and_then(|id| serde_json::from_str::<Value>(id.get()).ok())
        else {
            return Read::Unsure;
        };
        let result = envelope.result.as_ref();
        Read::Response(ResponseEnvelope {
            key: IdKey::from_value(&id),
            failed: envelope.error.is_some_and(|e| e.get() != "null"),
            result_type: result.and_then(|r| r.result_type).map(Into::into),
            is_error: result.and_then(|r| r.is_error),
        })
    }

    /// A message whose envelope is written canonically (most servers write so): its
    /// members are unambiguous and can be read in place, the id from its text.
    fn read_outline(outline: &[json::Member<'a>]) -> Read<'a> {
        let (mut id, mut method, mut error, mut result) = (None, None, None, None);
        for (at, m) in outline.iter().enumerate().filter(|(_, m)| m.depth == 1) {
            match m.key {
                b"id" => id = Some(m.value),
                b"method" => method = Some(m.value),
                b"error" => error = Some(m.value),
                b"result" => result = Some(at),
                b"jsonrpc" => {}
                other if near_miss(other, keys::ENVELOPE) => return Read::Unsure,
                _ => {}
            }
        }
        if method.is_some() {
            return Read::NotAResponse;
        }
        let Some(id) = id.and_then(|id| std::str::from_utf8(id).ok()) else {
            return Read::Unsure;
        };
        let mut response = ResponseEnvelope {
            key: IdKey::from_text(id),
            failed: error.is_some_and(|e| e != b"null"),
            result_type: None,
            is_error: None,
        };
        // As the exact path reads them: a string, a boolean, anything else as absent.
        let members = result
            .into_iter()
            .flat_map(|at| json::children(outline, at));
        for &json::Member { key, value, .. } in members {
            match key {
                b"resultType" => {
                    response.result_type = match serde_json::from_slice::<&str>(value) {
                        Ok(t) => Some(t.into()),
                        Err(_) => serde_json::from_slice::<String>(value).ok().map(Into::into),
                    }
                }
                b"isError" => response.is_error = serde_json::from_slice::<bool>(value).ok(),
                _ => {}
            }
        }
        Read::Response(response)
    }
}

/// The parts of a server message the proxy reads on the fast path. Duplicate members are
/// an error here too, so a response is never read two ways; so is a result that is not an
/// object, or whose `resultType` is not a plain string, and any member a JSON-RPC message
/// does not have (`ID`, say: the exact path reads those).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    params: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    method: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    error: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    result: Option<ResultType<'a>>,
}

#[derive(serde::Deserialize)]
struct ResultType<'a> {
    #[serde(rename = "resultType", borrow)]
    result_type: Option<&'a str>,
    #[serde(rename = "isError")]
    is_error: Option<bool>,
}

/// How a forwarded call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// A result with `isError: true`: the tool ran and reported a failure.
    IsError,
    /// A JSON-RPC error: the call did not run.
    Error,
    InputRequired,
    Unreadable,
    Oversize,
    UpstreamGone,
    /// Pushed out of the pending table or expired before an answer came.
    Forgotten,
    /// See [`RequestFailure`].
    NotSent,
    Refused,
    Timeout,
    AnswerLost,
    ShuttingDown,
    Overloaded,
    /// The client went away (or its session idled out) before the answer came.
    ClientGone,
}

impl Outcome {
    fn of(failed: bool, result_type: Option<&str>, is_error: Option<bool>) -> Self {
        if failed {
            Outcome::Error
        } else if result_type == Some("input_required") {
            Outcome::InputRequired
        } else if is_error == Some(true) {
            Outcome::IsError
        } else {
            Outcome::Ok
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::IsError => "is_error",
            Outcome::Error => "error",
            Outcome::InputRequired => "input_required",
            Outcome::Unreadable => "unreadable",
            Outcome::Oversize => "oversize",
            Outcome::UpstreamGone => "upstream_gone",
            Outcome::Forgotten => "forgotten",
            Outcome::NotSent => "not_sent",
            Outcome::Refused => "refused",
            Outcome::Timeout => "timeout",
            Outcome::AnswerLost => "answer_lost",
            Outcome::ShuttingDown => "shutting_down",
            Outcome::Overloaded => "overloaded",
            Outcome::ClientGone => "client_gone",
        }
    }

    /// Whether the call provably did not run, so its reservation is rolled back.
    fn gives_quota_back(self) -> bool {
        matches!(
            self,
            Outcome::Error | Outcome::NotSent | Outcome::Refused | Outcome::Overloaded
        )
    }

    fn of_failure(failure: RequestFailure) -> Self {
        match failure {
            RequestFailure::NotSent => Outcome::NotSent,
            RequestFailure::Refused => Outcome::Refused,
            RequestFailure::TimedOut => Outcome::Timeout,
            RequestFailure::AnswerLost => Outcome::AnswerLost,
            RequestFailure::ShuttingDown => Outcome::ShuttingDown,
            RequestFailure::Overloaded => Outcome::Overloaded,
        }
    }
}

enum Handled {
    /// Forward: the original line (`None`), or these bytes; with the id of the request
    /// that awaits an answer, if it is one.
    Forward(Option<Vec<u8>>, Option<RequestId>),
    /// Answer the client without forwarding.
    Reply(Value),
}

impl Handled {
    /// Writes what was decided for `line` to `out`. A message forwarded as received is
    /// copied once, straight into the output.
    fn emit(self, line: &[u8], out: &mut impl Outbox) {
        match self {
            Handled::Forward(None, id) => out.to_server(line, id.as_slice()),
            Handled::Forward(Some(bytes), id) => out.to_server(&bytes, id.as_slice()),
            Handled::Reply(r) => reply_to_client(out, &r),
        }
    }
}

/// An answer of the proxy's own, to the request whose id it carries.
fn reply_to_client(out: &mut impl Outbox, reply: &Value) {
    let id = RequestId::of_reply(reply);
    out.to_client(&to_line(reply), id.as_slice());
}

/// The request a server message answers: its id, when it is a response.
fn response_id(msg: &Value) -> Option<RequestId> {
    if msg.get("method").is_some() {
        return None;
    }
    msg.get("id")
        .filter(|id| !id.is_null())
        .map(|id| RequestId(IdKey::from_value(id)))
}

/// A `tools/call` that passed the shape checks, ready to evaluate.
struct CallRequest<'a> {
    id: Value,
    tool: &'a str,
    args: Option<Args<'a>>,
    /// The arguments' canonical JSON text (`null` when absent).
    args_text: &'a [u8],
    input_responses: bool,
}

enum Answer {
    Unchanged,
    Replaced(Value),
    /// Not passed on at all.
    Dropped,
}

/// An allowed call at debug level; one a shadow rule would have stopped at info, as denials;
/// one whose limits were not enforced (the store is down, fail mode open) at warn.
fn log_forwarded(tool: &str, d: &Decision) {
    if let Some(why) = &d.unenforced {
        tracing::warn!(
            tool,
            "allowed without enforcing its limits (state fail mode is open): {why}"
        );
    }
    if d.verdict == Verdict::ShadowDeny {
        tracing::info!(
            tool,
            rule = d.rule.as_deref().unwrap_or(""),
            reason = d.reason.as_str(),
            "shadow deny (forwarded): {}",
            d.message.as_deref().unwrap_or("")
        );
    } else if d.unenforced.is_none() {
        tracing::debug!(tool, "allowed");
    }
}

fn approval_required(id: &Value, tool: &str, d: &Decision) -> Value {
    let message = d
        .message
        .as_deref()
        .unwrap_or("This tool call requires human approval");
    replies::error(
        id,
        code::APPROVAL_REQUIRED,
        message,
        Some(json!({
            "status": "approval_required",
            "tool": tool,
            "rule": d.rule.as_deref(),
            "approval_timeout_seconds": d.approval_timeout.map(|t| t.as_secs()),
            "human_instructions": "This call is held by policy for a human decision; it was not sent to the server.",
        })),
    )
}

fn to_line(v: &Value) -> Vec<u8> {
    // serde_json escapes control characters in strings, so the line has no raw newline.
    serde_json::to_vec(v).unwrap_or_default()
}

/// The id of a message that was rejected as ambiguous, if one can be read.
fn lenient_id(line: &[u8]) -> Value {
    serde_json::from_slice::<Value>(line)
        .map(|v| request_id(&v))
        .unwrap_or(Value::Null)
}

/// The id of a message, to answer it with; null when it has none that is valid.
fn request_id(msg: &Value) -> Value {
    msg.get("id")
        .filter(|id| id.is_string() || id.is_number())
        .cloned()
        .unwrap_or(Value::Null)
}

fn id_in_use_reply(id: &Value) -> Value {
    tracing::warn!(
        "client reused the id {id} of a request still awaiting its response; not forwarded"
    );
    replies::error(
        id,
        code::INVALID_REQUEST,
        "Invalid Request: id already in use by a request awaiting its response; the message was not forwarded",
        None,
    )
}

/// What in a client message's keys a lenient server would read otherwise than the proxy
/// (see [`keys`]): in the envelope, and in `params`. Keys that fold to each other in one
/// object are rejected anywhere by the parser already.
fn misread_keys(msg: &Value) -> Option<String> {
    let envelope = msg.as_object()?;
    keys::problem(envelope.keys(), keys::ENVELOPE).or_else(|| {
        let params = envelope.get("params")?.as_object()?;
        keys::problem(params.keys(), keys::PARAMS)
    })
}

/// [`keys::near_miss`] for a key of canonical text (ASCII, so it is also a `str`).
fn near_miss(key: &[u8], known: &[&'static str]) -> bool {
    std::str::from_utf8(key).is_ok_and(|k| keys::near_miss(k, known).is_some())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
