//! The `intercept` command line, shared by the native binary and the npm launcher.

mod check;
mod validate;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Exit code for a usage error or an unusable policy.
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "intercept",
    version = crate::VERSION,
    about = "Policy enforcement for MCP tool calls: allow, deny, rate-limit and audit every call an agent makes.",
    after_help = "Examples:\n  intercept validate -c policy.yaml\n  intercept check -c policy.yaml --tool create_issue --args '{\"title\":\"x\"}'"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check policy files and print every error with its line and column.
    Validate(validate::Args),
    /// Dry-run one tool call against a policy and print the decision.
    Check(check::Args),
}

/// A policy file argument shared by the subcommands.
#[derive(Debug, clap::Args)]
struct PolicyArg {
    /// Policy file (YAML).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: PathBuf,
}

/// Runs the command line and returns the process exit code.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if args.len() <= 1 {
        // Bare `intercept` is a request for help, not a mistake.
        let help = <Cli as clap::CommandFactory>::command()
            .render_help()
            .to_string();
        let _ = writeln!(out, "{help}");
        return 0;
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let to_stdout = !e.use_stderr();
            let text = e.render().to_string();
            let _ = if to_stdout {
                out.write_all(text.as_bytes())
            } else {
                err.write_all(text.as_bytes())
            };
            return if to_stdout { 0 } else { EXIT_USAGE };
        }
    };
    let result = match cli.command {
        Command::Validate(args) => validate::run(&args, out, err),
        Command::Check(args) => check::run(&args, out, err),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "Error: {e:#}");
            EXIT_USAGE
        }
    }
}
