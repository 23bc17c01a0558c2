//! Gateway mode: MCP clients over HTTP, each session with its own view of the policy, in
//! front of one server or several (each reached at `/servers/<name>/…` and guarded by its
//! own policy).
//!
//! - [`config`]: the gateway file (`gateway.yaml`): its format, strict validation with a
//!   position for every error, its JSON Schema, and what changed between two versions;
//! - [`child_session`] and [`streams`]: a stdio server per client session, and which HTTP
//!   stream each of its messages goes out on;
//! - [`stateless_pool`] and [`relabel`]: stateless clients sharing a few stdio servers;
//! - [`standard_headers`]: the stateless revision's `Mcp-Method`/`Mcp-Name` checks;
//! - [`directory`]: sessions any instance can take up, kept in the state store.

pub mod child_session;
mod collect;
pub mod config;
pub mod directory;
pub mod relabel;
pub mod standard_headers;
pub mod stateless_pool;
pub mod streams;
#[cfg(test)]
mod test_server;

/// A POST body as one line for the policy core and the server: outside strings, JSON
/// whitespace may be any of space, tab, CR and LF, and inside strings CR and LF cannot
/// appear raw, so turning them into spaces changes nothing but the framing.
pub fn one_line(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if memchr::memchr2(b'\n', b'\r', body).is_none() {
        return std::borrow::Cow::Borrowed(body);
    }
    std::borrow::Cow::Owned(
        body.iter()
            .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
            .collect(),
    )
}
