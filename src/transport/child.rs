//! Child-process mode: the MCP server runs as our child, speaking stdio; we speak stdio to
//! the client that launched us.
//!
//! Two threads move the messages (client → server, server → client), each reading a
//! stream, asking the proxy core what to do and writing the results itself. Shutdown
//! follows the MCP stdio lifecycle: close the server's stdin, wait, SIGTERM, wait, SIGKILL.
//! The server's exit ends the proxy with the server's exit code.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;

use super::lines::Line;
use super::stdio::{LineHandler, Sink, close, read_lines, sink, write_bytes, write_lines};
use super::{TransportError, to_client_lines};
use crate::proxy::Proxy;

#[derive(Debug, Clone)]
pub struct ChildOptions {
    /// The server command and its arguments.
    pub command: Vec<String>,
    pub max_message_bytes: usize,
    /// How long to wait at each step of the shutdown sequence.
    pub shutdown_timeout: Duration,
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
    proxy: Arc<Proxy>,
    options: ChildOptions,
    client: ClientStreams<R>,
) -> Result<i32, TransportError> {
    let mut child = spawn(&options.command)?;
    tracing::info!(pid = child.id(), command = %options.command.join(" "), "started MCP server");
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
            server_bytes: Vec::new(),
            client_bytes: Vec::new(),
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
            client_bytes: Vec::new(),
        },
    )
    .map_err(TransportError::Thread)?;
    let (signal, mut exited) = watch_exit(child)?;

    // Run until the server exits, the client goes away, or we are told to stop.
    let status = tokio::select! {
        status = &mut exited => status.ok(),
        _ = &mut client_done => None,
        _ = crate::shutdown::wait() => None,
    };
    let status = match status {
        Some(status) => status,
        None => stop(&server_in, &signal, &mut exited, options.shutdown_timeout).await?,
    };
    let code = exit_code(status);
    tracing::info!(code, "MCP server exited");

    // What the server wrote before exiting still reaches the client; a grandchild that
    // keeps the pipe open must not keep us waiting.
    let _ = tokio::time::timeout(options.shutdown_timeout, server_done).await;
    let why = match status.code() {
        Some(c) => format!("exited (code {c})"),
        None => format!("was stopped (exit status {code})"),
    };
    let errors: Vec<Vec<u8>> = to_client_lines(proxy.upstream_gone(&why)).collect();
    if !errors.is_empty() {
        let to_client = to_client.clone();
        let _ = tokio::task::spawn_blocking(move || {
            write_lines(&to_client, errors.iter().map(Vec::as_slice))
        })
        .await;
    }
    Ok(code)
}

/// Moves the client's messages: each read's lines are handled into two byte buffers
/// (for the server, and the proxy's own answers for the client), written once per read.
struct FromClient {
    proxy: Arc<Proxy>,
    max: usize,
    to_server: Sink,
    to_client: Sink,
    server_bytes: Vec<u8>,
    client_bytes: Vec<u8>,
}

impl LineHandler for FromClient {
    fn line(&mut self, line: Line<'_>) {
        match line {
            Line::Whole(l) => {
                self.proxy
                    .client_message_to(l, &mut self.server_bytes, &mut self.client_bytes)
            }
            Line::Oversize { prefix, len } => {
                for route in self.proxy.client_oversize(prefix, len, self.max) {
                    route.append_to(&mut self.server_bytes, &mut self.client_bytes);
                }
            }
        }
    }

    fn deliver(&mut self) -> bool {
        let ok = self.server_bytes.is_empty() || write_bytes(&self.to_server, &self.server_bytes);
        if !self.client_bytes.is_empty() {
            write_bytes(&self.to_client, &self.client_bytes);
        }
        reuse(&mut self.server_bytes);
        reuse(&mut self.client_bytes);
        ok
    }
}

/// Moves the server's messages to the client, written once per read.
struct FromServer {
    proxy: Arc<Proxy>,
    max: usize,
    to_client: Sink,
    client_bytes: Vec<u8>,
}

impl LineHandler for FromServer {
    fn line(&mut self, line: Line<'_>) {
        match line {
            Line::Whole(l) => self.proxy.server_message_to(l, &mut self.client_bytes),
            Line::Oversize { prefix, len } => {
                for l in to_client_lines(self.proxy.server_oversize(prefix, len, self.max)) {
                    self.client_bytes.extend_from_slice(&l);
                    self.client_bytes.push(b'\n');
                }
            }
        }
    }

    fn deliver(&mut self) -> bool {
        let ok = self.client_bytes.is_empty() || write_bytes(&self.to_client, &self.client_bytes);
        reuse(&mut self.client_bytes);
        ok
    }
}

/// Empties a buffer for the next read, keeping its memory unless one huge message grew it.
fn reuse(buf: &mut Vec<u8>) {
    buf.clear();
    buf.shrink_to(1 << 20);
}

/// Requests to the thread that owns the child process.
const RUNNING: u8 = 0;
const TERMINATE: u8 = 1;
const KILL: u8 = 2;

/// Waits for the child on a thread of its own, which also delivers termination requests
/// (it alone holds the child, so no other thread races its reaping).
fn watch_exit(
    mut child: Child,
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
                        terminate(&mut child);
                    } else if wanted == KILL {
                        let _ = child.kill();
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

fn spawn(command: &[String]) -> Result<Child, TransportError> {
    let (program, args) = command.split_first().ok_or(TransportError::NoCommand)?;
    // `which` also finds `.cmd` shims such as `npx.cmd` on Windows.
    let path = which::which(program).map_err(|_| TransportError::NotFound(program.clone()))?;
    let mut cmd = Command::new(&path);
    // The audit key is what keeps the log's chain from being recomputed: the server (and
    // the agent's tools it runs) must not inherit it.
    cmd.env_remove(crate::audit::KEY_ENV);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    die_with_parent(&mut cmd);
    cmd.spawn().map_err(|e| TransportError::Spawn {
        command: program.clone(),
        source: e,
    })
}

/// If we are killed outright (SIGKILL), the kernel stops the server too.
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

/// Elsewhere the server stays in our process group, so a signal to the group (as
/// terminals and most clients send) reaches it too.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

#[cfg(unix)]
#[allow(unsafe_code)]
fn terminate(child: &mut Child) {
    // SAFETY: kill(2) on the pid of a child we have not reaped; no memory is touched.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

#[cfg(not(unix))]
fn terminate(child: &mut Child) {
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
