//! The MCP server's own process group, and a watchdog that takes the group down with us.
//!
//! Servers started through `npx`, `uvx` or a shell run the real server as a grandchild,
//! which may ignore its stdin closing and SIGTERM; signalling only our direct child would
//! orphan it. So the server runs in a process group of its own and the shutdown signals go
//! to the whole group.
//!
//! If intercept is killed outright (SIGKILL, or the Node process hosting the addon), no
//! code of ours runs, and the kernel's parent-death signal only reaches a direct child.
//! A watchdog covers that: a tiny `sh` that leads the group and blocks reading a pipe
//! whose only write end intercept holds. The write end is close-on-exec, so the server
//! (and anything else this process starts) never inherits it; when intercept exits,
//! however it exits, the read sees end-of-file and the watchdog kills the group, itself
//! included. It ignores SIGINT, SIGTERM and SIGHUP, so a SIGTERM to the group leaves it
//! watching, and, leading the group, it keeps the group id from being reused while
//! anything of the group is left to signal.
//!
//! Windows has no process groups of this kind: there the server is stopped by killing the
//! direct child (see docs/cli.md).

#[cfg(not(unix))]
pub use other::ProcessGroup;
#[cfg(unix)]
pub use unix::{ProcessGroup, signal_group};

/// Which signal a whole group gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSignal {
    /// SIGTERM: please exit.
    Terminate,
    /// SIGKILL.
    Kill,
}

#[cfg(unix)]
mod unix {
    use std::io::PipeWriter;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, Stdio};

    use super::GroupSignal;

    /// Blocks until the pipe closes, then kills its own group (`$$` leads it).
    const WATCHDOG: &str = r#"trap "" INT TERM HUP; read line; kill -s KILL -- -$$"#;

    /// A process group led by a watchdog; dropping it (or intercept dying) kills the group.
    #[derive(Debug)]
    pub struct ProcessGroup {
        id: i32,
        watchdog: Option<Child>,
        /// The write end of the watchdog's stdin: closing it is the signal.
        lifeline: Option<PipeWriter>,
    }

    impl ProcessGroup {
        /// Starts the watchdog in a new process group. Put the server in it with
        /// `process_group(group.id())` when spawning it.
        pub fn start() -> std::io::Result<ProcessGroup> {
            // Both ends are close-on-exec; the read end becomes the watchdog's stdin.
            let (reader, lifeline) = std::io::pipe()?;
            let watchdog = Command::new("/bin/sh")
                .args(["-c", WATCHDOG, "intercept-watchdog"])
                .stdin(Stdio::from(reader))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()?;
            let id = watchdog.id() as i32;
            Ok(ProcessGroup {
                id,
                watchdog: Some(watchdog),
                lifeline: Some(lifeline),
            })
        }

        /// The process group id (the watchdog's pid).
        pub fn id(&self) -> i32 {
            self.id
        }

        /// Signals every process of the group (the watchdog ignores SIGTERM).
        pub fn signal(&self, signal: GroupSignal) {
            signal_group(self.id, signal);
        }
    }

    impl Drop for ProcessGroup {
        fn drop(&mut self) {
            // End of file for the watchdog: it kills whatever is left of the group.
            drop(self.lifeline.take());
            if let Some(mut watchdog) = self.watchdog.take() {
                // Reaped off this thread: it exits as soon as it has read the end of file.
                let _ = std::thread::Builder::new()
                    .name("intercept-reap".into())
                    .spawn(move || watchdog.wait());
            }
        }
    }

    /// Signals process group `id`.
    #[allow(unsafe_code)]
    pub fn signal_group(id: i32, signal: GroupSignal) {
        let sig = match signal {
            GroupSignal::Terminate => libc::SIGTERM,
            GroupSignal::Kill => libc::SIGKILL,
        };
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is
        // touched. The group is led by our watchdog, so its id still names our group.
        unsafe {
            libc::kill(-(id as libc::pid_t), sig);
        }
    }

    #[cfg(test)]
    mod tests {
        use std::os::unix::process::ExitStatusExt;

        use super::*;

        #[test]
        fn dropping_the_group_kills_every_member() {
            let group = ProcessGroup::start().expect("watchdog starts");
            let mut member = Command::new("/bin/sh")
                .args(["-c", r#"trap "" TERM; exec sleep 1000"#])
                .process_group(group.id())
                .spawn()
                .expect("member starts");
            drop(group);
            // Returns once the watchdog's SIGKILL has arrived (never while the member
            // lives: the test's own timeout would catch that).
            let status = member.wait().expect("member is reaped");
            assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        }
    }
}

#[cfg(not(unix))]
mod other {
    use super::GroupSignal;

    /// No process group: the caller stops the server by killing its direct child.
    #[derive(Debug)]
    pub struct ProcessGroup;

    impl ProcessGroup {
        pub fn start() -> std::io::Result<ProcessGroup> {
            Ok(ProcessGroup)
        }

        pub fn signal(&self, _signal: GroupSignal) {}
    }
}
