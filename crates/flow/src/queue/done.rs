//! The set of item ids already done, so that no acknowledged item is
//! processed twice.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use super::ItemId;

/// Ids of items done, 16 shards so that workers finishing neighbouring
/// items take different locks.
///
/// Dense ids ([`ItemId::dense`]: a queue's numbers, a log's offsets) go in
/// a bitmap: shard `id % 16`, word `id / 1024`, bit `(id / 16) % 64`, so
/// ids that arrive mostly in order cost about two bits each and stay in
/// cache (scattered ones 16 bytes each). Other ids go in a hash set of
/// shard `seed % 16`.
pub(super) struct DoneSet<I> {
    shards: [Padded<Mutex<Words>>; 16],
    others: [Padded<Mutex<HashSet<I>>>; 16],
}

impl<I> Default for DoneSet<I> {
    fn default() -> Self {
        DoneSet {
            shards: Default::default(),
            others: std::array::from_fn(|_| Padded(Mutex::new(HashSet::new()))),
        }
    }
}

/// 64-id words of one shard, by word index.
type Words = HashMap<u64, u64, BuildHasherDefault<IdHasher>>;

impl<I: ItemId> DoneSet<I> {
    fn locate(&self, id: u64) -> (std::sync::MutexGuard<'_, Words>, u64, u64) {
        let shard = self.shards[(id % 16) as usize]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (shard, id / 1024, 1u64 << ((id / 16) % 64))
    }

    fn other(&self, id: &I) -> std::sync::MutexGuard<'_, HashSet<I>> {
        self.others[(id.seed() % 16) as usize]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn contains(&self, id: &I) -> bool {
        match id.dense() {
            Some(dense) => {
                let (shard, word, bit) = self.locate(dense);
                shard.get(&word).is_some_and(|w| w & bit != 0)
            }
            None => self.other(id).contains(id),
        }
    }

    pub(super) fn insert(&self, id: &I) {
        match id.dense() {
            Some(dense) => {
                let (mut shard, word, bit) = self.locate(dense);
                *shard.entry(word).or_insert(0) |= bit;
            }
            None => {
                self.other(id).insert(id.clone());
            }
        }
    }
}

/// Keeps each shard's lock on its own cache lines (no false sharing
/// between workers).
#[derive(Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// Hashes a `u64` id with one multiply (ids are not adversarial: they come
/// from the source).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = (id ^ (id >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    }
}

#[cfg(test)]
mod tests {
    use super::{DoneSet, ItemId};
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// An id that is not dense: the hash-set path.
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    struct Named(String);

    impl std::fmt::Display for Named {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl ItemId for Named {
        fn seed(&self) -> u64 {
            self.0.len() as u64
        }
    }

    proptest! {
        #[test]
        fn the_done_set_holds_exactly_the_ids_inserted(
            scattered in proptest::collection::vec(any::<u64>(), 0..100),
            start in any::<u64>(),
            run in 0u64..3000,
        ) {
            let set = DoneSet::default();
            let names = DoneSet::default();
            let mut model = HashSet::new();
            let dense = (0..run).map(|i| start.wrapping_add(i * 3));
            for id in scattered.iter().copied().chain(dense) {
                set.insert(&id);
                names.insert(&Named(id.to_string()));
                model.insert(id);
            }
            // Every id inserted, and its neighbours in the bitmap layout.
            for &id in &model {
                for probe in [id, id ^ 1, id.wrapping_add(16), id.wrapping_sub(16), id ^ 1024, !id] {
                    prop_assert_eq!(set.contains(&probe), model.contains(&probe), "id {}", probe);
                    prop_assert_eq!(
                        names.contains(&Named(probe.to_string())),
                        model.contains(&probe),
                        "name {}",
                        probe
                    );
                }
            }
        }
    }
}
