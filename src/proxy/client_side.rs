//! Messages from the client: the exact path, batches, `tools/call` shape checks and its
//! fast path, admission of requests, oversize messages.

use super::*;

impl Session {
    /// The exact path: the whole message parsed as a tree, every ambiguity rejected.
    pub(super) fn client_message_exact(&self, line: &[u8], out: &mut impl Outbox) {
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
    pub(super) fn client_batch(&self, items: Vec<Value>, out: &mut impl Outbox) {
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

    pub(super) fn client_object(&self, msg: Value) -> Handled {
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

    /// Keeps the capabilities the client declares in `initialize`, for [`Session::negotiated`].
    pub(super) fn note_initialize(&self, msg: &Value) {
        let capabilities = msg.pointer("/params/capabilities").cloned();
        lock(&self.negotiation).client_capabilities = capabilities;
    }

    pub(super) fn note_client_name(&self, method: &str, msg: &Value) {
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
    pub(super) fn note_client_info(&self, client_info: Option<&Value>, meta: Option<&Value>) {
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

    pub(super) fn tools_call(&self, msg: Value) -> Handled {
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
            meta: params.get("_meta").map_or(Meta::Absent, Meta::Value),
        };
        self.evaluate_call(request, Some(&msg))
    }

    /// The fast path for the commonest message: a well-formed `tools/call` that is written
    /// canonically (see [`json::is_canonical`]), so it is unambiguous and its bytes are the
    /// re-serialisation of what it parses to. Only the arguments are built as a tree, and an
    /// allowed call is forwarded as received. None: the exact path decides (and words any
    /// error).
    pub(super) fn tools_call_fast(&self, line: &[u8]) -> Option<Handled> {
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
            meta: meta.map_or(Meta::Absent, Meta::Text),
        };
        Some(self.evaluate_call(request, None))
    }

    /// The refusal of a request that cannot join those awaiting the server, before the
    /// policy reserves anything for a call: its id is in use, or `--max-in-flight` requests
    /// already await an answer. An id is in use while a request with it awaits its answer,
    /// or after the proxy answered one itself (timed out, failed) while the server's late
    /// answer could still come and be taken for the new request's. `what` is the tool, or
    /// the method of another request.
    pub(super) fn admit_request(&self, id: &Value, key: &IdKey, what: &str) -> Option<Handled> {
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

    /// A client line longer than the limit: answered with an error, never forwarded.
    pub(super) fn client_oversize(
        &self,
        prefix: &[u8],
        len: usize,
        max: usize,
        out: &mut impl Outbox,
    ) {
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
}

pub(super) fn id_in_use_reply(id: &Value) -> Value {
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
pub(super) fn misread_keys(msg: &Value) -> Option<String> {
    let envelope = msg.as_object()?;
    keys::problem(envelope.keys(), keys::ENVELOPE).or_else(|| {
        let params = envelope.get("params")?.as_object()?;
        keys::problem(params.keys(), keys::PARAMS)
    })
}
