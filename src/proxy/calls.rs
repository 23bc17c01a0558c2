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
        } = info;
        let had_reservation = reservation.is_some();
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

/// A `tools/call` that passed the shape checks, ready to evaluate.
pub(super) struct CallRequest<'a> {
    pub(super) id: Value,
    pub(super) tool: &'a str,
    pub(super) args: Option<Args<'a>>,
    /// The arguments' canonical JSON text (`null` when absent).
    pub(super) args_text: &'a [u8],
    pub(super) input_responses: bool,
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
