//! Every error of the library carries its cause in its own text and not also as its
//! `source()`, so that printing it alone (`{e}`, in logs) or as a chain (`{e:#}`, at the
//! command line's edge) shows the cause exactly once.

use std::error::Error;
use std::path::PathBuf;

use intercept::audit::{OpenError, VerifyError};
use intercept::policy::LoadError;
use intercept::reload::WatchError;
use intercept::scan::ScanError;
use intercept::state::StoreError;
use intercept::transport::TransportError;

fn io(text: &str) -> std::io::Error {
    std::io::Error::other(text.to_string())
}

/// What the command line prints for `e`: its text, then each cause in the chain.
fn as_printed<E: Error + Send + Sync + 'static>(e: E) -> String {
    assert!(
        e.source().is_none(),
        "{e} also returns its cause as source()"
    );
    format!("{:#}", anyhow::Error::new(e))
}

#[test]
fn each_error_names_its_cause_once() {
    let p = || PathBuf::from("/p");
    let cases = [
        (
            as_printed(LoadError::Read {
                path: p(),
                cause: io("disk on fire"),
            }),
            "reading config file /p: disk on fire",
        ),
        (
            as_printed(VerifyError::from(io("disk on fire"))),
            "cannot read the event file: disk on fire",
        ),
        (
            as_printed(OpenError::Dir {
                dir: p(),
                cause: io("disk on fire"),
            }),
            "cannot create the audit directory /p: disk on fire",
        ),
        (
            as_printed(OpenError::File {
                path: p(),
                cause: io("disk on fire"),
            }),
            "cannot open the audit log /p: disk on fire",
        ),
        (
            as_printed(OpenError::Thread(io("disk on fire"))),
            "cannot start the audit writer: disk on fire",
        ),
        (
            as_printed(ScanError::Spawn {
                command: "srv".into(),
                cause: io("disk on fire"),
            }),
            "cannot start \"srv\": disk on fire",
        ),
        (
            as_printed(TransportError::Spawn {
                command: "srv".into(),
                cause: io("disk on fire"),
            }),
            "cannot start the upstream command \"srv\": disk on fire",
        ),
        (
            as_printed(TransportError::Thread(io("disk on fire"))),
            "cannot start a proxy thread: disk on fire",
        ),
        (
            as_printed(ScanError::Transport(TransportError::Thread(io(
                "disk on fire",
            )))),
            "cannot start a proxy thread: disk on fire",
        ),
        (
            as_printed(StoreError::from(rusqlite::Error::QueryReturnedNoRows)),
            "state database error: Query returned no rows",
        ),
        (
            as_printed(WatchError::Path {
                path: p(),
                cause: io("disk on fire"),
            }),
            "cannot find the directory of the policy file /p: disk on fire",
        ),
        (
            as_printed(WatchError::Watch {
                path: p(),
                cause: notify::Error::generic("disk on fire"),
            }),
            "cannot watch /p for changes: disk on fire",
        ),
        (
            as_printed(WatchError::Thread(io("disk on fire"))),
            "cannot start the policy reload thread: disk on fire",
        ),
    ];
    for (printed, expected) in cases {
        assert_eq!(printed, expected);
    }
}
