//! The session directory: what any gateway instance needs to take up a client session that
//! another instance started, kept in the state store.
//!
//! A client of the session-based revisions sends its session id on every request, and a
//! load balancer without sticky routing may send each to a different instance. When the
//! server is reached by URL, the upstream session is just an id, so the instance that gets
//! a request for a session it has not seen finds the session here and goes on with it. (A
//! stdio server lives on one host: sessions served by a child need sticky routing, see
//! docs/gateway.md.) With the Redis store every instance shares the directory; with memory
//! or SQLite it is per machine.
//!
//! A record lives as long as the session may be idle, and each use renews it, at most once
//! a second per session and instance (a busy session costs no store round trip per
//! request); a renewal finds a session ended through another instance, so it is gone
//! everywhere within a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::state::{Store, StoreError, now_millis};

/// What is fixed when a session starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The gateway's name of the server (its path segment; empty for a single server).
    pub server: String,
    /// The upstream server's own session id, never shown to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_session: Option<String>,
    /// The protocol revision negotiated at `initialize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// The client's name from `initialize`: the first name given is the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Who started the session; a request from anyone else is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// How often an instance renews a session it serves (and learns whether it still exists).
const RENEW_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct SessionDirectory {
    store: Arc<dyn Store>,
    idle_timeout: Duration,
    /// When this instance last renewed each session it served.
    renewed: Mutex<HashMap<String, Instant>>,
}

impl SessionDirectory {
    pub fn new(store: Arc<dyn Store>, idle_timeout: Duration) -> Self {
        SessionDirectory {
            store,
            idle_timeout,
            renewed: Mutex::new(HashMap::new()),
        }
    }

    fn key(id: &str) -> String {
        format!("session:{id}")
    }

    pub fn publish(&self, id: &str, record: &SessionRecord) -> Result<(), StoreError> {
        let text = serde_json::to_string(record).expect("a session record serialises");
        self.store
            .put_record(&Self::key(id), &text, self.idle_timeout, now_millis())?;
        lock(&self.renewed).insert(id.to_string(), Instant::now());
        Ok(())
    }

    /// The session `id`, if some instance started it and it has not ended or expired.
    pub fn find(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let text = self.store.get_record(&Self::key(id), now_millis())?;
        Ok(text.and_then(|t| match serde_json::from_str(&t) {
            Ok(record) => Some(record),
            Err(e) => {
                tracing::warn!("a session record in the state store is unreadable ({e}); the session is treated as gone");
                None
            }
        }))
    }

    /// The session was used: renews its record unless this instance did so recently.
    /// `false` if the record is gone (another instance ended the session, or it expired).
    pub fn renew(&self, id: &str) -> Result<bool, StoreError> {
        let due = {
            let mut renewed = lock(&self.renewed);
            let now = Instant::now();
            match renewed.get(id) {
                Some(at) if now.duration_since(*at) < RENEW_EVERY.min(self.idle_timeout / 10) => {
                    false
                }
                _ => {
                    renewed.insert(id.to_string(), now);
                    true
                }
            }
        };
        if !due {
            return Ok(true);
        }
        self.store
            .touch_record(&Self::key(id), self.idle_timeout, now_millis())
    }

    /// The session ended (DELETE, idle, or its server went away).
    pub fn forget(&self, id: &str) -> Result<(), StoreError> {
        lock(&self.renewed).remove(id);
        self.store.delete_record(&Self::key(id))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryStore;

    fn record() -> SessionRecord {
        SessionRecord {
            server: "github".into(),
            upstream_session: Some("up-1".into()),
            protocol_version: Some("2025-11-25".into()),
            client_name: Some("claude-code".into()),
            identity: None,
        }
    }

    #[test]
    fn an_instance_finds_a_session_another_published_until_it_is_forgotten() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let a = SessionDirectory::new(store.clone(), Duration::from_secs(60));
        let b = SessionDirectory::new(store, Duration::from_secs(60));
        a.publish("s1", &record()).unwrap();
        assert_eq!(b.find("s1").unwrap(), Some(record()));
        assert!(b.renew("s1").unwrap());
        b.forget("s1").unwrap();
        assert_eq!(a.find("s1").unwrap(), None);
        assert!(!b.renew("s1").unwrap(), "b renews on its first use");
    }

    #[test]
    fn records_keep_only_what_is_set() {
        let text = serde_json::to_string(&SessionRecord {
            server: String::new(),
            upstream_session: None,
            protocol_version: None,
            client_name: None,
            identity: None,
        })
        .unwrap();
        assert_eq!(text, r#"{"server":""}"#);
    }
}
