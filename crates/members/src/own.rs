//! Partition ownership: the assignment kept in the store, and one lease
//! per partition, so that a partition has one owner at a time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weft_lease::{CasStore, Lease, LeaseConfig, LeaseGuard, Swap, Version};

use crate::register::check_prefix;
use crate::{Assignment, MemberSet, MembersError, Watcher};

/// How long the stored assignment lives unrefreshed; it is refreshed
/// every [`REFRESH`].
const RECORD_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const REFRESH: Duration = Duration::from_secs(3600);

/// What a member of an [`Ownership`] owns now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owned {
    /// The generation of the assignment it follows.
    pub generation: u64,
    /// Each partition it holds, with its lease's fencing token.
    pub partitions: BTreeMap<u32, Version>,
}

/// The stored assignment and the names it was made for.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    names: Vec<String>,
    assignment: Assignment,
}

/// Settings of an [`Ownership`].
#[derive(Debug, Clone)]
pub struct OwnershipConfig {
    partitions: u32,
    lease: LeaseConfig,
    every: Duration,
}

impl OwnershipConfig {
    /// `partitions` partitions, each held under a lease of `lease`; the
    /// member looks at the assignment and its leases every 100 ms.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for zero partitions or more than
    /// [`MAX_PARTITIONS`](crate::MAX_PARTITIONS).
    pub fn new(partitions: u32, lease: LeaseConfig) -> Result<Self, MembersError> {
        Assignment::new(partitions)?;
        Ok(OwnershipConfig {
            partitions,
            lease,
            every: Duration::from_millis(100),
        })
    }

    /// Looks every `every` (how soon a released partition is taken).
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for a period under 1 ms or over the lease
    /// TTL.
    pub fn every(mut self, every: Duration) -> Result<Self, MembersError> {
        if every < Duration::from_millis(1) || every > self.lease.ttl() {
            return Err(MembersError::invalid(
                "ownership period",
                every,
                format!("1 ms to the lease TTL {:?}", self.lease.ttl()),
            ));
        }
        self.every = every;
        Ok(self)
    }
}

/// One member's share of P partitions: it follows the live member set
/// (through its own [`Watcher`]), keeps the sticky [`Assignment`] in the
/// store current, and holds one weft lease per partition assigned to it.
///
/// ```text
///  member set ──▶ <prefix>assignment (CAS, generation + 1, sticky)
///                        │ owners
///                        ▼
///  mine, not held ──try──▶ <prefix>p/<n> lease  (waits for the old owner)
///  held, not mine ──release──▶ free for the new owner
///  lease lost (paused, cut off) ──▶ dropped before the store frees it
/// ```
///
/// - **One owner at a time.** A partition is owned only under its lease.
///   A handoff revokes before it assigns: the new owner waits until the
///   old one releases (or its lease expires). A member that was paused or
///   cut off loses its lease (the lease's signal fires before the store
///   can expire the key), so it has stopped before another can take the
///   partition over.
/// - **Fencing.** Each held partition has its lease's token
///   ([`Owned::partitions`]): a write to the partition's resource that
///   carries it is refused by a [`Fence`](weft_lease::Fence) once a later
///   owner wrote.
/// - **Generations.** The stored assignment's generation rises with each
///   change; members that saw different sets converge once their
///   watchers agree.
///
/// The application acts on a partition only while it holds it: read
/// [`owned`](Ownership::owned) (or [`guard`](Ownership::guard)) before
/// each piece of work, and carry the token to the resource.
#[derive(Debug)]
pub struct Ownership {
    owned: watch::Receiver<Owned>,
    guards: watch::Receiver<BTreeMap<u32, LeaseGuard>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Ownership {
    /// Starts `name`'s share of the partitions under `prefix` (ending with
    /// `/`, apart from the members' prefix), following `watcher`.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for a bad prefix, one that overlaps the
    /// watcher's, or a lease the store cannot keep.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start(
        store: Arc<dyn CasStore>,
        prefix: &str,
        name: &str,
        watcher: Watcher,
        config: OwnershipConfig,
    ) -> Result<Ownership, MembersError> {
        check_prefix(prefix)?;
        crate::member::check_name(name)?;
        let members = watcher.prefix();
        if prefix.starts_with(members) || members.starts_with(prefix) {
            return Err(MembersError::invalid(
                "ownership prefix",
                prefix,
                format!("a prefix apart from the members' {members:?}"),
            ));
        }
        config.lease.validate(store.as_ref()).map_err(|e| {
            MembersError::invalid(
                "partition lease",
                format!("{e}"),
                "a lease the store can keep",
            )
        })?;
        let (owned_tx, owned) = watch::channel(Owned::default());
        let (guards_tx, guards) = watch::channel(BTreeMap::new());
        let (stop, stopped) = oneshot::channel();
        let member = Member {
            store,
            prefix: prefix.to_string(),
            name: name.to_string(),
            config,
            held: BTreeMap::new(),
            owned: owned_tx,
            guards: guards_tx,
            refreshed: None,
        };
        let task = tokio::spawn(member.run(watcher, stopped));
        Ok(Ownership {
            owned,
            guards,
            stop: Some(stop),
            task,
        })
    }

    /// What this member owns now, and every change.
    pub fn owned(&self) -> watch::Receiver<Owned> {
        self.owned.clone()
    }

    /// Every held partition's lease guard, and every change.
    pub fn guards(&self) -> watch::Receiver<BTreeMap<u32, LeaseGuard>> {
        self.guards.clone()
    }

    /// The lease guard of `partition`, if this member holds it: its
    /// `cancelled()` resolves the moment the partition is no longer safely
    /// held.
    pub fn guard(&self, partition: u32) -> Option<LeaseGuard> {
        self.guards.borrow().get(&partition).cloned()
    }

    /// Releases every partition and stops (a graceful drain: the new
    /// owners need not wait for the leases to expire).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropped mid-way, partitions not yet released
    /// expire with their leases.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Ownership {
    fn drop(&mut self) {
        // The leases' own drops delete their keys as a best effort.
        self.task.abort();
    }
}

struct Member {
    store: Arc<dyn CasStore>,
    prefix: String,
    name: String,
    config: OwnershipConfig,
    held: BTreeMap<u32, Lease>,
    owned: watch::Sender<Owned>,
    guards: watch::Sender<BTreeMap<u32, LeaseGuard>>,
    refreshed: Option<Instant>,
}

impl Member {
    async fn run(mut self, mut watcher: Watcher, mut stopped: oneshot::Receiver<()>) {
        let mut set: Option<MemberSet> = None;
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                next = watcher.next() => match next {
                    Ok(s) => set = Some(s),
                    Err(e) => {
                        tracing::error!(prefix = %self.prefix, error = %e, "member watch failed; ownership stops");
                        break;
                    }
                },
                () = tokio::time::sleep(self.config.every) => {}
            }
            if let Err(e) = self.step(set.as_ref()).await {
                tracing::warn!(prefix = %self.prefix, member = %self.name, error = %e, "ownership step failed; retrying");
            }
        }
        for (_, lease) in std::mem::take(&mut self.held) {
            let _ = lease.release().await;
        }
        let generation = self.owned.borrow().generation;
        self.publish(generation);
    }

    /// One look: the assignment brought up to the member set, leases let
    /// go and taken to match it.
    async fn step(&mut self, set: Option<&MemberSet>) -> Result<(), MembersError> {
        // Leases that were lost are gone.
        self.held.retain(|_, lease| lease.is_held());
        let Some(set) = set else {
            self.publish(0);
            return Ok(());
        };
        let record = self.assignment(set).await?;
        let generation = record.assignment.generation();
        let mine: Vec<u32> = record.assignment.owned_by(&self.name).collect();
        // Revoke before assign: let go first, then take.
        let drop: Vec<u32> = self
            .held
            .keys()
            .copied()
            .filter(|p| !mine.contains(p))
            .collect();
        for p in drop {
            if let Some(lease) = self.held.remove(&p) {
                let _ = lease.release().await;
            }
        }
        self.publish(generation);
        for p in mine {
            if self.held.contains_key(&p) {
                continue;
            }
            let key = format!("{}p/{p}", self.prefix);
            let taken = Lease::builder(self.store.clone(), key, self.config.lease.clone())
                .value(self.name.clone())
                .try_acquire()
                .await
                .map_err(|source| MembersError::Lease {
                    name: self.name.clone(),
                    source,
                })?;
            if let Some(lease) = taken {
                self.held.insert(p, lease);
            }
        }
        self.publish(generation);
        Ok(())
    }

    /// The stored assignment, moved to `set`'s names if it was made for
    /// others (a compare-and-swap: one writer wins, the rest read it).
    async fn assignment(&mut self, set: &MemberSet) -> Result<Record, MembersError> {
        let key = format!("{}assignment", self.prefix);
        let names: Vec<String> = set
            .members()
            .iter()
            .map(|l| l.member.name().to_string())
            .collect();
        let store_err = |source| MembersError::Store {
            prefix: self.prefix.clone(),
            source,
        };
        for _ in 0..8 {
            let stored = self.store.get(&key).await.map_err(store_err)?;
            let current = stored
                .as_ref()
                .and_then(|e| {
                    serde_json::from_slice::<Record>(&e.value)
                        .ok()
                        .map(|r| (r, e.version))
                })
                .filter(|(r, _)| r.assignment.partitions() == self.config.partitions);
            if let Some((record, version)) = &current
                && record.names == names
            {
                if self.refreshed.is_none_or(|t| t.elapsed() >= REFRESH) {
                    let _ = self.store.refresh(&key, *version, RECORD_TTL).await;
                    self.refreshed = Some(Instant::now());
                }
                return Ok(record.clone());
            }
            let base = match &current {
                Some((record, _)) => record.assignment.clone(),
                None => Assignment::new(self.config.partitions)?,
            };
            let next = Record {
                assignment: base.next(&names),
                names: names.clone(),
            };
            // invariant: a struct of strings and numbers serialises.
            let value = serde_json::to_vec(&next).unwrap_or_default();
            let written = match (&stored, &current) {
                (Some(entry), _) => {
                    self.store
                        .compare_and_swap(&key, entry.version, value, RECORD_TTL)
                        .await
                }
                (None, _) => self.store.create(&key, value, RECORD_TTL).await,
            }
            .map_err(store_err)?;
            if let Swap::Done { .. } = written {
                self.refreshed = Some(Instant::now());
                return Ok(next);
            }
        }
        Err(MembersError::Store {
            prefix: self.prefix.clone(),
            source: weft_lease::StoreError::Unavailable {
                store: key,
                reason: "the assignment kept changing under eight tries".into(),
                cause: None,
            },
        })
    }

    fn publish(&self, generation: u64) {
        let owned = Owned {
            generation,
            partitions: self.held.iter().map(|(&p, l)| (p, l.token())).collect(),
        };
        self.owned.send_if_modified(|now| {
            let changed = *now != owned;
            if changed {
                *now = owned;
            }
            changed
        });
        let guards: BTreeMap<u32, LeaseGuard> = self
            .held
            .iter()
            .map(|(&p, l)| (p, l.cancellation()))
            .collect();
        self.guards.send_replace(guards);
    }
}
