//! A request to shut down, handed to everything that must obey it.
//!
//! The native binary requests it from its signal handlers; inside Node the launcher's JS
//! signal handlers request it through the addon's `shutdown()`, because a Rust signal
//! handler chained to Node's would re-raise forever. A handle is made per command run and
//! passed down, so two runs in one process (tests, an embedding host) stop separately.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use tokio_util::sync::CancellationToken;

/// Exit code of a command ended by a shutdown request that names no signal: SIGINT's.
const INTERRUPTED: i32 = 130;

/// A shutdown request shared by the clones of one handle.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    /// The signal that asked for the shutdown, if one did (the first one counts).
    signal: Arc<AtomicI32>,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks everything that waits on [`Shutdown::requested`] to shut down, on behalf of
    /// `signal` (its number), which then decides [`Shutdown::exit_code`].
    pub fn request(&self, signal: Option<i32>) {
        if let Some(signal) = signal.filter(|s| *s > 0) {
            let _ = self
                .signal
                .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        }
        self.token.cancel();
    }

    pub fn is_requested(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once a shutdown has been requested (at once if it already was).
    pub async fn requested(&self) {
        self.token.cancelled().await;
    }

    /// The exit code of a command that a shutdown request ended: `128 + signal`, as a
    /// shell reports a process killed by that signal.
    pub fn exit_code(&self) -> i32 {
        match self.signal.load(Ordering::SeqCst) {
            0 => INTERRUPTED,
            signal => 128 + signal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_wakes_waiters_and_names_its_signal() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.is_requested());
        let waiter = tokio::spawn({
            let s = shutdown.clone();
            async move { s.requested().await }
        });
        shutdown.request(Some(15));
        shutdown.request(Some(2));
        waiter.await.unwrap();
        assert!(shutdown.is_requested());
        // The first signal counts.
        assert_eq!(shutdown.exit_code(), 128 + 15);
        // A handle of its own is untouched.
        let other = Shutdown::new();
        assert!(!other.is_requested());
        assert_eq!(other.exit_code(), 130);
    }
}
