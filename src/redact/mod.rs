//! Secrets never reach what intercept writes: stderr, the audit log, denial texts, scan
//! output. One set of rules, applied wherever a command line, URL, header or argument value
//! may be echoed.
//!
//! Three kinds of rule, each replacing only the secret part with [`REDACTED`] so that the
//! rest stays readable (`postgres://u:[REDACTED]@h/db`, `--token [REDACTED]`,
//! `Bearer [REDACTED]`, `ghp_[REDACTED]`):
//! - by name: the value of a secret-looking key ([`is_secret_key`]), option
//!   ([`is_secret_flag`]) or URL query parameter;
//! - by place: a URL's password;
//! - by shape: credentials that announce themselves whatever their key (authorization
//!   schemes, JWTs, provider tokens, private keys).
//!
//! docs/audit.md lists the rules; keep it in step.

mod stderr;

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::{Map, Value};

pub use stderr::RedactedStderr;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Fragments that mark a key as naming a secret anywhere in it (compared in lower case,
/// without `-`, `_`, `.` or spaces): `db-password`, `GITHUB_TOKEN`, `clientSecret`.
const SECRET_FRAGMENTS: &[&str] = &[
    "token",
    "password",
    "passwd",
    "passphrase",
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

/// Words too short to be matched inside others (`auth` is in `author`): they mark a key
/// only as a whole word of it (`auth`, `proxy_auth`, `authHeader`, `github_pat`, `PWD`).
const SECRET_WORDS: &[&str] = &["auth", "pwd", "pat", "jwt"];

/// Last words that make a key name where a secret is, or its digest, rather than the secret:
/// `token_env: GITHUB_TOKEN`, `token_sha256: <hex>`, `password_file: /run/secrets/db`.
const NOT_SECRET_SUFFIXES: &[&str] = &["sha256", "env", "file", "path"];

/// Query parameters that carry a secret in URLs although their name alone would not say
/// so elsewhere (`?key=` is an API key in a URL, a plain word in an argument); matched as
/// the name's last word (`X-Amz-Signature`, `subscription-key`).
const SECRET_QUERY_PARAMS: &[&str] = &["key", "sig", "signature", "code"];

/// Single-letter options whose value is hidden: `-p` is a password for mysql, sshpass and
/// many database tools (and a port elsewhere: hidden too, to fail closed).
const SECRET_SHORT_FLAGS: &[&str] = &["-p"];

/// Whether a key (an argument's name, a header name, an environment variable) looks like
/// it names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let squashed: String = key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .flat_map(char::to_lowercase)
        .collect();
    let names_where = words(key).last().is_some_and(|w| {
        NOT_SECRET_SUFFIXES
            .iter()
            .any(|s| w.eq_ignore_ascii_case(s))
    });
    !names_where
        && (SECRET_FRAGMENTS.iter().any(|s| squashed.contains(s))
            || words(key).any(|w| SECRET_WORDS.iter().any(|s| w.eq_ignore_ascii_case(s))))
}

/// Whether a command-line option hides the value that follows it: `--token`,
/// `--api-key`, `-password`, and the short options of [`SECRET_SHORT_FLAGS`].
pub fn is_secret_flag(flag: &str) -> bool {
    let name = flag.trim_start_matches('-');
    if name.len() == flag.len() || name.is_empty() {
        return false;
    }
    if name.chars().count() == 1 {
        return SECRET_SHORT_FLAGS.contains(&flag);
    }
    is_secret_key(name)
}

fn is_secret_query_param(name: &str) -> bool {
    words(name).last().is_some_and(|w| {
        SECRET_QUERY_PARAMS
            .iter()
            .any(|p| w.eq_ignore_ascii_case(p))
    }) || is_secret_key(name)
}

/// The words of a key: split at anything not alphanumeric and where camelCase turns.
fn words(key: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev: Option<char> = None;
    for (i, c) in key.char_indices() {
        if !c.is_ascii_alphanumeric() {
            if start < i {
                out.push(&key[start..i]);
            }
            start = i + c.len_utf8();
        } else if c.is_ascii_uppercase() && prev.is_some_and(|p| p.is_ascii_lowercase()) {
            out.push(&key[start..i]);
            start = i;
        }
        prev = Some(c);
    }
    if start < key.len() {
        out.push(&key[start..]);
    }
    out.into_iter()
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("redaction patterns are valid")
}

/// `-----BEGIN … PRIVATE KEY-----` up to its END line (or the end of the text, when cut).
static PRIVATE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?s)(?P<begin>-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----).*?(?P<end>-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
    )
});

/// `scheme://user:password@host`: the password (the last `@` before the path ends it).
static URL_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    regex(r#"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@"'<>]*:)(?P<password>[^\s/?#"'<>]+)@"#)
});

/// `?name=value` and `&name=value`, for the names of [`is_secret_query_param`].
static QUERY_PARAM: LazyLock<Regex> = LazyLock::new(|| {
    regex(r#"(?P<head>[?&;](?P<name>[A-Za-z0-9_.\-\[\]]+)=)(?P<value>[^&#\s"'<>]*)"#)
});

/// `Bearer <token>`, `Basic <credentials>`, `token <token>`: HTTP authorization schemes.
static AUTH_SCHEME: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?P<head>\b(?i:bearer|basic|token)[ \t]+)(?P<value>[A-Za-z0-9._~+/\-]+=*)")
});

/// Credentials recognisable by their shape; `head` (the provider's prefix) is kept.
static TOKEN_SHAPES: LazyLock<Regex> = LazyLock::new(|| {
    regex(concat!(
        // JWT: three base64url segments, the first a JSON header (`{"` is `eyJ`).
        r"(?P<jwt>\beyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*)",
        // GitHub tokens and fine-grained personal access tokens.
        r"|\b(?P<gh>gh[pousr]_|github_pat_)[A-Za-z0-9_]{16,}",
        // OpenAI / Anthropic style keys (`sk-`, `sk-proj-`, `sk-ant-`).
        r"|\b(?P<sk>sk-)[A-Za-z0-9_\-]{16,}",
        // Stripe secret and restricted keys.
        r"|\b(?P<stripe>(?:sk|rk)_(?:live|test)_)[A-Za-z0-9]{8,}",
        // Slack tokens.
        r"|\b(?P<slack>xox[abprs]-)[A-Za-z0-9\-]{8,}",
        // AWS access key ids (long-term and temporary).
        r"|\b(?P<aws>AKIA|ASIA)[A-Z0-9]{16}\b",
    ))
});

/// An option name on a command line written out as text (its start is checked apart: the
/// `regex` crate has no look-behind).
static FLAG: LazyLock<Regex> = LazyLock::new(|| regex(r"--?[A-Za-z][A-Za-z0-9_.\-]*"));

/// `name=value`, `name: value`, `"name":"value"` (an optional authorization scheme kept).
static KEY_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    regex(concat!(
        r#"(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)(?P<sep>["']?[ \t]*[:=][ \t]*)"#,
        r"(?P<scheme>(?i:bearer|basic|token)[ \t]+)?",
        r#"(?P<value>\[REDACTED\]|"[^"]*"|'[^']*'|[^\s,;&"'<>(){}\[\]]+)"#,
    ))
});

/// `text` with every secret the rules recognise replaced; borrowed when there is none.
pub fn redact_text(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for pass in [
        private_keys,
        url_passwords,
        query_params,
        auth_schemes,
        token_shapes,
        flag_values,
        key_values,
    ] {
        // A pass that matched but hid nothing hands back an equal copy: keep the original.
        if let Cow::Owned(s) = pass(&out)
            && s != *out
        {
            out = Cow::Owned(s);
        }
    }
    out
}

fn private_keys(text: &str) -> Cow<'_, str> {
    PRIVATE_KEY.replace_all(text, format!("${{begin}}{REDACTED}${{end}}"))
}

/// What the state store's own description puts in place of a Redis password.
const STORE_MASK: &str = "***";

fn url_passwords(text: &str) -> Cow<'_, str> {
    URL_PASSWORD.replace_all(text, |c: &Captures| {
        let masked = [REDACTED, STORE_MASK].contains(&&c["password"]);
        if masked {
            c[0].to_string()
        } else {
            format!("{}{REDACTED}@", &c["head"])
        }
    })
}

fn query_params(text: &str) -> Cow<'_, str> {
    QUERY_PARAM.replace_all(text, |c: &Captures| {
        // Punctuation that ends a sentence or an error text around the URL is not the value.
        let value = c["value"].trim_end_matches([':', '.', ',', ')', ']']);
        if is_secret_query_param(&c["name"]) && !value.is_empty() && value != REDACTED {
            let after = &c["value"][value.len()..];
            format!("{}{REDACTED}{after}", &c["head"])
        } else {
            c[0].to_string()
        }
    })
}

fn auth_schemes(text: &str) -> Cow<'_, str> {
    AUTH_SCHEME.replace_all(text, |c: &Captures| {
        // Padding is not a sign of a credential: `resource_metadata=` is a challenge's
        // parameter, `dXNlcjpwYXM=` a credential.
        hide_if(c, looks_like_credential(c["value"].trim_end_matches('=')))
    })
}

fn token_shapes(text: &str) -> Cow<'_, str> {
    TOKEN_SHAPES.replace_all(text, |c: &Captures| {
        let prefix = ["gh", "sk", "stripe", "slack", "aws"]
            .iter()
            .find_map(|g| c.name(g))
            .map_or("", |m| m.as_str());
        format!("{prefix}{REDACTED}")
    })
}

/// `--name value`, `--name=value`, `-p value` for the options of [`is_secret_flag`]. Found
/// option by option, so that one option's value never hides the next option from the scan.
fn flag_values(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut done = 0;
    for flag in FLAG.find_iter(text) {
        let starts_word = text[..flag.start()]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || "\"'([".contains(c));
        if flag.start() < done || !starts_word || !is_secret_flag(flag.as_str()) {
            continue;
        }
        let rest = &text[flag.end()..];
        let sep = match rest.chars().next() {
            Some('=') => 1,
            Some(' ' | '\t') => rest.len() - rest.trim_start_matches([' ', '\t']).len(),
            _ => continue,
        };
        let value = first_value(&rest[sep..]);
        if value.is_empty() || unquote(value) == REDACTED {
            continue;
        }
        let value_start = flag.end() + sep;
        out.push_str(&text[done..value_start]);
        out.push_str(&requote(value));
        done = value_start + value.len();
    }
    if done == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[done..]);
    Cow::Owned(out)
}

/// The value at the start of `text`: a quoted string (to its closing quote, or the end), or
/// everything up to the next space or quote.
fn first_value(text: &str) -> &str {
    match text.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let end = text[1..].find(q).map_or(text.len(), |i| i + 2);
            &text[..end]
        }
        _ => {
            let end = text
                .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                .unwrap_or(text.len());
            &text[..end]
        }
    }
}

/// `name=value` and the like for the keys of [`is_secret_key`]. The value of any other
/// key is searched in turn: `opts:password=x` hides `x`.
fn key_values(text: &str) -> Cow<'_, str> {
    KEY_VALUE.replace_all(text, |c: &Captures| {
        let scheme = c.name("scheme").map_or("", |m| m.as_str());
        let value = &c["value"];
        let bare = unquote(value);
        // A scheme with no credential after it is a placeholder (`Bearer <token>`).
        let scheme_alone = scheme.is_empty()
            && ["bearer", "basic", "token"]
                .iter()
                .any(|s| bare.eq_ignore_ascii_case(s));
        // `key: value` is a field where it starts a line or follows a brace, bracket, comma
        // or quote; after a word it is prose ("the server needs credentials: …").
        let field =
            !c["sep"].contains(':') || starts_a_field(&text[..c.get(0).map_or(0, |m| m.start())]);
        let hidden = if !field || !is_secret_key(&c["key"]) {
            key_values(value)
        } else if bare == REDACTED || bare.is_empty() || scheme_alone {
            Cow::Borrowed(value)
        } else {
            Cow::Owned(requote(value))
        };
        format!("{}{}{scheme}{hidden}", &c["key"], &c["sep"])
    })
}

/// Whether what comes before a `key:` leaves it the start of a field.
fn starts_a_field(before: &str) -> bool {
    before
        .trim_end_matches([' ', '\t'])
        .chars()
        .next_back()
        .is_none_or(|c| "\n\r{([,;\"'".contains(c))
}

/// The match with its `value` group replaced, or unchanged.
fn hide_if(c: &Captures, hide: bool) -> String {
    if hide && &c["value"] != REDACTED {
        format!("{}{REDACTED}", &c["head"])
    } else {
        c[0].to_string()
    }
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value)
}

/// The marker, in the quotes the value had.
fn requote(value: &str) -> String {
    match value.chars().next() {
        Some(q @ ('"' | '\'')) if value.len() >= 2 => format!("{q}{REDACTED}{q}"),
        _ => REDACTED.to_string(),
    }
}

/// Whether the word after `Bearer`/`Basic`/`token` is a credential rather than prose
/// ("Bearer token required"): long enough, with a digit, a symbol or inner capitals.
fn looks_like_credential(value: &str) -> bool {
    value.len() >= 8
        && (value
            .chars()
            .any(|c| c.is_ascii_digit() || ".~+/=-".contains(c))
            || value.chars().skip(1).any(|c| c.is_ascii_uppercase()))
}

/// A command line as one string, the value after each secret-looking option hidden
/// (`--token X`, `--api-key=X`, `-p X`) and every word redacted as text.
pub fn redact_command<S: AsRef<str>>(words: &[S]) -> String {
    redact_words(words).join(" ")
}

/// The words of a command line, redacted as [`redact_command`] does, still one by one (to
/// be quoted for a shell: quoting first would let a value hide from the option before it).
pub fn redact_words<S: AsRef<str>>(words: &[S]) -> Vec<Cow<'_, str>> {
    let mut out: Vec<Cow<'_, str>> = Vec::with_capacity(words.len());
    let mut hide_next = false;
    for word in words.iter().map(AsRef::as_ref) {
        if std::mem::take(&mut hide_next) {
            out.push(Cow::Borrowed(REDACTED));
            continue;
        }
        if word.starts_with('-') {
            match word.split_once('=') {
                Some((flag, _)) if is_secret_flag(flag) => {
                    out.push(Cow::Owned(format!("{flag}={REDACTED}")));
                    continue;
                }
                None if is_secret_flag(word) => {
                    hide_next = true;
                    out.push(Cow::Borrowed(word));
                    continue;
                }
                _ => {}
            }
        }
        out.push(redact_text(word));
    }
    out
}

/// Tool arguments as the audit log records them: the value of every secret-looking key
/// replaced whole, at any depth, and every other string redacted as text.
pub fn redact_arguments(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) {
                        Value::String(REDACTED.into())
                    } else {
                        redact_arguments(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_arguments).collect()),
        other => redact_strings(other),
    }
}

/// Every string in `value` redacted as text; keys are left alone (the audit log's own
/// fields, such as `session`, are not secrets).
pub fn redact_strings(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(redact_text(s).into_owned()),
        Value::Object(map) => Value::Object(redact_string_fields(map)),
        Value::Array(items) => Value::Array(items.iter().map(redact_strings).collect()),
        other => other.clone(),
    }
}

/// [`redact_strings`] for the members of an object.
pub fn redact_string_fields(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| (k.clone(), redact_strings(v)))
        .collect()
}

#[cfg(test)]
mod tests;
