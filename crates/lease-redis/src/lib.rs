//! A [`CasStore`] over Redis for weft leases.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::{sync::Arc, time::Duration};
//! use weft_lease::{Lease, LeaseConfig};
//! use weft_lease_redis::RedisStore;
//!
//! let store = Arc::new(RedisStore::connect("redis://127.0.0.1:6379", "myapp/").await?);
//! let lease = Lease::builder(store, "shard-7/owner", LeaseConfig::new(Duration::from_secs(3)))
//!     .value(b"host-a")
//!     .acquire(Duration::from_secs(10))
//!     .await?;
//! # let _ = lease; Ok(()) }
//! ```
//!
//! # How
//!
//! Each operation is one Lua script, so it is atomic. A key `k` is a hash
//! at `<prefix>d:k` (value, version, creation version) with a millisecond
//! `PEXPIRE`; versions come from one counter at `<prefix>revision` that has
//! **no** TTL and is `INCR`ed inside the same script as the write (like
//! etcd's store-wide revision). So versions keep increasing after a lease
//! key expires, the version a holder got is a fencing token, and creation
//! versions order keys across the prefix (which election queues need).
//!
//! # What Redis does not guarantee
//!
//! - **Failover can lose a lock.** Redis replicates asynchronously: a
//!   primary that acknowledged a lease and then died before its replica
//!   copied it hands a promoted replica a world where the lease, and the
//!   counter's last increments, never happened. Two holders can then both
//!   believe they hold it, and tokens can repeat. Redlock (locks on a
//!   majority of independent Redis nodes) does not fix this: it still
//!   relies on timing, and still issues no fencing token the resource can
//!   check. When the lease guards data that must not be corrupted, use etcd
//!   (`weft-lease-etcd`), whose versions come from a consensus log.
//! - **Restarts without persistence reset versions.** With
//!   `--appendonly no --save ''`, a restarted Redis has lost every counter:
//!   versions start again at 1 and a fence that saw a higher token rejects
//!   every new holder until it is reset. With `--appendonly yes
//!   --appendfsync always`, counters survive a restart and versions keep
//!   increasing (tested).
//! - No watch: waiters poll with jitter (keyspace notifications need server
//!   configuration and are fire-and-forget).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script, Value};
use weft_core::Cause;
use weft_lease::{CasStore, Entry, Limits, StoreError, Swap, Version};

mod scripts;

use scripts::Scripts;

/// A [`CasStore`] over one Redis server.
///
/// Keys are kept under a prefix; the store never reads or writes outside
/// it. TTLs are whole milliseconds.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    url: String,
    prefix: String,
    scripts: Scripts,
    limits: Limits,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// How long to wait for a connection or an answer.
const TIMEOUT: Duration = Duration::from_secs(1);

/// A Redis client error kept as a store error's cause, classified by
/// weft-core (its `redis` feature).
fn redis_cause(e: &RedisError) -> Cause {
    Cause::new(e.clone())
}

impl RedisStore {
    /// [`connect`](RedisStore::connect), tried again while the store is
    /// unavailable (nothing listening yet, a server still starting) until
    /// `wait` has passed: see [`weft_lease::connect_within`].
    ///
    /// # Errors
    ///
    /// As [`connect`](RedisStore::connect), the last one at the deadline.
    ///
    /// # Cancel safety
    ///
    /// As [`connect`](RedisStore::connect).
    pub async fn connect_within(
        url: &str,
        prefix: &str,
        wait: Duration,
    ) -> Result<Self, StoreError> {
        weft_lease::connect_within(wait, || RedisStore::connect(url, prefix)).await
    }

    /// Connects to `url` (`redis://host:port[/db]`), keeping every key
    /// under `prefix`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Other`] naming the URL if it is malformed, and
    /// [`StoreError::Unavailable`] naming it if no server answers within a
    /// bounded wait (a few seconds).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: connecting changes nothing on the server, and a dropped
    /// connection attempt leaves nothing behind.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::Other {
            store: url.to_string(),
            reason: format!("malformed Redis URL: {e}"),
            cause: Some(redis_cause(&e)),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(2);
        let conn = tokio::time::timeout(
            TIMEOUT * 4,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| StoreError::Unavailable {
            store: url.to_string(),
            reason: format!("no answer within {:?}", TIMEOUT * 4),
            cause: None,
        })?
        .map_err(|e| StoreError::Unavailable {
            store: url.to_string(),
            reason: e.to_string(),
            cause: Some(redis_cause(&e)),
        })?;
        Ok(RedisStore {
            conn,
            url: url.to_string(),
            prefix: prefix.to_string(),
            scripts: Scripts::new(),
            limits: Limits {
                ttl_granularity: Duration::from_millis(1),
                min_ttl: Duration::from_millis(1),
                max_ttl: Duration::from_secs(10 * 365 * 24 * 3600),
                max_key_len: 64 * 1024,
                max_value_len: 16 << 20,
            },
        })
    }

    fn data_key(&self, key: &str) -> String {
        format!("{}d:{key}", self.prefix)
    }

    fn counter_key(&self) -> String {
        format!("{}revision", self.prefix)
    }

    /// A failure of a read: the store is unavailable.
    fn read_error(&self, e: &RedisError) -> StoreError {
        StoreError::Unavailable {
            store: self.url.clone(),
            reason: e.to_string(),
            cause: Some(redis_cause(e)),
        }
    }

    /// A failure of a write: if the request may have reached the server
    /// (a timeout, a dropped connection), its outcome is unknown.
    fn write_error(&self, key: &str, e: &RedisError) -> StoreError {
        if e.is_connection_refusal() {
            self.read_error(e)
        } else if e.is_timeout() || e.is_io_error() || e.is_connection_dropped() {
            StoreError::Indeterminate {
                store: self.url.clone(),
                key: key.to_string(),
                reason: e.to_string(),
                cause: Some(redis_cause(e)),
            }
        } else {
            StoreError::Other {
                store: self.url.clone(),
                reason: e.to_string(),
                cause: Some(redis_cause(e)),
            }
        }
    }

    fn bad_reply(&self, what: &str, v: &Value) -> StoreError {
        StoreError::Other {
            store: self.url.clone(),
            reason: format!("unexpected reply to {what}: {v:?}"),
            cause: None,
        }
    }

    fn ttl_ms(ttl: Duration) -> u64 {
        ttl.as_millis() as u64
    }

    /// Turns a script's reply into a [`Swap`].
    fn swap_reply(&self, what: &str, reply: Value) -> Result<Swap, StoreError> {
        let Value::Array(items) = &reply else {
            return Err(self.bad_reply(what, &reply));
        };
        match items.first().and_then(as_u64_signed) {
            Some(1) => {
                let version = items
                    .get(1)
                    .and_then(as_u64)
                    .ok_or_else(|| self.bad_reply(what, &reply))?;
                Ok(Swap::Done {
                    version: Version(version),
                })
            }
            Some(0) => Ok(Swap::Conflict {
                current: entry(&items[1..]),
            }),
            Some(-1) => Ok(Swap::Conflict { current: None }),
            _ => Err(self.bad_reply(what, &reply)),
        }
    }

    async fn run(
        &self,
        what: &str,
        key: &str,
        script: &Script,
        args: &[Vec<u8>],
    ) -> Result<Swap, StoreError> {
        let mut conn = self.conn.clone();
        let mut inv = script.prepare_invoke();
        inv.key(self.data_key(key)).key(self.counter_key());
        for a in args {
            inv.arg(a.as_slice());
        }
        let reply: Value = inv
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.write_error(key, &e))?;
        self.swap_reply(what, reply)
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn as_u64_signed(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

/// `[ver, cre, val]` to an entry (`None` if the key is absent).
fn entry(fields: &[Value]) -> Option<Entry> {
    let version = fields.first().and_then(as_u64)?;
    let created = fields.get(1).and_then(as_u64)?;
    let value = match fields.get(2)? {
        Value::BulkString(b) => b.clone(),
        _ => return None,
    };
    Some(Entry {
        value,
        version: Version(version),
        created: Version(created),
    })
}

/// Escapes glob characters for `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait::async_trait]
impl CasStore for RedisStore {
    fn limits(&self) -> Limits {
        self.limits
    }

    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.limits.check(key, None, None)?;
        let mut conn = self.conn.clone();
        let fields: Vec<Value> = redis::cmd("HMGET")
            .arg(self.data_key(key))
            .arg("ver")
            .arg("cre")
            .arg("val")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.read_error(&e))?;
        Ok(entry(&fields))
    }

    async fn create(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<Swap, StoreError> {
        self.limits.check(key, Some(&value), Some(ttl))?;
        let ttl = RedisStore::ttl_ms(ttl).to_string().into_bytes();
        self.run("create", key, &self.scripts.create, &[value, ttl])
            .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Version,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.limits.check(key, Some(&value), Some(ttl))?;
        let args = [
            expected.0.to_string().into_bytes(),
            value,
            RedisStore::ttl_ms(ttl).to_string().into_bytes(),
        ];
        self.run("swap", key, &self.scripts.swap, &args).await
    }

    async fn delete(&self, key: &str, expected: Version) -> Result<Swap, StoreError> {
        self.limits.check(key, None, None)?;
        self.run(
            "delete",
            key,
            &self.scripts.delete,
            &[expected.0.to_string().into_bytes()],
        )
        .await
    }

    async fn refresh(
        &self,
        key: &str,
        expected: Version,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.limits.check(key, None, Some(ttl))?;
        let args = [
            expected.0.to_string().into_bytes(),
            RedisStore::ttl_ms(ttl).to_string().into_bytes(),
        ];
        self.run("refresh", key, &self.scripts.refresh, &args).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, StoreError> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}*", glob_escape(&self.data_key(prefix)));
        let strip = self.data_key("");
        let mut cursor: u64 = 0;
        let mut keys: Vec<String> = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.read_error(&e))?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut found = Vec::new();
        for full in keys {
            let Some(key) = full.strip_prefix(&strip) else {
                continue;
            };
            if let Some(e) = self.get(key).await? {
                found.push((key.to_string(), e));
            }
        }
        found.sort_by_key(|(_, e)| e.created);
        Ok(found)
    }
}
