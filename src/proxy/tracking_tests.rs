//! Every client request is tracked until answered, so no server message can reach the
//! client as the answer to a listing the proxy did not filter.

use std::sync::Arc;

use super::*;
use crate::clock::ManualClock;
use crate::policy;
use crate::state::MemoryStore;

fn proxy() -> Proxy {
    proxy_with_clock(Arc::new(ManualClock::new()))
}

fn proxy_with_clock(clock: Arc<ManualClock>) -> Proxy {
    let policy = Arc::new(policy::parse("hide: [secret]\n", "test").expect("valid policy"));
    Proxy::new(
        Engine::new(policy, Arc::new(MemoryStore::new())).with_clock(clock.clone()),
        ProxyOptions {
            session: "s".into(),
            clock,
            ..ProxyOptions::default()
        },
    )
    .with_max_in_flight(4)
}

const LIST: &[u8] = br#"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#;
const LISTING: &[u8] =
    br#"{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"ok"},{"name":"secret"}]}}"#;

/// What the client receives of a server line: the lines, as text.
fn to_client(p: &Proxy, line: &[u8]) -> Vec<String> {
    p.server_message(line)
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
    p.client_message(LIST);
    p.client_message(
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
    p.client_message(LIST);
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
        p.client_message(LIST);
        p.client_message(br#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#);
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
            &p.client_message(ping.as_bytes())[..],
            [Route::Server(_)]
        ));
    }
    let refused = p.client_message(LIST);
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
    assert!(matches!(&p.client_message(ping)[..], [Route::Server(_)]));
    // Timed out: the proxy answers it, and the server's answer may still come.
    clock.advance(Duration::from_millis(5));
    let expired = p.expire_requests(Duration::from_millis(1));
    assert_eq!(expired.len(), 2, "a cancellation and an error: {expired:?}");
    let refused = p.client_message(ping);
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
    p.client_message(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    let timeout = Duration::from_secs(30);
    clock.advance(Duration::from_secs(29));
    assert!(p.expire_requests(timeout).is_empty());
    assert_eq!(p.pending_count(), 1);
    clock.advance(Duration::from_secs(1));
    let expired = p.expire_requests(timeout);
    assert_eq!(expired.len(), 2, "a cancellation and an error: {expired:?}");
    assert_eq!(p.pending_count(), 0);
}

#[test]
fn a_pending_request_is_forgotten_after_its_ttl() {
    let clock = Arc::new(ManualClock::new());
    let p = proxy_with_clock(clock.clone());
    p.client_message(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    clock.advance(PENDING_TTL - Duration::from_secs(1));
    p.client_message(br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#);
    assert_eq!(p.pending_count(), 2);
    // Expired entries are swept as the next request is tracked.
    clock.advance(Duration::from_secs(2));
    p.client_message(br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#);
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
    let p = Proxy::new(
        Engine::new(policy, Arc::new(MemoryStore::new())).with_clock(clock.clone()),
        ProxyOptions {
            session: "s".into(),
            clock: clock.clone(),
            ..ProxyOptions::default()
        },
    );
    let call = |id: u32| {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo"}}}}"#)
    };
    let answer = |id: u32| format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#);
    assert!(matches!(
        &p.client_message(call(1).as_bytes())[..],
        [Route::Server(_)]
    ));
    p.server_message(answer(1).as_bytes());
    assert!(matches!(
        &p.client_message(call(2).as_bytes())[..],
        [Route::Client(_)]
    ));
    clock.advance(Duration::from_secs(61));
    assert!(matches!(
        &p.client_message(call(3).as_bytes())[..],
        [Route::Server(_)]
    ));
}
