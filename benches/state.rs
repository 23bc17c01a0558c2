//! Added latency of a reservation per counter store: the same allowed call (an hourly
//! rate-limit counter and a daily spend counter, reserved together, then committed) against the memory
//! store, SQLite (a file in a temporary directory) and Redis (a `redis-server` this
//! benchmark starts on loopback). Prints p50/p90/p99 per store and the p50 each adds over
//! memory.
//!
//! `cargo bench --bench state` (needs `redis-server` on PATH). ROUNDS=5 CALLS=20000 change
//! the run's size.

#[path = "../tests/support/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use std::sync::Arc;
use std::time::Instant;

use intercept::engine::{Args, Call, Engine};
use intercept::policy;
use intercept::state::{MemoryStore, RedisOptions, RedisStore, SqliteStore, Store};
use serde_json::json;

const POLICY: &str = r#"tools:
  pay:
    rules:
      - name: calls
        rate_limit: 1000000000/hour
      - name: budget
        state: {counter: spent, window: day, increment_from: args.amount}
        conditions: [{path: state.pay.spent, op: lte, value: 1000000000000}]
"#;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Per-call latencies in nanoseconds, sorted.
fn measure(engine: &Engine, calls: usize) -> Vec<u64> {
    let args = json!({"amount": 3});
    let call = Call {
        tool: "pay",
        args: Some(Args::Value(&args)),
        ..Call::default()
    };
    let mut out = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let d = engine.evaluate(&call);
        let r = d.reservation.expect("allowed with a reservation");
        engine.commit(&r).expect("commit");
        out.push(t.elapsed().as_nanos() as u64);
    }
    out.sort_unstable();
    out
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let rounds = env_or("ROUNDS", 5);
    let calls = env_or("CALLS", 20_000);
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = redis_server::RedisServer::start(&[]);
    let compiled = Arc::new(policy::parse(POLICY, "bench").expect("policy"));
    let stores: Vec<(&str, Arc<dyn Store>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        (
            "sqlite",
            Arc::new(SqliteStore::open(&dir.path().join("bench.sqlite")).expect("sqlite")),
        ),
        (
            "redis",
            Arc::new(RedisStore::open(&server.url(), &RedisOptions::default()).expect("redis")),
        ),
    ];
    let engines: Vec<(&str, Engine)> = stores
        .into_iter()
        .map(|(name, store)| (name, Engine::new(compiled.clone(), store)))
        .collect();
    for (_, engine) in &engines {
        measure(engine, calls / 10); // warm up: connections, caches, scripts loaded
    }
    // Rounds interleave the stores, so a noisy moment hurts them alike.
    let mut p50 = vec![Vec::new(); engines.len()];
    let mut p90 = vec![Vec::new(); engines.len()];
    let mut p99 = vec![Vec::new(); engines.len()];
    for round in 0..rounds {
        for (i, (name, engine)) in engines.iter().enumerate() {
            let lat = measure(engine, calls);
            p50[i].push(pct(&lat, 0.5));
            p90[i].push(pct(&lat, 0.9));
            p99[i].push(pct(&lat, 0.99));
            eprintln!(
                "round {round} {name:>6}: p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs",
                pct(&lat, 0.5),
                pct(&lat, 0.9),
                pct(&lat, 0.99)
            );
        }
    }
    let base = median(p50[0].clone());
    println!(
        "\nreserve (2 counters) + commit, {calls} calls × {rounds} rounds, medians of rounds:"
    );
    println!("| store | p50 | p90 | p99 | added p50 vs memory | ratio p50 |");
    println!("|---|---|---|---|---|---|");
    for (i, (name, _)) in engines.iter().enumerate() {
        let m = median(p50[i].clone());
        println!(
            "| {name} | {:.1} µs | {:.1} µs | {:.1} µs | {:+.1} µs | {:.0}× |",
            m,
            median(p90[i].clone()),
            median(p99[i].clone()),
            m - base,
            m / base
        );
    }
}
