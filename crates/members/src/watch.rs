//! Watching a prefix: versioned member sets, with removals damped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;
use weft_core::time::capped;
use weft_core::{Backoff, Classify, ErrorClass};
use weft_lease::{CasStore, PrefixEvent, Version};

use crate::MembersError;
use crate::member::{Live, Member, MemberSet};
use crate::register::check_prefix;

/// How a [`Watcher`] looks and damps.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    ttl: Duration,
    poll: Duration,
    hold: Duration,
    watch: bool,
}

impl WatchConfig {
    /// For registrations whose leases have `ttl`: follows the store's
    /// prefix watch where it has one (etcd, in memory), re-listing on each
    /// change and at least once per TTL; otherwise (Redis) lists every
    /// 200 ms (or every quarter TTL, if shorter). Removals at once.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for a TTL of zero.
    pub fn new(ttl: Duration) -> Result<Self, MembersError> {
        if ttl.is_zero() {
            return Err(MembersError::invalid("lease TTL", ttl, "above zero"));
        }
        Ok(WatchConfig {
            ttl,
            poll: (ttl / 4).clamp(Duration::from_millis(1), Duration::from_millis(200)),
            hold: Duration::ZERO,
            watch: true,
        })
    }

    /// Lists every poll period even where the store could watch the
    /// prefix (the behaviour on a store without a prefix watch).
    #[must_use]
    pub fn poll_only(mut self) -> Self {
        self.watch = false;
        self
    }

    /// Lists every `every` while the store's prefix watch is not in use
    /// (default 200 ms, or a quarter of the TTL if shorter).
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for a period under 1 ms or over the TTL
    /// (a member's departure would go unseen for longer than its lease).
    pub fn poll(mut self, every: Duration) -> Result<Self, MembersError> {
        if every < Duration::from_millis(1) || every > self.ttl {
            return Err(MembersError::invalid(
                "poll period",
                every,
                format!("1 ms to the lease TTL {:?}", self.ttl),
            ));
        }
        self.poll = every;
        Ok(self)
    }

    /// Keeps a member that disappeared for `window` before removing it,
    /// so that a flap shorter than the window (a restart, a lease lost and
    /// taken again) moves no key. Additions apply at once.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for a window over the lease TTL: a dead
    /// member already stays for up to a TTL before its record expires.
    pub fn hold(mut self, window: Duration) -> Result<Self, MembersError> {
        if window > self.ttl {
            return Err(MembersError::invalid(
                "hold window",
                window,
                format!("at most the lease TTL {:?}", self.ttl),
            ));
        }
        self.hold = window;
        Ok(self)
    }
}

/// What the watcher knows of one name.
#[derive(Debug, Clone)]
struct Known {
    live: Live,
    /// When it was first missing from the store, while it is.
    missing_since: Option<Instant>,
    /// The last look that found it.
    seen: u64,
}

/// Yields the live member set under a prefix each time it changes.
///
/// Each look lists the prefix (the store's list is linearizable on etcd,
/// Redis and in memory). A member seen at a lower token than before is a
/// stale record and ignored, so a watcher never goes back to an older
/// registration of a name. A member missing from the store stays for the
/// [hold window](WatchConfig::hold), then leaves; one that comes back
/// within it never left. [`eject`](Watcher::eject) takes a member out at
/// once (the application's own health verdict), and
/// [`readmit`](Watcher::readmit) brings it back.
///
/// A new watcher (or one started after a store restart) begins from what
/// the store holds now.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::{sync::Arc, time::Duration};
/// use weft_lease::{LeaseConfig, MemoryStore};
/// use weft_members::{Member, Registration, WatchConfig, Watcher};
///
/// let store = Arc::new(MemoryStore::new());
/// let ttl = Duration::from_secs(3);
/// let me = Member::new("cache-1", "10.0.0.7:11211")?;
/// let reg = Registration::register(store.clone(), "caches/", me, LeaseConfig::new(ttl), ttl).await?;
///
/// let mut watcher = Watcher::new(store, "caches/", WatchConfig::new(ttl)?)?;
/// let set = watcher.next().await?;
/// assert_eq!(set.len(), 1);
/// reg.deregister().await?;
/// assert!(watcher.next().await?.is_empty());
/// # Ok::<(), weft_members::MembersError>(())
/// # }).unwrap();
/// ```
pub struct Watcher {
    store: Arc<dyn CasStore>,
    prefix: String,
    config: WatchConfig,
    known: BTreeMap<String, Known>,
    /// The highest token seen per name, kept after the name leaves.
    tokens: HashMap<String, Version>,
    ejected: BTreeSet<String>,
    epoch: u64,
    yielded: Option<u64>,
    /// The last list, and when it was taken.
    looked: Option<Instant>,
    /// Looks taken.
    looks: u64,
    /// The store's prefix watch, while open.
    events: Option<BoxStream<'static, PrefixEvent>>,
    /// The watch is in place: lists are needed only on its events.
    watching: bool,
    /// A change was reported since the last list.
    dirty: bool,
    /// When to open a watch again after one ended; `None` to open at once.
    rewatch_at: Option<Instant>,
    /// The store has no prefix watch (or the config declines it).
    polling: bool,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("prefix", &self.prefix)
            .field("config", &self.config)
            .field("epoch", &self.epoch)
            .field("members", &self.known.len())
            .field("ejected", &self.ejected)
            .field("watching", &self.watching)
            .finish_non_exhaustive()
    }
}

impl Watcher {
    /// Watches `prefix` (ending with `/`) of `store`.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for a bad prefix.
    pub fn new(
        store: Arc<dyn CasStore>,
        prefix: &str,
        config: WatchConfig,
    ) -> Result<Self, MembersError> {
        check_prefix(prefix)?;
        Ok(Watcher {
            store,
            prefix: prefix.to_string(),
            known: BTreeMap::new(),
            tokens: HashMap::new(),
            ejected: BTreeSet::new(),
            epoch: 0,
            yielded: None,
            looked: None,
            looks: 0,
            events: None,
            watching: false,
            dirty: false,
            rewatch_at: None,
            polling: !config.watch,
            config,
        })
    }

    /// The next member set that differs from the last one yielded (the
    /// first call yields the current set, even empty). Store failures
    /// that may pass are retried; the set stays as it was meanwhile.
    ///
    /// # Errors
    ///
    /// [`MembersError::Overlap`] if a key under the prefix belongs to a
    /// nested prefix; [`MembersError::Store`] if the store fails for good.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a call dropped mid-way loses no change; the next call
    /// yields it.
    pub async fn next(&mut self) -> Result<MemberSet, MembersError> {
        let retry = Backoff::exponential(
            Duration::from_millis(20),
            self.config.poll.max(Duration::from_millis(20)),
        )
        .and_then(|b| b.with_jitter(0.5))
        .unwrap_or(Backoff::constant(self.config.poll));
        let mut failures = 0u32;
        loop {
            if let Some(set) = self.changed() {
                return Ok(set);
            }
            self.open_watch();
            // Lists are due on a reported change, or each period: the poll
            // period, or the TTL (a safety net) while the watch is in place.
            let now = Instant::now();
            let period = capped(if self.watching {
                self.config.ttl
            } else {
                self.config.poll
            });
            let due = self.looked.map_or(now, |t| t + period);
            if !self.dirty && due > now {
                // Wait for that, for a held member's window to end, for a
                // reported change, or to open the watch again.
                let mut wake = due;
                if let Some(expiry) = self.next_expiry() {
                    wake = wake.min(expiry);
                }
                if let Some(at) = self.rewatch_at {
                    wake = wake.min(at);
                }
                self.wait(wake).await;
                continue;
            }
            match self.look().await {
                Ok(()) => failures = 0,
                Err(e) if e.class() == ErrorClass::Transient => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(prefix = %self.prefix, error = %e, "member list failed; retrying");
                    tokio::time::sleep(retry.delay(failures, self.epoch)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Opens the store's prefix watch if none is open, the store has one
    /// and an ended watch's pause is over.
    fn open_watch(&mut self) {
        if self.polling || self.events.is_some() {
            return;
        }
        if self.rewatch_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        self.rewatch_at = None;
        match self.store.watch_prefix(&self.prefix) {
            Some(events) => self.events = Some(events),
            None => self.polling = true,
        }
    }

    /// Sleeps until `until`, or until the watch reports something.
    async fn wait(&mut self, until: Instant) {
        let got = match self.events.as_mut() {
            Some(events) => tokio::select! {
                () = tokio::time::sleep_until(until) => None,
                event = events.next() => Some(event),
            },
            None => {
                tokio::time::sleep_until(until).await;
                None
            }
        };
        let Some(mut event) = got else { return };
        // Take in everything already reported: one list answers them all.
        loop {
            match event {
                Some(PrefixEvent::Watching) => {
                    self.watching = true;
                    self.dirty = true;
                }
                Some(PrefixEvent::Changed { .. }) => self.dirty = true,
                None => {
                    // The watch ended (a lost connection): poll, and open
                    // a new one soon (a poll period, at most 250 ms).
                    if self.watching {
                        tracing::warn!(prefix = %self.prefix, "member watch ended; polling until it is open again");
                    } else {
                        tracing::debug!(prefix = %self.prefix, "member watch did not open; polling");
                    }
                    self.events = None;
                    self.watching = false;
                    let pause = self.config.poll.min(Duration::from_millis(250));
                    self.rewatch_at = Some(Instant::now() + pause);
                    return;
                }
            }
            match self.events.as_mut().and_then(|e| e.next().now_or_never()) {
                Some(next) => event = next,
                None => return,
            }
        }
    }

    /// The prefix watched.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Takes `name` out of the sets from now on (until
    /// [`readmit`](Watcher::readmit)), without moving anyone else's keys
    /// in a placement that allows removal.
    pub fn eject(&mut self, name: &str) {
        self.ejected.insert(name.to_string());
    }

    /// Brings an ejected name back (if it is still registered).
    pub fn readmit(&mut self, name: &str) {
        self.ejected.remove(name);
    }

    /// The names ejected now.
    pub fn ejected(&self) -> impl Iterator<Item = &str> + '_ {
        self.ejected.iter().map(String::as_str)
    }

    /// Lists the prefix and updates what is known.
    async fn look(&mut self) -> Result<(), MembersError> {
        let listed = self
            .store
            .list(&self.prefix)
            .await
            .map_err(|source| MembersError::Store {
                prefix: self.prefix.clone(),
                source,
            })?;
        let now = Instant::now();
        self.looks += 1;
        let look = self.looks;
        for (key, entry) in listed {
            let Some(name) = key.strip_prefix(&self.prefix) else {
                continue;
            };
            if name.contains('/') || name.is_empty() {
                return Err(MembersError::Overlap {
                    prefix: self.prefix.clone(),
                    key,
                });
            }
            if let Some(known) = self.known.get_mut(name)
                && known.live.token == entry.version
            {
                // The record this watcher decoded already (a version is
                // never reused): nothing to read again.
                known.missing_since = None;
                known.seen = look;
                continue;
            }
            if self.tokens.get(name).is_some_and(|&t| entry.version < t) {
                // An older registration than one already seen (a lagging
                // read): the name is there, as last seen.
                if let Some(known) = self.known.get_mut(name) {
                    known.seen = look;
                }
                continue;
            }
            let Some(member) = Member::decode(&entry.value).filter(|m| m.name() == name) else {
                tracing::warn!(%key, "not a member record; skipped");
                continue;
            };
            self.tokens.insert(name.to_string(), entry.version);
            self.known.insert(
                name.to_string(),
                Known {
                    live: Live {
                        member,
                        token: entry.version,
                    },
                    missing_since: None,
                    seen: look,
                },
            );
        }
        for known in self.known.values_mut() {
            if known.seen != look && known.missing_since.is_none() {
                known.missing_since = Some(now);
            }
        }
        self.looked = Some(now);
        self.dirty = false;
        Ok(())
    }

    /// Drops members held past their window, and returns the set if it
    /// differs from the last one yielded.
    fn changed(&mut self) -> Option<MemberSet> {
        self.looked?;
        let now = Instant::now();
        let hold = self.config.hold;
        self.known
            .retain(|_, k| k.missing_since.is_none_or(|t| now < t + capped(hold)));
        let set = MemberSet::new(
            self.epoch + 1,
            self.known
                .iter()
                .filter(|(name, _)| !self.ejected.contains(*name))
                .map(|(_, k)| k.live.clone())
                .collect(),
        );
        if self.yielded == Some(set.digest()) {
            return None;
        }
        self.epoch += 1;
        self.yielded = Some(set.digest());
        Some(set)
    }

    /// When the first held member's window ends.
    fn next_expiry(&self) -> Option<Instant> {
        self.known
            .values()
            .filter_map(|k| k.missing_since)
            .min()
            .map(|t| t + capped(self.config.hold))
    }
}
