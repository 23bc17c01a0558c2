//! `intercept validate`: every error of every file, as `file:line:col: message`.

mod gateway;

use std::io::Write;
use std::path::PathBuf;

use serde_json::json;

use crate::policy::{self, LoadError, PolicyError};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    policy: super::policy_arg::PolicyArg<true>,
    /// More policy files to check.
    #[arg(value_name = "FILES")]
    files: Vec<PathBuf>,
    /// Check a gateway file (`intercept serve FILE`) and every policy it names instead, and
    /// list its servers.
    #[arg(long, value_name = "FILE", conflicts_with_all = [super::policy_arg::ID, "files"])]
    gateway: Option<PathBuf>,
    /// Print the result as JSON: `{"valid": bool, "files": [{"file", "valid", "errors": [...]}]}`
    /// (with --gateway: `{"valid", "file", "errors", "servers"}`).
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    if let Some(file) = &args.gateway {
        return gateway::run(file, args.json, out, err);
    }
    let files = args.policy.files(&args.files)?;
    let mut total = 0usize;
    let mut reports = Vec::new();
    for file in &files {
        let name = file.display().to_string();
        let errors = match policy::limits::read_text(file) {
            Ok(text) => policy::validate(&text),
            Err(LoadError::Invalid { errors, .. }) => errors,
            Err(LoadError::Read { cause, .. }) => vec![PolicyError {
                message: format!("reading config file: {cause}"),
                path: String::new(),
                line: 0,
                column: 0,
            }],
        };
        total += errors.len();
        if args.json {
            reports.push(json!({
                "file": name,
                "valid": errors.is_empty(),
                "errors": errors.iter().map(|e| json!({
                    "message": e.message, "path": e.path, "line": e.line, "column": e.column,
                })).collect::<Vec<_>>(),
            }));
            continue;
        }
        for e in &errors {
            if e.line == 0 {
                writeln!(out, "{name}: {}", e.message)?;
            } else {
                writeln!(out, "{name}:{}:{}: {}", e.line, e.column, e.message)?;
            }
        }
        if errors.is_empty() {
            if files.len() == 1 {
                writeln!(out, "Policy file is valid.")?;
            } else {
                writeln!(out, "{name}: Policy file is valid.")?;
            }
        }
    }
    if args.json {
        let doc = json!({ "valid": total == 0, "files": reports });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else if total > 0 {
        writeln!(err, "policy validation failed with {total} error(s)")?;
    }
    Ok(if total == 0 { 0 } else { 1 })
}
