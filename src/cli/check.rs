//! `intercept check`: a dry run of tool calls against a policy. Nothing is consumed:
//! every reservation made is rolled back before the command exits.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};

use super::policy_arg::PolicyArg;
use crate::engine::{self, Call, Decision, Engine};
use crate::policy::{self, CompiledPolicy};
use crate::state;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    policy: PolicyArg,
    /// Tool name.
    #[arg(long, value_name = "NAME")]
    tool: String,
    /// Tool arguments as a JSON object.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    args: String,
    /// Caller identity, for grants and identity-scoped counters.
    #[arg(long, env = "INTERCEPT_IDENTITY", value_name = "NAME")]
    identity: Option<String>,
    /// Session id, for session-scoped counters.
    #[arg(long, value_name = "ID", default_value = "check")]
    session: String,
    /// Client name, for `client.name` conditions.
    #[arg(long, value_name = "NAME")]
    client_name: Option<String>,
    /// Counter store: `memory` (fresh counters), or `sqlite:PATH` or a Redis DSN
    /// (`redis://…`) to read the real ones.
    #[arg(long, value_name = "STORE", default_value = "memory")]
    state: String,
    /// With a Redis store: the deployment's key prefix.
    #[arg(long, env = "INTERCEPT_STATE_PREFIX", value_name = "PREFIX", default_value = state::redis::DEFAULT_PREFIX)]
    state_prefix: String,
    /// Evaluate the same call N times in a row, to see where a limit trips.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    repeat: u32,
    /// Print decisions as JSON (one object per line).
    #[arg(long)]
    json: bool,
}

pub fn run(a: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let policy = match policy::load_file(&a.policy.required()?) {
        Ok(p) => p,
        Err(e) => {
            writeln!(err, "Error: {e}")?;
            return Ok(super::EXIT_USAGE);
        }
    };
    let args: Value = serde_json::from_str(&a.args).context("--args is not valid JSON")?;
    if let Some(note) = unlisted_tool_note(&policy, &a.tool) {
        // stderr: stdout keeps one decision per line for scripts.
        writeln!(err, "{note}")?;
    }
    let redis = state::RedisOptions {
        prefix: a.state_prefix.clone(),
        ..Default::default()
    };
    let store = state::open_with(&a.state, &redis)?;
    let engine = Engine::new(Arc::new(policy), Arc::from(store));
    let call = Call {
        tool: &a.tool,
        args: Some(engine::Args::Value(&args)),
        identity: a.identity.as_deref(),
        session: Some(&a.session),
        client_name: a.client_name.as_deref(),
    };
    let mut reservations = Vec::new();
    let mut last_allowed = true;
    for i in 1..=a.repeat {
        let d = engine.evaluate(&call);
        last_allowed = d.is_allowed();
        print_decision(out, &d, (a.repeat > 1).then_some(i), a.json)?;
        if let Some(r) = d.reservation {
            reservations.push(r);
        }
    }
    for r in reservations.iter().rev() {
        engine.rollback(r)?;
    }
    Ok(if last_allowed { 0 } else { 1 })
}

/// When `tool` is not a key of `tools` (exactly or through a glob), says so, with the key it
/// was probably meant to be: a misspelt name is decided by `"*"` and the default alone,
/// which is easy to mistake for the tool's own rules.
fn unlisted_tool_note(policy: &CompiledPolicy, tool: &str) -> Option<String> {
    if policy.is_listed(tool) || policy.hide.contains(tool) {
        return None;
    }
    let mut known: Vec<&str> = policy.plans.keys().map(String::as_str).collect();
    known.sort_unstable();
    let hint = policy::suggest(tool, &known)
        .map(|k| format!(" (did you mean \"{k}\"?)"))
        .unwrap_or_default();
    let default = if policy.default_deny { "deny" } else { "allow" };
    let decided_by = if policy.wildcard_rules.is_empty() {
        format!("the default ({default})")
    } else {
        format!("the rules of \"*\" and the default ({default})")
    };
    Some(format!(
        "note: no tools key of the policy names \"{tool}\"{hint}; it is decided by {decided_by} alone"
    ))
}

/// The decision as the JSON the Node API also returns.
pub fn decision_json(d: &Decision) -> Value {
    let mut v = json!({ "decision": d.verdict.as_str(), "reason": d.reason.as_str() });
    if let Some(rule) = &d.rule {
        v["rule"] = json!(&**rule);
    }
    if let Some(m) = &d.message {
        v["message"] = json!(&**m);
    }
    if let Some(s) = d.retry_after_seconds {
        v["retryAfterSeconds"] = json!(s);
    }
    if let Some(t) = d.approval_timeout {
        v["approvalTimeoutSeconds"] = json!(t.as_secs());
    }
    v
}

fn print_decision(
    out: &mut dyn Write,
    d: &Decision,
    index: Option<u32>,
    json: bool,
) -> std::io::Result<()> {
    if json {
        let mut v = decision_json(d);
        if let Some(i) = index {
            v["call"] = json!(i);
        }
        return writeln!(out, "{v}");
    }
    let prefix = index.map(|i| format!("#{i}: ")).unwrap_or_default();
    let mut line = format!("{prefix}{}", d.verdict.as_str());
    if let Some(rule) = &d.rule {
        line.push_str(&format!(" (rule {rule})"));
    }
    if let Some(m) = &d.message {
        line.push_str(&format!(": {m}"));
    }
    if let Some(s) = d.retry_after_seconds {
        line.push_str(&format!(" [retry after {s}s]"));
    }
    writeln!(out, "{line}")
}
