//! Four real intercept processes share one counter store, SQLite or Redis: together they
//! allow exactly a limit's worth of calls, never pass a spend cap, and calls that fail
//! upstream give their amount back.

mod support;

use std::path::Path;

use intercept::state::{
    CalendarUnit, RedisOptions, RedisStore, SqliteStore, Store, Window, now_millis,
};
use serde_json::{Value, json};
use support::proxy_process::{Outcome, ProxyProcess};
use support::redis_server::RedisServer;

const PROCESSES: u64 = 4;
const CALLS_EACH: u64 = 60;
const CAP: u64 = 2000;

const POLICY: &str = r#"tools:
  hit:
    rules:
      - name: hits
        action: allow
        rate_limit: 100/minute
  pay:
    rules:
      - name: budget
        state: {counter: spent, window: day, increment_from: args.amount}
        conditions: [{path: state.pay.spent, op: lte, value: 2000}]
"#;

#[derive(Debug, Default)]
struct Tally {
    hits: u64,
    spent: u64,
    returned: u64,
    denied_payments: u64,
}

/// A minute boundary in the middle of the run would start a second window: begin early
/// in a minute (the run takes a few seconds).
fn wait_for_a_fresh_minute() {
    let into = now_millis() % 60_000;
    if into > 40_000 {
        std::thread::sleep(std::time::Duration::from_millis(
            (60_000 - into + 200) as u64,
        ));
    }
}

/// Runs the four processes at once and adds up what each client saw.
fn hammer(dir: &Path, flags: &[&str]) -> Tally {
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let workers: Vec<_> = (0..PROCESSES)
        .map(|w| {
            let (policy, dir) = (policy.clone(), dir.to_path_buf());
            let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
            std::thread::spawn(move || {
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                let stderr = dir.join(format!("intercept-{w}.log"));
                let mut proxy = ProxyProcess::start(&policy, &flags, &[], &stderr);
                let mut calls: Vec<(&str, Value)> = Vec::new();
                let mut amounts = Vec::new();
                for i in 0..CALLS_EACH {
                    calls.push(("hit", json!({})));
                    let amount = 7 + (w * 13 + i * 5) % 40;
                    // Every third payment fails upstream and must be given back.
                    calls.push(("pay", json!({"amount": amount, "fail": i % 3 == 0})));
                    amounts.push(amount);
                }
                let outcomes = proxy.pipeline(&calls);
                proxy.finish();
                let mut t = Tally::default();
                for (i, pair) in outcomes.chunks(2).enumerate() {
                    match &pair[0] {
                        Outcome::Ran => t.hits += 1,
                        Outcome::Denied(m) => assert!(m.contains("Rate limit"), "{m}"),
                        Outcome::Failed => panic!("hit failed"),
                    }
                    match &pair[1] {
                        Outcome::Ran => t.spent += amounts[i],
                        Outcome::Failed => {
                            t.spent += amounts[i];
                            t.returned += amounts[i];
                        }
                        Outcome::Denied(_) => t.denied_payments += 1,
                    }
                }
                t
            })
        })
        .collect();
    let mut total = Tally::default();
    for w in workers {
        let t = w.join().expect("worker");
        total.hits += t.hits;
        total.spent += t.spent;
        total.returned += t.returned;
        total.denied_payments += t.denied_payments;
    }
    total
}

fn check(total: &Tally, store: &dyn Store, started: i64) {
    // 4 × 60 attempts against 100 per minute: exactly 100 pass.
    assert_eq!(total.hits, 100, "{total:?}");
    let now = now_millis();
    let minute = Window::Calendar(CalendarUnit::Minute);
    assert_eq!(
        store.read("global:hit:_rate_minute", minute, now).unwrap(),
        100
    );

    let day = CalendarUnit::Day;
    if Window::calendar_start(day, started) != Window::calendar_start(day, now) {
        eprintln!("the run crossed midnight UTC; the daily spend counter restarted");
        return;
    }
    let kept = total.spent - total.returned;
    let counted = store
        .read("global:pay:spent", Window::Calendar(day), now)
        .unwrap();
    // Nothing lost or doubled: the store holds exactly what ran and was kept.
    assert_eq!(counted, kept, "{total:?}");
    assert!(counted <= CAP, "spend cap exceeded: {counted}");
    // The clients asked for about three times the cap: they really contended for it, and
    // the failed payments' amounts were given back and spent again.
    assert!(total.denied_payments > 0, "{total:?}");
    assert!(counted > CAP / 2, "cap never approached: {total:?}");
    assert!(
        total.spent > CAP,
        "no amount was given back and reused: {total:?}"
    );
}

#[test]
fn four_processes_share_limits_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    wait_for_a_fresh_minute();
    let started = now_millis();
    let total = hammer(
        dir.path(),
        &[
            "--state-dir",
            state_dir.to_str().unwrap(),
            "--log-level",
            "warn",
        ],
    );
    let store = SqliteStore::open(&state_dir.join("intercept.sqlite")).unwrap();
    check(&total, &store, started);
}

#[test]
fn four_processes_share_limits_in_redis() {
    let server = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    wait_for_a_fresh_minute();
    let started = now_millis();
    let url = server.url();
    let total = hammer(
        dir.path(),
        &[
            "--state-dsn",
            &url,
            "--state-prefix",
            "contention",
            "--log-level",
            "warn",
        ],
    );
    let store = RedisStore::open(
        &url,
        &RedisOptions {
            prefix: "contention".into(),
            ..Default::default()
        },
    )
    .unwrap();
    check(&total, &store, started);
}
