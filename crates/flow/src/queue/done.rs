//! The set of item ids already done, so that no acknowledged item is
//! processed twice.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use super::ItemId;

/// Ids of items done, in 16 shards.
///
/// Dense ids ([`ItemId::dense`]: a queue's numbers, a log's offsets) go in
/// a bitmap of 64-id words: word `id / 64` in shard `(id / 64) % 16`, bit
/// `id % 64`. Ids that arrive mostly in order cost about two bits each and
/// stay in cache (scattered ones 16 bytes each), and the run of ids a
/// worker takes at once from the source lands in one or two words, under
/// one lock, while other workers' runs are in other shards. Other ids go
/// in a hash set of shard `seed % 16`.
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
        let word = id / 64;
        let shard = self.shards[(word % 16) as usize]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (shard, word, 1u64 << (id % 64))
    }

    fn other(&self, id: &I) -> std::sync::MutexGuard<'_, HashSet<I>> {
        self.others[(id.seed() % 16) as usize]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn shard(&self, shard: usize) -> std::sync::MutexGuard<'_, Words> {
        self.shards[shard]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Whether each id is done, in order, taking a shard's lock once per
    /// run of ids in it (a batch a worker took from the source).
    pub(super) fn contains_each<'a>(&self, ids: impl IntoIterator<Item = &'a I>) -> Vec<bool>
    where
        I: 'a,
    {
        let mut held: Option<(usize, std::sync::MutexGuard<'_, Words>)> = None;
        let mut out = Vec::new();
        for id in ids {
            let found = match id.dense() {
                Some(dense) => {
                    let word = dense / 64;
                    let words = self.run_lock(&mut held, word);
                    words
                        .get(&word)
                        .is_some_and(|w| w & (1u64 << (dense % 64)) != 0)
                }
                None => {
                    held = None;
                    self.other(id).contains(id)
                }
            };
            out.push(found);
        }
        out
    }

    /// Inserts every id, taking a shard's lock once per run of ids in it.
    pub(super) fn insert_each<'a>(&self, ids: impl IntoIterator<Item = &'a I>)
    where
        I: 'a,
    {
        let mut held: Option<(usize, std::sync::MutexGuard<'_, Words>)> = None;
        for id in ids {
            match id.dense() {
                Some(dense) => {
                    let word = dense / 64;
                    let words = self.run_lock(&mut held, word);
                    *words.entry(word).or_insert(0) |= 1u64 << (dense % 64);
                }
                None => {
                    held = None;
                    self.other(id).insert(id.clone());
                }
            }
        }
    }

    /// The words of `word`'s shard, keeping the lock held from the last
    /// id when it is the same shard.
    fn run_lock<'s, 'h>(
        &'s self,
        held: &'h mut Option<(usize, std::sync::MutexGuard<'s, Words>)>,
        word: u64,
    ) -> &'h mut Words {
        let shard = (word % 16) as usize;
        if held.as_ref().is_none_or(|(s, _)| *s != shard) {
            // Let go of the other shard before taking this one.
            *held = None;
        }
        let (_, words) = held.get_or_insert_with(|| (shard, self.shard(shard)));
        words
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
            let dense: Vec<u64> = (0..run).map(|i| start.wrapping_add(i * 3)).collect();
            // Scattered ids one at a time, the run as a batch.
            for &id in &scattered {
                set.insert(&id);
                names.insert(&Named(id.to_string()));
            }
            set.insert_each(&dense);
            let dense_names: Vec<Named> = dense.iter().map(|id| Named(id.to_string())).collect();
            names.insert_each(&dense_names);
            model.extend(scattered.iter().copied().chain(dense.iter().copied()));
            // Every id inserted, and its neighbours in the bitmap layout,
            // looked up as one batch.
            let probes: Vec<u64> = model
                .iter()
                .flat_map(|&id| [id, id ^ 1, id ^ 63, id.wrapping_add(64), id.wrapping_sub(64), id ^ 1024, !id])
                .collect();
            let probe_names: Vec<Named> = probes.iter().map(|id| Named(id.to_string())).collect();
            let found = set.contains_each(&probes);
            let found_names = names.contains_each(&probe_names);
            for (i, probe) in probes.iter().enumerate() {
                prop_assert_eq!(found[i], model.contains(probe), "id {}", probe);
                prop_assert_eq!(found_names[i], model.contains(probe), "name {}", probe);
            }
        }
    }
}
