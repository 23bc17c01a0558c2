//! A SQLite counter file locked by someone else: a reservation waits briefly, then the
//! call fails closed with a message saying so (or is allowed, unenforced, in fail-open
//! mode), and the store works again as soon as the lock is gone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use intercept::engine::{Call, Engine, Reason};
use intercept::policy;
use intercept::state::{FailMode, SqliteStore, Store};

const POLICY: &str = r#"tools:
  limited:
    rules:
      - action: allow
        rate_limit: 5/minute
  free:
    rules:
      - action: allow
"#;

fn call(tool: &str) -> Call<'_> {
    Call {
        tool,
        ..Call::default()
    }
}

#[test]
fn a_busy_database_fails_closed_with_a_clear_message_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intercept.sqlite");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let closed = Engine::new(Arc::new(policy::parse(POLICY, "p").unwrap()), store.clone());
    let open = closed.clone().with_fail_mode(FailMode::Open);
    assert!(closed.evaluate(&call("limited")).is_allowed());

    // Another process holds the write lock.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let waited = Instant::now();
    let d = closed.evaluate(&call("limited"));
    assert!(
        waited.elapsed() >= Duration::from_millis(1500),
        "did not wait"
    );
    assert!(waited.elapsed() < Duration::from_secs(10));
    assert_eq!(d.reason, Reason::StateUnavailable);
    let message = d.message.as_deref().unwrap();
    assert!(message.contains("state store is unavailable"), "{message}");
    assert!(message.contains("busy"), "{message}");
    assert!(!message.to_lowercase().contains("rate limit"), "{message}");
    assert!(closed.evaluate(&call("free")).is_allowed());

    let d = open.evaluate(&call("limited"));
    assert!(d.is_allowed() && d.reservation.is_none());
    assert!(d.unenforced.as_deref().unwrap().contains("busy"));

    other.execute_batch("ROLLBACK").unwrap();
    let d = closed.evaluate(&call("limited"));
    assert!(d.is_allowed(), "{:?}", d.message);
    assert!(d.reservation.is_some());
}

#[test]
fn a_database_busy_at_start_up_still_opens_and_fails_by_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intercept.sqlite");
    drop(SqliteStore::open(&path).unwrap());
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    // Another process is mid-transaction as this one starts: opening must not fail.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let closed = Engine::new(Arc::new(policy::parse(POLICY, "p").unwrap()), store);
    assert_eq!(
        closed.evaluate(&call("limited")).reason,
        Reason::StateUnavailable
    );
    other.execute_batch("ROLLBACK").unwrap();
    assert!(closed.evaluate(&call("limited")).is_allowed());
}
