//! The canonical form of a call's arguments: object keys sorted by their bytes, no
//! whitespace, strings escaped as JSON does. Equal arguments have one form whatever order the
//! client wrote them in, so their hash (`args_hash`) is equal too.
//!
//! Written for speed (the writer thread does this for every call): one buffer, plain strings
//! copied without escaping work, small objects sorted without allocating.

use serde_json::Value;

/// Objects with at most this many members are sorted on the stack.
const SMALL: usize = 32;

/// Appends the canonical JSON of `v` to `out`.
pub fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            out.push(b'{');
            let mut first = true;
            let mut member = |k: &str, v: &Value, out: &mut Vec<u8>| {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                write(v, out);
            };
            if map.len() <= SMALL {
                let mut members: [(&str, &Value); SMALL] = [("", &Value::Null); SMALL];
                for (slot, (k, v)) in members.iter_mut().zip(map.iter()) {
                    *slot = (k.as_str(), v);
                }
                let members = &mut members[..map.len()];
                members.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (k, v) in members.iter() {
                    member(k, v, out);
                }
            } else {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (k, v) in members {
                    member(k, v, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_str(s, out),
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

/// A JSON string: copied as it is when nothing in it needs escaping (the common case).
fn write_str(s: &str, out: &mut Vec<u8>) {
    // Without short-circuiting, so the check runs many bytes at a time.
    let plain = !s.bytes().fold(false, |seen, b| {
        seen | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(v: &Value) -> String {
        let mut out = Vec::new();
        write(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn keys_are_sorted_at_every_depth_and_strings_escaped_as_json_does() {
        assert_eq!(
            text(&json!({"b": [1, {"d": null, "c": "é\n\"q\"\\"}], "a": 1.5, "A": true})),
            r#"{"A":true,"a":1.5,"b":[1,{"c":"é\n\"q\"\\","d":null}]}"#
        );
        let big: serde_json::Map<String, Value> = (0..40)
            .rev()
            .map(|i| (format!("k{i:02}"), json!(i)))
            .collect();
        let t = text(&Value::Object(big));
        assert!(t.starts_with(r#"{"k00":0,"k01":1,"#) && t.ends_with(r#""k39":39}"#));
        assert_eq!(text(&json!("\u{1}")), r#""\u0001""#);
    }
}
