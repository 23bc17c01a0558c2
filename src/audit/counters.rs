//! Counter snapshots: the current value of every counter the policy declares, as this
//! instance's caller sees them, for a `counters` event.

use serde_json::{Value, json};

use crate::engine::Engine;
use crate::state::now_millis;

/// The fields of a `counters` event: one entry per counter, read from the store in its
/// current window (an expired window reads as zero). `None` when the policy has no counters.
pub fn counter_snapshot(
    engine: &Engine,
    identity: Option<&str>,
    session: Option<&str>,
) -> Option<Value> {
    let policy = engine.policy();
    if policy.counters.is_empty() {
        return None;
    }
    let now = now_millis();
    let counters: Vec<Value> = policy
        .counters
        .iter()
        .map(|spec| {
            let key = spec.key(identity, session);
            let (value, error) = match engine.store().read(&key, spec.window, now) {
                Ok(v) => (Some(v), None),
                Err(e) => (None, Some(e.to_string())),
            };
            json!({
                "tool": &*spec.owner,
                "counter": &*spec.name,
                "scope": spec.scope.as_str(),
                "window": spec.window.to_string(),
                "limit": spec.limit,
                "value": value,
                "error": error,
            })
        })
        .map(|mut v| {
            // Leave out what has no value, as everywhere in the log.
            if let Value::Object(m) = &mut v {
                m.retain(|_, x| !x.is_null());
            }
            v
        })
        .collect();
    Some(json!({ "counters": counters }))
}
