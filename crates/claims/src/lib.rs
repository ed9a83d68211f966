//! Work-queue claims as leases: several queues, in one process or in many,
//! share one batch of work and no item's result is committed twice.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use weft_claims::LeasedSource;
//! use weft_flow::queue::{Autoscaler, Item, QueueConfig, WorkQueue};
//! use weft_lease::{LeaseConfig, MemoryStore};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // Across processes, every queue gets an etcd or Redis store and the
//! // same manifest; here one queue over the embedded store.
//! let store = Arc::new(MemoryStore::new());
//! let items = (0..20u64).map(|id| Item { id, payload: id });
//! let lease = LeaseConfig::new(Duration::from_secs(3));
//! let source = Arc::new(LeasedSource::new(store, "batch-7/", items, lease)?);
//! let config = QueueConfig::new(Autoscaler::new(1, 4, 0.8, 2)?, 8)?;
//! let worker = |x: u64| async move { Ok::<_, std::io::Error>(x * 2) };
//! let done = WorkQueue::spawn(source, worker, config).collect_all().await?;
//! assert_eq!(done.output.len(), 20);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! Every queue gets the same manifest of items and the same
//! [`CasStore`] (etcd, Redis or the in-memory store).
//! A queue claims an item by taking a [`Lease`] on the item's key; the
//! lease renews while the item is being processed. Acknowledging the item
//! swaps the claim, guarded by the lease's fencing token, for a *done*
//! marker: the swap applies only if the
//! claim is still this queue's, so a queue that was paused past the TTL
//! (and whose item another queue has since claimed) finds its
//! acknowledgement refused and its result discarded.
//!
//! ```text
//!  key <prefix><id>:   absent ──claim (create)──▶ claim:<owner>
//!                        ▲                          │      │
//!                        └─ nack (delete) / expiry ─┘      │ ack (swap on token)
//!                                                          ▼
//!                                                 done:<token>:<owner>
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use weft_core::{Backoff, Classify, RetryPolicy, key_hash};
use weft_flow::queue::{Item, Source};
use weft_lease::{CasStore, Lease, LeaseConfig, LeaseError, Swap};

const CLAIM: &[u8] = b"claim:";
const DONE: &[u8] = b"done:";

/// A [`Source`] over a fixed manifest of items whose claims are leases in a
/// [`CasStore`], so that several work queues can share the manifest
/// without committing any item twice.
///
/// # Guarantees
///
/// - An item is handed to at most one queue at a time while its claim's
///   lease holds; a queue that stalls past the TTL loses the claim, and
///   another queue takes the item over.
/// - At most one acknowledgement per item succeeds (a swap on the claim's
///   fencing token), so at most one queue's result for an item leaves its
///   queue; the others count it in `Status::discarded`.
/// - `next` returns `None` only when every item of the manifest is done
///   (by any queue), so a queue whose peer died finishes the peer's items.
///
/// # Not guaranteed
///
/// A worker's own side effects outside the queue happen once per attempt:
/// a queue paused in the middle of an item may finish it after another
/// queue has redone it. Make such effects idempotent, or fence them. Done
/// markers live for the retention time ([`retain`](LeasedSource::retain));
/// after it, an item would be claimable again.
pub struct LeasedSource<T> {
    store: Arc<dyn CasStore>,
    prefix: String,
    owner: Vec<u8>,
    config: LeaseConfig,
    retain: Duration,
    poll: Duration,
    items: Vec<Item<T>>,
    state: Mutex<State>,
    changed: Notify,
}

impl<T> fmt::Debug for LeasedSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeasedSource")
            .field("prefix", &self.prefix)
            .field("owner", &String::from_utf8_lossy(&self.owner))
            .field("items", &self.items.len())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// Manifest indices to try next.
    pending: VecDeque<usize>,
    /// Indices claimed by another taker: tried again after the poll delay.
    busy: Vec<usize>,
    /// Claims this source holds, by item id.
    held: HashMap<u64, (usize, Lease)>,
    /// Items known done.
    done: HashSet<usize>,
}

/// What trying one item found.
enum Claim {
    Won(Lease),
    Busy,
    Done,
}

impl<T: Clone + Send + Sync> LeasedSource<T> {
    /// A source over `items` (ids unique) whose claims are leases under
    /// `prefix` in `store`, timed by `config` (its TTL is how long a
    /// stalled queue keeps an item from the others).
    ///
    /// # Errors
    ///
    /// [`LeaseError::Invalid`] naming a duplicate item id or an empty
    /// prefix; the store's error for a TTL it cannot honour or a key over
    /// its size limit.
    pub fn new<I>(
        store: Arc<dyn CasStore>,
        prefix: &str,
        items: I,
        config: LeaseConfig,
    ) -> Result<Self, LeaseError>
    where
        I: IntoIterator<Item = Item<T>>,
    {
        if prefix.is_empty() {
            return Err(LeaseError::invalid(
                "claim prefix",
                prefix,
                "not empty: claims would collide with other keys",
            ));
        }
        config.validate(store.as_ref())?;
        let items: Vec<Item<T>> = items.into_iter().collect();
        let mut ids = HashSet::with_capacity(items.len());
        let mut longest = 0;
        for item in &items {
            if !ids.insert(item.id) {
                return Err(LeaseError::invalid(
                    "item id",
                    item.id,
                    "unique: it appears twice in the manifest",
                ));
            }
            longest = longest.max(item.id);
        }
        let limits = store.limits();
        limits.check(&format!("{prefix}{longest}"), None, None)?;
        // Done markers outlive any batch: 30 days, or the store's maximum.
        let retain = Duration::from_secs(30 * 24 * 3600).min(limits.max_ttl);
        limits.check(prefix, None, Some(retain))?;
        let poll = config.ttl() / 4;
        let state = State {
            pending: (0..items.len()).collect(),
            ..State::default()
        };
        Ok(LeasedSource {
            store,
            prefix: prefix.to_string(),
            owner: b"queue".to_vec(),
            config,
            retain,
            poll,
            items,
            state: Mutex::new(state),
            changed: Notify::new(),
        })
    }

    /// Names this queue in its claims and done markers (for operators).
    ///
    /// # Errors
    ///
    /// The store's error if the marker would exceed its value size limit.
    pub fn owner(mut self, owner: &str) -> Result<Self, LeaseError> {
        let marker = done_marker(u64::MAX, owner.as_bytes());
        self.store
            .limits()
            .check(&self.prefix, Some(&marker), None)?;
        self.owner = owner.as_bytes().to_vec();
        Ok(self)
    }

    /// How long done markers are kept (default: 30 days, or the store's
    /// longest TTL). An item whose marker expired could be claimed again.
    ///
    /// # Errors
    ///
    /// [`weft_lease::StoreError::BadTtl`] (as [`LeaseError::Store`]) if the store
    /// cannot keep a key that long or in that granularity.
    pub fn retain(mut self, retain: Duration) -> Result<Self, LeaseError> {
        self.store
            .limits()
            .check(&self.prefix, None, Some(retain))?;
        self.retain = retain;
        Ok(self)
    }

    /// How often items claimed by others are looked at again (default: a
    /// quarter of the TTL; ±25 % jitter).
    ///
    /// # Errors
    ///
    /// [`LeaseError::Invalid`] if `poll` is zero.
    pub fn poll(mut self, poll: Duration) -> Result<Self, LeaseError> {
        if poll.is_zero() {
            return Err(LeaseError::invalid(
                "claim poll interval",
                poll,
                "above zero",
            ));
        }
        self.poll = poll;
        Ok(self)
    }

    /// Items of the manifest this source has seen done (by any queue).
    pub fn done(&self) -> usize {
        self.lock().done.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(&self, index: usize) -> String {
        format!("{}{}", self.prefix, self.items[index].id)
    }

    /// Reads the item's key and claims it if it is free.
    async fn try_claim(&self, index: usize) -> Claim {
        let key = self.key(index);
        match self.store.get(&key).await {
            Ok(Some(entry)) if entry.value.starts_with(DONE) => return Claim::Done,
            Ok(Some(_)) => return Claim::Busy,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(key, error = %e, "reading a claim failed; trying later");
                return Claim::Busy;
            }
        }
        let mut value = CLAIM.to_vec();
        value.extend_from_slice(&self.owner);
        match Lease::builder(self.store.clone(), &key, self.config.clone())
            .value(value)
            .try_acquire()
            .await
        {
            // A claim whose answer came back after its safe time (this
            // process was stalled) is not worth starting on.
            Ok(Some(lease)) if lease.is_held() => Claim::Won(lease),
            Ok(Some(_)) => Claim::Busy,
            Ok(None) => Claim::Busy,
            Err(e) => {
                tracing::warn!(key, error = %e, "claiming failed; trying later");
                Claim::Busy
            }
        }
    }

    /// The poll delay with ±25 % jitter, varied per call.
    fn poll_delay(&self, salt: u64) -> Duration {
        self.polls()
            .delay(1, key_hash(&(salt, self.owner.as_slice())))
    }

    /// Polls every `poll` interval ± 25 %.
    fn polls(&self) -> Backoff {
        let every = Backoff::constant(self.poll);
        // invariant: 0.25 is a valid jitter fraction.
        every.with_jitter(0.25).unwrap_or(every)
    }

    /// Commits are tried 5 times, an eighth of the poll interval apart.
    fn commits(&self) -> RetryPolicy {
        let every = Backoff::constant(self.poll / 8);
        let every = every.with_jitter(0.25).unwrap_or(every);
        // invariant: 5 tries is a valid count.
        RetryPolicy::new(5, every).unwrap_or(RetryPolicy::ONCE)
    }

    /// Swaps the claim for a done marker on the lease's token; retries
    /// transient failures while the lease may still hold.
    async fn commit(&self, lease: &Lease) -> bool {
        let token = lease.token();
        let marker = done_marker(token.0, &self.owner);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self
                .store
                .compare_and_swap(lease.key(), token, marker.clone(), self.retain)
                .await
            {
                Ok(Swap::Done { .. }) => return true,
                // An earlier attempt whose answer was lost may have
                // applied: the marker names the token, so it is ours.
                Ok(Swap::Conflict { current }) => {
                    return current.is_some_and(|e| e.value == marker);
                }
                Err(e)
                    if e.is_transient()
                        && let Some(wait) = self
                            .commits()
                            .next(attempt, key_hash(&(token.0, self.owner.as_slice()))) =>
                {
                    tracing::debug!(key = lease.key(), error = %e, "commit failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    tracing::warn!(key = lease.key(), error = %e, "commit failed; the item will be redone");
                    return matches!(
                        self.store.get(lease.key()).await,
                        Ok(Some(entry)) if entry.value == marker
                    );
                }
            }
        }
    }
}

/// Puts an index back if `next` is dropped while trying it.
struct Taken<'a, T> {
    source: &'a LeasedSource<T>,
    index: Option<usize>,
}

impl<T> Drop for Taken<'_, T> {
    fn drop(&mut self) {
        if let Some(index) = self.index {
            self.source
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pending
                .push_front(index);
        }
    }
}

fn done_marker(token: u64, owner: &[u8]) -> Vec<u8> {
    let mut v = DONE.to_vec();
    v.extend_from_slice(token.to_string().as_bytes());
    v.push(b':');
    v.extend_from_slice(owner);
    v
}

impl<T: Clone + Send + Sync> Source<T> for LeasedSource<T> {
    type Id = u64;

    async fn next(&self) -> Option<Item<T>> {
        let mut rounds = 0u64;
        loop {
            let changed = self.changed.notified();
            let (index, wait_busy) = {
                let mut st = self.lock();
                match st.pending.pop_front() {
                    Some(i) => (Some(i), false),
                    None if st.busy.is_empty() && st.held.is_empty() => return None,
                    None => (None, !st.busy.is_empty()),
                }
            };
            let Some(index) = index else {
                if wait_busy {
                    rounds += 1;
                    tokio::select! {
                        () = tokio::time::sleep(self.poll_delay(rounds)) => {
                            let mut st = self.lock();
                            let busy = std::mem::take(&mut st.busy);
                            st.pending.extend(busy);
                        }
                        () = changed => {}
                    }
                } else {
                    // Only this source's own claims remain: wait for them
                    // to be acknowledged or given back.
                    changed.await;
                }
                continue;
            };
            // If this future is dropped while the store is asked (the queue
            // drains), the index goes back, so the item is not forgotten; a
            // claim taken meanwhile is released by the lease's drop.
            let mut guard = Taken {
                source: self,
                index: Some(index),
            };
            let claim = self.try_claim(index).await;
            guard.index = None;
            match claim {
                Claim::Won(lease) => {
                    let item = self.items[index].clone();
                    self.lock().held.insert(item.id, (index, lease));
                    return Some(item);
                }
                Claim::Busy => self.lock().busy.push(index),
                Claim::Done => {
                    self.lock().done.insert(index);
                    self.changed.notify_waiters();
                }
            }
        }
    }

    async fn ack(&self, id: u64) -> bool {
        let Some((index, lease)) = self.lock().held.remove(&id) else {
            return false;
        };
        let committed = self.commit(&lease).await;
        // Dropping the lease stops its renewals; its delete is guarded on
        // the claim's token, which the done marker replaced.
        drop(lease);
        {
            let mut st = self.lock();
            if committed {
                st.done.insert(index);
            } else {
                // Someone else owns it now: look again later.
                st.busy.push(index);
            }
        }
        self.changed.notify_waiters();
        committed
    }

    async fn nack(&self, item: Item<T>) {
        let held = self.lock().held.remove(&item.id);
        if let Some((index, lease)) = held {
            if let Err(e) = lease.release().await {
                tracing::debug!(id = item.id, error = %e, "releasing a claim failed; it expires");
            }
            self.lock().pending.push_front(index);
        }
        self.changed.notify_waiters();
    }

    fn arrived(&self) -> u64 {
        self.items.len() as u64
    }

    /// Items not yet tried or given back (not those claimed elsewhere).
    fn backlog(&self) -> Option<usize> {
        Some(self.lock().pending.len())
    }
}
