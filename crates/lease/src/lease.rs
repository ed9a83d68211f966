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
use weft_core::{Backoff, Classify, key_hash};

use crate::acquire::{Claim, acquire_key, try_create};
use crate::{CasStore, LeaseClock, LeaseError, StoreError, Swap, SystemClock, Version};

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

/// How a lease is timed.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    ttl: Duration,
    renew_every: Option<Duration>,
    jitter: f64,
    drift: f64,
    margin: Option<Duration>,
    op_timeout: Option<Duration>,
    release_timeout: Duration,
    stop_timeout: Duration,
    clock: Arc<dyn LeaseClock>,
}

impl LeaseConfig {
    /// A lease of `ttl`, renewed every `ttl/3` (±10 % jitter), trusting
    /// the local clock's rate to within 1 % (`drift` ρ = 0.01), with a margin
    /// of `ttl/10`.
    pub fn new(ttl: Duration) -> Self {
        LeaseConfig {
            ttl,
            renew_every: None,
            jitter: 0.1,
            drift: 0.01,
            margin: None,
            op_timeout: None,
            release_timeout: Duration::from_secs(2),
            stop_timeout: Duration::from_secs(2),
            clock: Arc::new(SystemClock::new()),
        }
    }

    /// Renews this often (measured from when each renewal was sent).
    #[must_use]
    pub fn renew_every(mut self, interval: Duration) -> Self {
        self.renew_every = Some(interval);
        self
    }

    /// The jitter of the renewal interval, as a fraction (0.1 = ±10 %).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// The bound ρ on the local clock's rate error relative to the store's
    /// (0.01 = the local clock may run 1 % fast or slow).
    #[must_use]
    pub fn drift(mut self, bound: f64) -> Self {
        self.drift = bound;
        self
    }

    /// Time subtracted from the safe period, for the time between deciding
    /// the lease is held and acting on it.
    #[must_use]
    pub fn margin(mut self, margin: Duration) -> Self {
        self.margin = Some(margin);
        self
    }

    /// A timeout per store call (default: the renewal interval).
    #[must_use]
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = Some(timeout);
        self
    }

    /// How long an explicit release may take.
    #[must_use]
    pub fn release_timeout(mut self, timeout: Duration) -> Self {
        self.release_timeout = timeout;
        self
    }

    /// How long a guarded task may take to stop once cancelled.
    #[must_use]
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// The clock (default [`SystemClock`]); tests inject drift here.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn LeaseClock>) -> Self {
        self.clock = clock;
        self
    }

    /// The TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn interval(&self) -> Duration {
        self.renew_every.unwrap_or(self.ttl / 3)
    }

    fn margin_or_default(&self) -> Duration {
        self.margin.unwrap_or(self.ttl / 10)
    }

    /// How long after a renewal was sent the holder may believe it holds
    /// the lease.
    fn safe_period(&self) -> Duration {
        self.ttl
            .mul_f64(1.0 - self.drift)
            .saturating_sub(self.margin_or_default())
    }

    /// The renewal schedule: every interval, spread by the jitter.
    fn renewals(&self) -> Backoff {
        let every = Backoff::constant(self.interval());
        // A jitter outside [0, 1) fails validation before any renewal.
        every.with_jitter(self.jitter).unwrap_or(every)
    }

    /// Checks the configuration against itself and the store.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Store`] with [`StoreError::BadTtl`] for a TTL the store
    /// cannot honour; [`LeaseError::Config`] naming any other problem.
    pub fn validate(&self, store: &dyn CasStore) -> Result<(), LeaseError> {
        let bad = |s: String| Err(LeaseError::Config(s));
        if self.ttl.is_zero() {
            return bad("TTL is zero".into());
        }
        let limits = store.limits();
        limits.check("k", None, Some(self.ttl))?;
        if !(0.0..1.0).contains(&self.drift) {
            return bad(format!("drift bound {} is outside [0, 1)", self.drift));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return bad(format!("jitter {} is outside [0, 1)", self.jitter));
        }
        let interval = self.interval();
        if interval.is_zero() || interval >= self.ttl {
            return bad(format!(
                "renewal interval {interval:?} must be above zero and below the TTL {:?}",
                self.ttl
            ));
        }
        if self.op_timeout.is_some_and(|t| t.is_zero()) {
            return bad("operation timeout is zero: every renewal would time out".into());
        }
        if self.release_timeout.is_zero() {
            return bad("release timeout is zero: every release would time out".into());
        }
        if self.margin_or_default() >= self.ttl {
            return bad(format!(
                "margin {:?} is not below the TTL {:?}",
                self.margin_or_default(),
                self.ttl
            ));
        }
        let longest_gap = self.renewals().longest();
        if self.safe_period() <= longest_gap {
            return bad(format!(
                "TTL {:?} with drift {} and margin {:?} leaves a safe period of {:?}, not more than the renewal interval {:?}: the lease would be lost between renewals",
                self.ttl,
                self.drift,
                self.margin_or_default(),
                self.safe_period(),
                longest_gap
            ));
        }
        Ok(())
    }
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
/// let lease = Lease::acquire(store, "shard-7/owner", b"host-a".to_vec(),
///     LeaseConfig::new(Duration::from_secs(3)), Duration::from_secs(1)).await?;
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

/// What code acting under a lease checks: its fencing token and whether it
/// must stop.
///
/// [`is_cancelled`](Guard::is_cancelled) compares the lease clock with the
/// lease's safe time at the moment it is asked, as
/// [`Lease::is_held`] does: a process paused past its safe period (SIGSTOP,
/// a long GC pause, a suspended VM) is told to stop by its first check on
/// resume, before the renewal task has had a chance to run.
/// [`cancelled`](Guard::cancelled) resolves at the safe time too, but a
/// paused process runs it only when its runtime runs again: code about to
/// act should check [`is_cancelled`](Guard::is_cancelled), or better,
/// present [`token`](Guard::token) to a [`crate::Fence`].
#[derive(Debug, Clone)]
pub struct Guard {
    /// The lease's fencing token.
    pub token: Version,
    shared: Arc<Shared>,
}

impl Guard {
    /// Resolves when the task must stop: the lease is lost or its safe
    /// period is over.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn cancelled(&self) {
        let shared = &self.shared;
        loop {
            let left = shared
                .safe_until()
                .saturating_sub(shared.config.clock.now());
            if left.is_zero() {
                shared.set(LeaseState::Lost);
                return;
            }
            // A renewal moves the safe time on: look again when it was due.
            tokio::select! {
                () = shared.lost.cancelled() => return,
                () = tokio::time::sleep(left) => {}
            }
        }
    }

    /// Whether the task must stop: the lease is lost, or the lease clock
    /// is past its safe time now.
    pub fn is_cancelled(&self) -> bool {
        let shared = &self.shared;
        if shared.lost.is_cancelled() {
            return true;
        }
        if shared.config.clock.now() >= shared.safe_until() {
            shared.set(LeaseState::Lost);
            return true;
        }
        false
    }

    /// A cancellation token that is cancelled when the lease is known to
    /// be lost, for APIs that take one. It is asynchronous: the renewal task
    /// (or a check of the lease or a guard) cancels it, so a process paused
    /// past its safe period sees it uncancelled until its runtime runs
    /// again; check [`is_cancelled`](Guard::is_cancelled) before acting.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.shared.lost.child_token()
    }
}

impl Lease {
    /// Waits until the key is free and takes a lease on it, or gives up at
    /// `wait`.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Config`] or [`LeaseError::Store`] for a configuration,
    /// key or value the store cannot take; [`LeaseError::Timeout`] at the
    /// deadline; [`LeaseError::Store`] for a store failure.
    ///
    /// # Cancel safety
    ///
    /// If dropped after the store applied the create, the key is held by
    /// nobody who knows it and expires after its TTL.
    pub async fn acquire(
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

    /// Takes a lease on the key if it is free.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Lease::acquire), without the timeout.
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](Lease::acquire).
    pub async fn try_acquire(
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
    /// [`is_held`](Lease::is_held) or a [`Guard`], or presents its token to
    /// a [`crate::Fence`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn lost(&self) {
        self.shared.lost.cancelled().await
    }

    /// A guard to hand to work that must stop when the lease is lost: its
    /// [`is_cancelled`](Guard::is_cancelled) compares the clock with the
    /// safe time whenever it is asked.
    pub fn cancellation(&self) -> Guard {
        Guard {
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
        F: FnOnce(Guard) -> Fut,
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

/// The renewal loop.
async fn renew(shared: Arc<Shared>, first_sent: Duration) {
    let cfg = shared.config.clone();
    let clock = cfg.clock.clone();
    let interval = cfg.interval();
    let op_timeout = cfg.op_timeout.unwrap_or(interval);
    // Renewals every interval, spread by the jitter; a renewal that failed
    // transiently is tried again after a quarter of the interval.
    let renewals = cfg.renewals();
    let at_risk = Backoff::constant(interval / 4);
    let seed = key_hash(&(shared.key.as_str(), shared.token.0));
    let mut round = 0u32;
    let mut next = first_sent.saturating_add(renewals.delay(round, seed));
    loop {
        let now = clock.now();
        let safe = shared.safe_until();
        if now >= safe {
            tracing::debug!(key = %shared.key, "lease lost: safe period over");
            shared.set(LeaseState::Lost);
            return;
        }
        if now < next {
            let wake = next.min(safe) - now;
            tokio::select! {
                () = tokio::time::sleep(wake) => {}
                () = shared.stop.cancelled() => return,
            }
            continue;
        }
        round += 1;
        let sent = clock.now();
        let until_lost = shared.safe_until().saturating_sub(sent);
        let refresh = shared.store.refresh(&shared.key, shared.token, cfg.ttl);
        let outcome = tokio::select! {
            r = tokio::time::timeout(op_timeout, refresh) => r,
            () = tokio::time::sleep(until_lost) => continue, // the top of the loop declares it lost
            () = shared.stop.cancelled() => return,
        };
        match outcome {
            Ok(Ok(Swap::Done { .. })) => {
                shared.extend(sent);
                shared.set(LeaseState::Held);
                next = sent.saturating_add(renewals.delay(round, seed));
            }
            Ok(Ok(Swap::Conflict { .. })) => {
                tracing::debug!(key = %shared.key, "lease lost: the store no longer holds it");
                shared.set(LeaseState::Lost);
                return;
            }
            Ok(Err(e)) if e.is_transient() => {
                shared.set(LeaseState::AtRisk);
                next = clock.now().saturating_add(at_risk.delay(round, seed));
            }
            Ok(Err(e)) => {
                tracing::debug!(key = %shared.key, error = %e, "lease lost: renewal failed permanently");
                shared.set(LeaseState::Lost);
                return;
            }
            Err(_) => {
                shared.set(LeaseState::AtRisk);
                next = clock.now().saturating_add(at_risk.delay(round, seed));
            }
        }
    }
}
