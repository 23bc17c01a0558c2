//! Clients of upstream MCP servers, one exchange at a time: what a gateway session talks to
//! on behalf of its client, whether the server is reached by URL or started as a command.

pub mod child;
pub mod errors;
pub mod http;
