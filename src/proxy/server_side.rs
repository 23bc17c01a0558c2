//! Messages from the server: the fast and exact paths, `tools/list` filtering, what a
//! client could misread, oversize messages, answers that come too late.

use super::*;

impl Session {
    /// The fast path for the commonest server messages, which pass unchanged: anything while
    /// no request awaits an answer, and a single response to a forwarded call (read for its
    /// envelope only, in one pass, without building the possibly large result). Some: pass
    /// it on, as the answer to that request if it is one. None: the exact path decides.
    pub(super) fn server_message_fast(&self, line: &[u8]) -> Option<Option<RequestId>> {
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
    pub(super) fn server_message_exact(&self, line: &[u8], out: &mut impl Outbox) {
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
    pub(super) fn not_a_message(&self, line: &[u8], problem: &str, out: &mut impl Outbox) {
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
    pub(super) fn answer_unreadable(&self, key: IdKey, why: &str) -> Option<Value> {
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

    pub(super) fn server_object(&self, msg: Value) -> Answer {
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
    pub(super) fn note_negotiated(&self, answer: &Value) {
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
    pub(super) fn filter_tools_list(&self, mut msg: Value, id: Value) -> Answer {
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
        // The names the client may now call become labels (a paginated list counts the
        // last page only: a name from an earlier page is reported as `_other`).
        if let Some(known) = self.options.telemetry.known_tools() {
            let names = tools
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str));
            known.set_listed(&self.options.server, names);
        }
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
    pub(super) fn unreadable_server_message(
        &self,
        line: &[u8],
        problem: &str,
        out: &mut impl Outbox,
    ) {
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

    /// A server line longer than the limit: its request gets an error instead.
    pub(super) fn server_oversize(
        &self,
        prefix: &[u8],
        len: usize,
        max: usize,
        out: &mut impl Outbox,
    ) {
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

    /// Whether a server message answers a request the proxy has already answered itself
    /// (it timed out): the client must not get a second answer, so it is dropped.
    pub(super) fn is_late_answer(&self, line: &[u8]) -> bool {
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

/// The request a server message answers: its id, when it is a response.
pub(super) fn response_id(msg: &Value) -> Option<RequestId> {
    if msg.get("method").is_some() {
        return None;
    }
    msg.get("id")
        .filter(|id| !id.is_null())
        .map(|id| RequestId(IdKey::from_value(id)))
}
