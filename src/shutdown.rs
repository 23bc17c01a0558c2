//! A process-wide shutdown request.
//!
//! The native binary sets it from its signal handlers; inside Node the launcher's JS
//! signal handlers set it through the addon's `shutdown()`, because a Rust signal handler
//! chained to Node's would re-raise forever.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static NOTIFY: Notify = Notify::const_new();

/// Asks everything that waits on [`wait`] to shut down.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
    NOTIFY.notify_waiters();
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
