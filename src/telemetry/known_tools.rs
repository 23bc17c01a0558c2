//! Which tool names may become a metric label or a span attribute.
//!
//! A client chooses the tool name of every `tools/call` it sends; if each name minted a new
//! series, one client could grow the metrics without bound. A name is used as it is only
//! when the policy names it (an exact key of `tools`) or the server listed it in its last
//! `tools/list`; every other name is reported as [`OTHER`].

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use crate::policy::CompiledPolicy;

/// The label of a tool that neither the policy nor the server knows.
pub const OTHER: &str = "_other";

/// The known tool names of each server, by server name.
#[derive(Debug, Default)]
pub struct KnownTools {
    servers: RwLock<HashMap<Box<str>, ServerTools>>,
}

#[derive(Debug, Default)]
struct ServerTools {
    /// Exact keys of the policy's `tools` (globs and `"*"` excluded: they match names a
    /// client makes up).
    policy: HashSet<Box<str>>,
    /// The names in the server's last `tools/list` answer.
    listed: HashSet<Box<str>>,
}

impl KnownTools {
    /// Replaces the names the policy gives for `server` (at start and on each reload).
    pub fn set_policy(&self, server: &str, policy: &CompiledPolicy) {
        self.set_policy_names(server, policy.plans.keys().map(String::as_str));
    }

    /// The same, from a list of names.
    pub fn set_policy_names<'a>(&self, server: &str, names: impl IntoIterator<Item = &'a str>) {
        let names = names.into_iter().map(Box::from).collect();
        self.with_server(server, |tools| tools.policy = names);
    }

    /// Replaces the names the server listed (each `tools/list` answer; a paginated list
    /// should be given whole).
    pub fn set_listed<'a>(&self, server: &str, names: impl IntoIterator<Item = &'a str>) {
        let names = names.into_iter().map(Box::from).collect();
        self.with_server(server, |tools| tools.listed = names);
    }

    /// `tool` if it is known for `server`, else [`OTHER`].
    pub fn label<'a>(&self, server: &str, tool: &'a str) -> &'a str {
        let servers = self.servers.read().unwrap_or_else(|e| e.into_inner());
        match servers.get(server) {
            Some(t) if t.policy.contains(tool) || t.listed.contains(tool) => tool,
            _ => OTHER,
        }
    }

    fn with_server(&self, server: &str, f: impl FnOnce(&mut ServerTools)) {
        let mut servers = self.servers.write().unwrap_or_else(|e| e.into_inner());
        f(servers.entry(server.into()).or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_the_policy_or_the_server_gave_are_labels() {
        let known = KnownTools::default();
        known.set_policy_names("github", ["create_issue"]);
        known.set_listed("github", ["list_issues", "create_issue"]);
        assert_eq!(known.label("github", "create_issue"), "create_issue");
        assert_eq!(known.label("github", "list_issues"), "list_issues");
        assert_eq!(known.label("github", "made_up_by_client"), OTHER);
        // Known for one server is not known for another.
        assert_eq!(known.label("stripe", "create_issue"), OTHER);
        // A new list replaces the old one.
        known.set_listed("github", ["search"]);
        assert_eq!(known.label("github", "list_issues"), OTHER);
        assert_eq!(known.label("github", "create_issue"), "create_issue");
    }
}
