//! Counter stores: where rate limits and spend caps keep their counts.
//!
//! A call's counters are reserved together (all or none), before the call is forwarded;
//! the reservation is then committed when the tool ran, or rolled back when it failed.

mod memory;
mod sqlite;
mod window;

use std::fmt;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;
pub use window::{CalendarUnit, Millis, Window, now_millis, seconds_until};

/// One counter a call wants to add to.
#[derive(Debug, Clone, Copy)]
pub struct CounterRequest<'a> {
    pub key: &'a str,
    pub window: Window,
    /// The largest value the counter may reach.
    pub limit: u64,
    pub amount: u64,
}

/// What a successful reservation added, so it can be given back exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub entries: Vec<ReservedEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedEntry {
    pub key: String,
    pub window: Window,
    /// Start of the calendar window the amount went into; the time of the entry for
    /// rolling windows. A rollback never touches a later window.
    pub window_start: Millis,
    pub amount: u64,
    /// The rolling-window log entry, when the window is rolling.
    pub log_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    Granted(Reservation),
    /// The counter at `index` of the request would go over its limit; nothing was changed.
    Denied {
        index: usize,
        /// Whole seconds until the same request could pass; `None` if it never can
        /// (the amount alone exceeds the limit).
        retry_after: Option<u64>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database is busy (locked by another process for more than {0} ms)")]
    Busy(u64),
    #[error("state database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot open state database {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("invalid state setting \"{0}\": use \"memory\" or \"sqlite:PATH\"")]
    InvalidSpec(String),
}

/// A counter store. Implementations are safe to share between threads.
pub trait Store: Send + Sync + fmt::Debug {
    /// Adds every request's amount, or none of them if any would exceed its limit.
    fn reserve(&self, requests: &[CounterRequest<'_>], now: Millis)
    -> Result<Reserved, StoreError>;

    /// The tool ran: the reservation stays. Stores that count at reservation time have
    /// nothing left to do.
    fn commit(&self, _reservation: &Reservation) -> Result<(), StoreError> {
        Ok(())
    }

    /// The tool failed: gives the amounts back, in the windows they were taken from.
    fn rollback(&self, reservation: &Reservation) -> Result<(), StoreError>;

    /// The counter's current value in its current window.
    fn read(&self, key: &str, window: Window, now: Millis) -> Result<u64, StoreError>;

    /// A description without secrets, e.g. `memory` or `sqlite:/home/me/.intercept/state/intercept.sqlite`.
    fn describe(&self) -> String;
}

/// Opens a store from `memory` or `sqlite:PATH`.
pub fn open(spec: &str) -> Result<Box<dyn Store>, StoreError> {
    if spec == "memory" {
        return Ok(Box::new(MemoryStore::new()));
    }
    if let Some(path) = spec.strip_prefix("sqlite:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if !path.is_empty() {
            return Ok(Box::new(SqliteStore::open(std::path::Path::new(path))?));
        }
    }
    Err(StoreError::InvalidSpec(spec.to_string()))
}

/// When a rolling window's log allows `amount` more: drop the oldest entries until
/// the rest fits, and return when the last dropped one leaves the window.
fn rolling_retry(
    entries: &[(Millis, u64)],
    amount: u64,
    limit: u64,
    window_ms: Millis,
    now: Millis,
) -> Option<u64> {
    if amount > limit {
        return None;
    }
    let mut total: u64 = entries.iter().map(|(_, a)| a).sum();
    for (at, a) in entries {
        total -= a;
        if total + amount <= limit {
            return Some(seconds_until(now, at + window_ms).max(1));
        }
    }
    Some(1)
}
