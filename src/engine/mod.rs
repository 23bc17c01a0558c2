//! Evaluation of one tool call against a compiled policy.
//!
//! Order: hidden → default deny → grants → rules (the tool's own, glob keys, then `"*"`),
//! the first failing rule denying; then every counter involved is reserved atomically.
//! Anything that cannot be evaluated denies the call.

mod conditions;
mod decision;
pub mod loose;

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::{Arc, LazyLock};

use serde_json::{Map, Value};

pub use decision::{Decision, Reason, Verdict};

use crate::policy::CompiledPolicy;
use crate::policy::model::{Action, Amount, ArgPath, Condition, PathExpr, Rule};
use crate::state::{
    CounterRequest, FailMode, Millis, Reservation, Reserved, Store, StoreError, now_millis,
};

/// One `tools/call` as the engine sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Call<'a> {
    pub tool: &'a str,
    /// The `arguments` member; `None` when absent (evaluated as `{}`).
    pub args: Option<&'a Value>,
    /// Who is calling, for grants and identity-scoped counters.
    pub identity: Option<&'a str>,
    /// The MCP session, for session-scoped counters.
    pub session: Option<&'a str>,
    /// `clientInfo.name` from `initialize`, for `client.name` conditions.
    pub client_name: Option<&'a str>,
}

static EMPTY_ARGS: LazyLock<Value> = LazyLock::new(|| Value::Object(Map::new()));

/// A policy and the store its counters live in.
#[derive(Debug, Clone)]
pub struct Engine {
    policy: Arc<CompiledPolicy>,
    store: Arc<dyn Store>,
    fail_mode: FailMode,
}

/// The time of one evaluation, read from the system clock only if a counter needs it.
#[derive(Debug, Default)]
struct Clock(Cell<Option<Millis>>);

impl Clock {
    fn get(&self) -> Millis {
        match self.0.get() {
            Some(t) => t,
            None => {
                let t = now_millis();
                self.0.set(Some(t));
                t
            }
        }
    }
}

/// Marker rule names for decisions no written rule made.
const HIDDEN: &str = "(hidden)";
const DEFAULT_DENY: &str = "(default deny)";
const NOT_GRANTED: &str = "(not granted)";
const INVALID_ARGUMENTS: &str = "(invalid arguments)";

impl Engine {
    pub fn new(policy: Arc<CompiledPolicy>, store: Arc<dyn Store>) -> Self {
        Engine {
            policy,
            store,
            fail_mode: FailMode::Closed,
        }
    }

    /// What calls that need the store get while it cannot be used (closed by default).
    pub fn with_fail_mode(mut self, fail_mode: FailMode) -> Self {
        self.fail_mode = fail_mode;
        self
    }

    pub fn fail_mode(&self) -> FailMode {
        self.fail_mode
    }

    pub fn policy(&self) -> &Arc<CompiledPolicy> {
        &self.policy
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn evaluate(&self, call: &Call<'_>) -> Decision {
        self.decide(call, &Clock::default(), true)
    }

    /// Evaluates every rule but reserves nothing: for a call already counted once, such as
    /// a 2026-07-28 `tools/call` retried with `inputResponses`.
    pub fn evaluate_without_reservation(&self, call: &Call<'_>) -> Decision {
        self.decide(call, &Clock::default(), false)
    }

    /// Evaluates at a given time (milliseconds since the Unix epoch): windows are computed
    /// from it, which makes replays and tests deterministic.
    pub fn evaluate_at(&self, call: &Call<'_>, now: Millis) -> Decision {
        self.decide(call, &Clock(Cell::new(Some(now))), true)
    }

    fn decide(&self, call: &Call<'_>, now: &Clock, reserve: bool) -> Decision {
        let p = &*self.policy;
        let tool = call.tool;
        let args = match call.args {
            None | Some(Value::Null) => &*EMPTY_ARGS,
            Some(v @ Value::Object(_)) => v,
            Some(other) => {
                return Decision::deny(
                    Reason::InvalidArguments,
                    Arc::from(INVALID_ARGUMENTS),
                    format!(
                        "Tool arguments must be a JSON object, got {}",
                        json_type(other)
                    ),
                );
            }
        };

        let grant = p.grants.as_ref().map(|g| g.for_identity(call.identity));
        let hidden_by_grant = matches!(grant, Some(Some(g)) if g.hide.contains(tool));
        if p.hide.contains(tool) || hidden_by_grant {
            return Decision::deny(
                Reason::Hidden,
                Arc::from(HIDDEN),
                format!("Tool \"{tool}\" is hidden by policy"),
            );
        }
        if p.default_deny && !p.is_listed(tool) {
            return Decision::deny(
                Reason::DefaultDeny,
                Arc::from(DEFAULT_DENY),
                format!("Tool \"{tool}\" is not permitted by policy"),
            );
        }
        match grant {
            Some(None) => {
                return Decision::deny(
                    Reason::NotGranted,
                    Arc::from(NOT_GRANTED),
                    not_granted_message(tool, call.identity),
                );
            }
            Some(Some(g)) if !g.tools.contains(tool) => {
                return Decision::deny(
                    Reason::NotGranted,
                    Arc::from(NOT_GRANTED),
                    not_granted_message(tool, call.identity),
                );
            }
            _ => {}
        }

        let mut scratch = Vec::new();
        let rule_ids = p.rules_for(tool, &mut scratch);
        let mut approval: Option<&Rule> = None;
        // With the store down in fail-open mode: why the counters were not enforced.
        let mut unenforced: Option<StoreError> = None;
        for &id in rule_ids {
            let rule = &p.rules[id];
            match rule.action {
                Action::Deny => {
                    return Decision::deny(Reason::Rule, rule.name.clone(), rule.message.clone());
                }
                Action::Evaluate | Action::Allow => {
                    match self.all_pass(&rule.conditions, args, call, now, &mut unenforced) {
                        Ok(true) => {}
                        Ok(false) => {
                            return Decision::deny(
                                Reason::Rule,
                                rule.name.clone(),
                                rule.message.clone(),
                            );
                        }
                        Err(e) => return state_unavailable(rule, &e),
                    }
                }
                Action::RequireApproval => {
                    match self.all_pass(&rule.conditions, args, call, now, &mut unenforced) {
                        Ok(true) => {
                            approval.get_or_insert(rule);
                        }
                        Ok(false) => {}
                        Err(e) => return state_unavailable(rule, &e),
                    }
                }
            }
        }
        if let Some(rule) = approval {
            return Decision {
                verdict: Verdict::RequireApproval,
                reason: Reason::Rule,
                rule: Some(rule.name.clone()),
                message: Some(match &*rule.message {
                    m if m.starts_with("Denied by rule") => Arc::from(format!(
                        "Tool \"{tool}\" requires human approval (rule \"{}\")",
                        rule.name
                    )),
                    _ => rule.message.clone(),
                }),
                retry_after_seconds: None,
                approval_timeout: rule.approval_timeout,
                reservation: None,
                unenforced: None,
            };
        }
        let mut decision = if reserve {
            self.reserve(rule_ids, args, call, now, &mut unenforced)
        } else {
            Decision::allow(None)
        };
        if decision.is_allowed()
            && let Some(e) = unenforced
        {
            decision.unenforced = Some(Arc::from(e.to_string()));
        }
        decision
    }

    fn all_pass(
        &self,
        conditions: &[Condition],
        args: &Value,
        call: &Call<'_>,
        now: &Clock,
        unenforced: &mut Option<StoreError>,
    ) -> Result<bool, StoreError> {
        for cond in conditions {
            let actual: Option<Cow<'_, Value>> = match &cond.path {
                PathExpr::Args(path) => conditions::resolve(args, path).map(Cow::Borrowed),
                PathExpr::State(ci) => {
                    let spec = &self.policy.counters[*ci];
                    let key = spec.key(call.identity, call.session);
                    let value = match self.store.read(&key, spec.window, now.get()) {
                        Ok(v) => v,
                        // Fail open: an unreadable counter reads as zero.
                        Err(e) if self.fail_mode == FailMode::Open => {
                            unenforced.get_or_insert(e);
                            0
                        }
                        Err(e) => return Err(e),
                    };
                    Some(Cow::Owned(Value::from(value)))
                }
                PathExpr::Identity => call.identity.map(|s| Cow::Owned(Value::from(s))),
                PathExpr::ClientName => call.client_name.map(|s| Cow::Owned(Value::from(s))),
            };
            if !conditions::apply(&cond.op, actual.as_deref()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reserves every counter of the rules that passed, all or none.
    fn reserve(
        &self,
        rule_ids: &[usize],
        args: &Value,
        call: &Call<'_>,
        now: &Clock,
        unenforced: &mut Option<StoreError>,
    ) -> Decision {
        let p = &*self.policy;
        let mut keys: Vec<(Cow<'_, str>, usize, u64)> = Vec::new();
        for &id in rule_ids {
            let rule = &p.rules[id];
            let Some(ci) = rule.counter else { continue };
            let spec = &p.counters[ci];
            let amount = match &spec.amount {
                Amount::Fixed(n) => *n,
                Amount::FromArgs(path) => match amount_from(args, path) {
                    Ok(n) => n,
                    Err(problem) => {
                        return Decision::deny(
                            Reason::InvalidArguments,
                            rule.name.clone(),
                            format!("increment_from \"{}\" {problem}", path.text),
                        );
                    }
                },
            };
            keys.push((spec.key(call.identity, call.session), ci, amount));
        }
        if keys.is_empty() {
            return Decision::allow(None);
        }
        let requests: Vec<CounterRequest<'_>> = keys
            .iter()
            .map(|(key, ci, amount)| CounterRequest {
                key,
                window: p.counters[*ci].window,
                limit: p.counters[*ci].limit,
                amount: *amount,
            })
            .collect();
        match self.store.reserve(&requests, now.get()) {
            Ok(Reserved::Granted(r)) => Decision::allow(Some(r)),
            Ok(Reserved::Denied { index, retry_after }) => {
                let rule = &p.rules[p.counters[keys[index].1].rule];
                let mut d = Decision::deny(
                    Reason::RateLimit,
                    rule.name.clone(),
                    rule.limit_message.clone(),
                );
                d.retry_after_seconds = retry_after;
                d
            }
            Err(e) if self.fail_mode == FailMode::Open => {
                unenforced.get_or_insert(e);
                Decision::allow(None)
            }
            Err(e) => {
                let rule = &p.rules[p.counters[keys[0].1].rule];
                state_unavailable(rule, &e)
            }
        }
    }

    /// The tool ran: keep the reservation.
    pub fn commit(&self, reservation: &Reservation) -> Result<(), StoreError> {
        self.store.commit(reservation)
    }

    /// The tool failed: give the reservation back.
    pub fn rollback(&self, reservation: &Reservation) -> Result<(), StoreError> {
        self.store.rollback(reservation)
    }

    /// Whether `tools/list` should show this tool to this caller: not hidden, granted,
    /// and listed when the policy denies by default.
    pub fn is_visible(&self, tool: &str, identity: Option<&str>) -> bool {
        let p = &*self.policy;
        if p.hide.contains(tool) || (p.default_deny && !p.is_listed(tool)) {
            return false;
        }
        match p.grants.as_ref().map(|g| g.for_identity(identity)) {
            None => true,
            Some(None) => false,
            Some(Some(g)) => g.tools.contains(tool) && !g.hide.contains(tool),
        }
    }
}

fn state_unavailable(rule: &Rule, e: &StoreError) -> Decision {
    Decision::deny(
        Reason::StateUnavailable,
        rule.name.clone(),
        format!("Policy state store is unavailable, so the call was denied ({e})"),
    )
}

fn not_granted_message(tool: &str, identity: Option<&str>) -> String {
    match identity {
        Some(id) => format!("Tool \"{tool}\" is not granted to identity \"{id}\""),
        None => format!("Tool \"{tool}\" is not granted to callers without an identity"),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Counts are whole numbers and SQLite integers are signed 64-bit.
const MAX_AMOUNT: f64 = 9_007_199_254_740_992.0; // 2^53: every whole number below is exact

/// The amount an `increment_from` path names: a finite, non-negative number, rounded up.
fn amount_from(args: &Value, path: &ArgPath) -> Result<u64, String> {
    let Some(value) = conditions::resolve(args, path) else {
        return Err("is missing from the call's arguments".to_string());
    };
    let Value::Number(n) = value else {
        return Err(format!(
            "must be a finite, non-negative number, got {}",
            json_type(value)
        ));
    };
    if let Some(u) = n.as_u64() {
        return if (u as f64) <= MAX_AMOUNT {
            Ok(u)
        } else {
            Err(format!("is too large ({n})"))
        };
    }
    match n.as_f64() {
        Some(f) if (0.0..=MAX_AMOUNT).contains(&f) => Ok(f.ceil() as u64),
        Some(f) if f.is_finite() && f > MAX_AMOUNT => Err(format!("is too large ({n})")),
        _ => Err(format!("must be a finite, non-negative number, got {n}")),
    }
}
