//! Runs N proxied tools/call round trips, with or without the audit log, for counting
//! instructions per thread under callgrind (see docs/benchmarks.md):
//! `valgrind --tool=callgrind --separate-threads=yes target/release/examples/audit_cost N audited`
use intercept::engine::Engine;
use intercept::policy;
use intercept::state::MemoryStore;
use std::hint::black_box;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args[1].parse().unwrap();
    let audited = args[2] == "audited";
    let text = "tools:\n  tool_100:\n    rules:\n      - name: checks\n        conditions:\n          - {path: args.repo, op: neq, value: prod}\n          - {path: args.title, op: regex, value: '^[A-Z]'}\n";
    let dir = std::env::temp_dir().join(format!("intercept-cost-{}", std::process::id()));
    let audit = audited.then(|| {
        Arc::new(intercept::audit::AuditLog::open(&dir.join("e.jsonl"), "cost", false).unwrap())
    });
    let proxy = intercept::proxy::Session::new(
        Engine::new(
            Arc::new(policy::parse(text, "cost").unwrap()),
            Arc::new(MemoryStore::new()),
        ),
        intercept::proxy::SessionOptions {
            identity: None,
            session: "0123456789abcdef".into(),
            audit: audit.clone(),
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
    let mut out = intercept::proxy::Routes::default();
    for i in 0..n {
        proxy.client_message(
            intercept::proxy::Inbound::Line(black_box(request.as_bytes())),
            &mut out,
        );
        proxy.server_message(
            intercept::proxy::Inbound::Line(black_box(response.as_bytes())),
            &mut out,
        );
        black_box(&out);
        out.0.clear();
        // Let the writer catch up now and then, as it would between bursts.
        if i % 5000 == 4999
            && let Some(a) = &audit
        {
            a.sync();
        }
    }
    if let Some(a) = &audit {
        a.close();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
