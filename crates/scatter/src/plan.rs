//! What each shard is asked: one sub-request per shard.

use std::collections::BTreeMap;

use weft_core::{ShardExt, ShardId, ShardKey, Sharder};

/// The sub-requests of one scatter/gather call, one per shard asked.
///
/// Shards of the topology that the plan leaves out are reported as
/// `Skipped`, not as missing.
///
/// # Examples
///
/// ```
/// use weft_core::ShardExt;
/// use weft_scatter::Plan;
/// use weft_shard::LevelJump;
///
/// // Leaf sharding: a multi-get split into one sub-request per shard that
/// // owns some of the keys, each key to its owner only.
/// let shards = LevelJump::new(4)?;
/// let plan = Plan::by_key(&shards, ["a", "b", "c", "d", "e"], |keys| keys);
/// for (shard, keys) in plan.iter() {
///     assert!(keys.iter().all(|k| shards.shard_for(*k) == *shard));
/// }
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Plan<Req> {
    pub(crate) entries: Vec<(ShardId, Req)>,
}

impl<Req> Plan<Req> {
    /// A plan from explicit `(shard, sub-request)` pairs.
    pub fn new(entries: Vec<(ShardId, Req)>) -> Self {
        Plan { entries }
    }

    /// The same request to every one of `shards` shards (root distribution
    /// of identical work, or a query every shard must answer).
    pub fn broadcast(shards: usize, request: Req) -> Self
    where
        Req: Clone,
    {
        Plan {
            entries: (0..shards)
                .map(|i| (ShardId::new(i as u32), request.clone()))
                .collect(),
        }
    }

    /// Splits `keys` by their owning shard under `sharder` and builds one
    /// sub-request per shard from its keys, in shard order. Each key goes to
    /// the shard that owns it and to no other.
    ///
    /// Shard ids are the sharder's own, holes included (a member-set
    /// function after a removal), so the topology needs
    /// [`Sharder::id_bound`] shards; a plan naming a shard the topology does
    /// not have is refused by the call ([`crate::ScatterError::UnknownShard`]),
    /// never sent elsewhere.
    pub fn by_key<S, K, I, F>(sharder: &S, keys: I, mut build: F) -> Self
    where
        S: Sharder + ?Sized,
        K: ShardKey,
        I: IntoIterator<Item = K>,
        F: FnMut(Vec<K>) -> Req,
    {
        let mut groups: BTreeMap<ShardId, Vec<K>> = BTreeMap::new();
        for key in keys {
            groups.entry(sharder.shard_for(&key)).or_default().push(key);
        }
        Plan {
            entries: groups
                .into_iter()
                .map(|(shard, keys)| (shard, build(keys)))
                .collect(),
        }
    }

    /// The `(shard, sub-request)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = &(ShardId, Req)> {
        self.entries.iter()
    }

    /// The number of shards asked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no shard is asked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
