//! The embedded default store: in memory, on tokio time.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::stream::BoxStream;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use weft_core::time::capped;

use crate::store::{CasStore, Entry, Limits, PrefixEvent, StoreError, Swap, Version, WatchEvent};

#[derive(Debug)]
struct Stored {
    entry: Entry,
    expires_at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    revision: u64,
    entries: HashMap<String, Stored>,
    expiries: BTreeSet<(Instant, String)>,
    watchers: HashMap<String, Vec<mpsc::UnboundedSender<WatchEvent>>>,
    prefix_watchers: Vec<(String, mpsc::UnboundedSender<PrefixEvent>)>,
    reaper: bool,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    /// Wakes the reaper: an earlier expiry, or the store was dropped.
    wake: Arc<Notify>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

/// An in-memory [`CasStore`] on tokio time: versions are a store-wide
/// revision, TTLs expire exactly on time (a reaper task wakes at the next
/// expiry, and every operation expires what is due first), and watch
/// delivers every change. Passes the conformance suite; with paused tokio
/// time, tests of leases run in virtual time.
///
/// Not durable: versions restart with a new store.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft_lease::{CasStore, MemoryStore, Swap};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let Swap::Done { version } = store.create("lock/a", b"me".to_vec(), Duration::from_secs(5)).await? else {
///     unreachable!("the key was absent")
/// };
/// // A second creator loses the race: a value, not an error.
/// assert!(matches!(store.create("lock/a", b"you".to_vec(), Duration::from_secs(5)).await?, Swap::Conflict { .. }));
/// assert!(matches!(store.delete("lock/a", version).await?, Swap::Done { .. }));
/// # Ok::<(), weft_lease::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
    limits: Limits,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// A store with millisecond TTLs (1 ms to one year), keys up to 4 KiB and
    /// values up to 1 MiB.
    pub fn new() -> Self {
        MemoryStore::unchecked(Limits {
            ttl_granularity: Duration::from_millis(1),
            min_ttl: Duration::from_millis(1),
            max_ttl: Duration::from_secs(365 * 24 * 3600),
            max_key_len: 4096,
            max_value_len: 1 << 20,
        })
    }

    /// A store with other limits (e.g. etcd's whole seconds, to test a
    /// caller's validation).
    ///
    /// # Errors
    ///
    /// [`StoreError::BadLimits`] for limits no operation could meet (see
    /// [`Limits::validate`]).
    pub fn with_limits(limits: Limits) -> Result<Self, StoreError> {
        limits.validate()?;
        Ok(MemoryStore::unchecked(limits))
    }

    fn unchecked(limits: Limits) -> Self {
        MemoryStore {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner::default()),
                wake: Arc::new(Notify::new()),
            }),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // invariant: no code panics while holding the lock, so it is never
        // poisoned; recover the data if it ever were.
        self.shared.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `entry` with a TTL and tells watchers; starts the reaper.
    fn put(&self, inner: &mut Inner, key: &str, entry: Entry, ttl: Duration) {
        let expires_at = Instant::now() + capped(ttl);
        if let Some(old) = inner.entries.get(key) {
            inner.expiries.remove(&(old.expires_at, key.to_string()));
        }
        inner.expiries.insert((expires_at, key.to_string()));
        inner.entries.insert(
            key.to_string(),
            Stored {
                entry: entry.clone(),
                expires_at,
            },
        );
        notify(inner, key, WatchEvent::Put(entry));
        if !inner.reaper {
            inner.reaper = true;
            tokio::spawn(reap(Arc::downgrade(&self.shared), self.shared.wake.clone()));
        }
        self.shared.wake.notify_one();
    }

    /// Writes start the expiry timer, a tokio task: without a runtime they
    /// fail before changing anything.
    fn check_runtime() -> Result<(), StoreError> {
        match tokio::runtime::Handle::try_current() {
            Ok(_) => Ok(()),
            Err(_) => Err(StoreError::NoRuntime {
                store: "memory".into(),
            }),
        }
    }

    fn next_revision(inner: &mut Inner) -> Version {
        inner.revision += 1;
        Version(inner.revision)
    }
}

fn notify(inner: &mut Inner, key: &str, event: WatchEvent) {
    if let Some(list) = inner.watchers.get_mut(key) {
        list.retain(|tx| tx.send(event.clone()).is_ok());
        if list.is_empty() {
            inner.watchers.remove(key);
        }
    }
    inner.prefix_watchers.retain(|(prefix, tx)| {
        (!tx.is_closed() && !key.starts_with(prefix.as_str()))
            || tx
                .send(PrefixEvent::Changed {
                    key: key.to_string(),
                    event: event.clone(),
                })
                .is_ok()
    });
}

/// Expires every key due at `now`, each consuming a revision.
fn expire_due(inner: &mut Inner, now: Instant) {
    while let Some((at, key)) = inner.expiries.first().cloned() {
        if at > now {
            break;
        }
        inner.expiries.pop_first();
        if inner.entries.remove(&key).is_some() {
            inner.revision += 1;
            let version = Version(inner.revision);
            notify(inner, &key, WatchEvent::Expired { version });
        }
    }
}

/// Sleeps until the next expiry and expires it, so that watchers hear of an
/// expiry on time even when nobody calls the store. Exits with the store.
async fn reap(shared: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        let woken = wake.notified();
        let next = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut inner = shared.inner.lock().unwrap_or_else(|e| e.into_inner());
            expire_due(&mut inner, Instant::now());
            inner.expiries.first().map(|(at, _)| *at)
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = woken => {}
                }
            }
            None => woken.await,
        }
    }
}

#[async_trait::async_trait]
impl CasStore for MemoryStore {
    fn limits(&self) -> Limits {
        self.limits
    }

    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.limits.check(key, None, None)?;
        let mut inner = self.lock();
        expire_due(&mut inner, Instant::now());
        Ok(inner.entries.get(key).map(|s| s.entry.clone()))
    }

    async fn create(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<Swap, StoreError> {
        self.limits.check(key, Some(&value), Some(ttl))?;
        MemoryStore::check_runtime()?;
        let mut inner = self.lock();
        expire_due(&mut inner, Instant::now());
        if let Some(s) = inner.entries.get(key) {
            return Ok(Swap::Conflict {
                current: Some(s.entry.clone()),
            });
        }
        let version = MemoryStore::next_revision(&mut inner);
        let entry = Entry {
            value,
            version,
            created: version,
        };
        self.put(&mut inner, key, entry, ttl);
        Ok(Swap::Done { version })
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Version,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.limits.check(key, Some(&value), Some(ttl))?;
        MemoryStore::check_runtime()?;
        let mut inner = self.lock();
        expire_due(&mut inner, Instant::now());
        let created = match inner.entries.get(key) {
            Some(s) if s.entry.version == expected => s.entry.created,
            other => {
                return Ok(Swap::Conflict {
                    current: other.map(|s| s.entry.clone()),
                });
            }
        };
        let version = MemoryStore::next_revision(&mut inner);
        self.put(
            &mut inner,
            key,
            Entry {
                value,
                version,
                created,
            },
            ttl,
        );
        Ok(Swap::Done { version })
    }

    async fn delete(&self, key: &str, expected: Version) -> Result<Swap, StoreError> {
        self.limits.check(key, None, None)?;
        let mut inner = self.lock();
        expire_due(&mut inner, Instant::now());
        match inner.entries.get(key) {
            Some(s) if s.entry.version == expected => {
                let at = s.expires_at;
                inner.entries.remove(key);
                inner.expiries.remove(&(at, key.to_string()));
                let version = MemoryStore::next_revision(&mut inner);
                notify(&mut inner, key, WatchEvent::Deleted { version });
                Ok(Swap::Done { version })
            }
            other => Ok(Swap::Conflict {
                current: other.map(|s| s.entry.clone()),
            }),
        }
    }

    async fn refresh(
        &self,
        key: &str,
        expected: Version,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.limits.check(key, None, Some(ttl))?;
        let mut inner = self.lock();
        let now = Instant::now();
        expire_due(&mut inner, now);
        let at = match inner.entries.get(key) {
            Some(s) if s.entry.version == expected => s.expires_at,
            other => {
                return Ok(Swap::Conflict {
                    current: other.map(|s| s.entry.clone()),
                });
            }
        };
        inner.expiries.remove(&(at, key.to_string()));
        let expires_at = now + capped(ttl);
        inner.expiries.insert((expires_at, key.to_string()));
        if let Some(s) = inner.entries.get_mut(key) {
            s.expires_at = expires_at;
        }
        self.shared.wake.notify_one();
        Ok(Swap::Done { version: expected })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, StoreError> {
        let mut inner = self.lock();
        expire_due(&mut inner, Instant::now());
        let mut found: Vec<(String, Entry)> = inner
            .entries
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, s)| (k.clone(), s.entry.clone()))
            .collect();
        found.sort_by_key(|(_, e)| e.created);
        Ok(found)
    }

    fn watch(&self, key: &str) -> Option<BoxStream<'static, WatchEvent>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock()
            .watchers
            .entry(key.to_string())
            .or_default()
            .push(tx);
        Some(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|e| (e, rx))
        })))
    }

    fn watch_prefix(&self, prefix: &str) -> Option<BoxStream<'static, PrefixEvent>> {
        let (tx, rx) = mpsc::unbounded_channel();
        // In place at once: the store is one lock.
        let _ = tx.send(PrefixEvent::Watching);
        self.lock().prefix_watchers.push((prefix.to_string(), tx));
        Some(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|e| (e, rx))
        })))
    }
}
