//! The MCP server side of the gateway: what a client session talks to.

pub mod child;
