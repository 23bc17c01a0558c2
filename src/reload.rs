//! Hot reload: watches the policy file and puts each valid new version in force.
//!
//! The parent directory is watched, not the file: editors that save by writing a new file
//! and renaming it over the old one, or by deleting and recreating it, replace the inode a
//! file watch would be attached to. Events are filtered by file name (any event in the
//! directory when the policy path is a symlink, as with mounted config maps, whose target
//! changes through a renamed directory link) and debounced, so a save made of several
//! writes is read once, whole.
//!
//! A new version is read, validated and compiled off the hot path, then swapped in with one
//! atomic store (see [`Engine::replace_policy`]): calls already being evaluated finish with
//! the policy they loaded, later ones see the new one. An invalid version is never put in
//! force: every error is logged with its line and column and the previous policy stays. So
//! is an empty one (it would allow every call), without a `config_reload` event.
//! Counters live in the store, which a reload does not touch.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher};
use serde_json::json;

use crate::audit::{AuditLog, sha256_hex};
use crate::engine::Engine;
use crate::policy;
use crate::telemetry::Telemetry;

/// The server name reloads are reported under: a single server's.
const SERVER: &str = "default";

/// How long the file must be quiet before it is read: long enough for an editor's save
/// (write, rename, chmod) to finish, short enough to feel immediate.
pub const DEBOUNCE: Duration = Duration::from_millis(200);
/// A file that never stops changing is still read this often.
const MAX_DELAY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot find the directory of the policy file {path}: {cause}")]
    Path {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot watch {path} for changes: {cause}")]
    Watch { path: PathBuf, cause: notify::Error },
    #[error("cannot start the policy reload thread: {0}")]
    Thread(std::io::Error),
}

/// Keeps the policy file watched while it lives; dropping it stops reloading.
#[derive(Debug)]
pub struct PolicyWatcher {
    _watcher: FileWatcher,
}

/// Watches `path` and puts every valid new version into `engine` (and so into every clone
/// of it). `loaded_sha256` is the SHA-256 of the text already in force, so a save that
/// changes nothing is not a reload. Each reload is a `config_reload` event in `audit`:
/// `success` with the new policy's hash, or `failure` with every error as
/// `file:line:col: message` and the hash of the policy that stays in force.
///
/// `telemetry` counts each reload (`ok` or `error`) for the server `default` and learns the
/// new policy's tool names.
pub fn watch(
    path: &Path,
    engine: Engine,
    audit: Option<Arc<AuditLog>>,
    loaded_sha256: String,
    telemetry: Telemetry,
) -> Result<PolicyWatcher, WatchError> {
    let path = std::path::absolute(path).map_err(|cause| WatchError::Path {
        path: path.to_path_buf(),
        cause,
    })?;
    let mut reloader = Reloader {
        path: path.clone(),
        engine,
        audit,
        in_force: loaded_sha256,
        rejected: None,
        telemetry,
    };
    let watcher = watch_files(&[path], "intercept-reload", move || reloader.check())?;
    Ok(PolicyWatcher { _watcher: watcher })
}

/// Keeps files watched while it lives.
#[derive(Debug)]
pub struct FileWatcher {
    _watchers: Vec<notify::RecommendedWatcher>,
}

/// Calls `on_change` on a thread of its own once the watch is armed (a change made before
/// it is caught there), then after each change to any of `paths`, debounced. Each file's
/// directory is watched (see the module's documentation for why).
pub fn watch_files(
    paths: &[PathBuf],
    thread_name: &str,
    mut on_change: impl FnMut() + Send + 'static,
) -> Result<FileWatcher, WatchError> {
    let (tx, rx) = mpsc::channel::<()>();
    let mut watchers = Vec::new();
    for path in paths {
        let path = std::path::absolute(path).map_err(|cause| WatchError::Path {
            path: path.to_path_buf(),
            cause,
        })?;
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(WatchError::Path {
                path,
                cause: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
            });
        };
        let (dir, name) = (dir.to_path_buf(), name.to_os_string());
        let any_event = path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink());
        let tx = tx.clone();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(event) => {
                    let relevant = is_change(&event.kind)
                        && (any_event
                            || event.paths.is_empty()
                            || event.paths.iter().any(|p| p.file_name() == Some(&name)));
                    if relevant {
                        let _ = tx.send(());
                    }
                }
                Err(e) => tracing::warn!("watching {}: {e}", path.display()),
            })
            .map_err(|cause| WatchError::Watch {
                path: dir.clone(),
                cause,
            })?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|cause| WatchError::Watch {
                path: dir.clone(),
                cause,
            })?;
        watchers.push(watcher);
    }
    drop(tx);
    std::thread::Builder::new()
        .name(thread_name.into())
        .spawn(move || {
            // The watch is armed: a save made between the first load and now is caught here.
            on_change();
            // Ends when the watchers (and with them the senders) are dropped.
            while rx.recv().is_ok() {
                let started = Instant::now();
                while started.elapsed() < MAX_DELAY {
                    match rx.recv_timeout(DEBOUNCE) {
                        Ok(()) => continue,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                tracing::debug!("watched file changed; read after {:?}", started.elapsed());
                on_change();
            }
        })
        .map_err(WatchError::Thread)?;
    Ok(FileWatcher {
        _watchers: watchers,
    })
}

/// Whether an event can mean new content. Reads (our own included) cannot, and reacting
/// to them would make every reload trigger the next one.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

struct Reloader {
    path: PathBuf,
    engine: Engine,
    audit: Option<Arc<AuditLog>>,
    /// SHA-256 of the policy text in force.
    in_force: String,
    /// SHA-256 of the last text rejected, so its errors are not logged again on a touch.
    rejected: Option<String>,
    telemetry: Telemetry,
}

impl Reloader {
    fn check(&mut self) {
        let shown = self.path.display().to_string();
        let bytes = match policy::limits::read_bounded(&self.path) {
            Ok(b) => b,
            // Mid-save (deleted, not yet recreated): the next event brings the new file.
            Err(policy::LoadError::Read { cause, .. })
                if cause.kind() == std::io::ErrorKind::NotFound =>
            {
                tracing::debug!("{shown} is missing for now; the policy in force stays");
                return;
            }
            Err(policy::LoadError::Read { cause, .. }) => {
                tracing::warn!("cannot read {shown} ({cause}); the policy in force stays");
                return;
            }
            // Too large to read: refused like any invalid version, without its hash.
            Err(policy::LoadError::Invalid { errors, .. }) => {
                self.reject(&shown, &errors, None);
                return;
            }
        };
        let sha = sha256_hex(&bytes);
        if sha == self.in_force {
            if self.rejected.take().is_some() {
                tracing::info!("{shown} is back to the policy in force");
            }
            return;
        }
        if self.rejected.as_deref() == Some(sha.as_str()) {
            return;
        }
        let result = match std::str::from_utf8(&bytes) {
            Ok(text) => policy::parse(text, &shown).map_err(|e| e.errors().to_vec()),
            Err(e) => Err(vec![policy::PolicyError {
                message: format!("the file is not valid UTF-8 ({e})"),
                path: String::new(),
                line: 1,
                column: 1,
            }]),
        };
        match result {
            Ok(compiled) => {
                let rules = compiled.rules.len();
                if let Some(known) = self.telemetry.known_tools() {
                    known.set_policy(SERVER, &compiled);
                }
                self.engine.replace_policy(Arc::new(compiled));
                self.telemetry.policy_reloaded(SERVER, "ok");
                let previous = std::mem::replace(&mut self.in_force, sha);
                self.rejected = None;
                tracing::info!(policy = %shown, rules, "policy reloaded");
                self.record(json!({
                    "status": "success",
                    "policy": shown,
                    "policy_sha256": self.in_force,
                    "previous_sha256": previous,
                }));
            }
            // An editor that truncates and then writes leaves the file empty for a moment; the
            // write's own event brings the content. An empty policy is refused like any invalid
            // one, but it is not recorded as a failed reload: it is most often that moment.
            Err(errors) if policy::is_empty_policy(&errors) => {
                tracing::warn!("{shown}:{}; the policy in force stays", errors[0]);
                self.rejected = Some(sha);
            }
            Err(errors) => self.reject(&shown, &errors, Some(sha)),
        }
    }

    /// Logs and records a version that is not put in force; the policy in force stays.
    /// `sha` is the rejected text's hash, when it was read.
    fn reject(&mut self, shown: &str, errors: &[policy::PolicyError], sha: Option<String>) {
        for e in errors {
            tracing::warn!("policy reload rejected: {shown}:{e}");
        }
        tracing::warn!(
            "{shown} has {} error(s); the policy in force stays",
            errors.len()
        );
        self.telemetry.policy_reloaded(SERVER, "error");
        self.record(json!({
            "status": "failure",
            "policy": shown,
            // The policy that stays in force.
            "policy_sha256": self.in_force,
            "rejected_sha256": sha,
            "errors": errors
                .iter()
                .map(|e| format!("{shown}:{e}"))
                .collect::<Vec<_>>(),
        }));
        self.rejected = sha;
    }

    fn record(&self, fields: serde_json::Value) {
        if let Some(audit) = &self.audit {
            audit.record("config_reload", fields);
        }
    }
}
