//! Argument paths and operators.
//!
//! A path that does not resolve makes every operator but `exists` fail, so a missing
//! field can never slip past a condition (fail closed), `neq` and `not_in` included.
//!
//! The negative operators also fail on a value of another kind than the policy's: `not_in:
//! [prod]` is written for a string, and a call that sends `null` or `["prod"]` instead must
//! not pass merely because a list is not equal to a string (see [`same_kind`]).

use std::cmp::Ordering;

use serde_json::Value;

use super::args::Found;
use super::loose::{compare_numbers, loose_eq, loose_eq_str};
use crate::policy::model::{Literal, Op};

/// Applies an operator to the resolved value (`None` = the path did not resolve).
pub fn apply(op: &Op, actual: Option<&Value>) -> bool {
    if let Some(Value::String(s)) = actual {
        return apply_to_str(op, s);
    }
    if let Op::Exists(expected) = op {
        let present = actual.is_some_and(|v| !v.is_null());
        return present == *expected;
    }
    let Some(actual) = actual else {
        return false;
    };
    match op {
        Op::Eq(lit) => loose_eq(actual, lit),
        Op::Neq(lit) => comparable(actual, std::slice::from_ref(lit)) && !loose_eq(actual, lit),
        Op::In(list) => list.iter().any(|l| loose_eq(actual, l)),
        Op::NotIn(list) => comparable(actual, list) && !list.iter().any(|l| loose_eq(actual, l)),
        Op::Lt(n) => numeric(actual, n, |o| o == Ordering::Less),
        Op::Lte(n) => numeric(actual, n, |o| o != Ordering::Greater),
        Op::Gt(n) => numeric(actual, n, |o| o == Ordering::Greater),
        Op::Gte(n) => numeric(actual, n, |o| o != Ordering::Less),
        // Only a string matches a pattern.
        Op::Regex(_) => false,
        Op::Contains(lit) => match actual {
            Value::Array(items) => items.iter().any(|item| loose_eq(item, lit)),
            _ => false,
        },
        Op::Exists(_) => unreachable!("handled above"),
    }
}

/// [`apply`] to a string value, which the engine often reads in place without building a
/// [`Value`].
pub fn apply_to_str(op: &Op, actual: &str) -> bool {
    match op {
        Op::Exists(expected) => *expected,
        Op::Eq(lit) => loose_eq_str(actual, lit),
        Op::Neq(lit) => comparable_str(std::slice::from_ref(lit)) && !loose_eq_str(actual, lit),
        Op::In(list) => list.iter().any(|l| loose_eq_str(actual, l)),
        Op::NotIn(list) => comparable_str(list) && !list.iter().any(|l| loose_eq_str(actual, l)),
        Op::Lt(_) | Op::Lte(_) | Op::Gt(_) | Op::Gte(_) => false,
        Op::Regex(re) => re.is_match(actual),
        Op::Contains(lit) => lit
            .value
            .as_str()
            .is_some_and(|needle| actual.contains(needle)),
    }
}

/// [`apply`] to what a path found.
pub fn apply_found(op: &Op, found: Option<Found<'_>>) -> bool {
    match found {
        Some(Found::Str(s)) => apply_to_str(op, s),
        Some(Found::Value(v)) => apply(op, Some(&v)),
        None => apply(op, None),
    }
}

/// Whether `neq` or `not_in` can compare a call's value with the policy's values: it can
/// when one of them is of the value's kind, where strings, numbers and booleans are one
/// kind (loose equality compares them with each other), lists another, mappings another.
/// A `null` in the policy means "not null" and compares with anything; a policy listing
/// something else besides it still needs a value of that kind.
fn comparable(actual: &Value, policy: &[Literal]) -> bool {
    let mut only_null = true;
    for l in policy {
        if l.value.is_null() {
            continue;
        }
        only_null = false;
        if same_kind(actual, &l.value) {
            return true;
        }
    }
    only_null
}

/// [`comparable`] for a string value.
fn comparable_str(policy: &[Literal]) -> bool {
    policy.iter().all(|l| l.value.is_null()) || policy.iter().any(|l| is_scalar(&l.value))
}

fn same_kind(actual: &Value, policy: &Value) -> bool {
    match (actual, policy) {
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => true,
        (a, p) => is_scalar(a) && is_scalar(p),
    }
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

fn numeric(actual: &Value, limit: &serde_json::Number, test: impl Fn(Ordering) -> bool) -> bool {
    match actual {
        Value::Number(n) => compare_numbers(n, limit).is_some_and(test),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A string read in place is judged as the same string in a tree would be by the
    /// reference's loose rules: equal to a literal whose text it is, never a number.
    #[test]
    fn strings_in_place_follow_the_loose_rules() {
        let literals = [
            json!("web"),
            json!(100),
            json!(true),
            json!(null),
            json!(2.5),
        ];
        let strings = ["web", "100", "true", "<nil>", "2.5", "Web", ""];
        for s in strings {
            for l in &literals {
                let loose = loose_eq(&Value::from(s), &Literal::new(l.clone()));
                assert_eq!(
                    apply_to_str(&Op::Eq(Literal::new(l.clone())), s),
                    loose,
                    "{s} eq {l}"
                );
                assert_eq!(
                    apply_to_str(&Op::Neq(Literal::new(l.clone())), s),
                    !loose,
                    "{s} neq {l}"
                );
                let list = vec![Literal::new(json!("other")), Literal::new(l.clone())];
                assert_eq!(apply_to_str(&Op::In(list), s), loose, "{s} in [.., {l}]");
            }
            let n = serde_json::Number::from(0);
            for op in [
                Op::Lt(n.clone()),
                Op::Lte(n.clone()),
                Op::Gt(n.clone()),
                Op::Gte(n),
            ] {
                assert!(!apply_to_str(&op, s), "a string is not a number");
            }
            assert!(apply_to_str(&Op::Exists(true), s));
            assert!(!apply_to_str(&Op::Exists(false), s));
        }
        let re = Op::Regex(regex::Regex::new("^[A-Z]").unwrap());
        assert!(apply_to_str(&re, "Fix") && !apply_to_str(&re, "fix"));
        assert!(apply_to_str(
            &Op::Contains(Literal::new(json!("eb"))),
            "web"
        ));
        assert!(!apply_to_str(&Op::Contains(Literal::new(json!(1))), "1"));
    }

    /// A tree's string and a string read in place are one case.
    #[test]
    fn a_string_value_is_judged_as_a_string() {
        let ops = [
            Op::Eq(Literal::new(json!(100))),
            Op::Regex(regex::Regex::new("0$").unwrap()),
            Op::Contains(Literal::new(json!("10"))),
            Op::Gt(serde_json::Number::from(5)),
            Op::Exists(true),
        ];
        for op in &ops {
            for s in ["100", "x"] {
                assert_eq!(
                    apply(op, Some(&Value::from(s))),
                    apply_found(op, Some(Found::Str(s)))
                );
            }
            assert!(!apply_found(op, None) || matches!(op, Op::Exists(false)));
        }
        // Numbers are still compared as numbers, and a missing value fails closed.
        assert!(apply(
            &Op::Eq(Literal::new(json!(100))),
            Some(&json!(100.0))
        ));
        assert!(apply(&Op::Gt(serde_json::Number::from(5)), Some(&json!(7))));
        assert!(!apply(&Op::Neq(Literal::new(json!("x"))), None));
    }
}
