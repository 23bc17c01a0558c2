//! A Redis store: counters shared by every intercept instance that points at one Redis
//! (or Redis Cluster), for deployments of more than one machine.
//!
//! Each operation is one server-side Lua script, so reserving all of a call's counters is
//! atomic across instances, and windows start by the Redis server's clock (`TIME`), so
//! instances whose clocks disagree still agree on them. Keys live under one hash tag per
//! deployment (`{<prefix>}`): every key a script touches is in one cluster slot.
//!
//! Nothing is pending in Redis between a reservation and its outcome: the reservation is
//! the count. Commit therefore has nothing to do and costs no round trip; rollback is a
//! script that gives the amount back in the window it was taken from.

mod bridge;
mod connection;
pub mod dsn;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::{Script, Value as RedisValue};

use super::{
    CounterRequest, Millis, Reservation, Reserved, ReservedEntry, Store, StoreError, Window,
};
use bridge::{Bridge, Failure};
use connection::Connection;

/// Longest wait for any one command (including reconnecting), after which the store is
/// reported unavailable and the fail mode decides.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// The hash tag of keys when no `--state-prefix` is given.
pub const DEFAULT_PREFIX: &str = "intercept";

/// Lua numbers are doubles: every whole number up to 2^53 is exact.
const MAX_EXACT: u64 = 1 << 53;

static RESERVE: LazyLock<Arc<Script>> =
    LazyLock::new(|| Arc::new(Script::new(include_str!("reserve.lua"))));
static ROLLBACK: LazyLock<Arc<Script>> =
    LazyLock::new(|| Arc::new(Script::new(include_str!("rollback.lua"))));
static READ: LazyLock<Arc<Script>> =
    LazyLock::new(|| Arc::new(Script::new(include_str!("read.lua"))));
static RECORD: LazyLock<Arc<Script>> =
    LazyLock::new(|| Arc::new(Script::new(include_str!("record.lua"))));

/// Settings beyond the DSN.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Isolates deployments sharing one Redis; it becomes the keys' hash tag.
    pub prefix: String,
    pub timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: DEFAULT_PREFIX.to_string(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

#[derive(Debug)]
pub struct RedisStore {
    conn: Connection,
    /// Declared after `conn`, so the connection is dropped while its runtime still runs.
    bridge: Bridge,
    /// `--state-prefix`: the hash tag of every key.
    prefix: String,
    /// `{<prefix>}:`, the start of every key.
    key_prefix: String,
    display: String,
    secret: Option<String>,
}

impl RedisStore {
    /// Prepares a store for the server `dsn` names. It does not wait for the server: a
    /// server that is down now is reported by the first command (see [`Store::check`]),
    /// and the connection is made (and remade) whenever it can be.
    pub fn open(dsn_text: &str, options: &RedisOptions) -> Result<Self, StoreError> {
        let prefix = &options.prefix;
        if prefix.is_empty() || prefix.contains(['{', '}']) {
            return Err(StoreError::InvalidPrefix(prefix.clone()));
        }
        // TLS (rediss://) uses rustls with the same provider as the HTTP client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dsn = dsn::parse(dsn_text)?;
        let bridge =
            Bridge::new(options.timeout).map_err(|e| StoreError::Runtime(e.to_string()))?;
        let conn = if dsn.cluster {
            Connection::cluster(dsn.info.clone(), options.timeout)
        } else {
            Connection::single(dsn.info.clone(), options.timeout, bridge.handle())
        }
        .map_err(|e| {
            StoreError::InvalidDsn(dsn::scrub(&e.to_string(), dsn.secret.as_deref(), dsn_text))
        })?;
        Ok(RedisStore {
            conn,
            bridge,
            key_prefix: format!("{{{prefix}}}:"),
            prefix: prefix.clone(),
            display: dsn.display,
            secret: dsn.secret,
        })
    }

    /// The key of a counter's hash (`{prefix}:c:<counter>`).
    pub fn counter_key(&self, key: &str) -> String {
        format!("{}c:{key}", self.key_prefix)
    }

    /// The key of a counter's rolling log (`{prefix}:l:<counter>`).
    pub fn log_key(&self, key: &str) -> String {
        format!("{}l:{key}", self.key_prefix)
    }

    /// The key of a record (`{prefix}:r:<key>`).
    pub fn record_key(&self, key: &str) -> String {
        format!("{}r:{key}", self.key_prefix)
    }

    fn record(&self, op: &str, key: &str, args: &[String]) -> Result<RedisValue, StoreError> {
        let mut all = vec![op.to_string()];
        all.extend_from_slice(args);
        self.invoke(&RECORD, vec![self.record_key(key)], all)
    }

    fn record_text(&self, value: RedisValue) -> Result<Option<String>, StoreError> {
        match value {
            RedisValue::Nil => Ok(None),
            RedisValue::BulkString(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| self.bad_reply("a record is not UTF-8")),
            _ => Err(self.bad_reply("the record script answered in an unknown shape")),
        }
    }

    /// Appends what every script takes for one counter: its two keys, and the window's
    /// kind and length.
    fn push_counter(
        &self,
        keys: &mut Vec<String>,
        args: &mut Vec<String>,
        key: &str,
        window: Window,
    ) {
        keys.push(self.counter_key(key));
        keys.push(self.log_key(key));
        args.push(kind(window).to_string());
        args.push(window.millis().to_string());
    }

    fn invoke<T>(
        &self,
        script: &Arc<Script>,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T, StoreError>
    where
        T: redis::FromRedisValue + Send + 'static,
    {
        let script = script.clone();
        let conn = self.conn.clone();
        let outcome = self.bridge.run(async move {
            let mut call = script.prepare_invoke();
            for k in &keys {
                call.key(k);
            }
            for a in &args {
                call.arg(a);
            }
            conn.invoke::<T>(&call).await
        });
        outcome.map_err(|f| self.failure(f))
    }

    fn failure(&self, f: Failure<redis::RedisError>) -> StoreError {
        match f {
            Failure::TimedOut => StoreError::RedisTimeout {
                store: self.display.clone(),
                ms: self.bridge.timeout().as_millis() as u64,
            },
            Failure::Command(e) => StoreError::RedisUnavailable {
                store: self.display.clone(),
                reason: dsn::hide_secret(&e.to_string(), self.secret.as_deref()),
            },
        }
    }

    fn bad_reply(&self, what: &str) -> StoreError {
        StoreError::RedisReply {
            store: self.display.clone(),
            reason: what.to_string(),
        }
    }
}

fn kind(window: Window) -> &'static str {
    match window {
        Window::Calendar(_) => "c",
        Window::Rolling { .. } => "r",
    }
}

impl Store for RedisStore {
    fn reserve(
        &self,
        requests: &[CounterRequest<'_>],
        _now: Millis,
    ) -> Result<Reserved, StoreError> {
        // `_now` is this process's clock; the script uses the server's instead.
        let mut keys = Vec::with_capacity(requests.len() * 2);
        let mut args = Vec::with_capacity(requests.len() * 4);
        for r in requests {
            self.push_counter(&mut keys, &mut args, r.key, r.window);
            args.push(r.limit.min(MAX_EXACT).to_string());
            args.push(r.amount.to_string());
        }
        let reply: Vec<i64> = self.invoke(&RESERVE, keys, args)?;
        match reply.as_slice() {
            [1, _now, rest @ ..] if rest.len() == requests.len() * 2 => {
                let entries = requests
                    .iter()
                    .zip(rest.chunks_exact(2))
                    .map(|(r, pair)| ReservedEntry {
                        key: r.key.to_string(),
                        window: r.window,
                        window_start: pair[0],
                        amount: r.amount,
                        log_id: (pair[1] != 0).then_some(pair[1]),
                    })
                    .collect();
                Ok(Reserved::Granted(Reservation { entries }))
            }
            [0, index, retry] if (*index as usize) < requests.len() => Ok(Reserved::Denied {
                index: *index as usize,
                retry_after: u64::try_from(*retry).ok(),
            }),
            _ => Err(self.bad_reply("the reserve script answered in an unknown shape")),
        }
    }

    fn rollback(&self, reservation: &Reservation) -> Result<(), StoreError> {
        if reservation.entries.is_empty() {
            return Ok(());
        }
        let mut keys = Vec::with_capacity(reservation.entries.len() * 2);
        let mut args = Vec::with_capacity(reservation.entries.len() * 5);
        for e in &reservation.entries {
            self.push_counter(&mut keys, &mut args, &e.key, e.window);
            args.push(e.window_start.to_string());
            args.push(e.amount.to_string());
            args.push(e.log_id.unwrap_or(0).to_string());
        }
        let _: RedisValue = self.invoke(&ROLLBACK, keys, args)?;
        Ok(())
    }

    fn read(&self, key: &str, window: Window, _now: Millis) -> Result<u64, StoreError> {
        let (mut keys, mut args) = (Vec::with_capacity(2), Vec::with_capacity(2));
        self.push_counter(&mut keys, &mut args, key, window);
        let value: i64 = self.invoke(&READ, keys, args)?;
        Ok(value.max(0) as u64)
    }

    fn put_record(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        _now: Millis,
    ) -> Result<(), StoreError> {
        let ttl = super::ttl_millis(ttl).to_string();
        self.record("put", key, &[value.to_string(), ttl])?;
        Ok(())
    }

    fn get_record(&self, key: &str, _now: Millis) -> Result<Option<String>, StoreError> {
        let value = self.record("get", key, &[])?;
        self.record_text(value)
    }

    fn take_record(&self, key: &str, _now: Millis) -> Result<Option<String>, StoreError> {
        let value = self.record("take", key, &[])?;
        self.record_text(value)
    }

    fn touch_record(&self, key: &str, ttl: Duration, _now: Millis) -> Result<bool, StoreError> {
        let ttl = super::ttl_millis(ttl).to_string();
        match self.record("touch", key, &[ttl])? {
            RedisValue::Int(n) => Ok(n == 1),
            _ => Err(self.bad_reply("the record script answered in an unknown shape")),
        }
    }

    fn delete_record(&self, key: &str) -> Result<(), StoreError> {
        self.record("delete", key, &[])?;
        Ok(())
    }

    fn check(&self) -> Result<(), StoreError> {
        let conn = self.conn.clone();
        let outcome = self.bridge.run(async move { conn.ping().await });
        outcome.map(|_| ()).map_err(|f| self.failure(f))
    }

    fn describe(&self) -> String {
        if self.prefix == DEFAULT_PREFIX {
            self.display.clone()
        } else {
            format!("{} (prefix {})", self.display, self.prefix)
        }
    }
}
