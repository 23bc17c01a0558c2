//! A SQLite store: persistent, and shared safely by every intercept process on a machine.
//!
//! Each reservation is one `BEGIN IMMEDIATE` transaction, so the check and the increment
//! of all of a call's counters happen under SQLite's write lock: several processes can
//! never together push a counter past its limit. WAL mode lets readers run alongside.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use super::{
    CounterRequest, Millis, Reservation, Reserved, ReservedEntry, Store, StoreError, Window,
    rolling_retry, seconds_until, ttl_millis,
};

/// How long a reservation waits for another process's transaction before failing closed.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);
/// Expired rows are deleted after this many reservations (and when the store opens).
const SWEEP_EVERY: u64 = 1000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS counters (
    key          TEXT PRIMARY KEY,
    window_ms    INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    value        INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS counters_expires ON counters(expires_at);
CREATE TABLE IF NOT EXISTS rolling_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    key        TEXT NOT NULL,
    window_ms  INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    amount     INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rolling_log_key_at ON rolling_log(key, at);
CREATE INDEX IF NOT EXISTS rolling_log_expires ON rolling_log(expires_at);
CREATE TABLE IF NOT EXISTS records (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
";

#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    reserves: std::sync::atomic::AtomicU64,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`; its directory is created private.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private_fs::create_private_dir(dir).map_err(|e| open_err(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_err(e.to_string()))?;
        with_busy_retry(|| {
            // journal_mode returns a row, so it is read rather than executed.
            let _: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
            conn.execute_batch(SCHEMA)
        })
        .map_err(|e| open_err(e.to_string()))?;
        let store = SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            reserves: Default::default(),
        };
        // Housekeeping only: a busy database must not stop the store from opening.
        let _ = store.sweep(super::now_millis());
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sweep(&self, now: Millis) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute("DELETE FROM counters WHERE expires_at <= ?1", [now])
            .map_err(busy)?;
        conn.execute("DELETE FROM rolling_log WHERE expires_at <= ?1", [now])
            .map_err(busy)?;
        conn.execute("DELETE FROM records WHERE expires_at <= ?1", [now])
            .map_err(busy)?;
        Ok(())
    }
}

/// Several processes opening the file at once (switching it to WAL, creating the schema)
/// can meet locks that SQLite's busy handler does not wait for, to avoid deadlocks;
/// retry those for about as long as the busy timeout.
fn with_busy_retry<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let mut attempt = 0;
    loop {
        match f() {
            Err(e) if is_busy(&e) && attempt < 80 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            other => return other,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn busy(e: rusqlite::Error) -> StoreError {
    if is_busy(&e) {
        StoreError::Busy(BUSY_TIMEOUT.as_millis() as u64)
    } else {
        StoreError::Sqlite(e)
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Adds one request inside the open transaction; `Err(Ok(retry))` when over the limit.
fn add(
    tx: &rusqlite::Transaction<'_>,
    req: &CounterRequest<'_>,
    now: Millis,
) -> Result<Result<ReservedEntry, Option<u64>>, rusqlite::Error> {
    let window_ms = req.window.millis();
    match req.window {
        Window::Calendar(unit) => {
            let start = Window::calendar_start(unit, now);
            let row: Option<(i64, i64, i64)> = tx
                .prepare_cached(
                    "SELECT window_ms, window_start, value FROM counters WHERE key = ?1",
                )?
                .query_row([req.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let current = match row {
                Some((w, s, v)) if w == window_ms && s == start => v.max(0) as u64,
                _ => 0,
            };
            if current.saturating_add(req.amount) > req.limit {
                let retry =
                    (req.amount <= req.limit).then(|| seconds_until(now, start + window_ms).max(1));
                return Ok(Err(retry));
            }
            tx.prepare_cached(
                "INSERT INTO counters (key, window_ms, window_start, value, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(key) DO UPDATE SET window_ms = excluded.window_ms, window_start = excluded.window_start,
                 value = excluded.value, expires_at = excluded.expires_at",
            )?
            .execute(params![req.key, window_ms, start, to_i64(current + req.amount), start + window_ms])?;
            Ok(Ok(ReservedEntry {
                key: req.key.to_string(),
                window: req.window,
                window_start: start,
                amount: req.amount,
                log_id: None,
            }))
        }
        Window::Rolling { .. } => {
            let entries: Vec<(Millis, u64)> = tx
                .prepare_cached("SELECT at, amount FROM rolling_log WHERE key = ?1 AND window_ms = ?2 AND at > ?3 ORDER BY at, id")?
                .query_map(params![req.key, window_ms, now - window_ms], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
                .collect::<Result<_, _>>()?;
            let current: u64 = entries.iter().map(|(_, a)| a).sum();
            if current.saturating_add(req.amount) > req.limit {
                return Ok(Err(rolling_retry(
                    &entries, req.amount, req.limit, window_ms, now,
                )));
            }
            let mut log_id = None;
            if req.amount > 0 {
                tx.prepare_cached("INSERT INTO rolling_log (key, window_ms, at, amount, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
                    .execute(params![req.key, window_ms, now, to_i64(req.amount), now + window_ms])?;
                log_id = Some(tx.last_insert_rowid());
            }
            Ok(Ok(ReservedEntry {
                key: req.key.to_string(),
                window: req.window,
                window_start: now,
                amount: req.amount,
                log_id,
            }))
        }
    }
}

impl Store for SqliteStore {
    fn reserve(
        &self,
        requests: &[CounterRequest<'_>],
        now: Millis,
    ) -> Result<Reserved, StoreError> {
        if self
            .reserves
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % SWEEP_EVERY
            == SWEEP_EVERY - 1
        {
            // Housekeeping only: never a reason to deny the call.
            let _ = self.sweep(now);
        }
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(busy)?;
        let mut entries = Vec::with_capacity(requests.len());
        for (index, req) in requests.iter().enumerate() {
            match add(&tx, req, now).map_err(busy)? {
                Ok(entry) => entries.push(entry),
                // Dropping the transaction rolls back what this call already added.
                Err(retry_after) => return Ok(Reserved::Denied { index, retry_after }),
            }
        }
        tx.commit().map_err(busy)?;
        Ok(Reserved::Granted(Reservation { entries }))
    }

    fn rollback(&self, reservation: &Reservation) -> Result<(), StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(busy)?;
        for e in &reservation.entries {
            match e.log_id {
                Some(id) => {
                    tx.prepare_cached("DELETE FROM rolling_log WHERE id = ?1")
                        .map_err(busy)?
                        .execute([id])
                        .map_err(busy)?;
                }
                None => {
                    // Only the window the amount was taken from: never the next one.
                    tx.prepare_cached(
                        "UPDATE counters SET value = max(0, value - ?1) WHERE key = ?2 AND window_start = ?3 AND window_ms = ?4",
                    )
                    .map_err(busy)?
                    .execute(params![to_i64(e.amount), e.key, e.window_start, e.window.millis()])
                    .map_err(busy)?;
                }
            }
        }
        tx.commit().map_err(busy)
    }

    fn read(&self, key: &str, window: Window, now: Millis) -> Result<u64, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let window_ms = window.millis();
        let value: i64 = match window {
            Window::Calendar(unit) => conn
                .prepare_cached("SELECT value FROM counters WHERE key = ?1 AND window_ms = ?2 AND window_start = ?3")
                .map_err(busy)?
                .query_row(params![key, window_ms, Window::calendar_start(unit, now)], |r| r.get(0))
                .optional()
                .map_err(busy)?
                .unwrap_or(0),
            Window::Rolling { .. } => conn
                .prepare_cached("SELECT COALESCE(SUM(amount), 0) FROM rolling_log WHERE key = ?1 AND window_ms = ?2 AND at > ?3")
                .map_err(busy)?
                .query_row(params![key, window_ms, now - window_ms], |r| r.get(0))
                .map_err(busy)?,
        };
        Ok(value.max(0) as u64)
    }

    fn put_record(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        now: Millis,
    ) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.prepare_cached(
            "INSERT INTO records (key, value, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        )
        .and_then(|mut st| st.execute(params![key, value, now.saturating_add(ttl_millis(ttl))]))
        .map_err(busy)?;
        Ok(())
    }

    fn get_record(&self, key: &str, now: Millis) -> Result<Option<String>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.prepare_cached("SELECT value FROM records WHERE key = ?1 AND expires_at > ?2")
            .and_then(|mut st| st.query_row(params![key, now], |r| r.get(0)).optional())
            .map_err(busy)
    }

    fn take_record(&self, key: &str, now: Millis) -> Result<Option<String>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        // One statement: another process's take of the same record sees it gone.
        let taken: Option<(String, Millis)> = conn
            .prepare_cached("DELETE FROM records WHERE key = ?1 RETURNING value, expires_at")
            .and_then(|mut st| {
                st.query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(busy)?;
        Ok(taken
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value))
    }

    fn touch_record(&self, key: &str, ttl: Duration, now: Millis) -> Result<bool, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let changed = conn
            .prepare_cached("UPDATE records SET expires_at = ?1 WHERE key = ?2 AND expires_at > ?3")
            .and_then(|mut st| st.execute(params![now.saturating_add(ttl_millis(ttl)), key, now]))
            .map_err(busy)?;
        Ok(changed > 0)
    }

    fn delete_record(&self, key: &str) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.prepare_cached("DELETE FROM records WHERE key = ?1")
            .and_then(|mut st| st.execute([key]))
            .map_err(busy)?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}
