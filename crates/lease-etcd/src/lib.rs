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
//! - With several endpoints the store keeps one channel per member and
//!   sends to the member that answered last; a request that fails to reach
//!   its member (and any failed read) moves on to the next member at once,
//!   so a dead member is not tried again and again (a balanced channel
//!   would keep routing a share of requests to it). A write that timed out
//!   is reported as [`StoreError::Indeterminate`] and the lease layer
//!   resolves it by reading.
//! - The gRPC client is the crate's own: the few etcd calls it makes
//!   (range, txn, lease grant / revoke / keep-alive, watch) are generated
//!   from `proto/etcd.proto` once and committed, so building the crate
//!   needs no protoc (a test fails when the committed code is stale).
//! - Every key lives under the store's prefix; the store never reads or
//!   writes outside it.
//!
//! etcd keeps a lease alive *longer* than its TTL when its leader changes
//! (the new leader restarts every countdown): failover then takes up to a
//! TTL more, and a holder never loses its lease early.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use weft_core::{Cause, ErrorClass};
use weft_lease::{CasStore, Entry, Limits, StoreError, Swap, Version, WatchEvent};

mod proto {
    //! etcd's v3 API as far as this crate calls it, generated from
    //! `proto/etcd.proto` (tests/proto_fresh.rs keeps it in step).
    #![allow(
        unreachable_pub,
        missing_docs,
        missing_debug_implementations,
        clippy::all,
        clippy::pedantic
    )]
    include!("proto/etcdserverpb.rs");
}

use proto::compare::{CompareResult, CompareTarget, TargetUnion};
use proto::kv_client::KvClient;
use proto::lease_client::LeaseClient;
use proto::range_request::{SortOrder, SortTarget};
use proto::watch_client::WatchClient;
use proto::{
    Compare, DeleteRangeRequest, KeyValue, LeaseGrantRequest, LeaseKeepAliveRequest,
    LeaseRevokeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, WatchCreateRequest,
    WatchRequest, event, request_op, response_op, watch_request,
};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Attempts for a request that could not connect.
const CONNECT_ATTEMPTS: usize = 4;

/// The gRPC clients of one member, over one HTTP/2 channel.
#[derive(Clone)]
struct Member {
    kv: KvClient<Channel>,
    lease: LeaseClient<Channel>,
    watch: WatchClient<Channel>,
}

impl Member {
    fn new(channel: Channel) -> Self {
        Member {
            kv: KvClient::new(channel.clone()),
            lease: LeaseClient::new(channel.clone()),
            watch: WatchClient::new(channel),
        }
    }
}

/// A [`CasStore`] over an etcd cluster.
#[derive(Clone)]
pub struct EtcdStore {
    /// One channel per member: the store chooses the member, so that a dead
    /// one is left at once instead of being tried again and again.
    members: Arc<[Member]>,
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
    /// A TTL below the cluster's real minimum is still refused: etcd grants
    /// such a lease with its minimum instead, which the store sees and turns
    /// into [`StoreError::BadTtl`] rather than keep a key longer than asked.
    ///
    /// # Errors
    ///
    /// As [`connect`](EtcdStore::connect), and [`StoreError::Other`] for a
    /// `min_ttl` that is not a whole number of seconds of at least 1 s
    /// (etcd's TTLs are whole seconds, and it has no TTL of zero).
    pub async fn connect_with_min_ttl(
        endpoints: &[&str],
        prefix: &str,
        min_ttl: Duration,
    ) -> Result<Self, StoreError> {
        let named = endpoints.join(",");
        let bad = |reason: String| StoreError::Other {
            store: named.clone(),
            reason,
            cause: None,
        };
        if endpoints.is_empty() {
            return Err(bad("no endpoints given".into()));
        }
        if min_ttl < Duration::from_secs(1) || min_ttl.subsec_nanos() != 0 {
            return Err(bad(format!(
                "minimum TTL {min_ttl:?} is not a whole number of seconds of at least 1s"
            )));
        }
        let mut members = Vec::with_capacity(endpoints.len());
        for e in endpoints {
            let well_formed = e.strip_prefix("http://").is_some_and(|rest| {
                rest.rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
            });
            if !well_formed {
                let why = if e.starts_with("https://") {
                    "https (TLS) is not supported; use http://host:port"
                } else {
                    "expected http://host:port"
                };
                return Err(bad(format!("malformed endpoint {e:?}: {why}")));
            }
            let endpoint = Endpoint::from_shared(e.to_string())
                .map_err(|err| bad(format!("malformed endpoint {e:?}: {err}")))?
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(REQUEST_TIMEOUT)
                .tcp_nodelay(true);
            // Lazy: a member that is down now is tried again on use, and
            // the store works while any member answers.
            members.push(Member::new(endpoint.connect_lazy()));
        }
        let store = EtcdStore {
            members: members.into(),
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

    fn error(&self, e: &Status) -> StoreError {
        StoreError::Unavailable {
            store: self.endpoints.clone(),
            reason: describe(e),
            cause: Some(status_cause(e, ErrorClass::Transient)),
        }
    }

    /// Whether the request never reached a server (so retrying is safe).
    fn not_sent(e: &Status) -> bool {
        // A channel that could not connect fails the call with Unavailable
        // and the connection error as its source; a request that was sent
        // and then timed out or broke is Cancelled, Unknown or
        // DeadlineExceeded.
        e.code() == Code::Unavailable && {
            let message = describe(e);
            message.contains("connect") || message.contains("refused")
        }
    }

    /// The member that answered last.
    fn member(&self) -> Member {
        self.members[self.current.load(Ordering::Relaxed) % self.members.len()].clone()
    }

    /// Runs `op` on the member that answered last and, while a request
    /// fails without reaching its member (or, for a read, fails at all),
    /// on the next ones. Each attempt is bounded by the request timeout,
    /// streams included.
    async fn on_members<T, F, Fut>(&self, read: bool, mut op: F) -> Result<T, Status>
    where
        F: FnMut(Member) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let start = self.current.load(Ordering::Relaxed);
        let tries = self.members.len().max(CONNECT_ATTEMPTS);
        let mut last = None;
        for i in 0..tries {
            let idx = (start + i) % self.members.len();
            let attempt = tokio::time::timeout(REQUEST_TIMEOUT, op(self.members[idx].clone()));
            let result = attempt.await.unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!(
                    "no answer within {REQUEST_TIMEOUT:?}"
                )))
            });
            match result {
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
        Err(last.unwrap_or_else(|| Status::internal("no attempt")))
    }

    async fn get_raw(&self, full: &str) -> Result<(Option<KeyValue>, i64), StoreError> {
        let request = RangeRequest {
            key: full.as_bytes().to_vec(),
            ..RangeRequest::default()
        };
        let resp = self
            .on_members(true, |mut m| {
                let request = request.clone();
                async move { m.kv.range(request).await }
            })
            .await
            .map_err(|e| self.error(&e))?
            .into_inner();
        let revision = resp.header.map_or(0, |h| h.revision);
        Ok((resp.kvs.into_iter().next(), revision))
    }

    /// A write's failure: unknown outcome unless it never left.
    fn write_error(&self, key: &str, e: &Status) -> StoreError {
        if EtcdStore::not_sent(e) {
            return self.error(e);
        }
        if e.code() == Code::InvalidArgument {
            return StoreError::Other {
                store: self.endpoints.clone(),
                reason: e.message().to_string(),
                cause: Some(status_cause(e, ErrorClass::Permanent)),
            };
        }
        StoreError::Indeterminate {
            store: self.endpoints.clone(),
            key: key.to_string(),
            reason: describe(e),
            cause: Some(status_cause(e, ErrorClass::Transient)),
        }
    }

    async fn grant(&self, key: &str, ttl: Duration) -> Result<i64, StoreError> {
        // invariant: `Limits::check` bounded the TTL to 9e9 s, below i64::MAX.
        let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let request = LeaseGrantRequest { ttl: secs, id: 0 };
        let resp = self
            .on_members(
                false,
                |mut m| async move { m.lease.lease_grant(request).await },
            )
            .await
            .map_err(|e| self.write_error(key, &e))?
            .into_inner();
        if !resp.error.is_empty() {
            return Err(StoreError::Other {
                store: self.endpoints.clone(),
                reason: format!("lease grant for {key:?} refused: {}", resp.error),
                cause: None,
            });
        }
        if resp.ttl != secs {
            // etcd raises a TTL below its minimum to the minimum: a key
            // written under this lease would outlive the TTL asked for.
            self.revoke(resp.id).await;
            return Err(StoreError::BadTtl {
                ttl,
                min: Duration::from_secs(resp.ttl.max(secs).unsigned_abs()),
                max: self.limits.max_ttl,
                granularity: self.limits.ttl_granularity,
            });
        }
        Ok(resp.id)
    }

    async fn revoke(&self, lease: i64) {
        let mut m = self.member();
        let request = LeaseRevokeRequest { id: lease };
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, m.lease.lease_revoke(request)).await;
    }

    /// Writes `value` under a fresh etcd lease of `ttl` if `guard` holds.
    /// The lease is revoked when the write surely did not apply; after an
    /// unknown outcome it is kept, since the key may hold it.
    async fn put_if(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        guard: TargetUnion,
    ) -> Result<Swap, StoreError> {
        self.limits.check(key, Some(&value), Some(ttl))?;
        let lease = self.grant(key, ttl).await?;
        let put = request_op::Request::RequestPut(PutRequest {
            key: self.full(key).into_bytes(),
            value,
            lease,
        });
        let result = self.txn(key, guard, put).await;
        if !matches!(
            result,
            Ok(Swap::Done { .. }) | Err(StoreError::Indeterminate { .. })
        ) {
            self.revoke(lease).await;
        }
        result
    }

    /// Runs a guarded transaction on `key`: `then` if `guard` holds, else
    /// read the key.
    async fn txn(
        &self,
        key: &str,
        guard: TargetUnion,
        then: request_op::Request,
    ) -> Result<Swap, StoreError> {
        let full = self.full(key).into_bytes();
        let target = match guard {
            TargetUnion::CreateRevision(_) => CompareTarget::Create,
            TargetUnion::ModRevision(_) => CompareTarget::Mod,
            TargetUnion::Version(_) => CompareTarget::Version,
            TargetUnion::Value(_) => CompareTarget::Value,
            TargetUnion::Lease(_) => CompareTarget::Lease,
        };
        let request = TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal as i32,
                target: target as i32,
                key: full.clone(),
                target_union: Some(guard),
            }],
            success: vec![RequestOp {
                request: Some(then),
            }],
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestRange(RangeRequest {
                    key: full,
                    ..RangeRequest::default()
                })),
            }],
        };
        // A transaction is a write: retried only where it never left.
        let resp = self
            .on_members(false, |mut m| {
                let request = request.clone();
                async move { m.kv.txn(request).await }
            })
            .await
            .map_err(|e| self.write_error(key, &e))?
            .into_inner();
        if resp.succeeded {
            let revision = resp.header.map_or(0, |h| h.revision);
            return Ok(Swap::Done {
                version: Version(revision.unsigned_abs()),
            });
        }
        let current = resp.responses.into_iter().find_map(|r| match r.response {
            Some(response_op::Response::ResponseRange(range)) => {
                range.kvs.into_iter().next().map(entry)
            }
            _ => None,
        });
        Ok(Swap::Conflict { current })
    }
}

/// A status with its source chain, which names the connection error.
/// A gRPC status kept as a store error's cause.
fn status_cause(e: &Status, class: ErrorClass) -> Cause {
    Cause::with_class(e.clone(), class)
}

fn describe(e: &Status) -> String {
    let mut message = format!("{}: {}", e.code(), e.message());
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// The end of etcd's key range holding every key that starts with
/// `prefix`: the prefix with its last byte below 0xff incremented (and the
/// 0xff bytes after it dropped); `[0]` ("to the end") if there is none.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|&b| b < 0xff) {
        Some(i) => {
            let mut end = prefix[..=i].to_vec();
            end[i] += 1;
            end
        }
        None => vec![0],
    }
}

fn entry(kv: KeyValue) -> Entry {
    Entry {
        version: Version(kv.mod_revision.unsigned_abs()),
        created: Version(kv.create_revision.unsigned_abs()),
        value: kv.value,
    }
}

/// A version as etcd's signed revision; versions this store hands out
/// always fit, and one that does not can match no key.
fn revision(version: Version) -> i64 {
    i64::try_from(version.0).unwrap_or(-1)
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
        self.put_if(key, value, ttl, TargetUnion::CreateRevision(0))
            .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Version,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.put_if(
            key,
            value,
            ttl,
            TargetUnion::ModRevision(revision(expected)),
        )
        .await
    }

    async fn delete(&self, key: &str, expected: Version) -> Result<Swap, StoreError> {
        self.limits.check(key, None, None)?;
        let delete = request_op::Request::RequestDeleteRange(DeleteRangeRequest {
            key: self.full(key).into_bytes(),
            range_end: Vec::new(),
        });
        self.txn(key, TargetUnion::ModRevision(revision(expected)), delete)
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
        if kv.mod_revision.unsigned_abs() != expected.0 {
            return Ok(Swap::Conflict {
                current: Some(entry(kv)),
            });
        }
        let lease = kv.lease;
        // One keep-alive resets the lease to its granted TTL (the TTL the
        // key was written with). The request stream ends after it: etcd
        // answers the keep-alive, then sees the end and closes the call.
        let alive = self
            .on_members(false, |mut m| async move {
                let once = futures::stream::iter([LeaseKeepAliveRequest { id: lease }]);
                let mut answers = m.lease.lease_keep_alive(once).await?.into_inner();
                answers.message().await
            })
            .await
            .map_err(|e| self.write_error(key, &e))?;
        if alive.is_none_or(|r| r.ttl <= 0) {
            return Ok(Swap::Conflict { current: None });
        }
        // The keep-alive counts only if the key still has that lease and
        // version now: then it expires no earlier than a TTL after the
        // keep-alive was sent.
        let (now, _) = self.get_raw(&full).await?;
        match now {
            Some(kv) if kv.mod_revision.unsigned_abs() == expected.0 && kv.lease == lease => {
                Ok(Swap::Done { version: expected })
            }
            other => Ok(Swap::Conflict {
                current: other.map(entry),
            }),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, StoreError> {
        let full = self.full(prefix).into_bytes();
        let strip = self.full("");
        let request = RangeRequest {
            range_end: prefix_end(&full),
            // An empty key cannot start a range; "\0" is the lowest key.
            key: if full.is_empty() { vec![0] } else { full },
            sort_order: SortOrder::Ascend as i32,
            sort_target: SortTarget::Create as i32,
            ..RangeRequest::default()
        };
        let resp = self
            .on_members(true, |mut m| {
                let request = request.clone();
                async move { m.kv.range(request).await }
            })
            .await
            .map_err(|e| self.error(&e))?
            .into_inner();
        Ok(resp
            .kvs
            .into_iter()
            .filter_map(|kv| {
                let key = std::str::from_utf8(&kv.key)
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
                        version: Version(revision.unsigned_abs()),
                    })
                    .is_err()
            {
                return;
            }
            let create = WatchRequest {
                request_union: Some(watch_request::RequestUnion::CreateRequest(
                    WatchCreateRequest {
                        key: full.into_bytes(),
                        range_end: Vec::new(),
                        start_revision: revision + 1,
                    },
                )),
            };
            // The request side stays open: etcd ends a watch whose client
            // half-closes.
            let requests = futures::stream::iter([create]).chain(futures::stream::pending());
            let mut m = store.member();
            let Ok(answers) = m.watch.watch(requests).await else {
                return;
            };
            let mut answers = answers.into_inner();
            while let Ok(Some(resp)) = answers.message().await {
                if resp.canceled {
                    return;
                }
                for e in resp.events {
                    let Some(kv) = e.kv else { continue };
                    let event = match event::EventType::try_from(e.r#type) {
                        Ok(event::EventType::Put) => WatchEvent::Put(entry(kv)),
                        Ok(event::EventType::Delete) => WatchEvent::Deleted {
                            version: Version(kv.mod_revision.unsigned_abs()),
                        },
                        Err(_) => continue,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_ends_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"app/"), b"app0".to_vec());
        assert_eq!(prefix_end(b"a\xff\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }

    #[test]
    fn versions_beyond_etcd_revisions_match_nothing() {
        assert_eq!(revision(Version(7)), 7);
        assert_eq!(revision(Version(u64::MAX)), -1);
    }

    #[tokio::test]
    async fn a_minimum_ttl_below_one_second_is_refused_before_connecting() {
        for min in [
            Duration::ZERO,
            Duration::from_millis(500),
            Duration::from_millis(1500),
        ] {
            let err = EtcdStore::connect_with_min_ttl(&["http://127.0.0.1:1"], "p/", min)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, StoreError::Other { reason, .. } if reason.contains("minimum TTL")),
                "{min:?}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn a_cluster_with_no_member_listening_is_unavailable_and_never_sent_to() {
        // Port 1 on loopback: nothing listens, the connection is refused.
        let err = EtcdStore::connect(&["http://127.0.0.1:1", "http://127.0.0.1:2"], "p/")
            .await
            .unwrap_err();
        let StoreError::Unavailable { store, reason, .. } = &err else {
            panic!("expected Unavailable, got {err}");
        };
        assert_eq!(store, "http://127.0.0.1:1,http://127.0.0.1:2");
        // The refusal is recognised as "never sent", so writes may move on.
        assert!(
            reason.contains("connect") || reason.contains("refused"),
            "{reason}"
        );
        // The gRPC status is kept as the source, transient.
        let cause = err.cause().expect("the client's error is kept");
        assert!(cause.downcast_ref::<Status>().is_some(), "{cause:?}");
        assert_eq!(weft_core::Classify::class(cause), ErrorClass::Transient);
        assert!(std::error::Error::source(&err).is_some());
    }

    #[tokio::test]
    async fn https_endpoints_are_refused_with_the_reason() {
        let err = EtcdStore::connect(&["https://127.0.0.1:2379"], "p/")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
    }
}
