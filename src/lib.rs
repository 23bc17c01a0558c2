//! Intercept: a policy enforcement layer for the Model Context Protocol.
//!
//! A tour of the crate:
//! - [`policy`]: the YAML policy language, loaded with line and column for every error and
//!   compiled into an immutable [`policy::CompiledPolicy`];
//! - [`engine`]: evaluates one tool call against a compiled policy: hide, default deny,
//!   grants, rules, then an atomic reservation of every counter involved;
//! - [`gateway`]: several servers behind one listener; its file (`gateway.yaml`), loaded and
//!   validated like a policy;
//! - [`redact`]: the one set of rules that keeps secrets out of logs, audit events and
//!   error texts;
//! - [`reload`]: watches the policy file and swaps in each valid new version;
//! - [`state`]: where counters live (memory, SQLite) and how windows work;
//! - [`scan`]: an MCP client that lists a server's tools, the risk classifier, and the
//!   policy scaffold writer behind `intercept scan`;
//! - [`telemetry`]: Prometheus metrics and OpenTelemetry (OTLP) spans and metrics;
//! - [`cli`]: the `intercept` command line, shared by the binary and the npm launcher;
//! - `node` (feature `node`): the napi-rs bindings behind `require('@policylayer/intercept')`.

pub mod audit;
pub mod cli;
pub mod clock;
pub mod engine;
pub mod gateway;
mod host;
mod json_text;
pub mod policy;
mod private_fs;
pub mod proxy;
pub mod redact;
pub mod reload;
pub mod scan;
mod shell_words;
pub mod shutdown;
pub mod state;
pub mod telemetry;
pub mod transport;
pub mod upstream;

#[cfg(feature = "node")]
mod node;

/// The crate version, as `intercept --version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
