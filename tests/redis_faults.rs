//! Faults of a Redis store seen through real intercept processes: Redis stopped mid-run
//! (fail closed, then recovery with nothing lost or doubled), fail open, start-up with
//! Redis down, and a password that appears in no log.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use intercept::state::{CalendarUnit, RedisOptions, RedisStore, Store, Window, now_millis};
use serde_json::json;
use support::proxy_process::{Outcome, ProxyProcess};
use support::redis_server::RedisServer;

const PASSWORD: &str = "s3cret-Redis-pa55word";

const POLICY: &str = r#"tools:
  hit:
    rules:
      - action: allow
        rate_limit: 100/hour
  free:
    rules:
      - action: allow
"#;

fn policy(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("policy.yaml");
    std::fs::write(&p, POLICY).unwrap();
    p
}

fn dsn(server: &RedisServer) -> String {
    format!("redis://:{PASSWORD}@127.0.0.1:{}/0", server.port())
}

fn hits(server: &RedisServer) -> u64 {
    let store = RedisStore::open(&dsn(server), &RedisOptions::default()).unwrap();
    store
        .read(
            "global:hit:_rate_hour",
            Window::Calendar(CalendarUnit::Hour),
            now_millis(),
        )
        .unwrap()
}

fn assert_unavailable(outcome: &Outcome) {
    match outcome {
        Outcome::Denied(m) => {
            assert!(m.contains("state store is unavailable"), "{m}");
            assert!(!m.to_lowercase().contains("rate limit"), "{m}");
            assert!(!m.contains(PASSWORD), "{m}");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// Calls `hit` until it runs (the proxy reconnects by itself); every denial meanwhile must
/// be for the unavailable store.
fn until_recovered(proxy: &mut ProxyProcess) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match proxy.call("hit", json!({})) {
            Outcome::Ran => return,
            other => assert_unavailable(&other),
        }
        assert!(Instant::now() < deadline, "never recovered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn hour_changed(since: i64) -> bool {
    let hour = CalendarUnit::Hour;
    Window::calendar_start(hour, since) != Window::calendar_start(hour, now_millis())
}

fn assert_no_password_in(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        !text.contains(PASSWORD),
        "{} shows the password",
        path.display()
    );
}

#[test]
fn fail_closed_while_redis_is_down_then_recovers() {
    let mut server = RedisServer::start(&["--requirepass", PASSWORD]);
    let dir = tempfile::tempdir().unwrap();
    let (stderr, audit) = (
        dir.path().join("stderr.log"),
        dir.path().join("audit.jsonl"),
    );
    let started = now_millis();
    let audit_flag = audit.to_str().unwrap();
    let mut proxy = ProxyProcess::start(
        &policy(dir.path()),
        &["--audit-log", audit_flag, "--log-level", "debug"],
        &[("INTERCEPT_STATE_DSN", &dsn(&server))],
        &stderr,
    );
    for _ in 0..3 {
        assert_eq!(proxy.call("hit", json!({})), Outcome::Ran);
    }
    server.stop();
    for _ in 0..3 {
        assert_unavailable(&proxy.call("hit", json!({})));
        // Calls that need no counter keep flowing.
        assert_eq!(proxy.call("free", json!({})), Outcome::Ran);
    }
    server.restart();
    until_recovered(&mut proxy);
    assert_eq!(proxy.call("hit", json!({})), Outcome::Ran);
    proxy.finish();
    if !hour_changed(started) {
        // Three before, two after: none lost, none doubled, no denied call counted.
        assert_eq!(hits(&server), 5);
    }
    assert_no_password_in(&stderr);
    assert_no_password_in(&audit);
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(log.contains("redis://:***@127.0.0.1"), "{log}");
}

#[test]
fn fail_open_allows_and_records_the_call_as_unenforced() {
    let mut server = RedisServer::start(&["--requirepass", PASSWORD]);
    let dir = tempfile::tempdir().unwrap();
    let (stderr, audit) = (
        dir.path().join("stderr.log"),
        dir.path().join("audit.jsonl"),
    );
    let started = now_millis();
    let url = dsn(&server);
    let mut proxy = ProxyProcess::start(
        &policy(dir.path()),
        &[
            "--state-dsn",
            &url,
            "--state-fail-mode",
            "open",
            "--audit-log",
            audit.to_str().unwrap(),
        ],
        &[],
        &stderr,
    );
    assert_eq!(proxy.call("hit", json!({})), Outcome::Ran);
    server.stop();
    for _ in 0..3 {
        assert_eq!(proxy.call("hit", json!({})), Outcome::Ran);
    }
    server.restart();
    assert_eq!(proxy.call("hit", json!({})), Outcome::Ran);
    proxy.finish();
    if !hour_changed(started) {
        // The calls allowed while Redis was down were not counted.
        let counted = hits(&server);
        assert!(counted == 2 || counted == 1, "{counted}");
    }
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(log.contains("without enforcing its limits"), "{log}");
    let events = std::fs::read_to_string(&audit).unwrap();
    let unenforced = events
        .lines()
        .filter(|l| l.contains("\"tool_call\"") && l.contains("\"unenforced\""))
        .count();
    assert!(unenforced >= 3, "{events}");
    assert_no_password_in(&stderr);
    assert_no_password_in(&audit);
}

#[test]
fn start_up_with_redis_down_follows_the_fail_mode() {
    let mut server = RedisServer::start(&["--requirepass", PASSWORD]);
    server.stop();
    let dir = tempfile::tempdir().unwrap();
    let url = dsn(&server);
    let policy = policy(dir.path());

    let stderr = dir.path().join("closed.log");
    let mut closed = ProxyProcess::start(&policy, &["--state-dsn", &url], &[], &stderr);
    assert_unavailable(&closed.call("hit", json!({})));
    assert_eq!(closed.call("free", json!({})), Outcome::Ran);

    let open_log = dir.path().join("open.log");
    let mut open = ProxyProcess::start(
        &policy,
        &["--state-dsn", &url, "--state-fail-mode", "open"],
        &[],
        &open_log,
    );
    assert_eq!(open.call("hit", json!({})), Outcome::Ran);

    server.restart();
    until_recovered(&mut closed);
    assert_eq!(open.call("hit", json!({})), Outcome::Ran);
    closed.finish();
    open.finish();
    for log in [&stderr, &open_log] {
        assert_no_password_in(log);
        let text = std::fs::read_to_string(log).unwrap();
        assert!(text.contains("is unavailable"), "{text}");
    }
}

#[test]
fn four_processes_through_an_outage_lose_and_double_nothing() {
    let mut server = RedisServer::start(&["--requirepass", PASSWORD]);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "tools:\n  hit:\n    rules:\n      - rate_limit: 200/hour\n",
    )
    .unwrap();
    let started = now_millis();
    let url = dsn(&server);
    let mut proxies: Vec<ProxyProcess> = (0..4)
        .map(|i| {
            let log = dir.path().join(format!("intercept-{i}.log"));
            ProxyProcess::start(&policy, &[], &[("INTERCEPT_STATE_DSN", &url)], &log)
        })
        .collect();
    let burst = |proxies: &mut Vec<ProxyProcess>, n: usize| -> Vec<Outcome> {
        std::thread::scope(|s| {
            let handles: Vec<_> = proxies
                .iter_mut()
                .map(|p| s.spawn(move || p.pipeline(&vec![("hit", json!({})); n])))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("driver"))
                .collect()
        })
    };
    let ran = |outcomes: &[Outcome]| outcomes.iter().filter(|o| **o == Outcome::Ran).count();

    let before = burst(&mut proxies, 30);
    assert_eq!(ran(&before), 120);
    server.stop();
    let during = burst(&mut proxies, 10);
    during.iter().for_each(assert_unavailable);
    server.restart();
    let after = burst(&mut proxies, 30);
    for o in &after {
        match o {
            Outcome::Ran => {}
            Outcome::Denied(m) if m.contains("Rate limit") => {}
            other => assert_unavailable(other),
        }
    }
    // 120 before the outage and 120 attempts after, against 200: exactly 80 more pass.
    assert_eq!(ran(&after), 80);
    for p in proxies {
        p.finish();
    }
    if !hour_changed(started) {
        assert_eq!(hits(&server), 200);
    }
}
