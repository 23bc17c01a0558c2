//! An in-process store: fastest, shared by the threads of one process, gone at exit.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{
    CounterRequest, Millis, Reservation, Reserved, ReservedEntry, Store, StoreError, Window,
    rolling_retry, seconds_until, ttl_millis,
};

/// Expired counters are swept after this many reservations, so keys of ended sessions
/// do not pile up in a long-running process.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    counters: HashMap<String, Slot>,
    /// Records and when each expires.
    records: HashMap<String, (String, Millis)>,
    next_log_id: i64,
    reserves: u64,
}

#[derive(Debug)]
enum Slot {
    Calendar {
        window_ms: Millis,
        start: Millis,
        value: u64,
    },
    Rolling {
        window_ms: Millis,
        /// (time, amount, id), oldest first.
        log: VecDeque<(Millis, u64, i64)>,
        /// Sum of the amounts in `log`.
        total: u64,
    },
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Adds one request; `Err(retry_after)` if it would exceed its limit.
    fn add(&mut self, req: &CounterRequest<'_>, now: Millis) -> Result<ReservedEntry, Option<u64>> {
        let window_ms = req.window.millis();
        match req.window {
            Window::Calendar(unit) => {
                let start = Window::calendar_start(unit, now);
                let current = match self.counters.get(req.key) {
                    Some(Slot::Calendar {
                        window_ms: w,
                        start: s,
                        value,
                    }) if *w == window_ms && *s == start => *value,
                    _ => 0,
                };
                if current.saturating_add(req.amount) > req.limit {
                    let retry = (req.amount <= req.limit)
                        .then(|| seconds_until(now, start + window_ms).max(1));
                    return Err(retry);
                }
                let slot = Slot::Calendar {
                    window_ms,
                    start,
                    value: current + req.amount,
                };
                match self.counters.get_mut(req.key) {
                    Some(existing) => *existing = slot,
                    None => {
                        self.counters.insert(req.key.to_string(), slot);
                    }
                }
                Ok(ReservedEntry {
                    key: req.key.to_string(),
                    window: req.window,
                    window_start: start,
                    amount: req.amount,
                    log_id: None,
                })
            }
            Window::Rolling { .. } => {
                if !matches!(self.counters.get(req.key), Some(Slot::Rolling { window_ms: w, .. }) if *w == window_ms)
                {
                    self.counters.insert(
                        req.key.to_string(),
                        Slot::Rolling {
                            window_ms,
                            log: VecDeque::new(),
                            total: 0,
                        },
                    );
                }
                let Some(Slot::Rolling { log, total, .. }) = self.counters.get_mut(req.key) else {
                    unreachable!("inserted above");
                };
                while let Some(&(at, amount, _)) = log.front() {
                    if at > now - window_ms {
                        break;
                    }
                    *total -= amount;
                    log.pop_front();
                }
                if total.saturating_add(req.amount) > req.limit {
                    let entries: Vec<(Millis, u64)> =
                        log.iter().map(|(at, a, _)| (*at, *a)).collect();
                    return Err(rolling_retry(
                        &entries, req.amount, req.limit, window_ms, now,
                    ));
                }
                self.next_log_id += 1;
                let id = self.next_log_id;
                if req.amount > 0 {
                    log.push_back((now, req.amount, id));
                    *total += req.amount;
                }
                Ok(ReservedEntry {
                    key: req.key.to_string(),
                    window: req.window,
                    window_start: now,
                    amount: req.amount,
                    log_id: Some(id),
                })
            }
        }
    }

    fn give_back(&mut self, entry: &ReservedEntry) {
        match self.counters.get_mut(&entry.key) {
            Some(Slot::Calendar {
                window_ms,
                start,
                value,
            }) if *start == entry.window_start && *window_ms == entry.window.millis() => {
                *value = value.saturating_sub(entry.amount);
            }
            Some(Slot::Rolling { log, total, .. }) => {
                // Most rollbacks are of recent calls: search from the newest end.
                if let Some(pos) = log.iter().rposition(|(_, _, id)| Some(*id) == entry.log_id)
                    && let Some((_, amount, _)) = log.remove(pos)
                {
                    *total -= amount;
                }
            }
            _ => {}
        }
    }

    fn sweep(&mut self, now: Millis) {
        self.counters.retain(|_, slot| match slot {
            Slot::Calendar {
                window_ms, start, ..
            } => *start + *window_ms > now,
            Slot::Rolling { window_ms, log, .. } => {
                log.back().is_some_and(|(at, _, _)| *at + *window_ms > now)
            }
        });
        self.records.retain(|_, (_, expires)| *expires > now);
    }
}

impl Store for MemoryStore {
    fn reserve(
        &self,
        requests: &[CounterRequest<'_>],
        now: Millis,
    ) -> Result<Reserved, StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.reserves += 1;
        if inner.reserves.is_multiple_of(SWEEP_EVERY) {
            inner.sweep(now);
        }
        let mut entries = Vec::with_capacity(requests.len());
        for (index, req) in requests.iter().enumerate() {
            match inner.add(req, now) {
                Ok(entry) => entries.push(entry),
                Err(retry_after) => {
                    // All or none: undo what this call already added, under the same lock.
                    for e in &entries {
                        inner.give_back(e);
                    }
                    return Ok(Reserved::Denied { index, retry_after });
                }
            }
        }
        Ok(Reserved::Granted(Reservation { entries }))
    }

    fn rollback(&self, reservation: &Reservation) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for e in &reservation.entries {
            inner.give_back(e);
        }
        Ok(())
    }

    fn read(&self, key: &str, window: Window, now: Millis) -> Result<u64, StoreError> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let window_ms = window.millis();
        Ok(match (window, inner.counters.get(key)) {
            (
                Window::Calendar(unit),
                Some(Slot::Calendar {
                    window_ms: w,
                    start,
                    value,
                }),
            ) if *w == window_ms && *start == Window::calendar_start(unit, now) => *value,
            (
                Window::Rolling { .. },
                Some(Slot::Rolling {
                    window_ms: w, log, ..
                }),
            ) if *w == window_ms => log
                .iter()
                .filter(|(at, _, _)| *at > now - window_ms)
                .map(|(_, a, _)| a)
                .sum(),
            _ => 0,
        })
    }

    fn put_record(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        now: Millis,
    ) -> Result<(), StoreError> {
        let expires = now.saturating_add(ttl_millis(ttl));
        self.lock()
            .records
            .insert(key.to_string(), (value.to_string(), expires));
        Ok(())
    }

    fn get_record(&self, key: &str, now: Millis) -> Result<Option<String>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .records
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.clone()))
    }

    fn take_record(&self, key: &str, now: Millis) -> Result<Option<String>, StoreError> {
        let taken = self.lock().records.remove(key);
        Ok(taken
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value))
    }

    fn touch_record(&self, key: &str, ttl: Duration, now: Millis) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        match inner.records.get_mut(key) {
            Some((_, expires)) if *expires > now => {
                *expires = now.saturating_add(ttl_millis(ttl));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn delete_record(&self, key: &str) -> Result<(), StoreError> {
        self.lock().records.remove(key);
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }
}
