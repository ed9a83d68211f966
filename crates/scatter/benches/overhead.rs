//! The root's overhead on the no-straggler path: a call over 100 leaves that
//! answer at once, against `futures::future::join_all` over the same leaves
//! (summing the answers), in the same run. Also the deadline's overshoot in
//! real time: a 2 ms deadline over leaves that never answer.
//!
//! `cargo bench -p weft-scatter --bench overhead`; results in
//! docs/scatter-gather.md.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::time::Instant;
use weft_core::{Combine, ShardId, Sum};
use weft_scatter::{LeafContext, Plan, Scatter, ScatterConfig, Topology};

async fn leaf(x: u64, cx: LeafContext) -> Result<u64, Infallible> {
    Ok(black_box(x + u64::from(cx.shard.get())))
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    const SHARDS: usize = 100;
    let root = Scatter::new(
        Topology::sharded(SHARDS, 3).unwrap(),
        leaf,
        ScatterConfig::new(Duration::from_secs(1)),
    )
    .unwrap();
    let sum = Sum::<u64>::new();
    let mut group = c.benchmark_group("scatter/100 immediate leaves");
    group.bench_function("join_all", |b| {
        b.to_async(&rt).iter(|| async {
            let deadline = Instant::now() + Duration::from_secs(1);
            let calls = (0..SHARDS).map(|i| {
                let cx = LeafContext {
                    shard: ShardId::new(i as u32),
                    replica: i * 3,
                    attempt: 1,
                    hedge: false,
                    deadline,
                };
                leaf(1, cx)
            });
            let answers = futures::future::join_all(calls).await;
            let mut acc = sum.create();
            for a in answers.into_iter().flatten() {
                sum.add(&mut acc, a);
            }
            sum.extract(acc)
        })
    });
    group.bench_function("weft_scatter", |b| {
        b.to_async(&rt).iter(|| async {
            let g = root
                .gather(Plan::broadcast(SHARDS, 1u64), &sum)
                .await
                .unwrap();
            g.output
        })
    });
    group.finish();

    let pending = |_: u64, _cx: LeafContext| futures::future::pending::<Result<u64, Infallible>>();
    let stuck = Scatter::new(
        Topology::sharded(SHARDS, 3).unwrap(),
        pending,
        ScatterConfig::new(Duration::from_millis(2)),
    )
    .unwrap();
    let mut group = c.benchmark_group("scatter/deadline 2 ms, leaves never answer");
    group.sample_size(50);
    group.bench_function("call duration", |b| {
        b.to_async(&rt).iter(|| async {
            let g = stuck
                .gather(Plan::broadcast(SHARDS, 1u64), &sum)
                .await
                .unwrap();
            assert!(g.report.deadline_hit);
            g.report.timed_out()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = overhead
}
criterion_main!(benches);
