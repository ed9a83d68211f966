//! The book's sharded cache: route keys over 3 cache shards, grow to 4, and
//! count how many keys must move with consistent hashing against modulo;
//! then spread a hot key with bounded loads and replica sets.
//!
//! `cargo run --example sharded_cache --features shard`

use weft::shard::{BoundedLoad, LevelJump, Members, Modulo, Rendezvous};
use weft::{ReplicaExt, ShardExt, ShardId, Sharder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys: Vec<String> = (0..100_000).map(|i| format!("user-{i}")).collect();

    // Grow from 3 to 4 cache shards: a moved key is a cache miss.
    let moved = |before: &dyn Sharder, after: &dyn Sharder| {
        keys.iter()
            .filter(|k| before.shard_for(k.as_str()) != after.shard_for(k.as_str()))
            .count() as f64
            / keys.len() as f64
    };
    let consistent = moved(&LevelJump::new(3)?, &LevelJump::new(4)?);
    let modulo = moved(&Modulo::new(3)?, &Modulo::new(4)?);
    println!("3 -> 4 cache shards, {} keys:", keys.len());
    println!(
        "  consistent hashing (LevelJump) moves {:5.1} % of keys (ideal 25.0 %)",
        consistent * 100.0
    );
    println!(
        "  modulo                         moves {:5.1} % of keys",
        modulo * 100.0
    );

    // A hot key: 1000 requests for "user-42". Plain hashing sends them all
    // to one shard; bounded loads (c = 1.25) cap each shard at 125 % of the
    // mean and spill the rest to the next shards on the ring.
    let caches: Members = "cache-0,cache-1,cache-2,cache-3".parse()?;
    let mut lb = BoundedLoad::new(caches.clone(), 1.25)?;
    for _ in 0..1000 {
        lb.assign("user-42");
    }
    println!("\n1000 requests for one hot key:");
    println!("  plain hashing: all 1000 on one shard");
    for (member, load) in caches.iter().zip(lb.loads()) {
        println!("  bounded loads: {:<8} {load:>4}", member.name);
    }

    // Or replicate hot keys: R = 2 distinct shards per key, so reads can
    // go to either and survive one shard's loss.
    let hrw = Rendezvous::new(caches.clone());
    let mut replicas = [ShardId::default(); 2];
    hrw.replicas_for("user-42", &mut replicas)?;
    let names: Vec<_> = replicas
        .iter()
        .map(|&s| caches.get(s).map(|m| m.name.as_str()))
        .collect();
    println!("\nreplica set of user-42 (R = 2): {names:?}");
    Ok(())
}
