//! Exact JSON parsing for messages the proxy decides on.
//!
//! A proxy and the server behind it must see the same message. serde_json keeps the last
//! of two duplicate keys and other parsers keep the first; some match keys without regard
//! to case. So a client message with `"name"` twice, or with `"name"` and `"NAME"`, could be
//! evaluated as one tool and executed as another. Such messages are rejected here, and what
//! is forwarded for a `tools/call` is the re-serialisation of exactly what was evaluated.
//!
//! Most clients already write messages the way serde_json re-serialises them (compact,
//! minimal escapes). [`is_canonical`] recognises such a message with one scan that builds
//! nothing: it is then unambiguous, and forwarding its bytes unchanged forwards exactly the
//! re-serialisation of what was evaluated, so the proxy can skip building the whole tree.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::keys;
use crate::json_text::{self, string_end};

/// Why a message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonProblem {
    /// Not JSON at all: a JSON-RPC parse error (-32700).
    Syntax(String),
    /// Valid JSON that is ambiguous: duplicate or case-variant keys (-32600).
    Ambiguous(String),
}

impl fmt::Display for JsonProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonProblem::Syntax(m) | JsonProblem::Ambiguous(m) => f.write_str(m),
        }
    }
}

/// How strictly keys are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// Reject exact duplicates.
    Unique,
    /// Also reject keys that a lenient server reads as one (`name` and `Name`, `s` and `ſ`
    /// in one object: see [`super::keys`]).
    UniqueIgnoringCase,
}

/// Parses one JSON value, rejecting ambiguous objects anywhere in it.
pub fn parse(bytes: &[u8], keys: Keys) -> Result<Value, JsonProblem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict { keys }.deserialize(&mut de).map_err(classify)?;
    de.end().map_err(classify)?;
    Ok(value)
}

fn classify(e: serde_json::Error) -> JsonProblem {
    let text = e.to_string();
    match e.classify() {
        serde_json::error::Category::Data => JsonProblem::Ambiguous(text),
        _ => JsonProblem::Syntax(text),
    }
}

#[derive(Clone, Copy)]
struct Strict {
    keys: Keys,
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        // Each key as folded, and as written (for the message).
        let mut folded: foldhash::HashMap<String, String> = Default::default();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key \"{key}\"")));
            }
            if self.keys == Keys::UniqueIgnoringCase {
                let f = keys::fold(&key).into_owned();
                if let Some(other) = folded.get(&f) {
                    return Err(de::Error::custom(keys::ambiguous(other, &key)));
                }
                folded.insert(f, key.clone());
            }
            let value = access.next_value_seed(self)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// Nesting deeper than this is left to [`parse`] (serde_json stops at 128 levels).
const CANONICAL_MAX_DEPTH: usize = 100;

/// True when `bytes` are one JSON value that [`parse`] accepts with
/// [`Keys::UniqueIgnoringCase`] and whose re-serialisation (`serde_json::to_vec` of what it
/// returns) is byte for byte `bytes` itself: no whitespace, only the escapes serde_json
/// writes, integers in their shortest form, and in every object keys that are ASCII and
/// distinct even ignoring case. False claims nothing; the caller takes the exact path.
pub fn is_canonical(bytes: &[u8]) -> bool {
    canonical_outline(bytes).is_some()
}

/// A member of an object in canonical text: how deep the object is (1 for the top-level
/// value), and the member's key (without its quotes) and value, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    pub depth: usize,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// If `bytes` are canonical (see [`is_canonical`]), the members of the objects in its top
/// two levels, in the order written: an object's members follow the member that holds it.
/// Found by the same scan, so reading a message's envelope costs no second pass.
pub fn canonical_outline(bytes: &[u8]) -> Option<Outline<'_>> {
    outline(bytes, false)
}

/// Like [`canonical_outline`] for a message the proxy passes on as received and reads only
/// the envelope of (a response): the top two levels are checked as there, and the values
/// below them only for their structure (strings closed, brackets balanced), so a large
/// result costs little more than finding its end. No claim about re-serialisation.
pub fn envelope_outline(bytes: &[u8]) -> Option<Outline<'_>> {
    outline(bytes, true)
}

/// The members an outline found (see [`canonical_outline`]). Its memory, and that of the
/// scan's key stack, is kept for the next scan on the same thread: every message is
/// scanned, and two allocations per message were a visible share of the proxy's work.
#[derive(Debug)]
pub struct Outline<'a> {
    members: Vec<Member<'a>>,
}

impl<'a> std::ops::Deref for Outline<'a> {
    type Target = [Member<'a>];

    fn deref(&self) -> &[Member<'a>] {
        &self.members
    }
}

impl Drop for Outline<'_> {
    fn drop(&mut self) {
        SPARE_MEMBERS.set(emptied(std::mem::take(&mut self.members)));
    }
}

/// How many entries a kept vector may hold: one huge message must not pin its memory.
const SPARE_CAPACITY: usize = 256;

thread_local! {
    static SPARE_MEMBERS: std::cell::Cell<Vec<Member<'static>>> = const { std::cell::Cell::new(Vec::new()) };
    static SPARE_KEYS: std::cell::Cell<Vec<&'static [u8]>> = const { std::cell::Cell::new(Vec::new()) };
}

/// An empty vector that keeps `v`'s memory, for items of another lifetime: the standard
/// library collects a mapped `IntoIter` in place when the two layouts are the same (were it
/// not to, this would only allocate).
fn emptied<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.shrink_to(SPARE_CAPACITY);
    v.into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
}

fn outline(bytes: &[u8], shallow: bool) -> Option<Outline<'_>> {
    // One pass over the whole text first (vectorised by the compiler): compact text has
    // no byte below 0x20, in strings or out, and text with bytes above 0x7f must be UTF-8.
    // The scan proper then only looks for quotes and backslashes in strings.
    let (lowest, highest) = bytes
        .iter()
        .fold((u8::MAX, 0u8), |(lo, hi), &c| (lo.min(c), hi.max(c)));
    let ascii = highest < 0x80;
    if lowest < 0x20 || (!ascii && std::str::from_utf8(bytes).is_err()) {
        return None;
    }
    let mut scan = Canonical {
        b: bytes,
        i: 0,
        ascii,
        shallow,
        keys: emptied(SPARE_KEYS.take()),
        outline: emptied(SPARE_MEMBERS.take()),
    };
    let canonical = scan.value(0) && scan.i == bytes.len();
    SPARE_KEYS.set(emptied(scan.keys));
    let outline = Outline {
        members: scan.outline,
    };
    canonical.then_some(outline)
}

/// The members of the object that is the value of `outline[at]`.
pub fn children<'o, 'a>(
    outline: &'o [Member<'a>],
    at: usize,
) -> impl Iterator<Item = &'o Member<'a>> {
    let depth = outline[at].depth + 1;
    outline[at + 1..]
        .iter()
        .take_while(move |m| m.depth >= depth)
        .filter(move |m| m.depth == depth)
}

/// How deep [`canonical_outline`] records members.
const OUTLINE_DEPTH: usize = 2;

/// The state of [`is_canonical`]'s scan: a position, the keys of the objects being read
/// (each object's keys on top of its parents'), and the outline found so far.
struct Canonical<'a> {
    b: &'a [u8],
    i: usize,
    /// The whole text is ASCII (it is UTF-8 in any case).
    ascii: bool,
    /// Values below the outline are only skipped (see [`envelope_outline`]).
    shallow: bool,
    keys: Vec<&'a [u8]>,
    outline: Vec<Member<'a>>,
}

impl<'a> Canonical<'a> {
    fn next(&mut self) -> Option<u8> {
        let c = self.b.get(self.i).copied();
        self.i += 1;
        c
    }

    fn value(&mut self, depth: usize) -> bool {
        if self.shallow && depth >= OUTLINE_DEPTH {
            return match json_text::value_end(self.b, self.i) {
                Some(end) if end > self.i => {
                    self.i = end;
                    true
                }
                _ => false,
            };
        }
        match self.b.get(self.i) {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => false,
        }
    }

    /// Steps into an object or an array; `Some(closed)` when it is empty, `None` when it is
    /// too deep for this scan.
    fn open(&mut self, depth: usize, close: u8) -> Option<bool> {
        if depth > CANONICAL_MAX_DEPTH {
            return None;
        }
        self.i += 1;
        let empty = self.b.get(self.i) == Some(&close);
        self.i += usize::from(empty);
        Some(empty)
    }

    fn object(&mut self, depth: usize) -> bool {
        match self.open(depth, b'}') {
            None => return false,
            Some(true) => return true,
            Some(false) => {}
        }
        let siblings = self.keys.len();
        loop {
            let start = self.i;
            if self.b.get(self.i) != Some(&b'"') || !self.string() {
                return false;
            }
            let key = &self.b[start + 1..self.i - 1];
            // Canonical escapes map one to one onto characters and have no case variants
            // of their own, so for ASCII keys comparing the raw text ignoring ASCII case is
            // comparing the keys as `parse` does. Other keys are left to `parse`.
            if (!self.ascii && !key.is_ascii())
                || self.keys[siblings..]
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(key))
            {
                return false;
            }
            self.keys.push(key);
            if self.next() != Some(b':') {
                return false;
            }
            let (start, at) = (self.i, self.outline.len());
            if depth <= OUTLINE_DEPTH {
                self.outline.push(Member {
                    depth,
                    key,
                    value: &[],
                });
            }
            if !self.value(depth) {
                return false;
            }
            if depth <= OUTLINE_DEPTH {
                self.outline[at].value = &self.b[start..self.i];
            }
            match self.next() {
                Some(b',') => {}
                Some(b'}') => break,
                _ => return false,
            }
        }
        self.keys.truncate(siblings);
        true
    }

    fn array(&mut self, depth: usize) -> bool {
        match self.open(depth, b']') {
            None => return false,
            Some(true) => return true,
            Some(false) => {}
        }
        loop {
            if !self.value(depth) {
                return false;
            }
            match self.next() {
                Some(b',') => {}
                Some(b']') => return true,
                _ => return false,
            }
        }
    }

    /// A string, from its opening quote to just past its closing one. The whole text is
    /// known to be UTF-8 without control characters, so only quotes and escapes matter.
    fn string(&mut self) -> bool {
        self.i += 1;
        loop {
            self.i = json_text::quote_or_escape(self.b, self.i);
            if self.b.get(self.i) == Some(&b'"') {
                self.i += 1;
                return true;
            }
            if self.i >= self.b.len() {
                return false;
            }
            // Only the escapes serde_json writes: the short forms, and `\u00xx` (lower-case
            // hex) for the control characters that have none.
            match self.b.get(self.i + 1) {
                Some(b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 2,
                Some(b'u') => {
                    let Some(&[b'0', b'0', hi, lo]) = self.b.get(self.i + 2..self.i + 6) else {
                        return false;
                    };
                    let (Some(hi), Some(lo)) = (lower_hex(hi), lower_hex(lo)) else {
                        return false;
                    };
                    let c = hi * 16 + lo;
                    if c >= 0x20 || matches!(c, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                        return false;
                    }
                    self.i += 6;
                }
                _ => return false,
            }
        }
    }

    fn number(&mut self) -> bool {
        let start = self.i;
        while matches!(
            self.b.get(self.i),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.i += 1;
        }
        let token = &self.b[start..self.i];
        let digits = token.strip_prefix(b"-").unwrap_or(token);
        if digits.iter().all(u8::is_ascii_digit) {
            return json_text::written_integer(token).is_some();
        }
        // A fraction or an exponent: whether serde_json writes the same text is for
        // serde_json to say (its float reading and writing have their own rounding).
        serde_json::from_slice::<Value>(token)
            .ok()
            .and_then(|v| serde_json::to_vec(&v).ok())
            .is_some_and(|text| text == token)
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let matched = self.b[self.i..].starts_with(word);
        self.i += word.len();
        matched
    }
}

fn lower_hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Finds the top-level `"id"` of a JSON-RPC message from the start of its text, for a
/// message too large to parse whole. Returns the id's JSON text (`7` or `"abc"`).
pub fn top_level_id(prefix: &[u8]) -> Option<String> {
    let mut depth = 0usize;
    let mut i = 0usize;
    let mut expecting_key = false;
    while i < prefix.len() {
        match prefix[i] {
            b'{' => {
                depth += 1;
                expecting_key = depth == 1;
            }
            b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expecting_key = true,
            b'"' => {
                let end = string_end(prefix, i)?;
                if depth == 1 && expecting_key {
                    expecting_key = false;
                    if &prefix[i + 1..end] == b"id" {
                        return scalar_after_colon(prefix, end + 1);
                    }
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn scalar_after_colon(bytes: &[u8], mut i: usize) -> Option<String> {
    while i < bytes.len() && (bytes[i] == b':' || bytes[i].is_ascii_whitespace()) {
        i += 1;
    }
    let start = i;
    if bytes.get(i) == Some(&b'"') {
        let end = string_end(bytes, i)?;
        return String::from_utf8(bytes[start..=end].to_vec()).ok();
    }
    while i < bytes.len() && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
        i += 1;
    }
    (i > start).then(|| String::from_utf8_lossy(&bytes[start..i]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_rejected_at_any_depth() {
        let e = parse(br#"{"a":1,"a":2}"#, Keys::Unique).unwrap_err();
        assert_eq!(
            e,
            JsonProblem::Ambiguous("duplicate key \"a\" at line 1 column 10".into())
        );
        assert!(parse(br#"{"p":{"name":"x","name":"y"}}"#, Keys::Unique).is_err());
        assert!(parse(br#"{"p":[{"k":1,"k":1}]}"#, Keys::Unique).is_err());
    }

    #[test]
    fn case_variants_are_rejected_when_asked() {
        let msg = br#"{"method":"tools/call","METHOD":"ping"}"#;
        assert!(parse(msg, Keys::Unique).is_ok());
        let e = parse(msg, Keys::UniqueIgnoringCase).unwrap_err();
        assert!(e.to_string().contains("differ only in case"), "{e}");
    }

    #[test]
    fn syntax_errors_and_trailing_data_are_parse_errors() {
        assert!(matches!(
            parse(b"{\"a\":", Keys::Unique),
            Err(JsonProblem::Syntax(_))
        ));
        assert!(matches!(
            parse(b"{} {}", Keys::Unique),
            Err(JsonProblem::Syntax(_))
        ));
        assert!(matches!(
            parse(b"nope", Keys::Unique),
            Err(JsonProblem::Syntax(_))
        ));
    }

    #[test]
    fn key_order_is_kept() {
        let v = parse(br#"{"z":1,"a":2,"m":3}"#, Keys::Unique).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"z":1,"a":2,"m":3}"#);
    }

    #[test]
    fn the_id_of_a_truncated_message_is_found() {
        assert_eq!(
            top_level_id(br#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"text":"aaa"#),
            Some("42".into())
        );
        assert_eq!(
            top_level_id(br#"{"result":{"id":1,"x":"}"},"id":"a\"b","#),
            Some(r#""a\"b""#.into())
        );
        assert_eq!(top_level_id(br#"{"result":{"id":1}"#), None);
        assert_eq!(
            top_level_id(br#"{"id":2.5e0,"result":"#),
            Some("2.5e0".into())
        );
        assert_eq!(
            top_level_id(br#"{"method":"x","params":{"id":"no"}}"#),
            None
        );
    }

    /// What `is_canonical` promises: the exact parser accepts the text, and re-serialises
    /// what it read to the very same bytes.
    fn promise_holds(text: &[u8]) -> bool {
        parse(text, Keys::UniqueIgnoringCase).is_ok_and(|v| serde_json::to_vec(&v).unwrap() == text)
    }

    fn check(text: &[u8]) {
        if is_canonical(text) {
            assert!(
                promise_holds(text),
                "claimed canonical: {}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn compact_messages_are_canonical() {
        for text in [
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"repo":"web","n":-12,"ok":true,"x":null,"l":[1,[],{}],"f":1.5}}}"#,
            r#"{"id":"a\"b\\c\n\t\u0001\u001f","s":"é ✓ 😀 "}"#,
            r#"{"n":18446744073709551615,"m":-9223372036854775808,"z":0,"e":1e+300,"g":0.1}"#,
            r#"[{"a":{"a":{"a":1}}},"x"]"#,
            "{}",
        ] {
            assert!(promise_holds(text.as_bytes()), "{text}");
            assert!(is_canonical(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn ambiguous_or_rewritten_text_is_not_canonical() {
        for text in [
            // duplicate and case-variant keys, at the top and nested in arguments
            r#"{"method":"tools/call","method":"ping"}"#,
            r#"{"method":"tools/call","METHOD":"ping"}"#,
            r#"{"params":{"name":"a","Name":"b"}}"#,
            r#"{"params":{"arguments":{"x":{"k":1,"k":2}}}}"#,
            r#"{"params":{"arguments":[{"k":1,"K":2}]}}"#,
            // escapes serde_json does not write
            r#"{"params":{"na\u006de":"x"}}"#,
            r#"{"a":"\/"}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":"\u001F"}"#,
            r#"{"a":"\u000a"}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            // lone surrogates (not even valid for the exact parser)
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00x"}"#,
            // numbers written another way than serde_json writes them
            r#"{"a":-0}"#,
            r#"{"a":01}"#,
            r#"{"a":1.0e2}"#,
            r#"{"a":1E2}"#,
            r#"{"a":100.00}"#,
            r#"{"a":18446744073709551616}"#,
            r#"{"a":-9223372036854775809}"#,
            r#"{"a":123456789012345678901234567890}"#,
            r#"{"a":1e400}"#,
            // whitespace anywhere
            r#" {"a":1}"#,
            r#"{"a":1} "#,
            r#"{ "a":1}"#,
            r#"{"a" :1}"#,
            r#"{"a": 1}"#,
            r#"{"a":[1, 2]}"#,
            "{\"a\":1}\r",
            // not JSON
            r#"{"a":1"#,
            r#"{"a":1}}"#,
            r#"{"a":tru}"#,
            r#"{"a":"x"#,
            "{\"a\":\"\x01\"}",
            r#"{a:1}"#,
            r#"{"a":1,}"#,
            r#"[1,]"#,
            "",
            // non-ASCII keys are left to the exact parser (Unicode case folding)
            r#"{"k":1,"K":2}"#,
        ] {
            assert!(!is_canonical(text.as_bytes()), "{text}");
        }
        assert!(!is_canonical(b"{\"a\":\"\xff\"}"), "invalid UTF-8");
        let deep = format!("{}{}", "[".repeat(150), "]".repeat(150));
        assert!(!is_canonical(deep.as_bytes()));
    }

    #[test]
    fn the_outline_of_canonical_text() {
        let text = br#"{"a":{"b":[1,"]}",{"deep":1}],"c":{"d":2}},"e":"x\"y","f":-1,"g":[{"h":3}],"i":{}}"#;
        let outline = canonical_outline(text).expect("canonical");
        let got: Vec<(usize, &[u8], &[u8])> =
            outline.iter().map(|m| (m.depth, m.key, m.value)).collect();
        let want: Vec<(usize, &[u8], &[u8])> = vec![
            (1, b"a", br#"{"b":[1,"]}",{"deep":1}],"c":{"d":2}}"#),
            (2, b"b", br#"[1,"]}",{"deep":1}]"#),
            (2, b"c", br#"{"d":2}"#),
            (1, b"e", br#""x\"y""#),
            (1, b"f", b"-1"),
            (1, b"g", br#"[{"h":3}]"#),
            (1, b"i", b"{}"),
        ];
        assert_eq!(got, want);
        let keys = |at| children(&outline, at).map(|m| m.key).collect::<Vec<_>>();
        assert_eq!(keys(0), vec![b"b".as_slice(), b"c"]);
        assert!(keys(2).is_empty() && keys(5).is_empty() && keys(6).is_empty());
        assert_eq!(canonical_outline(b"{}").map(|o| o.to_vec()), Some(vec![]));
        assert_eq!(canonical_outline(b"[{\"a\":1}]").map(|o| o.len()), Some(1));
    }

    /// A scan reuses the memory the previous one on its thread gave back, and keeps no
    /// more than a bounded amount of it after a huge message.
    #[test]
    fn scans_reuse_their_memory_and_keep_little_of_a_huge_one() {
        let first = canonical_outline(br#"{"a":1,"b":{"c":2}}"#).expect("canonical");
        let memory = first.members.as_ptr();
        drop(first);
        let second = envelope_outline(br#"{"id":1,"result":{"x":[1]}}"#).expect("canonical");
        assert_eq!(second.members.as_ptr(), memory);
        assert_eq!(second.len(), 3);
        drop(second);
        let members: Vec<String> = (0..5000).map(|i| format!("\"k{i}\":{i}")).collect();
        let huge = format!("{{{}}}", members.join(","));
        let outline = canonical_outline(huge.as_bytes()).expect("canonical");
        assert_eq!(outline.len(), 5000);
        drop(outline);
        let next = canonical_outline(b"{}").expect("canonical");
        assert!(next.members.capacity() <= SPARE_CAPACITY);
    }

    /// The envelope of a response is read as exactly as a canonical message's; what lies
    /// below it is passed on, so only its structure matters.
    #[test]
    fn the_envelope_outline_checks_the_top_two_levels_and_skips_the_rest() {
        let deep_oddities =
            br#"{"id":7,"result":{"content":[{"x":1,"x":2,"n":1.50}],"isError":false}}"#;
        assert!(canonical_outline(deep_oddities).is_none());
        let outline = envelope_outline(deep_oddities).expect("the envelope is unambiguous");
        let got: Vec<(usize, &[u8], &[u8])> =
            outline.iter().map(|m| (m.depth, m.key, m.value)).collect();
        assert_eq!(
            got,
            vec![
                (1, b"id".as_slice(), b"7".as_slice()),
                (
                    1,
                    b"result",
                    br#"{"content":[{"x":1,"x":2,"n":1.50}],"isError":false}"#
                ),
                (2, b"content", br#"[{"x":1,"x":2,"n":1.50}]"#),
                (2, b"isError", b"false"),
            ]
        );
        for ambiguous_or_broken in [
            br#"{"id":7,"id":8,"result":{}}"#.as_slice(),
            br#"{"id":7,"result":{"isError":true,"IsError":false}}"#,
            br#"{"id":7 ,"result":{}}"#,
            br#"{"id":7,"result":{"content":[{"a":"}]}"#,
            br#"{"id":7,"result":{"content":[1,[2]}}"#,
            b"{\"id\":7,\"result\":{\"content\":\"a\x01b\"}}",
        ] {
            assert!(
                envelope_outline(ambiguous_or_broken).is_none(),
                "{}",
                String::from_utf8_lossy(ambiguous_or_broken)
            );
        }
    }

    mod generated {
        //! Generated JSON text with the pieces where parsers disagree: near-duplicate keys,
        //! escapes, odd numbers, whitespace, and damaged bytes.

        use super::*;
        use proptest::prelude::*;
        use proptest::sample::{Index, select};

        const KEYS: &[&str] = &[
            "name",
            "Name",
            "NAME",
            "na\\u006de",
            "arguments",
            "a",
            "A",
            "b",
            "k\\\"",
            "é",
            "É",
            "\\u0001",
            "\\t",
        ];
        const STRINGS: &[&str] = &[
            "x",
            "",
            "é",
            "😀",
            "\\\"",
            "\\\\",
            "\\/",
            "\\n",
            "\\u000a",
            "\\u0001",
            "\\u001f",
            "\\u001F",
            "\\ud83d\\ude00",
            "\\ud800",
            "\\u0041",
            "\u{7f}",
        ];
        const NUMBERS: &[&str] = &[
            "0",
            "-0",
            "1",
            "-1",
            "01",
            "1.0",
            "1.5",
            "1e2",
            "1E2",
            "-0.0",
            "0.1",
            "1e300",
            "1e400",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "123456789012345678901234567890",
            "2.5e-8",
            "100.00",
        ];
        const LITERALS: &[&str] = &["true", "false", "null"];
        /// Mostly none: compact text is what the canonical scan has to recognise.
        const SPACE: &[&str] = &["", "", "", "", "", "", " ", "\t", "\n"];
        /// Bytes that damage text where it matters.
        const DAMAGE: &[u8] = b"{}[]\",:\\ 0-.eE";

        fn space() -> impl Strategy<Value = &'static str> {
            select(SPACE)
        }

        fn scalar() -> impl Strategy<Value = String> {
            prop_oneof![
                select(STRINGS).prop_map(|s| format!("\"{s}\"")),
                (select(STRINGS), select(STRINGS)).prop_map(|(a, b)| format!("\"{a}{b}\"")),
                select(NUMBERS).prop_map(String::from),
                select(LITERALS).prop_map(String::from),
            ]
        }

        /// Objects and arrays of up to three members, four levels deep.
        fn json_text() -> impl Strategy<Value = String> {
            scalar().prop_recursive(4, 64, 3, |inner| {
                let member = (space(), select(KEYS), space(), space(), inner.clone());
                let object =
                    (prop::collection::vec(member, 0..4), space()).prop_map(|(members, end)| {
                        let members: Vec<String> = members
                            .into_iter()
                            .map(|(s1, k, s2, s3, v)| format!("{s1}\"{k}\"{s2}:{s3}{v}"))
                            .collect();
                        format!("{{{}{end}}}", members.join(","))
                    });
                let array = prop::collection::vec((space(), inner), 0..4).prop_map(|items| {
                    let items: Vec<String> =
                        items.into_iter().map(|(s, v)| format!("{s}{v}")).collect();
                    format!("[{}]", items.join(","))
                });
                prop_oneof![object, array]
            })
        }

        /// A byte removed, doubled or replaced.
        #[derive(Debug, Clone)]
        enum Damage {
            Remove(Index),
            Double(Index),
            Replace(Index, u8),
        }

        fn damage() -> impl Strategy<Value = Damage> {
            prop_oneof![
                any::<Index>().prop_map(Damage::Remove),
                any::<Index>().prop_map(Damage::Double),
                (any::<Index>(), select(DAMAGE)).prop_map(|(i, b)| Damage::Replace(i, b)),
            ]
        }

        fn damaged(text: &str, damage: &Damage) -> Vec<u8> {
            let mut bytes = text.as_bytes().to_vec();
            if bytes.is_empty() {
                return bytes;
            }
            match *damage {
                Damage::Remove(i) => {
                    bytes.remove(i.index(bytes.len()));
                }
                Damage::Double(i) => {
                    let i = i.index(bytes.len());
                    bytes.insert(i, bytes[i]);
                }
                Damage::Replace(i, b) => {
                    let i = i.index(bytes.len());
                    bytes[i] = b;
                }
            }
            bytes
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]

            /// Whatever the scan calls canonical, the exact parser accepts and re-serialises
            /// to the same bytes.
            #[test]
            fn canonical_text_keeps_its_promise(text in json_text(), damage in damage()) {
                check(text.as_bytes());
                check(&damaged(&text, &damage));
            }

            /// The converse for what serde_json itself writes: canonical unless a key is not
            /// ASCII (those are left to the exact parser).
            #[test]
            fn what_serde_json_writes_is_canonical(text in json_text()) {
                if let Ok(v) = parse(text.as_bytes(), Keys::UniqueIgnoringCase) {
                    let out = serde_json::to_vec(&v).unwrap();
                    let shown = String::from_utf8_lossy(&out);
                    if !shown.contains(['é', 'É']) {
                        prop_assert!(is_canonical(&out), "{}", shown);
                        prop_assert!(promise_holds(&out), "{}", shown);
                    }
                }
            }
        }
    }
}
