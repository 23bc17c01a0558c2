//! The proxy core on any sequence of client and server lines:
//!
//! - the fast path and the exact path agree: two proxies over the same policy, one taking
//!   `client_message` / `server_message`, the other the exact path only, return the same
//!   routes and keep the same number of pending requests;
//! - nothing is forwarded that was not evaluated: every line sent to the server is read
//!   the way a lenient server reads it (Go's `encoding/json`: keys matched ignoring case,
//!   with Unicode simple folding, the last one winning), and when that server would see a
//!   `tools/call`, the method, `params.name` and `params.arguments` it reads are those the
//!   proxy read with exact keys (and a `tools/list` is one the proxy saw, so its answer is
//!   filtered).
//!
//! Input: lines separated by `\n`. A line starting with `<` comes from the server (the `<`
//! is dropped); one starting with `>` from the client (likewise); any other line from the
//! client as it is. So one input can build pending state: a `tools/list` request, then its
//! response.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use intercept::engine::Engine;
use intercept::policy::{self, CompiledPolicy};
use intercept::proxy::replies::META_KEY;
use intercept::proxy::{Inbound, Session, SessionOptions, Route, Routes};
use intercept::state::MemoryStore;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// Every kind of decision. The two proxies evaluate a moment apart: rate limits use rolling
/// windows, so no window boundary falls between them (the spend counter's calendar day could,
/// once a day, for a microsecond).
const POLICY: &str = r#"hide: [secret, "admin_*"]
tools:
  read_file:
    rules:
      - name: no-etc
        conditions:
          - {path: args.path, op: regex, value: '^/(ok|tmp)'}
  echo:
    rules:
      - name: checks
        conditions:
          - {path: args.repo, op: neq, value: prod}
          - {path: args.n, op: lte, value: 10}
          - {path: args.tags, op: contains, value: ok}
          - {path: args.a.b.0.c, op: exists, value: false}
  twice:
    rules:
      - name: twice
        rate_limit: {max: 2, window: 600}
  delete_repo:
    rules:
      - {name: never, action: deny}
  pay:
    rules:
      - name: budget
        state: {counter: spent, window: day, increment_from: args.amount}
        conditions:
          - {path: state.pay.spent, op: lte, value: 50}
  approve:
    rules:
      - {name: human, action: require_approval}
"#;

fn policy() -> Arc<CompiledPolicy> {
    static POLICY_IN_FORCE: OnceLock<Arc<CompiledPolicy>> = OnceLock::new();
    POLICY_IN_FORCE
        .get_or_init(|| Arc::new(policy::parse(POLICY, "fuzz").expect("the fuzz policy is valid")))
        .clone()
}

fn proxy() -> Session {
    Session::new(
        Engine::new(policy(), Arc::new(MemoryStore::new())),
        SessionOptions {
            session: "fuzz".into(),
            ..SessionOptions::default()
        },
    )
}

fuzz_target!(|data: &[u8]| {
    let (fast, exact) = (proxy(), proxy());
    for line in data.split(|&b| b == b'\n') {
        let (from_server, line) = match line.split_first() {
            Some((b'<', rest)) => (true, rest),
            Some((b'>', rest)) => (false, rest),
            _ => (false, line),
        };
        let mut routes = Routes::default();
        let want = if from_server {
            fast.server_message(Inbound::Line(line), &mut routes);
            exact.server_message_exact_for_fuzzing(line)
        } else {
            fast.client_message(Inbound::Line(line), &mut routes);
            exact.client_message_exact_for_fuzzing(line)
        };
        let got = routes.0;
        let shown = String::from_utf8_lossy(line);
        assert!(
            same_routes(&got, &want),
            "the fast and the exact path differ on {shown}\nfast:  {}\nexact: {}",
            show(&got),
            show(&want)
        );
        assert_eq!(fast.pending_count(), exact.pending_count(), "{shown}");
        for route in &got {
            match route {
                Route::Server(bytes) => {
                    assert!(!from_server, "a server line was sent back to the server");
                    forwarded_as_evaluated(bytes);
                }
                Route::Client(bytes) => assert!(!bytes.contains(&b'\n'), "a line holds a newline"),
            }
        }
    }
});

/// Equal routes, allowing only for the seconds until a rate limit lets a call through,
/// which the two proxies compute a moment apart.
fn same_routes(a: &[Route], b: &[Route]) -> bool {
    a == b
        || a.iter()
            .map(without_retry_time)
            .eq(b.iter().map(without_retry_time))
}

fn without_retry_time(route: &Route) -> (bool, Value) {
    let (to_server, bytes) = match route {
        Route::Server(b) => (true, b),
        Route::Client(b) => (false, b),
    };
    let mut v: Value = serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()));
    let meta = format!("/result/_meta/{}", META_KEY.replace('/', "~1"));
    if let Some(Value::Object(meta)) = v.pointer_mut(&meta) {
        meta.remove("retryAfterSeconds");
    }
    (to_server, v)
}

fn show(routes: &[Route]) -> String {
    let each = routes.iter().map(|r| match r {
        Route::Server(b) => format!("server {}", String::from_utf8_lossy(b)),
        Route::Client(b) => format!("client {}", String::from_utf8_lossy(b)),
    });
    each.collect::<Vec<_>>().join(" | ")
}

/// A line the proxy sent to the server, as a lenient server reads it, must be the call the
/// proxy evaluated (read with exact keys).
fn forwarded_as_evaluated(bytes: &[u8]) {
    let shown = String::from_utf8_lossy(bytes);
    let tree: Tree = serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("forwarded a line that is not JSON ({e}): {shown}"));
    let messages = match &tree {
        Tree::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    for msg in messages {
        let Some(Tree::String(method)) = msg.get(Read::Lenient, "method") else {
            continue;
        };
        if method != "tools/call" && method != "tools/list" {
            continue;
        }
        // A tools/list the proxy did not see as one gets its answer unfiltered.
        let strict_method = msg.get(Read::Exact, "method");
        assert!(
            matches!(strict_method, Some(Tree::String(m)) if m == method),
            "a lenient server reads {method} where the proxy read method {strict_method:?}: {shown}"
        );
        if method != "tools/call" {
            continue;
        }
        let lenient = msg.get(Read::Lenient, "params");
        let exact = msg.get(Read::Exact, "params");
        assert_eq!(
            member(lenient, Read::Lenient, "name"),
            member(exact, Read::Exact, "name"),
            "a lenient server runs another tool than the proxy evaluated: {shown}"
        );
        assert_eq!(
            member(lenient, Read::Lenient, "arguments").map(|a| a.view(Read::Lenient)),
            member(exact, Read::Exact, "arguments").map(|a| a.view(Read::Exact)),
            "a lenient server reads other arguments than the proxy evaluated: {shown}"
        );
    }
}

fn member<'a>(object: Option<&'a Tree>, read: Read, key: &str) -> Option<&'a Tree> {
    object?.get(read, key)
}

/// How a reader matches an object's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Byte for byte, as the proxy does.
    Exact,
    /// Ignoring case, as Go's `encoding/json` matches struct fields.
    Lenient,
}

/// A JSON value with every member of every object, duplicates included, in order.
#[derive(Debug, Clone, PartialEq)]
enum Tree {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Tree>),
    Object(Vec<(String, Tree)>),
}

impl Tree {
    /// The member a reader takes for `key`: the last that matches.
    fn get(&self, read: Read, key: &str) -> Option<&Tree> {
        let Tree::Object(members) = self else {
            return None;
        };
        let wanted = read.key(key);
        members
            .iter()
            .rev()
            .find(|(k, _)| read.key(k) == wanted)
            .map(|(_, v)| v)
    }

    /// What a reader makes of this value, in one form for both readers: objects keyed by
    /// folded key. Two exact keys that fold alike cannot be told apart in that form, so
    /// the exact reading of such an object is marked as one a lenient reader cannot share.
    fn view(&self, read: Read) -> Value {
        match self {
            Tree::Null => Value::Null,
            Tree::Bool(b) => Value::Bool(*b),
            Tree::Number(n) => Value::Number(n.clone()),
            Tree::String(s) => Value::String(s.clone()),
            Tree::Array(items) => items.iter().map(|i| i.view(read)).collect(),
            Tree::Object(members) => {
                let mut out = Map::new();
                let mut spelled: HashMap<String, &str> = HashMap::new();
                for (k, v) in members {
                    let folded = fold(k);
                    if read == Read::Exact && *spelled.entry(folded.clone()).or_insert(k) != k {
                        return Value::String(format!("(keys that differ only in case: {k})"));
                    }
                    out.insert(folded, v.view(read));
                }
                Value::Object(out)
            }
        }
    }
}

impl Read {
    fn key(self, key: &str) -> String {
        match self {
            Read::Exact => key.to_string(),
            Read::Lenient => fold(key),
        }
    }
}

/// A key as Go's `encoding/json` compares it: every character replaced by the smallest of
/// those it folds with (`foldName`/`foldRune`, built on `unicode.SimpleFold`). The fold set
/// is taken as the closure under one-character upper- and lower-casing, which covers the
/// pairs that matter here (`ſ` with `s`, the Kelvin sign with `k`, `ı` with `i`).
fn fold(key: &str) -> String {
    key.chars().map(fold_char).collect()
}

fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    let mut set = vec![c];
    let mut at = 0;
    while at < set.len() {
        let x = set[at];
        for y in [single(x.to_lowercase()), single(x.to_uppercase())]
            .into_iter()
            .flatten()
        {
            if !set.contains(&y) {
                set.push(y);
            }
        }
        at += 1;
    }
    set.into_iter().min().unwrap_or(c)
}

/// The one character a case mapping gives, if it gives one.
fn single(mut mapped: impl Iterator<Item = char>) -> Option<char> {
    let first = mapped.next()?;
    mapped.next().is_none().then_some(first)
}

impl<'de> serde::Deserialize<'de> for Tree {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> serde::de::Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Number(v.into()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Number(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Tree, E> {
        serde_json::Number::from_f64(v)
            .map(Tree::Number)
            .ok_or_else(|| E::custom("a number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::String(v.to_string()))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut members = Vec::new();
        while let Some(entry) = map.next_entry::<String, Tree>()? {
            members.push(entry);
        }
        Ok(Tree::Object(members))
    }
}
