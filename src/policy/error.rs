use std::fmt;
use std::path::PathBuf;

/// One problem found in a policy, located at a line and column of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The full message, led by the rule path as the reference implementation words it,
    /// e.g. `tools.t.rules[0]: evaluate rules must have at least one condition`.
    pub message: String,
    /// Where in the policy the error is, e.g. `tools.t.rules[0].conditions[1].op`.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading config file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The policy was read but is not valid; every error is listed.
    #[error("{}", render_invalid(.origin, .errors))]
    Invalid {
        origin: String,
        errors: Vec<PolicyError>,
    },
}

impl LoadError {
    /// The validation errors, if the policy was read but is invalid.
    pub fn errors(&self) -> &[PolicyError] {
        match self {
            LoadError::Invalid { errors, .. } => errors,
            LoadError::Read { .. } => &[],
        }
    }
}

fn render_invalid(origin: &str, errors: &[PolicyError]) -> String {
    let mut out = format!("policy validation failed with {} error(s):", errors.len());
    for e in errors {
        out.push_str(&format!("\n  {origin}:{e}"));
    }
    out
}
