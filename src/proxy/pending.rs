//! Requests forwarded upstream and awaiting their response.
//!
//! The table is bounded and entries expire: a client that never gets (or never waits
//! for) a response cannot make a long session's memory grow. An entry pushed out or
//! expired keeps its reservation (the call was forwarded and may have run).

use std::collections::VecDeque;
use std::collections::hash_map::Entry as Slot;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::audit::Text;
use crate::json_text;
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
    /// Kept inline when short (see [`IdKey`]).
    pub tool: Text,
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

/// A request id as the pending table keys it: the id's JSON text, with a whole number (the
/// usual id) kept as a number.
///
/// An entry is made on the thread that reads the client and dropped on the thread that
/// reads the server, and memory freed on another thread than the one that allocated it
/// contends for the allocator's locks: with 64 calls in flight that was most of the proxy's
/// futex calls. So a pending call's key and tool name need no allocation of their own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdKey {
    Number(i64),
    Text(Box<str>),
}

impl IdKey {
    pub fn from_value(id: &Value) -> IdKey {
        match id.as_i64() {
            Some(n) => IdKey::Number(n),
            None => IdKey::Text(serde_json::to_string(id).unwrap_or_default().into()),
        }
    }

    /// From an id's JSON text as serde_json writes it (`7`, `"abc"`).
    pub fn from_text(text: &str) -> IdKey {
        match json_text::written_integer(text.as_bytes()).and_then(|n| i64::try_from(n).ok()) {
            Some(n) => IdKey::Number(n),
            None => IdKey::Text(text.into()),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            IdKey::Number(n) => Value::from(*n),
            IdKey::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        }
    }
}

/// Pending requests by id. The keys come from the client, so the hasher is seeded per
/// process (foldhash: several times faster than SipHash on short keys).
#[derive(Debug)]
pub struct PendingTable {
    entries: foldhash::HashMap<IdKey, Entry>,
    order: VecDeque<(IdKey, u64)>,
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
    pub fn insert(&mut self, id: IdKey, pending: Pending, now: Instant) -> Vec<Pending> {
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

    /// Removes the entry of a forwarded call (an entry of another kind stays), with one
    /// lookup: every response to a call comes this way.
    pub fn remove_call(&mut self, id: IdKey) -> Option<CallInfo> {
        match self.entries.entry(id) {
            Slot::Occupied(e) if matches!(e.get().pending, Pending::Call(_)) => {
                match e.remove().pending {
                    Pending::Call(info) => Some(info),
                    Pending::List => unreachable!("the guard checked it is a call"),
                }
            }
            _ => None,
        }
    }

    pub fn remove(&mut self, id: &IdKey) -> Option<Pending> {
        self.entries.remove(id).map(|e| e.pending)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes and returns every entry (the upstream went away).
    pub fn drain(&mut self) -> Vec<(IdKey, Pending)> {
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

    /// Removes and returns the entries made at or before `cutoff` (`--request-timeout`).
    pub fn take_older_than(&mut self, cutoff: Instant) -> Vec<(IdKey, Pending)> {
        let mut out = Vec::new();
        while let Some((id, seq)) = self.order.front() {
            match self.entries.get(id) {
                Some(e) if e.seq == *seq => {
                    if e.at > cutoff {
                        break;
                    }
                    let (id, _) = self.order.pop_front().expect("front exists");
                    if let Some(e) = self.entries.remove(&id) {
                        out.push((id, e.pending));
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_bounded_and_entries_expire() {
        let t0 = Instant::now();
        let mut t = PendingTable::new(3, Duration::from_secs(10));
        for i in 0..3 {
            assert!(t.insert(IdKey::Number(i), Pending::List, t0).is_empty());
        }
        let displaced = t.insert(IdKey::Number(3), Pending::List, t0);
        assert_eq!(displaced.len(), 1);
        assert!(
            t.remove(&IdKey::Number(0)).is_none(),
            "the oldest was evicted"
        );
        assert_eq!(t.len(), 3);
        let displaced = t.insert(
            IdKey::Number(4),
            Pending::List,
            t0 + Duration::from_secs(11),
        );
        assert_eq!(displaced.len(), 3, "everything older than the ttl expired");
        assert_eq!(t.len(), 1);
        // Answered entries leave no trace in the order queue either.
        for i in 0..1000 {
            let key = IdKey::from_text(&format!("\"x{i}\""));
            t.insert(key.clone(), Pending::List, t0 + Duration::from_secs(11));
            t.remove(&key);
        }
        assert!(t.order.len() <= 7, "order queue grew to {}", t.order.len());
    }

    /// An id read from a response's text finds the entry made from the request's parsed id.
    #[test]
    fn keys_from_text_and_from_values_agree() {
        let ids = [
            "0",
            "7",
            "-7",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "18446744073709551615",
            "1.5",
            "1e3",
            "-0.0",
            r#""7""#,
            r#""abc""#,
            "\"\"",
            "null",
        ];
        for text in ids {
            let value: Value = serde_json::from_str(text).unwrap();
            let written = serde_json::to_string(&value).unwrap();
            assert_eq!(
                IdKey::from_text(&written),
                IdKey::from_value(&value),
                "{text}"
            );
            assert_eq!(IdKey::from_value(&value).to_value(), value, "{text}");
        }
        assert_ne!(IdKey::from_text("7"), IdKey::from_text(r#""7""#));
        // Not how serde_json writes 7: never the key of 7.
        for other in ["07", "+7", "7.0", "-0"] {
            assert_ne!(IdKey::from_text(other), IdKey::Number(7), "{other}");
        }
    }

    #[test]
    fn entries_older_than_a_cutoff_are_taken_oldest_first() {
        let t0 = Instant::now();
        let mut t = PendingTable::new(10, Duration::from_secs(3600));
        for i in 0..4 {
            t.insert(
                IdKey::Number(i),
                Pending::List,
                t0 + Duration::from_secs(i as u64),
            );
        }
        t.remove(&IdKey::Number(0));
        let taken = t.take_older_than(t0 + Duration::from_secs(2));
        let ids: Vec<IdKey> = taken.into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [IdKey::Number(1), IdKey::Number(2)]);
        assert_eq!(t.len(), 1);
        assert!(t.take_older_than(t0 + Duration::from_secs(2)).is_empty());
    }

    #[test]
    fn a_reused_id_displaces_the_old_entry() {
        let now = Instant::now();
        let mut t = PendingTable::new(10, Duration::from_secs(10));
        t.insert(IdKey::from_text("1"), Pending::List, now);
        assert_eq!(t.insert(IdKey::Number(1), Pending::List, now).len(), 1);
        assert_eq!(t.len(), 1);
    }
}
