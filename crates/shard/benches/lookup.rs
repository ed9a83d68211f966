//! Lookup cost per sharding function at n = 10, 100, 1000 and 10000, with
//! the floor (one key hash + multiply-shift) in the same group, and a
//! bounded-load assignment next to the ring lookup it starts with. Keys are
//! 16 bytes and hashing them is included.
//!
//! `cargo bench -p weft-shard --bench lookup`; results in docs/sharding.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use weft_core::{Sharder, key_hash};
use weft_shard::{
    BoundedLoad, Jump, LevelJump, Maglev, Members, Memento, Modulo, Named, Rendezvous, Ring,
};

// Enough distinct keys that the branch predictor cannot learn them.
const KEYS: usize = 65_536;

fn keys() -> Vec<[u8; 16]> {
    (0..KEYS as u64)
        .map(|i| {
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&i.to_le_bytes());
            k[8..].copy_from_slice(&key_hash(&i).to_le_bytes());
            k
        })
        .collect()
}

fn bench_sharder(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    n: u32,
    sharder: &dyn Sharder,
    keys: &[[u8; 16]],
) {
    group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & (KEYS - 1);
            sharder.shard_for_hash(key_hash(black_box(&keys[i])))
        })
    });
}

fn lookups(c: &mut Criterion) {
    let keys = keys();
    for n in [10u32, 100, 1000, 10_000] {
        let mut group = c.benchmark_group(format!("lookup/n={n}"));
        group.bench_with_input(BenchmarkId::new("floor", n), &n, |b, &n| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (KEYS - 1);
                let h = key_hash(black_box(&keys[i]));
                ((u128::from(h) * u128::from(n)) >> 64) as u32
            })
        });
        let members = Members::named((0..n).map(|i| format!("node-{i}"))).unwrap();
        bench_sharder(
            &mut group,
            "level_jump",
            n,
            &LevelJump::new(n).unwrap(),
            &keys,
        );
        bench_sharder(&mut group, "jump", n, &Jump::new(n).unwrap(), &keys);
        bench_sharder(&mut group, "modulo", n, &Modulo::new(n).unwrap(), &keys);
        let mut memento = Memento::new((0..n).map(|i| format!("node-{i}"))).unwrap();
        for i in (0..n).step_by(10) {
            memento.remove(&format!("node-{i}")).unwrap();
        }
        bench_sharder(&mut group, "memento_10pct_removed", n, &memento, &keys);
        bench_sharder(
            &mut group,
            "ring_160",
            n,
            &Ring::new(members.clone(), 160).unwrap(),
            &keys,
        );
        bench_sharder(
            &mut group,
            "maglev_65537",
            n,
            &Maglev::new(members.clone(), 65_537).unwrap(),
            &keys,
        );
        // Names over the same functions: the same lookup plus one load.
        let mut named = Named::<Maglev>::new(members.clone()).unwrap();
        named.remove("node-0").unwrap();
        named.add("node-0").unwrap();
        bench_sharder(&mut group, "named_maglev_65537", n, &named, &keys);
        bench_sharder(
            &mut group,
            "named_ring_160",
            n,
            &Named::<Ring>::new(members.clone()).unwrap(),
            &keys,
        );
        if n <= 1000 {
            bench_sharder(
                &mut group,
                "rendezvous",
                n,
                &Rendezvous::new(members.clone()),
                &keys,
            );
        }
        group.finish();
    }
}

/// `BoundedLoad` (c = 1.25) at a steady 8 items per member: assign one
/// item and release it, next to the ring lookup its walk starts with.
fn bounded(c: &mut Criterion) {
    let keys = keys();
    for n in [10u32, 100, 1000] {
        let mut group = c.benchmark_group(format!("bounded/n={n}"));
        let members = Members::named((0..n).map(|i| format!("node-{i}"))).unwrap();
        let ring = Ring::new(members.clone(), Ring::DEFAULT_VNODES).unwrap();
        bench_sharder(&mut group, "ring_lookup", n, &ring, &keys);
        let mut assigner = BoundedLoad::new(members, 1.25).unwrap();
        for k in 0..(8 * n as usize) {
            assigner.assign(&keys[(k * 7919) & (KEYS - 1)]);
        }
        group.bench_with_input(BenchmarkId::new("assign_release", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (KEYS - 1);
                let shard = assigner.assign_hash(key_hash(black_box(&keys[i])));
                assigner.release(shard).unwrap();
                shard
            })
        });
        group.finish();
    }
}

fn builds(c: &mut Criterion) {
    let mut group = c.benchmark_group("build/n=1000");
    let members = Members::named((0..1000).map(|i| format!("node-{i}"))).unwrap();
    group.sample_size(10);
    group.bench_function("maglev_65537", |b| {
        b.iter(|| Maglev::new(black_box(members.clone()), 65_537).unwrap())
    });
    group.bench_function("ring_160", |b| {
        b.iter(|| Ring::new(black_box(members.clone()), 160).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30);
    targets = lookups, bounded, builds
}
criterion_main!(benches);
