//! TTL locks: acquire with a deadline, unlock only with the version taken.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use weft_core::key_hash;
use weft_core::time::capped;

use crate::{CasStore, LeaseError, StoreError, Swap, Version, WatchEvent};

/// A held lock: the key, the value written, and the version taken, which is
/// the holder's fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
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
    ) -> Result<Option<Held>, LeaseError> {
        try_create(self.store.as_ref(), key, &value, ttl)
            .await
            .map(|v| {
                v.map(|token| Held {
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
    ) -> Result<Held, LeaseError> {
        let (token, _) = acquire_key(
            self.store.as_ref(),
            key,
            &value,
            ttl,
            wait,
            &crate::SystemClock::new(),
        )
        .await?;
        Ok(Held {
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
    pub async fn unlock(&self, held: &Held) -> Result<bool, LeaseError> {
        Ok(matches!(
            self.store.delete(&held.key, held.token).await?,
            Swap::Done { .. }
        ))
    }
}

/// How one create attempt went.
pub(crate) enum Attempt {
    /// We hold the key at this version.
    Won(Version),
    /// Someone else holds it.
    Taken,
    /// The key is free but our create did not apply: try again now.
    Retry,
}

/// One create; an indeterminate outcome is resolved by reading whether our
/// value is there.
pub(crate) async fn attempt_create(
    store: &dyn CasStore,
    key: &str,
    value: &[u8],
    ttl: Duration,
) -> Result<Attempt, LeaseError> {
    match store.create(key, value.to_vec(), ttl).await {
        Ok(Swap::Done { version }) => Ok(Attempt::Won(version)),
        Ok(Swap::Conflict { current: Some(_) }) => Ok(Attempt::Taken),
        Ok(Swap::Conflict { current: None }) => Ok(Attempt::Retry),
        Err(StoreError::Indeterminate { .. }) => match store.get(key).await? {
            Some(entry) if entry.value == value => Ok(Attempt::Won(entry.version)),
            Some(_) => Ok(Attempt::Taken),
            None => Ok(Attempt::Retry),
        },
        Err(e) => Err(e.into()),
    }
}

/// One create, without waiting.
pub(crate) async fn try_create(
    store: &dyn CasStore,
    key: &str,
    value: &[u8],
    ttl: Duration,
) -> Result<Option<Version>, LeaseError> {
    Ok(match attempt_create(store, key, value, ttl).await? {
        Attempt::Won(version) => Some(version),
        Attempt::Taken | Attempt::Retry => None,
    })
}

static JITTER: AtomicU64 = AtomicU64::new(0);

/// A poll interval between 10 and 50 ms, jittered so that waiters spread.
pub(crate) fn poll_interval(key: &str) -> Duration {
    let n = JITTER.fetch_add(1, Ordering::Relaxed);
    Duration::from_millis(10 + key_hash(&(key, n)) % 40)
}

/// Creates `key`, waiting (watch or poll) while it exists, until `wait`.
/// Returns the version and the `clock` time at which the successful create
/// was sent.
pub(crate) async fn acquire_key(
    store: &dyn CasStore,
    key: &str,
    value: &[u8],
    ttl: Duration,
    wait: Duration,
    clock: &dyn crate::LeaseClock,
) -> Result<(Version, Duration), LeaseError> {
    let start = Instant::now();
    let deadline = start + capped(wait);
    loop {
        // Subscribe before trying, so a release between the failed create
        // and the wait is not missed.
        let mut watch = store.watch(key);
        let sent = clock.now();
        let timeout = || LeaseError::Timeout {
            key: key.to_string(),
            waited: start.elapsed(),
        };
        match attempt_create(store, key, value, ttl).await {
            Ok(Attempt::Won(version)) => return Ok((version, sent)),
            Ok(Attempt::Taken) => {}
            Ok(Attempt::Retry) if Instant::now() < deadline => continue,
            Ok(Attempt::Retry) => return Err(timeout()),
            // A store that is down for now: keep trying until the deadline,
            // then report what failed.
            Err(LeaseError::Store(e)) if weft_core::Classify::is_transient(&e) => {
                let next = Instant::now() + poll_interval(key);
                if next >= deadline {
                    return Err(LeaseError::Store(e));
                }
                tokio::time::sleep_until(next).await;
                continue;
            }
            Err(e) => return Err(e),
        }
        match watch.as_mut() {
            Some(events) => loop {
                tokio::select! {
                    event = events.next() => match event {
                        Some(WatchEvent::Deleted { .. } | WatchEvent::Expired { .. }) | None => break,
                        Some(WatchEvent::Put(_)) => {}
                    },
                    () = tokio::time::sleep_until(deadline) => return Err(timeout()),
                }
            },
            None => {
                let next = (Instant::now() + poll_interval(key)).min(deadline);
                tokio::time::sleep_until(next).await;
                if Instant::now() >= deadline {
                    return Err(timeout());
                }
            }
        }
    }
}
