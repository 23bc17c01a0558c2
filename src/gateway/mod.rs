//! Gateway mode: several MCP servers behind one listener, each reached at
//! `/servers/<name>/…` and guarded by its own policy.
//!
//! - [`config`]: the gateway file (`gateway.yaml`): its format, strict validation with a
//!   position for every error, its JSON Schema, and what changed between two versions.

pub mod config;
