//! Call bookkeeping: a `tools/call` evaluated, tracked until answered, settled by how it
//! ended, and recorded in the audit log.

use super::*;

impl Session {
    /// Evaluates a well-formed `tools/call`; an allowed call is forwarded as `msg`
    /// re-serialised, or as received when `msg` is None (the fast path, where the two are
    /// the same bytes).
    pub(super) fn evaluate_call(&self, request: CallRequest<'_>, msg: Option<&Value>) -> Handled {
        let CallRequest {
            id,
            tool,
            args,
            args_text,
            input_responses,
            meta,
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
        let retry_key = self.options.parking.key(tool, args_text);
        let earlier = if input_responses {
            self.options.parking.take(retry_key)
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
        // The one branch a call pays while telemetry is off.
        let report = self
            .options
            .telemetry
            .is_enabled()
            .then(|| self.call_report(&id, &decision, meta, args, evaluating));
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
                        report,
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
                if let Some(report) = report {
                    self.report_unforwarded(tool, &report, "denied", None);
                }
                Handled::Reply(replies::denial(&id, &decision))
            }
            Verdict::RequireApproval => {
                tracing::info!(
                    tool,
                    rule = decision.rule.as_deref().unwrap_or(""),
                    "held for approval"
                );
                if let Some(report) = report {
                    let code = Some(code::APPROVAL_REQUIRED);
                    self.report_unforwarded(tool, &report, "approval_required", code);
                }
                Handled::Reply(approval_required(&id, tool, &decision))
            }
        }
    }

    pub(super) fn track(&self, id: IdKey, pending: Pending, now: Instant) {
        let displaced = lock(&self.pending).insert(id, pending, now);
        for p in displaced {
            if let Pending::Call(info) = p {
                self.finish_call(info, Outcome::Forgotten);
            }
        }
    }

    /// Commits (`kept`) or rolls back a reservation; a store failure is logged, the
    /// message flow goes on.
    pub(super) fn settle(&self, reservation: Option<&Reservation>, kept: bool) {
        let Some(r) = reservation else { return };
        let result = if kept {
            self.engine.commit(r)
        } else {
            self.engine.rollback(r)
        };
        if let Err(e) = result {
            self.store_failed(if kept { "commit" } else { "rollback" });
            tracing::warn!(
                "could not {} a reservation: {e}",
                if kept { "commit" } else { "roll back" }
            );
        }
    }

    /// Settles a forwarded call once its fate is known, and records it: a JSON-RPC error,
    /// or a request that provably never reached the server or that it refused, gives the
    /// quota back; `input_required` keeps it for the retry; anything else keeps it (the
    /// tool may have run).
    pub(super) fn finish_call(&self, info: CallInfo, outcome: Outcome) {
        let CallInfo {
            tool,
            reservation,
            retry_key,
            forwarded,
            report,
        } = info;
        let had_reservation = reservation.is_some();
        let reservation_fate = had_reservation.then_some(match outcome {
            o if o.gives_quota_back() => "rolled_back",
            Outcome::InputRequired => "kept_for_retry",
            _ => "committed",
        });
        if let Some(report) = report {
            self.report_call(
                tool.as_str(),
                &report,
                outcome.as_str(),
                reservation_fate,
                None,
                outcome == Outcome::IsError,
            );
        }
        match outcome {
            o if o.gives_quota_back() => {
                tracing::debug!(tool = tool.as_str(), "no result: quota given back");
                self.settle(reservation.as_ref(), false);
            }
            Outcome::InputRequired if reservation.is_some() => {
                let parked = reservation.expect("checked above");
                self.options.parking.park(retry_key, parked);
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
                reservation: reservation_fate,
                duration: self
                    .options
                    .clock
                    .now()
                    .saturating_duration_since(forwarded),
            });
        }
    }

    /// Counts a failed state-store operation (`reserve`, `commit`, `rollback`).
    fn store_failed(&self, op: &str) {
        if self.options.telemetry.is_enabled() {
            let store = self.engine.store().describe();
            self.options.telemetry.store_error(store_kind(&store), op);
        }
    }

    /// What telemetry needs of a decided call, kept until it ends. Only built while
    /// telemetry is on.
    fn call_report(
        &self,
        id: &Value,
        decision: &Decision,
        meta: Meta<'_>,
        args: Option<Args<'_>>,
        received: Instant,
    ) -> Box<CallReport> {
        let store_down = decision.reason == crate::engine::Reason::StateUnavailable;
        if decision.unenforced.is_some() || store_down {
            self.store_failed("reserve");
        }
        let took = self.options.clock.now().saturating_duration_since(received);
        self.options
            .telemetry
            .policy_evaluated(&self.options.server, took);
        let (traceparent, tracestate) = meta.trace_context();
        Box::new(CallReport {
            received,
            // The wall clock now, less the time since the call was received.
            received_at: std::time::SystemTime::now() - took,
            request_id: match id {
                Value::String(s) => s.as_str().into(),
                other => other.to_string().into(),
            },
            verdict: decision.verdict,
            rule: decision.rule.clone(),
            reason: (decision.verdict != Verdict::Allow).then(|| decision.reason.as_str()),
            traceparent,
            tracestate,
            // Redacted by the exporter; kept only when `--log-args` allows it.
            arguments: args
                .filter(|_| self.options.telemetry.logs_args())
                .map(|a| a.to_owned_args().to_value().into_owned()),
        })
    }

    /// Reports a call that was not forwarded: its denial is its answer.
    fn report_unforwarded(
        &self,
        tool: &str,
        report: &CallReport,
        outcome: &str,
        error_code: Option<i64>,
    ) {
        // A denial is a tool result with `isError: true`; a hold is a JSON-RPC error.
        let is_error = error_code.is_none();
        self.report_call(tool, report, outcome, None, error_code, is_error);
    }

    fn report_call(
        &self,
        tool: &str,
        report: &CallReport,
        outcome: &str,
        reservation: Option<&str>,
        error_code: Option<i64>,
        is_error: bool,
    ) {
        let negotiated = self.negotiated();
        self.options
            .telemetry
            .call_finished(&crate::telemetry::CallRecord {
                server: &self.options.server,
                method: "tools/call",
                tool,
                decision: report.verdict,
                rule: report.rule.as_deref(),
                reason: report.reason,
                outcome,
                reservation,
                error_code,
                error_message: None,
                is_error,
                started: report.received,
                started_at: report.received_at,
                ended: self.options.clock.now(),
                session_id: Some(self.options.session.as_str()).filter(|s| !s.is_empty()),
                request_id: Some(&report.request_id),
                protocol_version: negotiated.as_ref().map(|n| n.protocol_version.as_str()),
                client: None,
                transport: self.options.transport,
                traceparent: report.traceparent.as_deref(),
                tracestate: report.tracestate.as_deref(),
                arguments: report.arguments.as_ref(),
                result: None,
            });
    }

    /// Records a decision in the audit log, as plain values: the arguments are hashed (and,
    /// with `--log-args`, redacted) on the writer's thread. With `--audit-required`, a call
    /// is denied while the log cannot be written, or when its decision cannot be queued.
    pub(super) fn audit_decision(&self, call: &Call<'_>, d: &mut Decision, latency: Duration) {
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
}

/// How a forwarded call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
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
    pub(super) fn of(failed: bool, result_type: Option<&str>, is_error: Option<bool>) -> Self {
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

    pub(super) fn as_str(self) -> &'static str {
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
    pub(super) fn gives_quota_back(self) -> bool {
        matches!(
            self,
            Outcome::Error | Outcome::NotSent | Outcome::Refused | Outcome::Overloaded
        )
    }

    pub(super) fn of_failure(failure: RequestFailure) -> Self {
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

/// The `store` label: the kind of store, never its address.
fn store_kind(described: &str) -> &'static str {
    match described.split(':').next() {
        Some("memory") => "memory",
        Some("sqlite") => "sqlite",
        Some("redis" | "rediss" | "unix") => "redis",
        _ => "other",
    }
}

/// What telemetry reports of a call when it ends, taken when it was decided.
#[derive(Debug)]
pub(super) struct CallReport {
    received: Instant,
    received_at: std::time::SystemTime,
    request_id: Box<str>,
    verdict: Verdict,
    rule: Option<std::sync::Arc<str>>,
    /// The engine's reason, for a call that was not plainly allowed.
    reason: Option<&'static str>,
    traceparent: Option<Box<str>>,
    tracestate: Option<Box<str>>,
    /// With `--log-args` only.
    arguments: Option<Value>,
}

/// A call's `params._meta`, as the path that read it has it.
#[derive(Clone, Copy)]
pub(super) enum Meta<'a> {
    Absent,
    /// Canonical JSON text (the fast path).
    Text(&'a [u8]),
    Value(&'a Value),
}

impl Meta<'_> {
    /// `traceparent` and `tracestate` (W3C trace context), when they are strings.
    fn trace_context(self) -> (Option<Box<str>>, Option<Box<str>>) {
        let parsed;
        let meta = match self {
            Meta::Absent => return (None, None),
            Meta::Value(v) => v,
            Meta::Text(text) => match serde_json::from_slice::<Value>(text) {
                Ok(v) => {
                    parsed = v;
                    &parsed
                }
                Err(_) => return (None, None),
            },
        };
        let get = |key: &str| meta.get(key).and_then(Value::as_str).map(Box::from);
        (get("traceparent"), get("tracestate"))
    }
}

/// A `tools/call` that passed the shape checks, ready to evaluate.
pub(super) struct CallRequest<'a> {
    pub(super) id: Value,
    pub(super) tool: &'a str,
    pub(super) args: Option<Args<'a>>,
    /// The arguments' canonical JSON text (`null` when absent).
    pub(super) args_text: &'a [u8],
    pub(super) input_responses: bool,
    pub(super) meta: Meta<'a>,
}

/// An allowed call at debug level; one a shadow rule would have stopped at info, as denials;
/// one whose limits were not enforced (the store is down, fail mode open) at warn.
pub(super) fn log_forwarded(tool: &str, d: &Decision) {
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

pub(super) fn approval_required(id: &Value, tool: &str, d: &Decision) -> Value {
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
