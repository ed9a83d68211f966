//! A fence kept in a [`CasStore`], so that every process in front of a
//! resource rejects a stale token alike: the highest token seen for each
//! resource, advanced by compare-and-swap.

use std::sync::Arc;
use std::time::Duration;

use crate::{CasStore, Entry, Fence, LeaseError, Swap, Version};

/// A [`Fence`] over any [`CasStore`] (etcd, Redis, the in-memory store),
/// shared by every process that guards the resource.
///
/// `check_and_advance` reads the resource's record and advances it by
/// compare-and-swap, so two processes checking concurrently never both
/// pass with tokens out of order. [`write`](CasFence::write) goes further
/// for a value kept in the store itself: the token check and the write are
/// one compare-and-swap, so a stale holder's write cannot land between
/// another holder's check and write.
///
/// A record lives for `retain` after its last advance (the store's TTLs are
/// its persistence): keep it longer than any holder can stay paused, or a
/// token from before the record expired would pass again.
///
/// # Examples
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use weft_lease::{CasFence, Fence, MemoryStore, Version};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let store = Arc::new(MemoryStore::new());
/// // Two processes in front of one resource, one fence record.
/// let a = CasFence::new(store.clone(), "fences/", Duration::from_secs(3600));
/// let b = CasFence::new(store, "fences/", Duration::from_secs(3600));
/// a.check_and_advance("orders", Version(7)).await?;
/// assert!(b.check_and_advance("orders", Version(5)).await.is_err()); // stale, in any process
/// b.write("config", Version(9), b"v2".to_vec()).await?;
/// assert!(a.write("config", Version(8), b"v1".to_vec()).await.is_err());
/// assert_eq!(a.read("config").await?, Some((Version(9), b"v2".to_vec())));
/// # Ok::<(), weft_lease::LeaseError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct CasFence {
    store: Arc<dyn CasStore>,
    prefix: String,
    retain: Duration,
}

/// A record: the highest token as 8 big-endian bytes, then the value.
fn encode(token: Version, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&token.0.to_be_bytes());
    out.extend_from_slice(value);
    out
}

fn decode(key: &str, entry: &Entry) -> Result<(Version, Vec<u8>), LeaseError> {
    let (head, value) = entry
        .value
        .split_at_checked(8)
        .ok_or_else(|| LeaseError::invalid("fence record", key, "at least 8 bytes: a token"))?;
    let mut token = [0u8; 8];
    token.copy_from_slice(head);
    Ok((Version(u64::from_be_bytes(token)), value.to_vec()))
}

impl CasFence {
    /// A fence whose records live under `prefix` in `store`, each kept for
    /// `retain` after its last advance.
    pub fn new(store: Arc<dyn CasStore>, prefix: &str, retain: Duration) -> Self {
        CasFence {
            store,
            prefix: prefix.to_string(),
            retain,
        }
    }

    fn key(&self, resource: &str) -> String {
        format!("{}{resource}", self.prefix)
    }

    /// The resource's highest token and value, if it has a record.
    ///
    /// # Errors
    ///
    /// A [`LeaseError::Store`]; [`LeaseError::Invalid`] for a record that
    /// is not a fence's.
    ///
    /// # Cancel safety
    ///
    /// A read: cancel safe.
    pub async fn read(&self, resource: &str) -> Result<Option<(Version, Vec<u8>)>, LeaseError> {
        let key = self.key(resource);
        match self.store.get(&key).await? {
            Some(entry) => decode(&key, &entry).map(Some),
            None => Ok(None),
        }
    }

    /// Writes `value` for `resource` if `token` is at least the highest
    /// seen, recording `token` as the highest, in one compare-and-swap.
    ///
    /// # Errors
    ///
    /// [`LeaseError::StaleToken`] naming the resource, the token and the
    /// highest seen; a [`LeaseError::Store`] (an indeterminate write is
    /// resolved by [`read`](CasFence::read)).
    ///
    /// # Cancel safety
    ///
    /// If dropped, the write applied or not; `read` tells which.
    pub async fn write(
        &self,
        resource: &str,
        token: Version,
        value: Vec<u8>,
    ) -> Result<(), LeaseError> {
        self.advance(resource, token, Some(value)).await
    }

    /// Checks and advances; with `value`, also replaces the value (else
    /// keeps it).
    async fn advance(
        &self,
        resource: &str,
        token: Version,
        value: Option<Vec<u8>>,
    ) -> Result<(), LeaseError> {
        let key = self.key(resource);
        // Every round is caused by another writer's successful swap; a
        // store that fails keeps failing through `?`.
        loop {
            let outcome = match self.store.get(&key).await? {
                None => {
                    let record = encode(token, value.as_deref().unwrap_or_default());
                    self.store.create(&key, record, self.retain).await?
                }
                Some(entry) => {
                    let (high, kept) = decode(&key, &entry)?;
                    if token < high {
                        return Err(LeaseError::StaleToken {
                            resource: resource.to_string(),
                            token,
                            highest: high,
                        });
                    }
                    if token == high && value.is_none() {
                        return Ok(()); // the same holder again: nothing to record
                    }
                    let record = encode(token, value.as_deref().unwrap_or(&kept));
                    self.store
                        .compare_and_swap(&key, entry.version, record, self.retain)
                        .await?
                }
            };
            match outcome {
                Swap::Done { .. } => return Ok(()),
                Swap::Conflict { .. } => continue,
            }
        }
    }
}

#[async_trait::async_trait]
impl Fence for CasFence {
    async fn check_and_advance(&self, resource: &str, token: Version) -> Result<(), LeaseError> {
        self.advance(resource, token, None).await
    }
}
