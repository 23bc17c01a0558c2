//! How a rewritten entry starts intercept, when `--launcher` does not say.
//!
//! The client starts one intercept per server, each time it starts, so the choice is the
//! fastest start that will still be there tomorrow, and that no other user can swap:
//!
//! 1. When this intercept runs from a package runner's cache, which the runner may clear at
//!    any time (npx's `_npx`, `pnpm dlx`, `bunx`, `yarn dlx`): that runner with
//!    `@policylayer/intercept@<this version>`. The exact version, never the latest: a
//!    security tool must not change under its users at each start.
//! 2. The native executable: the binary this process runs as, or, under the npm launcher,
//!    the `intercept` executable the platform package installs next to the addon, if it is
//!    that package's (its `package.json` says so), owned by this user or root and writable
//!    by no one else.
//! 3. Under the npm launcher with no such executable (a git checkout): `node <absolute path
//!    of bin/intercept.js>`, the script held to the same ownership rule.
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
    /// This process. Inside Node (`under_node`: the addon's `run()` said so) the process's
    /// own executable is Node, which says nothing about where intercept is: the launcher
    /// tells.
    pub fn detect(under_node: bool) -> Running {
        let exe = std::env::current_exe().ok();
        if under_node {
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

/// What may be written into client configs, told apart by a seam for tests.
pub trait Checks {
    /// Whether `exe`, next to the addon, is the platform package's native executable and
    /// no other user can replace it.
    fn native_executable(&self, exe: &Path) -> bool;
    /// Whether no other user can replace the launcher script `script`.
    fn launcher_script(&self, script: &Path) -> bool;
}

/// The checks of this machine's files.
#[derive(Debug, Clone, Copy)]
pub struct OnDisk;

impl Checks for OnDisk {
    fn native_executable(&self, exe: &Path) -> bool {
        // `which` takes a path as it is, if it names a file this user may run.
        let runnable = crate::transport::program::locate(&exe.to_string_lossy()).is_ok();
        runnable
            && safe_from_others(exe)
            && exe
                .parent()
                .is_some_and(|dir| names_platform_package(&dir.join("package.json")))
    }

    fn launcher_script(&self, script: &Path) -> bool {
        script.is_file() && safe_from_others(script)
    }
}

/// The command a rewritten entry runs (see the module's order).
pub fn choose(running: &Running, version: &str, checks: &dyn Checks) -> Launcher {
    match running {
        Running::Native(exe) => match Runner::caching(exe) {
            Some(runner) => runner.launcher(version),
            // The executable init runs as: the user ran it, it is theirs to trust.
            None => Launcher {
                command: vec![text(exe)],
                why: "this executable",
            },
        },
        Running::Node {
            node,
            launcher,
            addon,
        } => {
            if let Some(runner) = [launcher, addon]
                .into_iter()
                .flatten()
                .find_map(|p| Runner::caching(p))
            {
                return runner.launcher(version);
            }
            let native = addon
                .as_deref()
                .and_then(Path::parent)
                .map(|dir| dir.join(format!("intercept{}", std::env::consts::EXE_SUFFIX)))
                .filter(|exe| checks.native_executable(exe));
            if let Some(exe) = native {
                let exe = exe.canonicalize().unwrap_or(exe);
                return Launcher {
                    command: vec![text(&exe)],
                    why: "the native executable of the installed package",
                };
            }
            match (node, launcher) {
                (Some(node), Some(script)) if checks.launcher_script(script) => Launcher {
                    command: vec![text(node), text(script)],
                    why: "no native executable of the platform package next to the addon",
                },
                _ => Runner::Npx.launcher_because(version, "the installed package was not found"),
            }
        }
    }
}

/// A package runner that installs what it runs in a cache of its own, which it may clear at
/// any time: an absolute path into it would stop working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runner {
    /// `npx`: `<npm cache>/_npx/<hash>/`.
    Npx,
    /// `pnpm dlx`: `<pnpm cache>/dlx/` (`~/.cache/pnpm/dlx`, `$XDG_CACHE_HOME/pnpm/dlx`,
    /// `~/Library/Caches/pnpm/dlx`, `%LOCALAPPDATA%\pnpm-cache\dlx`); before pnpm 9, a
    /// temporary `dlx-<pid>` directory.
    PnpmDlx,
    /// `bunx`: `<tmp>/bunx-<uid>-<package>/`, or bun's install cache
    /// (`$BUN_INSTALL/install/cache`).
    Bunx,
    /// `yarn dlx` (Yarn 2+): a temporary `xfs-<random>/dlx-<pid>` directory.
    YarnDlx,
}

impl Runner {
    /// The runner whose cache holds `path`, if any.
    fn caching(path: &Path) -> Option<Runner> {
        let names: Vec<String> = path
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let any = |f: &dyn Fn(&str) -> bool| names.iter().any(|n| f(n));
        let pair =
            |a: &dyn Fn(&str) -> bool, b: &str| names.windows(2).any(|w| a(&w[0]) && w[1] == b);
        if any(&|n| n == "_npx") {
            Some(Runner::Npx)
        } else if any(&|n| n.starts_with("bunx-")) || pair(&|n| n == "install", "cache") {
            Some(Runner::Bunx)
        } else if any(&|n| n.starts_with("xfs-")) {
            Some(Runner::YarnDlx)
        } else if pair(&|n| n.starts_with("pnpm"), "dlx") || any(&|n| n.starts_with("dlx-")) {
            Some(Runner::PnpmDlx)
        } else {
            None
        }
    }

    fn launcher(self, version: &str) -> Launcher {
        let why = match self {
            Runner::Npx => "npx's cache may be cleared",
            Runner::PnpmDlx => "pnpm dlx's cache may be cleared",
            Runner::Bunx => "bunx's cache may be cleared",
            Runner::YarnDlx => "yarn dlx's directory is temporary",
        };
        self.launcher_because(version, why)
    }

    /// The runner's own way to run this exact version.
    fn launcher_because(self, version: &str, why: &'static str) -> Launcher {
        let spec = format!("{PACKAGE}@{version}");
        let words: &[&str] = match self {
            Runner::Npx => &["npx", "-y"],
            Runner::PnpmDlx => &["pnpm", "dlx"],
            Runner::Bunx => &["bunx"],
            Runner::YarnDlx => &["yarn", "dlx"],
        };
        let mut command: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        command.push(spec);
        Launcher { command, why }
    }
}

/// The platform package's name for this build: `@policylayer/intercept-linux-x64-gnu`, as
/// napi-rs names the targets (Node's names for the OS and the CPU).
fn platform_package() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "x86" => "ia32",
        other => other,
    };
    let abi = if cfg!(target_env = "musl") {
        "-musl"
    } else if cfg!(all(target_os = "linux", target_env = "gnu")) {
        "-gnu"
    } else if cfg!(target_env = "msvc") {
        "-msvc"
    } else {
        ""
    };
    format!("{PACKAGE}-{os}-{arch}{abi}")
}

/// Whether the `package.json` at `path` is the platform package's.
fn names_platform_package(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|doc| doc["name"].as_str() == Some(platform_package().as_str()))
}

/// Whether only this user (or root) can change the file: owned by one of them, and not
/// writable by its group or by others. Another user's file, or one anybody may rewrite,
/// would run as this user at every start of every client.
#[cfg(unix)]
fn safe_from_others(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).is_ok_and(|m| trusted_owner(m.uid()) && m.mode() & 0o022 == 0)
}

/// Windows: ACLs decide, and files under the user's profile are the user's.
#[cfg(not(unix))]
fn safe_from_others(path: &Path) -> bool {
    path.is_file()
}

#[cfg(unix)]
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == effective_uid()
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid takes nothing, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(l: &Launcher) -> Vec<&str> {
        l.command.iter().map(String::as_str).collect()
    }

    /// Checks that accept everything: for the order of the forms alone.
    struct Trusting;
    impl Checks for Trusting {
        fn native_executable(&self, _: &Path) -> bool {
            true
        }
        fn launcher_script(&self, _: &Path) -> bool {
            true
        }
    }

    #[test]
    fn the_process_is_under_node_only_when_the_addon_says_so() {
        // The test binary is native whatever the features it was built with.
        let native = Running::detect(false);
        let exe = std::env::current_exe().unwrap().canonicalize().unwrap();
        assert_eq!(native, Running::Native(exe.clone()));
        match Running::detect(true) {
            Running::Node { node, .. } => {
                assert_eq!(node.map(|n| n.canonicalize().unwrap()), Some(exe))
            }
            other => panic!("{other:?}"),
        }
        assert!(!crate::host::under_node());
    }

    #[test]
    fn the_native_binary_names_itself_unless_a_runner_may_clear_it() {
        let l = choose(
            &Running::Native(PathBuf::from("/usr/local/bin/intercept")),
            "1.2.3",
            &Trusting,
        );
        assert_eq!(words(&l), ["/usr/local/bin/intercept"]);
        let cached = [
            (
                "/home/u/.npm/_npx/0a1b/node_modules/@policylayer/intercept-linux-x64-gnu/intercept",
                &["npx", "-y"][..],
            ),
            (
                "/home/u/.cache/pnpm/dlx/5c1e/195d-7f3a/node_modules/@policylayer/intercept-linux-x64-gnu/intercept",
                &["pnpm", "dlx"],
            ),
            (
                "/home/u/xdg-cache/pnpm/dlx/ab12/node_modules/@policylayer/intercept-linux-x64-gnu/intercept",
                &["pnpm", "dlx"],
            ),
            (
                "/tmp/dlx-4242/node_modules/@policylayer/intercept-linux-x64-gnu/intercept",
                &["pnpm", "dlx"],
            ),
            (
                "/tmp/bunx-1000-@policylayer/intercept@1.2.3/node_modules/@policylayer/intercept-linux-x64-gnu/intercept",
                &["bunx"],
            ),
            (
                "/home/u/.bun/install/cache/@policylayer/intercept-linux-x64-gnu@1.2.3@@@1/intercept",
                &["bunx"],
            ),
            (
                "/tmp/xfs-8d2c1a0e/dlx-4242/node_modules/@policylayer/intercept-linux-x64-gnu/intercept",
                &["yarn", "dlx"],
            ),
        ];
        for (path, runner) in cached {
            let l = choose(&Running::Native(PathBuf::from(path)), "1.2.3", &Trusting);
            let mut expected = runner.to_vec();
            expected.push("@policylayer/intercept@1.2.3");
            assert_eq!(words(&l), expected, "{path}");
        }
    }

    /// An installed platform package under `dir`: its `package.json` and addon, and an
    /// executable `intercept` with `mode`.
    #[cfg(unix)]
    fn platform_package_in(dir: &Path, name: &str, mode: u32) -> (PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let package = dir.join("node_modules/@policylayer/intercept-platform");
        std::fs::create_dir_all(&package).unwrap();
        std::fs::write(
            package.join("package.json"),
            serde_json::json!({ "name": name }).to_string(),
        )
        .unwrap();
        let addon = package.join("intercept.node");
        std::fs::write(&addon, "").unwrap();
        let exe = package.join("intercept");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(mode)).unwrap();
        (addon, exe)
    }

    #[cfg(unix)]
    #[test]
    fn the_executable_next_to_the_addon_is_used_only_when_it_is_the_packages_and_the_users() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let under_node = |addon: &Path| Running::Node {
            node: Some(PathBuf::from("/usr/bin/node")),
            launcher: Some(PathBuf::from(
                "/app/node_modules/@policylayer/intercept/bin/intercept.js",
            )),
            addon: Some(addon.to_path_buf()),
        };
        /// The real checks of the executable, the script taken as fine.
        struct Real;
        impl Checks for Real {
            fn native_executable(&self, exe: &Path) -> bool {
                OnDisk.native_executable(exe)
            }
            fn launcher_script(&self, _: &Path) -> bool {
                true
            }
        }
        let chosen = |addon: &Path| words(&choose(&under_node(addon), "1.2.3", &Real)).join(" ");
        let fallback = "/usr/bin/node /app/node_modules/@policylayer/intercept/bin/intercept.js";

        // The platform package's own executable, the user's, writable by the user alone.
        let (addon, exe) = platform_package_in(&dir.path().join("ok"), &platform_package(), 0o755);
        assert_eq!(
            chosen(&addon),
            exe.canonicalize().unwrap().to_str().unwrap()
        );
        // Writable by the group or by anyone: another user could put anything there.
        for mode in [0o775, 0o757, 0o777] {
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(chosen(&addon), fallback, "{mode:o}");
        }
        // Not executable.
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(chosen(&addon), fallback);

        // A directory that is not the platform package (INTERCEPT_NATIVE_PATH=/tmp/x.node,
        // say), or another package, or no package.json at all.
        let (addon, _) = platform_package_in(&dir.path().join("other"), "left-pad", 0o755);
        assert_eq!(chosen(&addon), fallback);
        let (addon, _) = platform_package_in(&dir.path().join("main"), PACKAGE, 0o755);
        assert_eq!(chosen(&addon), fallback);
        let (addon, _) = platform_package_in(&dir.path().join("none"), "x", 0o755);
        std::fs::remove_file(addon.with_file_name("package.json")).unwrap();
        assert_eq!(chosen(&addon), fallback);

        // Owned by someone else (only root can make such a file here).
        let (addon, exe) =
            platform_package_in(&dir.path().join("theirs"), &platform_package(), 0o755);
        let nobody = 65534;
        if std::os::unix::fs::chown(&exe, Some(nobody), None).is_ok() {
            assert_eq!(chosen(&addon), fallback);
        }
        assert!(trusted_owner(0));
        assert!(trusted_owner(effective_uid()));
        assert_eq!(trusted_owner(nobody), effective_uid() == nobody);
    }

    #[cfg(unix)]
    #[test]
    fn a_launcher_script_others_can_change_is_not_written() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("intercept.js");
        std::fs::write(&script, "").unwrap();
        let running = Running::Node {
            node: Some(PathBuf::from("/usr/bin/node")),
            launcher: Some(script.clone()),
            addon: Some(dir.path().join("intercept.linux-x64-gnu.node")),
        };
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            words(&choose(&running, "1.2.3", &OnDisk)),
            ["/usr/bin/node", script.to_str().unwrap()]
        );
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(
            words(&choose(&running, "1.2.3", &OnDisk)),
            ["npx", "-y", "@policylayer/intercept@1.2.3"]
        );
    }

    #[test]
    fn under_node_a_runners_cache_then_the_executable_then_the_launcher_then_npx() {
        let addon = PathBuf::from("/app/node_modules/@policylayer/intercept-x/intercept.node");
        let running = |launcher: &str, addon: &Path| Running::Node {
            node: Some(PathBuf::from("/usr/bin/node")),
            launcher: Some(PathBuf::from(launcher)),
            addon: Some(addon.to_path_buf()),
        };
        let installed = running(
            "/app/node_modules/@policylayer/intercept/bin/intercept.js",
            &addon,
        );
        let l = choose(&installed, "1.2.3", &Trusting);
        assert_eq!(
            words(&l),
            ["/app/node_modules/@policylayer/intercept-x/intercept"]
        );

        // Run by a package runner: its cache may vanish, so the exact version through it.
        for (launcher, expected) in [
            (
                "/home/u/.npm/_npx/9f/node_modules/@policylayer/intercept/bin/intercept.js",
                &["npx", "-y", "@policylayer/intercept@1.2.3"][..],
            ),
            (
                "/home/u/.cache/pnpm/dlx/9f/1-2/node_modules/@policylayer/intercept/bin/intercept.js",
                &["pnpm", "dlx", "@policylayer/intercept@1.2.3"],
            ),
            (
                "/tmp/bunx-0-@policylayer/intercept@1.2.3/node_modules/@policylayer/intercept/bin/intercept.js",
                &["bunx", "@policylayer/intercept@1.2.3"],
            ),
            (
                "/tmp/xfs-1a2b3c4d/dlx-77/node_modules/@policylayer/intercept/bin/intercept.js",
                &["yarn", "dlx", "@policylayer/intercept@1.2.3"],
            ),
        ] {
            let l = choose(&running(launcher, &addon), "1.2.3", &Trusting);
            assert_eq!(words(&l), expected, "{launcher}");
        }

        // Nothing known (the addon loaded by another program): npx, never version-less.
        let unknown = Running::Node {
            node: Some(PathBuf::from("/usr/bin/node")),
            launcher: None,
            addon: None,
        };
        let l = choose(&unknown, "1.2.3", &Trusting);
        assert_eq!(words(&l), ["npx", "-y", "@policylayer/intercept@1.2.3"]);
    }

    #[test]
    fn the_platform_package_is_named_as_napi_rs_names_it() {
        let name = platform_package();
        if cfg!(all(
            target_os = "linux",
            target_arch = "x86_64",
            target_env = "gnu"
        )) {
            assert_eq!(name, "@policylayer/intercept-linux-x64-gnu");
        }
        assert!(name.starts_with("@policylayer/intercept-"), "{name}");
    }
}
