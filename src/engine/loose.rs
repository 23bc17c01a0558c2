//! The reference implementation's loose comparisons, kept so its policies behave the same.
//!
//! `eq`, `in` and list `contains` compare numbers as numbers and everything else by its
//! Go `%v` text: `"100"` eq `100` and `"true"` eq `true` hold, `"100.0"` eq `100` does not.
//! Unlike the reference, whole numbers compare exactly (no rounding above 2^53).

use std::cmp::Ordering;

use serde_json::{Number, Value};

use crate::policy::model::Literal;

impl Literal {
    /// A policy literal with its `%v` text, which loose equality compares against.
    pub fn new(value: Value) -> Literal {
        Literal {
            text: go_text(&value),
            value,
        }
    }
}

/// Go's `%v` rendering of a JSON value.
pub fn go_text(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_text(n),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_text).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(map) => {
            let mut parts: Vec<(String, String)> =
                map.iter().map(|(k, v)| (k.clone(), go_text(v))).collect();
            parts.sort();
            let parts: Vec<String> = parts.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn number_text(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        n.to_string()
    } else {
        go_float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// `strconv.FormatFloat(f, 'g', -1, 64)` with `%v`'s exponent threshold of 21.
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".to_string();
    }
    // Rust's `{:e}` is the shortest round-trip form: "1.5e-5", "1e21", "-2.25e2".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..21).contains(&exp) {
        let mut out = format!("{sign}{}", &digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
        return out;
    }
    let point = exp + 1; // digits before the decimal point
    if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!(
            "{sign}{digits}{}",
            "0".repeat(point as usize - digits.len())
        )
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{sign}{int}.{frac}")
    }
}

/// Compares two JSON numbers: exactly when both are whole, as floats otherwise.
pub fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    match (as_i128(a), as_i128(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn as_i128(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// The reference's loose equality between a call's value and a policy literal.
pub fn loose_eq(actual: &Value, expected: &Literal) -> bool {
    match (actual, &expected.value) {
        (Value::Number(a), Value::Number(b)) => compare_numbers(a, b) == Some(Ordering::Equal),
        (Value::String(a), _) => loose_eq_str(a, expected),
        _ => go_text(actual) == expected.text,
    }
}

/// [`loose_eq`] for a string: equal to a literal when it is the literal's text.
pub fn loose_eq_str(actual: &str, expected: &Literal) -> bool {
    actual == expected.text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_float_rendering_matches_fmt_v() {
        assert_eq!(go_float(100.0), "100");
        assert_eq!(go_float(2.5), "2.5");
        assert_eq!(go_float(-0.5), "-0.5");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(1e20), "100000000000000000000");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1.5e300), "1.5e+300");
        assert_eq!(go_float(123.456), "123.456");
    }

    #[test]
    fn loose_equality_follows_the_reference() {
        assert!(loose_eq(&json!("100"), &Literal::new(json!(100))));
        assert!(loose_eq(&json!(100), &Literal::new(json!("100"))));
        assert!(!loose_eq(&json!("100.0"), &Literal::new(json!(100))));
        assert!(loose_eq(&json!(100.0), &Literal::new(json!(100))));
        assert!(loose_eq(&json!("true"), &Literal::new(json!(true))));
        assert!(loose_eq(&json!(null), &Literal::new(json!("<nil>"))));
        assert!(!loose_eq(&json!("abc"), &Literal::new(json!("ABC"))));
    }

    #[test]
    fn big_integers_compare_exactly() {
        let a = json!(9_007_199_254_740_993u64);
        let b = json!(9_007_199_254_740_992u64);
        assert!(!loose_eq(&a, &Literal::new(b.clone())));
        let (Value::Number(a), Value::Number(b)) = (a, b) else {
            unreachable!()
        };
        assert_eq!(compare_numbers(&a, &b), Some(Ordering::Greater));
    }
}
