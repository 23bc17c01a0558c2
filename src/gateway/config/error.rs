use std::fmt;
use std::path::PathBuf;

use crate::policy::PolicyError;

/// One problem found in a gateway file, or in a policy file it names, at a line and column
/// of that file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the error is in: the gateway file, or one of its policy files.
    pub file: PathBuf,
    /// Where in that file, e.g. `servers.github.url` or `tools.t.rules[0].op`.
    pub path: String,
    /// The full message, led by `path` when there is one.
    pub message: String,
    /// 1-based line; 0 when the error is not at a place in the file (it cannot be read).
    pub line: usize,
    /// 1-based column; 0 with line 0.
    pub column: usize,
}

impl ConfigError {
    pub(super) fn from_policy(file: PathBuf, e: PolicyError) -> Self {
        ConfigError {
            file,
            path: e.path,
            message: e.message,
            line: e.line,
            column: e.column,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// Why a gateway file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("reading gateway file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The file was read but it, or a policy it names, is not valid: every error is listed.
    #[error("{}", render_invalid(.errors))]
    Invalid { errors: Vec<ConfigError> },
}

impl GatewayError {
    /// Every error, each with its file, line and column (a read error has line 0).
    pub fn errors(&self) -> Vec<ConfigError> {
        match self {
            GatewayError::Invalid { errors } => errors.clone(),
            GatewayError::Read { path, cause } => vec![ConfigError {
                file: path.clone(),
                path: String::new(),
                message: format!("reading gateway file: {cause}"),
                line: 0,
                column: 0,
            }],
        }
    }
}

fn render_invalid(errors: &[ConfigError]) -> String {
    let mut out = format!(
        "gateway file validation failed with {} error(s):",
        errors.len()
    );
    for e in errors {
        out.push_str(&format!("\n  {e}"));
    }
    out
}
