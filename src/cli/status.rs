//! `intercept status`: what the instances writing to an audit directory have been doing.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::audit::status::{Summary, summarize};
use crate::audit::time::parse_rfc3339;
use crate::state::{Millis, now_millis};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of event files [default: ~/.intercept/events].
    #[arg(long, value_name = "DIR")]
    pub audit_dir: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<i32> {
    let dir = match &args.audit_dir {
        Some(dir) => dir.clone(),
        None => super::proxy::home_dir()
            .context("cannot find the home directory; pass --audit-dir")?
            .join(".intercept")
            .join("events"),
    };
    let now = now_millis();
    let summary = summarize(&dir, now)
        .with_context(|| format!("cannot read the audit directory {}", dir.display()))?;
    match (summary, args.json) {
        (Some(s), true) => writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?,
        (None, true) => writeln!(
            out,
            "{}",
            serde_json::json!({ "dir": dir, "files": 0, "instances": [] })
        )?,
        (Some(s), false) => write_text(&s, now, out)?,
        (None, false) => writeln!(out, "No event data found in {}", dir.display())?,
    }
    Ok(0)
}

fn write_text(s: &Summary, now: Millis, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "Instances")?;
    let rows: Vec<Vec<String>> = s
        .instances
        .iter()
        .map(|i| {
            vec![
                i.id.clone(),
                i.status.to_string(),
                shorten(i.server.as_deref().unwrap_or("-"), 40),
                i.pid.map_or("-".into(), |p| p.to_string()),
                i.state
                    .as_deref()
                    .map_or("-".into(), |st| shorten(&tilde(st), 48)),
                i.fail_mode.clone().unwrap_or_else(|| "-".into()),
                i.calls.to_string(),
                i.denied.to_string(),
                ago(&i.last_seen, now),
            ]
        })
        .collect();
    table(
        out,
        &[
            "ID",
            "STATUS",
            "SERVER",
            "PID",
            "STATE",
            "FAIL MODE",
            "CALLS",
            "DENIED",
            "LAST SEEN",
        ],
        &rows,
    )?;

    let t = &s.totals;
    writeln!(out)?;
    writeln!(out, "Calls")?;
    let mut lines = vec![
        ("Total", t.calls.to_string()),
        ("Allowed", t.allowed.to_string()),
        (
            "Denied",
            if t.calls > 0 {
                format!("{} ({:.1}%)", t.denied, t.denied_share * 100.0)
            } else {
                "0".into()
            },
        ),
    ];
    if t.require_approval > 0 {
        lines.push(("Held for approval", t.require_approval.to_string()));
    }
    if t.shadow_denied > 0 {
        lines.push(("Shadow denied", t.shadow_denied.to_string()));
    }
    lines.push((
        "Calls/min (last 5 min)",
        format!("{:.1}", t.calls_per_minute),
    ));
    if let (Some(first), Some(last)) = (&t.first_event, &t.last_event) {
        lines.push((
            "Events from",
            format!("{} to {}", short_time(first), short_time(last)),
        ));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in lines {
        writeln!(out, "  {:<width$}  {v}", format!("{k}:"), width = width + 1)?;
    }

    if !s.top_deny_rules.is_empty() {
        writeln!(out)?;
        writeln!(out, "Top deny rules")?;
        let rows: Vec<Vec<String>> = s
            .top_deny_rules
            .iter()
            .map(|r| vec![shorten(&r.rule, 60), r.count.to_string()])
            .collect();
        table(out, &["RULE", "COUNT"], &rows)?;
    }
    if !s.recent_denials.is_empty() {
        writeln!(out)?;
        writeln!(out, "Recent denied calls")?;
        let rows: Vec<Vec<String>> = s
            .recent_denials
            .iter()
            .map(|d| {
                vec![
                    short_time(&d.ts),
                    d.instance.clone(),
                    d.tool.clone(),
                    d.rule.clone().unwrap_or_else(|| "-".into()),
                    shorten(d.message.as_deref().unwrap_or("-"), 60),
                ]
            })
            .collect();
        table(
            out,
            &["TIME (UTC)", "INSTANCE", "TOOL", "RULE", "MESSAGE"],
            &rows,
        )?;
    }
    if s.skipped_lines > 0 {
        writeln!(out)?;
        writeln!(
            out,
            "{} unreadable line(s) skipped (a line being written, or a damaged one)",
            s.skipped_lines
        )?;
    }
    Ok(())
}

/// A table with a header, columns padded to their widest cell, two spaces apart.
fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::from(" ");
        for (cell, w) in cells.iter().zip(&widths) {
            text.push(' ');
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 1));
        }
        text.trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// The home directory as `~`, to keep paths short.
fn tilde(s: &str) -> String {
    match super::proxy::home_dir() {
        Some(home) if !home.as_os_str().is_empty() => s.replace(&*home.to_string_lossy(), "~"),
        _ => s.to_string(),
    }
}

/// `2026-11-25T06:40:12.345Z` → `2026-11-25 06:40:12`.
fn short_time(ts: &str) -> String {
    ts.get(..19).unwrap_or(ts).replace('T', " ")
}

fn ago(ts: &str, now: Millis) -> String {
    let Some(at) = parse_rfc3339(ts) else {
        return "-".into();
    };
    let secs = (now - at).max(0) / 1000;
    match secs {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}
