//! Leader election: a fair queue of candidates, each watching only its
//! predecessor.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::time::Instant;
use weft_core::key_hash;
use weft_core::time::capped;

use crate::acquire::poll_interval;
use crate::{CasStore, Lease, LeaseConfig, LeaseError, Swap, Version, WatchEvent};

/// The leader as observed: its value and its fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// The leader's candidate key.
    pub key: String,
    /// The value it proclaimed.
    pub value: Vec<u8>,
    /// Its fencing token: the creation version of its candidacy, which
    /// increases from each leader to the next.
    pub token: Version,
}

/// Elections under a key prefix.
///
/// Each candidate writes a key `prefix/<id>` under a renewed [`Lease`]; the
/// candidate with the oldest key (lowest creation version) leads. A waiting
/// candidate watches only the key just before its own, so a leader's exit
/// wakes one successor, not the whole queue, and candidates lead in the
/// order they arrived. The leader's token is its key's creation version.
///
/// # Examples
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use weft_lease::{Election, LeaseConfig, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let election = Election::new(Arc::new(MemoryStore::new()), "service/leader", LeaseConfig::new(Duration::from_secs(3)));
/// let leadership = election.campaign(b"replica-1".to_vec(), Duration::from_secs(1)).await?;
/// let leader = election.leader().await?.unwrap();
/// assert_eq!((leader.value, leader.token), (b"replica-1".to_vec(), leadership.token()));
/// leadership.resign().await?;
/// assert!(election.leader().await?.is_none());
/// # Ok::<(), weft_lease::LeaseError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Election {
    store: Arc<dyn CasStore>,
    prefix: String,
    config: LeaseConfig,
}

/// A won election: leads until resigned or until its lease is lost.
#[derive(Debug)]
pub struct Leadership {
    lease: Lease,
    token: Version,
    store: Arc<dyn CasStore>,
    version: std::sync::Mutex<Version>,
}

static CANDIDATE: AtomicU64 = AtomicU64::new(0);

impl Election {
    /// Elections over `store` under `prefix`, with candidacies leased by
    /// `config`.
    pub fn new(store: Arc<dyn CasStore>, prefix: &str, config: LeaseConfig) -> Self {
        Election {
            store,
            prefix: prefix.trim_end_matches('/').to_string(),
            config,
        }
    }

    /// Joins the queue and waits until leading, or gives up at `wait`
    /// (withdrawing the candidacy).
    ///
    /// # Errors
    ///
    /// [`LeaseError::Timeout`] at the deadline, [`LeaseError::Lost`] if the
    /// candidacy's lease was lost while waiting, [`LeaseError::Invalid`] or a
    /// store error.
    ///
    /// # Cancel safety
    ///
    /// If dropped, the candidacy's lease is dropped too (renewals stop, a
    /// best-effort delete is sent).
    pub async fn campaign(&self, value: Vec<u8>, wait: Duration) -> Result<Leadership, LeaseError> {
        let start = Instant::now();
        let deadline = start + capped(wait);
        let id = key_hash(&(
            CANDIDATE.fetch_add(1, Ordering::Relaxed),
            std::process::id(),
            self.prefix.as_str(),
            format!("{:?}", std::time::SystemTime::now()),
        ));
        let key = format!("{}/{id:016x}", self.prefix);
        let lease = Lease::builder(self.store.clone(), &key, self.config.clone())
            .value(value)
            .acquire(wait)
            .await?;
        let timeout = |key: String| LeaseError::Timeout {
            key,
            waited: start.elapsed(),
        };
        loop {
            // Every store call ends by the deadline; on giving up the
            // candidacy is dropped (its key deleted in the background), so
            // `wait` bounds the call whatever the store does.
            let prefix = format!("{}/", self.prefix);
            let list = self.store.list(&prefix);
            let Ok(queue) = tokio::time::timeout_at(deadline, list).await else {
                drop(lease);
                return Err(timeout(key));
            };
            let queue = queue?;
            let Some(mine) = queue.iter().position(|(k, _)| *k == key) else {
                return Err(LeaseError::Lost { key });
            };
            if mine == 0 {
                let (token, version) = (queue[0].1.created, queue[0].1.version);
                return Ok(Leadership {
                    lease,
                    token,
                    store: self.store.clone(),
                    version: std::sync::Mutex::new(version),
                });
            }
            let predecessor = queue[mine - 1].0.clone();
            // Wait for the predecessor to go (or our lease to be lost, or the
            // deadline), then look again.
            let gone = wait_gone(self.store.as_ref(), &predecessor);
            tokio::select! {
                r = gone => r?,
                () = lease.lost() => return Err(LeaseError::Lost { key }),
                () = tokio::time::sleep_until(deadline) => {
                    drop(lease);
                    return Err(timeout(key));
                }
            }
        }
    }

    /// The current leader, if any.
    ///
    /// # Errors
    ///
    /// A store error.
    ///
    /// # Cancel safety
    ///
    /// A read: cancel safe.
    pub async fn leader(&self) -> Result<Option<Leader>, LeaseError> {
        let queue = self.store.list(&format!("{}/", self.prefix)).await?;
        Ok(queue.into_iter().next().map(|(key, e)| Leader {
            key,
            value: e.value,
            token: e.created,
        }))
    }

    /// The leader each time it changes (including to none), starting with
    /// the current one. Polls with jitter, and watches the leader's key when
    /// the store can watch.
    ///
    /// # Backpressure
    ///
    /// Lazy: the store is read only when the stream is polled; changes
    /// between polls are coalesced into the latest leader.
    pub fn observe(&self) -> BoxStream<'static, Result<Option<Leader>, LeaseError>> {
        let this = self.clone();
        futures::stream::unfold((this, None::<Option<Leader>>), |(this, last)| async move {
            let mut first = last.is_none();
            loop {
                if !first {
                    let watched = last
                        .as_ref()
                        .and_then(|l| l.as_ref())
                        .map(|l| l.key.clone());
                    match watched.and_then(|k| this.store.watch(&k)) {
                        Some(mut events) => {
                            tokio::select! {
                                _ = events.next() => {}
                                () = tokio::time::sleep(poll_interval(&this.prefix) * 10) => {}
                            }
                        }
                        None => tokio::time::sleep(poll_interval(&this.prefix)).await,
                    }
                }
                first = false;
                match this.leader().await {
                    Err(e) => return Some((Err(e), (this, last))),
                    Ok(current) if last.as_ref() != Some(&current) => {
                        return Some((Ok(current.clone()), (this, Some(current))));
                    }
                    Ok(_) => {}
                }
            }
        })
        .boxed()
    }
}

impl Leadership {
    /// The fencing token of this leadership.
    pub fn token(&self) -> Version {
        self.token
    }

    /// Whether it still leads (its lease is held).
    pub fn is_leader(&self) -> bool {
        self.lease.is_held()
    }

    /// Resolves when leadership is lost.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn lost(&self) {
        self.lease.lost().await
    }

    /// The underlying lease (cancellation token, state).
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Publishes a new value; the token does not change.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Lost`] if the candidacy is gone; a store error.
    ///
    /// # Cancel safety
    ///
    /// One compare-and-swap: if dropped, the new value was published or
    /// not; either way leadership and its token are unchanged. A later
    /// `proclaim` after one that applied unseen finds the version moved and
    /// reports [`LeaseError::Lost`]; read [`Election::leader`] to tell.
    pub async fn proclaim(&self, value: Vec<u8>) -> Result<(), LeaseError> {
        let expected = *self.version.lock().unwrap_or_else(|e| e.into_inner());
        match self
            .store
            .compare_and_swap(self.lease.key(), expected, value, self.lease.ttl())
            .await?
        {
            Swap::Done { version } => {
                *self.version.lock().unwrap_or_else(|e| e.into_inner()) = version;
                Ok(())
            }
            Swap::Conflict { .. } => Err(LeaseError::Lost {
                key: self.lease.key().to_string(),
            }),
        }
    }

    /// Steps down: releases the candidacy so the next candidate leads.
    ///
    /// # Errors
    ///
    /// A store error (the candidacy then expires after its TTL).
    ///
    /// # Cancel safety
    ///
    /// The leadership is consumed: if dropped, its lease is dropped, which
    /// stops the renewals and sends a best-effort delete; at worst the
    /// candidacy expires after its TTL and the next candidate leads then.
    pub async fn resign(self) -> Result<(), LeaseError> {
        self.lease.release().await
    }
}

/// Resolves when `key` is absent: at once if it is, else on its deletion or
/// expiry (watch) or by polling.
async fn wait_gone(store: &dyn CasStore, key: &str) -> Result<(), LeaseError> {
    let mut watch = store.watch(key);
    if store.get(key).await?.is_none() {
        return Ok(());
    }
    match watch.as_mut() {
        Some(events) => {
            while let Some(event) = events.next().await {
                if matches!(
                    event,
                    WatchEvent::Deleted { .. } | WatchEvent::Expired { .. }
                ) {
                    return Ok(());
                }
            }
            Ok(())
        }
        None => loop {
            tokio::time::sleep(poll_interval(key)).await;
            if store.get(key).await?.is_none() {
                return Ok(());
            }
        },
    }
}
