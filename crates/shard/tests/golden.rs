//! Golden vectors for weft's own sharding functions: key → shard, pinned
//! forever. A change that breaks one moves keys in every deployment that
//! upgrades; it needs a new function, never new constants.
//!
//! `LevelJump` and `Jump` vectors were computed by an independent Python
//! implementation of the algorithms as documented (xxh3 from the reference
//! C library), not by this crate.

use weft_core::{ShardExt, ShardId, Sharder, key_hash};
use weft_shard::{Jump, LevelJump, Maglev, Members, Memento, Rendezvous, Ring};

const KEYS: [&str; 6] = [
    "",
    "a",
    "user-42",
    "tenant-7/order-1",
    "🦀",
    "0123456789abcdef",
];

#[test]
fn level_jump_golden_vectors() {
    let ns = [1, 2, 3, 10, 100, 1000, 65536, 100_000, u32::MAX];
    let expected: [[u32; 9]; 6] = [
        [0, 0, 0, 3, 76, 253, 36366, 68377, 1073577131],
        [0, 1, 2, 5, 21, 576, 26135, 26135, 293280110],
        [0, 1, 1, 8, 82, 348, 3762, 77930, 2886469005],
        [0, 0, 2, 8, 54, 873, 50236, 50236, 4248406152],
        [0, 0, 0, 0, 33, 755, 24833, 80050, 1946408411],
        [0, 1, 1, 9, 56, 467, 8563, 8563, 3218960190],
    ];
    for (key, row) in KEYS.iter().zip(expected) {
        for (n, shard) in ns.iter().zip(row) {
            let f = LevelJump::new(*n).unwrap();
            assert_eq!(f.shard_for(*key).get(), shard, "key {key:?}, n = {n}");
        }
    }
}

#[test]
fn jump_golden_vectors() {
    let ns = [10, 1000, 100_000];
    let expected: [[u32; 3]; 6] = [
        [0, 241, 52560],
        [8, 350, 52287],
        [6, 753, 57562],
        [1, 31, 78683],
        [7, 60, 41545],
        [6, 611, 77755],
    ];
    for (key, row) in KEYS.iter().zip(expected) {
        for (n, shard) in ns.iter().zip(row) {
            assert_eq!(
                Jump::new(*n).unwrap().shard_for(*key).get(),
                shard,
                "key {key:?}, n = {n}"
            );
        }
    }
}

fn names(members: &Members, ids: impl Iterator<Item = ShardId>) -> Vec<String> {
    ids.map(|id| members.get(id).unwrap().name.clone())
        .collect()
}

#[test]
fn member_functions_golden_vectors() {
    let members: Members = "alpha,beta,gamma,delta,epsilon".parse().unwrap();
    let weighted: Members = "alpha=1,beta=2,gamma=0.5,delta=3,epsilon=1"
        .parse()
        .unwrap();
    let hrw = Rendezvous::new(members.clone());
    let whrw = Rendezvous::new(weighted.clone());
    let ring = Ring::new(members.clone(), 160).unwrap();
    let maglev = Maglev::new(weighted.clone(), 65537).unwrap();
    let route = |f: &dyn Sharder, m: &Members| {
        names(m, KEYS.iter().map(|k| f.shard_for_hash(key_hash(*k))))
    };
    assert_eq!(route(&hrw, &members), GOLDEN_HRW);
    assert_eq!(route(&whrw, &weighted), GOLDEN_WEIGHTED_HRW);
    assert_eq!(route(&ring, &members), GOLDEN_RING);
    assert_eq!(route(&maglev, &weighted), GOLDEN_MAGLEV);

    let mut set = Memento::new(["alpha", "beta", "gamma", "delta", "epsilon"]).unwrap();
    set.remove("beta").unwrap();
    set.remove("alpha").unwrap();
    let memento: Vec<String> = KEYS
        .iter()
        .map(|k| set.name(set.shard_for(*k)).unwrap().to_string())
        .collect();
    assert_eq!(memento, GOLDEN_MEMENTO);
}

// Rendezvous (equal weights) was cross-checked by the same independent
// implementation; the others are pinned from this crate.
const GOLDEN_HRW: [&str; 6] = ["gamma", "beta", "epsilon", "beta", "beta", "gamma"];
const GOLDEN_WEIGHTED_HRW: [&str; 6] = ["gamma", "beta", "epsilon", "delta", "beta", "delta"];
const GOLDEN_RING: [&str; 6] = ["epsilon", "gamma", "beta", "alpha", "beta", "delta"];
const GOLDEN_MAGLEV: [&str; 6] = ["gamma", "beta", "epsilon", "beta", "beta", "delta"];
const GOLDEN_MEMENTO: [&str; 6] = ["delta", "delta", "epsilon", "gamma", "epsilon", "epsilon"];
