//! Key hashing cost: weft's default key hash against std's SipHash-1-3
//! (`DefaultHasher`, the usual unpinned choice) on the same bytes.
//!
//! `cargo bench --bench key_hash`; results in docs/keys.md.

use std::hash::{DefaultHasher, Hasher};
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use weft::{ShardKey, key_hash};

/// SipHash-1-3 over the same stable bytes, reached the same way.
fn sip<K: ShardKey + ?Sized>(key: &K) -> u64 {
    key.with_key_bytes(|bytes| {
        let mut h = DefaultHasher::new();
        h.write(bytes);
        h.finish()
    })
}

fn bytes(c: &mut Criterion) {
    let mut group = c.benchmark_group("key_hash/bytes");
    for len in [8usize, 16, 64, 1024] {
        let key: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("weft_v1", len), &key, |b, k| {
            b.iter(|| key_hash(black_box(k)))
        });
        group.bench_with_input(BenchmarkId::new("std_siphash13", len), &key, |b, k| {
            b.iter(|| sip(black_box(k)))
        });
    }
    group.finish();
}

fn typed(c: &mut Criterion) {
    let mut group = c.benchmark_group("key_hash/typed");
    let id = 0x0123_4567_89ab_cdefu64;
    group.bench_function("weft_v1/u64", |b| b.iter(|| key_hash(black_box(&id))));
    group.bench_function("std_siphash13/u64", |b| b.iter(|| sip(black_box(&id))));
    let tuple = ("tenant-7", 42u64);
    group.bench_function("weft_v1/tuple", |b| b.iter(|| key_hash(black_box(&tuple))));
    group.bench_function("std_siphash13/tuple", |b| b.iter(|| sip(black_box(&tuple))));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bytes, typed
}
criterion_main!(benches);
