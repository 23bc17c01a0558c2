//! napi-rs bindings behind `require('@policylayer/intercept')`: conversions only, no logic.
//!
//! `api.js` wraps them: it checks every argument and option (types, unknown keys) before
//! they reach this layer, so the conversions here can stay on the fast path.

mod errors;
mod source;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::Value;

use crate::engine::{self, Args, Call, Decision as EngineDecision};
use crate::policy::{self, CompiledPolicy, LoadError};
use crate::state::{self, FailMode, RedisOptions, Reservation};
use errors::{Failure, ValidationError, code};
use source::Source;

/// Reservations not committed or rolled back within this many newer ones are treated as
/// committed and forgotten, so a caller that never settles them cannot grow memory.
const MAX_PENDING: usize = 100_000;

#[napi(object)]
#[derive(Debug)]
pub struct EngineOptions {
    /// The policy as YAML text.
    pub policy: Option<String>,
    /// Path of a policy file.
    pub policy_file: Option<String>,
    /// `memory` (default), `sqlite:PATH`, or a Redis DSN (`redis://…`, `rediss://…`,
    /// `unix://…`) shared with other processes and proxies.
    pub state: Option<String>,
    /// With Redis: the deployment's key prefix (default `intercept`).
    pub state_prefix: Option<String>,
    /// `closed` (default): calls that need an unavailable store are denied; `open`: they
    /// are allowed, marked `unenforced`.
    pub state_fail_mode: Option<String>,
    /// Default identity for calls that name none.
    pub identity: Option<String>,
    /// Default session for calls that name none.
    pub session: Option<String>,
}

#[napi(object)]
#[derive(Debug)]
pub struct ToolCall {
    pub tool: String,
    pub args: Option<Value>,
    pub identity: Option<String>,
    pub session: Option<String>,
    pub client_name: Option<String>,
}

#[napi(object)]
#[derive(Debug)]
pub struct Decision {
    /// `allow`, `deny`, `require_approval` or `shadow_deny` (a `mode: shadow` rule would
    /// have denied or held the call; it may go ahead).
    pub decision: String,
    /// Why: `rule`, `default_allow`, `listed`, `hidden`, `default_deny`, `not_granted`,
    /// `rate_limit`, `budget`, `invalid_arguments` or `state_unavailable`.
    pub reason: String,
    pub tool: String,
    pub rule: Option<String>,
    pub message: Option<String>,
    pub retry_after_seconds: Option<u32>,
    pub approval_timeout_seconds: Option<u32>,
    /// Handle of the counters this call reserved; pass the decision to `commit` or `rollback`.
    pub reservation: Option<i64>,
    /// Allowed without checking or counting its limits, because the state store was
    /// unavailable and the fail mode is open: why.
    pub unenforced: Option<String>,
}

#[napi(object)]
#[derive(Debug)]
pub struct ValidationResult {
    pub valid: bool,
    pub errors: Vec<ValidationError>,
}

/// Reads and compiles a policy.
fn load(source: Source<'_>) -> std::result::Result<CompiledPolicy, Failure> {
    source
        .read()
        .and_then(|(text, origin)| policy::parse(&text, &origin))
        .map_err(|e| Failure::load(e, &source))
}

/// A compiled policy with its counter store, for evaluating calls in-process.
#[napi]
#[derive(Debug)]
pub struct Engine {
    inner: engine::Engine,
    identity: Option<String>,
    session: Option<String>,
    /// Shared with the tasks of the async methods.
    pending: Arc<Pending>,
}

/// Reservations handed to JavaScript and not yet settled, by handle.
#[derive(Debug)]
struct Pending {
    reservations: Mutex<HashMap<i64, Reservation>>,
    next_id: AtomicI64,
}

impl Pending {
    /// Keeps a decision's reservation and gives JavaScript the decision with its handle.
    fn hand_out(&self, call: &ToolCall, d: EngineDecision) -> Decision {
        let id = d
            .reservation
            .is_some()
            .then(|| self.next_id.fetch_add(1, Ordering::Relaxed));
        let out = to_js(&call.tool, &d, id);
        if let (Some(id), Some(r)) = (id, d.reservation) {
            let mut pending = self.reservations.lock().unwrap_or_else(|p| p.into_inner());
            if pending.len() >= MAX_PENDING {
                pending.retain(|k, _| *k > id - MAX_PENDING as i64 / 2);
            }
            pending.insert(id, r);
        }
        out
    }

    fn take(&self, id: i64) -> Option<Reservation> {
        self.reservations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
    }
}

fn evaluate_call(
    inner: &engine::Engine,
    call: &ToolCall,
    identity: Option<&str>,
    session: Option<&str>,
) -> EngineDecision {
    inner.evaluate(&Call {
        tool: &call.tool,
        args: call.args.as_ref().map(Args::Value),
        identity: call.identity.as_deref().or(identity),
        session: call.session.as_deref().or(session),
        client_name: call.client_name.as_deref(),
    })
}

/// `evaluateAsync`: evaluates on libuv's thread pool, so a remote store's round trip
/// never blocks the JavaScript thread.
#[derive(Debug)]
pub struct EvaluateTask {
    inner: engine::Engine,
    call: Option<ToolCall>,
    identity: Option<String>,
    session: Option<String>,
    pending: Arc<Pending>,
}

impl Task for EvaluateTask {
    type Output = Decision;
    type JsValue = Decision;

    fn compute(&mut self) -> Result<Decision> {
        let call = self
            .call
            .take()
            .ok_or_else(|| Error::new(Status::GenericFailure, "evaluated twice"))?;
        let d = evaluate_call(
            &self.inner,
            &call,
            self.identity.as_deref(),
            self.session.as_deref(),
        );
        Ok(self.pending.hand_out(&call, d))
    }

    fn resolve(&mut self, _env: Env, output: Decision) -> Result<Decision> {
        Ok(output)
    }
}

/// `commitAsync` / `rollbackAsync`: settles on libuv's thread pool.
#[derive(Debug)]
pub struct SettleTask {
    inner: engine::Engine,
    reservation: Option<Reservation>,
    keep: bool,
    /// Why settling failed, kept for `reject`: the error `compute` returns holds text only.
    failure: Option<Failure>,
}

/// Keeps (`commit`) or gives back (`rollback`) a reservation; `false` if there was none.
fn settle(
    inner: &engine::Engine,
    reservation: Option<Reservation>,
    keep: bool,
) -> std::result::Result<bool, Failure> {
    match reservation {
        Some(r) if keep => inner.commit(&r).map(|_| true).map_err(Failure::store),
        Some(r) => inner.rollback(&r).map(|_| true).map_err(Failure::store),
        None => Ok(false),
    }
}

impl Task for SettleTask {
    type Output = bool;
    type JsValue = bool;

    fn compute(&mut self) -> Result<bool> {
        settle(&self.inner, self.reservation.take(), self.keep).map_err(|f| {
            let error = Error::new(Status::GenericFailure, f.message.clone());
            self.failure = Some(f);
            error
        })
    }

    fn resolve(&mut self, _env: Env, output: bool) -> Result<bool> {
        Ok(output)
    }

    /// The failure `compute` kept, with its code; the store's, had it kept none.
    fn reject(&mut self, env: Env, err: Error) -> Result<bool> {
        let failure = self
            .failure
            .take()
            .unwrap_or_else(|| Failure::new(code::STATE_UNAVAILABLE, err.reason));
        Err(failure.into_js(&env))
    }
}

#[napi]
impl Engine {
    /// Throws an Error listing every validation error if the policy is invalid.
    #[napi(constructor)]
    pub fn new(env: Env, options: EngineOptions) -> Result<Self> {
        Self::open(options).map_err(|f| f.into_js(&env))
    }

    fn open(options: EngineOptions) -> std::result::Result<Self, Failure> {
        let source = match (&options.policy, &options.policy_file) {
            (Some(text), None) => Source::text(text, "options.policy"),
            (None, Some(path)) => Source::path(path, "options.policyFile"),
            _ => {
                return Err(Failure::new(
                    code::INVALID_ARGUMENT,
                    "pass exactly one of options.policy (YAML text) and options.policyFile (a path)",
                ));
            }
        };
        let compiled = load(source)?;
        let fail_mode = match options.state_fail_mode.as_deref() {
            None => FailMode::Closed,
            Some(m) => FailMode::parse(m).ok_or_else(|| {
                Failure::new(
                    code::INVALID_ARGUMENT,
                    format!("options.stateFailMode must be \"closed\" or \"open\", got \"{m}\""),
                )
            })?,
        };
        let redis = RedisOptions {
            prefix: options
                .state_prefix
                .clone()
                .unwrap_or_else(|| state::redis::DEFAULT_PREFIX.to_string()),
            ..RedisOptions::default()
        };
        let store = state::open_with(options.state.as_deref().unwrap_or("memory"), &redis)
            .map_err(Failure::store)?;
        Ok(Engine {
            inner: engine::Engine::new(Arc::new(compiled), Arc::from(store))
                .with_fail_mode(fail_mode),
            identity: options.identity,
            session: options.session,
            pending: Arc::new(Pending {
                reservations: Mutex::new(HashMap::new()),
                next_id: AtomicI64::new(1),
            }),
        })
    }

    /// Evaluates one tool call. Allowed calls reserve their counters: settle them with
    /// `commit(decision)` when the tool ran, or `rollback(decision)` when it failed.
    #[napi]
    pub fn evaluate(&self, call: ToolCall) -> Decision {
        let d = evaluate_call(
            &self.inner,
            &call,
            self.identity.as_deref(),
            self.session.as_deref(),
        );
        self.pending.hand_out(&call, d)
    }

    /// `evaluate`, off the JavaScript thread: for remote (Redis) stores, whose round trip
    /// should not block the event loop.
    #[napi(ts_return_type = "Promise<Decision>")]
    pub fn evaluate_async(&self, call: ToolCall) -> AsyncTask<EvaluateTask> {
        AsyncTask::new(EvaluateTask {
            inner: self.inner.clone(),
            call: Some(call),
            identity: self.identity.clone(),
            session: self.session.clone(),
            pending: self.pending.clone(),
        })
    }

    /// `commit`, off the JavaScript thread.
    #[napi(
        ts_args_type = "decision: Decision",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn commit_async(&self, decision: Object) -> Result<AsyncTask<SettleTask>> {
        self.settle_task(&decision, true)
    }

    /// `rollback`, off the JavaScript thread.
    #[napi(
        ts_args_type = "decision: Decision",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn rollback_async(&self, decision: Object) -> Result<AsyncTask<SettleTask>> {
        self.settle_task(&decision, false)
    }

    /// The tool ran: keep the reservation. Returns false if there was nothing to settle.
    #[napi(ts_args_type = "decision: Decision")]
    pub fn commit(&self, env: Env, decision: Object) -> Result<bool> {
        settle(&self.inner, self.take(&decision)?, true).map_err(|f| f.into_js(&env))
    }

    /// The tool failed: give the quota back. Returns false if there was nothing to settle.
    #[napi(ts_args_type = "decision: Decision")]
    pub fn rollback(&self, env: Env, decision: Object) -> Result<bool> {
        settle(&self.inner, self.take(&decision)?, false).map_err(|f| f.into_js(&env))
    }

    /// Puts a new policy (YAML text or a file path) in force for every later call; counters
    /// are kept. Throws, listing every error, and keeps the policy in force if it is invalid.
    #[napi]
    pub fn reload(&self, env: Env, policy_or_path: String) -> Result<()> {
        let compiled = load(Source::text_or_path(
            &policy_or_path,
            "engine.reload(policyOrPath)",
        ))
        .map_err(|f| f.into_js(&env))?;
        self.inner.replace_policy(Arc::new(compiled));
        Ok(())
    }

    /// Which of these tool names `tools/list` should show (to `identity`, or the engine's
    /// default identity): not hidden, granted, and listed under `default: deny`. One policy
    /// decides them all, even if a reload lands meanwhile. Only names cross into Rust, so
    /// the tools themselves (and their schemas) are never converted.
    #[napi]
    pub fn visible_tools(&self, names: Vec<String>, identity: Option<String>) -> Vec<bool> {
        let identity = identity.as_deref().or(self.identity.as_deref());
        let policy = self.inner.snapshot();
        names
            .iter()
            .map(|name| policy.is_visible(name, identity))
            .collect()
    }

    /// Only the `reservation` handle is read: converting the whole decision back from JS
    /// would double the cost of settling it.
    fn take(&self, decision: &Object) -> Result<Option<Reservation>> {
        let Some(id) = decision.get::<i64>("reservation")? else {
            return Ok(None);
        };
        Ok(self.pending.take(id))
    }

    /// The task of `commitAsync` (`keep`) or `rollbackAsync`; the handle is taken now.
    fn settle_task(&self, decision: &Object, keep: bool) -> Result<AsyncTask<SettleTask>> {
        Ok(AsyncTask::new(SettleTask {
            inner: self.inner.clone(),
            reservation: self.take(decision)?,
            keep,
            failure: None,
        }))
    }
}

fn to_js(tool: &str, d: &EngineDecision, reservation: Option<i64>) -> Decision {
    Decision {
        decision: d.verdict.as_str().to_string(),
        reason: d.reason.as_str().to_string(),
        tool: tool.to_string(),
        rule: d.rule.as_deref().map(str::to_string),
        message: d.message.as_deref().map(str::to_string),
        retry_after_seconds: d
            .retry_after_seconds
            .map(|s| u32::try_from(s).unwrap_or(u32::MAX)),
        approval_timeout_seconds: d
            .approval_timeout
            .map(|t| u32::try_from(t.as_secs()).unwrap_or(u32::MAX)),
        reservation,
        unenforced: d.unenforced.as_deref().map(str::to_string),
    }
}

/// Validates a policy given as YAML text or a file path; never throws for policy errors,
/// only for a file that cannot be read.
#[napi]
pub fn validate(env: Env, text_or_path: String) -> Result<ValidationResult> {
    let source = Source::text_or_path(&text_or_path, "validate(textOrPath)");
    let found = match source.read() {
        Ok((text, _)) => policy::validate(&text),
        // A file over the size limit: a validation error like any other.
        Err(LoadError::Invalid { errors, .. }) => errors,
        Err(e) => return Err(Failure::load(e, &source).into_js(&env)),
    };
    let errors: Vec<ValidationError> = found.into_iter().map(ValidationError::from).collect();
    Ok(ValidationResult {
        valid: errors.is_empty(),
        errors,
    })
}

/// One-shot: compiles the policy (text or path), evaluates one call with fresh memory
/// counters, and returns the decision.
#[napi]
pub fn evaluate(env: Env, policy_path_or_yaml: String, call: ToolCall) -> Result<Decision> {
    let compiled = load(Source::text_or_path(
        &policy_path_or_yaml,
        "evaluate(policyPathOrYaml, call)",
    ))
    .map_err(|f| f.into_js(&env))?;
    let engine = engine::Engine::new(Arc::new(compiled), Arc::new(state::MemoryStore::new()));
    let d = evaluate_call(&engine, &call, None, None);
    Ok(to_js(&call.tool, &d, None))
}

/// Runs the `intercept` command line with these arguments (without the program name) and
/// resolves with the exit code. Used by the npm launcher.
#[napi]
pub async fn run(argv: Vec<String>) -> Result<i32> {
    clear_nonblocking_stdio();
    crate::host::mark_under_node();
    let args = std::iter::once("intercept".to_string())
        .chain(argv)
        .collect();
    let running = running::Running::register();
    Ok(crate::cli::run_async(args, running.shutdown().clone()).await)
}

/// Asks every running `run()` to shut down as if the client had gone away. The launcher
/// calls it from its SIGINT/SIGTERM/SIGHUP handlers with the signal's number: inside Node,
/// JS owns the signals. A command other than the proxy then resolves at once with
/// 128 + signal.
#[napi]
pub fn shutdown(signal: Option<i32>) {
    running::request(signal);
}

mod running {
    //! The shutdown handles of the `run()` calls in progress: the one process-wide piece
    //! of state, because `shutdown()` comes from JS signal handlers that know no run.

    use std::sync::Mutex;

    use crate::shutdown::Shutdown;

    #[derive(Default)]
    struct Registry {
        next: u64,
        running: Vec<(u64, Shutdown)>,
        /// A request that came while no run was registered: the launcher installs its
        /// signal handlers before `run()` starts, and a signal in between must not be lost.
        early: Option<Option<i32>>,
    }

    static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
        next: 0,
        running: Vec::new(),
        early: None,
    });

    fn registry() -> std::sync::MutexGuard<'static, Registry> {
        REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A run in progress; leaves the registry when dropped.
    pub struct Running {
        id: u64,
        shutdown: Shutdown,
    }

    impl Running {
        pub fn register() -> Self {
            let shutdown = Shutdown::new();
            let mut r = registry();
            if let Some(signal) = r.early {
                shutdown.request(signal);
            }
            r.next += 1;
            let id = r.next;
            r.running.push((id, shutdown.clone()));
            Running { id, shutdown }
        }

        pub fn shutdown(&self) -> &Shutdown {
            &self.shutdown
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            registry().running.retain(|(id, _)| *id != self.id);
        }
    }

    pub fn request(signal: Option<i32>) {
        let mut r = registry();
        if r.running.is_empty() {
            r.early.get_or_insert(signal);
        }
        for (_, shutdown) in &r.running {
            shutdown.request(signal);
        }
    }
}

/// Node sets O_NONBLOCK on stdio it has touched, and the flag lives on the open file
/// description it shares with us; Rust's blocking writes would then fail with EAGAIN as
/// soon as a pipe fills. Clear it on fds 0 and 1 before we own them.
#[cfg(unix)]
#[allow(unsafe_code)]
fn clear_nonblocking_stdio() {
    for fd in [0, 1] {
        // SAFETY: fcntl on fds 0 and 1 with F_GETFL/F_SETFL only reads and sets status
        // flags; it touches no memory and is harmless if the fd is closed (it fails).
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
    }
}

#[cfg(not(unix))]
fn clear_nonblocking_stdio() {}
