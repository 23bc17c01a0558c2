//! Conditions: paths, operators and their values, and the limits counters take from them.

use regex::Regex;
use serde_json::{Number, Value};

use super::super::decode::{RawCondition, Spanned, suggest};
use super::super::model::*;
use super::super::yaml::{Kind, Node, Pos};
use super::Compiler;

pub(in crate::policy) const OPERATORS: &[&str] = &[
    "eq", "neq", "in", "not_in", "lt", "lte", "gt", "gte", "regex", "contains", "exists",
];

impl Compiler<'_> {
    pub(super) fn condition(
        &mut self,
        cond: &RawCondition,
        path: &str,
    ) -> Option<(ParsedPath, Op)> {
        let Some(p) = &cond.path else {
            self.d.error(cond.pos, path, "condition must have a path");
            return None;
        };
        let Some(op_name) = &cond.op else {
            self.d.error(cond.pos, path, "condition must have an op");
            return None;
        };
        let parsed = self.path(p, path);
        let op = self.op(op_name, cond.value.as_ref(), cond.pos, path);
        Some((parsed?, op?))
    }

    fn path(&mut self, p: &Spanned<String>, cond_path: &str) -> Option<ParsedPath> {
        let text = p.value.as_str();
        let bad_segment = |rest: &str| rest.is_empty() || rest.split('.').any(str::is_empty);
        if let Some(rest) = text.strip_prefix("args.") {
            if bad_segment(rest) {
                self.d.error(
                    p.pos,
                    cond_path,
                    format!("path \"{text}\" has an empty segment"),
                );
                return None;
            }
            return Some(ParsedPath::Other(PathExpr::Args(arg_path(text))));
        }
        if let Some(rest) = text.strip_prefix("state.") {
            if bad_segment(rest) || !rest.contains('.') {
                self.d.error(
                    p.pos,
                    cond_path,
                    format!("state paths must be \"state.<tool>.<counter>\", got \"{text}\""),
                );
                return None;
            }
            return Some(ParsedPath::State(p.clone()));
        }
        match text {
            "identity" => Some(ParsedPath::Other(PathExpr::Identity)),
            "client.name" => Some(ParsedPath::Other(PathExpr::ClientName)),
            _ => {
                self.d.error(
                    p.pos,
                    cond_path,
                    format!(
                        "path must start with \"args.\" or \"state.\" (or be \"identity\" or \"client.name\"), got \"{text}\""
                    ),
                );
                None
            }
        }
    }

    fn op(
        &mut self,
        op: &Spanned<String>,
        value: Option<&Node>,
        pos: Pos,
        path: &str,
    ) -> Option<Op> {
        let name = op.value.as_str();
        let null = Node {
            kind: Kind::Null,
            pos,
            text: String::new(),
        };
        let node = value.unwrap_or(&null);
        let numeric = |c: &mut Self| -> Option<Number> {
            match literal(node) {
                Some(Value::Number(n)) => Some(n),
                _ => {
                    c.d.error(
                        node.pos,
                        path,
                        format!("operator \"{name}\" requires a numeric value"),
                    );
                    None
                }
            }
        };
        let any_literal = |c: &mut Self| -> Option<Literal> {
            if value.is_none() {
                c.d.error(pos, path, format!("operator \"{name}\" requires a value"));
                return None;
            }
            match literal(node) {
                Some(v) => Some(Literal::new(v)),
                None => {
                    c.d.error(node.pos, path, "numeric values must be finite");
                    None
                }
            }
        };
        let list = |c: &mut Self| -> Option<Vec<Literal>> {
            match (&node.kind, literal(node)) {
                (Kind::Seq(_), Some(Value::Array(items))) => {
                    Some(items.into_iter().map(Literal::new).collect())
                }
                _ => {
                    c.d.error(
                        node.pos,
                        path,
                        format!("operator \"{name}\" requires a list value"),
                    );
                    None
                }
            }
        };
        match name {
            "eq" => any_literal(self).map(Op::Eq),
            "neq" => any_literal(self).map(Op::Neq),
            "in" => list(self).map(Op::In),
            "not_in" => list(self).map(Op::NotIn),
            "lt" => numeric(self).map(Op::Lt),
            "lte" => numeric(self).map(Op::Lte),
            "gt" => numeric(self).map(Op::Gt),
            "gte" => numeric(self).map(Op::Gte),
            "contains" => any_literal(self).map(Op::Contains),
            "exists" => match node.kind {
                Kind::Bool(b) => Some(Op::Exists(b)),
                _ => {
                    self.d.error(
                        node.pos,
                        path,
                        "operator \"exists\" requires a boolean value",
                    );
                    None
                }
            },
            "regex" => {
                let Kind::Str(pattern) = &node.kind else {
                    self.d.error(node.pos, path, "regex value must be a string");
                    return None;
                };
                match Regex::new(pattern) {
                    Ok(re) => Some(Op::Regex(re)),
                    Err(e) => {
                        let detail = e.to_string();
                        let last = detail.lines().last().unwrap_or("").trim().to_string();
                        self.d.error(
                            node.pos,
                            path,
                            format!("invalid regex \"{pattern}\": {last}"),
                        );
                        None
                    }
                }
            }
            other => {
                let hint = suggest(other, OPERATORS)
                    .map(|s| format!(" (did you mean \"{s}\"?)"))
                    .unwrap_or_default();
                self.d
                    .error(op.pos, path, format!("unknown operator \"{other}\"{hint}"));
                None
            }
        }
    }

    /// Whether a `state.` path names counter `ci` of the rule being compiled.
    pub(super) fn is_own_counter(&self, text: &str, ci: usize) -> bool {
        let c = &self.counters[ci];
        text == format!("state.{}.{}", c.owner, c.name)
    }

    /// The limit a `lt`/`lte` condition sets on the rule's own counter.
    pub(super) fn limit_from(
        &mut self,
        op: &Op,
        value: &Option<Node>,
        path: &str,
        ci: usize,
    ) -> Option<u64> {
        let (n, strict) = match op {
            Op::Lt(n) => (n, true),
            Op::Lte(n) => (n, false),
            _ => return None,
        };
        let pos = value.as_ref().map_or(Pos::default(), |v| v.pos);
        let f = n.as_f64().unwrap_or(f64::NAN);
        let name = self.counters[ci].name.clone();
        if f < 0.0 {
            self.d.error(
                pos,
                path,
                format!("the limit of counter \"{name}\" must not be negative, got {n}"),
            );
            return Some(0);
        }
        if strict {
            if n.as_u64().is_none() {
                self.d.error(
                    pos,
                    path,
                    format!(
                        "operator \"lt\" on counter \"{name}\" needs a whole-number limit, got {n} (did you mean lte {}?)",
                        f.floor()
                    ),
                );
                return Some(0);
            }
            return Some(n.as_u64().unwrap_or(0).saturating_sub(1));
        }
        // Counts are whole numbers, so `lte 2.5` allows exactly what `lte 2` does.
        Some(n.as_u64().unwrap_or(f.floor() as u64))
    }
}

pub(super) enum ParsedPath {
    State(Spanned<String>),
    Other(PathExpr),
}

pub(super) fn arg_path(text: &str) -> ArgPath {
    let rest = text.strip_prefix("args.").unwrap_or(text);
    ArgPath {
        text: text.to_string(),
        segments: rest
            .split('.')
            .map(|s| Segment {
                key: s.to_string(),
                index: if s.bytes().all(|b| b.is_ascii_digit()) {
                    s.parse().ok()
                } else {
                    None
                },
            })
            .collect(),
    }
}

/// Converts a YAML node to JSON; `None` for non-finite numbers, which JSON cannot hold.
fn literal(node: &Node) -> Option<Value> {
    Some(match &node.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Int(i) => Value::Number((*i).into()),
        Kind::Float(f) => Value::Number(Number::from_f64(*f)?),
        Kind::Str(s) => Value::String(s.clone()),
        Kind::Seq(items) => Value::Array(items.iter().map(literal).collect::<Option<_>>()?),
        Kind::Map(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| Some((k.text.clone(), literal(v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}
