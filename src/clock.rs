//! Time as the proxy reads it, passed in rather than read from the system directly, so
//! that tests can move it forward: pending requests' TTL, `--request-timeout`, rate-limit
//! windows and idle sessions all expire by it.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::state::Millis;

/// A source of time: monotonic for durations and deadlines, wall time for counters'
/// windows and the audit log.
pub trait Clock: Send + Sync + Debug {
    /// Monotonic time, for durations and deadlines.
    fn now(&self) -> Instant;
    /// Milliseconds since the Unix epoch.
    fn wall_millis(&self) -> Millis;
}

/// A clock to share between the parts of one proxy.
pub type SharedClock = Arc<dyn Clock>;

/// The system's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall_millis(&self) -> Millis {
        crate::state::now_millis()
    }
}

/// The system clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to ([`ManualClock::advance`]): for tests of
/// expiry that must not depend on how fast the machine is.
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    wall_base: Millis,
    /// Nanoseconds advanced so far.
    offset: AtomicU64,
}

impl ManualClock {
    /// A clock that starts at the system's current time and then stands still.
    pub fn new() -> Self {
        ManualClock {
            base: Instant::now(),
            wall_base: crate::state::now_millis(),
            offset: AtomicU64::new(0),
        }
    }

    /// Moves both the monotonic and the wall time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.offset.fetch_add(nanos, Ordering::SeqCst);
    }

    fn offset(&self) -> Duration {
        Duration::from_nanos(self.offset.load(Ordering::SeqCst))
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + self.offset()
    }

    fn wall_millis(&self) -> Millis {
        self.wall_base + self.offset().as_millis() as Millis
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::new();
        let (t0, w0) = (clock.now(), clock.wall_millis());
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now() - t0, Duration::from_millis(1500));
        assert_eq!(clock.wall_millis() - w0, 1500);
    }
}
