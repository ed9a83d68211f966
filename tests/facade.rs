//! The facade routes and combines through weft-core's one vocabulary.

use weft::{Combine, CompositeKey, Count, ShardExt, ShardId, Sharder, key_hash};

/// Modulo placement over `n` shards, enough to route in a test.
struct Modulo(u32);

impl Sharder for Modulo {
    fn shard_count(&self) -> usize {
        self.0 as usize
    }
    fn shard_for_hash(&self, hash: u64) -> ShardId {
        ShardId::new((hash % u64::from(self.0)) as u32)
    }
}

#[test]
fn every_form_of_a_key_routes_to_the_same_shard() {
    let shards = Modulo(7);
    for i in 0..500u32 {
        let name = format!("user-{i}");
        let by_str = shards.shard_for(name.as_str());
        assert_eq!(shards.shard_for(&name), by_str);
        assert_eq!(shards.shard_for(name.as_bytes()), by_str);
        assert_eq!(shards.shard_for_hash(key_hash(&name)), by_str);

        let runtime = CompositeKey::builder()
            .part(&name)
            .part(&i)
            .build()
            .unwrap();
        assert_eq!(
            shards.shard_for(&runtime),
            shards.shard_for(&(name.as_str(), i))
        );
    }
}

#[test]
fn per_shard_counts_merge_to_the_total() {
    let shards = Modulo(5);
    let count = Count::new();
    let mut per_shard = vec![count.create(); 5];
    for i in 0..1000u64 {
        count.add(&mut per_shard[shards.shard_for(&i).index()], i);
    }
    assert!(
        per_shard.iter().all(|&c| c > 100),
        "uneven split: {per_shard:?}"
    );
    let mut total = count.create();
    for c in per_shard {
        count.merge(&mut total, c);
    }
    assert_eq!(count.extract(total), 1000);
}
