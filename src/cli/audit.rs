//! `intercept audit verify FILE...`: checks the chain and seal of event files.

use std::io::Write;
use std::path::PathBuf;

use crate::audit::{AuditKey, KEY_ENV, SealCheck, Verified, VerifyError, seal_path, verify};

/// Exit code when a file shows no tampering but could not be checked completely: a keyed
/// log without its key, or a log without its seal file.
pub const EXIT_INCOMPLETE: i32 = 3;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check that no line of an event file was changed, removed, inserted or cut from its end.
    #[command(
        after_help = "Exit status: 0 intact; 1 tampering found (or a file cannot be read, or the key is wrong); 3 nothing wrong found but the check is incomplete (a keyed log without its key, or no seal file)."
    )]
    Verify {
        /// File holding the audit key the logs were written with (mode 0600 or stricter);
        /// or set INTERCEPT_AUDIT_KEY.
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
        /// Event files (`~/.intercept/events/*.jsonl`).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

pub fn run(cmd: &Command, out: &mut dyn Write) -> anyhow::Result<i32> {
    let Command::Verify { key_file, files } = cmd;
    // An unusable key is a usage error (exit 2), before any file is read.
    let key = AuditKey::configured(key_file.as_deref(), "--key-file")?;
    let (mut tampered, mut incomplete) = (false, false);
    for file in files {
        let name = file.display();
        match verify(file, key.as_ref()) {
            Ok(v) => {
                report(&name.to_string(), &v, file, out)?;
                incomplete |= !v.is_complete();
            }
            Err(VerifyError::Broken { line, reason }) => {
                tampered = true;
                writeln!(out, "{name}:{line}: {reason}")?;
            }
            Err(e) => {
                tampered = true;
                writeln!(out, "{name}: {e}")?;
            }
        }
    }
    // Tampering in any file outranks an incomplete check of another.
    Ok(match (tampered, incomplete) {
        (true, _) => 1,
        (false, true) => EXIT_INCOMPLETE,
        (false, false) => 0,
    })
}

fn report(
    name: &str,
    v: &Verified,
    file: &std::path::Path,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let key_id = v
        .key_id
        .as_deref()
        .map(|id| format!(", key id {id}"))
        .unwrap_or_default();
    let kind = match v.kind {
        Some(kind) => format!("{}{key_id}", kind.describe()),
        None => "empty".into(),
    };
    if !v.hashes_checked {
        writeln!(
            out,
            "{name}: {} events, {kind}: cannot check the keyed chain without its key ({KEY_ENV} or --key-file); sequence and links between lines intact",
            v.lines
        )?;
    } else {
        writeln!(out, "{name}: {} events, chain intact ({kind})", v.lines)?;
    }
    match v.seal {
        SealCheck::Matches { lines } if !v.ends_with_seal_line && v.lines > 0 => writeln!(
            out,
            "{name}: note: the seal file matches ({lines} lines sealed), but the log ends without a seal line: the proxy is still running, or was killed"
        ),
        SealCheck::Matches { lines } => {
            writeln!(out, "{name}: seal file matches ({lines} lines sealed)")
        }
        SealCheck::MacUnchecked { lines } => writeln!(
            out,
            "{name}: warning: the seal file counts {lines} lines, but its MAC cannot be checked without the key"
        ),
        SealCheck::Missing => {
            writeln!(
                out,
                "{name}: warning: no seal file ({}): lines cut from the end cannot be detected",
                seal_path(file).display()
            )?;
            if v.ends_with_seal_line || v.lines == 0 {
                Ok(())
            } else {
                writeln!(
                    out,
                    "{name}: warning: the log ends without a seal: it may have been cut, or the proxy was killed"
                )
            }
        }
    }
}
