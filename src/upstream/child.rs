//! A stdio MCP server started for one gateway session, driven by tokio.
//!
//! The stdio proxy moves a single server's bytes on threads of its own (see
//! `transport::stdio`); a gateway may hold hundreds of children at once, so here a child
//! costs no thread: its output is read, its input written and its exit awaited by tokio
//! tasks. It is started and stopped as the stdio proxy's child is: in a process group of its
//! own led by a watchdog, and stopped by closing its stdin, then SIGTERM, then SIGKILL to
//! the group.

use std::process::ExitStatus;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{mpsc, watch};

use crate::transport::TransportError;
use crate::transport::child::{ServerCommand, server_command};
use crate::transport::lines::{Frame, LineSplitter};
use crate::transport::process_group::{GroupSignal, ProcessGroup};

/// How many framed lines may wait between the child's stdout and their reader: past that,
/// the child's writes block, as they would on a pipe nobody reads.
const OUTPUT_BACKLOG: usize = 64;

/// A running child server.
#[derive(Debug)]
pub struct ChildProcess {
    pid: Option<u32>,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    /// `Some` once the child has exited.
    exit: watch::Receiver<Option<ExitStatus>>,
    /// Asks the task that owns the child to kill it (where there are no process groups).
    kill: mpsc::Sender<()>,
    /// Dropped when the child is stopped: the watchdog then kills what is left of the group.
    group: Mutex<Option<ProcessGroup>>,
}

impl ChildProcess {
    /// Starts `server`, with `env` added to its environment; returns the child and its
    /// output, one frame per line (a line over `max_message_bytes` is reported with its
    /// first bytes). The output ends when the child closes its stdout.
    ///
    /// Must be called on a thread that outlives the child (a runtime worker, not a
    /// blocking-pool thread): on Linux the child is killed when the thread that started
    /// it ends.
    pub fn spawn(
        server: &ServerCommand,
        env: &[(String, String)],
        max_message_bytes: usize,
    ) -> Result<(ChildProcess, mpsc::Receiver<Frame>), TransportError> {
        let group = ProcessGroup::start().map_err(TransportError::Watchdog)?;
        let mut cmd = server_command(server, &group);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let mut child =
            tokio::process::Command::from(cmd)
                .spawn()
                .map_err(|e| TransportError::Spawn {
                    command: server.words()[0].clone(),
                    cause: e,
                })?;
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_tx, lines) = mpsc::channel(OUTPUT_BACKLOG);
        tokio::spawn(read_frames(stdout, max_message_bytes, lines_tx));
        let (exit_tx, exit) = watch::channel(None);
        let (kill, kill_rx) = mpsc::channel(1);
        tokio::spawn(own(child, exit_tx, kill_rx));
        Ok((
            ChildProcess {
                pid,
                stdin: tokio::sync::Mutex::new(stdin),
                exit,
                kill,
                group: Mutex::new(Some(group)),
            },
            lines,
        ))
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Writes `bytes` (whole lines) to the child's stdin. Fails once stdin is closed or the
    /// child stopped reading it.
    pub async fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut stdin = self.stdin.lock().await;
        let Some(pipe) = stdin.as_mut() else {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        };
        let written = async {
            pipe.write_all(bytes).await?;
            pipe.flush().await
        }
        .await;
        if written.is_err() {
            *stdin = None;
        }
        written
    }

    /// The exit status, once the child has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Resolves when the child exits, with its status.
    pub async fn exited(&self) -> Option<ExitStatus> {
        let mut exit = self.exit.clone();
        exit.wait_for(Option::is_some).await.ok().and_then(|s| *s)
    }

    /// Stops the child as the MCP stdio lifecycle says: close its stdin and wait `step`,
    /// SIGTERM to its group and wait `step`, then SIGKILL. Whatever it started is killed
    /// with its group when this returns.
    pub async fn stop(&self, step: Duration) -> Option<ExitStatus> {
        // The lock waits for a write in progress; a child that stopped reading must not
        // hold us past the first step.
        if let Ok(mut stdin) = tokio::time::timeout(step, self.stdin.lock()).await {
            stdin.take();
        }
        let mut status = self.exited_within(step).await;
        if status.is_none() {
            tracing::warn!(pid = ?self.pid, "MCP server did not exit after its stdin closed; sending SIGTERM");
            self.signal(GroupSignal::Terminate);
            status = self.exited_within(step).await;
        }
        if status.is_none() {
            tracing::warn!(pid = ?self.pid, "MCP server ignored SIGTERM; killing it");
            self.signal(GroupSignal::Kill);
            let _ = self.kill.try_send(());
            status = self.exited().await;
        }
        // The rest of the group: asked to exit, then killed by the watchdog.
        self.signal(GroupSignal::Terminate);
        drop(lock(&self.group).take());
        status
    }

    async fn exited_within(&self, step: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(step, self.exited())
            .await
            .ok()
            .flatten()
    }

    fn signal(&self, signal: GroupSignal) {
        if let Some(group) = lock(&self.group).as_ref() {
            group.signal(signal);
        }
    }
}

/// Owns the child until it exits: reaps it, and kills it when asked.
async fn own(
    mut child: Child,
    exit: watch::Sender<Option<ExitStatus>>,
    mut kill: mpsc::Receiver<()>,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        _ = kill.recv() => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    match status {
        Ok(status) => {
            let _ = exit.send(Some(status));
        }
        Err(e) => tracing::warn!("waiting for the MCP server failed: {e}"),
    }
}

/// Frames the child's stdout into lines until it closes or nobody listens.
async fn read_frames(
    mut stdout: tokio::process::ChildStdout,
    max: usize,
    lines: mpsc::Sender<Frame>,
) {
    let mut splitter = LineSplitter::new(max);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match stdout.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!("reading the MCP server's output failed: {e}");
                break;
            }
        };
        let mut frames = Vec::new();
        splitter.feed(&chunk[..n], |line| frames.push(line.to_frame()));
        for frame in frames {
            if lines.send(frame).await.is_err() {
                return;
            }
        }
    }
    if let Some(last) = splitter.finish() {
        let _ = lines.send(last).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str) -> ServerCommand {
        ServerCommand::locate(vec!["/bin/sh".into(), "-c".into(), script.into()]).unwrap()
    }

    #[tokio::test]
    async fn lines_in_and_out_then_a_clean_stop_when_stdin_closes() {
        let (child, mut lines) =
            ChildProcess::spawn(&sh("while read l; do echo \"got $l\"; done"), &[], 1024).unwrap();
        child.write(b"one\ntwo\n").await.unwrap();
        assert_eq!(lines.recv().await, Some(Frame::Line(b"got one".to_vec())));
        assert_eq!(lines.recv().await, Some(Frame::Line(b"got two".to_vec())));
        let status = child.stop(Duration::from_secs(5)).await.expect("exited");
        assert!(status.success(), "{status}");
        assert_eq!(lines.recv().await, None, "output ends with the child");
        assert!(
            child.write(b"late\n").await.is_err(),
            "stdin is closed after stop"
        );
    }

    #[tokio::test]
    async fn a_child_that_ignores_stdin_and_sigterm_is_killed() {
        let (child, _lines) =
            ChildProcess::spawn(&sh("trap '' TERM; while :; do sleep 1; done"), &[], 1024).unwrap();
        let status = child
            .stop(Duration::from_millis(200))
            .await
            .expect("exited");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    }

    #[tokio::test]
    async fn an_over_long_line_is_reported_with_its_prefix_and_env_is_passed() {
        let (child, mut lines) = ChildProcess::spawn(
            &sh("printf '%s\\n' \"$GREETING$GREETING$GREETING\"; echo short"),
            &[("GREETING".into(), "x".repeat(40))],
            100,
        )
        .unwrap();
        match lines.recv().await {
            Some(Frame::Oversize { prefix, len }) => {
                assert_eq!(len, 120);
                assert!(prefix.starts_with(b"xxxx"));
            }
            other => panic!("expected an oversize frame, got {other:?}"),
        }
        assert_eq!(lines.recv().await, Some(Frame::Line(b"short".to_vec())));
        assert!(child.exited().await.unwrap().success());
    }
}
