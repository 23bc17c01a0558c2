//! Requests the proxy answered itself (timed out, failed, the server gone), so that each
//! request gets exactly one answer: a server's late answer to one of them is dropped, and
//! a second failure report for it is not answered again. A new request may not take a
//! remembered id (MCP forbids reusing one, and the proxy refuses it), so a remembered id
//! never hides a new request's answer.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::pending::IdKey;

/// How many ids are remembered; the oldest are forgotten first.
const CAPACITY: usize = 4096;

#[derive(Debug, Default)]
pub struct AnsweredByProxy {
    /// Whether any id is remembered, read without the lock on every server message.
    any: AtomicBool,
    ids: Mutex<Ids>,
}

#[derive(Debug, Default)]
struct Ids {
    set: HashSet<IdKey>,
    order: VecDeque<IdKey>,
}

impl AnsweredByProxy {
    pub fn remember(&self, id: IdKey) {
        let mut ids = self.lock();
        if ids.set.insert(id.clone()) {
            ids.order.push_back(id);
            if ids.order.len() > CAPACITY
                && let Some(old) = ids.order.pop_front()
            {
                ids.set.remove(&old);
            }
        }
        self.any.store(true, Ordering::Release);
    }

    pub fn contains(&self, id: &IdKey) -> bool {
        self.any.load(Ordering::Acquire) && self.lock().set.contains(id)
    }

    /// Whether nothing is remembered (the common case: one atomic read).
    pub fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ids> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_a_bounded_number_of_ids() {
        let answered = AnsweredByProxy::default();
        assert!(answered.is_empty());
        answered.remember(IdKey::Number(0));
        assert!(answered.contains(&IdKey::Number(0)));
        assert!(!answered.contains(&IdKey::Number(1)));
        for i in 1..=CAPACITY as i64 {
            answered.remember(IdKey::Number(i));
        }
        assert!(!answered.contains(&IdKey::Number(0)), "the oldest went");
        assert!(answered.contains(&IdKey::Number(CAPACITY as i64)));
        assert_eq!(answered.lock().set.len(), CAPACITY);
    }
}
