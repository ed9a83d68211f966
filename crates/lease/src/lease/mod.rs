//! Renewable leases: renewed in the background, believed held only while
//! the store certainly holds them, and lost loudly before the store expires
//! them.
//!
//! ```text
//!  send renew ──▶ store applies ──────────────── store expiry (≥ send + ttl)
//!  │                                                        │
//!  ├── renew every ttl/3 (from the send) ──┐                │
//!  │                                       ▼                │
//!  └─ safe_until = send + ttl·(1 − ρ) − margin ──▶ lost()   │
//!                                           fires here, before here
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weft_core::time::micros;

mod builder;
mod config;
mod guard;
mod renew;

pub use builder::LeaseBuilder;
pub use config::LeaseConfig;
pub use guard::LeaseGuard;
use renew::renew;

use crate::acquire::{Claim, acquire_key, try_create};
use crate::{CasStore, LeaseError, StoreError, Version};

/// Whether a lease is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseState {
    /// The last renewal succeeded; the lease is safe until `safe_until`.
    Held,
    /// A renewal failed or is late; still safe until `safe_until`, but the
    /// holder should get ready to stop.
    AtRisk,
    /// No longer held: past `safe_until`, taken over, released, or the
    /// store said so. Final.
    Lost,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn CasStore>,
    key: String,
    token: Version,
    config: LeaseConfig,
    /// Lease-clock time (µs) until which the holder may act.
    safe_until_us: AtomicU64,
    state: watch::Sender<LeaseState>,
    lost: CancellationToken,
    stop: CancellationToken,
    released: AtomicBool,
    release_result: Mutex<Option<Result<(), LeaseError>>>,
    /// Marks the key as this process's while the lease lives.
    _claim: Claim,
}

impl Shared {
    fn safe_until(&self) -> Duration {
        Duration::from_micros(self.safe_until_us.load(Ordering::Acquire))
    }

    fn extend(&self, sent: Duration) {
        let until = micros(sent.saturating_add(self.config.safe_period()));
        self.safe_until_us.fetch_max(until, Ordering::AcqRel);
    }

    fn set(&self, state: LeaseState) {
        self.state.send_if_modified(|s| {
            if *s == LeaseState::Lost || *s == state {
                false
            } else {
                *s = state;
                true
            }
        });
        if state == LeaseState::Lost {
            self.lost.cancel();
        }
    }
}

/// A renewable lease on one key of a [`CasStore`].
///
/// A background task renews it every `ttl/3` (jittered), timing each
/// renewal from when it was **sent**. The holder believes it holds the lease
/// only until `safe_until = send + ttl·(1 − ρ) − margin` of the last renewal
/// that succeeded, where ρ bounds the local clock's rate error: so the lost
/// signal ([`lost`](Lease::lost), the [`cancellation`](Lease::cancellation)
/// token) fires before the store can expire the key, whatever the network
/// did to the renewal's answer.
///
/// The lease protects nothing by itself from a holder that is paused
/// between checking and acting: pass [`token`](Lease::token) to the
/// resource and check it with a [`crate::Fence`].
///
/// # Examples
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use weft_lease::{Lease, LeaseConfig, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let store = Arc::new(MemoryStore::new());
/// let lease = Lease::builder(store, "shard-7/owner", LeaseConfig::new(Duration::from_secs(3)))
///     .value(b"host-a")
///     .acquire(Duration::from_secs(1))
///     .await?;
/// let token = lease.token(); // give it to the resource with each write
/// let done = lease.run(|guard| async move {
///     // Work until done or until guard.cancelled() fires.
///     assert_eq!(guard.token, token);
///     "work done"
/// }).await?;
/// assert_eq!(done, "work done");
/// # Ok::<(), weft_lease::LeaseError>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Lease {
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl Lease {
    /// A lease builder over `store` for `key`, timed by `config`: set the
    /// value, then [`acquire`](LeaseBuilder::acquire) (waiting) or
    /// [`try_acquire`](LeaseBuilder::try_acquire).
    pub fn builder(
        store: Arc<dyn CasStore>,
        key: impl Into<String>,
        config: LeaseConfig,
    ) -> LeaseBuilder {
        LeaseBuilder::new(store, key.into(), config)
    }

    /// See [`LeaseBuilder::acquire`].
    pub(super) async fn acquire(
        store: Arc<dyn CasStore>,
        key: &str,
        value: Vec<u8>,
        config: LeaseConfig,
        wait: Duration,
    ) -> Result<Lease, LeaseError> {
        config.validate(store.as_ref())?;
        store.limits().check(key, Some(&value), None)?;
        let (token, sent, claim) = acquire_key(
            store.as_ref(),
            Some(&store),
            key,
            &value,
            config.ttl,
            wait,
            config.clock.as_ref(),
        )
        .await?;
        Ok(Lease::start(store, key, token, sent, config, claim))
    }

    /// See [`LeaseBuilder::try_acquire`].
    pub(super) async fn try_acquire(
        store: Arc<dyn CasStore>,
        key: &str,
        value: Vec<u8>,
        config: LeaseConfig,
    ) -> Result<Option<Lease>, LeaseError> {
        config.validate(store.as_ref())?;
        store.limits().check(key, Some(&value), None)?;
        let sent = config.clock.now();
        // Claimed from before the create: a background resolution of an
        // earlier unknown create never deletes what this one wins (it looks
        // only after a quarter TTL, when a lost attempt's claim is gone).
        let claim = Claim::new(store.as_ref(), key, &value);
        let won = try_create(store.as_ref(), Some(&store), key, &value, config.ttl, sent).await?;
        Ok(won.map(|token| Lease::start(store, key, token, sent, config, claim)))
    }

    fn start(
        store: Arc<dyn CasStore>,
        key: &str,
        token: Version,
        sent: Duration,
        config: LeaseConfig,
        claim: Claim,
    ) -> Lease {
        let (state, _) = watch::channel(LeaseState::Held);
        let shared = Arc::new(Shared {
            store,
            key: key.to_string(),
            token,
            config,
            safe_until_us: AtomicU64::new(0),
            state,
            lost: CancellationToken::new(),
            stop: CancellationToken::new(),
            released: AtomicBool::new(false),
            release_result: Mutex::new(None),
            _claim: claim,
        });
        shared.extend(sent);
        let task = tokio::spawn(renew(shared.clone(), sent));
        Lease {
            shared,
            task: Some(task),
        }
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// The TTL each renewal sets.
    pub fn ttl(&self) -> Duration {
        self.shared.config.ttl
    }

    /// The fencing token: the version the lease was taken at. Renewals keep
    /// it.
    pub fn token(&self) -> Version {
        self.shared.token
    }

    /// The current state.
    pub fn state(&self) -> LeaseState {
        if self.shared.config.clock.now() >= self.shared.safe_until() {
            self.shared.set(LeaseState::Lost);
        }
        *self.shared.state.borrow()
    }

    /// Whether the holder may act now: not lost and before `safe_until`.
    pub fn is_held(&self) -> bool {
        self.state() != LeaseState::Lost
    }

    /// Lease-clock time until which the holder may act.
    pub fn safe_until(&self) -> Duration {
        self.shared.safe_until()
    }

    /// The remaining safe time.
    pub fn remaining(&self) -> Duration {
        self.shared
            .safe_until()
            .saturating_sub(self.shared.config.clock.now())
    }

    /// Resolves when the lease is lost.
    ///
    /// This is a signal, delivered when the renewal task (or a check)
    /// notices the loss: a process paused past its safe period learns of it
    /// only when its runtime runs again. Code about to act checks
    /// [`is_held`](Lease::is_held) or a [`LeaseGuard`], or presents its token to
    /// a [`crate::Fence`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn lost(&self) {
        self.shared.lost.cancelled().await
    }

    /// A guard to hand to work that must stop when the lease is lost: its
    /// [`is_cancelled`](LeaseGuard::is_cancelled) compares the clock with the
    /// safe time whenever it is asked.
    pub fn cancellation(&self) -> LeaseGuard {
        LeaseGuard {
            token: self.token(),
            shared: self.shared.clone(),
        }
    }

    /// A receiver of state changes. Like [`lost`](Lease::lost), it hears
    /// of a loss when the renewal task (or a check) notices it: after a
    /// pause, only once the runtime runs again.
    pub fn watch_state(&self) -> watch::Receiver<LeaseState> {
        self.shared.state.subscribe()
    }

    /// Runs `task` under the lease and releases the lease after it ends.
    ///
    /// The task gets the fencing token and a cancel signal. If the lease is
    /// lost first, the signal fires; the task gets up to the stop timeout to
    /// finish, and is then dropped; the result is [`LeaseError::Lost`]. The
    /// lease is released only after the task has stopped.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Lost`] if the lease was lost before the task finished;
    /// a release failure after the task finished.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the task; the lease is then released on a
    /// best-effort basis (see [`Drop`]).
    pub async fn run<F, Fut, T>(self, task: F) -> Result<T, LeaseError>
    where
        F: FnOnce(LeaseGuard) -> Fut,
        Fut: Future<Output = T>,
    {
        let guard = self.cancellation();
        let work = task(guard);
        tokio::pin!(work);
        tokio::select! {
            biased;
            value = &mut work => {
                self.release().await?;
                Ok(value)
            }
            () = self.shared.lost.cancelled() => {
                // Give the task its bounded chance to see the signal and stop.
                let _ = tokio::time::timeout(self.shared.config.stop_timeout, &mut work).await;
                Err(LeaseError::Lost { key: self.shared.key.clone() })
            }
        }
    }

    /// Stops renewing and deletes the key if still held. Idempotent: later
    /// calls return the first call's result. Bounded by the release timeout.
    ///
    /// # Errors
    ///
    /// A [`LeaseError::Store`] from the delete (the key then expires after
    /// its TTL).
    ///
    /// # Cancel safety
    ///
    /// If dropped, renewals have stopped and the key expires after its TTL.
    pub async fn release(&self) -> Result<(), LeaseError> {
        let shared = &self.shared;
        if shared.released.swap(true, Ordering::AcqRel) {
            return shared
                .release_result
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or(Ok(()));
        }
        shared.stop.cancel();
        shared.set(LeaseState::Lost);
        let delete = shared.store.delete(&shared.key, shared.token);
        let result = match tokio::time::timeout(shared.config.release_timeout, delete).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(LeaseError::Store(StoreError::Indeterminate {
                store: format!("{:?}", shared.store).chars().take(40).collect(),
                key: shared.key.clone(),
                reason: "release timed out; the key expires after its TTL".into(),
                cause: None,
            })),
        };
        *shared
            .release_result
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(result.clone());
        result
    }
}

/// Dropping a lease stops its renewals at once. If it was not released, a
/// best-effort delete is spawned on the current tokio runtime (none if
/// there is no runtime); either way the key expires after its TTL at the
/// latest. Prefer an explicit [`Lease::release`], which reports the outcome.
impl Drop for Lease {
    fn drop(&mut self) {
        self.shared.stop.cancel();
        self.shared.set(LeaseState::Lost);
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if !self.shared.released.swap(true, Ordering::AcqRel)
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let shared = self.shared.clone();
            handle.spawn(async move {
                let _ = tokio::time::timeout(
                    shared.config.release_timeout,
                    shared.store.delete(&shared.key, shared.token),
                )
                .await;
            });
        }
    }
}
