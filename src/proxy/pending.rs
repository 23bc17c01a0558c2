//! Requests forwarded upstream and awaiting their response.
//!
//! The table is bounded and entries expire: a client that never gets (or never waits
//! for) a response cannot make a long session's memory grow. An entry pushed out or
//! expired keeps its reservation (the call was forwarded and may have run).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::state::Reservation;

/// What a pending request was.
#[derive(Debug)]
pub enum Pending {
    /// A forwarded `tools/call`, with what it reserved.
    Call(CallInfo),
    /// A forwarded `tools/list`, whose response must be filtered.
    List,
}

#[derive(Debug)]
pub struct CallInfo {
    pub tool: String,
    pub reservation: Option<Reservation>,
    /// Identifies the call for a 2026-07-28 `inputResponses` retry.
    pub retry_key: u64,
    /// When it was forwarded, for the audit log's duration.
    pub forwarded: Instant,
}

#[derive(Debug)]
struct Entry {
    pending: Pending,
    at: Instant,
    seq: u64,
}

/// Pending requests keyed by the JSON text of their id. The keys come from the client, so
/// the hasher is seeded per process (foldhash: several times faster than SipHash on short
/// keys).
#[derive(Debug)]
pub struct PendingTable {
    entries: foldhash::HashMap<String, Entry>,
    order: VecDeque<(String, u64)>,
    next_seq: u64,
    capacity: usize,
    ttl: Duration,
}

impl PendingTable {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        PendingTable {
            entries: foldhash::HashMap::default(),
            order: VecDeque::new(),
            next_seq: 0,
            capacity,
            ttl,
        }
    }

    /// Adds an entry; returns entries it displaced (same id reused, or evicted as the
    /// oldest or expired), so their reservations can be settled.
    pub fn insert(&mut self, id: String, pending: Pending, now: Instant) -> Vec<Pending> {
        let mut displaced = self.expire(now);
        while self.entries.len() >= self.capacity {
            match self.pop_oldest() {
                Some(p) => displaced.push(p),
                None => break,
            }
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        self.order.push_back((id.clone(), seq));
        if let Some(old) = self.entries.insert(
            id,
            Entry {
                pending,
                at: now,
                seq,
            },
        ) {
            displaced.push(old.pending);
        }
        // Answered entries leave records behind a long-running one; compact now and then.
        if self.order.len() > 2 * self.capacity {
            let entries = &self.entries;
            self.order
                .retain(|(id, seq)| entries.get(id).is_some_and(|e| e.seq == *seq));
        }
        displaced
    }

    pub fn peek(&self, id: &str) -> Option<&Pending> {
        self.entries.get(id).map(|e| &e.pending)
    }

    pub fn remove(&mut self, id: &str) -> Option<Pending> {
        self.entries.remove(id).map(|e| e.pending)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes and returns every entry (the upstream went away).
    pub fn drain(&mut self) -> Vec<(String, Pending)> {
        self.order.clear();
        self.entries.drain().map(|(k, e)| (k, e.pending)).collect()
    }

    fn expire(&mut self, now: Instant) -> Vec<Pending> {
        let mut out = Vec::new();
        while let Some((id, seq)) = self.order.front() {
            match self.entries.get(id) {
                Some(e) if e.seq == *seq => {
                    if now.duration_since(e.at) < self.ttl {
                        break;
                    }
                    let id = id.clone();
                    self.order.pop_front();
                    if let Some(e) = self.entries.remove(&id) {
                        out.push(e.pending);
                    }
                }
                // Already answered or replaced: drop the stale order record.
                _ => {
                    self.order.pop_front();
                }
            }
        }
        out
    }

    fn pop_oldest(&mut self) -> Option<Pending> {
        while let Some((id, seq)) = self.order.pop_front() {
            if self.entries.get(&id).is_some_and(|e| e.seq == seq) {
                return self.entries.remove(&id).map(|e| e.pending);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_bounded_and_entries_expire() {
        let t0 = Instant::now();
        let mut t = PendingTable::new(3, Duration::from_secs(10));
        for i in 0..3 {
            assert!(t.insert(i.to_string(), Pending::List, t0).is_empty());
        }
        let displaced = t.insert("3".into(), Pending::List, t0);
        assert_eq!(displaced.len(), 1);
        assert!(t.remove("0").is_none(), "the oldest was evicted");
        assert_eq!(t.len(), 3);
        let displaced = t.insert("4".into(), Pending::List, t0 + Duration::from_secs(11));
        assert_eq!(displaced.len(), 3, "everything older than the ttl expired");
        assert_eq!(t.len(), 1);
        // Answered entries leave no trace in the order queue either.
        for i in 0..1000 {
            t.insert(format!("x{i}"), Pending::List, t0 + Duration::from_secs(11));
            t.remove(&format!("x{i}"));
        }
        assert!(t.order.len() <= 7, "order queue grew to {}", t.order.len());
    }

    #[test]
    fn a_reused_id_displaces_the_old_entry() {
        let now = Instant::now();
        let mut t = PendingTable::new(10, Duration::from_secs(10));
        t.insert("1".into(), Pending::List, now);
        assert_eq!(t.insert("1".into(), Pending::List, now).len(), 1);
        assert_eq!(t.len(), 1);
    }
}
