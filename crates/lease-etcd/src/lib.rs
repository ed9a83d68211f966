//! A [`CasStore`] over etcd v3 for weft leases: the reference backend.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::{sync::Arc, time::Duration};
//! use weft_lease::{Lease, LeaseConfig};
//! use weft_lease_etcd::EtcdStore;
//!
//! let store = Arc::new(EtcdStore::connect(&["http://127.0.0.1:2379"], "myapp/").await?);
//! let lease = Lease::acquire(store, "shard-7/owner", b"host-a".to_vec(),
//!     LeaseConfig::new(Duration::from_secs(3)), Duration::from_secs(10)).await?;
//! # let _ = lease; Ok(()) }
//! ```
//!
//! # How
//!
//! - A key's version is its `mod_revision`, and its creation version its
//!   `create_revision`: etcd's store-wide revision, from the consensus log,
//!   so versions strictly increase across writes, deletes and expiry, and
//!   survive restarts of the cluster.
//! - Create is a transaction guarded on `create_revision == 0`; swap and
//!   delete are guarded on `mod_revision`; each write attaches the key to a
//!   fresh etcd lease of the TTL. A refresh sends one keep-alive for the
//!   key's lease and then checks that the key still has that lease and
//!   version.
//! - TTLs are whole seconds, at least the server's minimum
//!   (`ceil(1.5 × election timeout)`: 2 s by default). A TTL etcd cannot
//!   honour is rejected ([`StoreError::BadTtl`]), never rounded.
//! - Watch uses etcd's watch, started at the revision the key was read at,
//!   so no change is missed; etcd reports an expiry as a deletion.
//! - With several endpoints the store keeps one client per member and
//!   sends to the member that answered last; a request that fails to reach
//!   its member (and any failed read) moves on to the next member at once,
//!   so a dead member is not tried again and again (etcd-client's own
//!   balanced channel keeps routing a share of requests to it). A write
//!   that timed out is reported as [`StoreError::Indeterminate`] and the
//!   lease layer resolves it by reading.
//! - Every key lives under the store's prefix; the store never reads or
//!   writes outside it.
//!
//! etcd keeps a lease alive *longer* than its TTL when its leader changes
//! (the new leader restarts every countdown): failover then takes up to a
//! TTL more, and a holder never loses its lease early.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, KeyValue, PutOptions,
    SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use futures::stream::BoxStream;
use weft_lease::{CasStore, Entry, Limits, StoreError, Swap, Version, WatchEvent};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Attempts for a request that could not connect.
const CONNECT_ATTEMPTS: usize = 4;

/// A [`CasStore`] over an etcd cluster.
#[derive(Clone)]
pub struct EtcdStore {
    /// One client per endpoint: the store chooses the member, so that a dead
    /// one is left at once instead of being tried again and again.
    clients: Arc<[Client]>,
    /// The member that answered last.
    current: Arc<AtomicUsize>,
    endpoints: String,
    prefix: String,
    limits: Limits,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to the cluster at `endpoints` (`http://host:port`), keeping
    /// every key under `prefix`, with etcd's default minimum TTL of 2 s.
    ///
    /// # Errors
    ///
    /// [`StoreError::Other`] naming a malformed endpoint, and
    /// [`StoreError::Unavailable`] naming the endpoints if none answers
    /// within a bounded wait.
    pub async fn connect(endpoints: &[&str], prefix: &str) -> Result<Self, StoreError> {
        EtcdStore::connect_with_min_ttl(endpoints, prefix, Duration::from_secs(2)).await
    }

    /// As [`connect`](EtcdStore::connect), for a cluster whose minimum TTL
    /// differs (`ceil(1.5 × --election-timeout)`, in whole seconds).
    ///
    /// # Errors
    ///
    /// As [`connect`](EtcdStore::connect).
    pub async fn connect_with_min_ttl(
        endpoints: &[&str],
        prefix: &str,
        min_ttl: Duration,
    ) -> Result<Self, StoreError> {
        let named = endpoints.join(",");
        if endpoints.is_empty() {
            return Err(StoreError::Other {
                store: named,
                reason: "no endpoints given".into(),
            });
        }
        for e in endpoints {
            let ok = (e.starts_with("http://") || e.starts_with("https://"))
                && e.split("://").nth(1).is_some_and(|rest| {
                    rest.rsplit_once(':')
                        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
                });
            if !ok {
                return Err(StoreError::Other {
                    store: named,
                    reason: format!("malformed endpoint {e:?}: expected http://host:port"),
                });
            }
        }
        let options = ConnectOptions::new()
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(CONNECT_TIMEOUT);
        let unavailable = |reason: String| StoreError::Unavailable {
            store: named.clone(),
            reason,
        };
        let mut clients = Vec::with_capacity(endpoints.len());
        for e in endpoints {
            let client = tokio::time::timeout(
                CONNECT_TIMEOUT * 4,
                Client::connect([e], Some(options.clone())),
            )
            .await
            .map_err(|_| {
                unavailable(format!(
                    "{e} did not answer within {:?}",
                    CONNECT_TIMEOUT * 4
                ))
            })?
            .map_err(|err| unavailable(format!("{e}: {err}")))?;
            clients.push(client);
        }
        let store = EtcdStore {
            clients: clients.into(),
            current: Arc::new(AtomicUsize::new(0)),
            endpoints: named.clone(),
            prefix: prefix.to_string(),
            limits: Limits {
                ttl_granularity: Duration::from_secs(1),
                min_ttl,
                max_ttl: Duration::from_secs(9_000_000_000),
                max_key_len: 64 * 1024,
                max_value_len: 1 << 20,
            },
        };
        // Make sure some member answers before handing the store out.
        store.get_raw(&store.full("")).await?;
        Ok(store)
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn error(&self, e: &etcd_client::Error) -> StoreError {
        StoreError::Unavailable {
            store: self.endpoints.clone(),
            reason: e.to_string(),
        }
    }

    /// Whether the request never reached a server (so retrying is safe).
    fn not_sent(e: &etcd_client::Error) -> bool {
        match e {
            etcd_client::Error::GRpcStatus(s) => {
                s.code() == tonic::Code::Unavailable
                    && (s.message().contains("connect") || s.message().contains("refused"))
            }
            etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
            _ => false,
        }
    }

    /// The client of the member that answered last.
    fn client(&self) -> Client {
        self.clients[self.current.load(Ordering::Relaxed) % self.clients.len()].clone()
    }

    /// Runs `op` on the member that answered last and, while a request
    /// fails without reaching its member (or, for a read, fails at all),
    /// on the next ones.
    async fn on_members<T, F, Fut>(&self, read: bool, mut op: F) -> Result<T, etcd_client::Error>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let start = self.current.load(Ordering::Relaxed);
        let tries = self.clients.len().max(CONNECT_ATTEMPTS);
        let mut last = None;
        for i in 0..tries {
            let idx = (start + i) % self.clients.len();
            match op(self.clients[idx].clone()).await {
                Ok(v) => {
                    self.current.store(idx, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(e) if read || EtcdStore::not_sent(&e) => last = Some(e),
                Err(e) => {
                    // Next time, start with another member.
                    self.current.store(idx + 1, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        self.current.store(start + 1, Ordering::Relaxed);
        // invariant: the loop ran at least once and only continues on error.
        Err(last.unwrap_or_else(|| etcd_client::Error::InvalidArgs("no attempt".into())))
    }

    async fn get_raw(&self, full: &str) -> Result<(Option<KeyValue>, i64), StoreError> {
        let key = full.to_string();
        let mut resp = self
            .on_members(true, |mut c| {
                let key = key.clone();
                async move { c.get(key, None).await }
            })
            .await
            .map_err(|e| self.error(&e))?;
        let revision = resp.header().map_or(0, |h| h.revision());
        Ok((resp.take_kvs().into_iter().next(), revision))
    }

    /// A write's failure: unknown outcome unless it never left.
    fn write_error(&self, key: &str, e: &etcd_client::Error) -> StoreError {
        if EtcdStore::not_sent(e) {
            return self.error(e);
        }
        match e {
            etcd_client::Error::GRpcStatus(s) if s.code() == tonic::Code::InvalidArgument => {
                StoreError::Other {
                    store: self.endpoints.clone(),
                    reason: s.message().to_string(),
                }
            }
            _ => StoreError::Indeterminate {
                store: self.endpoints.clone(),
                key: key.to_string(),
                reason: e.to_string(),
            },
        }
    }

    async fn grant(&self, key: &str, ttl: Duration) -> Result<i64, StoreError> {
        let secs = ttl.as_secs() as i64;
        let resp = self
            .on_members(
                false,
                |mut c| async move { c.lease_grant(secs, None).await },
            )
            .await
            .map_err(|e| self.write_error(key, &e))?;
        Ok(resp.id())
    }

    async fn revoke(&self, lease: i64) {
        let _ = self.client().lease_revoke(lease).await;
    }

    /// Writes `value` under a fresh etcd lease of `ttl` if `guard` (built
    /// on the full key) holds. The lease is revoked when the write surely
    /// did not apply; after an unknown outcome it is kept, since the key may
    /// hold it.
    async fn put_if(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        guard: impl FnOnce(String) -> Compare,
    ) -> Result<Swap, StoreError> {
        self.limits.check(key, Some(&value), Some(ttl))?;
        let lease = self.grant(key, ttl).await?;
        let full = self.full(key);
        let put = TxnOp::put(
            full.clone(),
            value,
            Some(PutOptions::new().with_lease(lease)),
        );
        let result = self.txn(key, guard(full), put).await;
        if !matches!(
            result,
            Ok(Swap::Done { .. }) | Err(StoreError::Indeterminate { .. })
        ) {
            self.revoke(lease).await;
        }
        result
    }

    /// Runs a guarded transaction: `then` if `cmp` holds, else read the key.
    async fn txn(&self, key: &str, cmp: Compare, then: TxnOp) -> Result<Swap, StoreError> {
        let full = self.full(key);
        let txn = Txn::new()
            .when([cmp])
            .and_then([then])
            .or_else([TxnOp::get(full, None)]);
        // A transaction is a write: retried only where it never left.
        let resp = self
            .on_members(false, |mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await
            .map_err(|e| self.write_error(key, &e))?;
        if resp.succeeded() {
            let revision = resp.header().map_or(0, |h| h.revision());
            return Ok(Swap::Done {
                version: Version(revision as u64),
            });
        }
        let current = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(mut g) => g.take_kvs().into_iter().next().map(entry),
            _ => None,
        });
        Ok(Swap::Conflict { current })
    }
}

fn entry(kv: KeyValue) -> Entry {
    Entry {
        version: Version(kv.mod_revision() as u64),
        created: Version(kv.create_revision() as u64),
        value: kv.value().to_vec(),
    }
}

#[async_trait::async_trait]
impl CasStore for EtcdStore {
    fn limits(&self) -> Limits {
        self.limits
    }

    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.limits.check(key, None, None)?;
        Ok(self.get_raw(&self.full(key)).await?.0.map(entry))
    }

    async fn create(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<Swap, StoreError> {
        self.put_if(key, value, ttl, |full| {
            Compare::create_revision(full, CompareOp::Equal, 0)
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Version,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.put_if(key, value, ttl, |full| {
            Compare::mod_revision(full, CompareOp::Equal, expected.0 as i64)
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Version) -> Result<Swap, StoreError> {
        self.limits.check(key, None, None)?;
        let full = self.full(key);
        self.txn(
            key,
            Compare::mod_revision(full.clone(), CompareOp::Equal, expected.0 as i64),
            TxnOp::delete(full, None),
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
        let full = self.full(key);
        let (kv, _) = self.get_raw(&full).await?;
        let Some(kv) = kv else {
            return Ok(Swap::Conflict { current: None });
        };
        if kv.mod_revision() as u64 != expected.0 {
            return Ok(Swap::Conflict {
                current: Some(entry(kv)),
            });
        }
        let lease = kv.lease();
        // One keep-alive resets the lease to its granted TTL (the TTL the
        // key was written with).
        let alive = self
            .on_members(false, |mut c| async move {
                let (mut keeper, mut stream) = c.lease_keep_alive(lease).await?;
                keeper.keep_alive().await?;
                stream.message().await
            })
            .await
            .map_err(|e| self.write_error(key, &e))?;
        if alive.is_none_or(|r| r.ttl() <= 0) {
            return Ok(Swap::Conflict { current: None });
        }
        // The keep-alive counts only if the key still has that lease and
        // version now: then it expires no earlier than a TTL after the
        // keep-alive was sent.
        let (now, _) = self.get_raw(&full).await?;
        match now {
            Some(kv) if kv.mod_revision() as u64 == expected.0 && kv.lease() == lease => {
                Ok(Swap::Done { version: expected })
            }
            other => Ok(Swap::Conflict {
                current: other.map(entry),
            }),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, StoreError> {
        let full = self.full(prefix);
        let strip = self.full("");
        let mut resp = self
            .on_members(true, |mut c| {
                let full = full.clone();
                async move {
                    c.get(
                        full,
                        Some(
                            GetOptions::new()
                                .with_prefix()
                                .with_sort(SortTarget::Create, SortOrder::Ascend),
                        ),
                    )
                    .await
                }
            })
            .await
            .map_err(|e| self.error(&e))?;
        Ok(resp
            .take_kvs()
            .into_iter()
            .filter_map(|kv| {
                let key = std::str::from_utf8(kv.key())
                    .ok()?
                    .strip_prefix(&strip)?
                    .to_string();
                Some((key, entry(kv)))
            })
            .collect())
    }

    fn watch(&self, key: &str) -> Option<BoxStream<'static, WatchEvent>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let store = self.clone();
        let full = self.full(key);
        // Read the key and watch from the revision read, so no change after
        // this call is missed; a key already gone reads as a deletion.
        let task = tokio::spawn(async move {
            let Ok((kv, revision)) = store.get_raw(&full).await else {
                return;
            };
            if kv.is_none()
                && tx
                    .send(WatchEvent::Deleted {
                        version: Version(revision as u64),
                    })
                    .is_err()
            {
                return;
            }
            let mut c = store.client();
            let options = WatchOptions::new().with_start_revision(revision + 1);
            let Ok(mut stream) = c.watch(full, Some(options)).await else {
                return;
            };
            while let Ok(Some(resp)) = stream.message().await {
                for e in resp.events() {
                    let Some(kv) = e.kv() else { continue };
                    let event = match e.event_type() {
                        EventType::Put => WatchEvent::Put(entry(kv.clone())),
                        EventType::Delete => WatchEvent::Deleted {
                            version: Version(kv.mod_revision() as u64),
                        },
                    };
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        let guard = AbortOnDrop(task);
        Some(Box::pin(futures::stream::unfold(
            (rx, guard),
            |(mut rx, guard)| async move { rx.recv().await.map(|e| (e, (rx, guard))) },
        )))
    }
}

/// Stops the watch's task when the stream is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
