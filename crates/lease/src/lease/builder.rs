//! Taking a lease: the store, the key, the value and the timing, then
//! `acquire` (waiting) or `try_acquire`.

use std::sync::Arc;
use std::time::Duration;

use super::Lease;
use crate::{CasStore, LeaseConfig, LeaseError};

/// A lease about to be taken, from [`Lease::builder`].
///
/// # Examples
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use weft_lease::{Lease, LeaseConfig, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let store = Arc::new(MemoryStore::new());
/// let config = LeaseConfig::new(Duration::from_secs(3));
/// let first = Lease::builder(store.clone(), "job", config.clone()).value(b"a").try_acquire().await?;
/// let second = Lease::builder(store, "job", config).value(b"b").try_acquire().await?;
/// assert!(first.is_some() && second.is_none());
/// # Ok::<(), weft_lease::LeaseError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[must_use = "a lease builder takes nothing until `acquire` or `try_acquire` is awaited"]
pub struct LeaseBuilder {
    store: Arc<dyn CasStore>,
    key: String,
    value: Vec<u8>,
    config: LeaseConfig,
}

impl LeaseBuilder {
    pub(super) fn new(store: Arc<dyn CasStore>, key: String, config: LeaseConfig) -> Self {
        LeaseBuilder {
            store,
            key,
            value: Vec::new(),
            config,
        }
    }

    /// The value the key holds while leased (e.g. the holder's address);
    /// empty by default.
    pub fn value(mut self, value: impl Into<Vec<u8>>) -> Self {
        self.value = value.into();
        self
    }

    /// Waits until the key is free and takes a lease on it, or gives up at
    /// `wait` (any `Duration`; `Duration::MAX` waits as long as it takes).
    ///
    /// # Errors
    ///
    /// [`LeaseError::Invalid`] or [`LeaseError::Store`] for a configuration,
    /// key or value the store cannot take; [`LeaseError::Timeout`] at the
    /// deadline; [`LeaseError::Store`] for a store failure.
    ///
    /// # Cancel safety
    ///
    /// If dropped after the store applied the create, the key is held by
    /// nobody who knows it; the create is then resolved in the background
    /// (deleted, or taken over by the next acquisition of the same key and
    /// value), and at worst expires after its TTL.
    pub async fn acquire(self, wait: Duration) -> Result<Lease, LeaseError> {
        Lease::acquire(self.store, &self.key, self.value, self.config, wait).await
    }

    /// Takes a lease on the key if it is free: `Ok(None)` if another holds
    /// it.
    ///
    /// # Errors
    ///
    /// As [`acquire`](LeaseBuilder::acquire), without the timeout.
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](LeaseBuilder::acquire).
    pub async fn try_acquire(self) -> Result<Option<Lease>, LeaseError> {
        Lease::try_acquire(self.store, &self.key, self.value, self.config).await
    }
}
