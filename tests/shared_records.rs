//! Records shared between instances (gateway sessions, parked reservations) behave alike in
//! every store: memory, a SQLite file shared by two processes' connections, and a real
//! `redis-server`. Taking a record is exclusive: of many takers, one gets it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use intercept::state::{MemoryStore, RedisOptions, RedisStore, SqliteStore, Store, now_millis};
use support::redis_server::RedisServer;

fn contract(store: &dyn Store) {
    let now = now_millis();
    let hour = Duration::from_secs(3600);
    assert_eq!(store.get_record("a", now).unwrap(), None);
    store
        .put_record("a", r#"{"upstream":"s1"}"#, hour, now)
        .unwrap();
    assert_eq!(
        store.get_record("a", now).unwrap().as_deref(),
        Some(r#"{"upstream":"s1"}"#)
    );
    store.put_record("a", "replaced", hour, now).unwrap();
    assert_eq!(
        store.get_record("a", now).unwrap().as_deref(),
        Some("replaced")
    );
    assert!(store.touch_record("a", hour, now).unwrap());
    assert!(!store.touch_record("missing", hour, now).unwrap());
    assert_eq!(
        store.take_record("a", now).unwrap().as_deref(),
        Some("replaced")
    );
    assert_eq!(store.take_record("a", now).unwrap(), None, "taken once");
    store.put_record("b", "x", hour, now).unwrap();
    store.delete_record("b").unwrap();
    assert_eq!(store.get_record("b", now).unwrap(), None);
}

/// Expiry by this process's clock (memory, SQLite).
fn expiry_by_clock(store: &dyn Store) {
    let now = now_millis();
    store
        .put_record("short", "v", Duration::from_millis(500), now)
        .unwrap();
    assert!(store.get_record("short", now + 499).unwrap().is_some());
    assert_eq!(store.get_record("short", now + 500).unwrap(), None);
    assert!(
        !store
            .touch_record("short", Duration::from_secs(60), now + 500)
            .unwrap()
    );
    assert_eq!(store.take_record("short", now + 500).unwrap(), None);
}

/// Of `takers` threads taking one record at once, exactly one gets it.
fn exclusive_take(stores: Vec<Arc<dyn Store>>) {
    let now = now_millis();
    for round in 0..20 {
        let key = format!("parked-{round}");
        stores[0]
            .put_record(&key, "reservation", Duration::from_secs(60), now)
            .unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(stores.len()));
        let handles: Vec<_> = stores
            .iter()
            .cloned()
            .map(|s| {
                let (key, barrier) = (key.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    s.take_record(&key, now).unwrap().is_some()
                })
            })
            .collect();
        let got = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|got| *got)
            .count();
        assert_eq!(got, 1, "round {round}: {got} takers got the record");
    }
}

#[test]
fn memory_records() {
    let store = MemoryStore::new();
    contract(&store);
    expiry_by_clock(&store);
}

#[test]
fn sqlite_records_are_shared_by_connections_to_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    contract(&store);
    expiry_by_clock(&store);
    let other = SqliteStore::open(&path).unwrap();
    store
        .put_record("shared", "yes", Duration::from_secs(60), now_millis())
        .unwrap();
    assert_eq!(
        other.get_record("shared", now_millis()).unwrap().as_deref(),
        Some("yes")
    );
    let stores: Vec<Arc<dyn Store>> = (0..4)
        .map(|_| Arc::new(SqliteStore::open(&path).unwrap()) as Arc<dyn Store>)
        .collect();
    exclusive_take(stores);
}

#[test]
fn redis_records_are_shared_and_expire_by_the_servers_clock() {
    let server = RedisServer::start(&[]);
    let open = || RedisStore::open(&server.url(), &RedisOptions::default()).unwrap();
    let store = open();
    contract(&store);
    store
        .put_record("short", "v", Duration::from_millis(200), now_millis())
        .unwrap();
    // The local clock is ignored: only the server's time to live counts.
    assert!(
        store
            .get_record("short", now_millis() + 3_600_000)
            .unwrap()
            .is_some()
    );
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(store.get_record("short", now_millis()).unwrap(), None);
    let stores: Vec<Arc<dyn Store>> = (0..4).map(|_| Arc::new(open()) as Arc<dyn Store>).collect();
    exclusive_take(stores);
}

#[test]
fn redis_records_of_two_deployments_are_apart() {
    let server = RedisServer::start(&[]);
    let with_prefix = |prefix: &str| {
        RedisStore::open(
            &server.url(),
            &RedisOptions {
                prefix: prefix.into(),
                ..RedisOptions::default()
            },
        )
        .unwrap()
    };
    let (a, b) = (with_prefix("a"), with_prefix("b"));
    a.put_record("session", "of a", Duration::from_secs(60), now_millis())
        .unwrap();
    assert_eq!(b.get_record("session", now_millis()).unwrap(), None);
}
