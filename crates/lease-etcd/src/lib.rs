//! A [`CasStore`](weft_lease::CasStore) over etcd v3 for weft leases: the reference backend.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::{sync::Arc, time::Duration};
//! use weft_lease::{Lease, LeaseConfig};
//! use weft_lease_etcd::EtcdStore;
//!
//! let store = Arc::new(EtcdStore::connect(&["http://127.0.0.1:2379"], "myapp/").await?);
//! let lease = Lease::builder(store, "shard-7/owner", LeaseConfig::new(Duration::from_secs(3)))
//!     .value(b"host-a")
//!     .acquire(Duration::from_secs(10))
//!     .await?;
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
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tonic::transport::Endpoint;
use weft_lease::{Limits, StoreError};

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

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Attempts for a request that could not connect.
const CONNECT_ATTEMPTS: usize = 4;

mod error;
mod member;
mod ops;
mod store;

use member::Member;

/// A [`CasStore`](weft_lease::CasStore) over an etcd cluster.
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
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: connecting changes nothing on the server, and a dropped
    /// connection attempt leaves nothing behind.
    pub async fn connect(endpoints: &[&str], prefix: &str) -> Result<Self, StoreError> {
        EtcdStore::connect_with_min_ttl(endpoints, prefix, Duration::from_secs(2)).await
    }

    /// [`connect`](EtcdStore::connect), tried again while the store is
    /// unavailable (nothing listening yet, a server still starting) until
    /// `wait` has passed: see [`weft_lease::connect_within`].
    ///
    /// # Errors
    ///
    /// As [`connect`](EtcdStore::connect), the last one at the deadline.
    ///
    /// # Cancel safety
    ///
    /// As [`connect`](EtcdStore::connect).
    pub async fn connect_within(
        endpoints: &[&str],
        prefix: &str,
        wait: Duration,
    ) -> Result<Self, StoreError> {
        weft_lease::connect_within(wait, || EtcdStore::connect(endpoints, prefix)).await
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
    ///
    /// # Cancel safety
    ///
    /// As [`connect`](EtcdStore::connect).
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{prefix_end, revision};
    use tonic::Status;
    use weft_core::ErrorClass;
    use weft_lease::Version;

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
    async fn connect_within_tries_until_the_wait_then_says_unavailable() {
        let start = std::time::Instant::now();
        let err =
            EtcdStore::connect_within(&["http://127.0.0.1:1"], "p/", Duration::from_millis(300))
                .await
                .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
        assert!(start.elapsed() >= Duration::from_millis(300));
        // A malformed endpoint is permanent: no retries.
        let start = std::time::Instant::now();
        let err = EtcdStore::connect_within(&["127.0.0.1:1"], "p/", Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Other { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn https_endpoints_are_refused_with_the_reason() {
        let err = EtcdStore::connect(&["https://127.0.0.1:2379"], "p/")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
    }
}
