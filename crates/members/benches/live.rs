//! The live sharder against the same placement built statically, in one
//! run: a lookup through `LiveSharder::route` (an `arc-swap` load and the
//! placement's lookup, giving a reference to the member) next to the
//! static `Named`'s lookup (a reference to its member), at n = 10, 100 and
//! 1000; the shared Memento's reader against a static `Memento`; and the cost of applying a changed set
//! (one member more or less) at n = 1000; and a watcher's cost per change
//! at n = 10, 100 and 1000.
//!
//! `cargo bench -p weft-members --bench live`; results in
//! docs/membership.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use weft_core::{ShardExt, key_hash};
use weft_lease::{CasStore, MemoryStore, Swap, Version};
use weft_members::{Live, LiveSharder, Member, MemberSet, SharedMemento, WatchConfig, Watcher};
use weft_shard::{Maglev, Members, Memento, Named, Placement, Rendezvous, Ring};

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

fn set(epoch: u64, n: usize) -> MemberSet {
    let members = (0..n)
        .map(|i| Live {
            member: Member::new(
                format!("cache-{i}"),
                format!("10.0.{}.{}:11211", i / 256, i % 256),
            )
            .unwrap(),
            token: Version(i as u64 + 1),
        })
        .collect();
    MemberSet::of(epoch, members).unwrap()
}

fn lookups<P: Placement>(c: &mut Criterion, name: &str, ns: &[usize]) {
    let keys = keys();
    let mut group = c.benchmark_group(format!("lookup/{name}"));
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for &n in ns {
        let s = set(1, n);
        let names: Vec<String> = s
            .members()
            .iter()
            .map(|l| l.member.name().to_string())
            .collect();
        let fixed = Named::<P>::new(Members::named(names).unwrap()).unwrap();
        let live = LiveSharder::<P>::new();
        live.apply(&s).unwrap();
        group.bench_with_input(BenchmarkId::new("static", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (KEYS - 1);
                std::ptr::from_ref(fixed.member_for(black_box(&keys[i])))
            })
        });
        group.bench_with_input(BenchmarkId::new("live", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (KEYS - 1);
                live.route(black_box(&keys[i]), std::ptr::from_ref)
            })
        });
        let mut reader = live.reader();
        group.bench_with_input(BenchmarkId::new("live_reader", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (KEYS - 1);
                reader.route(black_box(&keys[i]), std::ptr::from_ref)
            })
        });
        let held = live.routes().unwrap();
        group.bench_with_input(BenchmarkId::new("live_held", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (KEYS - 1);
                std::ptr::from_ref(held.route(black_box(&keys[i])))
            })
        });
        // Keep the id path honest too.
        assert_eq!(held.shard_for(&keys[0]), held.named().shard_for(&keys[0]));
    }
    group.finish();
}

/// Memento built statically against the shared placement's reader (the
/// placement in a store, here in memory).
fn shared_lookups(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("lookup/memento");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    for n in [10, 100, 1000] {
        let s = set(1, n);
        let fixed = Memento::new(s.members().iter().map(|l| l.member.name())).unwrap();
        let store = Arc::new(MemoryStore::new());
        let shared = SharedMemento::new(store.clone(), "svc/", "svc.placement").unwrap();
        rt.block_on(async {
            for l in s.members() {
                let key = format!("svc/{}", l.member.name());
                let value = serde_json::to_vec(&l.member).unwrap();
                store
                    .create(&key, value, Duration::from_secs(3600))
                    .await
                    .unwrap();
            }
            shared.apply(&s).await.unwrap();
        });
        group.bench_with_input(BenchmarkId::new("static", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (KEYS - 1);
                fixed
                    .name(fixed.shard_for(black_box(&keys[i])))
                    .map(str::len)
            })
        });
        let mut reader = shared.reader();
        group.bench_with_input(BenchmarkId::new("shared_reader", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & (KEYS - 1);
                reader.route(black_box(&keys[i]), |name, _| name.len())
            })
        });
        // The same placement.
        let k = &keys[7];
        assert_eq!(
            fixed.name(fixed.shard_for(k)),
            shared.route(k, |name, _| name.to_string()).as_deref()
        );
    }
    group.finish();
}

fn rebuilds(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply_1000");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    fn one<P: Placement>(
        group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        name: &str,
    ) {
        let live = LiveSharder::<P>::new();
        let (a, b) = (set(0, 1000), set(0, 1001));
        let mut epoch = 0;
        group.bench_function(name, |bench| {
            bench.iter(|| {
                epoch += 1;
                let next = if epoch % 2 == 0 { &a } else { &b };
                let next = MemberSet::of(epoch, next.members().to_vec()).unwrap();
                live.apply(black_box(&next)).unwrap();
            })
        });
    }
    one::<Ring>(&mut group, "ring_160");
    one::<Rendezvous>(&mut group, "rendezvous");
    one::<Maglev>(&mut group, "maglev_65537");
    group.finish();
}

/// A watcher's cost per change: one record removed or put back under the
/// prefix (in memory, so the store's part is small), then the watcher's
/// `next()`: the store's prefix event, a list of the n records, their
/// decoding, and the new set with its digest.
fn watch_changes(c: &mut Criterion) {
    let mut group = c.benchmark_group("watch_change");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let ttl = Duration::from_secs(3600);
    for n in [10, 100, 1000] {
        let store = Arc::new(MemoryStore::new());
        let records: Vec<(String, Vec<u8>)> = set(1, n)
            .members()
            .iter()
            .map(|l| {
                (
                    format!("svc/{}", l.member.name()),
                    serde_json::to_vec(&l.member).unwrap(),
                )
            })
            .collect();
        let (key, value) = records[n / 2].clone();
        let mut version = None;
        let mut watcher = rt.block_on(async {
            for (k, v) in &records {
                if let Swap::Done { version: made } = store.create(k, v.clone(), ttl).await.unwrap()
                    && *k == key
                {
                    version = Some(made);
                }
            }
            let config = WatchConfig::new(ttl).unwrap();
            let mut w = Watcher::new(store.clone(), "svc/", config).unwrap();
            assert_eq!(w.next().await.unwrap().len(), n);
            w
        });
        // The floor: the one list a change needs, alone.
        group.bench_with_input(BenchmarkId::new("list_alone", n), &n, |b, _| {
            b.iter(|| rt.block_on(async { black_box(store.list("svc/").await.unwrap().len()) }))
        });
        group.bench_with_input(BenchmarkId::new("memory", n), &n, |b, _| {
            b.iter(|| {
                rt.block_on(async {
                    match version.take() {
                        Some(v) => {
                            store.delete(&key, v).await.unwrap();
                        }
                        None => {
                            let Swap::Done { version: v } =
                                store.create(&key, value.clone(), ttl).await.unwrap()
                            else {
                                unreachable!("the key was removed")
                            };
                            version = Some(v);
                        }
                    }
                    black_box(watcher.next().await.unwrap().len())
                })
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    lookups::<Maglev>(c, "maglev_65537", &[10, 100, 1000]);
    lookups::<Ring>(c, "ring_160", &[10, 100, 1000]);
    lookups::<Rendezvous>(c, "rendezvous", &[10, 100]);
    shared_lookups(c);
    rebuilds(c);
    watch_changes(c);
}

criterion_group!(live, benches);
criterion_main!(live);
