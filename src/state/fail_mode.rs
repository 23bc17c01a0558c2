//! What to do with a call that needs the counter store while the store cannot be used.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// Deny the call with a message saying the state store is unavailable (the default:
    /// a limit that cannot be checked is not assumed to be met).
    #[default]
    Closed,
    /// Allow the call without counting it, and record that it went unenforced.
    Open,
}

impl FailMode {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "closed" => Some(FailMode::Closed),
            "open" => Some(FailMode::Open),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailMode::Closed => "closed",
            FailMode::Open => "open",
        }
    }
}

impl fmt::Display for FailMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
