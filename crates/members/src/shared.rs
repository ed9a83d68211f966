//! Memento over the live set, its history kept in the store so that every
//! process routes alike.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwapOption, Cache};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use weft_core::{ShardExt, ShardId, ShardKey};
use weft_lease::{CasStore, Swap};
use weft_shard::Memento;

use crate::member::{Live, MemberSet};
use crate::register::check_prefix;
use crate::{MembersError, Watcher};

/// How long the placement record lives without a change or a refresh.
const RECORD_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often an unchanged record's TTL is pushed back.
const REFRESH: Duration = Duration::from_secs(3600);
/// How often [`SharedMemento::follow`] re-reads the record on a store that
/// cannot watch a key.
const POLL: Duration = Duration::from_millis(200);
/// Compare-and-swap rounds before an apply gives up for now.
const ROUNDS: usize = 16;

/// The stored placement.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    /// `None` while nobody is placed.
    memento: Option<Memento>,
}

/// The routes of one placement record: the [`Memento`] it holds and the
/// live member behind each of its slots, as this process knows them.
#[derive(Debug)]
pub struct SharedRoutes {
    generation: u64,
    memento: Option<Memento>,
    /// The live member at each slot (`None`: placed, but not in this
    /// process's set: not seen yet, held out, or ejected here).
    lives: Vec<Option<Live>>,
}

impl SharedRoutes {
    /// The placement's generation: the version of its record in the store
    /// (rising with every change, also across a deleted or expired
    /// record), 0 before there is one. Processes on the same generation
    /// route every key to the same name.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The name that owns `key`, and its live member if this process's set
    /// has it; `None` for an empty placement.
    #[inline]
    pub fn route<K: ShardKey + ?Sized>(&self, key: &K) -> Option<(&str, Option<&Live>)> {
        let memento = self.memento.as_ref()?;
        let slot = memento.shard_for(key);
        let name = memento.name(slot)?;
        Some((name, self.lives.get(slot.index()).and_then(Option::as_ref)))
    }

    /// The placement itself; `None` while nobody is placed.
    pub fn memento(&self) -> Option<&Memento> {
        self.memento.as_ref()
    }

    /// The live member at `slot`, if this process's set has it.
    pub fn live(&self, slot: ShardId) -> Option<&Live> {
        self.lives.get(slot.index())?.as_ref()
    }
}

/// A [`SharedMemento`]'s routes cached for one task or thread (`Send`,
/// not shared: each lookup takes `&mut self`).
#[derive(Debug)]
pub struct SharedReader {
    cache: Cache<Arc<ArcSwapOption<SharedRoutes>>, Option<Arc<SharedRoutes>>>,
}

impl SharedReader {
    /// Routes `key` on the current placement, as
    /// [`SharedMemento::route`].
    #[inline]
    pub fn route<K: ShardKey + ?Sized, R>(
        &mut self,
        key: &K,
        f: impl FnOnce(&str, Option<&Live>) -> R,
    ) -> Option<R> {
        let (name, live) = self.cache.load().as_ref()?.route(key)?;
        Some(f(name, live))
    }
}

/// A [`Memento`] placement over the live member set: any member can leave
/// and only its keys move, each spread evenly over the rest.
///
/// Memento's placement depends on the order of removals, which processes
/// watching the set do not agree on by themselves. So the placement lives
/// in the store, under its own key, and every process routes by it:
///
/// - On each set, a process compares the set with the stored placement and
///   proposes the difference, each name confirmed against the store first:
///   a name leaves only if its registration record is gone, and joins
///   only if its record is there (a lagging watcher proposes nothing
///   false). Removals go in name order, then joins; the new placement is
///   written by compare-and-swap under the next generation, and a writer
///   that loses the race reads the winner's and starts over.
/// - Processes on the same generation route every key to the same name.
/// - Damping comes from the watcher: a name leaves when some process's
///   watcher dropped it after its hold window and its record is gone.
///   Ejection (a process's own health verdict) does not change the
///   shared placement: that process sees the name without a live member
///   (`route` gives it with `None`) and decides where to send.
/// - A join fills the most recently vacated slot, undoing that removal.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::{sync::Arc, time::Duration};
/// use weft_lease::{LeaseConfig, MemoryStore};
/// use weft_members::{Member, Registration, SharedMemento, WatchConfig, Watcher};
///
/// let store = Arc::new(MemoryStore::new());
/// let ttl = Duration::from_secs(3);
/// let mut regs = Vec::new();
/// for i in 0..3 {
///     let m = Member::new(format!("cache-{i}"), format!("10.0.0.{i}:11211"))?;
///     regs.push(Registration::register(store.clone(), "caches/", m, LeaseConfig::new(ttl), ttl).await?);
/// }
/// let mut watcher = Watcher::new(store.clone(), "caches/", WatchConfig::new(ttl)?)?;
/// let caches = SharedMemento::new(store, "caches/", "caches.placement")?;
/// caches.apply(&watcher.next().await?).await?;
/// let owner = caches.route("user-42", |name, live| (name.to_string(), live.is_some()));
/// assert!(matches!(owner, Some((_, true))));
/// # Ok::<(), weft_members::MembersError>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct SharedMemento {
    store: Arc<dyn CasStore>,
    prefix: String,
    key: String,
    current: Arc<ArcSwapOption<SharedRoutes>>,
    /// One apply at a time; when the record's TTL was last pushed back.
    updating: tokio::sync::Mutex<Option<Instant>>,
    /// The last set applied, to rebuild routes when only the record moved.
    last_set: std::sync::Mutex<Option<MemberSet>>,
}

impl SharedMemento {
    /// A shared placement of the members registered under `prefix`, kept
    /// at `key` of `store`.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for a bad prefix, or a key that is empty
    /// or under the members' prefix (it would be read as a member).
    pub fn new(store: Arc<dyn CasStore>, prefix: &str, key: &str) -> Result<Self, MembersError> {
        check_prefix(prefix)?;
        if key.is_empty() || key.starts_with(prefix) {
            return Err(MembersError::invalid(
                "placement key",
                key,
                format!("a non-empty key outside the members' prefix {prefix:?}"),
            ));
        }
        Ok(SharedMemento {
            store,
            prefix: prefix.to_string(),
            key: key.to_string(),
            current: Arc::new(ArcSwapOption::empty()),
            updating: tokio::sync::Mutex::new(None),
            last_set: std::sync::Mutex::new(None),
        })
    }

    /// Routes `key` on the current placement: `f` of the owning name and
    /// its live member (`None` if this process's set lacks it); `None`
    /// before the first apply or while nobody is placed. Lock-free and
    /// allocation-free.
    pub fn route<K: ShardKey + ?Sized, R>(
        &self,
        key: &K,
        f: impl FnOnce(&str, Option<&Live>) -> R,
    ) -> Option<R> {
        let routes = self.current.load();
        let (name, live) = routes.as_ref()?.route(key)?;
        Some(f(name, live))
    }

    /// The current routes (shared; a later change does not alter them).
    pub fn routes(&self) -> Option<Arc<SharedRoutes>> {
        self.current.load_full()
    }

    /// A handle for routing many keys from one task or thread: it keeps
    /// the current routes and checks with one atomic read per lookup
    /// whether they were replaced.
    pub fn reader(&self) -> SharedReader {
        SharedReader {
            cache: Cache::new(self.current.clone()),
        }
    }

    /// Brings the stored placement up to `set` (each change confirmed
    /// against the store), then routes by the stored placement.
    ///
    /// # Errors
    ///
    /// [`MembersError::Store`] if the store fails, or if other writers
    /// kept winning (the routes stay; the next set tries again).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a write either landed (and the next apply reads it) or
    /// did not.
    pub async fn apply(&self, set: &MemberSet) -> Result<(), MembersError> {
        let mut refreshed = self.updating.lock().await;
        *lock(&self.last_set) = Some(set.clone());
        let want: BTreeSet<&str> = set.members().iter().map(|l| l.member.name()).collect();
        for _ in 0..ROUNDS {
            let (record, version) = self.read().await?;
            let placed: BTreeSet<String> = record
                .memento
                .iter()
                .flat_map(names)
                .map(str::to_string)
                .collect();
            let leaving: Vec<&String> = placed
                .iter()
                .filter(|n| !want.contains(n.as_str()))
                .collect();
            let joining: Vec<&str> = want
                .iter()
                .copied()
                .filter(|n| !placed.contains(*n))
                .collect();
            // What is registered now, read once if anything differs.
            let registered = if leaving.is_empty() && joining.is_empty() {
                BTreeSet::new()
            } else {
                self.registered().await?
            };
            let mut next = record.memento.clone();
            let mut changed = false;
            for name in leaving {
                if registered.contains(name.as_str()) {
                    continue;
                }
                changed = true;
                match &mut next {
                    Some(m) if m.len() > 1 => {
                        m.remove(name).map_err(|e| self.corrupt(e))?;
                    }
                    // The last one: nobody is placed.
                    _ => next = None,
                }
            }
            for name in joining {
                if !registered.contains(name) {
                    continue;
                }
                changed = true;
                match &mut next {
                    Some(m) => {
                        m.add(name).map_err(|e| self.corrupt(e))?;
                    }
                    None => next = Some(Memento::new([name]).map_err(|e| self.corrupt(e))?),
                }
            }
            if !changed {
                if let Some(v) = version
                    && refreshed.is_none_or(|t| t.elapsed() >= REFRESH)
                {
                    let _ = self.store.refresh(&self.key, v, RECORD_TTL).await;
                    *refreshed = Some(Instant::now());
                }
                self.install(version.map_or(0, |v| v.0), record, set);
                return Ok(());
            }
            let next = Record { memento: next };
            // invariant: a number and a Memento's state always serialise.
            let value = serde_json::to_vec(&next).unwrap_or_default();
            let written = match version {
                Some(v) => {
                    self.store
                        .compare_and_swap(&self.key, v, value, RECORD_TTL)
                        .await
                }
                None => self.store.create(&self.key, value, RECORD_TTL).await,
            }
            .map_err(|source| self.store_error(source))?;
            if let Swap::Done { version } = written {
                *refreshed = Some(Instant::now());
                self.install(version.0, next, set);
                return Ok(());
            }
        }
        Err(self.store_error(weft_lease::StoreError::Unavailable {
            store: self.key.clone(),
            reason: format!("{ROUNDS} compare-and-swap rounds lost to other writers"),
            cause: None,
        }))
    }

    /// Re-reads the stored placement and routes by it (another process
    /// changed it), with the last set applied.
    ///
    /// # Errors
    ///
    /// [`MembersError::Store`] if the store fails.
    pub async fn refresh(&self) -> Result<(), MembersError> {
        let (record, version) = self.read().await?;
        let set = lock(&self.last_set).clone();
        if let Some(set) = set {
            self.install(version.map_or(0, |v| v.0), record, &set);
        }
        Ok(())
    }

    /// Applies every set `watcher` yields and follows every change of the
    /// stored placement (watching its key where the store can, else
    /// re-reading it every 200 ms), until the watcher fails for good.
    /// A failed apply is logged and retried on the next set or change.
    ///
    /// # Errors
    ///
    /// What the watcher's [`next`](Watcher::next) returns for good.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped, the routes stay where they were.
    pub async fn follow(&self, watcher: &mut Watcher) -> Result<(), MembersError> {
        let mut changes = self.store.watch(&self.key);
        let mut reopen = None;
        loop {
            if changes.is_none() && reopen.is_some_and(|at| Instant::now() >= at) {
                changes = self.store.watch(&self.key);
                reopen = None;
            }
            let prompt = async {
                match changes.as_mut() {
                    Some(s) => s.next().await.is_some(),
                    None => {
                        tokio::time::sleep(POLL).await;
                        true
                    }
                }
            };
            tokio::select! {
                set = watcher.next() => {
                    if let Err(e) = self.apply(&set?).await {
                        tracing::warn!(key = %self.key, error = %e, "placement not updated");
                    }
                }
                alive = prompt => {
                    if !alive {
                        // The key's watch ended (a lost connection): poll,
                        // and open it again a poll period from now.
                        changes = None;
                        reopen = Some(Instant::now() + POLL);
                    }
                    if let Err(e) = self.refresh().await {
                        tracing::warn!(key = %self.key, error = %e, "placement not read");
                    }
                }
            }
        }
    }

    /// The stored record and its version (an empty placement if none).
    async fn read(&self) -> Result<(Record, Option<weft_lease::Version>), MembersError> {
        let entry = self
            .store
            .get(&self.key)
            .await
            .map_err(|source| self.store_error(source))?;
        match entry {
            None => Ok((Record { memento: None }, None)),
            Some(e) => match serde_json::from_slice::<Record>(&e.value) {
                Ok(record) => Ok((record, Some(e.version))),
                Err(err) => Err(MembersError::invalid(
                    "placement record",
                    &self.key,
                    format!("a placement weft wrote: {err}"),
                )),
            },
        }
    }

    /// The names registered under the prefix now (one list).
    async fn registered(&self) -> Result<BTreeSet<String>, MembersError> {
        let listed = self
            .store
            .list(&self.prefix)
            .await
            .map_err(|source| self.store_error(source))?;
        Ok(listed
            .into_iter()
            .filter_map(|(key, _)| Some(key.strip_prefix(&self.prefix)?.to_string()))
            .collect())
    }

    /// Routes by `record` (of `generation`), each slot's member from `set`.
    fn install(&self, generation: u64, record: Record, set: &MemberSet) {
        if let Some(old) = self.current.load().as_ref()
            && old.generation > generation
        {
            return;
        }
        let lives = record.memento.as_ref().map_or_else(Vec::new, |m| {
            (0..m.slots())
                .map(|slot| set.get(m.name(ShardId::new(slot as u32))?).cloned())
                .collect()
        });
        self.current.store(Some(Arc::new(SharedRoutes {
            generation,
            memento: record.memento,
            lives,
        })));
    }

    fn store_error(&self, source: weft_lease::StoreError) -> MembersError {
        MembersError::Store {
            prefix: self.prefix.clone(),
            source,
        }
    }

    fn corrupt(&self, e: weft_shard::ShardError) -> MembersError {
        MembersError::invalid(
            "placement record",
            &self.key,
            format!("a consistent placement: {e}"),
        )
    }
}

/// The names placed in `memento`.
fn names(memento: &Memento) -> impl Iterator<Item = &str> + '_ {
    (0..memento.slots()).filter_map(|slot| memento.name(ShardId::new(slot as u32)))
}

fn lock<X>(m: &std::sync::Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
