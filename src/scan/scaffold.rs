//! Writes what a scan found: a policy in the catalog format (YAML with a comment on every
//! tool) or the classified tool list (JSON).
//!
//! The policy keeps every tool usable but bounded: Read tools have no rules, Write tools
//! are limited to 30 calls a minute, Execute, Financial and Destructive tools to fewer,
//! each with a stricter alternative commented out beneath. `strict` writes an allowlist
//! (`default: deny`) with destructive tools denied.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::words::first_sentence;
use super::{Category, Classified, Discovery};

/// Where the scan's subject came from, for the header.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// The command as a user would type it (or the URL).
    pub command: String,
    /// `npm @scope/name@1.2.3`, when the server is a published package.
    pub package: Option<String>,
    /// RFC 3339 UTC.
    pub scanned_at: String,
    pub strict: bool,
}

/// The rate limit for a category: (max calls, window in seconds).
fn limit(category: Category) -> Option<(u32, u32)> {
    match category {
        Category::Read => None,
        Category::Write => Some((30, 60)),
        Category::Execute => Some((10, 60)),
        Category::Financial | Category::Destructive => Some((5, 60)),
    }
}

/// The policy, as YAML text that validates as written.
pub fn policy_yaml(discovery: &Discovery, tools: &[Classified], meta: &Meta) -> String {
    let mut out = String::new();
    let server = server_label(discovery);
    let counts = counts(tools);
    let highest = tools.iter().map(|t| t.class.risk).max().unwrap_or(0);
    let _ = writeln!(out, "# Policy for {server}, written by intercept scan.");
    let _ = writeln!(
        out,
        "# Server: {server} (protocol {}, {})",
        discovery.protocol_version, discovery.transport
    );
    if let Some(p) = &meta.package {
        let _ = writeln!(out, "# Package: {p}");
    }
    // Policies get committed and shared: the command keeps no secret.
    let command = crate::redact::redact_text(&meta.command);
    let _ = writeln!(out, "# Command: {}", one_line(&command));
    let _ = writeln!(
        out,
        "# Tools: {} ({}); highest risk {highest}/5",
        tools.len(),
        Category::ALL
            .iter()
            .zip(counts)
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "# Scanned: {} with intercept {}",
        meta.scanned_at,
        crate::VERSION
    );
    out.push_str("#\n");
    if meta.strict {
        out.push_str(
            "# Strict: only the tools below may be called (default: deny), and destructive\n\
             # tools are denied. Every other tool is bounded as in the default scaffold.\n",
        );
    } else {
        out.push_str(
            "# Read tools run freely; every other tool is rate-limited by category, with a\n\
             # stricter alternative commented out beneath. Risk is 1 (harmless) to 5.\n",
        );
    }
    out.push_str("# Check after editing: intercept validate -c <this file>\n");
    out.push_str("version: \"1\"\n");
    let _ = writeln!(
        out,
        "description: {}",
        quote(&format!("Scaffold for {server}"))
    );
    if meta.strict {
        out.push_str("# Tools not listed below are denied.\n");
        out.push_str("default: deny\n");
    } else {
        out.push_str("# Set to deny to reject every tool not listed below.\n");
        out.push_str("default: allow\n");
    }
    if tools.is_empty() {
        out.push_str("tools: {}\n");
        return out;
    }
    out.push_str("tools:\n");
    for category in Category::ALL {
        let group: Vec<&Classified> = tools
            .iter()
            .filter(|t| t.class.category == category)
            .collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n  # ── {category} ({}) ──", group.len());
        for t in group {
            write_tool(&mut out, t, meta.strict);
        }
    }
    out
}

fn write_tool(out: &mut String, t: &Classified, strict: bool) {
    let c = &t.class;
    let _ = writeln!(out, "  {}:", key(&t.tool.name));
    let _ = writeln!(
        out,
        "    # {} · risk {}/5 · {}",
        c.category,
        c.risk,
        one_line(&c.reasons())
    );
    let description = t
        .tool
        .description
        .as_deref()
        .or(t.tool.title.as_deref())
        .map(|d| first_sentence(d, 160))
        .unwrap_or_default();
    if !description.is_empty() {
        let _ = writeln!(out, "    # {}", one_line(&description));
    }
    let params: Vec<String> = t
        .tool
        .parameters()
        .iter()
        .map(|p| {
            if p.required {
                format!("{} ({}, required)", p.name, p.kind)
            } else {
                format!("{} ({})", p.name, p.kind)
            }
        })
        .collect();
    if params.is_empty() {
        out.push_str("    # Parameters: none\n");
    } else {
        for (i, line) in wrap(&params, 84).iter().enumerate() {
            let label = if i == 0 { "Parameters: " } else { "  " };
            let _ = writeln!(out, "    # {label}{}", one_line(line));
        }
    }
    if strict && c.category == Category::Destructive {
        out.push_str("    rules:\n      - name: destructive\n        action: deny\n");
        let _ = writeln!(
            out,
            "        on_deny: {}",
            quote(&format!(
                "{} is destructive and denied by policy",
                t.tool.name
            ))
        );
        return;
    }
    let Some((max, window)) = limit(c.category) else {
        out.push_str("    rules: []\n");
        return;
    };
    let name = format!("{} limit", c.category.as_str().to_lowercase());
    let _ = writeln!(
        out,
        "    rules:\n      - name: {name}\n        action: allow\n        rate_limit: {{max: {max}, window: {window}}}"
    );
    match c.category {
        Category::Destructive => out.push_str(
            "      # Stricter: never allow it.\n      # - name: destructive\n      #   action: deny\n",
        ),
        Category::Execute | Category::Financial => out.push_str(
            "      # Stricter: a human approves each call.\n      # - name: needs approval\n      #   action: require_approval\n",
        ),
        _ => {}
    }
}

/// The classified list, for other tooling.
pub fn tools_json(discovery: &Discovery, tools: &[Classified], meta: &Meta) -> Value {
    json!({
        "server": {
            "name": discovery.server_name,
            "version": discovery.server_version,
            "protocolVersion": discovery.protocol_version,
            "transport": discovery.transport,
        },
        "command": crate::redact::redact_text(&meta.command),
        "package": meta.package,
        "scannedAt": meta.scanned_at,
        "counts": Category::ALL.iter().zip(counts(tools)).map(|(c, n)| (c.as_str().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "tools": tools.iter().map(|t| json!({
            "name": t.tool.name,
            "title": t.tool.title,
            "description": t.tool.description,
            "category": t.class.category,
            "risk": t.class.risk,
            "basis": t.class.basis,
            "flags": t.class.flags,
            "reasons": t.class.reasons(),
            "annotations": t.tool.annotations,
            "parameters": t.tool.parameters(),
        })).collect::<Vec<_>>(),
    })
}

fn server_label(d: &Discovery) -> String {
    match (&d.server_name, &d.server_version) {
        (Some(n), Some(v)) => format!("{n} {v}"),
        (Some(n), None) => n.clone(),
        _ => "an unnamed MCP server".into(),
    }
}

fn counts(tools: &[Classified]) -> [usize; 5] {
    let mut counts = [0; 5];
    for t in tools {
        let i = Category::ALL
            .iter()
            .position(|c| *c == t.class.category)
            .expect("every category is in ALL");
        counts[i] += 1;
    }
    counts
}

/// A mapping key: plain when that is unambiguous YAML, double-quoted otherwise.
fn key(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !matches!(
            name.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain { name.to_string() } else { quote(name) }
}

/// A double-quoted YAML scalar (JSON string syntax is valid YAML).
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// Comments are one line each: no control characters.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Joins items with ", " into lines of at most `width` characters.
fn wrap(items: &[String], width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for item in items {
        if !line.is_empty() && line.len() + 2 + item.len() > width {
            lines.push(std::mem::take(&mut line) + ",");
        }
        if !line.is_empty() {
            line.push_str(", ");
        }
        line.push_str(item);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{Tool, classify_all};

    fn discovery(tools: Vec<Tool>) -> Discovery {
        Discovery {
            server_name: Some("demo".into()),
            server_version: Some("1.0".into()),
            protocol_version: "2025-06-18".into(),
            transport: "stdio",
            tools,
        }
    }

    fn tool(name: &str, description: &str) -> Tool {
        Tool::from_json(&json!({
            "name": name,
            "description": description,
            "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}, "n": {"type": "integer"}}, "required": ["path"]}
        }))
        .unwrap()
    }

    #[test]
    fn scaffolds_validate_in_both_modes_and_group_by_category() {
        let d = discovery(vec![
            tool("read_file", "Reads a file. More text."),
            tool("write_file", "Writes."),
            tool("delete_file", "Deletes."),
            tool("run_command", "Runs."),
            tool("create_refund", "Refunds."),
            tool(
                "true",
                "A tool with an awkward name: \"quoted\"\nand a newline.",
            ),
            tool("weird name#1", ""),
        ]);
        let tools = classify_all(&d.tools);
        for strict in [false, true] {
            let meta = Meta {
                command: "demo-server --flag".into(),
                package: Some("npm demo@1.0.0".into()),
                scanned_at: "2026-01-01T00:00:00Z".into(),
                strict,
            };
            let yaml = policy_yaml(&d, &tools, &meta);
            let policy =
                crate::policy::parse(&yaml, "scaffold").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
            assert_eq!(policy.default_deny, strict, "{yaml}");
            assert!(yaml.contains("# Package: npm demo@1.0.0\n"));
            assert!(yaml.contains(
                "  read_file:\n    # Read · risk 1/5 · verb \"read\"\n    # Reads a file.\n    # Parameters: path (string, required), n (integer)\n    rules: []\n"
            ), "{yaml}");
            assert!(yaml.contains("  \"true\":\n"), "{yaml}");
            assert!(yaml.contains("  \"weird name#1\":\n"), "{yaml}");
            let read = yaml.find("# ── Read").unwrap();
            let write = yaml.find("# ── Write").unwrap();
            let destructive = yaml.find("# ── Destructive").unwrap();
            assert!(read < write && write < destructive);
            if strict {
                assert!(yaml.contains("  delete_file:\n    # Destructive"));
                assert!(yaml.contains("        action: deny\n"));
            } else {
                assert!(yaml.contains("      # - name: destructive\n      #   action: deny\n"));
                assert!(!yaml.contains("        action: deny\n"));
            }
            // Uncommenting the stricter alternatives still validates.
            let uncommented = yaml
                .replace("      # - name", "      - name")
                .replace("      #   action", "        action");
            crate::policy::parse(&uncommented, "uncommented")
                .unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        }
    }

    #[test]
    fn empty_server_still_validates() {
        let d = discovery(vec![]);
        let yaml = policy_yaml(&d, &[], &Meta::default());
        crate::policy::parse(&yaml, "empty").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    }
}
