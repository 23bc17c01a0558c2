//! Structural decoding: YAML nodes → raw policy structs.
//!
//! The schema is strict: an unknown key anywhere is an error with a "did you mean" hint,
//! because a typo such as `hidden:` or `on-deny:` must never silently weaken a policy.
//! Every error is collected; decoding goes on past errors wherever the shape allows.

use std::collections::HashMap;

use super::error::PolicyError;
use super::yaml::{Kind, Node, Pos};

/// A value with the position it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub pos: Pos,
}

#[derive(Debug, Default)]
pub struct RawPolicy {
    pub version: Option<Spanned<String>>,
    pub default: Option<Spanned<String>>,
    pub hide: Vec<Spanned<String>>,
    pub tools: Vec<RawTool>,
    pub identities: Vec<RawIdentity>,
    pub grants: Vec<RawGrant>,
}

#[derive(Debug)]
pub struct RawTool {
    pub name: Spanned<String>,
    pub rules: Vec<RawRule>,
}

#[derive(Debug, Default)]
pub struct RawRule {
    pub pos: Pos,
    pub name: Option<Spanned<String>>,
    pub action: Option<Spanned<String>>,
    pub conditions: Vec<RawCondition>,
    pub rate_limit: Option<RawRateLimit>,
    /// Keys written but not decodable: later checks skip them rather than pile a second,
    /// misleading error on the first.
    pub undecoded_conditions: bool,
    pub undecoded_rate_limit: bool,
    pub scope: Option<Spanned<String>>,
    pub state: Option<RawState>,
    pub on_deny: Option<Spanned<String>>,
    pub reason: Option<Spanned<String>>,
    pub approval_timeout: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
}

#[derive(Debug)]
pub enum RawRateLimit {
    /// `"5/hour"`
    Shorthand(Spanned<String>),
    /// `{max: 30, window: 60}`
    Rolling {
        pos: Pos,
        max: Spanned<i64>,
        window: Spanned<i64>,
    },
}

#[derive(Debug)]
pub struct RawCondition {
    pub pos: Pos,
    pub path: Option<Spanned<String>>,
    pub op: Option<Spanned<String>>,
    pub value: Option<Node>,
}

#[derive(Debug)]
pub struct RawState {
    pub pos: Pos,
    pub counter: Option<Spanned<String>>,
    pub window: Option<Spanned<String>>,
    pub increment: Option<Spanned<i64>>,
    pub increment_from: Option<Spanned<String>>,
}

#[derive(Debug)]
pub struct RawIdentity {
    pub name: Spanned<String>,
    pub token_env: Option<Spanned<String>>,
    pub token_sha256: Option<Spanned<String>>,
}

#[derive(Debug)]
pub struct RawGrant {
    pub identity: Spanned<String>,
    pub tools: Option<Vec<Spanned<String>>>,
    pub hide: Vec<Spanned<String>>,
}

pub(super) const TOP_KEYS: &[&str] = &[
    "version",
    "description",
    "default",
    "hide",
    "tools",
    "identities",
    "grants",
];
pub(super) const TOOL_KEYS: &[&str] = &["rules"];
pub(super) const RULE_KEYS: &[&str] = &[
    "name",
    "action",
    "conditions",
    "rate_limit",
    "scope",
    "state",
    "on_deny",
    "reason",
    "approval_timeout",
    "mode",
];
pub(super) const CONDITION_KEYS: &[&str] = &["path", "op", "value"];
pub(super) const STATE_KEYS: &[&str] = &["counter", "window", "increment", "increment_from"];
pub(super) const ROLLING_KEYS: &[&str] = &["max", "window"];
pub(super) const IDENTITY_KEYS: &[&str] = &["token_env", "token_sha256", "description"];
pub(super) const GRANT_KEYS: &[&str] = &["tools", "hide"];

/// Collects errors while walking the tree.
pub struct Decoder<'e> {
    pub errors: &'e mut Vec<PolicyError>,
}

/// Joins a parent path and a key: `tools.t` + `rules` → `tools.t.rules`.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Decoder<'_> {
    pub fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        let message = message.into();
        let full = if path.is_empty() {
            message
        } else {
            format!("{path}: {message}")
        };
        self.errors.push(PolicyError {
            message: full,
            path: path.to_string(),
            line: pos.line,
            column: pos.column,
        });
    }

    pub fn policy(&mut self, root: &Node) -> RawPolicy {
        // An empty document never gets here: `compile_text` refuses it first.
        let mut policy = RawPolicy::default();
        let Some(entries) = self.mapping(root, "", TOP_KEYS) else {
            return policy;
        };
        for (key, value) in entries {
            match key {
                "version" => policy.version = self.string(value, "version"),
                "description" => {
                    self.string(value, "description");
                }
                "default" => policy.default = self.string(value, "default"),
                "hide" => policy.hide = self.string_list(value, "hide"),
                "tools" => policy.tools = self.tools(value),
                "identities" => policy.identities = self.identities(value),
                "grants" => policy.grants = self.grants(value),
                _ => unreachable!("mapping() only yields known keys"),
            }
        }
        policy
    }

    fn tools(&mut self, node: &Node) -> Vec<RawTool> {
        let mut tools = Vec::new();
        if matches!(node.kind, Kind::Null) {
            return tools;
        }
        let Some(entries) = self.mapping(node, "tools", &[]) else {
            return tools;
        };
        for (name, value) in entries {
            let path = join("tools", name);
            let name = Spanned {
                value: name.to_string(),
                pos: value.pos,
            };
            // `tool: {}` and `tool:` (null) both list the tool with no rules.
            let mut rules = Vec::new();
            if !matches!(value.kind, Kind::Null)
                && let Some(fields) = self.mapping(value, &path, TOOL_KEYS)
            {
                for (_, rules_node) in fields {
                    rules = self.rules(rules_node, &join(&path, "rules"));
                }
            }
            tools.push(RawTool { name, rules });
        }
        tools
    }

    fn rules(&mut self, node: &Node, path: &str) -> Vec<RawRule> {
        let Some(items) = self.sequence(node, path) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.rule(item, &format!("{path}[{i}]")))
            .collect()
    }

    fn rule(&mut self, node: &Node, path: &str) -> Option<RawRule> {
        let entries = self.mapping(node, path, RULE_KEYS)?;
        let mut rule = RawRule {
            pos: node.pos,
            ..RawRule::default()
        };
        for (key, value) in entries {
            let field = join(path, key);
            match key {
                "name" => rule.name = self.string(value, &field),
                "action" => rule.action = self.string(value, &field),
                "conditions" => {
                    let before = self.errors.len();
                    rule.conditions = self.conditions(value, &join(path, "conditions"));
                    rule.undecoded_conditions = self.errors.len() > before;
                }
                "rate_limit" => {
                    rule.rate_limit = self.rate_limit(value, &field);
                    rule.undecoded_rate_limit = rule.rate_limit.is_none();
                }
                "scope" => rule.scope = self.string(value, &field),
                "state" => rule.state = self.state(value, &join(path, "state")),
                "on_deny" => rule.on_deny = self.string(value, &field),
                "reason" => rule.reason = self.string(value, &field),
                "approval_timeout" => rule.approval_timeout = self.string(value, &field),
                "mode" => rule.mode = self.string(value, &field),
                _ => unreachable!("mapping() only yields known keys"),
            }
        }
        Some(rule)
    }

    fn conditions(&mut self, node: &Node, path: &str) -> Vec<RawCondition> {
        if matches!(node.kind, Kind::Null) {
            return Vec::new();
        }
        let Some(items) = self.sequence(node, path) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let cpath = format!("{path}[{i}]");
            let Some(entries) = self.mapping(item, &cpath, CONDITION_KEYS) else {
                continue;
            };
            let mut cond = RawCondition {
                pos: item.pos,
                path: None,
                op: None,
                value: None,
            };
            for (key, value) in entries {
                match key {
                    "path" => cond.path = self.string(value, &join(&cpath, "path")),
                    "op" => cond.op = self.string(value, &join(&cpath, "op")),
                    "value" => cond.value = Some(value.clone()),
                    _ => unreachable!("mapping() only yields known keys"),
                }
            }
            out.push(cond);
        }
        out
    }

    fn rate_limit(&mut self, node: &Node, path: &str) -> Option<RawRateLimit> {
        match &node.kind {
            Kind::Map(_) => {
                let entries = self.mapping(node, path, ROLLING_KEYS)?;
                let mut max = None;
                let mut window = None;
                for (key, value) in entries {
                    match key {
                        "max" => max = self.integer(value, &join(path, "max")),
                        "window" => window = self.integer(value, &join(path, "window")),
                        _ => unreachable!("mapping() only yields known keys"),
                    }
                }
                match (max, window) {
                    (Some(max), Some(window)) => Some(RawRateLimit::Rolling {
                        pos: node.pos,
                        max,
                        window,
                    }),
                    (max, window) => {
                        if max.is_none() && !self.has_key(node, "max") {
                            self.error(node.pos, path, "rate_limit needs \"max\" (calls allowed)");
                        }
                        if window.is_none() && !self.has_key(node, "window") {
                            self.error(node.pos, path, "rate_limit needs \"window\" (seconds)");
                        }
                        None
                    }
                }
            }
            _ => self.string(node, path).map(RawRateLimit::Shorthand),
        }
    }

    fn state(&mut self, node: &Node, path: &str) -> Option<RawState> {
        let entries = self.mapping(node, path, STATE_KEYS)?;
        let mut state = RawState {
            pos: node.pos,
            counter: None,
            window: None,
            increment: None,
            increment_from: None,
        };
        for (key, value) in entries {
            let field = join(path, key);
            match key {
                "counter" => state.counter = self.string(value, &field),
                "window" => state.window = self.string(value, &field),
                "increment" => state.increment = self.integer(value, &field),
                "increment_from" => state.increment_from = self.string(value, &field),
                _ => unreachable!("mapping() only yields known keys"),
            }
        }
        Some(state)
    }

    fn identities(&mut self, node: &Node) -> Vec<RawIdentity> {
        let Some(entries) = self.mapping(node, "identities", &[]) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, value) in entries {
            let path = join("identities", name);
            let mut identity = RawIdentity {
                name: Spanned {
                    value: name.to_string(),
                    pos: value.pos,
                },
                token_env: None,
                token_sha256: None,
            };
            if !matches!(value.kind, Kind::Null)
                && let Some(fields) = self.mapping(value, &path, IDENTITY_KEYS)
            {
                for (key, v) in fields {
                    let field = join(&path, key);
                    match key {
                        "token_env" => identity.token_env = self.string(v, &field),
                        "token_sha256" => identity.token_sha256 = self.string(v, &field),
                        "description" => {
                            self.string(v, &field);
                        }
                        _ => unreachable!("mapping() only yields known keys"),
                    }
                }
            }
            out.push(identity);
        }
        out
    }

    fn grants(&mut self, node: &Node) -> Vec<RawGrant> {
        let Some(entries) = self.mapping(node, "grants", &[]) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, value) in entries {
            let path = join("grants", name);
            let mut grant = RawGrant {
                identity: Spanned {
                    value: name.to_string(),
                    pos: value.pos,
                },
                tools: None,
                hide: Vec::new(),
            };
            if let Some(fields) = self.mapping(value, &path, GRANT_KEYS) {
                for (key, v) in fields {
                    let field = join(&path, key);
                    match key {
                        // `tools: "*"` is shorthand for every tool.
                        "tools" if v.is_scalar() => {
                            grant.tools = self.string(v, &field).map(|s| vec![s])
                        }
                        "tools" => grant.tools = Some(self.string_list(v, &field)),
                        "hide" => grant.hide = self.string_list(v, &field),
                        _ => unreachable!("mapping() only yields known keys"),
                    }
                }
            }
            out.push(grant);
        }
        out
    }

    // ---- primitive shapes ----

    /// A mapping whose keys must be among `known` (any key if `known` is empty).
    /// Unknown and duplicate keys are reported; the remaining entries are returned.
    pub(crate) fn mapping<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        known: &[&str],
    ) -> Option<Vec<(&'n str, &'n Node)>> {
        let Kind::Map(pairs) = &node.kind else {
            let what = if path.is_empty() {
                "the policy"
            } else {
                "value"
            };
            self.error(
                node.pos,
                path,
                format!("{what} must be a mapping, got {}", node.type_name()),
            );
            return None;
        };
        let mut out: Vec<(&str, &Node)> = Vec::with_capacity(pairs.len());
        // Where each key was first set; a map, as `tools` may have many thousands of keys.
        let mut first_set: HashMap<&str, usize> = HashMap::with_capacity(pairs.len());
        for (key, value) in pairs {
            if !key.is_scalar() {
                self.error(key.pos, path, "mapping keys must be plain names");
                continue;
            }
            let name = key.text.as_str();
            if let Some(&line) = first_set.get(name) {
                self.error(
                    key.pos,
                    &join(path, name),
                    format!("duplicate key \"{name}\" (first set on line {line})"),
                );
                continue;
            }
            if !known.is_empty() && !known.contains(&name) {
                let hint = match suggest(name, known) {
                    Some(s) => format!(" (did you mean \"{s}\"?)"),
                    None => format!(" (expected one of: {})", known.join(", ")),
                };
                self.error(key.pos, path, format!("unknown field \"{name}\"{hint}"));
                continue;
            }
            first_set.insert(name, value.pos.line);
            out.push((name, value));
        }
        Some(out)
    }

    fn has_key(&self, node: &Node, name: &str) -> bool {
        matches!(&node.kind, Kind::Map(pairs) if pairs.iter().any(|(k, _)| k.text == name))
    }

    pub(crate) fn sequence<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.kind {
            Kind::Seq(items) => Some(items),
            _ => {
                self.error(
                    node.pos,
                    path,
                    format!("value must be a list, got {}", node.type_name()),
                );
                None
            }
        }
    }

    /// A scalar read as text, as YAML decoders do for string fields (`version: 1` is "1").
    /// `null` (an empty value) counts as not set.
    pub(crate) fn string(&mut self, node: &Node, path: &str) -> Option<Spanned<String>> {
        match &node.kind {
            Kind::Null => None,
            Kind::Seq(_) | Kind::Map(_) => {
                self.error(
                    node.pos,
                    path,
                    format!("value must be a string, got {}", node.type_name()),
                );
                None
            }
            _ => Some(Spanned {
                value: node.text.clone(),
                pos: node.pos,
            }),
        }
    }

    pub(crate) fn integer(&mut self, node: &Node, path: &str) -> Option<Spanned<i64>> {
        match node.kind {
            Kind::Int(i) => Some(Spanned {
                value: i,
                pos: node.pos,
            }),
            _ => {
                self.error(
                    node.pos,
                    path,
                    format!("value must be a whole number, got {}", describe(node)),
                );
                None
            }
        }
    }

    pub(crate) fn string_list(&mut self, node: &Node, path: &str) -> Vec<Spanned<String>> {
        if matches!(node.kind, Kind::Null) {
            return Vec::new();
        }
        let Some(items) = self.sequence(node, path) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{i}]");
            if matches!(item.kind, Kind::Null) {
                out.push(Spanned {
                    value: String::new(),
                    pos: item.pos,
                });
            } else if let Some(s) = self.string(item, &ipath) {
                out.push(s);
            }
        }
        out
    }
}

/// `"10"` for scalars, the type name for collections.
pub fn describe(node: &Node) -> String {
    match node.kind {
        Kind::Seq(_) | Kind::Map(_) | Kind::Null => node.type_name().to_string(),
        _ => format!("\"{}\"", node.text),
    }
}

/// The known name closest to a misspelt one, if it is close enough to be a likely typo.
pub fn suggest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let normalized = name.to_ascii_lowercase().replace('-', "_");
    known
        .iter()
        .map(|k| (*k, strsim::damerau_levenshtein(&normalized, k)))
        .filter(|(k, d)| *d <= 2.max(k.len() / 3) && strsim::jaro_winkler(&normalized, k) >= 0.8)
        .min_by_key(|(_, d)| *d)
        .map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_common_typos() {
        assert_eq!(suggest("hidden", TOP_KEYS), Some("hide"));
        assert_eq!(suggest("on-deny", RULE_KEYS), Some("on_deny"));
        assert_eq!(suggest("rate-limit", RULE_KEYS), Some("rate_limit"));
        assert_eq!(suggest("Conditions", RULE_KEYS), Some("conditions"));
        assert_eq!(suggest("zzzzzzzz", RULE_KEYS), None);
    }
}
