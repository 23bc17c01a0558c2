//! `intercept validate --gateway FILE`: every error of the gateway file and of every policy
//! it names, or, when there is none, a summary of its servers.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::gateway::config::{ConfigError, GatewayConfig, PolicyOrigin, Server, Source};

pub fn run(
    file: &Path,
    as_json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let loaded = GatewayConfig::load(file);
    let errors = match &loaded {
        Ok(_) => Vec::new(),
        Err(e) => e.errors(),
    };
    if as_json {
        let servers: Vec<Value> = match &loaded {
            Ok(config) => config
                .servers
                .iter()
                .map(|(name, server)| server_json(name, server))
                .collect(),
            Err(_) => Vec::new(),
        };
        let doc = json!({
            "valid": errors.is_empty(),
            "file": file.display().to_string(),
            "errors": errors.iter().map(error_json).collect::<Vec<_>>(),
            "servers": servers,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(if errors.is_empty() { 0 } else { 1 });
    }
    let config = match loaded {
        Ok(config) => config,
        Err(_) => {
            for e in &errors {
                writeln!(out, "{e}")?;
            }
            writeln!(
                err,
                "gateway file validation failed with {} error(s)",
                errors.len()
            )?;
            return Ok(1);
        }
    };
    let rows: Vec<[String; 4]> = config
        .servers
        .iter()
        .map(|(name, server)| {
            [
                name.clone(),
                source_text(&server.source),
                policy_text(server),
                server.policy.policy.rules.len().to_string(),
            ]
        })
        .collect();
    let header = [
        "SERVER".to_string(),
        "SOURCE".to_string(),
        "POLICY".to_string(),
        "TOOL RULES".to_string(),
    ];
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    let n = config.servers.len();
    writeln!(
        out,
        "Gateway file is valid: {n} server{}.",
        if n == 1 { "" } else { "s" }
    )?;
    Ok(0)
}

fn source_text(source: &Source) -> String {
    match source {
        Source::Command(_) => format!("command: {source}"),
        Source::Url(_) => format!("url: {source}"),
    }
}

fn policy_text(server: &Server) -> String {
    match &server.policy.origin {
        PolicyOrigin::File(path) => path.display().to_string(),
        PolicyOrigin::Inline => "inline".to_string(),
    }
}

fn server_json(name: &str, server: &Server) -> Value {
    let source = match &server.source {
        Source::Command(c) => json!({
            "kind": "command",
            "command": server.source.to_string(),
            "env": c.env.keys().collect::<Vec<_>>(),
        }),
        Source::Url(u) => json!({
            "kind": "url",
            "url": server.source.to_string(),
            "headers": u.headers.iter().map(|(name, _)| name).collect::<Vec<_>>(),
        }),
    };
    let policy = match &server.policy.origin {
        PolicyOrigin::File(path) => json!({ "file": path.display().to_string() }),
        PolicyOrigin::Inline => json!({ "inline": true }),
    };
    json!({
        "name": name,
        "source": source,
        "policy": policy,
        "policy_sha256": server.policy.sha256,
        "tool_rules": server.policy.policy.rules.len(),
    })
}

fn error_json(e: &ConfigError) -> Value {
    json!({
        "file": e.file.display().to_string(),
        "message": e.message,
        "path": e.path,
        "line": e.line,
        "column": e.column,
    })
}
