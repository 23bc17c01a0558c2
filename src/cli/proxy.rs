//! The main job: `intercept -c policy.yaml [flags] -- CMD ARGS...`.

use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::audit::{AuditLog, AuditOptions, Retention};
use crate::engine::Engine;
use crate::policy;
use crate::proxy::{Session, SessionOptions};
use crate::shutdown::Shutdown;
use crate::state::{self, FailMode, MemoryStore, RedisOptions, RedisStore, SqliteStore, Store};
use crate::transport::child::{self, ChildOptions, ServerCommand};
use crate::transport::http::{self, RemoteOptions};
use crate::transport::listener::{Backend, UpstreamSpec};

const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Default, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub policy: super::policy_arg::PolicyArg,
    /// Where counters live: `sqlite` (persistent, shared by every intercept on this machine),
    /// `memory` (gone when intercept exits), `sqlite:PATH`, or a Redis DSN (see --state-dsn).
    #[arg(long, value_name = "STORE", default_value = "sqlite")]
    pub state: String,
    /// Directory of the SQLite counter file [default: ~/.intercept/state].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Keep counters in Redis, shared by every instance that uses it:
    /// redis://[user:pass@]host:port/db, rediss://… (TLS), unix:///path/to/socket, or
    /// redis+cluster://node:port for a Redis Cluster.
    /// Prefer the environment variable for a DSN with a password.
    #[arg(
        long,
        env = "INTERCEPT_STATE_DSN",
        value_name = "URL",
        hide_env_values = true
    )]
    pub state_dsn: Option<String>,
    /// With Redis: isolates this deployment's counters from others in the same Redis
    /// (it becomes the keys' hash tag) [default: intercept].
    #[arg(long, env = "INTERCEPT_STATE_PREFIX", value_name = "PREFIX")]
    pub state_prefix: Option<String>,
    /// While the state store is unavailable, calls that need it are denied (`closed`) or
    /// allowed without counting and logged as unenforced (`open`).
    #[arg(
        long,
        env = "INTERCEPT_STATE_FAIL_MODE",
        value_name = "MODE",
        default_value = "closed",
        value_parser = ["closed", "open"]
    )]
    pub state_fail_mode: String,
    /// Caller identity, for grants and identity-scoped counters.
    #[arg(long, env = "INTERCEPT_IDENTITY", value_name = "NAME")]
    pub identity: Option<String>,
    /// Log level on stderr: error, warn, info, debug or trace.
    #[arg(
        long,
        env = "INTERCEPT_LOG_LEVEL",
        value_name = "LEVEL",
        default_value = "info"
    )]
    pub log_level: String,
    /// Largest message accepted in either direction; longer ones get a JSON-RPC error.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// Seconds to wait at each shutdown step (stdin closed, then SIGTERM, then SIGKILL).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub shutdown_timeout: f64,
    /// Directory of the audit log, one file per instance [default: ~/.intercept/events].
    #[arg(long, env = "INTERCEPT_AUDIT_DIR", value_name = "DIR")]
    pub audit_dir: Option<PathBuf>,
    /// Write the audit log to this file instead (takes precedence over --audit-dir).
    #[arg(long, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
    /// Keep no audit log.
    #[arg(long, conflicts_with_all = ["audit_log", "audit_required", "log_args"])]
    pub no_audit: bool,
    /// Deny every tool call while the audit log cannot be written.
    #[arg(long)]
    pub audit_required: bool,
    /// Delete event files in the audit directory older than this (e.g. 7d, 12h; 0 keeps all).
    #[arg(long, value_name = "AGE", default_value = "7d")]
    pub audit_retention: String,
    /// Record tool arguments in the audit log (secrets redacted: see docs/audit.md).
    #[arg(long)]
    pub log_args: bool,
    /// Key the audit log's chain with the key in this file (mode 0600 or stricter), so it
    /// cannot be recomputed after an edit; or set INTERCEPT_AUDIT_KEY.
    #[arg(long, value_name = "PATH", conflicts_with = "no_audit")]
    pub audit_key_file: Option<PathBuf>,
    /// Seconds a request may wait for the server's answer before it gets an error.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    pub request_timeout: f64,
    /// Requests that may await the server's answer at once; a tool call beyond that is
    /// refused at once with an error, not forwarded and not counted.
    #[arg(long, value_name = "N", default_value_t = crate::proxy::DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Remote MCP server (Streamable HTTP or legacy SSE) instead of a command.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Header for requests to --upstream, as "Name: Value" (repeatable). Visible to every
    /// user of the machine in the process list: prefer --header-env for credentials.
    #[arg(long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Header for requests to --upstream, read from the environment variable NAME, whose
    /// value is one header line "Name: value" (repeatable; keeps credentials out of the
    /// process list).
    #[arg(long = "header-env", value_name = "NAME")]
    pub header_envs: Vec<String>,
    /// Do not reload the policy when its file changes.
    #[arg(long)]
    pub no_watch: bool,
    /// Enforce nothing: every call goes through, and what the policy would deny or hold
    /// is logged as shadow_deny (for trying a policy out on real traffic).
    #[arg(long)]
    pub shadow: bool,
    #[command(flatten)]
    pub listener: super::listener_args::ListenerArgs,
    #[command(flatten)]
    pub telemetry: super::telemetry_args::TelemetryArgs,
    /// The MCP server command and its arguments, after `--` (which may be left out when
    /// the policy comes from INTERCEPT_POLICY).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

impl Args {
    pub fn is_set(&self) -> bool {
        self.policy.file().is_some() || !self.command.is_empty() || self.upstream.is_some()
    }
}

/// Runs the proxy until the server exits or the client goes away; returns the exit code.
pub async fn run(args: Args, shutdown: Shutdown) -> anyhow::Result<i32> {
    init_logging(&args.log_level);
    let Some(config) = &args.policy.file() else {
        bail!(
            "a policy is required: intercept -c policy.yaml -- <server command> (or set {})",
            super::POLICY_ENV
        );
    };
    if args.upstream.is_some() && !args.command.is_empty() {
        bail!("cannot specify both an upstream command (after --) and --upstream URL");
    }
    if !args.headers.is_empty() && args.upstream.is_none() {
        bail!("--header requires --upstream");
    }
    if !args.header_envs.is_empty() && args.upstream.is_none() {
        bail!("--header-env requires --upstream");
    }
    // Read before anything starts, so a missing credential stops intercept at once.
    let mut headers = args.headers.clone();
    headers.extend(crate::transport::header::from_env_all(&args.header_envs)?);
    if args.command.is_empty() && args.upstream.is_none() {
        bail!(
            "specify the MCP server command after -- (or --upstream URL), e.g. intercept -c policy.yaml -- npx -y @modelcontextprotocol/server-everything"
        );
    }
    if !(args.shutdown_timeout.is_finite() && args.shutdown_timeout > 0.0) {
        bail!("--shutdown-timeout must be a positive number of seconds");
    }
    if !(args.request_timeout > 0.0 && Duration::try_from_secs_f64(args.request_timeout).is_ok()) {
        bail!("--request-timeout must be a positive number of seconds");
    }
    if args.max_in_flight == 0 {
        bail!("--max-in-flight must be at least 1");
    }
    let listener = args.listener.config()?;
    let telemetry = args.telemetry.start(args.log_args).await?;

    let loaded = policy::load_file_hashed(config)?;
    let fail_mode = FailMode::parse(&args.state_fail_mode).unwrap_or_default();
    let store = open_store(&args)?;
    check_store(&*store, fail_mode);
    let session = session_id();
    let audit_plan = plan_audit(&args, &session[..8])?;
    // Before the audit log is created: a start that fails for want of its server leaves no
    // empty log behind. (The flags above are checked first, whatever the command.)
    let server = match &args.upstream {
        Some(url) => Server::Remote(url.clone()),
        None => Server::Command(ServerCommand::locate(args.command.clone())?),
    };
    let audit = audit_plan.map(AuditPlan::open).transpose()?.flatten();
    tracing::info!(
        policy = %config.display(),
        state = %store.describe(),
        state_fail_mode = %fail_mode,
        "intercept {} starting",
        crate::VERSION
    );
    let reports = telemetry.telemetry.clone();
    if let Some(known) = reports.known_tools() {
        known.set_policy("default", &loaded.policy);
    }
    let engine = Engine::new(Arc::new(loaded.policy), store)
        .with_fail_mode(fail_mode)
        .with_shadow(args.shadow);
    if args.shadow {
        tracing::warn!("shadow mode: the policy is not enforced, only logged");
    }
    // Kept until the proxy returns; dropping it stops the watch. A reload racing with the
    // shutdown is harmless: its event is simply not written once the log is closed.
    let _watcher = if args.no_watch {
        None
    } else {
        match crate::reload::watch(
            config,
            engine.clone(),
            audit.clone(),
            loaded.sha256.clone(),
            reports.clone(),
        ) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("{e}; the policy will not be reloaded when it changes");
                None
            }
        }
    };
    let clock = engine.clock().clone();
    let proxy = Arc::new(
        Session::new(
            engine,
            SessionOptions {
                identity: args.identity.clone(),
                session: session.clone(),
                audit: audit.clone(),
                clock,
                telemetry: reports.clone(),
                ..SessionOptions::default()
            },
        )
        .with_max_in_flight(args.max_in_flight),
    );
    let snapshots = audit.as_ref().map(|audit| CounterSnapshots {
        proxy: proxy.clone(),
        audit: audit.clone(),
        identity: args.identity.clone(),
        session: session.clone(),
    });
    if let (Some(audit), Some(snapshots)) = (&audit, &snapshots) {
        tracing::info!(file = %audit.path().display(), "audit log");
        audit.record(
            "startup",
            serde_json::json!({
                "version": crate::VERSION,
                "pid": std::process::id(),
                "session": session,
                "identity": args.identity,
                "server": describe_server(&args),
                "policy": config.display().to_string(),
                "policy_sha256": loaded.sha256,
                // describe() never includes credentials.
                "state": proxy.engine().store().describe(),
                "state_fail_mode": fail_mode.as_str(),
                "log_args": audit.logs_args(),
                "audit_required": audit.is_required(),
            }),
        );
        if audit.is_required() {
            // Know now whether the log can be written, so the first call is decided right.
            let audit = audit.clone();
            let _ = tokio::task::spawn_blocking(move || audit.sync()).await;
        }
        tokio::spawn(snapshots.clone().every(COUNTER_SNAPSHOT_INTERVAL));
    }
    let served = match (server, listener) {
        (server, Some(listener)) => {
            let upstream = match server {
                Server::Remote(url) => UpstreamSpec::Url { url, headers },
                Server::Command(server) => UpstreamSpec::Command {
                    server,
                    env: Vec::new(),
                },
            };
            let backend = Backend {
                engine: proxy.engine().clone(),
                identity: args.identity.clone(),
                audit: audit.clone(),
                max_in_flight: args.max_in_flight,
                upstream,
                max_message_bytes: args.max_message_bytes,
                request_timeout: Duration::from_secs_f64(args.request_timeout),
                shutdown_timeout: Duration::from_secs_f64(args.shutdown_timeout),
                telemetry: reports.clone(),
            };
            crate::transport::listener::serve(listener, backend, shutdown.clone())
                .await
                .map_err(anyhow::Error::from)
        }
        (Server::Command(server), None) => {
            let options = ChildOptions {
                server,
                max_message_bytes: args.max_message_bytes,
                shutdown_timeout: Duration::from_secs_f64(args.shutdown_timeout),
                request_timeout: Duration::from_secs_f64(args.request_timeout),
            };
            child::serve(proxy, options, child::process_stdio(), shutdown)
                .await
                .map_err(anyhow::Error::from)
        }
        (Server::Remote(url), None) => {
            let remote = RemoteOptions {
                url,
                headers,
                max_message_bytes: args.max_message_bytes,
                request_timeout: Duration::from_secs_f64(args.request_timeout),
                connect_timeout: Duration::from_secs(10),
            };
            http::serve(proxy, remote, child::process_stdio(), shutdown)
                .await
                .map_err(anyhow::Error::from)
        }
    };
    telemetry.stop().await;
    let code = match served {
        Ok(code) => code,
        Err(e) => {
            // The server could not be reached or started (a `#!` interpreter that is missing,
            // a bad URL): the log keeps its `startup` event and says why it ends, rather than
            // losing what was queued.
            if let Some(audit) = &audit {
                audit.record(
                    "shutdown",
                    serde_json::json!({
                        "exit_code": super::EXIT_USAGE,
                        "error": crate::redact::redact_text(&e.to_string()),
                    }),
                );
                let audit = audit.clone();
                let _ = tokio::task::spawn_blocking(move || audit.close()).await;
            }
            return Err(e);
        }
    };
    if let (Some(audit), Some(snapshots)) = (&audit, &snapshots) {
        snapshots.record().await;
        audit.record("shutdown", serde_json::json!({ "exit_code": code }));
        let audit = audit.clone();
        let _ = tokio::task::spawn_blocking(move || audit.close()).await;
    }
    Ok(code)
}

/// What intercept stands in front of.
enum Server {
    /// A command it starts, speaking stdio.
    Command(ServerCommand),
    /// A remote server's URL (`--upstream`).
    Remote(String),
}

/// How often the value of every counter goes into the audit log.
const COUNTER_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(60);

/// Where the audit log goes and how it is written, decided (its flags and key checked)
/// before anything is created.
struct AuditPlan {
    path: PathBuf,
    instance: String,
    options: AuditOptions,
    /// The log was asked for: failing to open it stops intercept.
    must: bool,
}

/// The audit log, on unless `--no-audit`: `--audit-log PATH`, or `<DIR>/<instance>.jsonl`
/// with `--audit-dir DIR` (default `~/.intercept/events`). If the default place cannot be
/// used, intercept runs without a log and says so, unless the log was asked for
/// explicitly or is required.
fn plan_audit(args: &Args, instance: &str) -> anyhow::Result<Option<AuditPlan>> {
    if args.no_audit {
        return Ok(None);
    }
    let max_age =
        crate::audit::retention::parse_duration(&args.audit_retention).with_context(|| {
            format!(
                "invalid --audit-retention \"{}\": use e.g. 7d, 12h or 0",
                args.audit_retention
            )
        })?;
    // Read before anything starts: an unusable key stops intercept, whatever else is set.
    let key =
        crate::audit::AuditKey::configured(args.audit_key_file.as_deref(), "--audit-key-file")?;
    let explicit = args.audit_log.is_some() || args.audit_dir.is_some();
    let must = explicit || args.audit_required || args.log_args || key.is_some();
    let dir = match (&args.audit_log, &args.audit_dir) {
        (Some(_), _) => None,
        (None, Some(dir)) => Some(dir.clone()),
        (None, None) => home_dir().map(|h| h.join(".intercept").join("events")),
    };
    let path = match (&args.audit_log, &dir) {
        (Some(path), _) => path.clone(),
        (None, Some(dir)) => dir.join(format!("{instance}.jsonl")),
        (None, None) if must => {
            bail!("cannot find the home directory for the audit log; pass --audit-dir")
        }
        (None, None) => {
            tracing::warn!(
                "cannot find the home directory: running without an audit log (--audit-dir DIR to keep one, --no-audit to silence this)"
            );
            return Ok(None);
        }
    };
    // Only a directory of per-instance files is pruned, never the directory of a file
    // named with --audit-log.
    let retention = dir
        .filter(|_| !max_age.is_zero())
        .map(|dir| Retention { dir, max_age });
    let options = AuditOptions {
        log_args: args.log_args,
        required: args.audit_required,
        retention,
        key,
    };
    Ok(Some(AuditPlan {
        path,
        instance: instance.to_string(),
        options,
        must,
    }))
}

impl AuditPlan {
    /// Creates (or continues) the log.
    fn open(self) -> anyhow::Result<Option<Arc<AuditLog>>> {
        match AuditLog::open_with(&self.path, &self.instance, self.options) {
            Ok(log) => Ok(Some(Arc::new(log))),
            Err(e) if self.must => Err(e.into()),
            Err(e) => {
                tracing::warn!(
                    "{e}: running without an audit log (--audit-dir DIR to keep one elsewhere, --no-audit to silence this)"
                );
                Ok(None)
            }
        }
    }
}

/// The server as the audit log names it: the command line, or the URL, redacted.
fn describe_server(args: &Args) -> String {
    match &args.upstream {
        Some(url) => crate::redact::redact_text(url).into_owned(),
        None => crate::redact::redact_command(&args.command),
    }
}

/// What a counter snapshot reads: the counters as this instance's caller sees them.
#[derive(Debug, Clone)]
struct CounterSnapshots {
    proxy: Arc<Session>,
    audit: Arc<AuditLog>,
    identity: Option<String>,
    session: String,
}

impl CounterSnapshots {
    /// Records the value of every counter the policy declares, every `interval`.
    async fn every(self, interval: Duration) {
        let start = tokio::time::Instant::now() + interval;
        let mut ticks = tokio::time::interval_at(start, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.record().await;
        }
    }

    async fn record(&self) {
        let this = self.clone();
        // The store may be a database: read it off the async threads.
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(fields) = crate::audit::counter_snapshot(
                this.proxy.engine(),
                this.identity.as_deref(),
                Some(&this.session),
            ) {
                this.audit.record("counters", fields);
            }
        })
        .await;
    }
}

fn open_store(args: &Args) -> anyhow::Result<Arc<dyn Store>> {
    let dsn = args
        .state_dsn
        .as_deref()
        .or_else(|| state::redis::dsn::is_redis_dsn(&args.state).then_some(args.state.as_str()));
    if let Some(dsn) = dsn {
        let options = RedisOptions {
            prefix: args
                .state_prefix
                .clone()
                .unwrap_or_else(|| state::redis::DEFAULT_PREFIX.to_string()),
            ..RedisOptions::default()
        };
        return Ok(Arc::new(RedisStore::open(dsn, &options)?));
    }
    if args.state_prefix.is_some() {
        bail!(
            "--state-prefix applies to the Redis store (--state-dsn); for SQLite, use another file with --state-dir or --state sqlite:PATH"
        );
    }
    Ok(match args.state.as_str() {
        "memory" => Arc::new(MemoryStore::new()),
        "sqlite" => {
            let dir = match &args.state_dir {
                Some(d) => d.clone(),
                None => home_dir()
                    .context("cannot find the home directory; pass --state-dir")?
                    .join(".intercept")
                    .join("state"),
            };
            Arc::new(SqliteStore::open(&dir.join("intercept.sqlite"))?)
        }
        other => Arc::from(state::open(other)?),
    })
}

/// A store that cannot be used at start-up is not fatal: it is treated like one that
/// fails later, by the fail mode, and used as soon as it answers.
fn check_store(store: &dyn Store, fail_mode: FailMode) {
    if let Err(e) = store.check() {
        match fail_mode {
            FailMode::Closed => tracing::warn!(
                "{e}; calls that need counters are denied until it answers (--state-fail-mode closed)"
            ),
            FailMode::Open => tracing::warn!(
                "{e}; calls that need counters are allowed without them until it answers (--state-fail-mode open)"
            ),
        }
    }
}

pub(super) fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// A random id for this client connection (session-scoped counters).
fn session_id() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// Logs go to stderr only (stdout belongs to MCP), redacted.
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("intercept={level}"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("intercept=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::redact::RedactedStderr)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_named_without_secrets() {
        let args = |command: &[&str], upstream: Option<&str>| Args {
            command: command.iter().map(|s| s.to_string()).collect(),
            upstream: upstream.map(str::to_string),
            ..Default::default()
        };
        assert_eq!(
            describe_server(&args(
                &[
                    "npx",
                    "server",
                    "--api-key",
                    "k1",
                    "--token=t1",
                    "--port",
                    "80",
                    "postgres://u:DBPASS@h/db"
                ],
                None
            )),
            "npx server --api-key [REDACTED] --token=[REDACTED] --port 80 postgres://u:[REDACTED]@h/db"
        );
        assert_eq!(
            describe_server(&args(&[], Some("https://u:p@mcp.example.com/mcp?key=s#x"))),
            "https://u:[REDACTED]@mcp.example.com/mcp?key=[REDACTED]#x"
        );
    }
}
