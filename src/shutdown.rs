//! A process-wide shutdown request.
//!
//! The native binary sets it from its signal handlers; inside Node the launcher's JS
//! signal handlers set it through the addon's `shutdown()`, because a Rust signal handler
//! chained to Node's would re-raise forever.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use tokio::sync::Notify;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static NOTIFY: Notify = Notify::const_new();
/// The signal that asked for the shutdown, if one did (the first one counts).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Exit code of a command ended by a shutdown request that names no signal: SIGINT's.
const INTERRUPTED: i32 = 130;

/// Asks everything that waits on [`wait`] to shut down.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
    NOTIFY.notify_waiters();
}

/// [`request`], on behalf of this signal (its number), which then decides [`exit_code`].
pub fn request_by_signal(signal: i32) {
    if signal > 0 {
        let _ = SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    }
    request();
}

/// The exit code of a command that a shutdown request ended: `128 + signal`, as a shell
/// reports a process killed by that signal.
pub fn exit_code() -> i32 {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => INTERRUPTED,
        signal => 128 + signal,
    }
}

pub fn is_requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Resolves once a shutdown has been requested (at once if it already was).
pub async fn wait() {
    loop {
        let notified = NOTIFY.notified();
        if is_requested() {
            return;
        }
        notified.await;
    }
}
