//! `--header-env NAME`: a header for the remote server, read from the environment.
//!
//! Arguments are readable by every user of the machine (`ps`); a client puts an entry's
//! `env` into the server's environment, which only its owner can read. The variable holds
//! one header line, `Name: value` (e.g. `Authorization: Bearer …`). Its value is a secret:
//! no message ever shows it.

use std::ffi::OsString;

use reqwest::header::{HeaderName, HeaderValue};

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
    Malformed { name: String, why: &'static str },
}

/// The header line the variable `name` holds, checked, as `Name: value`. `lookup` reads the
/// environment (a seam for tests).
pub fn read(
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
    let malformed = |why| HeaderEnvError::Malformed {
        name: name.to_string(),
        why,
    };
    if line.trim().is_empty() {
        return Err(malformed("it is empty"));
    }
    let (header, value) = line
        .split_once(':')
        .ok_or_else(|| malformed("there is no colon"))?;
    let (header, value) = (header.trim(), value.trim());
    if header.is_empty() {
        return Err(malformed("the header name before the colon is empty"));
    }
    HeaderName::from_bytes(header.as_bytes())
        .map_err(|_| malformed("the header name has a character not allowed in one"))?;
    if value.is_empty() {
        return Err(malformed("the value after the colon is empty"));
    }
    HeaderValue::from_str(value).map_err(|_| {
        malformed("the value has a line break or another character not allowed in a header")
    })?;
    Ok(format!("{header}: {value}"))
}

/// Every `--header-env` variable, read from this process's environment.
pub fn read_all(names: &[String]) -> Result<Vec<String>, HeaderEnvError> {
    names
        .iter()
        .map(|name| read(name, &|n| std::env::var_os(n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: Option<&str>) -> impl Fn(&str) -> Option<OsString> {
        let value = value.map(OsString::from);
        move |_| value.clone()
    }

    #[test]
    fn a_header_line_is_read_and_trimmed() {
        assert_eq!(
            read("AUTH", &with(Some("  Authorization :  Bearer s3cret \n"))),
            Ok("Authorization: Bearer s3cret".to_string())
        );
        // A colon in the value is part of the value.
        assert_eq!(
            read("H", &with(Some("X-Upstream: http://a:1"))),
            Ok("X-Upstream: http://a:1".to_string())
        );
    }

    #[test]
    fn errors_name_the_variable_and_never_show_the_value() {
        let cases = [
            ("Bearer s3cret", "there is no colon"),
            ("  ", "it is empty"),
            (
                ": Bearer s3cret",
                "the header name before the colon is empty",
            ),
            (
                "Author ization: Bearer s3cret",
                "the header name has a character not allowed",
            ),
            ("Authorization:   ", "the value after the colon is empty"),
            ("Authorization: Bearer s3cret\nX-Evil: 1", "line break"),
        ];
        for (value, why) in cases {
            let err = read("API_AUTH", &with(Some(value)))
                .unwrap_err()
                .to_string();
            assert!(err.contains("--header-env API_AUTH"), "{err}");
            assert!(err.contains(why), "{value:?}: {err}");
            assert!(!err.contains("s3cret"), "the value leaked: {err}");
        }
        assert_eq!(
            read("API_AUTH", &with(None)),
            Err(HeaderEnvError::Unset("API_AUTH".into()))
        );
        assert!(
            HeaderEnvError::Unset("API_AUTH".into())
                .to_string()
                .contains("API_AUTH=\"Authorization: Bearer <token>\"")
        );
        for bad in ["", "A=B", "1X", "MY-VAR"] {
            assert_eq!(
                read(bad, &with(Some("A: b"))),
                Err(HeaderEnvError::BadName(bad.into()))
            );
        }
        assert_eq!(
            read("Authorization: Bearer s3cret", &with(Some("A: b"))),
            Err(HeaderEnvError::HeaderGiven)
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_value_that_is_not_utf8_is_refused() {
        use std::os::unix::ffi::OsStringExt;
        let lookup = |_: &str| Some(OsString::from_vec(vec![b'A', b':', b' ', 0xff]));
        assert_eq!(
            read("H", &lookup),
            Err(HeaderEnvError::NotUnicode("H".into()))
        );
    }
}
