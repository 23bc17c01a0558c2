//! Semantic validation and compilation: raw policy structs → [`CompiledPolicy`].
//!
//! Messages keep the reference implementation's wording where it has one, so its docs and
//! users' searches carry over. Checks the reference lacks (a counter with no limit, `lt`
//! with a fractional limit, typos, …) are added in the same style.
//!
//! Rules and counters are here; conditions (paths, operators, limits) in `conditions.rs`;
//! hide lists, identities and grants in `access.rs`.

mod access;
mod conditions;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::decode::{Decoder, RawPolicy, RawRateLimit, RawRule, RawState, RawTool, Spanned, join};
use super::error::PolicyError;
use super::limits;
use super::model::*;
use super::names::{self, NamePattern};
use super::yaml::Pos;
use crate::state::{CalendarUnit, Window};
/// For the tests that keep the JSON Schema in step with the compiler.
#[cfg(test)]
pub(super) use conditions::OPERATORS;
use conditions::{ParsedPath, arg_path};

/// The values of a rule's `mode`.
pub(super) const MODES: &[&str] = &["enforce", "shadow"];

/// The `state.` owner name of the `"*"` key.
pub const GLOBAL_OWNER: &str = "_global";

/// A counter defined by a rule, before its limit is known.
struct PendingCounter {
    owner: Arc<str>,
    name: String,
    window: Window,
    amount: Amount,
    scope: Scope,
    kind: CounterKind,
    rule: RuleId,
    /// Set for `rate_limit` shorthand and rolling limits; state blocks take theirs from a condition.
    limit: Option<u64>,
    rule_path: String,
    pos: Pos,
}

pub fn compile(raw: RawPolicy, errors: &mut Vec<PolicyError>) -> Option<CompiledPolicy> {
    let before = errors.len();
    let mut c = Compiler {
        d: Decoder { errors },
        rules: Vec::new(),
        counters: Vec::new(),
        pending_conditions: Vec::new(),
        broken_counters: HashSet::new(),
        owners: raw
            .tools
            .iter()
            .map(|t| owner_name(&t.name.value).to_string())
            .collect(),
    };

    if let Some(v) = &raw.version
        && v.value != "1"
    {
        c.d.error(
            v.pos,
            "",
            format!("version must be \"1\", got \"{}\"", v.value),
        );
    }
    let default_deny = match &raw.default {
        None => false,
        Some(d) if d.value == "allow" => false,
        Some(d) if d.value == "deny" => true,
        Some(d) => {
            c.d.error(
                d.pos,
                "",
                format!("default must be \"allow\" or \"deny\", got \"{}\"", d.value),
            );
            false
        }
    };
    let hide = c.name_set(&raw.hide, "hide");

    let mut plans_own: Vec<(String, Vec<RuleId>)> = Vec::new();
    let mut glob_rules = Vec::new();
    let mut wildcard_rules = Vec::new();
    let mut too_many_globs = false;
    for tool in &raw.tools {
        let ids = c.tool(tool);
        let key = tool.name.value.as_str();
        match names::parse(key) {
            Ok(NamePattern::All) => wildcard_rules = ids,
            // Reported once, at the first pattern past the limit.
            Ok(NamePattern::Glob(_)) if glob_rules.len() >= limits::MAX_GLOB_TOOL_KEYS => {
                if !too_many_globs {
                    too_many_globs = true;
                    c.d.error(
                        tool.name.pos,
                        &join("tools", key),
                        format!(
                            "more than {} tools keys are patterns, the most a policy may: name the tools, or merge patterns",
                            limits::MAX_GLOB_TOOL_KEYS
                        ),
                    );
                }
            }
            Ok(NamePattern::Glob(glob)) => glob_rules.push((glob, ids)),
            Ok(NamePattern::Exact(name)) => plans_own.push((name, ids)),
            Err(e) => c.d.error(tool.name.pos, &join("tools", key), e.to_string()),
        }
    }
    c.resolve_state_conditions();
    let counters = c.finish_counters();

    let has_shadow_rules = c.rules.iter().any(|r| r.shadow);
    let identities = c.identities(&raw);
    let grants = c.grants(&raw, &identities);

    if c.d.errors.len() > before {
        return None;
    }
    let mut plans = rustc_hash::FxHashMap::default();
    plans.reserve(plans_own.len());
    for (tool, own) in plans_own {
        let mut ids = own;
        for (glob, glob_ids) in &glob_rules {
            if glob.matches(&tool) {
                ids.extend_from_slice(glob_ids);
            }
        }
        ids.extend_from_slice(&wildcard_rules);
        plans.insert(tool, ids);
    }
    Some(CompiledPolicy {
        default_deny,
        hide,
        plans,
        glob_rules,
        wildcard_rules,
        rules: c.rules,
        grants,
        identities,
        counters,
        has_shadow_rules,
    })
}

fn owner_name(key: &str) -> &str {
    if key == "*" { GLOBAL_OWNER } else { key }
}

/// A `state.` condition waiting for every counter to be known.
struct PendingStateCondition {
    rule: RuleId,
    /// Index in the rule's condition list where the compiled condition goes.
    slot: usize,
    path: Spanned<String>,
    cond_path: String,
    op: Op,
}

pub(super) struct Compiler<'e> {
    d: Decoder<'e>,
    rules: Vec<Rule>,
    counters: Vec<PendingCounter>,
    pending_conditions: Vec<PendingStateCondition>,
    owners: Vec<String>,
    /// `state.<owner>.<counter>` paths of state blocks that had errors, so conditions on
    /// them do not add a second, misleading error.
    broken_counters: HashSet<String>,
}

impl Compiler<'_> {
    fn tool(&mut self, tool: &RawTool) -> Vec<RuleId> {
        let key = &tool.name.value;
        let base = join("tools", key);
        if key.trim().is_empty() {
            self.d
                .error(tool.name.pos, "tools", "tool name must not be empty");
        }
        let mut ids = Vec::new();
        // Counter name → the rule that first used it (a map: a tool may have many rules).
        let mut counter_names: HashMap<String, usize> = HashMap::new();
        for (i, raw) in tool.rules.iter().enumerate() {
            let path = format!("{base}.rules[{i}]");
            if let Some(id) = self.rule(key, i, raw, &path) {
                if let Some(ci) = self.rules[id].counter {
                    let name = self.counters[ci].name.clone();
                    if let Some(first) = counter_names.get(&name) {
                        let pos = raw.state.as_ref().map_or(raw.pos, |s| s.pos);
                        self.d.error(
                            pos,
                            &path,
                            format!(
                                "duplicate state counter \"{name}\" (also used by rules[{first}])"
                            ),
                        );
                    } else {
                        counter_names.insert(name, i);
                    }
                }
                ids.push(id);
            }
        }
        ids
    }

    fn rule(&mut self, tool_key: &str, index: usize, raw: &RawRule, path: &str) -> Option<RuleId> {
        let id = self.rules.len();
        let owner: Arc<str> = Arc::from(owner_name(tool_key));
        let name: Arc<str> = match &raw.name {
            Some(n) if !n.value.trim().is_empty() => Arc::from(n.value.as_str()),
            _ => Arc::from(format!("{tool_key}#{index}")),
        };

        let action = match &raw.action {
            None => Action::Evaluate,
            Some(a) => match a.value.as_str() {
                "evaluate" => Action::Evaluate,
                "allow" => Action::Allow,
                "deny" => Action::Deny,
                "require_approval" => Action::RequireApproval,
                other => {
                    self.d.error(
                        a.pos,
                        path,
                        format!(
                            "action must be \"evaluate\", \"allow\", \"deny\" or \"require_approval\", got \"{other}\""
                        ),
                    );
                    return None;
                }
            },
        };

        let on_deny = match (&raw.on_deny, &raw.reason) {
            (Some(a), Some(_)) => {
                self.d.error(
                    a.pos,
                    path,
                    "on_deny and reason are the same setting; set only one of them",
                );
                None
            }
            (a, b) => a.as_ref().or(b.as_ref()).map(|s| s.value.clone()),
        };

        let scope = self.scope(raw, path);
        let shadow = self.mode(raw, path);
        let mut counter = None;
        let mut limit_default: Option<String> = None;
        // A state block's window: always a calendar one.
        let mut budget_window = None;

        if let Some(rl) = &raw.rate_limit {
            let pos = match rl {
                RawRateLimit::Shorthand(s) => s.pos,
                RawRateLimit::Rolling { pos, .. } => *pos,
            };
            if !raw.conditions.is_empty() || raw.state.is_some() {
                self.d.error(
                    pos,
                    path,
                    "rate_limit cannot be combined with conditions or state; use separate rules or the full syntax instead",
                );
                return None;
            }
            if matches!(action, Action::Deny | Action::RequireApproval) {
                let a = if action == Action::Deny {
                    "deny"
                } else {
                    "require_approval"
                };
                self.d.error(
                    pos,
                    path,
                    format!("rate_limit cannot be used with action \"{a}\""),
                );
                return None;
            }
            let (window, limit, cname, default_msg) = self.rate_limit(rl, path)?;
            limit_default = Some(default_msg);
            counter = Some(self.counters.len());
            self.counters.push(PendingCounter {
                owner: owner.clone(),
                name: cname,
                window,
                amount: Amount::Fixed(1),
                scope: scope.unwrap_or(Scope::Global),
                kind: CounterKind::RateLimit,
                rule: id,
                limit: Some(limit),
                rule_path: path.to_string(),
                pos,
            });
        } else {
            match action {
                Action::Deny if !raw.conditions.is_empty() => {
                    self.d
                        .error(raw.pos, path, "deny rules must not have conditions");
                }
                Action::Deny | Action::RequireApproval if raw.state.is_some() => {
                    let a = if action == Action::Deny {
                        "deny"
                    } else {
                        "require_approval"
                    };
                    self.d.error(
                        raw.pos,
                        path,
                        format!("{a} rules must not have a state block (they never count calls)"),
                    );
                }
                Action::Evaluate
                    if raw.conditions.is_empty()
                        && !raw.undecoded_conditions
                        && !raw.undecoded_rate_limit =>
                {
                    self.d.error(
                        raw.pos,
                        path,
                        "evaluate rules must have at least one condition",
                    );
                }
                _ => {}
            }
            if let Some(state) = &raw.state
                && !matches!(action, Action::Deny | Action::RequireApproval)
                && let Some((index, unit)) = self.state_block(state, &owner, scope, id, path)
            {
                counter = Some(index);
                budget_window = Some(unit);
            }
        }
        if scope.is_some() && counter.is_none() && raw.rate_limit.is_none() && raw.state.is_none() {
            let pos = raw.scope.as_ref().map_or(raw.pos, |s| s.pos);
            self.d.error(
                pos,
                path,
                "scope only applies to rules with rate_limit or state",
            );
        }

        let approval_timeout = match &raw.approval_timeout {
            None => None,
            Some(t) if action != Action::RequireApproval => {
                self.d.error(
                    t.pos,
                    path,
                    "approval_timeout only applies to rules with action \"require_approval\"",
                );
                None
            }
            Some(t) => match parse_duration(&t.value) {
                Some(d) => Some(d),
                None => {
                    self.d.error(
                        t.pos,
                        &join(path, "approval_timeout"),
                        format!(
                            "approval_timeout must be a duration such as \"90s\", \"30m\", \"2h\" or \"1d\", got \"{}\"",
                            t.value
                        ),
                    );
                    None
                }
            },
        };

        let mut conditions = Vec::with_capacity(raw.conditions.len());
        let mut limit_taken = false;
        for (j, cond) in raw.conditions.iter().enumerate() {
            let cpath = format!("{path}.conditions[{j}]");
            let Some((path_expr, op)) = self.condition(cond, &cpath) else {
                continue;
            };
            match path_expr {
                ParsedPath::State(text) => {
                    // The first lt/lte on the rule's own counter is its limit, enforced by
                    // the atomic reservation rather than by a separate (racy) read.
                    if !limit_taken
                        && let Some(ci) = counter
                        && self.is_own_counter(&text.value, ci)
                        && let Some(limit) = self.limit_from(&op, &cond.value, &cpath, ci)
                    {
                        limit_taken = true;
                        self.counters[ci].limit = Some(limit);
                        continue;
                    }
                    self.pending_conditions.push(PendingStateCondition {
                        rule: id,
                        slot: conditions.len(),
                        path: text,
                        cond_path: cpath,
                        op,
                    });
                    // Placeholder, replaced in resolve_state_conditions().
                    conditions.push(Condition {
                        path: PathExpr::State(usize::MAX),
                        op: Op::Exists(true),
                    });
                }
                ParsedPath::Other(path) => conditions.push(Condition { path, op }),
            }
        }

        let message: Arc<str> = match &on_deny {
            Some(m) => Arc::from(m.as_str()),
            None => Arc::from(format!("Denied by rule \"{name}\"")),
        };
        let limit_message: Arc<str> = match (&on_deny, limit_default, counter.zip(budget_window)) {
            (Some(m), _, _) => Arc::from(m.as_str()),
            (None, Some(d), _) => Arc::from(d),
            (None, None, Some((ci, unit))) => {
                Arc::from(budget_message(&self.counters[ci], unit, &name))
            }
            // No counter: never shown.
            (None, None, None) => Arc::from(format!("Denied by rule \"{name}\"")),
        };
        self.rules.push(Rule {
            name,
            tool_key: Arc::from(tool_key),
            action,
            shadow,
            conditions,
            counter,
            message,
            limit_message,
            approval_timeout,
        });
        Some(id)
    }

    fn scope(&mut self, raw: &RawRule, path: &str) -> Option<Scope> {
        let s = raw.scope.as_ref()?;
        match s.value.as_str() {
            "global" => Some(Scope::Global),
            "identity" => Some(Scope::Identity),
            "session" => Some(Scope::Session),
            other => {
                self.d.error(
                    s.pos,
                    &join(path, "scope"),
                    format!(
                        "scope must be \"global\", \"identity\" or \"session\", got \"{other}\""
                    ),
                );
                None
            }
        }
    }

    /// `mode: enforce` (the default) or `mode: shadow`.
    fn mode(&mut self, raw: &RawRule, path: &str) -> bool {
        let Some(m) = &raw.mode else { return false };
        match m.value.as_str() {
            "enforce" => false,
            "shadow" => true,
            other => {
                let hint = match super::decode::suggest(other, MODES) {
                    Some(s) => format!(" (did you mean \"{s}\"?)"),
                    None => String::new(),
                };
                self.d.error(
                    m.pos,
                    &join(path, "mode"),
                    format!("mode must be \"enforce\" or \"shadow\", got \"{other}\"{hint}"),
                );
                false
            }
        }
    }

    /// Returns the window, limit, internal counter name and default denial message.
    fn rate_limit(
        &mut self,
        rl: &RawRateLimit,
        path: &str,
    ) -> Option<(Window, u64, String, String)> {
        match rl {
            RawRateLimit::Shorthand(s) => {
                let text = s.value.as_str();
                let field = join(path, "rate_limit");
                let Some((count, unit)) = text.split_once('/') else {
                    self.d.error(
                        s.pos,
                        &field,
                        format!(
                            "rate_limit must be in the format \"N/window\" (e.g. \"5/hour\"), got \"{text}\""
                        ),
                    );
                    return None;
                };
                let n = match count.parse::<i64>() {
                    Ok(n) if n > 0 => n as u64,
                    _ => {
                        self.d.error(
                            s.pos,
                            &field,
                            format!("rate_limit count must be a positive integer, got \"{count}\""),
                        );
                        return None;
                    }
                };
                let Some(unit) = CalendarUnit::parse(unit) else {
                    self.d.error(
                        s.pos,
                        &field,
                        format!(
                            "rate_limit window must be \"minute\", \"hour\", or \"day\", got \"{unit}\""
                        ),
                    );
                    return None;
                };
                Some((
                    Window::Calendar(unit),
                    n,
                    format!("_rate_{}", unit.as_str()),
                    format!(
                        "Rate limit of {n} per {} reached. Try again later.",
                        unit.as_str()
                    ),
                ))
            }
            RawRateLimit::Rolling { max, window, .. } => {
                let mut ok = true;
                if max.value <= 0 {
                    self.d.error(
                        max.pos,
                        &join(path, "rate_limit.max"),
                        format!(
                            "rate_limit max must be a positive integer, got \"{}\"",
                            max.value
                        ),
                    );
                    ok = false;
                }
                if window.value <= 0 {
                    self.d.error(
                        window.pos,
                        &join(path, "rate_limit.window"),
                        format!(
                            "rate_limit window must be a positive number of seconds, got \"{}\"",
                            window.value
                        ),
                    );
                    ok = false;
                }
                if !ok {
                    return None;
                }
                let (n, secs) = (max.value as u64, window.value as u64);
                Some((
                    Window::Rolling { seconds: secs },
                    n,
                    format!("_rate_{secs}s"),
                    format!("Rate limit of {n} per {secs} seconds reached. Try again later."),
                ))
            }
        }
    }

    fn state_block(
        &mut self,
        state: &RawState,
        owner: &Arc<str>,
        scope: Option<Scope>,
        rule: RuleId,
        rule_path: &str,
    ) -> Option<(usize, CalendarUnit)> {
        let path = join(rule_path, "state");
        let mut ok = true;
        let name = state.counter.as_ref().map(|c| c.value.trim()).unwrap_or("");
        if name.is_empty() {
            self.d.error(state.pos, &path, "counter must not be empty");
            ok = false;
        } else if !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        {
            let pos = state.counter.as_ref().map_or(state.pos, |c| c.pos);
            self.d.error(
                pos,
                &path,
                format!(
                    "counter name may only hold letters, digits, \"_\" and \"-\", got \"{name}\""
                ),
            );
            ok = false;
        }
        let window_text = state
            .window
            .as_ref()
            .map(|w| w.value.as_str())
            .unwrap_or("");
        let window = CalendarUnit::parse(window_text);
        if window.is_none() {
            let pos = state.window.as_ref().map_or(state.pos, |w| w.pos);
            self.d.error(
                pos,
                &path,
                format!("window must be \"minute\", \"hour\", or \"day\", got \"{window_text}\""),
            );
            ok = false;
        }
        let amount = match (&state.increment, &state.increment_from) {
            (Some(inc), Some(_)) => {
                self.d.error(
                    inc.pos,
                    &path,
                    "increment and increment_from cannot both be set",
                );
                ok = false;
                Amount::Fixed(1)
            }
            (Some(inc), None) if inc.value <= 0 => {
                self.d.error(
                    inc.pos,
                    &path,
                    format!(
                        "increment must be a positive integer, got \"{}\"",
                        inc.value
                    ),
                );
                ok = false;
                Amount::Fixed(1)
            }
            (Some(inc), None) => Amount::Fixed(inc.value as u64),
            (None, Some(from)) => match from.value.strip_prefix("args.") {
                Some(rest) if !rest.is_empty() && !rest.split('.').any(str::is_empty) => {
                    Amount::FromArgs(arg_path(&from.value))
                }
                _ => {
                    self.d.error(
                        from.pos,
                        &path,
                        format!(
                            "increment_from must start with \"args.\", got \"{}\"",
                            from.value
                        ),
                    );
                    ok = false;
                    Amount::Fixed(1)
                }
            },
            (None, None) => Amount::Fixed(1),
        };
        if !ok {
            self.broken_counters.insert(format!("state.{owner}.{name}"));
            return None;
        }
        let index = self.counters.len();
        let unit = window?;
        self.counters.push(PendingCounter {
            owner: owner.clone(),
            name: name.to_string(),
            window: Window::Calendar(unit),
            amount,
            scope: scope.unwrap_or(Scope::Global),
            kind: CounterKind::Budget,
            rule,
            limit: None,
            rule_path: rule_path.to_string(),
            pos: state.pos,
        });
        Some((index, unit))
    }

    fn resolve_state_conditions(&mut self) {
        let pending = std::mem::take(&mut self.pending_conditions);
        if pending.is_empty() {
            return;
        }
        // Maps, not scans: a policy may hold many thousands of tools, counters and conditions.
        let owners: HashSet<&str> = self
            .owners
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(GLOBAL_OWNER))
            .collect();
        let mut by_name: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, c) in self.counters.iter().enumerate() {
            by_name.entry((&*c.owner, c.name.as_str())).or_insert(i);
        }
        let mut resolved = Vec::with_capacity(pending.len());
        for p in pending {
            let rest = p.path.value.strip_prefix("state.").unwrap_or("");
            // Tool names may contain dots (`github.create_issue`): the owner is the longest
            // tool key (or `_global`) that the path starts with, followed by a dot.
            let owner = rest
                .rmatch_indices('.')
                .map(|(dot, _)| dot)
                .find(|&dot| owners.contains(&rest[..dot]));
            let found = owner
                .and_then(|dot| by_name.get(&(&rest[..dot], &rest[dot + 1..])))
                .copied();
            resolved.push((p, found));
        }
        for (p, found) in resolved {
            match found {
                Some(ci) => {
                    self.rules[p.rule].conditions[p.slot] = Condition {
                        path: PathExpr::State(ci),
                        op: p.op,
                    };
                }
                None if self.broken_counters.contains(&p.path.value) => {}
                None => self.d.error(
                    p.path.pos,
                    &p.cond_path,
                    format!(
                        "condition references {} but no matching state block found",
                        p.path.value
                    ),
                ),
            }
        }
    }

    fn finish_counters(&mut self) -> Vec<CounterSpec> {
        let pending = std::mem::take(&mut self.counters);
        let mut out = Vec::with_capacity(pending.len());
        for c in pending {
            let limit = match c.limit {
                Some(l) => l,
                None => {
                    self.d.error(
                        c.pos,
                        &join(&c.rule_path, "state"),
                        format!(
                            "state counter \"{}\" has no limit: add a condition {{path: state.{}.{}, op: lte, value: N}} to this rule",
                            c.name, c.owner, c.name
                        ),
                    );
                    0
                }
            };
            out.push(CounterSpec {
                global_key: Arc::from(format!("global:{}:{}", c.owner, c.name)),
                owner: c.owner,
                name: Arc::from(c.name),
                window: c.window,
                limit,
                amount: c.amount,
                scope: c.scope,
                kind: c.kind,
                rule: c.rule,
            });
        }
        out
    }
}

/// The default message of a `state` counter over its limit: the limit, the window, the
/// scope and the counter, so that the agent (and whoever reads the log) knows which budget
/// ran out. A counter without a limit is an error reported elsewhere. State counters count
/// in calendar windows only: `window` is the counter's.
fn budget_message(c: &PendingCounter, window: CalendarUnit, rule: &str) -> String {
    let limit = c.limit.unwrap_or(0);
    let window = window.as_str();
    let scope = match c.scope {
        Scope::Global => "",
        Scope::Identity => " for each identity",
        Scope::Session => " for each session",
    };
    format!(
        "Budget of {limit} per {window}{scope} on \"{}\" would be exceeded by this call (rule \"{rule}\")",
        c.name
    )
}

/// `90s`, `30m`, `2h`, `1d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}
