//! A stdio server behind the listener, one child per client session: a thousand sessions
//! opened and closed leave no process, file descriptor or memory behind, and a shutdown
//! stops every child. The server is the Go fixture, which starts in milliseconds.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(15);

struct Gateway {
    child: Child,
    port: u16,
}

impl Gateway {
    fn start(dir: &std::path::Path) -> Gateway {
        let policy = dir.join("policy.yaml");
        std::fs::write(&policy, "hide: [delete_repo]\ntools:\n  read_file: {}\n").unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_intercept"))
            .args(["-c", policy.to_str().unwrap()])
            .args(["--state", "memory", "--no-audit", "--log-level", "info"])
            .args(["--transport", "http", "--port", "0", "--max-sessions", "8"])
            .arg("--")
            .arg(support::go_server::binary())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("intercept starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("intercept says where it listens")
                .unwrap();
            if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                break rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
            }
        };
        // Keep draining stderr so the gateway never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Gateway { child, port }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One request on a new connection: status, headers (lowercase) and the JSON body.
    fn request(&self, method: &str, session: Option<&str>, body: &Value) -> (u16, String, Value) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let mut req = format!(
            "{method} /mcp HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nconnection: close\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: {}\r\n",
            self.port,
            body.len()
        );
        if let Some(id) = session {
            req += &format!("mcp-session-id: {id}\r\n");
        }
        req += "\r\n";
        req += &body;
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = String::new();
        let _ = s.read_to_string(&mut raw);
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (
            status,
            head.to_ascii_lowercase(),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    }

    /// initialize, a listing, a call, DELETE: one whole session.
    fn one_session(&self) {
        let (status, head, answer) = self.request("POST", None, &initialize());
        assert_eq!(status, 200, "{answer}");
        let id = head
            .lines()
            .find_map(|l| l.strip_prefix("mcp-session-id: "))
            .expect("a session id")
            .trim()
            .to_string();
        let (_, _, list) = self.request(
            "POST",
            Some(&id),
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        );
        let names: Vec<&str> = list["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["read_file"], "the listing is filtered");
        let (_, _, call) = self.request(
            "POST",
            Some(&id),
            &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "read_file", "arguments": {"path": "/ok"}}}),
        );
        assert!(
            call["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("ran "),
            "{call}"
        );
        let (status, _, _) = self.request("DELETE", Some(&id), &Value::Null);
        assert_eq!(status, 200);
        let (status, _, _) = self.request(
            "POST",
            Some(&id),
            &json!({"jsonrpc": "2.0", "id": 4, "method": "ping"}),
        );
        assert_eq!(status, 404, "a closed session is gone");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "children", "version": "1"}}})
}

/// What a process holds: open file descriptors, processes it started, resident memory (KiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Holdings {
    fds: usize,
    children: usize,
    rss_kib: u64,
}

fn holdings(pid: u32) -> Holdings {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let children = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid …: comm may hold spaces, so read after its ')'.
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .is_some_and(|ppid| ppid == pid.to_string())
        })
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    Holdings {
        fds,
        children,
        rss_kib,
    }
}

/// Waits until the children stopped for closed sessions are gone (they stop in the
/// background), then reads what the gateway holds.
fn settled(pid: u32, baseline: Holdings) -> Holdings {
    let started = Instant::now();
    loop {
        let now = holdings(pid);
        if (now.children <= baseline.children && now.fds <= baseline.fds)
            || started.elapsed() > PATIENCE
        {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_thousand_sessions_opened_and_closed_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path());
    let idle = holdings(gw.pid());
    for _ in 0..100 {
        gw.one_session();
    }
    let after_100 = settled(gw.pid(), idle);
    for _ in 0..900 {
        gw.one_session();
    }
    let after_1000 = settled(gw.pid(), idle);
    eprintln!("idle {idle:?}, after 100 sessions {after_100:?}, after 1000 {after_1000:?}");
    assert_eq!(
        after_1000.children, idle.children,
        "every child was stopped"
    );
    assert_eq!(after_1000.fds, idle.fds, "no file descriptor was left open");
    let growth = after_1000.rss_kib.saturating_sub(after_100.rss_kib);
    assert!(
        growth < 2048,
        "memory grew by {growth} KiB from 100 to 1000 sessions"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_shutdown_stops_every_session_child() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start(dir.path());
    let idle = holdings(gw.pid());
    for _ in 0..3 {
        let (status, _, _) = gw.request("POST", None, &initialize());
        assert_eq!(status, 200);
    }
    let busy = holdings(gw.pid());
    assert!(
        busy.children >= idle.children + 3,
        "{busy:?}: a child per session"
    );
    let children: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &u32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(") ")
                        .map(|(_, r)| r.split_whitespace().nth(1).map(str::to_string))
                })
                .flatten()
                .is_some_and(|ppid| ppid == gw.pid().to_string())
        })
        .collect();
    // SIGTERM, as a service manager stops it.
    sigterm(gw.pid());
    let status = gw.child.wait().unwrap();
    assert!(status.success() || status.code().is_some(), "{status}");
    let started = Instant::now();
    while children
        .iter()
        .any(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
        && started.elapsed() < PATIENCE
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<_> = children
        .iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
        })
        .collect();
    assert!(
        left.is_empty(),
        "children still running after shutdown: {left:?}"
    );
}

fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
