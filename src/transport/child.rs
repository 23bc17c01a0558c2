//! Child-process mode: the MCP server runs as our child, speaking stdio; we speak stdio to
//! the client that launched us.
//!
//! Two threads move the messages (client → server, server → client), each reading a
//! stream, asking the proxy core what to do and writing the results itself. Shutdown
//! follows the MCP stdio lifecycle: close the server's stdin, wait, SIGTERM, wait, SIGKILL;
//! the signals go to the server's whole process group (see [`super::process_group`]).
//! The server's exit ends the proxy with the server's exit code.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;

use super::lines::Line;
use super::process_group::{GroupSignal, ProcessGroup};
use super::stdio::{LineHandler, Sink, close, read_lines, sink, write_bytes, write_bytes_counted};
use super::{TransportError, inbound, sweep_interval};
use crate::proxy::{Closed, Failure, LineBuffers, RequestFailure, Session};
use crate::shutdown::Shutdown;

#[derive(Debug, Clone)]
pub struct ChildOptions {
    /// The server command and its arguments, its program found.
    pub server: ServerCommand,
    pub max_message_bytes: usize,
    /// How long to wait at each step of the shutdown sequence.
    pub shutdown_timeout: Duration,
    /// How long a request may await the server's answer before it gets an error.
    pub request_timeout: Duration,
}

/// A server command whose program has been found: looked up once, before anything starts
/// (a start that fails for want of its server leaves no audit log behind), and started as
/// found.
#[derive(Debug, Clone)]
pub struct ServerCommand {
    /// The command and its arguments as given, for logs and messages.
    words: Vec<String>,
    /// Where its program is.
    program: PathBuf,
}

impl ServerCommand {
    /// Finds the program of `words` (the command and its arguments): a bare name on `PATH`,
    /// a path as it is, if it can be run.
    pub fn locate(words: Vec<String>) -> Result<Self, TransportError> {
        let name = words.first().ok_or(TransportError::NoCommand)?;
        let program =
            super::program::locate(name).map_err(|why| TransportError::unrunnable(name, why))?;
        Ok(ServerCommand { words, program })
    }

    /// The command and its arguments as given.
    pub fn words(&self) -> &[String] {
        &self.words
    }
}

/// The client's side of the conversation: where its messages come from and go to.
pub struct ClientStreams<R> {
    pub input: R,
    pub output: Sink,
}

impl<R> std::fmt::Debug for ClientStreams<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientStreams")
    }
}

/// Serves the process's own stdin and stdout.
pub fn process_stdio() -> ClientStreams<std::io::Stdin> {
    ClientStreams {
        input: std::io::stdin(),
        output: sink(std::io::stdout()),
    }
}

/// Runs the proxy between the client and a child server until one side ends; returns the
/// exit code to leave with.
pub async fn serve<R: Read + Send + 'static>(
    proxy: Arc<Session>,
    options: ChildOptions,
    client: ClientStreams<R>,
    shutdown: Shutdown,
) -> Result<i32, TransportError> {
    let group = ProcessGroup::start().map_err(TransportError::Watchdog)?;
    let mut child = spawn(&options.server, &group)?;
    tracing::info!(pid = child.id(), command = %crate::redact::redact_command(options.server.words()), "started MCP server");
    let server_in = sink(child.stdin.take().expect("stdin is piped"));
    let server_out = child.stdout.take().expect("stdout is piped");
    let to_client = client.output;
    let max = options.max_message_bytes;

    let mut client_done = read_lines(
        "intercept-client",
        client.input,
        max,
        FromClient {
            proxy: proxy.clone(),
            max,
            to_server: server_in.clone(),
            to_client: to_client.clone(),
            out: LineBuffers::default(),
        },
    )
    .map_err(TransportError::Thread)?;
    let server_done = read_lines(
        "intercept-server",
        server_out,
        max,
        FromServer {
            proxy: proxy.clone(),
            max,
            to_client: to_client.clone(),
            out: LineBuffers::default(),
        },
    )
    .map_err(TransportError::Thread)?;
    let (signal, mut exited) = watch_exit(child, group_id(&group))?;
    let sweeper = tokio::spawn(expire_unanswered(
        proxy.clone(),
        options.request_timeout,
        server_in.clone(),
        to_client.clone(),
    ));

    // Run until the server exits, the client goes away, or we are told to stop.
    let status = tokio::select! {
        status = &mut exited => status.ok(),
        _ = &mut client_done => None,
        () = shutdown.requested() => None,
    };
    let status = match status {
        Some(status) => status,
        None => stop(&server_in, &signal, &mut exited, options.shutdown_timeout).await?,
    };
    let code = exit_code(status);
    tracing::info!(code, "MCP server exited");
    // What it started may still run: asked to exit now, killed when the group is dropped.
    group.signal(GroupSignal::Terminate);

    // What the server wrote before exiting still reaches the client; a grandchild that
    // keeps the pipe open must not keep us waiting.
    let _ = tokio::time::timeout(options.shutdown_timeout, server_done).await;
    drop(group);
    sweeper.abort();
    let why = match status.code() {
        Some(c) => format!("exited (code {c})"),
        None => format!("was stopped (exit status {code})"),
    };
    let mut errors = LineBuffers::default();
    proxy.close(Closed::UpstreamGone(why), &mut errors);
    if !errors.to_client.is_empty() {
        let to_client = to_client.clone();
        let _ =
            tokio::task::spawn_blocking(move || write_bytes(&to_client, &errors.to_client)).await;
    }
    Ok(code)
}

/// Moves the client's messages: each read's lines are handled into two byte buffers
/// (for the server, and the proxy's own answers for the client), written once per read.
struct FromClient {
    proxy: Arc<Session>,
    max: usize,
    to_server: Sink,
    to_client: Sink,
    out: LineBuffers,
}

impl LineHandler for FromClient {
    fn line(&mut self, line: Line<'_>) {
        self.proxy
            .client_message(inbound(line, self.max), &mut self.out);
    }

    fn deliver(&mut self) -> bool {
        let ok = match write_bytes_counted(&self.to_server, &self.out.to_server) {
            _ if self.out.to_server.is_empty() => true,
            Ok(()) => true,
            Err(written) => {
                self.not_sent(written);
                false
            }
        };
        if !self.out.to_client.is_empty() {
            write_bytes(&self.to_client, &self.out.to_client);
        }
        self.out.clear();
        ok
    }
}

impl FromClient {
    /// The server stopped reading its input: the requests past the `written` bytes that
    /// went out never reached it, so they are answered here (and their calls do not count).
    fn not_sent(&mut self, written: usize) {
        let unsent: Vec<_> = self.out.unsent(written).cloned().collect();
        for id in unsent {
            let why = Failure::new(
                RequestFailure::NotSent,
                "The MCP server is no longer reading its input (it exited or closed it); this request was not sent to it",
            );
            self.proxy.request_failed(&id, why, &mut self.out);
        }
    }
}

/// Moves the server's messages to the client, written once per read.
struct FromServer {
    proxy: Arc<Session>,
    max: usize,
    to_client: Sink,
    out: LineBuffers,
}

impl LineHandler for FromServer {
    fn line(&mut self, line: Line<'_>) {
        self.proxy
            .server_message(inbound(line, self.max), &mut self.out);
    }

    fn deliver(&mut self) -> bool {
        let ok = self.out.to_client.is_empty() || write_bytes(&self.to_client, &self.out.to_client);
        self.out.clear();
        ok
    }
}

/// Answers the requests the server leaves unanswered for `timeout`, and tells the server
/// they are cancelled (best effort: a server that stopped reading cannot hold up the
/// answers to the client).
async fn expire_unanswered(
    proxy: Arc<Session>,
    timeout: Duration,
    to_server: Sink,
    to_client: Sink,
) {
    let mut ticks = tokio::time::interval(sweep_interval(timeout));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let cancelling = Arc::new(AtomicBool::new(false));
    loop {
        ticks.tick().await;
        let mut out = LineBuffers::default();
        proxy.expire(timeout, &mut out);
        if out.to_client.is_empty() && out.to_server.is_empty() {
            continue;
        }
        let LineBuffers {
            to_server: server_bytes,
            to_client: client_bytes,
            ..
        } = out;
        let to_client = to_client.clone();
        let _ = tokio::task::spawn_blocking(move || write_bytes(&to_client, &client_bytes)).await;
        if !cancelling.swap(true, Ordering::SeqCst) {
            let (to_server, cancelling) = (to_server.clone(), cancelling.clone());
            tokio::task::spawn_blocking(move || {
                write_bytes(&to_server, &server_bytes);
                cancelling.store(false, Ordering::SeqCst);
            });
        }
    }
}

/// Requests to the thread that owns the child process.
const RUNNING: u8 = 0;
const TERMINATE: u8 = 1;
const KILL: u8 = 2;

/// Waits for the child on a thread of its own, which also delivers termination requests
/// to the child's process group `group` (it alone holds the child, so no other thread
/// races its reaping; the group's watchdog keeps the group id ours after that).
fn watch_exit(
    mut child: Child,
    group: Option<i32>,
) -> Result<(Arc<AtomicU8>, oneshot::Receiver<ExitStatus>), TransportError> {
    let request = Arc::new(AtomicU8::new(RUNNING));
    let (tx, rx) = oneshot::channel();
    let req = request.clone();
    std::thread::Builder::new()
        .name("intercept-child".into())
        .spawn(move || {
            let mut sent = RUNNING;
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        let _ = tx.send(status);
                        return;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!("waiting for the MCP server failed: {e}");
                        let _ = child.kill();
                    }
                }
                let wanted = req.load(Ordering::SeqCst);
                if wanted != sent {
                    sent = wanted;
                    if wanted == TERMINATE {
                        terminate(&mut child, group);
                    } else if wanted == KILL {
                        kill(&mut child, group);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
        .map_err(TransportError::Thread)?;
    Ok((request, rx))
}

/// Close the server's stdin, wait; SIGTERM, wait; SIGKILL.
async fn stop(
    server_in: &Sink,
    signal: &AtomicU8,
    exited: &mut oneshot::Receiver<ExitStatus>,
    step: Duration,
) -> Result<ExitStatus, TransportError> {
    let server_in = server_in.clone();
    // The client thread may hold the lock while a write blocks; closing must not hang us.
    let closing = tokio::task::spawn_blocking(move || close(&server_in));
    let _ = tokio::time::timeout(step, closing).await;
    if let Ok(Ok(status)) = tokio::time::timeout(step, &mut *exited).await {
        return Ok(status);
    }
    tracing::warn!("MCP server did not exit after its stdin closed; sending SIGTERM");
    signal.store(TERMINATE, Ordering::SeqCst);
    if let Ok(Ok(status)) = tokio::time::timeout(step, &mut *exited).await {
        return Ok(status);
    }
    tracing::warn!("MCP server ignored SIGTERM; killing it");
    signal.store(KILL, Ordering::SeqCst);
    exited.await.map_err(|_| TransportError::Lost)
}

fn spawn(server: &ServerCommand, group: &ProcessGroup) -> Result<Child, TransportError> {
    server_command(server, group)
        .spawn()
        .map_err(|e| TransportError::Spawn {
            command: server.words[0].clone(),
            cause: e,
        })
}

/// How the server is started: in `group`, its stdin and stdout piped, its stderr ours,
/// without the audit key, and (on Linux) killed with the thread that starts it.
pub(crate) fn server_command(server: &ServerCommand, group: &ProcessGroup) -> Command {
    let args = &server.words[1..];
    let mut cmd = Command::new(&server.program);
    // The audit key is what keeps the log's chain from being recomputed: the server (and
    // the agent's tools it runs) must not inherit it.
    cmd.env_remove(crate::audit::KEY_ENV);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(group.id());
    }
    #[cfg(not(unix))]
    let _ = group;
    die_with_parent(&mut cmd);
    cmd
}

/// If we are killed outright (SIGKILL), the kernel stops the server too (the group's
/// watchdog stops the rest of its processes).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (prctl, getppid, _exit). The death signal follows the
    // thread that forks; spawning happens on a thread that lives as long as the proxy.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // We may have died between fork and prctl.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Elsewhere the group's watchdog stops the server when we are killed outright.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

#[cfg(unix)]
fn group_id(group: &ProcessGroup) -> Option<i32> {
    Some(group.id())
}

#[cfg(not(unix))]
fn group_id(_group: &ProcessGroup) -> Option<i32> {
    None
}

/// SIGTERM to the server's process group (without groups: the server is killed).
fn terminate(child: &mut Child, group: Option<i32>) {
    match group {
        #[cfg(unix)]
        Some(id) => super::process_group::signal_group(id, GroupSignal::Terminate),
        _ => {
            let _ = child.kill();
        }
    }
}

/// SIGKILL to the server's process group, and to the server itself.
fn kill(child: &mut Child, group: Option<i32>) {
    #[cfg(unix)]
    if let Some(id) = group {
        super::process_group::signal_group(id, GroupSignal::Kill);
    }
    #[cfg(not(unix))]
    let _ = group;
    let _ = child.kill();
}

/// The exit code to leave with: the server's, or 128 + signal number.
pub fn exit_code(status: ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return 128 + sig;
        }
    }
    1
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use crate::proxy::SessionOptions;
    use crate::state::MemoryStore;

    #[test]
    fn a_program_that_cannot_run_is_refused_before_anything_starts() {
        let found = ServerCommand::locate(vec!["sh".into(), "-c".into(), "exit 0".into()]);
        assert!(found.is_ok_and(|s| s.program.is_absolute()));
        assert_eq!(
            ServerCommand::locate(vec!["no-such-server-xyz".into()])
                .unwrap_err()
                .to_string(),
            "cannot find the upstream command \"no-such-server-xyz\" on PATH"
        );
        assert!(matches!(
            ServerCommand::locate(Vec::new()),
            Err(TransportError::NoCommand)
        ));
    }

    /// The program found is the one started: it is not looked up again (where `PATH` or the
    /// files on it may have changed meanwhile).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_program_found_is_the_one_started() {
        let server = ServerCommand {
            words: vec!["no-such-server-xyz".into(), "-c".into(), "exit 7".into()],
            program: PathBuf::from("/bin/sh"),
        };
        let policy = crate::policy::parse("tools: {}\n", "test").expect("valid policy");
        let engine = Engine::new(Arc::new(policy), Arc::new(MemoryStore::new()));
        let proxy = Arc::new(Session::new(engine, SessionOptions::default()));
        let options = ChildOptions {
            server,
            max_message_bytes: 1 << 20,
            shutdown_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
        };
        // A client that sends nothing and stays connected while the server runs.
        let (client_input, _client_writes) = std::io::pipe().unwrap();
        let client = ClientStreams {
            input: client_input,
            output: sink(std::io::sink()),
        };
        assert_eq!(
            serve(proxy, options, client, Shutdown::new())
                .await
                .unwrap(),
            7
        );
    }
}
