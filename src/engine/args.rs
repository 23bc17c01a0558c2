//! A call's arguments, as a parsed tree or as the text of a JSON object.
//!
//! The proxy reads most `tools/call` messages without building their arguments (see
//! `proxy::json`): a policy looks at a few fields of arguments that can be large, so the
//! engine follows each path through the text and parses only the value it reaches.

use std::borrow::Cow;

use serde_json::Value;

use crate::json_text::{string_end, value_end};
use crate::policy::model::ArgPath;

/// The `arguments` of a call.
#[derive(Debug, Clone, Copy)]
pub enum Args<'a> {
    /// A parsed value (an object, or anything else, which the engine denies).
    Value(&'a Value),
    /// The text of a JSON object that is valid JSON and has no two members with the same
    /// key at any depth, so that the first member found is the only one.
    Text(&'a [u8]),
}

/// What a path reaches: a string as it is (read in place, without a copy: conditions
/// mostly test strings, and a call should not cost an allocation per condition), or any
/// other value.
#[derive(Debug, PartialEq)]
pub enum Found<'a> {
    Str(&'a str),
    Value(Cow<'a, Value>),
}

impl<'a> Found<'a> {
    /// As a JSON value, for a reader that needs one.
    pub fn into_value(self) -> Cow<'a, Value> {
        match self {
            Found::Str(s) => Cow::Owned(Value::from(s)),
            Found::Value(v) => v,
        }
    }
}

impl<'a> Args<'a> {
    /// Follows `args.a.0.b`; whole-number segments also index arrays. `None` when the
    /// path does not resolve.
    pub fn find(self, path: &ArgPath) -> Option<Found<'a>> {
        match self {
            Args::Value(v) => resolve_value(v, path).map(|v| match v {
                Value::String(s) => Found::Str(s),
                v => Found::Value(Cow::Borrowed(v)),
            }),
            Args::Text(t) => {
                let text = resolve_text(t, path)?;
                match plain_string(text) {
                    Some(s) => Some(Found::Str(s)),
                    None => serde_json::from_slice(text)
                        .ok()
                        .map(|v| Found::Value(Cow::Owned(v))),
                }
            }
        }
    }

    /// A copy that owns its data, for a record kept after the call.
    pub fn to_owned_args(self) -> OwnedArgs {
        match self {
            Args::Value(v) => OwnedArgs::Value(v.clone()),
            Args::Text(t) => OwnedArgs::Text(t.into()),
        }
    }
}

/// [`Args`] that own their data.
#[derive(Debug, Clone)]
pub enum OwnedArgs {
    Value(Value),
    Text(Box<[u8]>),
}

impl OwnedArgs {
    /// The arguments as a tree (text is parsed; text that is not JSON reads as `null`).
    pub fn to_value(&self) -> Cow<'_, Value> {
        match self {
            OwnedArgs::Value(v) => Cow::Borrowed(v),
            OwnedArgs::Text(t) => Cow::Owned(serde_json::from_slice(t).unwrap_or(Value::Null)),
        }
    }
}

/// The content of a JSON string written without escapes (the usual case), as it is.
fn plain_string(text: &[u8]) -> Option<&str> {
    match text {
        [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') => std::str::from_utf8(inner).ok(),
        _ => None,
    }
}

fn resolve_value<'v>(args: &'v Value, path: &ArgPath) -> Option<&'v Value> {
    let mut current = args;
    for seg in &path.segments {
        current = match current {
            Value::Object(map) => map.get(&seg.key)?,
            Value::Array(items) => items.get(seg.index?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// The text of the value at `path`.
fn resolve_text<'t>(text: &'t [u8], path: &ArgPath) -> Option<&'t [u8]> {
    let mut current = text;
    for seg in &path.segments {
        current = match current.first()? {
            b'{' => member(current, &seg.key)?,
            b'[' => element(current, seg.index?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// The value of the member `key` of the object whose text is `object`.
fn member<'t>(object: &'t [u8], key: &str) -> Option<&'t [u8]> {
    let mut i = skip_space(object, 1);
    if object.get(i) == Some(&b'}') {
        return None;
    }
    loop {
        let key_end = string_end(object, i)?;
        let found = same_key(&object[i..=key_end], key);
        i = skip_space(object, key_end + 1);
        if object.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_space(object, i + 1);
        let end = value_end(object, start)?;
        if found {
            return Some(&object[start..end]);
        }
        i = skip_space(object, end);
        match object.get(i)? {
            b',' => i = skip_space(object, i + 1),
            _ => return None,
        }
    }
}

/// The `index`th element of the array whose text is `array`.
fn element(array: &[u8], index: usize) -> Option<&[u8]> {
    let mut i = skip_space(array, 1);
    if array.get(i) == Some(&b']') {
        return None;
    }
    for n in 0.. {
        let end = value_end(array, i)?;
        if n == index {
            return Some(&array[i..end]);
        }
        i = skip_space(array, end);
        match array.get(i)? {
            b',' => i = skip_space(array, i + 1),
            _ => return None,
        }
    }
    None
}

/// Whether a key as written (with its quotes) is `key`: compared as text unless it has
/// escapes, which are decoded first.
fn same_key(written: &[u8], key: &str) -> bool {
    let raw = &written[1..written.len() - 1];
    if !raw.contains(&b'\\') {
        return raw == key.as_bytes();
    }
    serde_json::from_slice::<String>(written).is_ok_and(|k| k == key)
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::Segment;

    fn path(text: &str) -> ArgPath {
        ArgPath {
            text: text.to_string(),
            segments: text
                .split('.')
                .map(|s| Segment {
                    key: s.to_string(),
                    index: s.parse().ok(),
                })
                .collect(),
        }
    }

    /// Every path resolves through the text to what it resolves to in the tree.
    #[test]
    fn text_and_tree_agree() {
        let texts = [
            r#"{"a":1,"b":{"c":[10,{"d":"x"},true],"e":null},"f":"q\"uo\\te","g":[],"h":{}}"#,
            r#"{ "a" : 1 , "b" : { "c" : [ 10 , { "d" : "x" } , true ] } , "f" : -2.5e3 }"#,
            r#"{"k\u0065y":"escaped key","0":"zero","1":{"0":[["n"]]},"x":"}]\"{["}"#,
            r#"{}"#,
        ];
        let paths = [
            "a", "b", "b.c", "b.c.0", "b.c.1", "b.c.1.d", "b.c.2", "b.c.3", "b.e", "b.e.x", "f",
            "g", "g.0", "h", "h.x", "key", "0", "1.0.0.0", "x", "missing", "a.b",
        ];
        for text in texts {
            let tree: Value = serde_json::from_str(text).unwrap();
            for p in paths {
                let p = path(p);
                let from_text = Args::Text(text.as_bytes()).find(&p).map(Found::into_value);
                let from_tree = Args::Value(&tree).find(&p).map(Found::into_value);
                assert_eq!(
                    from_text.as_deref(),
                    from_tree.as_deref(),
                    "{} in {text}",
                    p.text
                );
            }
        }
    }

    #[test]
    fn plain_strings_are_found_in_place() {
        let text = br#"{"a":{"b":"plain"},"c":"esc\"aped","n":5}"#;
        let found = |p: &str| Args::Text(text).find(&path(p));
        match found("a.b") {
            Some(Found::Str(s)) => assert!(text.as_ptr_range().contains(&s.as_ptr())),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            found("c"),
            Some(Found::Value(Cow::Owned(Value::from("esc\"aped"))))
        );
        assert_eq!(found("n"), Some(Found::Value(Cow::Owned(Value::from(5)))));
        assert_eq!(found("a.x"), None);
    }

    #[test]
    fn owned_text_parses_back() {
        let text = br#"{"a":[1,2]}"#;
        let owned = Args::Text(text).to_owned_args();
        assert_eq!(
            owned.to_value().into_owned(),
            serde_json::json!({"a": [1, 2]})
        );
    }
}
