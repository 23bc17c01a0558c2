//! Reservations of calls the server answered with `input_required`, parked until the
//! client retries the same call (2026-07-28 revision) so that the retry is counted once.
//! The retry comes with a new id, so the call is known by its tool and arguments.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

use crate::state::Reservation;

/// How many calls may await a retry at once, in memory.
const CAPACITY: usize = 1_000;

/// Where parked reservations wait for their retry.
pub trait RetryParking: Send + Sync + Debug {
    /// Identifies a call across its retry: a keyed hash of the tool and its arguments'
    /// canonical text (key order kept, as they are forwarded), not a copy of them.
    fn key(&self, tool: &str, args_text: &[u8]) -> u64;
    /// Keeps the reservation of the call `key` for its retry.
    fn park(&self, key: u64, reservation: Reservation);
    /// The reservation parked for the call `key`, taken out.
    fn take(&self, key: u64) -> Option<Reservation>;
}

/// Parking in this process's memory, bounded: when full, the oldest retries are
/// forgotten all at once (their reservations stay counted).
#[derive(Debug, Default)]
pub struct MemoryParking {
    parked: Mutex<HashMap<u64, Reservation>>,
    /// Keys the hashes per process, so a client cannot craft a collision.
    hasher: foldhash::quality::RandomState,
}

impl MemoryParking {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Reservation>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RetryParking for MemoryParking {
    fn key(&self, tool: &str, args_text: &[u8]) -> u64 {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = self.hasher.build_hasher();
        tool.hash(&mut h);
        h.write(args_text);
        h.finish()
    }

    fn park(&self, key: u64, reservation: Reservation) {
        let mut parked = self.lock();
        if parked.len() >= CAPACITY {
            parked.clear();
        }
        parked.insert(key, reservation);
    }

    fn take(&self, key: u64) -> Option<Reservation> {
        self.lock().remove(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_call_is_taken_once_by_its_tool_and_arguments() {
        let parking = MemoryParking::new();
        let key = parking.key("echo", br#"{"a":1}"#);
        assert_ne!(key, parking.key("echo", br#"{"a":2}"#));
        assert_ne!(key, parking.key("echoo", br#"{"a":1}"#));
        parking.park(
            key,
            Reservation {
                entries: Vec::new(),
            },
        );
        assert!(parking.take(key).is_some());
        assert!(parking.take(key).is_none());
    }
}
