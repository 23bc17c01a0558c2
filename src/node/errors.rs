//! The errors the addon throws: each a JavaScript `Error` with a stable `code`, and for an
//! invalid policy, `errors` listing every problem with its line and column.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::policy::{LoadError, PolicyError};
use crate::state::StoreError;

use super::source::Source;

/// The `code` of every error the addon throws (docs/node.md lists them; the JavaScript layer
/// adds `INTERCEPT_INVALID_ARGUMENT` for arguments and options it rejects itself).
pub mod code {
    /// An argument or option the addon cannot use (e.g. `stateFailMode: "maybe"`).
    pub const INVALID_ARGUMENT: &str = "INTERCEPT_INVALID_ARGUMENT";
    /// The policy was read but is not valid: `errors` lists every problem.
    pub const INVALID_POLICY: &str = "INTERCEPT_INVALID_POLICY";
    /// A policy file (given, or a text-or-path argument read as a path) does not exist.
    pub const POLICY_NOT_FOUND: &str = "INTERCEPT_POLICY_NOT_FOUND";
    /// A policy file exists but cannot be read (a directory, no permission, not UTF-8).
    pub const POLICY_UNREADABLE: &str = "INTERCEPT_POLICY_UNREADABLE";
    /// The `state` or `statePrefix` setting is malformed.
    pub const INVALID_STATE: &str = "INTERCEPT_INVALID_STATE";
    /// The counter store could not be opened or used.
    pub const STATE_UNAVAILABLE: &str = "INTERCEPT_STATE_UNAVAILABLE";
}

/// What went wrong, before it becomes a JavaScript error (which needs the `Env`).
#[derive(Debug)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
    /// For [`code::INVALID_POLICY`]: every problem found.
    pub errors: Vec<PolicyError>,
}

#[napi(object)]
#[derive(Debug)]
pub struct ValidationError {
    pub message: String,
    pub line: u32,
    pub column: u32,
    pub path: String,
}

impl From<PolicyError> for ValidationError {
    fn from(e: PolicyError) -> Self {
        ValidationError {
            message: e.message,
            line: u32::try_from(e.line).unwrap_or(u32::MAX),
            column: u32::try_from(e.column).unwrap_or(u32::MAX),
            path: e.path,
        }
    }
}

impl Failure {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    /// A policy that could not be loaded from `source`.
    pub fn load(e: LoadError, source: &Source<'_>) -> Self {
        match e {
            LoadError::Invalid { .. } => {
                let message = e.to_string();
                let LoadError::Invalid { errors, .. } = e else {
                    unreachable!("matched above")
                };
                Failure {
                    code: code::INVALID_POLICY,
                    message: match source.path_hint() {
                        Some(hint) => format!("{message}\n{hint}"),
                        None => message,
                    },
                    errors,
                }
            }
            LoadError::Read { path, cause } if cause.kind() == std::io::ErrorKind::NotFound => {
                Failure::new(code::POLICY_NOT_FOUND, source.not_found(&path))
            }
            LoadError::Read { path, cause } => Failure::new(
                code::POLICY_UNREADABLE,
                format!(
                    "Cannot read policy file \"{}\" ({}): {cause}",
                    path.display(),
                    source.argument()
                ),
            ),
        }
    }

    /// A counter store that could not be opened or used.
    pub fn store(e: StoreError) -> Self {
        let code = match e {
            StoreError::InvalidSpec(_)
            | StoreError::InvalidDsn(_)
            | StoreError::InvalidPrefix(_) => code::INVALID_STATE,
            _ => code::STATE_UNAVAILABLE,
        };
        Failure::new(code, e.to_string())
    }

    /// The JavaScript error: an `Error` with `message`, `code` and, for an invalid policy,
    /// `errors`.
    pub fn into_js(self, env: &Env) -> Error {
        let build = || -> Result<Error> {
            let mut error = env.create_error(Error::new(Status::GenericFailure, &self.message))?;
            error.set_named_property("code", self.code)?;
            if self.code == code::INVALID_POLICY {
                let errors: Vec<ValidationError> =
                    self.errors.into_iter().map(ValidationError::from).collect();
                error.set_named_property("errors", errors)?;
            }
            Ok(Error::from(error.into_unknown(env)?))
        };
        build().unwrap_or_else(|e| e)
    }
}
