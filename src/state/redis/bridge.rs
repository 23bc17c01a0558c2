//! Runs the Redis client's futures for callers that are not async.
//!
//! The `Store` trait is synchronous: the proxy evaluates calls on its own reader threads,
//! and the Node API on the JavaScript thread or libuv's pool. A few settlements
//! (rollbacks after a remote server failed) do happen on tokio worker threads of the
//! proxy's runtime. So the store owns a small runtime of its own (one worker thread, which
//! also drives the connection and its reconnection) and every command is spawned there;
//! the caller waits on a plain channel. That never panics, whatever thread the caller is
//! on (`Handle::block_on` would inside a runtime), and never blocks the connection's
//! driver. When the caller is a worker of a multi-threaded runtime, the wait is wrapped in
//! `block_in_place`, so that runtime moves its other tasks elsewhere meanwhile. Every wait
//! is bounded by the command timeout.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

#[derive(Debug)]
pub struct Bridge {
    /// `None` only while dropping.
    runtime: Option<Runtime>,
    handle: Handle,
    timeout: Duration,
}

/// Why a bridged command has no answer.
#[derive(Debug)]
pub enum Failure<E> {
    /// The command itself failed.
    Command(E),
    /// No answer within the timeout.
    TimedOut,
}

impl Bridge {
    pub fn new(timeout: Duration) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("intercept-redis")
            .enable_io()
            .enable_time()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(Bridge {
            runtime: Some(runtime),
            handle,
            timeout,
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `command` on the store's runtime and waits for its result, at most the timeout.
    pub fn run<T, E, F>(&self, command: F) -> Result<T, Failure<E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let timeout = self.timeout;
        self.handle.spawn(async move {
            let outcome = tokio::time::timeout(timeout, command).await;
            let _ = tx.send(outcome);
        });
        // A little more than the timeout: the task answers TimedOut itself; this only
        // guards against a runtime that stopped.
        let wait = || rx.recv_timeout(timeout + Duration::from_millis(250));
        let received = match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        };
        match received {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(Failure::Command(e)),
            Ok(Err(_)) | Err(_) => Err(Failure::TimedOut),
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Dropping a runtime from async code panics; shutting it down in the background
        // is allowed anywhere, and nothing in flight needs to finish.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
