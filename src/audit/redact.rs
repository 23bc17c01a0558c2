//! Secrets never reach the audit log, even with `--log-args`.

use serde_json::Value;

const REDACTED: &str = "[REDACTED]";

/// Key fragments that mark a value as a secret (compared without case, `-` or `_`).
const SECRET_KEYS: &[&str] = &[
    "token",
    "password",
    "passwd",
    "secret",
    "authorization",
    "apikey",
    "accesskey",
    "privatekey",
    "credential",
    "cookie",
    "session",
    "bearer",
];

/// Whether a key (or an option name such as `--api-key`) looks like it names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_KEYS.iter().any(|s| k.contains(s))
}

/// A copy of `value` with the value of every secret-looking key replaced, at any depth.
pub fn redact_secrets(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) {
                        Value::String(REDACTED.into())
                    } else {
                        redact_secrets(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_secrets).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_looking_keys_are_redacted_at_any_depth() {
        let args = json!({
            "title": "x",
            "api_key": "k1",
            "headers": {"Authorization": "Bearer t", "Accept": "json"},
            "items": [{"GITHUB_TOKEN": "g"}, {"name": "n"}],
            "db-password": "p",
        });
        assert_eq!(
            redact_secrets(&args),
            json!({
                "title": "x",
                "api_key": "[REDACTED]",
                "headers": {"Authorization": "[REDACTED]", "Accept": "json"},
                "items": [{"GITHUB_TOKEN": "[REDACTED]"}, {"name": "n"}],
                "db-password": "[REDACTED]",
            })
        );
    }
}
