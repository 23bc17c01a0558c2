//! The proxy core alone, for instruction counts: N `tools/call` round trips (the request
//! as `benches/proxy.js` sends it, its echoed response) through `client_message` and
//! `server_message`, with the policy of `benches/proxy.js` (`benches/policy.yaml`).
//!
//! Run: `cargo bench --bench proxy_core -- 100000` prints the time per round trip;
//! under `valgrind --tool=callgrind`, two runs with different N give instructions per call.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use intercept::engine::Engine;
use intercept::policy;
use intercept::proxy::{Inbound, LineBuffers, Session, SessionOptions};
use intercept::state::MemoryStore;

const POLICY: &str = include_str!("policy.yaml");

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let policy = Arc::new(policy::parse(POLICY, "bench").expect("valid policy"));
    let proxy = Session::new(
        Engine::new(policy, Arc::new(MemoryStore::new())),
        SessionOptions {
            session: "bench".into(),
            ..SessionOptions::default()
        },
    );
    let body = "x".repeat(200);
    let args = format!(r#"{{"repo":"web","title":"Fix the build","body":"{body}"}}"#);
    let requests: Vec<String> = (0..64)
        .map(|id| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{args}}}}}"#
            )
        })
        .collect();
    let escaped = args.replace('"', "\\\"");
    let responses: Vec<String> = (0..64)
        .map(|id| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"{escaped}"}}]}}}}"#
            )
        })
        .collect();
    // As the stdio transport calls it: output appended to buffers written once per read
    // (one buffer set per direction, as the transport's two threads have).
    let (mut from_client, mut from_server) = (LineBuffers::default(), LineBuffers::default());
    // As `benches/proxy.js` opens: the client names itself, so each call carries its name.
    let initialize = br#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
    proxy.client_message(Inbound::Line(initialize), &mut from_client);
    from_client.clear();
    let (start, cpu_start) = (Instant::now(), thread_cpu_ns());
    for i in 0..n as usize {
        proxy.client_message(
            Inbound::Line(black_box(requests[i % 64].as_bytes())),
            &mut from_client,
        );
        assert!(
            from_client.to_client.is_empty()
                && from_client.to_server.len() == requests[i % 64].len() + 1
        );
        proxy.server_message(
            Inbound::Line(black_box(responses[i % 64].as_bytes())),
            &mut from_server,
        );
        assert_eq!(from_server.to_client.len(), responses[i % 64].len() + 1);
        black_box((&from_client, &from_server));
        from_client.clear();
        from_server.clear();
    }
    let per_call = start.elapsed().as_nanos() as f64 / n as f64;
    match (cpu_start, thread_cpu_ns()) {
        (Some(a), Some(b)) => println!(
            "{n} round trips, {per_call:.0} ns each, {:.0} ns of CPU each",
            (b - a) as f64 / n as f64
        ),
        _ => println!("{n} round trips, {per_call:.0} ns each"),
    }
}

/// CPU time of this thread (Linux): unlike the wall clock, not inflated by other load.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}
