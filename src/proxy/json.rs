//! Exact JSON parsing for messages the proxy decides on.
//!
//! A proxy and the server behind it must see the same message. serde_json keeps the last
//! of two duplicate keys and other parsers keep the first; some match keys without regard
//! to case. So a client message with `"name"` twice, or with `"name"` and `"NAME"`, could be
//! evaluated as one tool and executed as another. Such messages are rejected here, and what
//! is forwarded for a `tools/call` is the re-serialisation of exactly what was evaluated.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

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
    /// Also reject keys that differ only in case (`name` and `Name` in one object).
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
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key \"{key}\"")));
            }
            if self.keys == Keys::UniqueIgnoringCase
                && let Some(other) = map.keys().find(|k| same_ignoring_case(k, &key))
            {
                return Err(de::Error::custom(format!(
                    "keys \"{other}\" and \"{key}\" differ only in case"
                )));
            }
            let value = access.next_value_seed(self)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

fn same_ignoring_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
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

/// Index of the closing quote of the string starting at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
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
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'-') {
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
            top_level_id(br#"{"method":"x","params":{"id":"no"}}"#),
            None
        );
    }
}
