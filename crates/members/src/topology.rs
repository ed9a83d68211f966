//! A scatter topology that follows the live member set: shards × replicas
//! from each member's metadata, and leaves that know whom they call.

use std::collections::BTreeMap;
use std::fmt;
use std::future::{Future, Ready, ready};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use futures::future::{Either, MapErr, TryFutureExt};
use weft_core::{Classify, Combine, ErrorClass, ShardId};
use weft_scatter::{
    CallOptions, Gather, Gathered, Leaf, LeafContext, MAX_ATTEMPTS, Plan, Scatter, ScatterConfig,
    Topology,
};

use crate::member::{Live, MemberSet};
use crate::{MembersError, Watcher};

/// Where members go in a scatter topology.
///
/// - **Leaf sharding** ([`sharded`](TopologySpec::sharded)): the index has
///   a fixed number of shards; a member serves the shard named by its
///   metadata `shard` (a number below the shard count), and its metadata
///   `replica`, if any, orders the shard's replicas (then its name).
/// - **Root distribution** ([`replicated`](TopologySpec::replicated)):
///   the work is split into a fixed number of parts, and every member can
///   serve every part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologySpec {
    layout: Layout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    Sharded {
        shards: usize,
        shard_key: String,
        replica_key: String,
    },
    Replicated {
        parts: usize,
    },
}

impl TopologySpec {
    /// The metadata key that names a member's shard, by default.
    pub const SHARD: &'static str = "shard";
    /// The metadata key that orders a shard's replicas, by default.
    pub const REPLICA: &'static str = "replica";

    /// Leaf sharding over `shards` shards, placed by the metadata keys
    /// [`SHARD`](TopologySpec::SHARD) and
    /// [`REPLICA`](TopologySpec::REPLICA).
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for zero shards or more than
    /// [`Topology::MAX_SHARDS`].
    pub fn sharded(shards: usize) -> Result<Self, MembersError> {
        check_count("shard count", shards)?;
        Ok(TopologySpec {
            layout: Layout::Sharded {
                shards,
                shard_key: TopologySpec::SHARD.to_string(),
                replica_key: TopologySpec::REPLICA.to_string(),
            },
        })
    }

    /// Root distribution: `parts` parts, each served by every member.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for zero parts or more than
    /// [`Topology::MAX_SHARDS`].
    pub fn replicated(parts: usize) -> Result<Self, MembersError> {
        check_count("part count", parts)?;
        Ok(TopologySpec {
            layout: Layout::Replicated { parts },
        })
    }

    /// Reads the shard and the replica order from other metadata keys.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for an empty key, the same key twice, or
    /// a spec that is not sharded.
    pub fn keys(mut self, shard: &str, replica: &str) -> Result<Self, MembersError> {
        let Layout::Sharded {
            shard_key,
            replica_key,
            ..
        } = &mut self.layout
        else {
            return Err(MembersError::invalid(
                "metadata keys",
                (shard, replica),
                "set on a sharded spec (a replicated one reads none)",
            ));
        };
        if shard.is_empty() || replica.is_empty() || shard == replica {
            return Err(MembersError::invalid(
                "metadata keys",
                (shard, replica),
                "two different, non-empty keys",
            ));
        }
        *shard_key = shard.to_string();
        *replica_key = replica.to_string();
        Ok(self)
    }

    /// The number of shards (or parts).
    pub fn shard_count(&self) -> usize {
        match &self.layout {
            Layout::Sharded { shards, .. } => *shards,
            Layout::Replicated { parts } => *parts,
        }
    }
}

fn check_count(what: &'static str, n: usize) -> Result<(), MembersError> {
    if n == 0 || n > Topology::MAX_SHARDS {
        return Err(MembersError::invalid(
            what,
            n,
            format!("1 to {}", Topology::MAX_SHARDS),
        ));
    }
    Ok(())
}

/// A member left out of a topology because its metadata does not place
/// it: it is in no shard, so no request is sent to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misplaced {
    /// The member's name.
    pub name: String,
    /// What is wrong with its metadata.
    pub reason: String,
}

/// The scatter topology of one member set, and the member behind each
/// replica index.
///
/// A shard with fewer live members than a call needs (none, or fewer than
/// a [`Gather::Quorum`]) gets stand-in replicas that answer at once with
/// [`MemberLeafError::NoMember`], so the call reports the shard as failed
/// rather than sending to a member that is not there.
#[derive(Debug, Clone)]
pub struct MemberTopology {
    set: MemberSet,
    topology: Topology,
    /// The member at each replica index; indices past the end are stand-ins.
    members: Vec<Live>,
    misplaced: Vec<Misplaced>,
}

impl MemberTopology {
    /// The topology of `set` under `spec`, for calls gathered with
    /// `policy` (a quorum needs as many replicas per shard).
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] if the topology is too large for a
    /// scatter root (more than [`Topology::MAX_REPLICAS`] pairs), or for
    /// a quorum over [`MAX_ATTEMPTS`].
    pub fn build(
        set: &MemberSet,
        spec: &TopologySpec,
        policy: Gather,
    ) -> Result<Self, MembersError> {
        let min = match policy {
            Gather::Quorum(q) if q > MAX_ATTEMPTS => {
                return Err(MembersError::invalid(
                    "quorum",
                    q,
                    format!("at most {MAX_ATTEMPTS} (a root's attempts per shard)"),
                ));
            }
            Gather::Quorum(q) => q.max(1),
            _ => 1,
        };
        // Every part lists every member in root distribution: check the
        // pairs before making them.
        if let Layout::Replicated { parts } = &spec.layout {
            let pairs = parts.checked_mul(set.len().max(min));
            if pairs.is_none_or(|p| p > Topology::MAX_REPLICAS) {
                return Err(MembersError::invalid(
                    "member topology",
                    (parts, set.len()),
                    format!(
                        "at most {} part-member pairs for a scatter root",
                        Topology::MAX_REPLICAS
                    ),
                ));
            }
        }
        let mut misplaced = Vec::new();
        // Each shard's members, in replica order.
        let mut shards: Vec<Vec<&Live>> = vec![Vec::new(); spec.shard_count()];
        match &spec.layout {
            Layout::Sharded {
                shards: count,
                shard_key,
                replica_key,
            } => {
                let mut placed: BTreeMap<usize, Vec<(u64, &Live)>> = BTreeMap::new();
                for live in set.members() {
                    let m = &live.member;
                    let shard = match m.get(shard_key).map(str::parse::<usize>) {
                        Some(Ok(s)) if s < *count => s,
                        got => {
                            misplaced.push(Misplaced {
                                name: m.name().to_string(),
                                reason: match got {
                                    None => format!("no metadata {shard_key:?}"),
                                    Some(_) => format!(
                                        "metadata {shard_key:?} is {:?}, not a shard below {count}",
                                        m.get(shard_key).unwrap_or_default()
                                    ),
                                },
                            });
                            continue;
                        }
                    };
                    let order = match m.get(replica_key).map(str::parse::<u64>) {
                        None => u64::MAX,
                        Some(Ok(r)) => r,
                        Some(Err(_)) => {
                            misplaced.push(Misplaced {
                                name: m.name().to_string(),
                                reason: format!(
                                    "metadata {replica_key:?} is {:?}, not a number",
                                    m.get(replica_key).unwrap_or_default()
                                ),
                            });
                            continue;
                        }
                    };
                    placed.entry(shard).or_default().push((order, live));
                }
                for (shard, mut lives) in placed {
                    lives.sort_by(|a, b| (a.0, a.1.member.name()).cmp(&(b.0, b.1.member.name())));
                    shards[shard] = lives.into_iter().map(|(_, l)| l).collect();
                }
            }
            Layout::Replicated { .. } => {
                let all: Vec<&Live> = set.members().iter().collect();
                shards.iter_mut().for_each(|s| s.clone_from(&all));
            }
        }
        // Replica indices: the members in order of first appearance, then
        // as many stand-ins as the neediest shard lacks.
        let mut members: Vec<Live> = Vec::new();
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        let mut lists = Vec::with_capacity(shards.len());
        let mut stand_ins = 0;
        for shard in &shards {
            let mut list: Vec<usize> = shard
                .iter()
                .map(|live| {
                    *index.entry(live.member.name()).or_insert_with(|| {
                        members.push((*live).clone());
                        members.len() - 1
                    })
                })
                .collect();
            stand_ins = stand_ins.max(min.saturating_sub(list.len()));
            list.resize_with(list.len().max(min), || usize::MAX);
            lists.push(list);
        }
        let real = members.len();
        for list in &mut lists {
            let missing = list.iter_mut().filter(|r| **r == usize::MAX);
            for (stand_in, r) in (real..).zip(missing) {
                *r = stand_in;
            }
        }
        let replicas = real.saturating_add(stand_ins);
        let topology = Topology::new(lists, replicas).map_err(|e| {
            MembersError::invalid(
                "member topology",
                (spec.shard_count(), replicas),
                format!("a topology a scatter root takes: {e}"),
            )
        })?;
        Ok(MemberTopology {
            set: set.clone(),
            topology,
            members,
            misplaced,
        })
    }

    /// The scatter topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The member behind replica index `replica`; `None` for a stand-in.
    pub fn member(&self, replica: usize) -> Option<&Live> {
        self.members.get(replica)
    }

    /// The live members of `shard`, in replica order.
    pub fn members_of(&self, shard: ShardId) -> impl Iterator<Item = &Live> + '_ {
        self.topology
            .replicas_of(shard)
            .iter()
            .filter_map(|&r| self.members.get(r))
    }

    /// Members left out because their metadata does not place them.
    pub fn misplaced(&self) -> &[Misplaced] {
        &self.misplaced
    }

    /// The member set this topology is of.
    pub fn set(&self) -> &MemberSet {
        &self.set
    }
}

/// What a leaf of a live topology gets: the scatter call's context and
/// the member it is sent to.
#[derive(Debug, Clone)]
pub struct MemberContext {
    /// The scatter root's context (shard, replica index, attempt, hedge,
    /// deadline).
    pub cx: LeafContext,
    topology: Arc<MemberTopology>,
}

impl MemberContext {
    /// The member this call goes to.
    pub fn member(&self) -> &Live {
        // invariant: a context is made only for an index with a member.
        self.topology
            .member(self.cx.replica)
            .unwrap_or_else(|| unreachable!("a stand-in replica is never called"))
    }

    /// The member's address: where to send the call.
    pub fn address(&self) -> &str {
        self.member().member.address()
    }
}

/// Why a leaf of a live topology did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberLeafError<E> {
    /// The shard had no live member for this attempt.
    #[error("shard {shard} has no live member for this attempt")]
    NoMember {
        /// The shard.
        shard: ShardId,
    },
    /// The member's call failed.
    #[error(transparent)]
    Leaf(E),
}

impl<E: Classify> Classify for MemberLeafError<E> {
    fn class(&self) -> ErrorClass {
        match self {
            // Another replica of the shard may be live.
            MemberLeafError::NoMember { .. } => ErrorClass::Transient,
            MemberLeafError::Leaf(e) => e.class(),
        }
    }
}

/// A leaf over one [`MemberTopology`]: calls `f` with the member of the
/// replica the root chose.
pub struct MemberLeaf<F> {
    f: Arc<F>,
    topology: Arc<MemberTopology>,
}

impl<F> fmt::Debug for MemberLeaf<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberLeaf")
            .field("topology", &self.topology)
            .finish_non_exhaustive()
    }
}

type LeafFuture<Fut, T, E> =
    Either<MapErr<Fut, fn(E) -> MemberLeafError<E>>, Ready<Result<T, MemberLeafError<E>>>>;

impl<Req, F, Fut, T, E> Leaf<Req> for MemberLeaf<F>
where
    F: Fn(Req, MemberContext) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classify + fmt::Display,
{
    type Response = T;
    type Error = MemberLeafError<E>;
    type Future = LeafFuture<Fut, T, E>;

    fn call(&self, request: Req, cx: LeafContext) -> Self::Future {
        if self.topology.member(cx.replica).is_none() {
            return Either::Right(ready(Err(MemberLeafError::NoMember { shard: cx.shard })));
        }
        let context = MemberContext {
            cx,
            topology: self.topology.clone(),
        };
        Either::Left((self.f)(request, context).map_err(MemberLeafError::Leaf as fn(E) -> _))
    }
}

/// The scatter root of one member set.
pub struct LiveRoot<F> {
    topology: Arc<MemberTopology>,
    scatter: Scatter<MemberLeaf<F>>,
}

impl<F> fmt::Debug for LiveRoot<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveRoot")
            .field("scatter", &self.scatter)
            .finish_non_exhaustive()
    }
}

impl<F> LiveRoot<F> {
    /// The member topology the root calls.
    pub fn topology(&self) -> &MemberTopology {
        &self.topology
    }

    /// The scatter root itself (health, hedge delay, and every gather).
    pub fn scatter(&self) -> &Scatter<MemberLeaf<F>> {
        &self.scatter
    }
}

/// A scatter root over the live member set: each set is turned into a
/// [`MemberTopology`] and a root over it, swapped in whole; a call runs on
/// the root current when it starts, to its end.
///
/// The leaf is any `Fn(Req, MemberContext) -> impl Future<Output =
/// Result<T, E>>`; [`MemberContext::address`] says where to send.
///
/// A new set builds a new root: replica health and the latency window
/// that sets the hedge delay start afresh with it (sets change seldom;
/// between changes every call shares them).
pub struct LiveScatter<F> {
    spec: TopologySpec,
    config: ScatterConfig,
    leaf: Arc<F>,
    current: ArcSwapOption<LiveRoot<F>>,
    updating: Mutex<()>,
}

impl<F> fmt::Debug for LiveScatter<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveScatter")
            .field("spec", &self.spec)
            .field("config", &self.config)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl<F> LiveScatter<F> {
    /// A root for `spec` calling `leaf` under `config`; no set yet.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] if `config` cannot work with the spec's
    /// shard count (a first-k over more shards than there are), or is
    /// invalid on its own.
    pub fn new(spec: TopologySpec, leaf: F, config: ScatterConfig) -> Result<Self, MembersError> {
        // Check the config against a topology of the spec's shape now, so
        // that no later set can fail for it.
        let probe = Topology::replicated(spec.shard_count(), 1).and_then(|t| {
            let padded = match config.policy() {
                Gather::Quorum(q) => Topology::replicated(spec.shard_count(), q.max(1))?,
                _ => t,
            };
            Scatter::new(padded, (), config.clone()).map(drop)
        });
        probe.map_err(|e| MembersError::invalid("scatter config", &config, e.to_string()))?;
        Ok(LiveScatter {
            spec,
            config,
            leaf: Arc::new(leaf),
            current: ArcSwapOption::empty(),
            updating: Mutex::new(()),
        })
    }

    /// Makes `set` the current set: a new topology and root, swapped in;
    /// calls already running finish on the old one. A set older than the
    /// current one (a lower epoch) is ignored.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] if the set's topology is too large for a
    /// root; the current root stays.
    pub fn apply(&self, set: &MemberSet) -> Result<(), MembersError> {
        let _one = self.updating.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = self.current.load().as_ref()
            && old.topology.set.epoch() > set.epoch()
        {
            return Ok(());
        }
        let topology = Arc::new(MemberTopology::build(
            set,
            &self.spec,
            self.config.policy(),
        )?);
        for m in topology.misplaced() {
            tracing::warn!(member = %m.name, reason = %m.reason, "member left out of the scatter topology");
        }
        let leaf = MemberLeaf {
            f: self.leaf.clone(),
            topology: topology.clone(),
        };
        let scatter = Scatter::new(topology.topology().clone(), leaf, self.config.clone())
            .map_err(|e| MembersError::invalid("scatter config", &self.config, e.to_string()))?;
        self.current
            .store(Some(Arc::new(LiveRoot { topology, scatter })));
        Ok(())
    }

    /// The current root, if a set was applied.
    pub fn root(&self) -> Option<Arc<LiveRoot<F>>> {
        self.current.load_full()
    }

    /// Gathers `plan` on the current root (see [`Scatter::gather_with`]).
    ///
    /// # Errors
    ///
    /// [`MembersError::NoSet`] before any set was applied, and
    /// [`MembersError::Scatter`] for a call the root refuses (a shard
    /// outside the spec, a zero deadline). Shards that failed are in the
    /// report.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels every leaf call in flight.
    pub async fn gather<Req, C>(
        &self,
        plan: Plan<Req>,
        combine: &C,
        options: CallOptions,
    ) -> Result<Gathered<C::Output>, MembersError>
    where
        MemberLeaf<F>: Leaf<Req, Response = C::Input>,
        Req: Clone,
        C: Combine,
    {
        let root = self.root().ok_or(MembersError::NoSet)?;
        root.scatter
            .gather_with(plan, combine, options)
            .await
            .map_err(|source| MembersError::Scatter { source })
    }

    /// Applies every set `watcher` yields, until it fails for good.
    ///
    /// # Errors
    ///
    /// What the watcher's [`next`](Watcher::next) returns for good.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped, the root stays at the last set applied.
    pub async fn follow(&self, watcher: &mut Watcher) -> Result<(), MembersError> {
        loop {
            let set = watcher.next().await?;
            if let Err(e) = self.apply(&set) {
                tracing::error!(epoch = set.epoch(), error = %e, "member set not applied");
            }
        }
    }
}
