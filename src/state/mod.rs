//! Counter stores: where rate limits and spend caps keep their counts.
//!
//! A call's counters are reserved together (all or none), before the call is forwarded;
//! the reservation is then committed when the tool ran, or rolled back when it failed.

mod fail_mode;
mod memory;
pub mod redis;
mod sqlite;
mod window;

use std::fmt;
use std::time::Duration;

pub use fail_mode::FailMode;
pub use memory::MemoryStore;
pub use redis::{RedisOptions, RedisStore};
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
    Sqlite(rusqlite::Error),
    #[error("cannot open state database {path}: {reason}")]
    Open { path: String, reason: String },
    #[error(
        "invalid state setting \"{0}\": use \"memory\", \"sqlite:PATH\" or a redis://, rediss:// or unix:// DSN"
    )]
    InvalidSpec(String),
    #[error(
        "invalid Redis DSN: {0} (expected redis://[user:pass@]host:port/db, rediss://… or unix:///path/to/socket)"
    )]
    InvalidDsn(String),
    #[error("invalid state prefix \"{0}\": it must be non-empty and contain no braces")]
    InvalidPrefix(String),
    #[error("Redis state store {store} is unavailable: {reason}")]
    RedisUnavailable { store: String, reason: String },
    #[error("Redis state store {store} did not answer within {ms} ms")]
    RedisTimeout { store: String, ms: u64 },
    #[error("Redis state store {store} answered unexpectedly: {reason}")]
    RedisReply { store: String, reason: String },
    #[error("cannot start the Redis client: {0}")]
    Runtime(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
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

    /// Whether the store can be used now (a round trip for remote stores).
    fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Stores `value` under `key` for `ttl`, replacing what was there.
    ///
    /// Records are small texts shared by every instance that uses the store, so that any
    /// of them behind a load balancer can take up what another began: a gateway session,
    /// a reservation parked until the client retries its call. `now` is this process's
    /// clock; Redis keeps time to live by its own.
    fn put_record(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        now: Millis,
    ) -> Result<(), StoreError>;

    /// The record under `key`, unless it has expired.
    fn get_record(&self, key: &str, now: Millis) -> Result<Option<String>, StoreError>;

    /// Reads and deletes the record in one step: of several instances taking it at once,
    /// exactly one gets it.
    fn take_record(&self, key: &str, now: Millis) -> Result<Option<String>, StoreError>;

    /// Gives the record a new time to live from now; `false` if it no longer exists.
    fn touch_record(&self, key: &str, ttl: Duration, now: Millis) -> Result<bool, StoreError>;

    fn delete_record(&self, key: &str) -> Result<(), StoreError>;

    /// A description without secrets, e.g. `memory`,
    /// `sqlite:/home/me/.intercept/state/intercept.sqlite` or `redis://app:***@cache:6379/0`.
    fn describe(&self) -> String;
}

/// Opens a store from `memory`, `sqlite:PATH` or a Redis DSN (`redis://…`, `rediss://…`,
/// `unix://…`).
pub fn open(spec: &str) -> Result<Box<dyn Store>, StoreError> {
    open_with(spec, &RedisOptions::default())
}

/// [`open`], with settings for a Redis store.
pub fn open_with(spec: &str, redis: &RedisOptions) -> Result<Box<dyn Store>, StoreError> {
    if redis::dsn::is_redis_dsn(spec) {
        return Ok(Box::new(RedisStore::open(spec, redis)?));
    }
    if spec == "memory" {
        return Ok(Box::new(MemoryStore::new()));
    }
    if let Some(path) = spec.strip_prefix("sqlite:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if !path.is_empty() {
            return Ok(Box::new(SqliteStore::open(std::path::Path::new(path))?));
        }
    }
    // Never echo something that may carry credentials.
    let shown = if spec.contains('@') || spec.contains("pass") {
        "<hidden>"
    } else {
        spec
    };
    Err(StoreError::InvalidSpec(shown.to_string()))
}

/// A time to live in milliseconds, at least 1 (0 would mean "never expires" to Redis).
fn ttl_millis(ttl: Duration) -> Millis {
    Millis::try_from(ttl.as_millis())
        .unwrap_or(Millis::MAX)
        .max(1)
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
