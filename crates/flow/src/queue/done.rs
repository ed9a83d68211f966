//! The set of item ids already done, so that no acknowledged item is
//! processed twice.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

/// Ids of items done: a bitmap per shard, keyed by 64-id words.
///
/// Shard `id % 16` holds the id (so workers taking neighbouring ids take
/// different locks), in the word `id / 1024` at bit `(id / 16) % 64`. Ids
/// that arrive mostly in order (a queue's, a log's offsets) cost about two
/// bits each and stay in cache; scattered ids cost 16 bytes each.
#[derive(Default)]
pub(super) struct DoneSet {
    shards: [Padded<Mutex<Words>>; 16],
}

/// 64-id words of one shard, by word index.
type Words = HashMap<u64, u64, BuildHasherDefault<IdHasher>>;

impl DoneSet {
    fn locate(&self, id: u64) -> (std::sync::MutexGuard<'_, Words>, u64, u64) {
        let shard = self.shards[(id % 16) as usize]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (shard, id / 1024, 1u64 << ((id / 16) % 64))
    }

    pub(super) fn contains(&self, id: u64) -> bool {
        let (shard, word, bit) = self.locate(id);
        shard.get(&word).is_some_and(|w| w & bit != 0)
    }

    pub(super) fn insert(&self, id: u64) {
        let (mut shard, word, bit) = self.locate(id);
        *shard.entry(word).or_insert(0) |= bit;
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
    use super::DoneSet;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        #[test]
        fn the_done_set_holds_exactly_the_ids_inserted(
            scattered in proptest::collection::vec(any::<u64>(), 0..100),
            start in any::<u64>(),
            run in 0u64..3000,
        ) {
            let set = DoneSet::default();
            let mut model = HashSet::new();
            let dense = (0..run).map(|i| start.wrapping_add(i * 3));
            for id in scattered.iter().copied().chain(dense) {
                set.insert(id);
                model.insert(id);
            }
            // Every id inserted, and its neighbours in the bitmap layout.
            for &id in &model {
                for probe in [id, id ^ 1, id.wrapping_add(16), id.wrapping_sub(16), id ^ 1024, !id] {
                    prop_assert_eq!(set.contains(probe), model.contains(&probe), "id {}", probe);
                }
            }
        }
    }
}
