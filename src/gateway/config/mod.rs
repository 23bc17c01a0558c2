//! The gateway file: the servers one listener fronts, each with its own policy.
//!
//! ```yaml
//! servers:
//!   files:
//!     command: npx
//!     args: [-y, "@modelcontextprotocol/server-filesystem", /srv/shared]
//!     policy: policies/filesystem.yaml
//!   tracker:
//!     url: https://mcp.example.com/mcp
//!     headers_from_env: { Authorization: TRACKER_AUTH }
//!     policy: { default: deny, tools: { search: {} } }
//! ```
//!
//! It is read the way a policy is (`policy::yaml`'s spanned tree, then a strict decoder), to
//! the same standard: an unknown key is an error with a did-you-mean hint, and every error in
//! the gateway file and in every policy it names is reported, each with its file, line and
//! column. A file with any error is never returned. See docs/gateway-file.md.

mod decode;
mod diff;
mod error;
pub mod schema;
mod server_policy;
mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use diff::Changes;
pub use error::{ConfigError, GatewayError};

use crate::policy::{self, CompiledPolicy, LoadError};

/// A gateway file, loaded: every server with its compiled policy.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The gateway file, as it was named.
    pub file: PathBuf,
    /// Defaults for the listener; its command-line flags take precedence.
    pub listen: Listen,
    /// The servers by name; a name is the `<name>` of `/servers/<name>/mcp`.
    pub servers: BTreeMap<String, Server>,
}

/// `listen:`, the listener's defaults. Unset fields leave the flags' own defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listen {
    pub bind: Option<IpAddr>,
    pub port: Option<u16>,
}

/// One server behind the gateway.
#[derive(Debug, Clone)]
pub struct Server {
    pub source: Source,
    pub policy: ServerPolicy,
}

/// How a server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A program started for each client session, spoken to over stdio.
    Command(CommandSource),
    /// A remote server spoken to over Streamable HTTP (or the legacy HTTP+SSE transport).
    Url(UrlSource),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSource {
    pub command: String,
    pub args: Vec<String>,
    /// Variables added to the child's environment: those of `env`, and those of `env_from`
    /// with the values read from intercept's environment when the file was loaded.
    pub env: BTreeMap<String, Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlSource {
    pub url: reqwest::Url,
    /// Request headers: those of `headers`, and those of `headers_from_env` with the values
    /// read from intercept's environment when the file was loaded. Names as written.
    pub headers: Vec<(String, Secret)>,
}

impl UrlSource {
    /// The headers as `Name: value` lines, the form the HTTP transport takes.
    pub fn header_lines(&self) -> Vec<String> {
        self.headers
            .iter()
            .map(|(name, value)| format!("{name}: {}", value.expose()))
            .collect()
    }
}

impl fmt::Display for Source {
    /// The source for people: the command line (secret-looking words hidden) or the URL
    /// (credentials and secret-looking query values hidden). Never an env or header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Command(c) => {
                let words: Vec<&str> = std::iter::once(c.command.as_str())
                    .chain(c.args.iter().map(String::as_str))
                    .collect();
                write!(f, "{}", crate::redact::redact_command(&words))
            }
            Source::Url(u) => write!(f, "{}", crate::redact::redact_text(u.url.as_str())),
        }
    }
}

/// A value that may be a credential: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A server's policy, compiled, and where it was written.
#[derive(Debug, Clone)]
pub struct ServerPolicy {
    pub origin: PolicyOrigin,
    pub policy: Arc<CompiledPolicy>,
    /// SHA-256 (hex) of the policy file's text; for an inline policy, of its content written
    /// as compact JSON (so moving it within the gateway file changes nothing).
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOrigin {
    /// `policy: FILE`, resolved against the gateway file's directory: watch it for changes.
    File(PathBuf),
    /// `policy:` a mapping written in the gateway file itself.
    Inline,
}

impl ServerPolicy {
    /// Reads a policy file again (on a change seen by its watcher). An inline policy
    /// changes only with the gateway file, so it has nothing to reload: `None`.
    pub fn reload(&self) -> Option<Result<ServerPolicy, LoadError>> {
        let PolicyOrigin::File(path) = &self.origin else {
            return None;
        };
        Some(policy::load_file_hashed(path).map(|loaded| ServerPolicy {
            origin: self.origin.clone(),
            policy: Arc::new(loaded.policy),
            sha256: loaded.sha256,
        }))
    }

    /// Whether both are the same policy text from the same place.
    pub fn same_as(&self, other: &ServerPolicy) -> bool {
        self.origin == other.origin && self.sha256 == other.sha256
    }
}

/// The environment a gateway file is loaded with: `env_from` and `headers_from_env` read
/// their values through it.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

impl GatewayConfig {
    /// Reads and validates a gateway file and every policy it names, taking `env_from` and
    /// `headers_from_env` values from this process's environment.
    pub fn load(file: &Path) -> Result<GatewayConfig, GatewayError> {
        Self::load_with_env(file, &|name| std::env::var_os(name))
    }

    /// [`GatewayConfig::load`] with the environment given.
    pub fn load_with_env(file: &Path, env: EnvLookup<'_>) -> Result<GatewayConfig, GatewayError> {
        let text = match policy::limits::read_text(file) {
            Ok(text) => text,
            Err(LoadError::Read { cause, .. }) => {
                return Err(GatewayError::Read {
                    path: file.to_path_buf(),
                    cause,
                });
            }
            Err(LoadError::Invalid { .. }) => {
                return Err(GatewayError::Invalid {
                    errors: vec![decode::too_large(file)],
                });
            }
        };
        Self::parse(&text, file, env)
    }

    /// Validates a gateway file's text. `file` names it in errors, and relative policy
    /// paths are read from its directory.
    pub fn parse(
        text: &str,
        file: &Path,
        env: EnvLookup<'_>,
    ) -> Result<GatewayConfig, GatewayError> {
        decode::parse(text, file, env)
    }

    /// What changed from `self` (the version in force) to `new`: see [`Changes`].
    pub fn diff(&self, new: &GatewayConfig) -> Changes {
        diff::diff(self, new)
    }

    /// Every policy file the servers name, once each: watch them, with the gateway file.
    pub fn policy_files(&self) -> BTreeSet<PathBuf> {
        self.servers
            .values()
            .filter_map(|s| match &s.policy.origin {
                PolicyOrigin::File(path) => Some(path.clone()),
                PolicyOrigin::Inline => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_kept_for_the_transport_and_never_shown_by_debug() {
        let text = "servers:
  remote:
    url: https://mcp.example.com/mcp
    headers_from_env: { Authorization: TOKEN }
    policy: { tools: {} }
  local:
    command: server
    env: { API_KEY: literal-s3cret }
    env_from: { DB_URL: TOKEN }
    policy: { tools: {} }
";
        let env = |name: &str| (name == "TOKEN").then(|| OsString::from("Bearer s3cret"));
        let config = GatewayConfig::parse(text, Path::new("g.yaml"), &env).unwrap();
        let Source::Url(remote) = &config.servers["remote"].source else {
            panic!("remote is a URL server")
        };
        assert_eq!(remote.header_lines(), ["Authorization: Bearer s3cret"]);
        let Source::Command(local) = &config.servers["local"].source else {
            panic!("local is a command server")
        };
        assert_eq!(local.env["API_KEY"].expose(), "literal-s3cret");
        assert_eq!(local.env["DB_URL"].expose(), "Bearer s3cret");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("DB_URL") && shown.contains("Authorization"),
            "{shown}"
        );
    }
}
