//! Gateway mode: MCP clients over HTTP, each session with its own view of the policy.

pub mod child_session;
pub mod directory;
pub mod relabel;
pub mod standard_headers;
pub mod stateless_pool;
pub mod streams;
#[cfg(test)]
mod test_server;
