//! Gateway mode: MCP clients over HTTP, each session with its own view of the policy.

pub mod child_session;
pub mod standard_headers;
pub mod streams;
