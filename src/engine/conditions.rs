//! Argument paths and operators.
//!
//! A path that does not resolve makes every operator but `exists` fail, so a missing
//! field can never slip past a condition (fail closed), `neq` and `not_in` included.

use std::cmp::Ordering;

use serde_json::Value;

use super::loose::{compare_numbers, loose_eq};
use crate::policy::model::Op;

/// Applies an operator to the resolved value (`None` = the path did not resolve).
pub fn apply(op: &Op, actual: Option<&Value>) -> bool {
    if let Op::Exists(expected) = op {
        let present = actual.is_some_and(|v| !v.is_null());
        return present == *expected;
    }
    let Some(actual) = actual else {
        return false;
    };
    match op {
        Op::Eq(lit) => loose_eq(actual, lit),
        Op::Neq(lit) => !loose_eq(actual, lit),
        Op::In(list) => list.iter().any(|l| loose_eq(actual, l)),
        Op::NotIn(list) => !list.iter().any(|l| loose_eq(actual, l)),
        Op::Lt(n) => numeric(actual, n, |o| o == Ordering::Less),
        Op::Lte(n) => numeric(actual, n, |o| o != Ordering::Greater),
        Op::Gt(n) => numeric(actual, n, |o| o == Ordering::Greater),
        Op::Gte(n) => numeric(actual, n, |o| o != Ordering::Less),
        Op::Regex(re) => actual.as_str().is_some_and(|s| re.is_match(s)),
        Op::Contains(lit) => match actual {
            Value::String(s) => lit.value.as_str().is_some_and(|needle| s.contains(needle)),
            Value::Array(items) => items.iter().any(|item| loose_eq(item, lit)),
            _ => false,
        },
        Op::Exists(_) => unreachable!("handled above"),
    }
}

fn numeric(actual: &Value, limit: &serde_json::Number, test: impl Fn(Ordering) -> bool) -> bool {
    match actual {
        Value::Number(n) => compare_numbers(n, limit).is_some_and(test),
        _ => false,
    }
}
