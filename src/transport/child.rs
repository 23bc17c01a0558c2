//! Child-process mode: the MCP server runs as our child, speaking stdio; we speak stdio to
//! the client that launched us.
//!
//! Shutdown follows the MCP stdio lifecycle: close the server's stdin, wait, SIGTERM, wait,
//! SIGKILL. The server's exit ends the proxy with the server's exit code.

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncWrite, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::TransportError;
use super::lines::{Frame, read_frame, write_line};
use crate::proxy::{Proxy, Route};

/// Lines waiting to be written to one side; a full queue slows the reader down instead of
/// growing memory.
const QUEUE: usize = 1024;

#[derive(Debug, Clone)]
pub struct ChildOptions {
    /// The server command and its arguments.
    pub command: Vec<String>,
    pub max_message_bytes: usize,
    /// How long to wait at each step of the shutdown sequence.
    pub shutdown_timeout: Duration,
}

/// Runs the proxy between our stdio and a child server until one side ends; returns the
/// exit code to leave with.
pub async fn serve<I, O>(
    proxy: Arc<Proxy>,
    options: ChildOptions,
    client_in: I,
    client_out: O,
) -> Result<i32, TransportError>
where
    I: AsyncBufRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin + Send + 'static,
{
    let mut child = spawn(&options.command)?;
    let pid = child.id();
    tracing::info!(pid, command = %options.command.join(" "), "started MCP server");
    let child_in = child.stdin.take().expect("stdin is piped");
    let child_out = BufReader::new(child.stdout.take().expect("stdout is piped"));

    let (to_client, client_rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let (to_server, server_rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let client_writer = tokio::spawn(write_all(client_rx, client_out));
    let server_writer = tokio::spawn(write_all(server_rx, child_in));

    let max = options.max_message_bytes;
    let client_reader = tokio::spawn(read_client(
        proxy.clone(),
        client_in,
        max,
        to_server,
        to_client.clone(),
    ));
    let mut server_reader = tokio::spawn(read_server(
        proxy.clone(),
        child_out,
        max,
        to_client.clone(),
    ));

    // Run until the server exits, the client goes away, or we are told to stop.
    let status = tokio::select! {
        status = child.wait() => Some(status),
        _ = wait_client_gone(&client_reader) => None,
        _ = crate::shutdown::wait() => None,
    };
    let status = match status {
        Some(status) => status.map_err(TransportError::Wait)?,
        None => {
            // Closing the server's stdin is the polite request to exit.
            client_reader.abort();
            // The writer ends once the reader's sender is gone, dropping the server's stdin.
            let _ = tokio::time::timeout(options.shutdown_timeout, server_writer).await;
            stop(&mut child, options.shutdown_timeout).await?
        }
    };
    let code = exit_code(status);
    tracing::info!(code, "MCP server exited");

    // What the server wrote before exiting still reaches the client; a grandchild that
    // keeps the pipe open must not keep us waiting.
    if tokio::time::timeout(options.shutdown_timeout, &mut server_reader)
        .await
        .is_err()
    {
        server_reader.abort();
    }
    client_reader.abort();
    let why = match status.code() {
        Some(c) => format!("exited (code {c})"),
        None => format!("was stopped (exit status {code})"),
    };
    for route in proxy.upstream_gone(&why) {
        if let Route::Client(line) = route {
            let _ = to_client.send(line).await;
        }
    }
    drop(to_client);
    let _ = client_writer.await;
    Ok(code)
}

/// Resolves once the client reader has finished (the client closed our stdin).
async fn wait_client_gone(reader: &tokio::task::JoinHandle<()>) {
    while !reader.is_finished() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn spawn(command: &[String]) -> Result<Child, TransportError> {
    let (program, args) = command.split_first().ok_or(TransportError::NoCommand)?;
    // `which` also finds `.cmd` shims such as `npx.cmd` on Windows.
    let path = which::which(program).map_err(|_| TransportError::NotFound(program.clone()))?;
    let mut cmd = Command::new(&path);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
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
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (prctl, getppid, _exit).
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

/// Closing stdin has been done; wait, then SIGTERM, wait, then SIGKILL.
async fn stop(child: &mut Child, step: Duration) -> Result<ExitStatus, TransportError> {
    if let Ok(status) = tokio::time::timeout(step, child.wait()).await {
        return status.map_err(TransportError::Wait);
    }
    tracing::warn!("MCP server did not exit after its stdin closed; sending SIGTERM");
    terminate(child);
    if let Ok(status) = tokio::time::timeout(step, child.wait()).await {
        return status.map_err(TransportError::Wait);
    }
    tracing::warn!("MCP server ignored SIGTERM; killing it");
    let _ = child.start_kill();
    child.wait().await.map_err(TransportError::Wait)
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn terminate(child: &Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a pid we spawned and have not reaped; no memory is touched.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
}

#[cfg(not(unix))]
fn terminate(child: &mut Child) {
    let _ = child.start_kill();
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

async fn read_client<R: AsyncBufRead + Unpin>(
    proxy: Arc<Proxy>,
    mut input: R,
    max: usize,
    to_server: mpsc::Sender<Vec<u8>>,
    to_client: mpsc::Sender<Vec<u8>>,
) {
    loop {
        let routes = match read_frame(&mut input, max).await {
            Ok(Some(Frame::Line(line))) => proxy.client_message(&line),
            Ok(Some(Frame::Oversize { prefix, len })) => proxy.client_oversize(&prefix, len, max),
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("reading from the client failed: {e}");
                break;
            }
        };
        if !send(routes, &to_server, &to_client).await {
            break;
        }
    }
    tracing::debug!("client closed its input");
}

async fn read_server<R: AsyncBufRead + Unpin>(
    proxy: Arc<Proxy>,
    mut input: R,
    max: usize,
    to_client: mpsc::Sender<Vec<u8>>,
) {
    loop {
        let routes = match read_frame(&mut input, max).await {
            Ok(Some(Frame::Line(line))) => proxy.server_message(&line),
            Ok(Some(Frame::Oversize { prefix, len })) => proxy.server_oversize(&prefix, len, max),
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("reading from the MCP server failed: {e}");
                break;
            }
        };
        for route in routes {
            if let Route::Client(line) = route
                && to_client.send(line).await.is_err()
            {
                return;
            }
        }
    }
}

/// Sends routes to their sides; false once a side has gone.
async fn send(
    routes: Vec<Route>,
    to_server: &mpsc::Sender<Vec<u8>>,
    to_client: &mpsc::Sender<Vec<u8>>,
) -> bool {
    for route in routes {
        let sent = match route {
            Route::Server(line) => to_server.send(line).await,
            Route::Client(line) => to_client.send(line).await,
        };
        if sent.is_err() {
            return false;
        }
    }
    true
}

async fn write_all<W: AsyncWrite + Unpin>(mut rx: mpsc::Receiver<Vec<u8>>, mut out: W) {
    while let Some(line) = rx.recv().await {
        if let Err(e) = write_line(&mut out, &line).await {
            tracing::debug!("write failed, side closed: {e}");
            break;
        }
    }
    // Dropping `out` closes it: for the server's stdin that is the signal to exit.
}
