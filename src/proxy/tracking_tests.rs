//! Every client request is tracked until answered, so no server message can reach the
//! client as the answer to a listing the proxy did not filter.

use std::sync::Arc;

use super::*;
use crate::clock::ManualClock;
use crate::policy;
use crate::state::MemoryStore;

fn proxy() -> Session {
    proxy_with_clock(Arc::new(ManualClock::new()))
}

fn proxy_with_clock(clock: Arc<ManualClock>) -> Session {
    let policy = Arc::new(policy::parse("hide: [secret]\n", "test").expect("valid policy"));
    Session::new(
        Engine::new(policy, Arc::new(MemoryStore::new())).with_clock(clock.clone()),
        SessionOptions {
            session: "s".into(),
            clock,
            ..SessionOptions::default()
        },
    )
    .with_max_in_flight(4)
}

const LIST: &[u8] = br#"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#;
const LISTING: &[u8] =
    br#"{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"ok"},{"name":"secret"}]}}"#;

/// What the client receives of a server line: the lines, as text.
fn to_client(p: &Session, line: &[u8]) -> Vec<String> {
    p.server_routes(line)
        .into_iter()
        .map(|r| match r {
            Route::Client(l) => String::from_utf8(l).unwrap(),
            Route::Server(l) => panic!("to the server: {}", String::from_utf8_lossy(&l)),
        })
        .collect()
}

fn assert_nothing_hidden(lines: &[String]) {
    assert!(lines.iter().all(|l| !l.contains("secret")), "{lines:?}");
}

#[test]
fn a_cancelled_listing_is_still_filtered() {
    let p = proxy();
    p.client_routes(LIST);
    p.client_routes(
        br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":5}}"#,
    );
    let got = to_client(&p, LISTING);
    assert_eq!(got.len(), 1);
    assert_nothing_hidden(&got);
}

#[test]
fn an_answer_to_no_pending_request_is_not_forwarded() {
    let p = proxy();
    assert!(to_client(&p, LISTING).is_empty());
    p.client_routes(LIST);
    assert_eq!(to_client(&p, LISTING).len(), 1);
    assert!(to_client(&p, LISTING).is_empty(), "a second answer");
}

#[test]
fn an_ambiguous_message_never_carries_an_unfiltered_listing() {
    for line in [
        // A batch, whose id a scan of the text cannot find.
        br#"[{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"secret"}]}},{"a":1,"a":2}]"#
            .as_slice(),
        // Two ids: a scan finds the first, a client may take the last.
        br#"{"jsonrpc":"2.0","id":9,"id":5,"result":{"tools":[{"name":"secret"}]}}"#,
        // A server request reusing the listing's id, with a key twice below it.
        br#"{"jsonrpc":"2.0","id":5,"method":"x","params":{"a":1,"a":2}}"#,
    ] {
        let p = proxy();
        p.client_routes(LIST);
        p.client_routes(br#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#);
        let mut got = to_client(&p, line);
        got.extend(to_client(&p, LISTING));
        assert_nothing_hidden(&got);
    }
}

#[test]
fn max_in_flight_counts_every_request() {
    let p = proxy();
    for id in 0..4 {
        let ping = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
        assert!(matches!(
            &p.client_routes(ping.as_bytes())[..],
            [Route::Server(_)]
        ));
    }
    let refused = p.client_routes(LIST);
    let [Route::Client(line)] = &refused[..] else {
        panic!("{refused:?}")
    };
    assert!(String::from_utf8_lossy(line).contains("max_in_flight"));
    assert_eq!(p.pending_count(), 4);
}

#[test]
fn the_id_of_a_request_the_proxy_answered_itself_is_not_taken_again() {
    let clock = Arc::new(ManualClock::new());
    let p = proxy_with_clock(clock.clone());
    let ping = br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#;
    assert!(matches!(&p.client_routes(ping)[..], [Route::Server(_)]));
    // Timed out: the proxy answers it, and the server's answer may still come.
    clock.advance(Duration::from_millis(5));
    let expired = p.expire_routes(Duration::from_millis(1));
    assert_eq!(expired.len(), 2, "a cancellation and an error: {expired:?}");
    let refused = p.client_routes(ping);
    let [Route::Client(line)] = &refused[..] else {
        panic!("{refused:?}")
    };
    assert!(String::from_utf8_lossy(line).contains("id already in use"));
    // The server's late answer reaches no one.
    assert!(to_client(&p, br#"{"jsonrpc":"2.0","id":3,"result":{}}"#).is_empty());
}

#[test]
fn a_request_is_timed_out_by_the_clock_passed_in_and_not_before() {
    let clock = Arc::new(ManualClock::new());
    let p = proxy_with_clock(clock.clone());
    p.client_routes(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    let timeout = Duration::from_secs(30);
    clock.advance(Duration::from_secs(29));
    assert!(p.expire_routes(timeout).is_empty());
    assert_eq!(p.pending_count(), 1);
    clock.advance(Duration::from_secs(1));
    let expired = p.expire_routes(timeout);
    assert_eq!(expired.len(), 2, "a cancellation and an error: {expired:?}");
    assert_eq!(p.pending_count(), 0);
}

#[test]
fn a_pending_request_is_forgotten_after_its_ttl() {
    let clock = Arc::new(ManualClock::new());
    let p = proxy_with_clock(clock.clone());
    p.client_routes(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    clock.advance(PENDING_TTL - Duration::from_secs(1));
    p.client_routes(br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#);
    assert_eq!(p.pending_count(), 2);
    // Expired entries are swept as the next request is tracked.
    clock.advance(Duration::from_secs(2));
    p.client_routes(br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#);
    assert_eq!(p.pending_count(), 2, "id 1 is past its TTL");
    // The server's answer to the forgotten request has no one to go to.
    assert!(to_client(&p, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).is_empty());
    assert_eq!(
        to_client(&p, br#"{"jsonrpc":"2.0","id":2,"result":{}}"#).len(),
        1
    );
}

#[test]
fn a_rate_limit_window_moves_with_the_clock_passed_in() {
    let clock = Arc::new(ManualClock::new());
    let policy = "tools:\n  echo:\n    rules:\n      - name: once\n        rate_limit: 1/minute\n";
    let policy = Arc::new(policy::parse(policy, "test").expect("valid policy"));
    let p = Session::new(
        Engine::new(policy, Arc::new(MemoryStore::new())).with_clock(clock.clone()),
        SessionOptions {
            session: "s".into(),
            clock: clock.clone(),
            ..SessionOptions::default()
        },
    );
    let call = |id: u32| {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo"}}}}"#)
    };
    let answer = |id: u32| format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#);
    assert!(matches!(
        &p.client_routes(call(1).as_bytes())[..],
        [Route::Server(_)]
    ));
    p.server_routes(answer(1).as_bytes());
    assert!(matches!(
        &p.client_routes(call(2).as_bytes())[..],
        [Route::Client(_)]
    ));
    clock.advance(Duration::from_secs(61));
    assert!(matches!(
        &p.client_routes(call(3).as_bytes())[..],
        [Route::Server(_)]
    ));
}

/// A proxy whose `echo` may run once a minute.
fn once_a_minute() -> Session {
    let policy = "tools:\n  echo:\n    rules:\n      - name: once\n        rate_limit: 1/minute\n";
    let policy = Arc::new(policy::parse(policy, "test").expect("valid policy"));
    Session::new(
        Engine::new(policy, Arc::new(MemoryStore::new())),
        SessionOptions::default(),
    )
}

fn forwarded(routes: &[Route]) -> bool {
    matches!(routes, [Route::Server(_)])
}

#[test]
fn a_retry_with_request_state_is_the_same_call_counted_once() {
    for (marker, fast) in [
        (r#""requestState":"opaque""#, true),
        (r#""inputResponses":{"a":{}}"#, true),
        (r#""requestState": "opaque""#, false),
    ] {
        let p = once_a_minute();
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
        assert!(forwarded(&p.client_routes(call.as_bytes())));
        p.server_routes(br#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required","inputRequests":{}}}"#);
        let sep = if fast { "," } else { ", " };
        let retry = format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"echo","arguments":{{}}{sep}{marker}}}}}"#
        );
        assert!(forwarded(&p.client_routes(retry.as_bytes())), "{retry}");
        p.server_routes(br#"{"jsonrpc":"2.0","id":2,"result":{"content":[]}}"#);
        // The quota was used once, by the call and its retry together.
        let again = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
        assert!(!forwarded(&p.client_routes(again.as_bytes())), "{marker}");
    }
}

#[test]
fn a_failed_request_is_answered_once_and_settled_by_its_kind() {
    for (kind, counted) in [
        (RequestFailure::Overloaded, false),
        (RequestFailure::NotSent, false),
        (RequestFailure::ShuttingDown, true),
    ] {
        let p = once_a_minute();
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
        assert!(forwarded(&p.client_routes(call)));
        let id = RequestId::from_value(&json!(1));
        let mut out = Routes::default();
        p.request_failed(&id, Failure::new(kind, "could not"), &mut out);
        p.request_failed(&id, Failure::new(kind, "again"), &mut out);
        let [Route::Client(line)] = &out.0[..] else {
            panic!("{out:?}")
        };
        let reply: Value = serde_json::from_slice(line).unwrap();
        assert_eq!(reply["id"], 1);
        assert_eq!(reply["error"]["message"], "could not");
        assert_eq!(reply["error"]["data"]["reason"], kind.as_str());
        let next = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo"}}"#;
        assert_eq!(!forwarded(&p.client_routes(next)), counted, "{kind:?}");
    }
}

#[test]
fn closing_answers_every_pending_request_with_why() {
    let p = proxy();
    p.client_routes(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    let mut out = Routes::default();
    p.close(Closed::Shutdown, &mut out);
    let [Route::Client(line)] = &out.0[..] else {
        panic!("{out:?}")
    };
    let reply: Value = serde_json::from_slice(line).unwrap();
    assert_eq!(reply["error"]["data"]["reason"], "shutting_down");
    assert_eq!(p.pending_count(), 0);
    // The server's late answer is dropped.
    assert!(to_client(&p, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).is_empty());
}

#[test]
fn initialize_fixes_the_negotiated_version_when_the_server_answers() {
    let p = proxy();
    let init = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{}},"clientInfo":{"name":"c","version":"1"}}}"#;
    p.client_routes(init);
    assert!(p.is_initialize(&RequestId::from_value(&json!(0))));
    assert_eq!(p.negotiated(), None);
    let answer = br#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"s","version":"1"}}}"#;
    assert_eq!(to_client(&p, answer).len(), 1);
    let negotiated = p.negotiated().expect("negotiated");
    assert_eq!(negotiated.protocol_version, "2025-06-18");
    assert_eq!(negotiated.client_capabilities, json!({"roots": {}}));
    assert!(!p.is_initialize(&RequestId::from_value(&json!(0))));
}

#[test]
fn the_tools_a_filtered_listing_shows_become_labels_and_hidden_ones_do_not() {
    let telemetry = crate::telemetry::Telemetry::new(crate::telemetry::TelemetryOptions {
        prometheus: true,
        ..Default::default()
    })
    .unwrap();
    let policy = Arc::new(policy::parse("hide: [secret]\n", "test").expect("valid policy"));
    let p = Session::new(
        Engine::new(policy, Arc::new(MemoryStore::new())),
        SessionOptions {
            telemetry: telemetry.clone(),
            ..SessionOptions::default()
        },
    );
    let known = telemetry.known_tools().unwrap();
    assert_eq!(known.label("default", "ok"), crate::telemetry::OTHER);
    p.client_routes(LIST);
    to_client(&p, LISTING);
    assert_eq!(known.label("default", "ok"), "ok");
    assert_eq!(known.label("default", "secret"), crate::telemetry::OTHER);
}
