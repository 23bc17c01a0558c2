//! Where MCP clients keep their server lists, and where in them the servers are.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// One client configuration file that exists on this machine.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// Claude Code, Claude Desktop, Cursor, VS Code or Windsurf.
    pub client: &'static str,
    pub path: PathBuf,
    /// The key of the server map: `mcpServers`, or `servers` for VS Code.
    pub key: &'static str,
    /// A file of the project directory rather than of the user: it came with the project
    /// (a cloned repository, say), so its servers are not started without consent.
    pub project: bool,
}

/// Every known configuration file that exists, for this home and project directory.
pub fn locate(home: &Path, project: &Path) -> Vec<ConfigFile> {
    let mut candidates = vec![
        ("Claude Code", project.join(".mcp.json"), "mcpServers", true),
        (
            "Claude Code",
            home.join(".claude.json"),
            "mcpServers",
            false,
        ),
        (
            "Cursor",
            home.join(".cursor").join("mcp.json"),
            "mcpServers",
            false,
        ),
        (
            "Cursor",
            project.join(".cursor").join("mcp.json"),
            "mcpServers",
            true,
        ),
        (
            "VS Code",
            project.join(".vscode").join("mcp.json"),
            "servers",
            true,
        ),
        (
            "Windsurf",
            home.join(".codeium")
                .join("windsurf")
                .join("mcp_config.json"),
            "mcpServers",
            false,
        ),
    ];
    for path in claude_desktop_paths(home) {
        candidates.push(("Claude Desktop", path, "mcpServers", false));
    }
    let mut seen = Vec::new();
    candidates
        .into_iter()
        .filter(|(_, path, _, _)| path.is_file())
        .filter(|(_, path, _, _)| {
            // The project may be the home directory: list each file once.
            let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
            if seen.contains(&canonical) {
                return false;
            }
            seen.push(canonical);
            true
        })
        .map(|(client, path, key, project)| ConfigFile {
            client,
            path,
            key,
            project,
        })
        .collect()
}

fn claude_desktop_paths(home: &Path) -> Vec<PathBuf> {
    let name = "claude_desktop_config.json";
    let mut paths = vec![
        home.join("Library/Application Support/Claude").join(name),
        home.join(".config/Claude").join(name),
    ];
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME") {
        paths.push(PathBuf::from(xdg).join("Claude").join(name));
    }
    if let Some(appdata) = std::env::var_os("APPDATA") {
        paths.push(PathBuf::from(appdata).join("Claude").join(name));
    }
    paths
}

/// Where a server entry sits in its file: the path of keys to its server map, and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub container: Vec<String>,
    pub name: String,
}

impl Location {
    /// How a person would name it: `github`, or `projects./home/me/app.github`.
    pub fn label(&self) -> String {
        if self.container.len() <= 1 {
            self.name.clone()
        } else {
            format!(
                "{} › {}",
                self.container[..self.container.len() - 1].join(" › "),
                self.name
            )
        }
    }
}

/// Every server entry of a parsed config: the top-level map under `key`, and for
/// `~/.claude.json` also each project's own map (`projects.<dir>.mcpServers`).
pub fn servers(doc: &Value, key: &str) -> Vec<(Location, Value)> {
    let mut out = Vec::new();
    let mut collect = |container: Vec<String>, map: &Value| {
        if let Some(map) = map.as_object() {
            for (name, spec) in map {
                out.push((
                    Location {
                        container: container.clone(),
                        name: name.clone(),
                    },
                    spec.clone(),
                ));
            }
        }
    };
    if let Some(map) = doc.get(key) {
        collect(vec![key.to_string()], map);
    }
    if let Some(projects) = doc.get("projects").and_then(Value::as_object) {
        for (dir, project) in projects {
            if let Some(map) = project.get(key) {
                collect(vec!["projects".into(), dir.clone(), key.to_string()], map);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_top_level_and_project_servers() {
        let doc = json!({
            "mcpServers": {"a": {"command": "x"}},
            "projects": {"/p": {"mcpServers": {"b": {"url": "http://h"}}}, "/q": {}}
        });
        let found = servers(&doc, "mcpServers");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0.label(), "a");
        assert_eq!(found[1].0.label(), "projects › /p › b");
        assert_eq!(found[1].0.container, ["projects", "/p", "mcpServers"]);
    }
}
