//! Shard identity and the sharding-function traits every placement
//! algorithm implements.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::hash::key_hash;
use crate::key::ShardKey;

/// The identity of one shard: an index chosen by the sharding function.
///
/// For a numbered-shard function (modulo, jump) the ids are `0..n`. Functions
/// over a named member set (ring, rendezvous, Maglev, a set with arbitrary
/// removal) give each member an id when it joins and keep it while it stays,
/// so ids may have holes after a removal; map ids back to members through the
/// function's own member list.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ShardId(u32);

impl ShardId {
    /// The shard with index `index`.
    pub const fn new(index: u32) -> Self {
        ShardId(index)
    }

    /// The index as a `u32`.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The index as a `usize`, for indexing a slice of per-shard state.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl From<u32> for ShardId {
    fn from(index: u32) -> Self {
        ShardId(index)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bare number, so that `format!("shard {id}")` reads right.
        fmt::Display::fmt(&self.0, f)
    }
}

/// A sharding function: maps a key hash to one of the current shards.
///
/// One trait serves every shape of placement:
///
/// - a stateless function of the hash and a shard count (modulo, jump):
///   the struct holds `n`;
/// - a lookup table (Maglev) or a sorted ring of points: the struct holds the
///   table, built when the membership changes, and a lookup reads it;
/// - a member set with weights and arbitrary removal (rendezvous, AnchorHash,
///   Memento): the struct holds the set; ids stay with their members;
/// - replica sets: [`ReplicaSharder`] extends this trait with R distinct
///   shards per key.
///
/// Membership changes are the implementation's own API (they differ per
/// algorithm); this trait is only the lookup, which is what the patterns
/// share.
///
/// # Implementing Sharder
///
/// - Every instance has at least one shard: constructors reject an empty
///   membership, and removing the last member is an error, so
///   [`shard_for_hash`](Sharder::shard_for_hash) always has an answer.
/// - A lookup is a pure function of the hash and the current membership:
///   every process with the same membership maps a hash to the same shard.
/// - A lookup does not allocate, lock or log.
/// - Every id a lookup returns is below [`id_bound`](Sharder::id_bound) and
///   passes [`contains`](Sharder::contains); a function whose ids can have
///   holes overrides both.
///
/// # Examples
///
/// ```
/// use weft_core::{ShardExt, ShardId, Sharder};
///
/// /// Modulo placement (not consistent; for illustration).
/// struct Modulo(u32);
///
/// impl Sharder for Modulo {
///     fn shard_count(&self) -> usize {
///         self.0 as usize
///     }
///     fn shard_for_hash(&self, hash: u64) -> ShardId {
///         ShardId::new((hash % u64::from(self.0)) as u32)
///     }
/// }
///
/// let shards = Modulo(8);
/// let shard = shards.shard_for("user-42");
/// assert!(shard.index() < 8);
/// assert_eq!(shard, shards.shard_for(&String::from("user-42")));
/// ```
pub trait Sharder {
    /// Number of shards a hash can map to now.
    fn shard_count(&self) -> usize;

    /// The shard that owns `hash`.
    fn shard_for_hash(&self, hash: u64) -> ShardId;

    /// One past the highest id a lookup can return now: every id is in
    /// `0..id_bound()`. Ids of a member-set function may have holes after
    /// a removal, so the bound can exceed [`shard_count`](Sharder::shard_count);
    /// per-shard state indexed by id needs `id_bound()` entries. The default
    /// is `shard_count()`, right for functions whose ids are `0..n`.
    fn id_bound(&self) -> usize {
        self.shard_count()
    }

    /// Whether a lookup can return `id` now (false for a hole left by a
    /// removed member). The default is `id < id_bound()`.
    fn contains(&self, id: ShardId) -> bool {
        id.index() < self.id_bound()
    }
}

/// Routing by key for every [`Sharder`], including `dyn Sharder`: the one
/// path every weft pattern routes by.
///
/// Blanket-implemented; bring it into scope (or use [`crate::prelude`]) to
/// call `sharder.shard_for(&key)`.
pub trait ShardExt: Sharder {
    /// The shard that owns `key`, hashed through the default key hasher
    /// ([`key_hash`]).
    #[inline]
    fn shard_for<K: ShardKey + ?Sized>(&self, key: &K) -> ShardId {
        self.shard_for_hash(key_hash(key))
    }
}

impl<S: Sharder + ?Sized> ShardExt for S {}

/// A sharding function that also names R distinct shards per key, in order
/// of preference: the key's replica set.
///
/// # Implementing ReplicaSharder
///
/// - `out[0]` is [`Sharder::shard_for_hash`] of the same hash: the primary.
/// - The shards written are pairwise distinct.
/// - Asking for fewer replicas gives a prefix of asking for more, so growing
///   the replication factor does not reshuffle existing replicas.
/// - Asking for more replicas than [`Sharder::shard_count`] is an error, not
///   a shorter answer; so is asking for none.
/// - Like a lookup, it does not allocate: the caller owns `out`.
pub trait ReplicaSharder: Sharder {
    /// Writes `out.len()` distinct shards for `hash`, primary first.
    ///
    /// # Errors
    ///
    /// [`CoreError::NotEnoughShards`] if `out.len()` exceeds the shard count,
    /// and [`CoreError::ZeroReplicas`] if `out` is empty.
    fn replicas_for_hash(&self, hash: u64, out: &mut [ShardId]) -> Result<(), CoreError>;
}

/// Replica sets by key for every [`ReplicaSharder`], including trait
/// objects. Blanket-implemented.
pub trait ReplicaExt: ReplicaSharder {
    /// Writes the replica set of `key`, hashed through the default key
    /// hasher.
    ///
    /// # Errors
    ///
    /// [`CoreError::NotEnoughShards`] if `out.len()` exceeds the shard count.
    fn replicas_for<K: ShardKey + ?Sized>(
        &self,
        key: &K,
        out: &mut [ShardId],
    ) -> Result<(), CoreError> {
        self.replicas_for_hash(key_hash(key), out)
    }
}

impl<S: ReplicaSharder + ?Sized> ReplicaExt for S {}

macro_rules! forward_sharder {
    ($($ty:ty),*) => {$(
        impl<S: Sharder + ?Sized> Sharder for $ty {
            fn shard_count(&self) -> usize {
                (**self).shard_count()
            }
            fn shard_for_hash(&self, hash: u64) -> ShardId {
                (**self).shard_for_hash(hash)
            }
            fn id_bound(&self) -> usize {
                (**self).id_bound()
            }
            fn contains(&self, id: ShardId) -> bool {
                (**self).contains(id)
            }
        }
    )*};
}
forward_sharder!(&S, Box<S>, Arc<S>);

macro_rules! forward_replica_sharder {
    ($($ty:ty),*) => {$(
        impl<S: ReplicaSharder + ?Sized> ReplicaSharder for $ty {
            fn replicas_for_hash(&self, hash: u64, out: &mut [ShardId]) -> Result<(), CoreError> {
                (**self).replicas_for_hash(hash, out)
            }
        }
    )*};
}
forward_replica_sharder!(&S, Box<S>, Arc<S>);

#[cfg(test)]
mod tests {
    use super::*;

    /// Rendezvous over `n` numbered shards: enough to exercise both traits.
    struct Hrw(u32);

    fn score(hash: u64, shard: u32) -> u64 {
        crate::key_hash(&(hash, shard))
    }

    impl Sharder for Hrw {
        fn shard_count(&self) -> usize {
            self.0 as usize
        }
        fn shard_for_hash(&self, hash: u64) -> ShardId {
            let best = (0..self.0).max_by_key(|&s| (score(hash, s), s));
            ShardId::new(best.unwrap_or(0))
        }
    }

    impl ReplicaSharder for Hrw {
        fn replicas_for_hash(&self, hash: u64, out: &mut [ShardId]) -> Result<(), CoreError> {
            if out.is_empty() {
                return Err(CoreError::ZeroReplicas);
            }
            if out.len() > self.shard_count() {
                return Err(CoreError::NotEnoughShards {
                    requested: out.len(),
                    available: self.shard_count(),
                });
            }
            let mut taken = 0;
            while taken < out.len() {
                let next = (0..self.0)
                    .filter(|s| !out[..taken].contains(&ShardId::new(*s)))
                    .max_by_key(|&s| (score(hash, s), s));
                out[taken] = ShardId::new(next.unwrap_or(0));
                taken += 1;
            }
            Ok(())
        }
    }

    #[test]
    fn shard_for_routes_through_the_default_key_hash() {
        use crate::{ReplicaExt, ShardExt};
        let hrw = Hrw(16);
        for key in ["a", "b", "user-42", ""] {
            assert_eq!(hrw.shard_for(key), hrw.shard_for_hash(key_hash(key)));
        }
        let shared: Arc<dyn Sharder> = Arc::new(Hrw(16));
        assert_eq!(shared.shard_for("user-42"), hrw.shard_for("user-42"));
        let borrowed: &dyn Sharder = &hrw;
        assert_eq!(borrowed.shard_for("user-42"), hrw.shard_for("user-42"));
        let boxed: Box<dyn ReplicaSharder + Send + Sync> = Box::new(Hrw(16));
        let mut out = [ShardId::default(); 2];
        boxed.replicas_for("user-42", &mut out).unwrap();
        assert_eq!(out[0], hrw.shard_for("user-42"));
    }

    #[test]
    fn replica_sets_start_with_the_primary_and_reject_too_many() {
        use crate::{ReplicaExt, ShardExt};
        let hrw = Hrw(5);
        let mut out = [ShardId::default(); 3];
        hrw.replicas_for("k", &mut out).unwrap();
        assert_eq!(out[0], hrw.shard_for("k"));
        assert!(out[0] != out[1] && out[1] != out[2] && out[0] != out[2]);
        assert_eq!(hrw.replicas_for("k", &mut []), Err(CoreError::ZeroReplicas));
        let mut too_many = [ShardId::default(); 6];
        assert_eq!(
            hrw.replicas_for("k", &mut too_many),
            Err(CoreError::NotEnoughShards {
                requested: 6,
                available: 5
            })
        );
    }

    #[test]
    fn shard_ids_serialize_as_plain_numbers() {
        assert_eq!(serde_json::to_string(&ShardId::new(7)).unwrap(), "7");
        assert_eq!(ShardId::new(7).to_string(), "7");
        assert_eq!(format!("shard {}", ShardId::new(7)), "shard 7");
    }
}
