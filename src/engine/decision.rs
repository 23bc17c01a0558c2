use std::sync::Arc;
use std::time::Duration;

use crate::state::Reservation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    RequireApproval,
    /// The call goes through, but a rule in shadow mode (or the whole policy, with
    /// `--shadow`) would have denied or held it: the decision's rule, reason and message
    /// say which and why.
    ShadowDeny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::RequireApproval => "require_approval",
            Verdict::ShadowDeny => "shadow_deny",
        }
    }
}

/// Why a call was not simply allowed: lets callers tell a policy denial from a failure
/// to evaluate (which also denies: the engine fails closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Decided by a rule: allowed by the first allow or evaluate rule whose conditions held,
    /// denied by a deny rule or failed conditions, or held for approval.
    Rule,
    /// Allowed with no rule deciding: no allow or evaluate rule applies to the tool (or only
    /// `require_approval` rules that did not match), and the policy allows by default.
    DefaultAllow,
    /// As [`Reason::DefaultAllow`], under `default: deny`: the tool is allowed because it is
    /// listed in `tools`.
    Listed,
    Hidden,
    DefaultDeny,
    NotGranted,
    /// A `rate_limit` counter is over its limit.
    RateLimit,
    /// A `state` counter (a budget, such as a daily spend) would go over its limit.
    Budget,
    /// The call's arguments cannot be evaluated (not an object, bad `increment_from` value).
    InvalidArguments,
    /// The counter store could not be reached or failed.
    StateUnavailable,
    /// The audit log cannot be written and it is required (`--audit-required`).
    AuditUnavailable,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rule => "rule",
            Reason::DefaultAllow => "default_allow",
            Reason::Listed => "listed",
            Reason::Hidden => "hidden",
            Reason::DefaultDeny => "default_deny",
            Reason::NotGranted => "not_granted",
            Reason::RateLimit => "rate_limit",
            Reason::Budget => "budget",
            Reason::InvalidArguments => "invalid_arguments",
            Reason::StateUnavailable => "state_unavailable",
            Reason::AuditUnavailable => "audit_unavailable",
        }
    }
}

/// The outcome of evaluating one `tools/call`.
#[derive(Debug, Clone)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: Reason,
    /// The deciding rule's name (for an allowed call, the first allow or evaluate rule whose
    /// conditions held), or a marker such as `(hidden)`; `None` when no rule decided.
    pub rule: Option<Arc<str>>,
    /// The message for the agent; `None` when allowed.
    pub message: Option<Arc<str>>,
    /// For rate limits: whole seconds until the same call could pass.
    pub retry_after_seconds: Option<u64>,
    /// For `require_approval`: how long a human has to decide.
    pub approval_timeout: Option<Duration>,
    /// What the call reserved; commit it when the tool ran, roll it back when it failed.
    pub reservation: Option<Reservation>,
    /// Allowed without its counters being checked or counted, because the state store
    /// could not be used and the fail mode is open: why.
    pub unenforced: Option<Arc<str>>,
}

impl Decision {
    /// Allowed by `rule`, or (`None`) with no rule deciding, for `reason`.
    pub(crate) fn allow(
        reason: Reason,
        rule: Option<Arc<str>>,
        reservation: Option<Reservation>,
    ) -> Self {
        Decision {
            verdict: Verdict::Allow,
            reason,
            rule,
            message: None,
            retry_after_seconds: None,
            approval_timeout: None,
            reservation,
            unenforced: None,
        }
    }

    pub(crate) fn deny(reason: Reason, rule: Arc<str>, message: impl Into<Arc<str>>) -> Self {
        Decision {
            verdict: Verdict::Deny,
            reason,
            rule: Some(rule),
            message: Some(message.into()),
            retry_after_seconds: None,
            approval_timeout: None,
            reservation: None,
            unenforced: None,
        }
    }

    /// Whether the call goes through: allowed, or denied only by a shadow rule.
    pub fn is_allowed(&self) -> bool {
        matches!(self.verdict, Verdict::Allow | Verdict::ShadowDeny)
    }
}
