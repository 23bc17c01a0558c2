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
    /// The forwarded `initialize`, whose answer fixes the protocol version.
    Initialize,
    /// Any other forwarded request: tracked so its id cannot be reused while it is pending
    /// (a response would then be matched to the wrong request), and so it is answered with
    /// an error if the server goes away.
    Other,
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
    /// What telemetry reports when it ends; None while telemetry is off.
    pub report: Option<Box<super::calls::CallReport>>,
}

#[derive(Debug)]
struct Entry {
    pending: Pending,
    at: Instant,
    seq: u64,
}

/// A request id as the pending table keys it: by value, as the client and the server mean
/// it, whatever text either writes (a JavaScript server answers a request of id `2.0`, `1e0`
/// or `-0` with `2`, `1` or `0`). A number with an integer value is kept as that integer
/// (the usual id), any other number by its double value (as JavaScript reads it), and a
/// string by its text.
///
/// An entry is made on the thread that reads the client and dropped on the thread that
/// reads the server, and memory freed on another thread than the one that allocated it
/// contends for the allocator's locks: with 64 calls in flight that was most of the proxy's
/// futex calls. So a pending call's key and tool name need no allocation of their own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdKey {
    Number(i64),
    /// Any other number.
    Float(FloatId),
    /// A string, as serde_json writes it (with its quotes).
    Text(Box<str>),
}

/// A number id that is not an integer of 64 bits: the same id as any other text of the same
/// double value. It keeps the text it was first written with, so the client is answered
/// with its own id.
#[derive(Debug, Clone)]
pub struct FloatId {
    value: f64,
    written: Box<str>,
}

impl PartialEq for FloatId {
    fn eq(&self, other: &Self) -> bool {
        self.value.to_bits() == other.value.to_bits()
    }
}

impl Eq for FloatId {}

impl std::hash::Hash for FloatId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.to_bits().hash(state);
    }
}

impl IdKey {
    pub fn from_value(id: &Value) -> IdKey {
        if let Some(n) = id.as_i64() {
            return IdKey::Number(n);
        }
        let written = serde_json::to_string(id).unwrap_or_default().into();
        match id.as_f64() {
            // Below 2^63 in magnitude, the cast is exact for a whole number.
            Some(f) if f.fract() == 0.0 && f.abs() < 9.223_372_036_854_776e18 => {
                IdKey::Number(f as i64)
            }
            Some(value) => IdKey::Float(FloatId { value, written }),
            None => IdKey::Text(written),
        }
    }

    /// From an id's JSON text (`7`, `2.0`, `"abc"`); an integer as serde_json writes it is
    /// read without parsing.
    pub fn from_text(text: &str) -> IdKey {
        if let Some(n) =
            json_text::written_integer(text.as_bytes()).and_then(|n| i64::try_from(n).ok())
        {
            return IdKey::Number(n);
        }
        match serde_json::from_str::<Value>(text) {
            Ok(v) => IdKey::from_value(&v),
            Err(_) => IdKey::Text(text.into()),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            IdKey::Number(n) => Value::from(*n),
            IdKey::Float(FloatId { written: t, .. }) | IdKey::Text(t) => {
                serde_json::from_str(t).unwrap_or(Value::Null)
            }
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

    /// Removes the entry a response answers, unless it is a `tools/list`, whose response
    /// must be read whole and filtered, or the `initialize`, whose response is read for the
    /// protocol version: one lookup, for the commonest responses.
    pub fn take_answered(&mut self, id: IdKey) -> Option<Pending> {
        match self.entries.entry(id) {
            Slot::Occupied(e)
                if !matches!(e.get().pending, Pending::List | Pending::Initialize) =>
            {
                Some(e.remove().pending)
            }
            _ => None,
        }
    }

    /// Whether a request with this id awaits its response.
    pub fn contains(&self, id: &IdKey) -> bool {
        self.entries.contains_key(id)
    }

    pub fn get(&self, id: &IdKey) -> Option<&Pending> {
        self.entries.get(id).map(|e| &e.pending)
    }

    pub fn remove(&mut self, id: &IdKey) -> Option<Pending> {
        self.entries.remove(id).map(|e| e.pending)
    }

    /// Like [`PendingTable::remove`], with the id as the request wrote it.
    pub fn remove_entry(&mut self, id: &IdKey) -> Option<(IdKey, Pending)> {
        self.entries.remove_entry(id).map(|(k, e)| (k, e.pending))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
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
            let key = IdKey::from_value(&value);
            assert_eq!(IdKey::from_value(&key.to_value()), key, "{text}");
        }
        assert_ne!(IdKey::from_text("7"), IdKey::from_text(r#""7""#));
    }

    /// However the server writes the id of a request, it is the request's id.
    #[test]
    fn ids_are_compared_by_value() {
        for (request, response) in [
            ("2.0", "2"),
            ("1e0", "1"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("7", "7.0"),
            ("1E2", "100"),
            ("1.5", "1.50"),
            ("1.5", "15e-1"),
            (r#""a""#, r#""\u0061""#),
        ] {
            assert_eq!(
                IdKey::from_text(request),
                IdKey::from_text(response),
                "{request} and {response}"
            );
            let value: Value = serde_json::from_str(request).unwrap();
            assert_eq!(IdKey::from_value(&value), IdKey::from_text(response));
        }
        // The first text of an id is the one the client is answered with.
        let mut t = PendingTable::new(10, Duration::from_secs(10));
        let now = Instant::now();
        t.insert(IdKey::from_text("18446744073709551615"), Pending::List, now);
        t.insert(IdKey::from_text("1.5"), Pending::List, now);
        let (key, _) = t
            .remove_entry(&IdKey::from_text("1.8446744073709552e19"))
            .unwrap();
        assert_eq!(key.to_value().to_string(), "18446744073709551615");
        let (key, _) = t.remove_entry(&IdKey::from_text("15e-1")).unwrap();
        assert_eq!(key.to_value().to_string(), "1.5");
        for (a, b) in [("7", r#""7""#), ("1.5", "2"), ("0", "null"), ("07", "7")] {
            assert_ne!(IdKey::from_text(a), IdKey::from_text(b), "{a} and {b}");
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
