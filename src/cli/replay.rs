//! `intercept replay -c candidate.yaml EVENTS...`: what a candidate policy would have
//! decided for calls that were recorded in audit logs.
//!
//! Recorded `tool_call` events (from every file, merged in time order) are evaluated again
//! against the candidate at their original time, with a fresh in-memory counter store, so
//! windows and rate limits behave as they would have. Allowed calls keep their counts; a
//! call whose recorded `tool_result` was a JSON-RPC error (or a server that went away)
//! gives its count back, as the proxy does. Only events recorded with `--log-args` carry
//! the arguments needed; the others are skipped and counted.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};

use super::policy_arg::PolicyArg;
use crate::audit::time::parse_rfc3339;
use crate::engine::{self, Call, Decision, Engine};
use crate::policy;
use crate::redact::REDACTED;
use crate::state::{MemoryStore, Millis, Reservation};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    policy: PolicyArg,
    /// Audit logs (JSONL) to replay, recorded with --log-args.
    #[arg(value_name = "EVENTS", required = true)]
    events: Vec<PathBuf>,
    /// Print the summary and the changed calls as one JSON object.
    #[arg(long)]
    json: bool,
}

/// One recorded event, with where it came from.
struct Recorded {
    at: Millis,
    file: usize,
    line: usize,
    event: Value,
}

#[derive(Debug, Default)]
struct Summary {
    replayed: u64,
    skipped: u64,
    unreadable: u64,
    unchanged: u64,
    allow_to_deny: u64,
    deny_to_allow: u64,
    other_changes: u64,
    redacted: u64,
    changes: Vec<Value>,
}

pub fn run(a: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let candidate_path = a.policy.required()?;
    let candidate = match policy::load_file(&candidate_path) {
        Ok(p) => p,
        Err(e) => {
            writeln!(err, "Error: {e}")?;
            return Ok(super::EXIT_USAGE);
        }
    };
    let mut summary = Summary::default();
    let mut recorded = Vec::new();
    for (file, path) in a.events.iter().enumerate() {
        let reader = std::fs::File::open(path)
            .map(BufReader::new)
            .with_context(|| format!("cannot open {}", path.display()))?;
        for (i, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            // A line cut short (a process killed mid-write) is counted, not fatal.
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                summary.unreadable += 1;
                continue;
            };
            if !matches!(
                event.get("type").and_then(Value::as_str),
                Some("tool_call" | "tool_result")
            ) {
                continue;
            }
            let at = event
                .get("ts")
                .or_else(|| event.get("time"))
                .and_then(Value::as_str)
                .and_then(parse_rfc3339);
            match at {
                Some(at) => recorded.push(Recorded {
                    at,
                    file,
                    line: i + 1,
                    event,
                }),
                None => summary.unreadable += 1,
            }
        }
    }
    // Files from several instances interleave by time; within one file, order is kept.
    recorded.sort_by_key(|r| (r.at, r.file, r.line));

    let engine = Engine::new(Arc::new(candidate), Arc::new(MemoryStore::new()));
    replay(&engine, &recorded, &a.events, &mut summary);

    if a.json {
        let report = json!({
            "candidate": candidate_path.display().to_string(),
            "replayed": summary.replayed,
            "skipped": summary.skipped,
            "unreadable": summary.unreadable,
            "unchanged": summary.unchanged,
            "allow_to_deny": summary.allow_to_deny,
            "deny_to_allow": summary.deny_to_allow,
            "other_changes": summary.other_changes,
            "args_redacted": summary.redacted,
            "changes": summary.changes,
        });
        writeln!(out, "{report}")?;
    } else {
        print_text(out, &candidate_path, &summary)?;
    }
    Ok(0)
}

/// Calls that went through, by instance, session and tool, in order, awaiting their
/// `tool_result`; each holds what the candidate reserved for it.
type Awaiting = HashMap<(String, String, String), VecDeque<Option<Reservation>>>;

fn replay(engine: &Engine, recorded: &[Recorded], files: &[PathBuf], s: &mut Summary) {
    let mut awaiting: Awaiting = HashMap::new();
    let text = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
    for r in recorded {
        let e = &r.event;
        let key = (
            text(e, "instance").unwrap_or_default(),
            text(e, "session").unwrap_or_default(),
            text(e, "tool").unwrap_or_default(),
        );
        if e["type"] == "tool_result" {
            let settled = awaiting.get_mut(&key).and_then(VecDeque::pop_front);
            if let Some(Some(reservation)) = settled
                && gave_back(e)
            {
                let _ = engine.rollback(&reservation);
            }
            continue;
        }
        let (Some(tool), Some(before)) = (text(e, "tool"), text(e, "decision")) else {
            s.unreadable += 1;
            continue;
        };
        let went_through = passes(&before);
        let args = match e.get("args") {
            Some(v @ Value::Object(_)) => v,
            _ => {
                s.skipped += 1;
                if went_through {
                    awaiting.entry(key).or_default().push_back(None);
                }
                continue;
            }
        };
        s.replayed += 1;
        let (identity, session, client) =
            (text(e, "identity"), text(e, "session"), text(e, "client"));
        let after = engine.evaluate_at(
            &Call {
                tool: &tool,
                args: Some(engine::Args::Value(args)),
                identity: identity.as_deref(),
                session: session.as_deref(),
                client_name: client.as_deref(),
            },
            r.at,
        );
        let redacted = mentions_redacted(args);
        if redacted {
            s.redacted += 1;
        }
        if went_through {
            // Settled when its recorded result comes; a denied call never had one, and
            // what the candidate reserved for it stays counted.
            awaiting
                .entry(key)
                .or_default()
                .push_back(after.reservation.clone());
        }
        let now = after.verdict.as_str();
        if now == before {
            s.unchanged += 1;
            continue;
        }
        match (went_through, after.is_allowed()) {
            (true, false) => s.allow_to_deny += 1,
            (false, true) => s.deny_to_allow += 1,
            _ => s.other_changes += 1,
        }
        s.changes
            .push(change_json(r, files, e, &tool, &before, &after, redacted));
    }
}

/// Whether the proxy gave a call's counts back when its result came: the event says so
/// (`reservation: rolled_back`), or its outcome implies it.
fn gave_back(result: &Value) -> bool {
    match result.get("reservation").and_then(Value::as_str) {
        Some(r) => r == "rolled_back",
        None => matches!(
            result.get("outcome").and_then(Value::as_str),
            Some("error" | "not_sent" | "refused")
        ),
    }
}

/// Whether a recorded decision let the call through.
fn passes(decision: &str) -> bool {
    matches!(decision, "allow" | "shadow_deny")
}

fn change_json(
    r: &Recorded,
    files: &[PathBuf],
    e: &Value,
    tool: &str,
    before: &str,
    after: &Decision,
    redacted: bool,
) -> Value {
    let mut now = json!({ "decision": after.verdict.as_str(), "reason": after.reason.as_str() });
    if let Some(rule) = &after.rule {
        now["rule"] = json!(&**rule);
    }
    if let Some(m) = &after.message {
        now["message"] = json!(&**m);
    }
    let mut was = json!({ "decision": before });
    if let Some(rule) = e.get("rule").filter(|v| v.is_string()) {
        was["rule"] = rule.clone();
    }
    json!({
        "ts": e.get("ts").or_else(|| e.get("time")),
        "file": files[r.file].display().to_string(),
        "line": r.line,
        "session": e.get("session"),
        "identity": e.get("identity"),
        "tool": tool,
        "before": was,
        "after": now,
        "args_redacted": redacted,
    })
}

/// Whether the arguments hold a redacted value (whole, or a part such as a URL's password):
/// a condition on it saw `[REDACTED]`, not what the agent sent, so that call's replayed
/// decision may differ from reality.
fn mentions_redacted(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(REDACTED),
        Value::Array(items) => items.iter().any(mentions_redacted),
        Value::Object(map) => map.values().any(mentions_redacted),
        _ => false,
    }
}

fn print_text(out: &mut dyn Write, candidate: &Path, s: &Summary) -> std::io::Result<()> {
    writeln!(
        out,
        "Replayed {} call(s) against {}",
        s.replayed,
        candidate.display()
    )?;
    if s.skipped > 0 {
        writeln!(
            out,
            "Skipped {} call(s) recorded without arguments (record with --log-args)",
            s.skipped
        )?;
    }
    if s.unreadable > 0 {
        writeln!(out, "Ignored {} unreadable line(s)", s.unreadable)?;
    }
    writeln!(out, "  allow → deny    {}", s.allow_to_deny)?;
    writeln!(out, "  deny → allow    {}", s.deny_to_allow)?;
    if s.other_changes > 0 {
        writeln!(out, "  other changes   {}", s.other_changes)?;
    }
    writeln!(out, "  unchanged       {}", s.unchanged)?;
    if s.redacted > 0 {
        writeln!(
            out,
            "{} replayed call(s) had redacted argument values; conditions on them saw \"{REDACTED}\"",
            s.redacted
        )?;
    }
    if s.changes.is_empty() {
        return Ok(());
    }
    let rows: Vec<[String; 5]> = s
        .changes
        .iter()
        .map(|c| {
            let field = |v: &Value| v.as_str().unwrap_or("").to_string();
            // The rule behind the change: for a call now allowed, the one that denied it
            // (an allowed call may name the rule that allowed it, which explains less).
            let (first, second) = if c["after"]["decision"] == "allow" {
                ("before", "after")
            } else {
                ("after", "before")
            };
            let rule = c[first]
                .get("rule")
                .or_else(|| c[second].get("rule"))
                .map(field)
                .unwrap_or_default();
            let mut note = field(&c["after"]["message"]);
            if c["args_redacted"] == true {
                note = format!("(arguments redacted) {note}");
            }
            [
                field(&c["ts"]),
                field(&c["tool"]),
                format!(
                    "{} → {}",
                    field(&c["before"]["decision"]),
                    field(&c["after"]["decision"])
                ),
                rule,
                note,
            ]
        })
        .collect();
    let header = ["TIME", "TOOL", "CHANGE", "RULE", "MESSAGE"];
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    writeln!(out)?;
    for row in std::iter::once(header.map(str::to_string)).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_values_are_found_at_any_depth() {
        assert!(mentions_redacted(&json!({"a": [{"token": "[REDACTED]"}]})));
        assert!(mentions_redacted(
            &json!({"url": "https://u:[REDACTED]@h/"})
        ));
        assert!(!mentions_redacted(&json!({"a": "REDACTED"})));
    }
}
