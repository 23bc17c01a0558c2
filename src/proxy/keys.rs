//! Object keys as a lenient server reads them.
//!
//! Servers written in Go decode JSON with `encoding/json`, which matches an object key to a
//! field ignoring case under Unicode simple case folding (`ſ` U+017F is `s`, `K` U+212A is
//! `k`) and keeps the last of several keys that match. A message with `"Method"`, or with
//! `"params"` and `"paramſ"`, is then one message to the proxy and another to the server.
//! So two keys of one object that fold to the same text are ambiguous, and a key that folds
//! to a protocol key without being it (a near miss) is refused where that key has meaning.

use std::borrow::Cow;

use regex_syntax::hir::{ClassUnicode, ClassUnicodeRange};

/// The members of a JSON-RPC message.
pub const ENVELOPE: &[&str] = &["jsonrpc", "id", "method", "params", "result", "error"];

/// The members of `params` that the proxy reads, or that decide what a server does, in the
/// requests of any method: `tools/call`, `initialize`, cancellation, paging, tasks.
pub const PARAMS: &[&str] = &[
    "name",
    "arguments",
    "_meta",
    "inputResponses",
    "requestState",
    "task",
    "clientInfo",
    "capabilities",
    "protocolVersion",
    "requestId",
    "reason",
    "cursor",
];

/// The members of a tool in a `tools/list` result that the proxy reads.
pub const TOOL: &[&str] = &["name"];

/// `key` with each character replaced by one member of its simple case folding class, so
/// two keys fold to the same text exactly when Go's `strings.EqualFold` finds them equal.
/// Keys that are lower-case ASCII (nearly all) come back as they are, without a copy.
pub fn fold(key: &str) -> Cow<'_, str> {
    if key.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return Cow::Borrowed(key);
    }
    Cow::Owned(key.chars().map(fold_char).collect())
}

fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    // The class of `c` under simple folding is its whole orbit (`k`, `K`, `K`). Its least
    // member stands for it; when that is an ASCII letter, in its lower case, as above.
    let mut class = ClassUnicode::new([ClassUnicodeRange::new(c, c)]);
    class.case_fold_simple();
    class.ranges()[0].start().to_ascii_lowercase()
}

/// Whether a lenient server reads `a` and `b` as the same key.
pub fn same(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        fold(a) == fold(b)
    }
}

/// The protocol key of `known` that `key` folds to without being it.
pub fn near_miss(key: &str, known: &[&'static str]) -> Option<&'static str> {
    known.iter().copied().find(|k| *k != key && same(k, key))
}

/// Why the keys of one object cannot be trusted, if they cannot: two that a lenient server
/// reads as one, or one that it reads as a key of `known`.
pub fn problem<'a>(
    keys: impl IntoIterator<Item = &'a String>,
    known: &[&'static str],
) -> Option<String> {
    let mut seen: Vec<(Cow<'a, str>, &'a str)> = Vec::new();
    for key in keys {
        if let Some(meant) = near_miss(key, known) {
            return Some(format!(
                "key \"{key}\" is read as \"{meant}\" by some servers; write \"{meant}\""
            ));
        }
        let folded = fold(key);
        if let Some((_, other)) = seen.iter().find(|(f, _)| *f == folded) {
            return Some(ambiguous(other, key));
        }
        seen.push((folded, key));
    }
    None
}

/// The message for two keys of one object that fold to the same text.
pub fn ambiguous(first: &str, second: &str) -> String {
    format!("keys \"{first}\" and \"{second}\" differ only in case")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs that Go's `strings.EqualFold` finds equal (checked against Go's own tables:
    /// the orbits of `k` and `s`, Greek sigma, Cyrillic, Armenian, Deseret), and pairs it
    /// does not (dotted and dotless i, whose full folding differs from the simple one).
    #[test]
    fn folds_as_go_equal_fold_does() {
        for (a, b) in [
            ("params", "paramſ"),
            ("params", "PARAMS"),
            ("kind", "Kind"),
            ("k", "K"),
            ("σ", "ς"),
            ("Σ", "ς"),
            ("привет", "ПРИВЕТ"),
            ("ա", "Ա"),
            ("𐐨", "𐐀"),
            ("µ", "μ"),
            ("ǅ", "ǆ"),
            ("ǅ", "Ǆ"),
        ] {
            assert!(same(a, b), "{a} and {b}");
            assert_eq!(fold(a), fold(b), "{a} and {b}");
        }
        for (a, b) in [
            ("i", "İ"),
            ("i", "ı"),
            ("ss", "ß"),
            ("name", "names"),
            ("arguments", "argument"),
            ("a", "á"),
        ] {
            assert!(!same(a, b), "{a} and {b}");
        }
    }

    #[test]
    fn lower_case_ascii_is_not_copied() {
        assert!(matches!(fold("arguments"), Cow::Borrowed(_)));
        assert_eq!(fold("Arguments"), "arguments");
        assert_eq!(fold("argumentſ"), "arguments");
    }

    #[test]
    fn near_misses_of_protocol_keys() {
        assert_eq!(near_miss("Method", ENVELOPE), Some("method"));
        assert_eq!(near_miss("paramſ", ENVELOPE), Some("params"));
        assert_eq!(near_miss("ID", ENVELOPE), Some("id"));
        assert_eq!(near_miss("method", ENVELOPE), None);
        assert_eq!(near_miss("methods", ENVELOPE), None);
        assert_eq!(near_miss("argumentſ", PARAMS), Some("arguments"));
        assert_eq!(near_miss("_META", PARAMS), Some("_meta"));
    }

    #[test]
    fn the_problem_of_an_object_names_the_keys() {
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(problem(&keys(&["jsonrpc", "id", "method"]), ENVELOPE), None);
        assert_eq!(
            problem(&keys(&["a", "b", "ſ", "s"]), &[]).as_deref(),
            Some("keys \"ſ\" and \"s\" differ only in case")
        );
        assert_eq!(
            problem(&keys(&["id", "Method"]), ENVELOPE).as_deref(),
            Some("key \"Method\" is read as \"method\" by some servers; write \"method\"")
        );
    }
}
