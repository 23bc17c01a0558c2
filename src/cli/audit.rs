//! `intercept audit verify FILE...`: checks the chain of event files.

use std::io::Write;
use std::path::PathBuf;

use crate::audit::{VerifyError, verify};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check that no line of an event file was changed, removed or inserted.
    Verify {
        /// Event files (`~/.intercept/events/*.jsonl`).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

pub fn run(cmd: &Command, out: &mut dyn Write) -> anyhow::Result<i32> {
    let Command::Verify { files } = cmd;
    let mut broken = 0;
    for file in files {
        let name = file.display();
        match verify(file) {
            Ok(n) => writeln!(out, "{name}: {n} events, chain intact")?,
            Err(VerifyError::Broken { line, reason }) => {
                broken += 1;
                writeln!(out, "{name}:{line}: {reason}")?;
            }
            Err(e) => {
                broken += 1;
                writeln!(out, "{name}: {e}")?;
            }
        }
    }
    Ok(if broken == 0 { 0 } else { 1 })
}
