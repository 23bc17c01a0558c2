//! Engine and validation speed on a 300-tool policy with mixed rules.
//! Run: `cargo bench --bench engine`; medians land in target/criterion/*/new/estimates.json.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use intercept::engine::{Args, Call, Engine};
use intercept::policy;
use intercept::state::MemoryStore;
use serde_json::json;

/// 300 tools, a quarter each with: argument conditions, a deny rule, a rate limit,
/// a spend counter; plus hidden tools, a glob and a `"*"` rule.
pub fn policy_300() -> String {
    let mut y = String::from("version: \"1\"\nhide: [");
    y.push_str(
        &(0..10)
            .map(|i| format!("secret_{i}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    y.push_str("]\ntools:\n");
    for i in 0..300 {
        y.push_str(&format!("  tool_{i}:\n    rules:\n"));
        match i % 4 {
            0 => y.push_str(
                "      - name: checks\n        conditions:\n          - {path: args.repo, op: neq, value: prod}\n          - {path: args.title, op: regex, value: '^[A-Z]'}\n          - {path: args.count, op: lte, value: 100}\n",
            ),
            1 => y.push_str("      - name: never\n        action: deny\n"),
            2 => y.push_str("      - name: limit\n        rate_limit: {max: 30, window: 60}\n"),
            _ => y.push_str(&format!(
                "      - name: spend\n        state: {{counter: spent, window: day, increment_from: args.amount}}\n        conditions: [{{path: state.tool_{i}.spent, op: lte, value: 1000000000000}}]\n"
            )),
        }
    }
    y.push_str("  'admin_*':\n    rules:\n      - {name: no admin, action: deny}\n");
    y.push_str("  '*':\n    rules:\n      - name: no dry runs\n        conditions: [{path: args.dry_run, op: exists, value: false}]\n");
    y
}

fn benches(c: &mut Criterion) {
    let text = policy_300();
    let compiled = Arc::new(policy::parse(&text, "bench").expect("valid"));
    let engine = Engine::new(compiled, Arc::new(MemoryStore::new()));
    let args = json!({"repo": "dev", "title": "Fix the build", "count": 3});
    let amount = json!({"amount": 1});

    let allow = Call {
        tool: "tool_100",
        args: Some(Args::Value(&args)),
        ..Call::default()
    };
    assert!(engine.evaluate(&allow).is_allowed());
    c.bench_function("evaluate/allow_no_counter", |b| {
        b.iter(|| black_box(engine.evaluate(black_box(&allow))))
    });

    let deny = Call {
        tool: "tool_101",
        args: Some(Args::Value(&args)),
        ..Call::default()
    };
    assert!(!engine.evaluate(&deny).is_allowed());
    c.bench_function("evaluate/deny_rule", |b| {
        b.iter(|| black_box(engine.evaluate(black_box(&deny))))
    });

    // A rolling limit of 30 per 60 s with a call every 2.001 s: the steady state of an
    // agent under its limit, every call allowed and its log at about 30 entries.
    let counted = Call {
        tool: "tool_102",
        args: Some(Args::Value(&args)),
        ..Call::default()
    };
    let mut now = intercept::state::now_millis();
    c.bench_function("evaluate/allow_memory_rolling_counter", |b| {
        b.iter(|| {
            now += 2001;
            let d = engine.evaluate_at(black_box(&counted), now);
            debug_assert!(d.is_allowed());
            black_box(d)
        })
    });

    let spend = Call {
        tool: "tool_103",
        args: Some(Args::Value(&amount)),
        ..Call::default()
    };
    assert!(engine.evaluate(&spend).is_allowed());
    c.bench_function("evaluate/allow_memory_spend_counter", |b| {
        b.iter(|| black_box(engine.evaluate(black_box(&spend))))
    });

    c.bench_function("validate/300_tools", |b| {
        b.iter(|| black_box(policy::validate(black_box(&text))))
    });

    // The proxy core on one tools/call and its response, as the stdio proxy sees them.
    let proxy = intercept::proxy::Session::new(
        Engine::new(
            Arc::new(policy::parse(&text, "bench").expect("valid")),
            Arc::new(MemoryStore::new()),
        ),
        intercept::proxy::SessionOptions {
            identity: None,
            session: "bench".into(),
            ..Default::default()
        },
    );
    let body = "x".repeat(200);
    let request = format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"tool_100","arguments":{{"repo":"web","title":"Fix the build","count":3,"body":"{body}"}}}}}}"#
    );
    let response = format!(
        r#"{{"jsonrpc":"2.0","id":7,"result":{{"content":[{{"type":"text","text":"{body}"}}]}}}}"#
    );
    c.bench_function("proxy/tools_call_round_trip", |b| {
        b.iter(|| {
            black_box(client_message(&proxy, black_box(request.as_bytes())));
            black_box(server_message(&proxy, black_box(response.as_bytes())));
        })
    });

    // The same with the audit log on: two events per call, written in the background.
    let dir = std::env::temp_dir().join(format!("intercept-bench-{}", std::process::id()));
    let audit = Arc::new(
        intercept::audit::AuditLog::open(&dir.join("events.jsonl"), "bench", false)
            .expect("audit log"),
    );
    let audited = intercept::proxy::Session::new(
        Engine::new(
            Arc::new(policy::parse(&text, "bench").expect("valid")),
            Arc::new(MemoryStore::new()),
        ),
        intercept::proxy::SessionOptions {
            identity: None,
            session: "bench".into(),
            audit: Some(audit.clone()),
            ..Default::default()
        },
    );
    // The call path's share: a batch of calls is timed, then the writer catches up
    // untimed, so the measure is what a call pays, not the writer's work competing for the
    // same cores (that shows in the whole-process benchmark, and below).
    const BATCH: u64 = 2000;
    c.bench_function("proxy/tools_call_round_trip_audited", |b| {
        b.iter_custom(|iters| {
            let mut spent = std::time::Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH);
                let start = std::time::Instant::now();
                for _ in 0..n {
                    black_box(client_message(&audited, black_box(request.as_bytes())));
                    black_box(server_message(&audited, black_box(response.as_bytes())));
                }
                spent += start.elapsed();
                audit.sync();
                left -= n;
            }
            spent
        })
    });
    // The writer's share per call (two events: JSON, argument hash, chain hash, write).
    c.bench_function("audit/writer_per_call", |b| {
        b.iter_custom(|iters| {
            let mut spent = std::time::Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH);
                for _ in 0..n {
                    black_box(client_message(&audited, black_box(request.as_bytes())));
                    black_box(server_message(&audited, black_box(response.as_bytes())));
                }
                let start = std::time::Instant::now();
                audit.sync();
                spent += start.elapsed();
                left -= n;
            }
            spent
        })
    });
    audit.close();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);

/// One client line through the proxy core, collected as the tests collect it.
fn client_message(proxy: &intercept::proxy::Session, line: &[u8]) -> Vec<intercept::proxy::Route> {
    let mut out = intercept::proxy::Routes::default();
    proxy.client_message(intercept::proxy::Inbound::Line(line), &mut out);
    out.0
}

/// One server line through the proxy core, collected.
fn server_message(proxy: &intercept::proxy::Session, line: &[u8]) -> Vec<intercept::proxy::Route> {
    let mut out = intercept::proxy::Routes::default();
    proxy.server_message(intercept::proxy::Inbound::Line(line), &mut out);
    out.0
}
