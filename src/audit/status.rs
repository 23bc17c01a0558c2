//! `intercept status`: a summary of every event file in an audit directory.
//!
//! Each instance writes its own file, so several running at once never interleave lines;
//! events are keyed by their `instance` field (a file continued with `--audit-log` holds
//! several), and times come from each event's `ts`, not from file order. A line that is
//! not whole JSON (the tail of a file being written, or a damaged line) is skipped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::time::parse_rfc3339;
use crate::state::Millis;

/// How far back "calls per minute" looks.
pub const RATE_WINDOW_MS: Millis = 5 * 60 * 1000;
/// How many deny rules and denied calls are listed.
pub const TOP: usize = 10;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub dir: PathBuf,
    /// When the summary was made (RFC 3339).
    pub generated_at: String,
    pub files: usize,
    /// Lines that could not be read (torn or damaged), skipped.
    pub skipped_lines: u64,
    pub instances: Vec<Instance>,
    pub totals: Totals,
    pub top_deny_rules: Vec<RuleCount>,
    /// Newest first.
    pub recent_denials: Vec<Denial>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub id: String,
    pub file: PathBuf,
    /// `alive` (its process is running), `stopped` (it logged its shutdown), `gone` (its
    /// process is not running and never logged a shutdown: killed or crashed) or `unknown`
    /// (no start-up event, or the process cannot be checked on this system).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    pub last_seen: String,
    pub calls: u64,
    pub denied: u64,
    #[serde(skip)]
    last_seen_ms: Millis,
    #[serde(skip)]
    started_ms: Millis,
    #[serde(skip)]
    stopped: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub calls: u64,
    pub allowed: u64,
    pub denied: u64,
    pub require_approval: u64,
    pub shadow_denied: u64,
    /// `denied / calls`, 0 when there were no calls.
    pub denied_share: f64,
    /// Calls in the last five minutes, per minute.
    pub calls_per_minute: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleCount {
    pub rule: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Denial {
    pub ts: String,
    pub instance: String,
    pub tool: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip)]
    pub at: Millis,
}

/// Reads every `*.jsonl` file in `dir`; `Ok(None)` when there are none.
pub fn summarize(dir: &Path, now: Millis) -> std::io::Result<Option<Summary>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl") && p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if files.is_empty() {
        return Ok(None);
    }
    files.sort();
    let mut acc = Accumulator::default();
    for file in &files {
        // A file pruned or rotated away between listing and reading is simply skipped.
        let Ok(f) = std::fs::File::open(file) else {
            continue;
        };
        for line in BufReader::new(f).split(b'\n') {
            let Ok(line) = line else { break };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Value>(&line) {
                Ok(event) => acc.add(file, &event),
                Err(_) => acc.skipped += 1,
            }
        }
    }
    Ok(Some(acc.finish(dir, files.len(), now)))
}

#[derive(Default)]
struct Accumulator {
    instances: HashMap<String, Instance>,
    totals: Totals,
    first: Option<Millis>,
    last: Option<Millis>,
    call_times: Vec<Millis>,
    rules: HashMap<String, u64>,
    denials: Vec<Denial>,
    skipped: u64,
}

impl Accumulator {
    fn add(&mut self, file: &Path, event: &Value) {
        let s = |k: &str| event.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(kind), Some(id)) = (s("type"), s("instance")) else {
            self.skipped += 1;
            return;
        };
        let Some(at) = event
            .get("ts")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
        else {
            self.skipped += 1;
            return;
        };
        self.first = Some(self.first.map_or(at, |f| f.min(at)));
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
        let instance = self
            .instances
            .entry(id.clone())
            .or_insert_with(|| Instance {
                id: id.clone(),
                file: file.to_path_buf(),
                status: "unknown",
                server: None,
                pid: None,
                state: None,
                fail_mode: None,
                version: None,
                policy: None,
                started: None,
                last_seen: String::new(),
                calls: 0,
                denied: 0,
                last_seen_ms: Millis::MIN,
                started_ms: Millis::MIN,
                stopped: false,
            });
        if at >= instance.last_seen_ms {
            instance.last_seen_ms = at;
        }
        match kind.as_str() {
            "startup" if at >= instance.started_ms => {
                instance.started_ms = at;
                instance.started = s("ts");
                instance.server = s("server");
                instance.pid = event.get("pid").and_then(Value::as_u64);
                instance.state = s("state").map(|st| strip_credentials(&st));
                instance.fail_mode = s("fail_mode").or_else(|| s("state_fail_mode"));
                instance.version = s("version");
                instance.policy = s("policy");
                instance.stopped = false;
            }
            "shutdown" if at >= instance.started_ms => instance.stopped = true,
            "tool_call" => {
                instance.calls += 1;
                self.totals.calls += 1;
                self.call_times.push(at);
                match s("decision").as_deref() {
                    Some("allow") => self.totals.allowed += 1,
                    Some("require_approval") => self.totals.require_approval += 1,
                    Some("shadow_deny") => self.totals.shadow_denied += 1,
                    Some("deny") => {
                        instance.denied += 1;
                        self.totals.denied += 1;
                        let rule = s("rule");
                        let message = s("message");
                        let key = rule
                            .clone()
                            .or_else(|| message.clone())
                            .unwrap_or_else(|| "(no rule)".into());
                        *self.rules.entry(key).or_default() += 1;
                        self.denials.push(Denial {
                            ts: s("ts").unwrap_or_default(),
                            instance: id,
                            tool: s("tool").unwrap_or_default(),
                            rule,
                            message,
                            identity: s("identity"),
                            at,
                        });
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn finish(self, dir: &Path, files: usize, now: Millis) -> Summary {
        let mut totals = self.totals;
        if totals.calls > 0 {
            totals.denied_share = totals.denied as f64 / totals.calls as f64;
        }
        let recent = self
            .call_times
            .iter()
            .filter(|&&t| t > now - RATE_WINDOW_MS && t <= now)
            .count();
        totals.calls_per_minute = recent as f64 / (RATE_WINDOW_MS as f64 / 60_000.0);
        totals.first_event = self.first.map(super::time::rfc3339);
        totals.last_event = self.last.map(super::time::rfc3339);

        let mut instances: Vec<Instance> = self
            .instances
            .into_values()
            .map(|mut i| {
                i.last_seen = super::time::rfc3339(i.last_seen_ms);
                i.status = if i.stopped {
                    "stopped"
                } else {
                    match i.pid.and_then(|pid| pid_alive(pid as u32, i.started_ms)) {
                        Some(true) => "alive",
                        Some(false) => "gone",
                        None => "unknown",
                    }
                };
                i
            })
            .collect();
        // Newest start first.
        instances.sort_by(|a, b| {
            b.started_ms
                .cmp(&a.started_ms)
                .then(b.last_seen_ms.cmp(&a.last_seen_ms))
                .then(a.id.cmp(&b.id))
        });

        let mut rules: Vec<RuleCount> = self
            .rules
            .into_iter()
            .map(|(rule, count)| RuleCount { rule, count })
            .collect();
        rules.sort_by(|a, b| b.count.cmp(&a.count).then(a.rule.cmp(&b.rule)));
        rules.truncate(TOP);

        let mut denials = self.denials;
        denials.sort_by_key(|d| std::cmp::Reverse(d.at));
        denials.truncate(TOP);

        Summary {
            dir: dir.to_path_buf(),
            generated_at: super::time::rfc3339(now),
            files,
            skipped_lines: self.skipped,
            instances,
            totals,
            top_deny_rules: rules,
            recent_denials: denials,
        }
    }
}

/// `redis://user:secret@host:6379/0` → `redis://host:6379/0`: events never should carry
/// credentials, and status never shows any that slipped in.
pub fn strip_credentials(s: &str) -> String {
    match (s.find("://"), s.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let authority_end = s[scheme_end + 3..]
                .find('/')
                .map_or(s.len(), |i| scheme_end + 3 + i);
            if at < authority_end {
                return format!("{}{}", &s[..scheme_end + 3], &s[at + 1..]);
            }
            s.to_string()
        }
        _ => s.to_string(),
    }
}

/// Whether the process that logged its start at `started` still runs; `None` where that
/// cannot be checked.
fn pid_alive(pid: u32, started: Millis) -> Option<bool> {
    if pid == 0 {
        return None;
    }
    if cfg!(target_os = "linux") {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return Some(false);
        };
        // A process that started after the instance logged its start has reused the pid.
        // (A minute of slack: the boot time is read in whole seconds and clocks get set.)
        return Some(linux_start_ms(&stat).is_none_or(|s| s <= started + 60_000));
    }
    #[cfg(unix)]
    {
        std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .ok()
            .map(|s| s.success())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// When a Linux process started (ms since the epoch), from its `/proc/<pid>/stat` line and
/// the boot time; clock ticks are taken to be 100 a second, as on every Linux platform.
fn linux_start_ms(stat: &str) -> Option<Millis> {
    // The command name may contain spaces and parentheses: fields follow the last `)`.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks: i64 = fields.get(19)?.parse().ok()?;
    let boot: i64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot * 1000 + ticks * 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_stripped() {
        assert_eq!(
            strip_credentials("redis://user:pw@host:6379/0"),
            "redis://host:6379/0"
        );
        assert_eq!(strip_credentials("sqlite:/a/b@c"), "sqlite:/a/b@c");
        assert_eq!(
            strip_credentials("redis://host/0?x=a@b"),
            "redis://host/0?x=a@b"
        );
        assert_eq!(strip_credentials("memory"), "memory");
    }

    #[test]
    fn summary_of_two_files_with_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let now = parse_rfc3339("2026-11-25T10:10:00.000Z").unwrap();
        std::fs::write(
            dir.path().join("aaaa0001.jsonl"),
            [
                r#"{"ts":"2026-11-25T10:00:00.000Z","type":"startup","instance":"aaaa0001","pid":0,"server":"s1","state":"redis://u:p@h:1/0"}"#,
                r#"{"ts":"2026-11-25T10:06:00.000Z","type":"tool_call","instance":"aaaa0001","tool":"t","decision":"deny","rule":"r1"}"#,
                r#"{"ts":"2026-11-25T10:07:00.000Z","type":"shutdown","instance":"aaaa0001"}"#,
                "",
            ]
            .join("\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("bbbb0002.jsonl"),
            [
                r#"{"ts":"2026-11-25T10:01:00.000Z","type":"startup","instance":"bbbb0002","pid":0,"server":"s2"}"#,
                r#"{"ts":"2026-11-25T10:02:00.000Z","type":"tool_call","instance":"bbbb0002","tool":"t","decision":"allow"}"#,
                r#"{"ts":"2026-11-25T10:08:00.000Z","type":"tool_call","instance":"bbbb0002","tool":"u","decision":"deny","rule":"r1"}"#,
                r#"{"ts":"2026-11-25T10:09:00.000Z","type":"tool_call","instance":"bbbb0002","tool":"v","decision":"deny","message":"m"}"#,
                r#"{"ts":"2026-11-25T10:09:30.000Z","type":"tool_ca"#,
            ]
            .join("\n"),
        )
        .unwrap();
        let s = summarize(dir.path(), now).unwrap().unwrap();
        assert_eq!(s.files, 2);
        assert_eq!(s.skipped_lines, 1);
        assert_eq!(s.totals.calls, 4);
        assert_eq!(s.totals.denied, 3);
        assert_eq!(s.totals.calls_per_minute, 3.0 / 5.0);
        assert_eq!(s.instances[0].id, "bbbb0002", "newest start first");
        assert_eq!(s.instances[0].status, "unknown");
        assert_eq!(s.instances[1].status, "stopped");
        assert_eq!(s.instances[1].state.as_deref(), Some("redis://h:1/0"));
        assert_eq!(s.top_deny_rules[0].rule, "r1");
        assert_eq!(s.top_deny_rules[0].count, 2);
        assert_eq!(s.top_deny_rules[1].rule, "m");
        let tools: Vec<&str> = s.recent_denials.iter().map(|d| d.tool.as_str()).collect();
        assert_eq!(tools, ["v", "u", "t"], "newest first, across files");
    }

    #[test]
    fn an_empty_directory_has_no_summary() {
        let dir = tempfile::tempdir().unwrap();
        assert!(summarize(dir.path(), 0).unwrap().is_none());
        assert!(summarize(&dir.path().join("missing"), 0).unwrap().is_none());
    }
}
