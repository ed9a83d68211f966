//! The budgets are never exceeded: over random schedules of leaf latencies,
//! transient errors and timeouts, hedges plus retries after timeouts stay
//! within `max_extra_load` of first attempts, and failovers after errors
//! within the retry budget's burst plus its ratio of answers, at every
//! point of a root's life.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use weft_core::{Classify, Count, ErrorClass, key_hash};
use weft_scatter::{Hedging, LeafContext, Plan, RetryBudget, Scatter, ScatterConfig, Topology};

#[derive(Debug)]
struct Busy;

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("busy")
    }
}

impl Classify for Busy {
    fn class(&self) -> ErrorClass {
        ErrorClass::Transient
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn hedges_retries_and_failovers_never_exceed_their_budgets(
        seed: u64,
        ratio in 0.0f64..0.5,
        error_every in 2u64..20,
        shards in 1usize..12,
        replicas in 1usize..4,
        timeout in prop::option::of(5u64..60),
        retry_burst in 0u64..8,
        retry_ratio in 0.0f64..0.3,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let call_no = Arc::new(AtomicU64::new(0));
        let calls = call_no.clone();
        let leaf = move |_: (), cx: LeafContext| {
            let n = calls.load(Ordering::Relaxed);
            let h = key_hash(&(seed, n, cx.shard.get(), cx.attempt));
            async move {
                // Heavy-tailed latency, some transient errors.
                let ms = if h % 50 == 0 { 500 } else { h % 40 };
                tokio::time::sleep(Duration::from_millis(ms)).await;
                if h % error_every == 0 { Err(Busy) } else { Ok(1u64) }
            }
        };
        let mut config = ScatterConfig::new(Duration::from_millis(200))
            .max_extra_load(ratio)
            .hedging(Hedging::adaptive().fallback(Duration::from_millis(5), 20))
            .retry_budget(RetryBudget::new(retry_ratio).burst(retry_burst));
        if let Some(t) = timeout {
            config = config.attempt_timeout(Duration::from_millis(t));
        }
        let root = Scatter::new(Topology::sharded(shards, replicas).unwrap(), leaf, config).unwrap();
        rt.block_on(async {
            let (mut first, mut extra) = (0u64, 0u64);
            let (mut failovers, mut answers) = (0u64, 0u64);
            let burst = retry_burst as f64;
            for n in 0..30 {
                call_no.store(n, Ordering::Relaxed);
                let g = root.gather(Plan::broadcast(shards, ()), &Count::new()).await.unwrap();
                let r = &g.report;
                prop_assert_eq!(r.leaf_requests(), r.shards.iter().map(|s| s.attempts).sum::<u32>());
                first += r.shards.iter().filter(|s| s.attempts > 0).count() as u64;
                // Hedges and retries after timeouts: the extra-load budget.
                extra += u64::from(r.hedges() + r.retries() - r.failovers());
                prop_assert_eq!(u64::from(r.leaf_requests()), first_of(r) + u64::from(r.hedges() + r.retries()));
                prop_assert!(
                    extra as f64 <= ratio * first as f64 + 1e-9,
                    "{} extra attempts after {} first attempts at ratio {}", extra, first, ratio
                );
                // Failovers after transient errors: the retry budget, with
                // what this call's answers earned counted only afterwards.
                prop_assert!(
                    (failovers + u64::from(r.failovers())) as f64 <= burst + retry_ratio * answers as f64 + 1e-9,
                    "{} failovers after {} answers, burst {}", failovers, answers, burst
                );
                failovers += u64::from(r.failovers());
                answers += r.answered() as u64;
                let accounted = r.answered() + r.timed_out() + r.failed() + r.cancelled() + r.skipped();
                prop_assert_eq!(accounted, shards);
            }
            Ok(())
        })?;
    }
}

fn first_of(r: &weft_scatter::Report) -> u64 {
    r.shards.iter().filter(|s| s.attempts > 0).count() as u64
}
