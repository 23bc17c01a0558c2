//! Which program runs the command line: the native `intercept` binary, or Node through the
//! addon's `run()`. Only that call says Node; being built with the `node` feature does not
//! (a native binary built with `--features node` is still a native binary).

use std::sync::atomic::{AtomicBool, Ordering};

static UNDER_NODE: AtomicBool = AtomicBool::new(false);

/// Called by the addon's `run()` before it hands argv to the command line.
#[cfg(feature = "node")]
pub(crate) fn mark_under_node() {
    UNDER_NODE.store(true, Ordering::Relaxed);
}

/// Whether the command line runs inside Node.
pub(crate) fn under_node() -> bool {
    UNDER_NODE.load(Ordering::Relaxed)
}
