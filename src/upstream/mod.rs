//! Clients of upstream MCP servers, one request at a time: what the listener talks to on
//! behalf of each client session.

pub mod errors;
pub mod http;
