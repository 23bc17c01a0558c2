//! The Redis store against a real `redis-server`: atomic reservations, both kinds of
//! window, window-aware rollback, the server's clock, expiry, Cluster slots, fail modes,
//! recovery, and a password that never shows.

mod support;

use std::sync::Arc;

use intercept::engine::{Args, Call, Engine, Reason};
use intercept::policy;
use intercept::state::{
    CalendarUnit, CounterRequest, FailMode, RedisOptions, RedisStore, Reserved, Store, Window,
    now_millis,
};
use serde_json::json;
use support::redis_server::{self, RedisServer};

const MINUTE: Window = Window::Calendar(CalendarUnit::Minute);
const HOUR: Window = Window::Calendar(CalendarUnit::Hour);

fn store(server: &RedisServer) -> RedisStore {
    RedisStore::open(&server.url(), &RedisOptions::default()).unwrap()
}

fn req(key: &str, window: Window, limit: u64, amount: u64) -> CounterRequest<'_> {
    CounterRequest {
        key,
        window,
        limit,
        amount,
    }
}

fn granted(r: Reserved) -> intercept::state::Reservation {
    match r {
        Reserved::Granted(r) => r,
        other => panic!("expected a grant, got {other:?}"),
    }
}

#[test]
fn all_counters_of_a_call_or_none() {
    let server = RedisServer::start(&[]);
    let s = store(&server);
    let now = now_millis();
    // a allows 3, b allows 2: the third call passes a but not b, and changes neither.
    for _ in 0..2 {
        granted(
            s.reserve(&[req("a", HOUR, 3, 1), req("b", HOUR, 2, 1)], now)
                .unwrap(),
        );
    }
    let denied = s
        .reserve(&[req("a", HOUR, 3, 1), req("b", HOUR, 2, 1)], now)
        .unwrap();
    match denied {
        Reserved::Denied { index, retry_after } => {
            assert_eq!(index, 1);
            let retry = retry_after.unwrap();
            assert!((1..=3600).contains(&retry), "{retry}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.read("a", HOUR, now).unwrap(), 2);
    assert_eq!(s.read("b", HOUR, now).unwrap(), 2);
    // An amount larger than the limit can never pass.
    match s.reserve(&[req("c", HOUR, 5, 6)], now).unwrap() {
        Reserved::Denied { retry_after, .. } => assert_eq!(retry_after, None),
        other => panic!("{other:?}"),
    }
    // A call naming one counter twice counts both.
    match s
        .reserve(&[req("d", HOUR, 3, 2), req("d", HOUR, 3, 2)], now)
        .unwrap()
    {
        Reserved::Denied { index, .. } => assert_eq!(index, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.read("d", HOUR, now).unwrap(), 0);
}

#[test]
fn rolling_windows_count_the_last_n_seconds() {
    let server = RedisServer::start(&[]);
    let s = store(&server);
    let w = Window::Rolling { seconds: 2 };
    let now = now_millis();
    let first = granted(s.reserve(&[req("r", w, 3, 2)], now).unwrap());
    granted(s.reserve(&[req("r", w, 3, 1)], now).unwrap());
    assert_eq!(s.read("r", w, now).unwrap(), 3);
    match s.reserve(&[req("r", w, 3, 1)], now).unwrap() {
        Reserved::Denied { retry_after, .. } => assert_eq!(retry_after, Some(2)),
        other => panic!("{other:?}"),
    }
    // Giving the first entry back frees its amount at once.
    s.rollback(&first).unwrap();
    assert_eq!(s.read("r", w, now).unwrap(), 1);
    granted(s.reserve(&[req("r", w, 3, 2)], now).unwrap());
    // Rolling back twice gives back once.
    s.rollback(&first).unwrap();
    assert_eq!(s.read("r", w, now).unwrap(), 3);
    // After the window, everything has left it.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(s.read("r", w, now_millis()).unwrap(), 0);
    granted(s.reserve(&[req("r", w, 3, 3)], now_millis()).unwrap());
}

#[test]
fn rollback_never_touches_a_later_window() {
    let server = RedisServer::start(&[]);
    let s = store(&server);
    let now = now_millis();
    let r = granted(s.reserve(&[req("w", MINUTE, 10, 4)], now).unwrap());
    // Pretend the reservation was made in the previous minute: its rollback must not
    // decrement the current one.
    let mut stale = r.clone();
    stale.entries[0].window_start -= 60_000;
    s.rollback(&stale).unwrap();
    assert_eq!(s.read("w", MINUTE, now).unwrap(), 4);
    s.rollback(&r).unwrap();
    assert_eq!(s.read("w", MINUTE, now).unwrap(), 0);
    // Never below zero.
    s.rollback(&r).unwrap();
    assert_eq!(s.read("w", MINUTE, now).unwrap(), 0);
}

#[test]
fn windows_start_by_the_servers_clock() {
    let server = RedisServer::start(&[]);
    let s = store(&server);
    // This process's clock claims 1970: the server's decides.
    let r = granted(s.reserve(&[req("clock", MINUTE, 10, 1)], 0).unwrap());
    let start = r.entries[0].window_start;
    let local = now_millis();
    assert_eq!(start % 60_000, 0);
    assert!(
        (local - start) < 120_000 && start <= local + 60_000,
        "{start} vs {local}"
    );
    assert_eq!(s.read("clock", MINUTE, 0).unwrap(), 1);
}

#[test]
fn keys_expire_after_their_window() {
    let server = RedisServer::start(&[]);
    let s = store(&server);
    let now = now_millis();
    granted(s.reserve(&[req("t", HOUR, 10, 1)], now).unwrap());
    granted(
        s.reserve(&[req("u", Window::Rolling { seconds: 30 }, 10, 1)], now)
            .unwrap(),
    );
    for key in ["{intercept}:c:t", "{intercept}:c:u", "{intercept}:l:u"] {
        let ttl: i64 = server.command(&["PTTL", key]).parse().unwrap();
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
    }
    let ttl: i64 = server
        .command(&["PTTL", "{intercept}:c:t"])
        .parse()
        .unwrap();
    assert!(ttl <= 3_601_000);
    let ttl: i64 = server
        .command(&["PTTL", "{intercept}:l:u"])
        .parse()
        .unwrap();
    assert!(ttl <= 31_000);
}

#[test]
fn prefixes_keep_deployments_apart() {
    let server = RedisServer::start(&[]);
    let a = RedisStore::open(
        &server.url(),
        &RedisOptions {
            prefix: "team-a".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let b = RedisStore::open(
        &server.url(),
        &RedisOptions {
            prefix: "team-b".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let now = now_millis();
    granted(a.reserve(&[req("k", HOUR, 1, 1)], now).unwrap());
    granted(b.reserve(&[req("k", HOUR, 1, 1)], now).unwrap());
    assert!(matches!(
        a.reserve(&[req("k", HOUR, 1, 1)], now).unwrap(),
        Reserved::Denied { .. }
    ));
    assert_eq!(server.command(&["EXISTS", "{team-a}:c:k"]), "1");
    assert!(a.describe().contains("prefix team-a"));
    let bad = RedisStore::open(
        &server.url(),
        &RedisOptions {
            prefix: "x}y".into(),
            ..Default::default()
        },
    );
    assert!(bad.is_err());
}

#[test]
fn scripts_run_on_a_redis_cluster_node() {
    // A one-node cluster owning every slot: Redis Cluster refuses a script whose keys
    // are in different slots (CROSSSLOT), so this proves the key layout.
    let server = RedisServer::start(&["--cluster-enabled", "yes"]);
    assert_eq!(
        server.command(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
        "OK"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server
        .command(&["CLUSTER", "INFO"])
        .contains("cluster_state:ok")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "cluster never became ok"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let s = store(&server);
    let now = now_millis();
    let rolling = Window::Rolling { seconds: 60 };
    let r = granted(
        s.reserve(
            &[
                req("global:create_issue:_rate_minute", MINUTE, 5, 1),
                req("identity:alice:_global:spend", HOUR, 100, 30),
                req("session:abc:create_issue:_rate_60s", rolling, 5, 1),
            ],
            now,
        )
        .unwrap(),
    );
    s.rollback(&r).unwrap();
    assert_eq!(
        s.read("identity:alice:_global:spend", HOUR, now).unwrap(),
        0
    );
    let slot_a = server.command(&["CLUSTER", "KEYSLOT", &s.counter_key("anything")]);
    let slot_b = server.command(&["CLUSTER", "KEYSLOT", &s.log_key("session:x:y:z")]);
    assert_eq!(slot_a, slot_b);
}

#[test]
fn the_password_never_shows() {
    let password = "correct-horse-battery-staple";
    let mut server = RedisServer::start(&["--requirepass", password]);
    let dsn = format!("redis://:{password}@127.0.0.1:{}/0", server.port());
    let s = RedisStore::open(&dsn, &RedisOptions::default()).unwrap();
    assert!(!s.describe().contains(password), "{}", s.describe());
    assert!(s.describe().contains("***"));
    s.check().unwrap();
    let now = now_millis();
    granted(s.reserve(&[req("p", HOUR, 5, 1)], now).unwrap());

    // A wrong password: the error names neither.
    let wrong = format!("redis://:not-{password}@127.0.0.1:{}/0", server.port());
    let w = RedisStore::open(&wrong, &RedisOptions::default()).unwrap();
    let e = w
        .reserve(&[req("p", HOUR, 5, 1)], now)
        .unwrap_err()
        .to_string();
    assert!(!e.contains(password), "{e}");

    // The server gone: neither.
    server.stop();
    let e = s
        .reserve(&[req("p", HOUR, 5, 1)], now)
        .unwrap_err()
        .to_string();
    assert!(!e.contains(password), "{e}");
    assert!(
        e.contains("unavailable") || e.contains("did not answer"),
        "{e}"
    );
    let e = s.check().unwrap_err().to_string();
    assert!(!e.contains(password), "{e}");

    // A DSN that does not parse.
    let e = RedisStore::open(
        &format!("redis://:{password}@127.0.0.1:{}/x", server.port()),
        &RedisOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(!e.contains(password), "{e}");
}

const POLICY: &str = r#"tools:
  limited:
    rules:
      - action: allow
        rate_limit: 5/minute
  free:
    rules:
      - action: allow
"#;

fn engine(store: Arc<dyn Store>, mode: FailMode) -> Engine {
    Engine::new(Arc::new(policy::parse(POLICY, "p").unwrap()), store).with_fail_mode(mode)
}

fn call(tool: &str) -> Call<'_> {
    Call {
        tool,
        args: None,
        ..Call::default()
    }
}

#[test]
fn fail_closed_denies_then_recovers_with_nothing_lost_or_doubled() {
    let mut server = RedisServer::start(&[]);
    let store: Arc<dyn Store> = Arc::new(store(&server));
    let e = engine(store.clone(), FailMode::Closed);
    for _ in 0..2 {
        assert!(e.evaluate(&call("limited")).is_allowed());
    }
    server.stop();
    let d = e.evaluate(&call("limited"));
    assert!(!d.is_allowed());
    assert_eq!(d.reason, Reason::StateUnavailable);
    let message = d.message.as_deref().unwrap();
    assert!(message.contains("state store is unavailable"), "{message}");
    assert!(!message.to_lowercase().contains("rate limit"), "{message}");
    // Calls that need no state keep flowing.
    assert!(e.evaluate(&call("free")).is_allowed());

    server.restart();
    // The store reconnects by itself; the two counted calls survived, none was added.
    let now = now_millis();
    let minute_start = Window::calendar_start(CalendarUnit::Minute, now);
    let d = e.evaluate(&call("limited"));
    assert!(d.is_allowed(), "{:?}", d.message);
    if Window::calendar_start(CalendarUnit::Minute, now_millis()) != minute_start {
        eprintln!("the minute changed during the test; counts restarted");
        return;
    }
    assert_eq!(
        store
            .read("global:limited:_rate_minute", MINUTE, now)
            .unwrap(),
        3
    );
    assert!(e.evaluate(&call("limited")).is_allowed());
    assert!(e.evaluate(&call("limited")).is_allowed());
    let d = e.evaluate(&call("limited"));
    assert_eq!(d.reason, Reason::RateLimit);
}

#[test]
fn fail_open_allows_and_says_so() {
    let mut server = RedisServer::start(&[]);
    let store: Arc<dyn Store> = Arc::new(store(&server));
    let e = engine(store, FailMode::Open);
    let d = e.evaluate(&call("limited"));
    assert!(d.is_allowed() && d.unenforced.is_none());
    server.stop();
    for _ in 0..10 {
        let d = e.evaluate(&call("limited"));
        assert!(d.is_allowed());
        assert!(d.reservation.is_none());
        let why = d.unenforced.as_deref().expect("marked unenforced");
        assert!(
            why.contains("unavailable") || why.contains("did not answer"),
            "{why}"
        );
    }
    let d = e.evaluate(&call("free"));
    assert!(d.is_allowed() && d.unenforced.is_none());
}

#[test]
fn a_store_that_is_down_at_start_is_used_once_it_answers() {
    let mut server = RedisServer::start(&[]);
    server.stop();
    let store: Arc<dyn Store> = Arc::new(store(&server));
    assert!(store.check().is_err());
    let e = engine(store.clone(), FailMode::Closed);
    assert_eq!(
        e.evaluate(&call("limited")).reason,
        Reason::StateUnavailable
    );
    server.restart();
    assert!(e.evaluate(&call("limited")).is_allowed());
    store.check().unwrap();
}

#[test]
fn spend_counters_take_and_give_back_amounts() {
    let server = RedisServer::start(&[]);
    let policy = r#"tools:
  pay:
    rules:
      - name: budget
        state: {counter: spent, window: day, increment_from: args.amount}
        conditions: [{path: state.pay.spent, op: lte, value: 1000}]
"#;
    let store: Arc<dyn Store> = Arc::new(store(&server));
    let e = Engine::new(Arc::new(policy::parse(policy, "p").unwrap()), store.clone());
    let pay = |amount: u64| {
        let args = json!({ "amount": amount });
        e.evaluate(&Call {
            tool: "pay",
            args: Some(Args::Value(&args)),
            ..Call::default()
        })
    };
    assert!(pay(400).is_allowed());
    let d = pay(500);
    assert!(d.is_allowed());
    assert!(!pay(200).is_allowed());
    e.rollback(d.reservation.as_ref().unwrap()).unwrap();
    assert!(pay(600).is_allowed());
    assert!(!pay(1).is_allowed());
    assert!(pay(0).is_allowed());
    let day = Window::Calendar(CalendarUnit::Day);
    assert_eq!(
        store.read("global:pay:spent", day, now_millis()).unwrap(),
        1000
    );
}

#[test]
fn the_first_call_after_redis_returns_passes() {
    let mut server = RedisServer::start(&[]);
    let s = store(&server);
    let hour = [req("back", HOUR, 100, 1)];
    for pause_ms in [0, 300] {
        granted(s.reserve(&hour, 0).unwrap());
        server.stop();
        // Failed attempts while it is down, remembered by the connection.
        for _ in 0..3 {
            assert!(s.reserve(&hour, 0).is_err());
        }
        std::thread::sleep(std::time::Duration::from_millis(pause_ms));
        server.restart();
        granted(s.reserve(&hour, 0).unwrap());
    }
    assert_eq!(s.read("back", HOUR, 0).unwrap(), 4);
}

#[test]
fn a_three_node_cluster_is_used_through_any_of_its_nodes() {
    // A cluster that is not there yet: an error to report, not a failure to start.
    let absent = RedisStore::open("redis+cluster://127.0.0.1:1", &RedisOptions::default()).unwrap();
    assert!(absent.check().is_err());
    assert!(absent.reserve(&[req("k", HOUR, 1, 1)], 0).is_err());

    let nodes: Vec<RedisServer> = (0..3)
        .map(|_| RedisServer::start(&["--cluster-enabled", "yes"]))
        .collect();
    let addresses: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port()))
        .collect();
    let created = std::process::Command::new(redis_server::redis_cli_binary())
        .args(["--cluster", "create"])
        .args(&addresses)
        .arg("--cluster-yes")
        .output()
        .expect("redis-cli runs");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stdout)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !nodes
        .iter()
        .all(|n| n.command(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "cluster never became ok"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Two of the three seeds do not own the deployment's slot: their stores must follow
    // the cluster's redirection.
    let now = now_millis();
    let stores: Vec<RedisStore> = nodes
        .iter()
        .map(|n| {
            let dsn = format!("redis+cluster://127.0.0.1:{}", n.port());
            RedisStore::open(&dsn, &RedisOptions::default()).unwrap()
        })
        .collect();
    let rolling = Window::Rolling { seconds: 60 };
    for s in &stores {
        assert!(s.describe().starts_with("redis+cluster://127.0.0.1:"));
        s.check().unwrap();
        let r = granted(
            s.reserve(
                &[
                    req("global:t:_rate_hour", HOUR, 3, 1),
                    req("global:t:r", rolling, 3, 1),
                ],
                now,
            )
            .unwrap(),
        );
        // Given back and taken again: still one per store.
        s.rollback(&r).unwrap();
        granted(
            s.reserve(
                &[
                    req("global:t:_rate_hour", HOUR, 3, 1),
                    req("global:t:r", rolling, 3, 1),
                ],
                now,
            )
            .unwrap(),
        );
    }
    assert!(matches!(
        stores[0]
            .reserve(&[req("global:t:_rate_hour", HOUR, 3, 1)], now)
            .unwrap(),
        Reserved::Denied { index: 0, .. }
    ));
    for s in &stores {
        assert_eq!(s.read("global:t:_rate_hour", HOUR, now).unwrap(), 3);
        assert_eq!(s.read("global:t:r", rolling, now).unwrap(), 3);
    }
}

#[test]
fn check_reads_the_shared_counters_and_consumes_none() {
    let server = RedisServer::start(&[]);
    let options = RedisOptions {
        prefix: "chk".into(),
        ..Default::default()
    };
    let s = RedisStore::open(&server.url(), &options).unwrap();
    for _ in 0..2 {
        granted(
            s.reserve(&[req("global:t:_rate_hour", HOUR, 3, 1)], 0)
                .unwrap(),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        "tools:\n  t:\n    rules:\n      - rate_limit: 3/hour\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_intercept"))
        .args(["check", "-c"])
        .arg(&policy)
        .args(["--tool", "t", "--repeat", "2", "--state", &server.url()])
        .args(["--state-prefix", "chk"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].contains("allow") && lines[1].contains("deny"),
        "{stdout}"
    );
    assert_eq!(s.read("global:t:_rate_hour", HOUR, 0).unwrap(), 2);
}
