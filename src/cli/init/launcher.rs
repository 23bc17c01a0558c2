//! How a rewritten entry starts intercept, when `--launcher` does not say.
//!
//! The client starts one intercept per server, each time it starts, so the choice is the
//! fastest start that will still be there tomorrow:
//!
//! 1. When this intercept runs from npx's cache (a path under `_npx`, which npm may clear
//!    at any time): `npx -y @policylayer/intercept@<this version>`. The exact version,
//!    never the latest: a security tool must not change under its users at each start.
//! 2. The native executable: the binary this process runs as, or, under the npm launcher,
//!    the `intercept` executable the platform package installs next to the addon.
//! 3. Under the npm launcher with no executable next to the addon (a git checkout):
//!    `node <absolute path of bin/intercept.js>`.
//! 4. Otherwise the exact-version npx form.

use std::path::{Path, PathBuf};

/// Set by the npm launcher (`bin/intercept.js`) before it runs `intercept init`: the
/// launcher script's absolute path.
pub const LAUNCHER_ENV: &str = "INTERCEPT_NPM_LAUNCHER";
/// Set by the npm launcher: the absolute path of the native addon it loaded.
pub const ADDON_ENV: &str = "INTERCEPT_NPM_ADDON";

/// The npm package, as npx names it.
pub const PACKAGE: &str = "@policylayer/intercept";

/// How this process was started, as far as the choice goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Running {
    /// The native binary, at this path.
    Native(PathBuf),
    /// Inside Node, through the npm launcher.
    Node {
        /// The Node executable.
        node: Option<PathBuf>,
        launcher: Option<PathBuf>,
        addon: Option<PathBuf>,
    },
}

impl Running {
    /// This process. The addon (feature `node`) always runs inside a Node process, whose
    /// own executable says nothing about where intercept is: the launcher tells.
    pub fn detect() -> Running {
        let exe = std::env::current_exe().ok();
        if cfg!(feature = "node") {
            let path = |name: &str| {
                std::env::var_os(name)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            };
            Running::Node {
                node: exe,
                launcher: path(LAUNCHER_ENV),
                addon: path(ADDON_ENV),
            }
        } else {
            let exe = exe.unwrap_or_else(|| PathBuf::from("intercept"));
            Running::Native(exe.canonicalize().unwrap_or(exe))
        }
    }
}

/// The command that starts intercept, and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    pub command: Vec<String>,
    pub why: &'static str,
}

/// The command a rewritten entry runs (see the module's order). `executable` tells whether
/// a path is an executable file (a seam for tests).
pub fn choose(running: &Running, version: &str, executable: &dyn Fn(&Path) -> bool) -> Launcher {
    let npx = |why| Launcher {
        command: vec![
            "npx".to_string(),
            "-y".to_string(),
            format!("{PACKAGE}@{version}"),
        ],
        why,
    };
    match running {
        Running::Native(exe) if in_npx_cache(exe) => npx("npx's cache may be cleared"),
        Running::Native(exe) => Launcher {
            command: vec![text(exe)],
            why: "this executable",
        },
        Running::Node {
            node,
            launcher,
            addon,
        } => {
            if [launcher, addon]
                .into_iter()
                .flatten()
                .any(|p| in_npx_cache(p))
            {
                return npx("npx's cache may be cleared");
            }
            let native = addon
                .as_deref()
                .and_then(Path::parent)
                .map(|dir| dir.join(format!("intercept{}", std::env::consts::EXE_SUFFIX)))
                .filter(|exe| executable(exe));
            if let Some(exe) = native {
                let exe = exe.canonicalize().unwrap_or(exe);
                return Launcher {
                    command: vec![text(&exe)],
                    why: "the native executable of the installed package",
                };
            }
            match (node, launcher) {
                (Some(node), Some(script)) => Launcher {
                    command: vec![text(node), text(script)],
                    why: "no native executable next to the addon",
                },
                _ => npx("the installed package was not found"),
            }
        }
    }
}

/// npx installs packages it runs under `<npm cache>/_npx/<hash>/`, which npm may clear.
fn in_npx_cache(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "_npx")
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Whether `path` is a file this user may run.
pub fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(l: &Launcher) -> Vec<&str> {
        l.command.iter().map(String::as_str).collect()
    }

    #[test]
    fn the_native_binary_names_itself_unless_npx_may_clear_it() {
        let yes = |_: &Path| true;
        let l = choose(
            &Running::Native(PathBuf::from("/usr/local/bin/intercept")),
            "1.2.3",
            &yes,
        );
        assert_eq!(words(&l), ["/usr/local/bin/intercept"]);
        let l = choose(
            &Running::Native(PathBuf::from(
                "/home/u/.npm/_npx/0a1b/node_modules/@policylayer/intercept-linux-x64-gnu/intercept",
            )),
            "1.2.3",
            &yes,
        );
        assert_eq!(words(&l), ["npx", "-y", "@policylayer/intercept@1.2.3"]);
    }

    #[test]
    fn under_node_the_executable_next_to_the_addon_then_the_launcher_then_npx() {
        let dir = tempfile::tempdir().unwrap();
        let package = dir
            .path()
            .join("node_modules/@policylayer/intercept-linux-x64-gnu");
        std::fs::create_dir_all(&package).unwrap();
        let addon = package.join("intercept.linux-x64-gnu.node");
        std::fs::write(&addon, "").unwrap();
        let exe = package.join(format!("intercept{}", std::env::consts::EXE_SUFFIX));
        let running = Running::Node {
            node: Some(PathBuf::from("/usr/bin/node")),
            launcher: Some(PathBuf::from(
                "/app/node_modules/@policylayer/intercept/bin/intercept.js",
            )),
            addon: Some(addon.clone()),
        };

        // No executable next to the addon (a git checkout): node and the launcher.
        let l = choose(&running, "1.2.3", &is_executable);
        assert_eq!(
            words(&l),
            [
                "/usr/bin/node",
                "/app/node_modules/@policylayer/intercept/bin/intercept.js"
            ]
        );

        // Installed from the platform package: its executable, by absolute path.
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Present but not executable: not usable.
            assert_eq!(choose(&running, "1.2.3", &is_executable).command.len(), 2);
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let l = choose(&running, "1.2.3", &is_executable);
        assert_eq!(words(&l), [exe.canonicalize().unwrap().to_str().unwrap()]);

        // Run by npx: its cache may vanish, so the exact version through npx.
        let npx = Running::Node {
            node: Some(PathBuf::from("/usr/bin/node")),
            launcher: Some(PathBuf::from(
                "/home/u/.npm/_npx/9f/node_modules/@policylayer/intercept/bin/intercept.js",
            )),
            addon: Some(addon),
        };
        let l = choose(&npx, "1.2.3", &is_executable);
        assert_eq!(words(&l), ["npx", "-y", "@policylayer/intercept@1.2.3"]);

        // Nothing known (the addon loaded by another program): npx, never version-less.
        let unknown = Running::Node {
            node: Some(PathBuf::from("/usr/bin/node")),
            launcher: None,
            addon: None,
        };
        let l = choose(&unknown, "1.2.3", &is_executable);
        assert_eq!(words(&l), ["npx", "-y", "@policylayer/intercept@1.2.3"]);
    }
}
