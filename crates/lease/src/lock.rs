//! TTL locks: acquire with a deadline, unlock only with the version taken.

use std::sync::Arc;
use std::time::Duration;

use crate::acquire::{acquire_key, try_create};
use crate::{CasStore, LeaseError, Swap, Version};

/// A held lock: the key, the value written, and the version taken, which is
/// the holder's fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockGuard {
    /// The lock's key.
    pub key: String,
    /// The version taken: present it to a [`crate::Fence`].
    pub token: Version,
    /// The value written (the holder's identity).
    pub value: Vec<u8>,
}

/// A TTL lock over a [`CasStore`]: the key exists while held, and expires
/// after its TTL unless unlocked first. Not renewed: for work longer than a
/// TTL, use [`crate::Lease`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft_lease::{Lock, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let lock = Lock::new(std::sync::Arc::new(MemoryStore::new()));
/// let held = lock.try_acquire("jobs/nightly", b"host-a".to_vec(), Duration::from_secs(10)).await?.unwrap();
/// assert!(lock.try_acquire("jobs/nightly", b"host-b".to_vec(), Duration::from_secs(10)).await?.is_none());
/// assert!(lock.unlock(&held).await?); // only with the version taken
/// # Ok::<(), weft_lease::LeaseError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Lock {
    store: Arc<dyn CasStore>,
}

impl Lock {
    /// Locks over `store`.
    pub fn new(store: Arc<dyn CasStore>) -> Self {
        Lock { store }
    }

    /// Takes the lock if it is free.
    ///
    /// # Errors
    ///
    /// A [`LeaseError::Store`] for a store failure or a TTL, key or value the
    /// store cannot take.
    ///
    /// # Cancel safety
    ///
    /// If dropped after the store applied the create, the lock is held by
    /// nobody who knows it and expires after its TTL.
    pub async fn try_acquire(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<Option<LockGuard>, LeaseError> {
        try_create(self.store.as_ref(), None, key, &value, ttl, Duration::ZERO)
            .await
            .map(|v| {
                v.map(|token| LockGuard {
                    key: key.to_string(),
                    token,
                    value,
                })
            })
    }

    /// Waits until the lock is free and takes it, or gives up at `wait`.
    ///
    /// Waits on the store's watch when it has one, else polls with jitter.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Timeout`] at the deadline; [`LeaseError::Store`] as
    /// [`try_acquire`](Lock::try_acquire).
    ///
    /// # Cancel safety
    ///
    /// As [`try_acquire`](Lock::try_acquire).
    pub async fn acquire(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        wait: Duration,
    ) -> Result<LockGuard, LeaseError> {
        let (token, _, _) = acquire_key(
            self.store.as_ref(),
            None,
            key,
            &value,
            ttl,
            wait,
            &crate::SystemClock::new(),
        )
        .await?;
        Ok(LockGuard {
            key: key.to_string(),
            token,
            value,
        })
    }

    /// Releases the lock if it is still held with `held.token`. `Ok(false)`
    /// if it had expired or changed hands: nothing was deleted.
    ///
    /// # Errors
    ///
    /// A [`LeaseError::Store`].
    ///
    /// # Cancel safety
    ///
    /// One conditional delete: if dropped, it either applied (the lock is
    /// free) or not (the lock stays held until its TTL, or until an unlock
    /// with the same guard).
    pub async fn unlock(&self, held: &LockGuard) -> Result<bool, LeaseError> {
        Ok(matches!(
            self.store.delete(&held.key, held.token).await?,
            Swap::Done { .. }
        ))
    }
}
