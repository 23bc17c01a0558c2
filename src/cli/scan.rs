//! `intercept scan`: list a server's tools, classify them, and write a policy scaffold.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::scan::{self, Target, scaffold};
use crate::transport::header;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  intercept scan -- npx -y @modelcontextprotocol/server-filesystem ~/project\n  intercept scan -o github.yaml -- npx -y @modelcontextprotocol/server-github\n  intercept scan --upstream https://mcp.example.com/mcp --header-env API_AUTH   # API_AUTH=\"Authorization: Bearer <token>\"\n  intercept scan --format json -- uvx mcp-server-time"
)]
pub struct Args {
    /// Write the result to this file (parent directories are created) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// `yaml`: a policy scaffold; `json`: the classified tool list.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Yaml)]
    pub format: Format,
    /// Give up after this long (e.g. 30s, 2m; plain numbers are seconds).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Write an allowlist (`default: deny`) with destructive tools denied.
    #[arg(long)]
    pub strict: bool,
    /// Remote MCP server (Streamable HTTP or legacy SSE) instead of a command.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Header for requests to --upstream, as "Name: Value" (repeatable). Visible to every
    /// user of the machine in the process list: prefer --header-env for credentials.
    #[arg(long = "header", value_name = "HEADER", requires = "upstream")]
    pub headers: Vec<String>,
    /// Header for requests to --upstream, read from the environment variable NAME, whose
    /// value is one header line "Name: value" (repeatable; keeps credentials out of the
    /// process list).
    #[arg(long = "header-env", value_name = "NAME", requires = "upstream")]
    pub header_envs: Vec<String>,
    /// Record this package in the header, e.g. "npm @scope/name@1.2.3".
    #[arg(long, value_name = "SPEC")]
    pub package: Option<String>,
    /// Show this command in the header instead of the one that was run.
    #[arg(long, value_name = "COMMAND")]
    pub display_command: Option<String>,
    /// Do not print progress on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// The MCP server command and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// What `intercept scan` prints (told apart in the option's help).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

/// Parses `30s`, `2m`, `1h`, `500ms` or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: use e.g. 30s, 2m or 500ms"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit {unit:?}: use ms, s, m or h")),
    };
    if !(secs.is_finite() && secs > 0.0 && secs < 1e7) {
        return Err(format!("invalid duration {s:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl Args {
    pub fn target(&self) -> anyhow::Result<Target> {
        match (&self.upstream, self.command.is_empty()) {
            (Some(_), false) => bail!("give either a command after -- or --upstream URL, not both"),
            (Some(url), true) => {
                // As the proxy: a `--header-env` header replaces a `--header` of the same name.
                let mut headers = self.headers.clone();
                headers.extend(header::from_env_all(&self.header_envs)?);
                Ok(Target::Url {
                    url: url.clone(),
                    headers,
                })
            }
            (None, false) => Ok(Target::Command(self.command.clone())),
            (None, true) => bail!(
                "nothing to scan: give the server command after -- (intercept scan -- npx -y <server>) or --upstream URL"
            ),
        }
    }
}

/// Runs a future to completion from synchronous code, inside or outside a runtime.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => Ok(tokio::task::block_in_place(|| handle.block_on(future))),
        Err(_) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            Ok(rt.block_on(future))
        }
    }
}

pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let target = args.target()?;
    let quiet = args.quiet;
    let progress = move |line: &str| {
        if !quiet {
            eprintln!("intercept scan: {}", crate::redact::redact_text(line));
        }
    };
    let options = scan::ScanOptions {
        timeout: args.timeout,
        env: Vec::new(),
    };
    let discovery = match block_on(scan::discover(&target, &options, &progress))? {
        Ok(d) => d,
        Err(e) => {
            // The server's own stderr is quoted: it may hold what it was given.
            writeln!(err, "Error: {}", crate::redact::redact_text(&e.to_string()))?;
            return Ok(1);
        }
    };
    let tools = scan::classify_all(&discovery.tools);
    let meta = scaffold::Meta {
        command: args
            .display_command
            .clone()
            .unwrap_or_else(|| match &target {
                Target::Command(c) => crate::shell_words::join(c),
                Target::Url { url, .. } => url.clone(),
            }),
        package: args.package.clone(),
        scanned_at: now_seconds(),
        strict: args.strict,
    };
    let text = if args.format == Format::Json {
        let mut s = serde_json::to_string_pretty(&scaffold::tools_json(&discovery, &tools, &meta))?;
        s.push('\n');
        s
    } else {
        scaffold::policy_yaml(&discovery, &tools, &meta)
    };
    match &args.output {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            if !quiet {
                writeln!(
                    err,
                    "intercept scan: wrote {} ({} tools)",
                    path.display(),
                    tools.len()
                )?;
            }
        }
        None => out.write_all(text.as_bytes())?,
    }
    Ok(0)
}

/// RFC 3339 UTC to the second.
pub(crate) fn now_seconds() -> String {
    let t = crate::audit::now_rfc3339();
    format!("{}Z", &t[..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("3 days").is_err());
    }
}
