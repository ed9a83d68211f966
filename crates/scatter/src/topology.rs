//! Shards × replicas.

use weft_core::ShardId;

use crate::ScatterError;

/// Which replicas can answer for which shard.
///
/// Replicas are numbered `0..replica_count()` across the whole topology, so
/// that health and load are tracked per replica even when several shards
/// share it (root distribution), and each shard lists the replicas that hold
/// its data (leaf sharding).
///
/// # Examples
///
/// ```
/// use weft_scatter::Topology;
///
/// // Leaf sharding: 10 shards, each on its own 3 replicas.
/// let index = Topology::sharded(10, 3)?;
/// assert_eq!((index.shard_count(), index.replica_count()), (10, 30));
///
/// // Root distribution: work split in 4 parts over 3 identical replicas.
/// let pool = Topology::replicated(4, 3)?;
/// assert_eq!((pool.shard_count(), pool.replica_count()), (4, 3));
/// # Ok::<(), weft_scatter::ScatterError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    shards: Vec<Vec<usize>>,
    replicas: usize,
}

impl Topology {
    /// The most shards a topology may have.
    pub const MAX_SHARDS: usize = 1 << 20;
    /// The most replicas a topology may have, and the most (shard, replica)
    /// pairs: each costs the root memory for its health and load.
    pub const MAX_REPLICAS: usize = 1 << 24;

    /// Checks sizes before anything is allocated for them.
    fn check_size(
        shards: usize,
        replicas: usize,
        pairs: Option<usize>,
    ) -> Result<(), ScatterError> {
        let too_large = |what, got, max| Err(ScatterError::TooLarge { what, got, max });
        if shards == 0 {
            return Err(ScatterError::ZeroShards);
        }
        if shards > Topology::MAX_SHARDS {
            return too_large("shards", shards, Topology::MAX_SHARDS);
        }
        if replicas > Topology::MAX_REPLICAS {
            return too_large("replicas", replicas, Topology::MAX_REPLICAS);
        }
        match pairs {
            Some(p) if p <= Topology::MAX_REPLICAS => Ok(()),
            // An overflowing product is over the limit too.
            got => too_large(
                "shard-replica pairs",
                got.unwrap_or(usize::MAX),
                Topology::MAX_REPLICAS,
            ),
        }
    }

    /// A topology from explicit replica lists: `shards[i]` holds the replica
    /// indices (into `0..replicas`) that serve shard `i`.
    ///
    /// # Errors
    ///
    /// [`ScatterError::ZeroShards`], [`ScatterError::NoReplicas`],
    /// [`ScatterError::UnknownReplica`], and [`ScatterError::TooLarge`]
    /// above [`MAX_SHARDS`](Topology::MAX_SHARDS) shards or
    /// [`MAX_REPLICAS`](Topology::MAX_REPLICAS) replicas or pairs.
    pub fn new(shards: Vec<Vec<usize>>, replicas: usize) -> Result<Self, ScatterError> {
        let pairs = shards.iter().map(Vec::len).sum();
        Topology::check_size(shards.len(), replicas, Some(pairs))?;
        for (i, list) in shards.iter().enumerate() {
            let shard = ShardId::new(i as u32);
            if list.is_empty() {
                return Err(ScatterError::NoReplicas(shard));
            }
            if let Some(&replica) = list.iter().find(|&&r| r >= replicas) {
                return Err(ScatterError::UnknownReplica {
                    shard,
                    replica,
                    replicas,
                });
            }
        }
        Ok(Topology { shards, replicas })
    }

    /// Leaf sharding: `shards` shards, each with its own `replicas`
    /// replicas (shard `i` has replicas `i·r .. i·r + r`).
    ///
    /// # Errors
    ///
    /// [`ScatterError::ZeroShards`], [`ScatterError::NoReplicas`] or
    /// [`ScatterError::TooLarge`], as [`new`](Topology::new).
    pub fn sharded(shards: usize, replicas: usize) -> Result<Self, ScatterError> {
        let total = shards.checked_mul(replicas);
        Topology::check_size(shards, total.unwrap_or(usize::MAX), total)?;
        let lists = (0..shards)
            .map(|i| (i * replicas..(i + 1) * replicas).collect())
            .collect();
        Topology::new(lists, shards * replicas)
    }

    /// Root distribution: the work is split into `parts`, any of which any
    /// of the `replicas` can serve.
    ///
    /// # Errors
    ///
    /// [`ScatterError::ZeroShards`], [`ScatterError::NoReplicas`] or
    /// [`ScatterError::TooLarge`], as [`new`](Topology::new).
    pub fn replicated(parts: usize, replicas: usize) -> Result<Self, ScatterError> {
        Topology::check_size(parts, replicas, parts.checked_mul(replicas))?;
        Topology::new(vec![(0..replicas).collect(); parts], replicas)
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The number of replicas (across all shards).
    pub fn replica_count(&self) -> usize {
        self.replicas
    }

    /// The replicas of `shard`.
    pub fn replicas_of(&self, shard: ShardId) -> &[usize] {
        self.shards.get(shard.index()).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_topologies_are_rejected_by_name() {
        assert_eq!(Topology::sharded(0, 3), Err(ScatterError::ZeroShards));
        assert_eq!(
            Topology::sharded(2, 0),
            Err(ScatterError::NoReplicas(ShardId::new(0)))
        );
        assert_eq!(
            Topology::new(vec![vec![0], vec![5]], 2),
            Err(ScatterError::UnknownReplica {
                shard: ShardId::new(1),
                replica: 5,
                replicas: 2
            })
        );
    }
}
