//! Request headers for a remote server: `Name: value` lines given on the command line
//! (`--header`) or held by an environment variable (`--header-env NAME`).
//!
//! Header values are often credentials, so no error here ever quotes one. Arguments are
//! readable by every user of the machine (`ps`); a client puts an entry's `env` into the
//! server's environment, which only its owner can read: hence `--header-env`.

use std::ffi::OsString;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// What is wrong with a header line (never the line itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("it is empty")]
    Empty,
    #[error("there is no colon")]
    NoColon,
    #[error("the header name before the colon is empty")]
    EmptyName,
    #[error("the header name has a character not allowed in one")]
    BadName,
    #[error("the value after the colon is empty")]
    EmptyValue,
    #[error("the value has a line break or another character not allowed in a header")]
    BadValue,
}

/// A header line that cannot be sent: its name when that much is readable, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Worded so that the redaction of error texts leaves it whole (no `name: word`).
#[error(
    "{} is not valid: {why}; give one \"Name: value\" line (the value is not shown)",
    name.as_ref().map_or_else(|| "a header".to_string(), |n| format!("the header \"{n}\""))
)]
pub struct HeaderError {
    /// Shown only when it is a valid header name: a line without a colon may be all secret.
    pub name: Option<String>,
    pub why: LineError,
}

/// Parses one `Name: value` line. Blanks around the name and the value are trimmed; a
/// colon in the value is part of the value.
pub fn parse_line(line: &str) -> Result<(HeaderName, HeaderValue), HeaderError> {
    checked(line).map(|(_, name, _, value)| (name, value))
}

/// The line's name and value as written (trimmed), and as they are sent.
fn checked(line: &str) -> Result<(&str, HeaderName, &str, HeaderValue), HeaderError> {
    let fail = |name: Option<&HeaderName>, why| HeaderError {
        name: name.map(|n| n.as_str().to_string()),
        why,
    };
    if line.trim().is_empty() {
        return Err(fail(None, LineError::Empty));
    }
    let (text, value_text) = line
        .split_once(':')
        .ok_or_else(|| fail(None, LineError::NoColon))?;
    let (text, value_text) = (text.trim(), value_text.trim());
    if text.is_empty() {
        return Err(fail(None, LineError::EmptyName));
    }
    let name =
        HeaderName::from_bytes(text.as_bytes()).map_err(|_| fail(None, LineError::BadName))?;
    if value_text.is_empty() {
        return Err(fail(Some(&name), LineError::EmptyValue));
    }
    let value =
        HeaderValue::from_str(value_text).map_err(|_| fail(Some(&name), LineError::BadValue))?;
    Ok((text, name, value_text, value))
}

/// The request headers of `lines`, in order: a later line replaces an earlier one of the
/// same name.
pub fn parse_lines(lines: &[String]) -> Result<HeaderMap, HeaderError> {
    let mut map = HeaderMap::new();
    for line in lines {
        let (name, value) = parse_line(line)?;
        map.insert(name, value);
    }
    Ok(map)
}

/// Why `--header-env NAME` gives no header.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderEnvError {
    #[error(
        "--header-env {0}: the environment variable {0} is not set; set it to one header line, e.g. {0}=\"Authorization: Bearer <token>\""
    )]
    Unset(String),
    #[error(
        "--header-env \"{0}\": not an environment variable name (letters, digits and _, e.g. --header-env API_AUTH)"
    )]
    BadName(String),
    /// The header itself was given: it is not repeated, it may hold a secret.
    #[error(
        "--header-env takes the name of an environment variable that holds the header, not the header itself: e.g. --header-env API_AUTH, with API_AUTH=\"Authorization: Bearer <token>\" in the environment"
    )]
    HeaderGiven,
    #[error("--header-env {0}: the value of {0} is not valid UTF-8")]
    NotUnicode(String),
    #[error(
        "--header-env {name}: the value of {name} is not a header line \"Name: value\": {why} (the value is not shown)"
    )]
    Malformed { name: String, why: LineError },
}

/// The header line the variable `name` holds, checked, as `Name: value`. `lookup` reads the
/// environment (a seam for tests).
pub fn from_env(
    name: &str,
    lookup: &dyn Fn(&str) -> Option<OsString>,
) -> Result<String, HeaderEnvError> {
    let valid_name = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        if name.contains(':') {
            return Err(HeaderEnvError::HeaderGiven);
        }
        return Err(HeaderEnvError::BadName(name.to_string()));
    }
    let value = lookup(name).ok_or_else(|| HeaderEnvError::Unset(name.to_string()))?;
    let line = value
        .into_string()
        .map_err(|_| HeaderEnvError::NotUnicode(name.to_string()))?;
    let (header, _, value, _) = checked(&line).map_err(|e| HeaderEnvError::Malformed {
        name: name.to_string(),
        why: e.why,
    })?;
    Ok(format!("{header}: {value}"))
}

/// The header lines of every `--header-env` variable, read from this process's environment.
pub fn from_env_all(names: &[String]) -> Result<Vec<String>, HeaderEnvError> {
    names
        .iter()
        .map(|name| from_env(name, &|n| std::env::var_os(n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: Option<&str>) -> impl Fn(&str) -> Option<OsString> {
        let value = value.map(OsString::from);
        move |_| value.clone()
    }

    /// Lines that are not headers, and why: each error of either form says so.
    const BAD: [(&str, LineError); 6] = [
        ("Bearer s3cret", LineError::NoColon),
        ("  ", LineError::Empty),
        (": Bearer s3cret", LineError::EmptyName),
        ("Author ization: Bearer s3cret", LineError::BadName),
        ("Authorization:   ", LineError::EmptyValue),
        (
            "Authorization: Bearer s3cret\nX-Evil: 1",
            LineError::BadValue,
        ),
    ];

    #[test]
    fn one_parser_for_both_forms_that_never_quotes_a_value() {
        for (line, why) in BAD {
            let err = parse_line(line).unwrap_err();
            assert_eq!(err.why, why, "{line:?}");
            let shown = err.to_string();
            assert!(!shown.contains("s3cret"), "the value leaked: {shown}");
            // Errors are redacted before they are printed: this one must read the same.
            assert_eq!(crate::redact::redact_text(&shown), shown);
            let err = parse_lines(&["X-Ok: 1".to_string(), line.to_string()]).unwrap_err();
            assert_eq!(err.why, why);
            let env = from_env("API_AUTH", &with(Some(line))).unwrap_err();
            assert_eq!(
                env,
                HeaderEnvError::Malformed {
                    name: "API_AUTH".into(),
                    why
                }
            );
            let shown = env.to_string();
            assert!(shown.contains("--header-env API_AUTH"), "{shown}");
            assert!(shown.contains(&why.to_string()), "{shown}");
            assert!(!shown.contains("s3cret"), "the value leaked: {shown}");
        }
        // The name is told when it is one: it helps, and it is not the secret.
        assert_eq!(
            parse_line("Authorization: Bearer s3cret\r\n1")
                .unwrap_err()
                .to_string(),
            "the header \"authorization\" is not valid: the value has a line break or another character not allowed in a header; give one \"Name: value\" line (the value is not shown)"
        );
    }

    #[test]
    fn lines_are_trimmed_and_a_later_one_replaces_an_earlier_one() {
        let map = parse_lines(&[
            "  X-Upstream :  http://a:1 ".to_string(),
            "X-Tenant: a".to_string(),
            "x-tenant: b".to_string(),
        ])
        .unwrap();
        assert_eq!(map["x-upstream"], "http://a:1");
        assert_eq!(map.get_all("x-tenant").iter().collect::<Vec<_>>(), ["b"]);
        assert_eq!(
            from_env("AUTH", &with(Some("  Authorization :  Bearer s3cret \n"))),
            Ok("Authorization: Bearer s3cret".to_string())
        );
    }

    #[test]
    fn a_bad_variable_name_or_an_unset_variable_is_named() {
        assert_eq!(
            from_env("API_AUTH", &with(None)),
            Err(HeaderEnvError::Unset("API_AUTH".into()))
        );
        assert!(
            HeaderEnvError::Unset("API_AUTH".into())
                .to_string()
                .contains("API_AUTH=\"Authorization: Bearer <token>\"")
        );
        for bad in ["", "A=B", "1X", "MY-VAR"] {
            assert_eq!(
                from_env(bad, &with(Some("A: b"))),
                Err(HeaderEnvError::BadName(bad.into()))
            );
        }
        assert_eq!(
            from_env("Authorization: Bearer s3cret", &with(Some("A: b"))),
            Err(HeaderEnvError::HeaderGiven)
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_value_that_is_not_utf8_is_refused() {
        use std::os::unix::ffi::OsStringExt;
        let lookup = |_: &str| Some(OsString::from_vec(vec![b'A', b':', b' ', 0xff]));
        assert_eq!(
            from_env("H", &lookup),
            Err(HeaderEnvError::NotUnicode("H".into()))
        );
    }
}
