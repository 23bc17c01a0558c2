//! The `intercept` command line, shared by the native binary and the npm launcher.

mod audit;
mod check;
mod completions;
mod init;
mod listener_args;
mod output;
mod policy_arg;
mod proxy;
mod replay;
mod scan;
mod schema;
mod separator;
mod status;
mod telemetry_args;
mod validate;

use std::ffi::OsString;
use std::io::Write;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::shutdown::Shutdown;

/// Exit code for a usage error or an unusable policy.
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "intercept",
    version = crate::VERSION,
    about = "Policy enforcement for MCP tool calls: allow, deny, rate-limit and audit every call an agent makes.",
    override_usage = "intercept -c policy.yaml [OPTIONS] -- <SERVER COMMAND>...\n       intercept <COMMAND> [OPTIONS]",
    after_help = "Examples:\n  intercept -c policy.yaml -- npx -y @modelcontextprotocol/server-github\n  intercept validate -c policy.yaml\n  intercept check -c policy.yaml --tool create_issue --args '{\"title\":\"x\"}'\n  INTERCEPT_POLICY=policy.yaml intercept node server.js   # for launchers that keep `--` for themselves"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    proxy: proxy::Args,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check policy files, or a gateway file, and print every error with its line and column.
    Validate(validate::Args),
    /// Dry-run one tool call against a policy and print the decision.
    Check(check::Args),
    /// Work with audit logs.
    #[command(subcommand)]
    Audit(audit::Command),
    /// List a server's tools, classify them by risk, and write a policy for them.
    Scan(scan::Args),
    /// Put the MCP servers of Claude Code, Claude Desktop, Cursor, VS Code and Windsurf behind intercept.
    Init(init::Args),
    /// Re-evaluate recorded calls (audit logs kept with --log-args) against a candidate
    /// policy and show which decisions would change.
    Replay(replay::Args),
    /// Summarise the audit log: instances, totals, top deny rules, recent denials.
    Status(status::Args),
    /// Print a shell completion script (bash, zsh, fish, powershell or elvish).
    Completions(completions::Args),
    /// Print the JSON Schema of the policy file, for editors.
    Schema(schema::Args),
}

pub use policy_arg::POLICY_ENV;

/// The command line as clap knows it. Environment values are never shown in help: an unset
/// variable would read `[env: NAME=]`, and a set one may hold a secret.
pub(crate) fn command() -> clap::Command {
    fn hide_env_values(cmd: clap::Command) -> clap::Command {
        cmd.mut_args(|arg| {
            if arg.get_env().is_some() {
                arg.hide_env_values(true)
            } else {
                arg
            }
        })
        .mut_subcommands(hide_env_values)
    }
    hide_env_values(Cli::command())
}

/// Runs the command line and returns the process exit code (the native binary's entry).
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match parse(args, out, err) {
        Parsed::Exit(code) => code,
        Parsed::Command(cmd) => run_command(cmd, out, err),
        Parsed::Proxy(args) => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = writeln!(err, "Error: cannot start the async runtime: {e}");
                    return EXIT_USAGE;
                }
            };
            let shutdown = Shutdown::new();
            let code = runtime.block_on(async {
                forward_signals_to_shutdown(&shutdown);
                finish(proxy::run(*args, shutdown.clone()).await, err)
            });
            // The stdin reader may be parked in a blocking read; do not wait for it.
            runtime.shutdown_background();
            code
        }
    }
}

/// The same, for a caller that already runs an async runtime (the Node addon). Signals
/// are left to the caller, which calls [`Shutdown::request`] on `shutdown`.
pub async fn run_async(args: Vec<String>, shutdown: Shutdown) -> i32 {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    match parse(args, &mut out, &mut err) {
        Parsed::Exit(code) => code,
        Parsed::Command(cmd) => run_command_until_shutdown(cmd, &shutdown).await,
        Parsed::Proxy(args) => finish(proxy::run(*args, shutdown).await, &mut err),
    }
}

/// Runs a command other than the proxy on a thread of its own and returns its exit code,
/// or, as soon as a shutdown is requested, `128 + signal` without waiting for it.
///
/// In the native binary a signal simply ends such a command. Inside Node the launcher owns
/// the signals and only asks for a shutdown, which the proxy obeys but `validate`, `scan`
/// or `replay` know nothing of: a command reading a policy from a pipe, or a server that
/// never answers, would keep the process alive after SIGTERM. The thread left behind holds
/// nothing that needs closing; it ends with the process, as it would on the signal.
async fn run_command_until_shutdown(cmd: Command, shutdown: &Shutdown) -> i32 {
    let (done, finished) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("intercept-command".into())
        .spawn(move || {
            let code = run_command(cmd, &mut std::io::stdout(), &mut std::io::stderr());
            let _ = done.send(code);
        });
    if let Err(e) = spawned {
        let _ = writeln!(std::io::stderr(), "Error: cannot start the command: {e}");
        return EXIT_USAGE;
    }
    tokio::select! {
        // A command that panicked dropped its sender: report it like any failed command.
        code = finished => code.unwrap_or(EXIT_USAGE),
        () = shutdown.requested() => shutdown.exit_code(),
    }
}

enum Parsed {
    Exit(i32),
    Command(Command),
    Proxy(Box<proxy::Args>),
}

fn parse<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> Parsed
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = command();
    if args.len() <= 1 {
        // Bare `intercept` is a request for help, not a mistake.
        let help = cmd.render_help().to_string();
        let _ = writeln!(out, "{help}");
        return Parsed::Exit(0);
    }
    if let Some(found) = separator::command_without_separator(&mut cmd, &args) {
        if found.policy_given {
            let _ = writeln!(
                err,
                "Error: the server command must follow `--`, so that its arguments are never read as intercept's: {}",
                separator::suggestion(&args, found.at)
            );
            return Parsed::Exit(EXIT_USAGE);
        }
        if policy_arg::from_env().is_some() {
            // A launcher that consumes `--` itself (the MCP Inspector CLI) can only hand us
            // the command directly; the policy then comes from the environment.
            args.insert(found.at, "--".into());
        }
    }
    match cmd
        .try_get_matches_from_mut(args)
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m))
    {
        Ok(Cli {
            command: Some(cmd), ..
        }) => Parsed::Command(cmd),
        Ok(Cli {
            command: None,
            proxy,
        }) if proxy.is_set() => Parsed::Proxy(Box::new(proxy)),
        Ok(Cli { command: None, .. }) => {
            let help = cmd.render_help().to_string();
            let _ = writeln!(out, "{help}");
            Parsed::Exit(0)
        }
        Err(e) => {
            let to_stdout = !e.use_stderr();
            let text = e.render().to_string();
            let _ = if to_stdout {
                out.write_all(text.as_bytes())
            } else {
                err.write_all(text.as_bytes())
            };
            Parsed::Exit(if to_stdout { 0 } else { EXIT_USAGE })
        }
    }
}

fn run_command(cmd: Command, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    // A reader that goes away (`intercept validate --json … | head -c1`) is not an error:
    // the command finishes with its own exit status, its remaining output dropped.
    let out = &mut output::UntilClosed::new(out);
    let err = &mut output::UntilClosed::new(err);
    let result = match cmd {
        Command::Validate(args) => validate::run(&args, out, err),
        Command::Check(args) => check::run(&args, out, err),
        Command::Audit(cmd) => audit::run(&cmd, out),
        Command::Scan(args) => scan::run(&args, out, err),
        Command::Init(args) => init::run(&args, out, err),
        Command::Replay(args) => replay::run(&args, out, err),
        Command::Status(args) => status::run(&args, out),
        Command::Completions(args) => completions::run(&args, out),
        Command::Schema(args) => schema::run(&args, out),
    };
    finish(result, err)
}

fn finish(result: anyhow::Result<i32>, err: &mut dyn Write) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            // An error may quote a URL, a header or a command line.
            let _ = writeln!(
                err,
                "Error: {}",
                crate::redact::redact_text(&format!("{e:#}"))
            );
            EXIT_USAGE
        }
    }
}

/// In the native binary, SIGINT, SIGTERM and SIGHUP run the same shutdown as the client
/// going away. (Never inside Node: its own handlers would loop with ours.)
fn forward_signals_to_shutdown(shutdown: &Shutdown) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        for kind in [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
        ] {
            if let Ok(mut s) = signal(kind) {
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        shutdown.request(None);
                    }
                });
            }
        }
    }
    #[cfg(not(unix))]
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                shutdown.request(None);
            }
        });
    }
}
