//! The fast path for `tools/call` must answer exactly as the exact path does: same routes,
//! same bytes forwarded, same counters. Two proxies with the same policy see the same
//! messages, one through `client_message`, the other through the exact path only.

use std::sync::Arc;

use super::*;
use crate::policy;
use crate::state::MemoryStore;

const POLICY: &str = r#"tools:
  echo:
    rules:
      - name: checks
        conditions:
          - {path: args.repo, op: neq, value: prod}
          - {path: args.title, op: regex, value: '^[A-Z]'}
  limited:
    rules:
      - name: twenty
        rate_limit: {max: 20, window: 60}
  twice:
    rules:
      - name: twice
        rate_limit: {max: 2, window: 60}
  blocked:
    rules:
      - {name: never, action: deny}
  nested:
    rules:
      - name: deep
        conditions:
          - {path: args.a.b.0.c, op: eq, value: x}
          - {path: args.n, op: lte, value: 10}
          - {path: args.tags, op: contains, value: ok}
          - {path: args.missing, op: exists, value: false}
          - {path: args.s, op: in, value: ['q"uote', plain]}
  pay:
    rules:
      - name: budget
        state: {counter: spent, window: day, increment_from: args.amount}
        conditions:
          - {path: state.pay.spent, op: lte, value: 50}
"#;

fn proxy() -> Session {
    let policy = Arc::new(policy::parse(POLICY, "test").expect("valid policy"));
    Session::new(
        Engine::new(policy, Arc::new(MemoryStore::new())),
        SessionOptions {
            session: "s".into(),
            ..SessionOptions::default()
        },
    )
}

fn call(id: &str, name: &str, args: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":{name},"arguments":{args}}}}}"#
    )
}

fn messages() -> Vec<String> {
    let ok = r#"{"repo":"web","title":"Fix it"}"#;
    let mut m = vec![
        call("1", r#""echo""#, ok),
        call(r#""a-1""#, r#""echo""#, ok),
        call("2", r#""echo""#, r#"{"repo":"prod","title":"Fix it"}"#),
        call("3", r#""echo""#, r#"{"repo":"web","title":"lower"}"#),
        call("4", r#""blocked""#, "{}"),
        call("5", r#""twice""#, "{}"),
        call("6", r#""twice""#, "null"),
        call("7", r#""twice""#, r#"{"n":1}"#),
        call("8", r#""unknown""#, r#"{"a":[1,{"b":null}],"c":-3}"#),
        // What the exact path words as errors, or reads another way.
        call("9", r#""echo""#, r#""repo=prod""#),
        call("10", r#""echo""#, r#"[1]"#),
        call("11", "7", ok),
        call("12", r#""ech\u006f""#, ok),
        call("13", r#""echo""#, r#"{"repo":"web","repo":"prod","title":"Fix it"}"#),
        call("14", r#""echo""#, r#"{"repo":"web","REPO":"prod","title":"Fix it"}"#),
        call("15", r#""echo""#, r#"{"repo":"web","title":"Fix it","x":{"k":1,"k":2}}"#),
        call("16", r#""echo""#, r#"{"repo":"web","title":"Fix it","n":1.50}"#),
        call("17", r#""echo""#, r#"{"repo":"web","title":"Fix it","n":1.5}"#),
        call("18", r#""echo""#, r#"{"repo":"web","title":"Fix it","s":"\ud800"}"#),
        call("19", r#""echo""#, r#"{"repo":"web","title":"Fix it","big":123456789012345678901234567890}"#),
        call("null", r#""echo""#, ok),
        call("1.5", r#""echo""#, ok),
        call("[1]", r#""echo""#, ok),
        call("20", r#""echo""#, r#"{"repo":"web","title":"Fix \"it\"\n"}"#),
        r#"{"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"name":"echo","arguments":{"repo":"web","title":"Fix it"},"name":"blocked"}}"#.into(),
        r#"{"jsonrpc":"2.0","id":22,"method":"tools/call","params":{"name":"echo","NAME":"blocked","arguments":{"repo":"web","title":"Fix it"}}}"#.into(),
        r#"{"jsonrpc":"2.0","id":23,"method":"tools/call","METHOD":"ping","params":{"name":"blocked"}}"#.into(),
        r#"{"jsonrpc":"2.0","id":24,"method":"tools/call","params":{"name":"blocked"}}"#.into(),
        r#"{"jsonrpc":"2.0","id":25,"method":"tools/call","params":{"name":"echo"}}"#.into(),
        r#"{"jsonrpc":"2.0","id":26,"method":"tools/call","params":"echo"}"#.into(),
        r#"{"jsonrpc":"2.0","id":27,"method":"tools/call"}"#.into(),
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo","arguments":{}}}"#.into(),
        r#"{"jsonrpc":"2.0","id":28,"method":"tools/call","params":{"name":"twice","arguments":{},"inputResponses":{"x":{}}}}"#.into(),
        r#"{"jsonrpc":"2.0","id":29,"method":"tools/call","params":{"name":"twice","arguments":{},"_meta":{"io.modelcontextprotocol/clientInfo":{"name":"cli"}}}}"#.into(),
        r#"{"jsonrpc":"2.0","id":30,"method":"tools/call","params":{"name":"twice","clientInfo":{"name":7},"_meta":{"progressToken":1}}}"#.into(),
        r#"{"jsonrpc": "2.0", "id": 31, "method": "tools/call", "params": {"name": "echo", "arguments": {"repo": "web", "title": "Fix it"}}}"#.into(),
        r#"{"jsonrpc":"2.0","id":32,"method":"tools\/call","params":{"name":"blocked"}}"#.into(),
        r#"[{"jsonrpc":"2.0","id":33,"method":"tools/call","params":{"name":"blocked"}}]"#.into(),
        r#"{"jsonrpc":"2.0","id":34,"method":"ping"}"#.into(),
        // Keys a lenient server folds into protocol keys.
        r#"{"jsonrpc":"2.0","id":35,"Method":"tools/call","params":{"name":"blocked","arguments":{}}}"#.into(),
        r#"{"jsonrpc":"2.0","id":36,"method":"tools/call","params":{"name":"echo","Arguments":{"repo":"prod"}}}"#.into(),
        r#"{"jsonrpc":"2.0","id":37,"method":"tools/call","params":{"name":"echo","arguments":{"repo":"web","title":"Fix it"},"argumentſ":{"repo":"prod"}}}"#.into(),
        r#"{"jsonrpc":"2.0","ID":38,"method":"tools/call","params":{"name":"echo","arguments":{"repo":"web","title":"Fix it"}}}"#.into(),
        r#"{"jsonrpc":"2.0","id":39,"method":"tools/call","params":{"name":"echo","arguments":{"repo":"web","title":"Fix it","Kind":1,"kind":2}}}"#.into(),
        // Arguments the engine reads through their text on the fast path.
        call("40", r#""nested""#, r#"{"a":{"b":[{"c":"x"}]},"n":10,"tags":["ok"],"s":"q\"uote"}"#),
        call("41", r#""nested""#, r#"{"s":"plain","tags":["no","ok"],"n":-2.5,"a":{"b":[{"c":"x","d":[]}]}}"#),
        call("42", r#""nested""#, r#"{"a":{"b":[{"c":"y"}]},"n":10,"tags":["ok"],"s":"plain"}"#),
        call("43", r#""nested""#, r#"{"a":{"b":[{"c":"x"}]},"n":11,"tags":["ok"],"s":"plain"}"#),
        call("44", r#""nested""#, r#"{"a":{"b":[{"c":"x"}]},"n":1,"tags":"ok","s":"plain"}"#),
        call("45", r#""nested""#, r#"{"a":{"b":[{"c":"x"}]},"n":1,"tags":["ok"],"s":"plain","missing":0}"#),
        call("46", r#""nested""#, r#"{"a":{"b":{"0":{"c":"x"}}},"n":1,"tags":["ok"],"s":"plain","missing":null}"#),
        call("47", r#""nested""#, r#"{"a\u0062":1,"a":{"b":[{"c":"x"}]},"n":1,"tags":["ok"],"s":"pl\u0061in"}"#),
        call("48", r#""pay""#, r#"{"amount":20}"#),
        call("49", r#""pay""#, r#"{"amount":12.25,"memo":"]}\"{["}"#),
        call("50", r#""pay""#, r#"{"amount":"5"}"#),
        call("51", r#""pay""#, r#"{"memo":"no amount"}"#),
        call("52", r#""pay""#, r#"{"amount":30}"#),
    ];
    // The same calls again: counters and pending entries must have moved alike.
    m.extend(m.clone());
    m
}

#[test]
fn the_fast_path_answers_as_the_exact_path_does() {
    let (fast, exact) = (proxy(), proxy());
    let mut taken = 0;
    for msg in messages() {
        let line = msg.as_bytes();
        taken += usize::from(json::is_canonical(line));
        assert_eq!(
            fast.client_routes(line),
            exact.client_message_exact_for_fuzzing(line),
            "{msg}"
        );
        assert_eq!(fast.pending_count(), exact.pending_count(), "{msg}");
        assert_eq!(*lock(&fast.client_name), *lock(&exact.client_name), "{msg}");
    }
    assert!(taken >= 40, "fast path open to {taken} messages only");
}

#[test]
fn the_fast_path_takes_canonical_calls_only() {
    let p = proxy();
    let canonical = call("1", r#""echo""#, r#"{"repo":"web","title":"Fix it"}"#);
    assert!(p.tools_call_fast(canonical.as_bytes()).is_some());
    for other in [
        call("2", r#""ech\u006f""#, "{}"),
        call("3", r#""echo""#, r#"{"a":1,"A":2}"#),
        call("4", r#""echo""#, r#"{"a":1.50}"#),
        r#"{"id":5, "method":"tools/call","params":{"name":"echo"}}"#.into(),
    ] {
        assert!(p.tools_call_fast(other.as_bytes()).is_none(), "{other}");
    }
}

/// Appends routes as lines, as a stream transport writes them.
fn append(routes: Vec<Route>, to_server: &mut Vec<u8>, to_client: &mut Vec<u8>) {
    for route in routes {
        let (out, line) = match route {
            Route::Server(l) => (&mut *to_server, l),
            Route::Client(l) => (&mut *to_client, l),
        };
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
}

#[test]
fn line_buffers_get_the_same_lines_as_routes() {
    let (streamed, routed) = (proxy(), proxy());
    let mut buffers = LineBuffers::default();
    let (mut want_server, mut want_client) = (Vec::new(), Vec::new());
    for msg in messages() {
        streamed.client_message(Inbound::Line(msg.as_bytes()), &mut buffers);
        append(
            routed.client_routes(msg.as_bytes()),
            &mut want_server,
            &mut want_client,
        );
    }
    assert_eq!(buffers.to_server, want_server);
    assert_eq!(buffers.to_client, want_client);
    // Responses to some forwarded calls, and a server request.
    let mut buffers = LineBuffers::default();
    let mut want = Vec::new();
    for id in ["1", r#""a-1""#, "5", "7", "99"] {
        let response = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[]}}}}"#);
        streamed.server_message(Inbound::Line(response.as_bytes()), &mut buffers);
        append(
            routed.server_routes(response.as_bytes()),
            &mut Vec::new(),
            &mut want,
        );
    }
    assert_eq!(buffers.to_client, want);
    assert_eq!(streamed.pending_count(), routed.pending_count());
}

/// Which requests each message awaits or answers, as text.
#[derive(Default)]
struct Ids {
    awaits: Vec<Vec<String>>,
    answers: Vec<Vec<String>>,
}

impl Outbox for Ids {
    fn to_server(&mut self, _msg: &[u8], awaits: &[RequestId]) {
        self.awaits
            .push(awaits.iter().map(|id| id.to_value().to_string()).collect());
    }

    fn to_client(&mut self, _msg: &[u8], answers: &[RequestId]) {
        self.answers
            .push(answers.iter().map(|id| id.to_value().to_string()).collect());
    }
}

#[test]
fn the_outbox_learns_which_requests_a_message_awaits_and_answers() {
    let p = proxy();
    let mut ids = Ids::default();
    // A call on the fast path, one on the exact path, a notification, a batch with a
    // request and a denied call.
    for msg in [
        call("1", r#""limited""#, r#"{"a":1}"#),
        r#"{"id":"x", "jsonrpc":"2.0","method":"tools/call","params":{"name":"limited"}}"#.into(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into(),
        r#"[{"jsonrpc":"2.0","id":2,"method":"ping"},{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"blocked"}}]"#.into(),
    ] {
        p.client_message(Inbound::Line(msg.as_bytes()), &mut ids);
    }
    assert_eq!(ids.awaits, [vec!["1"], vec![r#""x""#], vec![], vec!["2"]]);
    assert_eq!(ids.answers, [vec!["3"]]);
    let mut ids = Ids::default();
    for msg in [
        r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        r#"{"jsonrpc": "2.0", "id": "x", "result": {}}"#,
        r#"[{"jsonrpc":"2.0","id":2,"result":{}},{"jsonrpc":"2.0","id":9,"method":"ping"}]"#,
    ] {
        p.server_message(Inbound::Line(msg.as_bytes()), &mut ids);
    }
    assert_eq!(ids.answers, [vec!["1"], vec![r#""x""#], vec!["2"]]);
    assert!(ids.awaits.is_empty());
}

#[test]
fn responses_settle_calls_as_the_exact_path_does() {
    let responses = [
        r#"{"jsonrpc":"2.0","id":ID,"error":{"code":-32000,"message":"failed"}}"#,
        r#"{"jsonrpc":"2.0","id":ID,"result":{"content":[],"isError":true}}"#,
        r#"{"jsonrpc":"2.0","id":ID,"result":{"resultType":"input_required","inputRequests":{}}}"#,
        r#"{"jsonrpc":"2.0","id":ID,"result":{"resultType":"input_\u0072equired"}}"#,
        r#"{"jsonrpc": "2.0", "id": ID, "error": {"code": 1, "message": "x"}}"#,
        r#"{"jsonrpc":"2.0","id":ID,"error":null,"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":ID,"result":{"resultType":7,"isError":"yes"}}"#,
        r#"{"jsonrpc":"2.0","id":ID,"result":{},"result":{"isError":true}}"#,
        r#"{"jsonrpc":"2.0","id":ID,"result":{"isError":true,"ISERROR":false}}"#,
        r#"{"jsonrpc":"2.0","id":ID,"result":[1]}"#,
        r#"{"jsonrpc":"2.0","id":ID,"method":"sampling/createMessage","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":ID,"result":{"content":[{"type":"text","text":"{\"a\":\"\\u00e9\"}"}]}}"#,
    ];
    let (fast, exact) = (proxy(), proxy());
    let mut id = 100;
    for response in responses {
        for quoted in [false, true] {
            id += 1;
            let id_text = if quoted {
                format!(r#""r{id}""#)
            } else {
                id.to_string()
            };
            let calls = [
                call(&id_text, r#""limited""#, "{}"),
                // The retry of a call that needed input is not counted again.
                format!(
                    r#"{{"jsonrpc":"2.0","id":{id}0,"method":"tools/call","params":{{"name":"limited","arguments":{{}},"inputResponses":{{}}}}}}"#
                ),
            ];
            assert_eq!(
                fast.client_routes(calls[0].as_bytes()),
                exact.client_message_exact_for_fuzzing(calls[0].as_bytes())
            );
            let response = response.replace("ID", &id_text);
            assert_eq!(
                fast.server_routes(response.as_bytes()),
                exact.server_message_exact_for_fuzzing(response.as_bytes()),
                "{response}"
            );
            assert_eq!(fast.pending_count(), exact.pending_count(), "{response}");
            assert_eq!(
                fast.client_routes(calls[1].as_bytes()),
                exact.client_message_exact_for_fuzzing(calls[1].as_bytes()),
                "{response}"
            );
            let done = format!(r#"{{"jsonrpc":"2.0","id":{id}0,"result":{{}}}}"#);
            assert_eq!(
                fast.server_routes(done.as_bytes()),
                exact.server_message_exact_for_fuzzing(done.as_bytes())
            );
        }
    }
}

/// The calls above whose arguments the fast path hands to the engine as text are decided
/// as their policy says (so the comparison with the exact path compares real decisions).
#[test]
fn arguments_read_as_text_are_decided_by_the_policy() {
    let p = proxy();
    let forwarded = |id: &str| {
        let msg = messages()
            .into_iter()
            .find(|m| m.contains(&format!(r#""id":{id},"#)))
            .expect("a message with that id");
        assert!(json::is_canonical(msg.as_bytes()) || id == "47", "{msg}");
        matches!(p.client_routes(msg.as_bytes())[..], [Route::Server(_)])
    };
    let allowed = ["40", "41", "44", "46", "47", "48", "49"];
    let denied = ["42", "43", "45", "50", "51", "52"];
    for id in allowed {
        assert!(forwarded(id), "call {id} should be allowed");
    }
    for id in denied {
        assert!(!forwarded(id), "call {id} should be denied");
    }
}

/// Found by fuzzing: serde_json does not check the UTF-8 of strings it skips, so a response
/// read on the fast path for its envelope only could pass on bytes that are not JSON.
#[test]
fn a_response_that_is_not_utf8_is_withheld_on_both_paths() {
    let (fast, exact) = (proxy(), proxy());
    let init = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#;
    assert_eq!(
        fast.client_routes(init),
        exact.client_message_exact_for_fuzzing(init)
    );
    // Spaces: not canonical, so the fast path reads the envelope with serde_json.
    let mut response = br#"{"jsonrpc": "2.0", "id": 0, "result": {"v": "x"#.to_vec();
    response.push(0xff);
    response.extend_from_slice(br#""}}"#);
    let got = fast.server_routes(&response);
    assert_eq!(got, exact.server_message_exact_for_fuzzing(&response));
    let [Route::Client(line)] = &got[..] else {
        panic!("{got:?}")
    };
    assert!(String::from_utf8_lossy(line).contains("-32603"), "{got:?}");
}
