//! What changed between two versions of a gateway file, for hot reload.

use super::GatewayConfig;

/// The servers a reload affects, by name (each list sorted). A server is in one list at most:
/// one whose source changed is `restarted` whatever happened to its policy, since its new
/// sessions start with the new policy anyway.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// New names: start routing to them.
    pub added: Vec<String>,
    /// Names gone: close their sessions; their paths answer 404 from now on.
    pub removed: Vec<String>,
    /// The command, arguments, environment, URL or headers changed: the server's sessions
    /// are closed and new ones reach the new source.
    pub restarted: Vec<String>,
    /// Only the policy changed (another file, an edited file, an edited inline policy): put
    /// it in force for the open sessions, which stay open.
    pub policy_changed: Vec<String>,
    /// `listen:` changed: the listener cannot move while it runs, so this takes a restart
    /// of intercept.
    pub listen_changed: bool,
}

impl Changes {
    /// Whether the new version changes nothing in force.
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

pub(super) fn diff(old: &GatewayConfig, new: &GatewayConfig) -> Changes {
    let mut changes = Changes {
        listen_changed: old.listen != new.listen,
        ..Changes::default()
    };
    for (name, server) in &new.servers {
        match old.servers.get(name) {
            None => changes.added.push(name.clone()),
            Some(before) if before.source != server.source => changes.restarted.push(name.clone()),
            Some(before) if !before.policy.same_as(&server.policy) => {
                changes.policy_changed.push(name.clone())
            }
            Some(_) => {}
        }
    }
    changes.removed = old
        .servers
        .keys()
        .filter(|name| !new.servers.contains_key(*name))
        .cloned()
        .collect();
    changes
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::Path;

    use super::*;

    const BASE: &str = "servers:
  files:
    command: npx
    args: [-y, server-filesystem, /srv]
    env: { LOG: info }
    policy: { tools: { read_file: {} } }
  memory:
    command: npx
    args: [-y, server-memory]
    policy: { default: deny }
  remote:
    url: https://mcp.example.com/mcp
    headers_from_env: { Authorization: REMOTE_AUTH }
    policy: { tools: {} }
";

    fn load(text: &str, token: &str) -> GatewayConfig {
        let token = OsString::from(token);
        let env = move |name: &str| (name == "REMOTE_AUTH").then(|| token.clone());
        GatewayConfig::parse(text, Path::new("gateway.yaml"), &env)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn changes(before: &str, after: &str) -> Changes {
        load(before, "Bearer a").diff(&load(after, "Bearer a"))
    }

    #[test]
    fn the_same_file_changes_nothing_even_when_its_layout_does() {
        assert!(changes(BASE, BASE).is_empty());
        // Comments, blank lines, flow or block style: the same content.
        let relaid = BASE.replace(
            "    policy: { tools: { read_file: {} } }\n",
            "\n    # what the agent may do\n    policy:\n      tools:\n        read_file: {}\n",
        );
        assert_ne!(relaid, BASE);
        assert!(
            changes(BASE, &relaid).is_empty(),
            "{:?}",
            changes(BASE, &relaid)
        );
    }

    #[test]
    fn added_and_removed_servers_are_named() {
        let after = BASE.replace("  memory:", "  notes:");
        let c = changes(BASE, &after);
        assert_eq!(c.added, ["notes"]);
        assert_eq!(c.removed, ["memory"]);
        assert!(
            c.restarted.is_empty() && c.policy_changed.is_empty(),
            "{c:?}"
        );
    }

    #[test]
    fn a_changed_source_restarts_the_server() {
        for after in [
            BASE.replace("/srv]", "/data]"),
            BASE.replace("LOG: info", "LOG: debug"),
            BASE.replace(
                "command: npx\n    args: [-y, server-memory]",
                "command: uvx\n    args: [-y, server-memory]",
            ),
            BASE.replace("mcp.example.com", "mcp2.example.com"),
        ] {
            let c = changes(BASE, &after);
            assert_eq!(c.restarted.len(), 1, "{after}\n{c:?}");
            assert!(c.added.is_empty() && c.removed.is_empty() && c.policy_changed.is_empty());
        }
        // A header read from the environment counts by its value.
        let c = load(BASE, "Bearer a").diff(&load(BASE, "Bearer b"));
        assert_eq!(c.restarted, ["remote"]);
    }

    #[test]
    fn a_changed_policy_alone_is_only_a_policy_change() {
        let after = BASE.replace("policy: { default: deny }", "policy: { default: allow }");
        let c = changes(BASE, &after);
        assert_eq!(c.policy_changed, ["memory"]);
        assert!(c.restarted.is_empty() && c.added.is_empty() && c.removed.is_empty());
        // Both changed: the restart covers the policy.
        let both = after.replace("server-memory]", "server-memory, --x]");
        let c = changes(BASE, &both);
        assert_eq!(c.restarted, ["memory"]);
        assert!(c.policy_changed.is_empty(), "{c:?}");
    }

    #[test]
    fn a_value_that_changes_type_is_a_change() {
        let before = BASE.replace(
            "policy: { default: deny }",
            "policy: { tools: { t: { rules: [{ conditions: [{ path: args.n, op: eq, value: 1 }] }] } } }",
        );
        let after = before.replace("value: 1 }", "value: \"1\" }");
        assert_eq!(changes(&before, &after).policy_changed, ["memory"]);
    }

    #[test]
    fn a_policy_file_edited_on_disk_is_a_policy_change() {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("memory.yaml");
        std::fs::write(&policy, "default: deny\n").unwrap();
        let gateway = dir.path().join("gateway.yaml");
        std::fs::write(
            &gateway,
            BASE.replace("policy: { default: deny }", "policy: memory.yaml"),
        )
        .unwrap();
        let env = |name: &str| (name == "REMOTE_AUTH").then(|| OsString::from("Bearer a"));
        let before = GatewayConfig::load_with_env(&gateway, &env).unwrap();
        assert!(before.policy_files().into_iter().eq([policy.clone()]));
        std::fs::write(&policy, "default: allow\n").unwrap();
        let after = GatewayConfig::load_with_env(&gateway, &env).unwrap();
        let c = before.diff(&after);
        assert_eq!(c.policy_changed, ["memory"]);
        // The server's own reload reads the same new text.
        let reloaded = before.servers["memory"].policy.reload().unwrap().unwrap();
        assert!(reloaded.same_as(&after.servers["memory"].policy));
        assert!(before.servers["files"].policy.reload().is_none());
    }

    #[test]
    fn a_new_listen_section_is_reported() {
        let after = format!("listen: {{ port: 8080 }}\n{BASE}");
        let c = changes(BASE, &after);
        assert!(c.listen_changed);
        assert!(!c.is_empty());
    }
}
