//! The client sessions of one listener: minted ids, the `--max-sessions` cap, and the idle
//! reaper.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::link::Link;
use crate::proxy::{self, Closed, Routes};
use crate::telemetry::{Telemetry, Transport};

/// The server name the listener reports under: a single server's.
pub(super) const SERVER: &str = "default";

/// One client session: its policy view, its upstream link, and (legacy transport) the one
/// event stream everything for it goes on.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) id: String,
    pub(super) proxy: Arc<proxy::Session>,
    pub(super) link: Link,
    /// The client's `MCP-Protocol-Version`, passed on to the server.
    version: Mutex<Option<String>>,
    last_used: Mutex<Instant>,
    /// Requests being handled and streams open: a busy session is never idle.
    busy: AtomicUsize,
    /// Legacy HTTP+SSE: the client's event stream (gone once the session is closed).
    legacy: Mutex<Option<mpsc::Sender<Bytes>>>,
    /// Where the session's life and its upstream's failures are reported.
    pub(super) telemetry: Telemetry,
    opened: Instant,
}

impl Session {
    pub(super) fn new(
        id: String,
        proxy: Arc<proxy::Session>,
        link: Link,
        legacy: Option<mpsc::Sender<Bytes>>,
        telemetry: Telemetry,
    ) -> Self {
        Session {
            id,
            proxy,
            link,
            version: Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
            busy: AtomicUsize::new(0),
            legacy: Mutex::new(legacy),
            telemetry,
            opened: Instant::now(),
        }
    }

    /// Marks the session in use until the returned guard is dropped.
    pub(super) fn enter(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::SeqCst);
        *lock(&self.last_used) = Instant::now();
        Busy(self.clone())
    }

    pub(super) fn version(&self) -> Option<String> {
        lock(&self.version).clone()
    }

    pub(super) fn set_version(&self, version: Option<&str>) {
        if let Some(v) = version {
            *lock(&self.version) = Some(v.to_string());
        }
    }

    /// The legacy event stream, if still open.
    pub(super) fn legacy_stream(&self) -> Option<mpsc::Sender<Bytes>> {
        lock(&self.legacy).clone()
    }

    fn idle_since(&self) -> Option<Instant> {
        (self.busy.load(Ordering::SeqCst) == 0).then(|| *lock(&self.last_used))
    }

    /// Ends the session: its legacy stream closes, the server's session is ended, and every
    /// request still awaiting an answer gets an error. `reason` (`delete`, `idle`,
    /// `shutdown`, `upstream_gone`) is what telemetry reports; None for a session that was
    /// never counted as open.
    pub(super) async fn close(&self, why: &str, reason: Option<&'static str>) {
        if let Some(reason) = reason {
            let lasted = self.opened.elapsed();
            self.telemetry
                .session_closed(SERVER, Transport::Http, reason, lasted);
        }
        lock(&self.legacy).take();
        let version = self.version();
        self.link.close(version.as_deref()).await;
        self.proxy.close(
            Closed::UpstreamGone(why.to_string()),
            &mut Routes::default(),
        );
    }
}

/// Keeps a session busy while alive.
#[derive(Debug)]
pub(super) struct Busy(Arc<Session>);

impl Drop for Busy {
    fn drop(&mut self) {
        *lock(&self.0.last_used) = Instant::now();
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
pub(super) struct Sessions {
    max: usize,
    table: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    pub(super) fn new(max: usize) -> Self {
        Sessions {
            max,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// A new, unguessable session id: 128 random bits in hex.
    pub(super) fn mint_id() -> String {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; 16];
        // The system's random source does not fail on a working Linux or macOS; a
        // constant id would be far worse than a crash, so there is no fallback.
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system random number generator failed");
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether another session may open now.
    pub(super) fn has_room(&self) -> bool {
        lock(&self.table).len() < self.max
    }

    /// Adds a session unless `--max-sessions` are open.
    pub(super) fn insert(&self, session: Arc<Session>) -> Result<(), usize> {
        let mut table = lock(&self.table);
        if table.len() >= self.max {
            return Err(self.max);
        }
        table.insert(session.id.clone(), session);
        Ok(())
    }

    pub(super) fn get(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.table).get(id).cloned()
    }

    pub(super) fn remove(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.table).remove(id)
    }

    /// Takes every session out (shutdown).
    pub(super) fn drain(&self) -> Vec<Arc<Session>> {
        lock(&self.table).drain().map(|(_, s)| s).collect()
    }

    /// Takes out the sessions idle for `timeout` or longer.
    pub(super) fn take_idle(&self, timeout: Duration) -> Vec<Arc<Session>> {
        let now = Instant::now();
        let mut table = lock(&self.table);
        let idle: Vec<String> = table
            .iter()
            .filter(|(_, s)| {
                s.idle_since()
                    .is_some_and(|t| now.duration_since(t) >= timeout)
            })
            .map(|(id, _)| id.clone())
            .collect();
        idle.iter().filter_map(|id| table.remove(id)).collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_128_bit_hex_and_distinct() {
        let a = Sessions::mint_id();
        let b = Sessions::mint_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
