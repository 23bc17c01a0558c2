//! Several processes share one SQLite counter file: together they never pass a limit,
//! and no reservation or rollback is lost.
//!
//! The workers are this test binary run again with `WORKER_ENV` set: real processes with
//! their own connections, contending for SQLite's write lock.

use std::process::Command;
use std::sync::Arc;

use intercept::engine::{Args, Call, Engine};
use intercept::policy;
use intercept::state::{CalendarUnit, SqliteStore, Store, Window};
use serde_json::json;

const WORKER_ENV: &str = "INTERCEPT_SQLITE_WORKER";
const WORKERS: usize = 4;
const ATTEMPTS: usize = 60;

const POLICY: &str = r#"tools:
  call:
    rules:
      - action: allow
        rate_limit: {max: 100, window: 3600}
  pay:
    rules:
      - name: budget
        state: {counter: spent, window: day, increment_from: args.amount}
        conditions: [{path: state.pay.spent, op: lte, value: 2000}]
"#;

/// Runs as a worker when spawned by the test below; does nothing in a normal test run.
#[test]
fn worker_entry() {
    let Ok(path) = std::env::var(WORKER_ENV) else {
        return;
    };
    let worker: u64 = std::env::var("WORKER_INDEX").unwrap().parse().unwrap();
    let store = Arc::new(SqliteStore::open(std::path::Path::new(&path)).unwrap());
    let engine = Engine::new(Arc::new(policy::parse(POLICY, "p").unwrap()), store);
    let (mut calls, mut spent, mut returned) = (0u64, 0u64, 0u64);
    for i in 0..ATTEMPTS as u64 {
        if engine
            .evaluate(&Call {
                tool: "call",
                ..Call::default()
            })
            .is_allowed()
        {
            calls += 1;
        }
        let amount = 7 + (worker * 13 + i * 5) % 40;
        let args = json!({ "amount": amount });
        let d = engine.evaluate(&Call {
            tool: "pay",
            args: Some(Args::Value(&args)),
            ..Call::default()
        });
        if let Some(r) = &d.reservation {
            spent += amount;
            // Every third payment "fails upstream" and is given back.
            if i % 3 == 0 {
                engine.rollback(r).unwrap();
                returned += amount;
            }
        }
    }
    println!("RESULT calls={calls} spent={spent} returned={returned}");
}

#[test]
fn four_processes_never_exceed_a_shared_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intercept.sqlite");
    let exe = std::env::current_exe().unwrap();
    let started = intercept::state::now_millis();
    // All workers start before any finishes, so they contend for the same counters.
    let handles: Vec<_> = (0..WORKERS)
        .map(|i| {
            Command::new(&exe)
                .args(["worker_entry", "--exact", "--nocapture", "--test-threads=1"])
                .env(WORKER_ENV, &path)
                .env("WORKER_INDEX", i.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let (mut calls, mut spent, mut returned) = (0u64, 0u64, 0u64);
    for h in handles {
        let out = h.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "worker failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.find("RESULT").map(|at| &l[at..]))
            .unwrap_or_else(|| panic!("no result from worker: {stdout}"));
        for part in line.split_whitespace().skip(1) {
            let (k, v) = part.split_once('=').unwrap();
            let v: u64 = v.parse().unwrap();
            match k {
                "calls" => calls += v,
                "spent" => spent += v,
                "returned" => returned += v,
                _ => unreachable!(),
            }
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    let now = intercept::state::now_millis();

    // 4 × 60 attempts against one limit of 100 per rolling hour: exactly 100 pass.
    assert_eq!(calls, 100);
    let rolling = Window::Rolling { seconds: 3600 };
    assert_eq!(
        store.read("global:call:_rate_3600s", rolling, now).unwrap(),
        100
    );

    let day = CalendarUnit::Day;
    if Window::calendar_start(day, started) != Window::calendar_start(day, now) {
        eprintln!("the run crossed midnight UTC; the daily spend counter restarted");
        return;
    }
    let counted = store
        .read("global:pay:spent", Window::Calendar(day), now)
        .unwrap();
    assert!(counted <= 2000, "spend cap exceeded: {counted}");
    // Nothing lost or doubled: the counter holds exactly what was kept.
    assert_eq!(counted, spent - returned);
    // The workers asked for about three times the cap, so they really contended for it.
    assert!(counted > 1000, "cap never approached: {counted}");
}
