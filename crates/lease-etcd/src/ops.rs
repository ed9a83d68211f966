//! The store's requests to etcd: reads, lease grants and revokes, and the
//! conditional transactions every write is.

use std::time::Duration;

use weft_lease::{Entry, StoreError, Swap, Version};

use crate::proto::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::*;
use crate::{EtcdStore, REQUEST_TIMEOUT};

impl EtcdStore {
    /// A range read on whichever member answers (reads move on at any
    /// failure).
    pub(crate) async fn range(&self, request: RangeRequest) -> Result<RangeResponse, StoreError> {
        self.on_members(true, |mut m| {
            let request = request.clone();
            async move { m.kv.range(request).await }
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(|e| self.error(&e))
    }

    pub(crate) async fn get_raw(&self, full: &str) -> Result<(Option<KeyValue>, i64), StoreError> {
        let request = RangeRequest {
            key: full.as_bytes().to_vec(),
            ..RangeRequest::default()
        };
        let resp = self.range(request).await?;
        let revision = resp.header.map_or(0, |h| h.revision);
        Ok((resp.kvs.into_iter().next(), revision))
    }

    pub(crate) async fn grant(&self, key: &str, ttl: Duration) -> Result<i64, StoreError> {
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

    pub(crate) async fn revoke(&self, lease: i64) {
        let mut m = self.member();
        let request = LeaseRevokeRequest { id: lease };
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, m.lease.lease_revoke(request)).await;
    }

    /// Writes `value` under a fresh etcd lease of `ttl` if `guard` holds.
    /// The lease is revoked when the write surely did not apply; after an
    /// unknown outcome it is kept, since the key may hold it.
    pub(crate) async fn put_if(
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
    pub(crate) async fn txn(
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

/// The end of etcd's key range holding every key that starts with
/// `prefix`: the prefix with its last byte below 0xff incremented (and the
/// 0xff bytes after it dropped); `[0]` ("to the end") if there is none.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|&b| b < 0xff) {
        Some(i) => {
            let mut end = prefix[..=i].to_vec();
            end[i] += 1;
            end
        }
        None => vec![0],
    }
}

pub(crate) fn entry(kv: KeyValue) -> Entry {
    Entry {
        version: Version(kv.mod_revision.unsigned_abs()),
        created: Version(kv.create_revision.unsigned_abs()),
        value: kv.value,
    }
}

/// A version as etcd's signed revision; versions this store hands out
/// always fit, and one that does not can match no key.
pub(crate) fn revision(version: Version) -> i64 {
    i64::try_from(version.0).unwrap_or(-1)
}
