//! `intercept init`: put every MCP server this machine's clients know behind intercept.
//!
//! Finds the client configurations (Claude Code, Claude Desktop, Cursor, VS Code,
//! Windsurf), scans each server, writes one policy per server and rewrites the entry to
//! run through intercept. A copy of each file is kept before its first change, so
//! `intercept init --undo` can put it back; entries that already run through intercept
//! are left alone, so running init twice changes nothing the second time.

mod clients;
mod consent;
mod document;
mod launcher;
mod wrap;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::scan::{block_on, now_seconds, parse_duration};
use crate::audit::sha256_hex;
use crate::private_fs;
use crate::scan::{self, Target, scaffold};
use crate::shell_words;
use clients::{ConfigFile, Location};
use document::Document;
use wrap::Kind;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  intercept init --dry-run        # show the changes, change nothing\n  intercept init                  # scan, write policies, rewrite the configs\n  intercept init --trust-project  # the same, for the project's servers without asking\n  intercept init --undo           # put the configs back"
)]
pub struct Args {
    /// Show the servers and the changes as a diff; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Put back every entry init rewrote (the saved copy when the file is unchanged since).
    #[arg(long)]
    pub undo: bool,
    /// Where policies are written [default: ~/.intercept/policies].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Project directory whose .mcp.json, .cursor/mcp.json and .vscode/mcp.json are
    /// included [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Start and rewrite the servers of the project's own files without asking. Without it
    /// init asks in a terminal, and skips them otherwise: they came with the project.
    #[arg(long)]
    pub trust_project: bool,
    /// How a rewritten entry starts intercept, split on spaces [default: this installation's
    /// native executable by absolute path; `npx -y @policylayer/intercept@<version>` when run
    /// from npx's cache].
    #[arg(long, value_name = "COMMAND")]
    pub launcher: Option<String>,
    /// Scan time limit per server (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Write allowlist policies with destructive tools denied (see `intercept scan --strict`).
    #[arg(long)]
    pub strict: bool,
}

/// What init remembers between runs (`~/.intercept/init/index.json`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    files: BTreeMap<String, FileRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileRecord {
    client: String,
    /// The copy of the file taken before init first changed it.
    backup: PathBuf,
    /// SHA-256 of what init last wrote: if the file still has it, undo restores the copy.
    written_sha256: String,
    /// Original entries, by location (`mcpServers/github`).
    originals: BTreeMap<String, Value>,
}

fn home() -> anyhow::Result<PathBuf> {
    super::proxy::home_dir().context("cannot tell the home directory: HOME is not set (or empty)")
}

fn state_dir(home: &Path) -> PathBuf {
    home.join(".intercept").join("init")
}

fn load_index(home: &Path) -> anyhow::Result<Index> {
    let path = state_dir(home).join("index.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The index holds the original entries, credentials included: only its owner may read it.
fn save_index(home: &Path, index: &Index) -> anyhow::Result<()> {
    let dir = private_dir(&state_dir(home))?;
    let text = serde_json::to_string_pretty(index)? + "\n";
    write_atomic(&dir.join("index.json"), &text, Mode::Private)
}

/// `dir`, created or closed to everyone but its owner.
fn private_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    private_fs::ensure_private_dir(dir)
        .with_context(|| format!("creating {} (mode 0700)", dir.display()))?;
    Ok(dir.to_path_buf())
}

fn loc_key(loc: &Location) -> String {
    let mut parts = loc.container.clone();
    parts.push(loc.name.clone());
    parts.join("/")
}

/// Who may read a file [`write_atomic`] replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As the file it replaces (a client's config); only the owner for a new file.
    Keep,
    /// Only the owner, whatever it was.
    Private,
}

/// Replaces `path` with `text` through a temporary file and a rename, so that a reader
/// never sees half a file. The temporary file is created afresh under a random name (never
/// through a link planted in a cloned project) and readable by its owner only while the
/// text, which may hold credentials, is written; it gets the original's permissions just
/// before it takes its place.
fn write_atomic(path: &Path, text: &str, mode: Mode) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    if mode == Mode::Keep
        && let Ok(meta) = std::fs::metadata(path)
    {
        tmp.as_file()
            .set_permissions(meta.permissions())
            .with_context(|| format!("setting the permissions of {}", tmp.path().display()))?;
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// The unified diff of a config file, as shown on the terminal: header values (in
/// `headers`, in arguments, or moved into `env`) masked in every entry, and whatever else
/// looks like a secret redacted.
fn diff(path: &Path, key: &str, before: &str, after: &str) -> String {
    let name = path.display().to_string();
    let (before, after) = (shown(before, key), shown(after, key));
    similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(&name, &name)
        .to_string()
}

/// `text` with the header values of its entries masked and other secrets redacted (see
/// [`diff`]).
fn shown(text: &str, key: &str) -> String {
    let masked = Document::parse(text).map(|doc| {
        for (loc, entry) in clients::servers(&doc.value(), key) {
            let hidden = wrap::masked(&entry);
            if hidden != entry {
                doc.set_entry(&loc, &hidden);
            }
        }
        doc.text()
    });
    crate::redact::redact_text(masked.as_deref().unwrap_or(text)).into_owned()
}

pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let home = home()?;
    let project = match &args.project {
        Some(p) => p.clone(),
        None => std::env::current_dir().context("reading the current directory")?,
    };
    if args.undo {
        return undo(&home, args.dry_run, out);
    }
    let launcher = match &args.launcher {
        Some(text) => {
            let words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
            if words.is_empty() {
                bail!(
                    "--launcher is empty: give the command that starts intercept, e.g. --launcher /usr/local/bin/intercept"
                );
            }
            launcher::Launcher {
                command: words,
                why: "--launcher",
            }
        }
        None => launcher::choose(
            &launcher::Running::detect(crate::host::under_node()),
            crate::VERSION,
            &launcher::OnDisk,
        ),
    };
    let policy_dir = args
        .dir
        .clone()
        .unwrap_or_else(|| home.join(".intercept").join("policies"));
    let files = clients::locate(&home, &project);
    if files.is_empty() {
        writeln!(
            out,
            "No MCP client configuration found (Claude Code, Claude Desktop, Cursor, VS Code, Windsurf) for {} and {}.",
            home.display(),
            project.display()
        )?;
        return Ok(0);
    }

    if !args.dry_run {
        // Where policies, backups and (for the proxy) counters and audit logs go: private
        // from the start, before the policy directory is created inside it.
        let root = home.join(".intercept");
        private_fs::create_private_dir(&root)
            .with_context(|| format!("creating {}", root.display()))?;
    }
    let from_project = consent::pending(&files);
    // Nothing starts in a dry run: the project's servers are shown as a run would treat
    // them once trusted.
    let trusted = args.trust_project
        || args.dry_run
        || from_project.is_empty()
        || (std::io::stdin().is_terminal()
            && consent::ask(&from_project, &mut std::io::stdin().lock(), err)?);
    let mut index = load_index(&home)?;
    let mut planner = Planner {
        dir: policy_dir.clone(),
        assigned: BTreeMap::new(),
    };
    let mut rows = Vec::new();
    let mut changes: Vec<Change> = Vec::new();
    let mut failures = 0;
    for file in &files {
        let text = std::fs::read_to_string(&file.path)
            .with_context(|| format!("reading {}", file.path.display()))?;
        let doc = match Document::parse(&text) {
            Ok(d) => d,
            Err(e) => {
                rows.push(Row::note(file, &format!("skipped: {e}")));
                continue;
            }
        };
        let mut wrapped_here = Vec::new();
        for (loc, entry) in clients::servers(&doc.value(), file.key) {
            let kind = wrap::kind(&entry);
            if file.project && !trusted {
                let status = "skipped: the project's file, not confirmed (--trust-project)";
                rows.push(Row::server(file, &loc, &kind, status));
                continue;
            }
            // Entries wrapped earlier: a stale launcher replaced, headers moved out of argv.
            if let Some(new_entry) =
                wrap::refresh(&entry, &launcher.command, &|p| Path::new(p).exists())
                && doc.set_entry(&loc, &new_entry)
            {
                wrapped_here.push((loc.clone(), entry));
                rows.push(Row::server(
                    file,
                    &loc,
                    &kind,
                    "already runs through intercept; updated",
                ));
                continue;
            }
            let Some((target, env)) = kind.target() else {
                let status = if kind == Kind::Wrapped {
                    "already runs through intercept"
                } else {
                    "skipped: neither a command nor a URL"
                };
                rows.push(Row::server(file, &loc, &kind, status));
                continue;
            };
            let shown = match &target {
                Target::Command(c) => shell_words::join(c),
                Target::Url { url, .. } => url.clone(),
            };
            let (policy, exists) = planner.path_for(&loc.name, &shown);
            let status;
            if exists {
                status = format!("wrap; keep {}", policy.display());
            } else if args.dry_run {
                status = format!("scan, write {}, wrap", policy.display());
            } else {
                writeln!(err, "Scanning {} ({})", loc.label(), file.client)?;
                match scan_to(&target, env, &shown, &policy, args) {
                    Ok(n) => status = format!("wrap; {n} tools → {}", policy.display()),
                    Err(e) => {
                        failures += 1;
                        let first = e.to_string();
                        let first = first.lines().next().unwrap_or("");
                        rows.push(Row::server(
                            file,
                            &loc,
                            &kind,
                            &format!("not wrapped: {first}"),
                        ));
                        continue;
                    }
                }
            }
            let policy_text = policy.display().to_string();
            let Some(new_entry) = wrap::wrap(&entry, &launcher.command, &policy_text) else {
                continue;
            };
            if doc.set_entry(&loc, &new_entry) {
                wrapped_here.push((loc.clone(), entry));
            }
            rows.push(Row::server(file, &loc, &kind, &status));
        }
        if !wrapped_here.is_empty() {
            let new_text = doc.text();
            changes.push(Change {
                file: file.clone(),
                before: text,
                after: new_text,
                wrapped: wrapped_here,
            });
        }
    }

    print_table(out, &rows)?;
    writeln!(out)?;
    let n = from_project.len();
    if !from_project.is_empty() && !trusted {
        writeln!(
            out,
            "The {n} server(s) of the project's own files were neither started nor changed: they came with the project. Run init in a terminal to confirm, or with --trust-project.\n"
        )?;
    } else if !from_project.is_empty() && args.dry_run && !args.trust_project {
        writeln!(
            out,
            "A run without --dry-run asks before it starts the {n} server(s) of the project's own files (in a terminal; elsewhere they are skipped unless --trust-project).\n"
        )?;
    }
    if changes.is_empty() {
        writeln!(out, "Nothing to change.")?;
        return Ok(if failures > 0 { 1 } else { 0 });
    }
    writeln!(
        out,
        "Rewritten entries start intercept with: {} ({})\n",
        shell_words::join(&launcher.command),
        launcher.why
    )?;
    if args.dry_run {
        for c in &changes {
            write!(
                out,
                "{}",
                diff(&c.file.path, c.file.key, &c.before, &c.after)
            )?;
        }
        writeln!(
            out,
            "\nDry run: nothing was written. Run without --dry-run to apply."
        )?;
        return Ok(0);
    }
    private_dir(&state_dir(&home))?;
    let backups = private_dir(&state_dir(&home).join("backups"))?;
    let mut servers = 0;
    for Change {
        file,
        before,
        after,
        wrapped,
    } in &changes
    {
        let key = file.path.display().to_string();
        let record = index
            .files
            .entry(key.clone())
            .or_insert_with(|| FileRecord {
                client: file.client.to_string(),
                backup: backups.join(format!(
                    "{}-{}",
                    &sha256_hex(key.as_bytes())[..12],
                    file.path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("config.json")
                )),
                written_sha256: String::new(),
                originals: BTreeMap::new(),
            });
        // The copy holds what the file holds, credentials included.
        match private_fs::write_new_private(&record.backup, before.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(e)
                    .with_context(|| format!("writing the backup {}", record.backup.display()));
            }
            _ => {}
        }
        for (loc, original) in wrapped {
            record
                .originals
                .entry(loc_key(loc))
                .or_insert_with(|| original.clone());
        }
        // Saved before the file changes: an interrupted run can still be undone.
        let previous = std::mem::replace(&mut record.written_sha256, sha256_hex(after.as_bytes()));
        save_index(&home, &index)?;
        if let Err(e) = write_atomic(&file.path, after, Mode::Keep) {
            if let Some(r) = index.files.get_mut(&key) {
                r.written_sha256 = previous;
            }
            save_index(&home, &index)?;
            return Err(e);
        }
        servers += wrapped.len();
        writeln!(
            out,
            "Rewrote {} ({} server{}); copy of the original: {}",
            file.path.display(),
            wrapped.len(),
            if wrapped.len() == 1 { "" } else { "s" },
            index.files[&key].backup.display()
        )?;
    }
    writeln!(
        out,
        "\n{servers} server(s) now run through intercept with the policies in {}. Restart your MCP clients to pick up the change; undo with: intercept init --undo",
        policy_dir.display()
    )?;
    Ok(if failures > 0 { 1 } else { 0 })
}

/// A config file and what init makes of it.
struct Change {
    file: ConfigFile,
    before: String,
    after: String,
    /// The entries rewritten, with their originals.
    wrapped: Vec<(Location, Value)>,
}

/// Scans one server and writes its policy; returns the number of tools.
fn scan_to(
    target: &Target,
    env: Vec<(String, String)>,
    shown: &str,
    policy: &Path,
    args: &Args,
) -> anyhow::Result<usize> {
    let options = scan::ScanOptions {
        timeout: args.timeout,
        env,
    };
    let progress = |line: &str| eprintln!("  {line}");
    let discovery = block_on(scan::discover(target, &options, &progress))??;
    let tools = scan::classify_all(&discovery.tools);
    let meta = scaffold::Meta {
        command: shown.to_string(),
        package: None,
        scanned_at: now_seconds(),
        strict: args.strict,
    };
    let text = scaffold::policy_yaml(&discovery, &tools, &meta);
    if let Some(dir) = policy.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(policy, text).with_context(|| format!("writing {}", policy.display()))?;
    Ok(tools.len())
}

/// Chooses one policy file per server: `<name>.yaml`, reused when it was written for the
/// same command, otherwise `<name>-2.yaml` and so on.
struct Planner {
    dir: PathBuf,
    /// Policy path → the command it is for, in this run.
    assigned: BTreeMap<PathBuf, String>,
}

impl Planner {
    /// The path, and whether a policy for this command is already there.
    fn path_for(&mut self, name: &str, command: &str) -> (PathBuf, bool) {
        let slug: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let slug = if slug.trim_matches('-').is_empty() {
            "server".to_string()
        } else {
            slug
        };
        for n in 1.. {
            let file = if n == 1 {
                format!("{slug}.yaml")
            } else {
                format!("{slug}-{n}.yaml")
            };
            let path = self.dir.join(file);
            if let Some(cmd) = self.assigned.get(&path) {
                if cmd == command {
                    return (path, true);
                }
                continue;
            }
            let on_disk = std::fs::read_to_string(&path).ok();
            // The policy names its command redacted (see the scaffold).
            let shown = crate::redact::redact_text(command);
            let same = on_disk.as_deref().map(|t| {
                t.lines()
                    .any(|l| l.strip_prefix("# Command: ") == Some(&*shown))
            });
            match same {
                Some(false) => continue,
                Some(true) | None => {
                    self.assigned.insert(path.clone(), command.to_string());
                    return (path, same == Some(true));
                }
            }
        }
        unreachable!("the loop returns")
    }
}

struct Row {
    client: String,
    file: String,
    server: String,
    kind: String,
    status: String,
}

impl Row {
    fn server(file: &ConfigFile, loc: &Location, kind: &Kind, status: &str) -> Row {
        Row {
            client: file.client.to_string(),
            file: file.path.display().to_string(),
            server: loc.label(),
            kind: match kind {
                Kind::Stdio { .. } => "command",
                Kind::Remote { .. } => "url",
                Kind::Wrapped => "intercept",
                Kind::Unknown => "?",
            }
            .to_string(),
            status: status.to_string(),
        }
    }
    fn note(file: &ConfigFile, status: &str) -> Row {
        Row {
            client: file.client.to_string(),
            file: file.path.display().to_string(),
            server: "-".into(),
            kind: "-".into(),
            status: status.to_string(),
        }
    }
}

fn print_table(out: &mut dyn Write, rows: &[Row]) -> std::io::Result<()> {
    let header = ["CLIENT", "SERVER", "KIND", "ACTION", "FILE"];
    let cells: Vec<[&str; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.client.as_str(),
                r.server.as_str(),
                r.kind.as_str(),
                r.status.as_str(),
                r.file.as_str(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut dyn Write, row: &[&str; 5]| -> std::io::Result<()> {
        let mut s = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            if i == 4 {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(w - c.chars().count() + 2));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, &header)?;
    for row in &cells {
        line(out, row)?;
    }
    Ok(())
}

/// Puts back what init changed: the saved copy when the file is exactly as init left it,
/// otherwise each rewritten entry (other edits made since are kept).
fn undo(home: &Path, dry_run: bool, out: &mut dyn Write) -> anyhow::Result<i32> {
    let mut index = load_index(home)?;
    if index.files.is_empty() {
        writeln!(
            out,
            "Nothing to undo: intercept init has not changed any file."
        )?;
        return Ok(0);
    }
    let mut done = Vec::new();
    for (path, record) in &index.files {
        let path_buf = PathBuf::from(path);
        let current = match std::fs::read_to_string(&path_buf) {
            Ok(t) => t,
            Err(e) => {
                writeln!(out, "{path}: cannot read it ({e}); left as it is")?;
                continue;
            }
        };
        let key = if record.client == "VS Code" {
            "servers"
        } else {
            "mcpServers"
        };
        let restored = if sha256_hex(current.as_bytes()) == record.written_sha256 {
            std::fs::read_to_string(&record.backup)
                .with_context(|| format!("reading the backup {}", record.backup.display()))?
        } else {
            let doc = match Document::parse(&current) {
                Ok(doc) => doc,
                Err(e) => {
                    writeln!(
                        out,
                        "{path}: changed since and {e}; restore it by hand from {}",
                        record.backup.display()
                    )?;
                    continue;
                }
            };
            for (loc, entry) in clients::servers(&doc.value(), key) {
                if wrap::kind(&entry) != Kind::Wrapped {
                    continue;
                }
                let original = record
                    .originals
                    .get(&loc_key(&loc))
                    .cloned()
                    .or_else(|| wrap::unwrap(&entry));
                if let Some(original) = original {
                    doc.set_entry(&loc, &original);
                }
            }
            doc.text()
        };
        if dry_run {
            write!(out, "{}", diff(&path_buf, key, &current, &restored))?;
            continue;
        }
        if restored != current {
            write_atomic(&path_buf, &restored, Mode::Keep)?;
        }
        writeln!(out, "Restored {path}")?;
        done.push(path.clone());
    }
    if dry_run {
        writeln!(out, "\nDry run: nothing was written.")?;
        return Ok(0);
    }
    for path in done {
        index.files.remove(&path);
    }
    save_index(home, &index)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn write_atomic_follows_no_planted_link_and_sets_who_may_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // A cloned project may hold a link where a fixed temporary name would be.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(".mcp.intercept-tmp")).unwrap();
        let config = dir.path().join(".mcp.json");
        std::fs::write(&config, "{}").unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&config, "{\"a\": 1}", Mode::Keep).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(std::fs::symlink_metadata(&config).unwrap().is_file());
        assert_eq!(std::fs::read_to_string(&config).unwrap(), "{\"a\": 1}");
        assert_eq!(mode(&config), 0o640, "the config keeps its mode");
        // Private: a new file, and one an earlier version left readable, end up 0600.
        let index = dir.path().join("index.json");
        write_atomic(&index, "{}", Mode::Private).unwrap();
        assert_eq!(mode(&index), 0o600);
        std::fs::set_permissions(&index, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&index, "{}", Mode::Private).unwrap();
        assert_eq!(mode(&index), 0o600);
        // A new file under Keep is private too; no temporary file is left behind.
        let new = dir.path().join("new.json");
        write_atomic(&new, "{}", Mode::Keep).unwrap();
        assert_eq!(mode(&new), 0o600);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".mcp.intercept-tmp",
                ".mcp.json",
                "index.json",
                "new.json",
                "victim"
            ]
        );
    }

    #[test]
    fn one_policy_per_command_and_no_clobbering() {
        let dir = tempfile::tempdir().unwrap();
        let mut planner = Planner {
            dir: dir.path().to_path_buf(),
            assigned: BTreeMap::new(),
        };
        let (a, exists) = planner.path_for("GitHub Server", "npx -y gh");
        assert_eq!(a, dir.path().join("github-server.yaml"));
        assert!(!exists);
        // The same server in another client's config shares the policy.
        assert_eq!(planner.path_for("GitHub Server", "npx -y gh").0, a);
        // Another command under the same name gets its own file.
        assert_eq!(
            planner.path_for("GitHub Server", "other").0,
            dir.path().join("github-server-2.yaml")
        );
        // A file written for another command (or by hand) is never overwritten; one for
        // the same command is reused as it is.
        std::fs::write(dir.path().join("x.yaml"), "# Command: something else\n").unwrap();
        std::fs::write(dir.path().join("y.yaml"), "# Command: npx y\n").unwrap();
        let mut planner = Planner {
            dir: dir.path().to_path_buf(),
            assigned: BTreeMap::new(),
        };
        assert_eq!(
            planner.path_for("x", "npx x").0,
            dir.path().join("x-2.yaml")
        );
        assert_eq!(
            planner.path_for("y", "npx y"),
            (dir.path().join("y.yaml"), true)
        );
    }
}
