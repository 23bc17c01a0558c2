//! The compiled, immutable form of a policy that the engine evaluates.
//!
//! Everything that can be decided at load time is decided here: rule order per tool,
//! compiled regexes, counter limits and store keys. One `CompiledPolicy` is one whole
//! policy: a call is always evaluated against exactly one of them.

use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

pub use super::names::Glob;
use crate::state::Window;

/// Index of a rule in [`CompiledPolicy::rules`].
pub type RuleId = usize;

#[derive(Debug)]
pub struct CompiledPolicy {
    pub default_deny: bool,
    pub hide: NameSet,
    /// Exact tool keys → every rule that applies to that tool, in evaluation order.
    /// (Fx hashing: keys come from the policy, lookups never insert, and it is the hot path.)
    pub(crate) plans: FxHashMap<String, Vec<RuleId>>,
    /// Glob keys (`delete_*`) in file order, with their own rules.
    pub(crate) glob_rules: Vec<(Glob, Vec<RuleId>)>,
    /// Rules under the `"*"` key.
    pub(crate) wildcard_rules: Vec<RuleId>,
    pub rules: Vec<Rule>,
    pub grants: Option<Grants>,
    pub identities: Vec<Identity>,
    /// Every counter any rule defines, for `state.` condition paths.
    pub counters: Vec<CounterSpec>,
    /// Whether any rule is in shadow mode (so enforced-only policies skip that work).
    pub has_shadow_rules: bool,
}

impl CompiledPolicy {
    /// Whether `tool` is a key of `tools` (exact, or matched by a glob key other than `"*"`).
    pub fn is_listed(&self, tool: &str) -> bool {
        self.plans.contains_key(tool) || self.glob_rules.iter().any(|(g, _)| g.matches(tool))
    }

    /// The rules that apply to `tool`, in evaluation order: its own, then glob keys, then `"*"`.
    pub fn rules_for<'a>(&'a self, tool: &str, scratch: &'a mut Vec<RuleId>) -> &'a [RuleId] {
        if let Some(plan) = self.plans.get(tool) {
            return plan;
        }
        scratch.clear();
        for (glob, ids) in &self.glob_rules {
            if glob.matches(tool) {
                scratch.extend_from_slice(ids);
            }
        }
        scratch.extend_from_slice(&self.wildcard_rules);
        scratch
    }
}

/// A set of tool names: exact names, globs, or everything (`"*"`).
#[derive(Debug, Default)]
pub struct NameSet {
    pub all: bool,
    pub exact: FxHashSet<String>,
    pub globs: Vec<Glob>,
}

impl NameSet {
    pub fn contains(&self, name: &str) -> bool {
        self.all || self.exact.contains(name) || self.globs.iter().any(|g| g.matches(name))
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.exact.is_empty() && self.globs.is_empty()
    }
}

/// Per-identity allowlists. An identity without an entry uses the `"*"` entry; with no
/// `"*"` entry it is granted nothing.
#[derive(Debug, Default)]
pub struct Grants {
    pub by_identity: FxHashMap<String, Grant>,
    pub fallback: Option<Grant>,
}

impl Grants {
    pub fn for_identity(&self, identity: Option<&str>) -> Option<&Grant> {
        identity
            .and_then(|id| self.by_identity.get(id))
            .or(self.fallback.as_ref())
    }
}

#[derive(Debug, Default)]
pub struct Grant {
    pub tools: NameSet,
    pub hide: NameSet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub token: IdentityToken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityToken {
    /// Recognised only by name (`--identity NAME` on stdio).
    None,
    /// A bearer token read from this environment variable.
    Env(String),
    /// The lowercase hex SHA-256 of the bearer token.
    Sha256(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Every condition must pass.
    Evaluate,
    /// Passes unless its rate limit or conditions fail.
    Allow,
    /// Always blocks.
    Deny,
    /// Held for a human when its conditions match.
    RequireApproval,
}

#[derive(Debug)]
pub struct Rule {
    pub name: Arc<str>,
    /// The `tools` key the rule was written under.
    pub tool_key: Arc<str>,
    pub action: Action,
    /// `mode: shadow`: the rule is evaluated and its counter kept, but a call it would
    /// deny or hold goes through, reported as `shadow_deny`.
    pub shadow: bool,
    pub conditions: Vec<Condition>,
    /// The counter this rule reserves on every call it passes.
    pub counter: Option<usize>,
    /// Returned when the rule denies on its conditions (or is a deny rule).
    pub message: Arc<str>,
    /// Returned when the rule's counter is over its limit.
    pub limit_message: Arc<str>,
    pub approval_timeout: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Identity,
    Session,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Identity => "identity",
            Scope::Session => "session",
        }
    }
}

/// Where a counter was defined, which decides how a call over its limit is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterKind {
    /// A rule's `rate_limit`: calls per window.
    RateLimit,
    /// A rule's `state` block: an amount (calls, spend, …) per window, limited by one of the
    /// rule's conditions.
    Budget,
}

/// A counter a rule maintains: what it counts, in which window, up to which limit.
#[derive(Debug)]
pub struct CounterSpec {
    /// Tool key the counter belongs to (`_global` for the `"*"` key).
    pub owner: Arc<str>,
    pub name: Arc<str>,
    pub window: Window,
    /// The largest value the counter may reach.
    pub limit: u64,
    pub amount: Amount,
    pub scope: Scope,
    pub kind: CounterKind,
    /// The rule that owns it.
    pub rule: RuleId,
    /// `global:<owner>:<name>`, precomputed so the common case builds no key per call.
    pub global_key: Arc<str>,
}

impl CounterSpec {
    /// The store key of this counter for a caller.
    pub fn key(&self, identity: Option<&str>, session: Option<&str>) -> std::borrow::Cow<'_, str> {
        match self.scope {
            Scope::Global => std::borrow::Cow::Borrowed(&self.global_key),
            Scope::Identity => std::borrow::Cow::Owned(format!(
                "identity:{}:{}:{}",
                escape_key_part(identity.unwrap_or("")),
                self.owner,
                self.name
            )),
            Scope::Session => std::borrow::Cow::Owned(format!(
                "session:{}:{}:{}",
                escape_key_part(session.unwrap_or("")),
                self.owner,
                self.name
            )),
        }
    }
}

/// Identities and sessions come from callers; `:` is escaped so that one caller's key can
/// never be spelt as another's.
fn escape_key_part(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['%', ':']) {
        std::borrow::Cow::Owned(s.replace('%', "%25").replace(':', "%3A"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[derive(Debug, Clone)]
pub enum Amount {
    Fixed(u64),
    /// Read from the call's arguments; must be a finite, non-negative number.
    FromArgs(ArgPath),
}

#[derive(Debug)]
pub struct Condition {
    pub path: PathExpr,
    pub op: Op,
}

#[derive(Debug)]
pub enum PathExpr {
    Args(ArgPath),
    /// Index into [`CompiledPolicy::counters`].
    State(usize),
    Identity,
    ClientName,
}

/// `args.items.0.id` → segments `items`, `0`, `id`.
#[derive(Debug, Clone)]
pub struct ArgPath {
    pub text: String,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub key: String,
    /// Set when the segment is a whole number, so it can also index an array.
    pub index: Option<usize>,
}

/// A literal from the policy, with its loose-equality text precomputed.
#[derive(Debug, Clone)]
pub struct Literal {
    pub value: Value,
    /// The reference implementation's text rendering (Go `%v`), used by loose `eq`.
    pub text: String,
}

#[derive(Debug)]
pub enum Op {
    Eq(Literal),
    Neq(Literal),
    In(Vec<Literal>),
    NotIn(Vec<Literal>),
    Lt(serde_json::Number),
    Lte(serde_json::Number),
    Gt(serde_json::Number),
    Gte(serde_json::Number),
    Regex(Regex),
    Contains(Literal),
    Exists(bool),
}
