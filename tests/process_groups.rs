//! The MCP server's whole process group stops with intercept: a grandchild behind a shell
//! that ignores SIGTERM and its stdin closing is not left behind when intercept gets
//! SIGTERM, or is killed outright.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a process may take to go before the test fails (a bound, not a measurement).
const PATIENCE: Duration = Duration::from_secs(10);

/// A server whose real work runs as a grandchild that ignores SIGTERM and never reads its
/// stdin, the way `npx` or a shell wrapper runs a server; the grandchild's pid goes to
/// `pid_file`.
fn stubborn_server(pid_file: &Path) -> Vec<String> {
    vec![
        "bash".into(),
        "-c".into(),
        format!(
            r#"trap "" TERM; sleep 1000 & echo $! > '{}'; wait"#,
            pid_file.display()
        ),
    ]
}

struct Running {
    intercept: Child,
    grandchild: i32,
    _dir: tempfile::TempDir,
}

fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "tools: {}\n").unwrap();
    let pid_file = dir.path().join("grandchild.pid");
    let intercept = Command::new(env!("CARGO_BIN_EXE_intercept"))
        .arg("-c")
        .arg(&policy)
        .args([
            "--state",
            "memory",
            "--no-audit",
            "--shutdown-timeout",
            "0.5",
        ])
        .arg("--")
        .args(stubborn_server(&pid_file))
        // Kept open: the client is still there when intercept is signalled.
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .expect("intercept starts");
    let grandchild = read_pid(&pid_file);
    assert!(running(grandchild), "the grandchild runs");
    Running {
        intercept,
        grandchild,
        _dir: dir,
    }
}

/// The pid the server wrote, once it has written it.
fn read_pid(path: &PathBuf) -> i32 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "the server never wrote {path:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` runs; a zombie (dead, not yet reaped by whoever adopted it) does not.
fn running(pid: i32) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: signal 0 only asks whether the process exists.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false);
    exists && !zombie
}

fn assert_gone(pid: i32) {
    let deadline = Instant::now() + PATIENCE;
    while running(pid) {
        if Instant::now() > deadline {
            // Do not leave it behind for the next test run.
            #[allow(unsafe_code)]
            // SAFETY: kill(2) on a pid this test saw started; no memory is touched.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            panic!("the server's grandchild {pid} outlived intercept");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: i32) {
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on our own child, not yet reaped; no memory is touched.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

#[test]
fn sigterm_stops_the_servers_whole_process_group() {
    let mut r = start();
    signal(&r.intercept, libc::SIGTERM);
    let status = r.intercept.wait().unwrap();
    assert!(
        status.code().is_some(),
        "intercept exits by itself: {status}"
    );
    assert_gone(r.grandchild);
}

#[test]
fn sigkill_of_intercept_takes_the_servers_process_group_with_it() {
    let mut r = start();
    signal(&r.intercept, libc::SIGKILL);
    r.intercept.wait().unwrap();
    assert_gone(r.grandchild);
}

/// `intercept scan` stops the server's group too, even once the server itself has exited
/// on its stdin closing and only something it started is left.
#[test]
fn scan_stops_what_the_server_started_after_the_server_exits() {
    let dir = tempfile::tempdir().unwrap();
    let server = dir.path().join("server.js");
    std::fs::write(
        &server,
        r#"
const rl = require('node:readline').createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const msg = JSON.parse(line)
  if (msg.id === undefined) return
  const result = msg.method === 'initialize'
    ? { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 's', version: '1' } }
    : { tools: [] }
  process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }) + '\n')
})
rl.on('close', () => process.exit(0))
"#,
    )
    .unwrap();
    let pid_file = dir.path().join("grandchild.pid");
    let script = format!(
        r#"trap "" TERM; sleep 1000 & echo $! > '{}'; exec node '{}'"#,
        pid_file.display(),
        server.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_intercept"))
        .args(["scan", "-o"])
        .arg(dir.path().join("policy.yaml"))
        .args(["--", "bash", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("scan runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_gone(read_pid(&pid_file));
}
