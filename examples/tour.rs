//! A walk through weft on embedded defaults: no server, a few milliseconds.
//!
//! Run it with `cargo run --example tour`.

use weft::shard::compat::{kafka_partition, redis_slot};
use weft::shard::{LevelJump, Memento, Modulo};
use weft::{
    Combine, CompositeKey, CoreError, Count, Histogram, KeyHashV1, ShardExt, ShardId, Sharder, Sum,
    TopK, key_hash,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("weft tour\n=========\n");
    keys()?;
    combine()?;
    sharding()?;
    scatter_gather()?;
    leases()?;
    flows()?;
    Ok(())
}

/// Stable key hashing: the same key gives the same hash in every process,
/// on every platform, in every release.
fn keys() -> Result<(), CoreError> {
    println!("1. Stable key hashing ({})", KeyHashV1::NAME);
    for key in ["user-42", "user-43", "héllo"] {
        println!("   key_hash({key:?}) = {:#018x}", key_hash(key));
    }
    println!("   key_hash(42u64)   = {:#018x}", key_hash(&42u64));

    // Composite keys are length-delimited: these two do not collide.
    println!(
        "   (\"ab\", \"c\") -> {:#018x}, (\"a\", \"bc\") -> {:#018x}",
        key_hash(&("ab", "c")),
        key_hash(&("a", "bc"))
    );
    let runtime = CompositeKey::builder()
        .part("tenant-7")
        .part(&42u64)
        .build()?;
    assert_eq!(key_hash(&runtime), key_hash(&("tenant-7", 42u64)));
    println!("   a composite key built at run time hashes like its tuple");

    println!();
    Ok(())
}

/// Combine: partial answers (from shards, leaves or workers) merge in any
/// order to the same result.
fn combine() -> Result<(), CoreError> {
    println!("2. Combine: associative merges");
    // Three "shards" each answer with their request latencies (ms).
    let shards: [&[f64]; 3] = [
        &[1.2, 3.4, 2.2, 8.0],
        &[0.7, 1.1, 45.0],
        &[2.5, 2.6, 3.1, 120.0],
    ];

    let latency = Histogram::exponential(1.0, 2.0, 8)?;
    let count = Count::new();
    let sum = Sum::<f64>::new();
    let (mut hist, mut n, mut total) = (latency.create(), count.create(), sum.create());
    // Merge in reverse order: the result does not depend on it.
    for part in shards.iter().rev() {
        latency.merge(&mut hist, latency.fold(part.iter().copied()));
        count.merge(&mut n, count.fold(part.iter()));
        sum.merge(&mut total, sum.fold(part.iter().copied()));
    }
    let hist = latency.extract(hist)?;
    let total = sum.extract(total);
    println!("   requests: {}, total {:.1} ms", count.extract(n), total);
    println!(
        "   p50 ≈ {:.1} ms, p99 ≈ {:.1} ms (estimated from buckets {:?})",
        hist.quantile(0.5)?.unwrap_or(f64::NAN),
        hist.quantile(0.99)?.unwrap_or(f64::NAN),
        hist.bounds()
    );

    // Top-k of search hits from two leaves; equal scores fall back to the id.
    let top = TopK::by_key(3, |hit: &(u32, &str)| hit.0)?;
    let mut hits = top.fold([(7, "doc-12"), (3, "doc-40")]);
    top.merge(
        &mut hits,
        top.fold([(9, "doc-5"), (7, "doc-31"), (1, "doc-2")]),
    );
    println!("   top 3 hits: {:?}", top.extract(hits));

    // Floating-point sums are exact, so order cannot change them.
    let values = [1e100, 1.0, -1e100];
    let exact = sum.extract(sum.fold(values));
    let plain: f64 = values.iter().sum();
    println!("   1e100 + 1 - 1e100 = {exact} (a plain fold gives {plain})");
    println!();
    Ok(())
}

/// Sharding: consistent hashing moves few keys on resize, any member can
/// leave, and real systems' partitioners are reproduced exactly.
fn sharding() -> Result<(), weft::shard::ShardError> {
    println!("3. Sharding");
    let keys: Vec<String> = (0..20_000).map(|i| format!("key-{i}")).collect();
    let moved = |a: &dyn Sharder, b: &dyn Sharder| {
        keys.iter()
            .filter(|k| a.shard_for(k.as_str()) != b.shard_for(k.as_str()))
            .count() as f64
            * 100.0
            / keys.len() as f64
    };
    println!(
        "   10 -> 11 shards: LevelJump moves {:.1} % of keys (ideal 9.1 %), modulo {:.1} %",
        moved(&LevelJump::new(10)?, &LevelJump::new(11)?),
        moved(&Modulo::new(10)?, &Modulo::new(11)?)
    );
    let mut caches = Memento::new(["cache-a", "cache-b", "cache-c", "cache-d"])?;
    let before: Vec<ShardId> = keys.iter().map(|k| caches.shard_for(k.as_str())).collect();
    let gone = caches.remove("cache-b")?;
    let strays = keys
        .iter()
        .zip(&before)
        .filter(|(k, b)| **b != gone && caches.shard_for(k.as_str()) != **b)
        .count();
    println!("   cache-b leaves a Memento set: only its keys move ({strays} others moved)");
    println!(
        "   Kafka (Java client) partition of \"user-42\" among 12: {}; Redis Cluster slot: {}",
        kafka_partition(b"user-42", 12)?,
        redis_slot(b"user-42")
    );
    println!();
    Ok(())
}

/// Scatter/gather: fan out to shards, gather with a deadline, and say
/// honestly what is missing.
fn scatter_gather() -> Result<(), Box<dyn std::error::Error>> {
    use std::time::Duration;
    use weft::Cause;
    use weft::scatter::{LeafContext, Plan, Scatter, ScatterConfig, Topology};

    println!("4. Scatter/gather");
    // Shard 3 never answers; the others count their documents.
    let leaf = |_: (), cx: LeafContext| async move {
        if cx.shard.get() == 3 {
            std::future::pending::<()>().await;
        }
        // A leaf returns any classified error; `Cause` needs no type of its own.
        Ok::<u64, Cause>(100 + u64::from(cx.shard.get()))
    };
    let root = Scatter::new(
        Topology::sharded(4, 2)?,
        leaf,
        ScatterConfig::new(Duration::from_millis(30)),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let gathered = runtime.block_on(root.gather(Plan::broadcast(4, ()), &Sum::<u64>::new()))?;
    let r = &gathered.report;
    println!(
        "   {} of {} shards answered before the 30 ms deadline ({} timed out); complete: {}",
        r.answered(),
        r.asked(),
        r.timed_out(),
        r.complete()
    );
    println!("   partial sum: {:?}", gathered.output);
    if let Err(e) = gathered.require_complete() {
        println!("   require_complete(): {e}");
    }
    println!();
    Ok(())
}

/// Leases: renewable ownership with a fencing token the resource checks.
fn leases() -> Result<(), Box<dyn std::error::Error>> {
    use std::sync::Arc;
    use std::time::Duration;
    use weft::lease::{Fence, Lease, LeaseConfig, MemoryFence, MemoryStore};

    println!("5. Leases");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    runtime.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let fence = MemoryFence::new();
        let config = LeaseConfig::new(Duration::from_secs(2));
        let a = Lease::builder(store.clone(), "orders/owner", config.clone())
            .value(b"worker-a")
            .acquire(Duration::from_millis(100))
            .await?;
        println!(
            "   worker-a holds the lease, token {}, safe for {:?}",
            a.token(),
            a.remaining()
        );
        fence.check_and_advance("orders", a.token()).await?;
        let old = a.token();
        a.release().await?;
        let b = Lease::builder(store, "orders/owner", config)
            .value(b"worker-b")
            .acquire(Duration::from_millis(100))
            .await?;
        fence.check_and_advance("orders", b.token()).await?;
        println!("   worker-b takes over with token {}", b.token());
        if let Err(e) = fence.check_and_advance("orders", old).await {
            println!("   a late write with worker-a's token: {e}");
        }
        b.release().await?;
        Ok::<_, weft::lease::LeaseError>(())
    })?;
    println!();
    Ok(())
}

/// Flows: batch stages with backpressure, and a work queue.
fn flows() -> Result<(), Box<dyn std::error::Error>> {
    use std::sync::Arc;
    use weft::claims::LeasedSource;
    use weft::flow::queue::{Autoscaler, Item, MemorySource, QueueConfig, WorkQueue};
    use weft::flow::{Flow, FlowConfig};

    #[derive(Debug)]
    struct Rejected;
    impl std::fmt::Display for Rejected {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("rejected")
        }
    }
    impl weft::Classify for Rejected {
        fn class(&self) -> weft::ErrorClass {
            weft::ErrorClass::Permanent
        }
    }

    println!("6. Flows");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = FlowConfig::default();
        // Copy every order to two consumers: totals and large-order alerts.
        let mut copies = Flow::from_iter(1..=1000u64, config).copy(2)?;
        let large = copies.pop().expect("two copies").filter(|v| *v > 990);
        let all = copies.pop().expect("two copies");
        let sum = Sum::<u64>::new();
        let (total, alerts) = tokio::join!(all.reduce(&sum), large.collect());
        println!(
            "   copier: total {:?}, {} large orders",
            total?,
            alerts?.len()
        );

        // A work queue: retries, dead letters, nothing lost.
        let source = Arc::new(MemorySource::from_items(0..20u32));
        let worker = |x: u32| async move { if x % 7 == 3 { Err(Rejected) } else { Ok(x * x) } };
        let WorkQueue {
            output,
            dead_letters,
            control,
        } = WorkQueue::spawn(
            source,
            worker,
            QueueConfig::new(Autoscaler::new(1, 4, 0.8, 2)?, 8)?,
        );
        let (done, dead) = tokio::join!(output.collect(), dead_letters.collect());
        control.wait().await?;
        let dead = dead?;
        let ids: Vec<u64> = dead.iter().map(|d| d.item.id).collect();
        println!(
            "   work queue: {} done, {} dead-lettered (ids {ids:?})",
            done?.len(),
            dead.len()
        );

        // Two queues share one batch; their claims are leases, so no item
        // is committed twice (and a stalled queue's items move on).
        let store: Arc<dyn weft::lease::CasStore> = Arc::new(weft::lease::MemoryStore::new());
        let lease = weft::lease::LeaseConfig::new(std::time::Duration::from_secs(2));
        let queue = |name: &str| -> Result<_, Box<dyn std::error::Error>> {
            let manifest = (0..40u64).map(|id| Item { id, payload: id });
            let source =
                LeasedSource::new(store.clone(), "batch/", manifest, lease.clone())?.owner(name)?;
            let worker = |x: u64| async move {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                Ok::<_, std::io::Error>(x)
            };
            let config = QueueConfig::new(Autoscaler::new(2, 2, 1.0, 1)?, 2)?;
            Ok(WorkQueue::spawn(Arc::new(source), worker, config))
        };
        let (a, b) = (queue("a")?, queue("b")?);
        let (got_a, got_b) = tokio::join!(a.output.collect(), b.output.collect());
        let (got_a, got_b) = (got_a?, got_b?);
        let mut ids: Vec<u64> = got_a.iter().chain(&got_b).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        println!(
            "   leased claims: queue a did {}, queue b did {}, {} distinct of 40",
            got_a.len(),
            got_b.len(),
            ids.len()
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    println!();
    Ok(())
}
