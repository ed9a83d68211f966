//! "The Tail at Scale" on virtual time: 100 shards × 3 replicas, leaf
//! latency lognormal (median 100 ms, σ = 0.5) with 1 % independent
//! stragglers at 10× or 100× the body, 10,000 root requests per run, seeded
//! and deterministic (paused tokio time). Prints a Markdown table: root
//! latency p50 / p99 / p99.9 and extra leaf requests, for the same fleet
//! without stragglers (the limit), wait-for-all without hedging, one fixed
//! hedge at the leaf p95, and weft's adaptive hedging (3 % budget). A last
//! run makes one replica slow for a period, to show probation at work.
//!
//! `cargo bench -p weft-scatter --bench tail_at_scale`; results in
//! docs/scatter-gather.md.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use weft_core::{Backoff, RetryPolicy};
use weft_core::{Count, key_hash};
use weft_scatter::{Hedging, LeafContext, Plan, Scatter, ScatterConfig, Topology};

const SHARDS: usize = 100;
const REPLICAS: usize = 3;
const REQUESTS: u64 = 10_000;
const MEDIAN_MS: f64 = 100.0;
const SIGMA: f64 = 0.5;

/// A uniform in (0, 1) from the hash of `parts`.
fn uniform(parts: (u64, u64, u32, u32, u8)) -> f64 {
    ((key_hash(&parts) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

#[derive(Clone, Copy)]
struct Fleet {
    straggle_prob: f64,
    straggle_factor: f64,
    /// (replica, first request, last request, factor): one slow replica.
    slow: Option<(usize, u64, u64, f64)>,
}

impl Fleet {
    fn latency(&self, request: u64, cx: &LeafContext) -> Duration {
        let key = (
            request,
            cx.shard.get() as u64,
            cx.attempt,
            cx.replica as u32,
            0,
        );
        let (u1, u2) = (uniform(key), uniform((key.0, key.1, key.2, key.3, 1)));
        let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let mut ms = MEDIAN_MS * (SIGMA * normal).exp();
        if uniform((key.0, key.1, key.2, key.3, 2)) < self.straggle_prob {
            ms *= self.straggle_factor;
        }
        if let Some((replica, from, to, factor)) = self.slow
            && cx.replica == replica
            && (from..=to).contains(&request)
        {
            ms *= factor;
        }
        Duration::from_micros((ms * 1000.0) as u64)
    }
}

struct Outcome {
    p50: f64,
    p99: f64,
    p999: f64,
    extra: f64,
    slow_first_attempts: u64,
}

fn run(fleet: Fleet, config: ScatterConfig) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let request = Arc::new(AtomicU64::new(0));
    let slow_hits = Arc::new(AtomicU64::new(0));
    let (req, hits) = (request.clone(), slow_hits.clone());
    let leaf = move |_: (), cx: LeafContext| {
        let n = req.load(Ordering::Relaxed);
        if let Some((replica, from, to, _)) = fleet.slow
            && cx.replica == replica
            && (from..=to).contains(&n)
            && !cx.hedge
        {
            hits.fetch_add(1, Ordering::Relaxed);
        }
        let latency = fleet.latency(n, &cx);
        async move {
            tokio::time::sleep(latency).await;
            Ok::<u64, Infallible>(1)
        }
    };
    let root = Scatter::new(Topology::sharded(SHARDS, REPLICAS).unwrap(), leaf, config).unwrap();
    let mut latencies = Vec::with_capacity(REQUESTS as usize);
    let (mut leaf_requests, mut asked) = (0u64, 0u64);
    rt.block_on(async {
        for n in 0..REQUESTS {
            request.store(n, Ordering::Relaxed);
            let g = root
                .gather(Plan::broadcast(SHARDS, ()), &Count::new())
                .await
                .unwrap();
            assert!(
                g.report.complete(),
                "request {n} incomplete: {:?}",
                g.report
            );
            latencies.push(g.report.elapsed.as_secs_f64() * 1000.0);
            leaf_requests += u64::from(g.report.leaf_requests());
            asked += g.report.asked() as u64;
        }
    });
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| {
        latencies[((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    Outcome {
        p50: q(0.50),
        p99: q(0.99),
        p999: q(0.999),
        extra: (leaf_requests - asked) as f64 * 100.0 / asked as f64,
        slow_first_attempts: slow_hits.load(Ordering::Relaxed),
    }
}

fn main() {
    // Only run under `cargo bench`, not when the test harness probes it.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let deadline = Duration::from_secs(600);
    let leaf_p95 = Duration::from_micros((MEDIAN_MS * 1000.0 * (1.645 * SIGMA).exp()) as u64);
    println!(
        "{SHARDS} shards × {REPLICAS} replicas, {REQUESTS} root requests per row; leaf latency lognormal \
         (median {MEDIAN_MS} ms, σ = {SIGMA}), 1 % stragglers; paused tokio time.\n"
    );
    println!(
        "| stragglers | root | p50 ms | p99 ms | p99.9 ms | p99.9 ÷ limit | extra leaf requests |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for factor in [10.0, 100.0] {
        let clean = Fleet {
            straggle_prob: 0.0,
            straggle_factor: factor,
            slow: None,
        };
        let fleet = Fleet {
            straggle_prob: 0.01,
            straggle_factor: factor,
            slow: None,
        };
        let limit = run(clean, ScatterConfig::new(deadline).hedging(Hedging::off()));
        let rows = [
            ("no stragglers (the limit)", limit),
            (
                "wait for all, no hedging",
                run(fleet, ScatterConfig::new(deadline).hedging(Hedging::off())),
            ),
            (
                "one fixed hedge at the leaf p95",
                run(
                    fleet,
                    ScatterConfig::new(deadline)
                        .hedging(
                            Hedging::adaptive()
                                .fallback(leaf_p95, u64::MAX)
                                .bounds(leaf_p95, leaf_p95),
                        )
                        .retry(RetryPolicy::new(2, Backoff::NONE).unwrap())
                        .max_extra_load(1.0),
                ),
            ),
            (
                "weft adaptive hedging, 3 % budget",
                run(fleet, ScatterConfig::new(deadline).max_extra_load(0.03)),
            ),
        ];
        let limit999 = rows[0].1.p999;
        for (name, o) in rows {
            println!(
                "| {factor}× | {name} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} % |",
                o.p50,
                o.p99,
                o.p999,
                o.p999 / limit999,
                o.extra
            );
        }
    }
    // Correlated slowness: replica 1 (shard 0's second replica) is 20×
    // slower for requests 2000..=6000.
    println!("\nOne replica 20× slower for requests 2000–6000 (no independent stragglers):\n");
    println!(
        "| root | p99.9 ms | extra leaf requests | first attempts sent to the slow replica in that period |"
    );
    println!("|---|---:|---:|---:|");
    let slow = Fleet {
        straggle_prob: 0.0,
        straggle_factor: 1.0,
        slow: Some((1, 2000, 6000, 20.0)),
    };
    let probation = ScatterConfig::new(deadline).max_extra_load(0.03);
    let no_probation = ScatterConfig::new(deadline).max_extra_load(0.03).health(
        weft_core::HealthPolicy::new(u32::MAX, u32::MAX, 1).unwrap(),
        Duration::from_secs(5),
    );
    for (name, config) in [
        ("weft, probation on (default)", probation),
        ("weft, probation off", no_probation),
    ] {
        let o = run(slow, config);
        println!(
            "| {name} | {:.1} | {:.2} % | {} |",
            o.p999, o.extra, o.slow_first_attempts
        );
    }
}
