//! Behaviour of the root on paused tokio time: deadlines, hedging,
//! cancellation, errors, policies, probation and the report.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{Instant, sleep};
use weft_core::{
    Backoff, Classify, Count, ErrorClass, Health, HealthPolicy, RetryPolicy, ShardExt, ShardId, Sum,
};
use weft_scatter::{
    CallOptions, Gather, Hedging, LeafContext, Plan, RetryBudget, Scatter, ScatterConfig,
    ScatterError, ShardOutcome, Topology,
};
use weft_shard::LevelJump;

#[derive(Debug, Clone, PartialEq)]
enum LeafError {
    Busy,
    Invalid,
}

impl std::fmt::Display for LeafError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl Classify for LeafError {
    fn class(&self) -> ErrorClass {
        match self {
            LeafError::Busy => ErrorClass::Transient,
            LeafError::Invalid => ErrorClass::Permanent,
        }
    }
}

/// Counts drops: a leaf holding one shows when its future is dropped.
#[derive(Clone, Default)]
struct Drops(Arc<AtomicUsize>);

struct Guard(Arc<AtomicUsize>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drops {
    fn guard(&self) -> Guard {
        Guard(self.0.clone())
    }
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A config whose hedge delay is a fixed 10 ms (fallback, never enough
/// samples) and whose budget allows one extra attempt per first attempt.
fn config(deadline: Duration) -> ScatterConfig {
    ScatterConfig::new(deadline)
        .hedging(Hedging::adaptive().fallback(ms(10), u64::MAX))
        .max_extra_load(1.0)
}

#[tokio::test(start_paused = true)]
async fn the_deadline_holds_with_leaves_that_never_answer() {
    let leaf = |_: (), cx: LeafContext| async move {
        if cx.shard.get() < 5 {
            sleep(ms(1)).await;
            Ok::<u64, LeafError>(1)
        } else {
            futures::future::pending().await
        }
    };
    let root = Scatter::new(Topology::sharded(10, 2).unwrap(), leaf, config(ms(50))).unwrap();
    let start = Instant::now();
    let g = root
        .gather(Plan::broadcast(10, ()), &Count::new())
        .await
        .unwrap();
    // Paused time: the call returns at the deadline, not a tick later.
    assert_eq!(start.elapsed(), ms(50));
    assert_eq!(g.output, 5);
    let r = &g.report;
    assert!(r.deadline_hit && !r.complete() && !r.policy_met());
    assert_eq!(
        (
            r.answered(),
            r.timed_out(),
            r.failed(),
            r.cancelled(),
            r.skipped()
        ),
        (5, 5, 0, 0, 0)
    );
    let shards: Vec<u32> = r.shards.iter().map(|s| s.shard.get()).collect();
    assert_eq!(
        shards,
        (0..10).collect::<Vec<_>>(),
        "every shard exactly once, in order"
    );
    for s in &r.shards {
        let expected_answered = s.shard.get() < 5;
        assert_eq!(
            matches!(s.outcome, ShardOutcome::Answered { .. }),
            expected_answered
        );
        if !expected_answered {
            assert_eq!(s.outcome, ShardOutcome::TimedOut);
        }
    }
    assert!(matches!(
        g.require_complete(),
        Err(ScatterError::Incomplete(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn first_success_wins_on_another_replica_and_the_loser_is_dropped() {
    let drops = Drops::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (d, s) = (drops.clone(), seen.clone());
    let leaf = move |_: (), cx: LeafContext| {
        let guard = d.guard();
        s.lock().unwrap().push((cx.attempt, cx.replica, cx.hedge));
        async move {
            let _guard = guard;
            if cx.attempt == 1 {
                sleep(ms(1000)).await; // the straggler
            } else {
                sleep(ms(5)).await;
            }
            Ok::<u64, LeafError>(u64::from(cx.attempt))
        }
    };
    let root = Scatter::new(Topology::sharded(1, 3).unwrap(), leaf, config(ms(500))).unwrap();
    let start = Instant::now();
    let g = root
        .gather(Plan::broadcast(1, ()), &Sum::<u64>::new())
        .await
        .unwrap();
    assert_eq!(
        start.elapsed(),
        ms(15),
        "hedged at 10 ms, answered 5 ms later"
    );
    assert_eq!(g.output, Ok(2), "the hedge's answer, not the straggler's");
    assert_eq!(
        drops.count(),
        2,
        "both attempts' futures are gone when the call returns"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_ne!(
        seen[0].1, seen[1].1,
        "the hedge goes to a different replica"
    );
    assert!(!seen[0].2 && seen[1].2);
    let line = &g.report.shards[0];
    assert_eq!((line.attempts, line.hedges, line.retries), (2, 1, 0));
    assert_eq!(
        line.outcome,
        ShardOutcome::Answered {
            replica: seen[1].1,
            attempt: 2
        }
    );
}

#[tokio::test(start_paused = true)]
async fn an_error_never_beats_a_later_success() {
    let leaf = |_: (), cx: LeafContext| async move {
        if cx.attempt == 1 {
            sleep(ms(20)).await;
            Err(LeafError::Busy)
        } else {
            sleep(ms(30)).await;
            Ok::<u64, LeafError>(7)
        }
    };
    let root = Scatter::new(Topology::sharded(1, 2).unwrap(), leaf, config(ms(500))).unwrap();
    let g = root
        .gather(Plan::broadcast(1, ()), &Sum::<u64>::new())
        .await
        .unwrap();
    assert_eq!(g.output, Ok(7));
    assert_eq!(
        g.report.shards[0].outcome,
        ShardOutcome::Answered {
            replica: g.report.shards[0].outcome_replica(),
            attempt: 2
        }
    );
}

trait OutcomeReplica {
    fn outcome_replica(&self) -> usize;
}

impl OutcomeReplica for weft_scatter::ShardReport {
    fn outcome_replica(&self) -> usize {
        match self.outcome {
            ShardOutcome::Answered { replica, .. } => replica,
            _ => usize::MAX,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_transient_error_moves_to_the_next_replica_at_once_and_a_permanent_one_fails() {
    let leaf = |kind: u8, cx: LeafContext| async move {
        match (kind, cx.attempt) {
            (0, 1) => Err(LeafError::Busy),
            (1, _) => Err(LeafError::Invalid),
            _ => Ok::<u64, LeafError>(1),
        }
    };
    let root = Scatter::new(
        Topology::sharded(2, 3).unwrap(),
        leaf,
        config(ms(100)).hedging(Hedging::off()),
    )
    .unwrap();
    let start = Instant::now();
    let plan = Plan::new(vec![(ShardId::new(0), 0u8), (ShardId::new(1), 1u8)]);
    let g = root.gather(plan, &Count::new()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "the retry does not wait");
    let r = &g.report;
    assert!(matches!(
        r.shards[0].outcome,
        ShardOutcome::Answered { attempt: 2, .. }
    ));
    assert_eq!(r.shards[0].retries, 1);
    assert_eq!(
        r.shards[1].outcome,
        ShardOutcome::Failed {
            error: "Invalid".into(),
            class: ErrorClass::Permanent
        }
    );
    assert_eq!(r.shards[1].attempts, 1, "a permanent error is not retried");
}

#[tokio::test(start_paused = true)]
async fn a_retry_waits_out_the_policy_backoff_and_never_past_the_deadline() {
    // The first attempt at every shard fails transiently; the next answers
    // with the time it was sent.
    let leaf = |_: (), cx: LeafContext| async move {
        if cx.attempt == 1 {
            Err(LeafError::Busy)
        } else {
            Ok::<u64, LeafError>(1)
        }
    };
    let wait = RetryPolicy::new(3, Backoff::constant(ms(30))).unwrap();
    let cfg = config(ms(100)).hedging(Hedging::off()).retry(wait);
    let root = Scatter::new(Topology::sharded(2, 2).unwrap(), leaf, cfg).unwrap();
    let start = Instant::now();
    let g = root
        .gather(Plan::broadcast(2, ()), &Count::new())
        .await
        .unwrap();
    assert_eq!(
        start.elapsed(),
        ms(30),
        "both retries waited the backoff, together"
    );
    assert!(g.report.complete(), "{:?}", g.report);
    for line in &g.report.shards {
        assert_eq!((line.attempts, line.retries), (2, 1));
        assert_eq!(line.elapsed, ms(30));
    }

    // A backoff that would end past the deadline fails the shard at once
    // with its error, instead of waiting for a retry that cannot happen.
    let late = RetryPolicy::new(3, Backoff::constant(ms(500))).unwrap();
    let cfg = config(ms(100)).hedging(Hedging::off()).retry(late);
    let root = Scatter::new(Topology::sharded(1, 2).unwrap(), leaf, cfg).unwrap();
    let start = Instant::now();
    let g = root
        .gather(Plan::broadcast(1, ()), &Count::new())
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        g.report.shards[0].outcome,
        ShardOutcome::Failed {
            error: "Busy".into(),
            class: ErrorClass::Transient
        }
    );
    assert!(!g.report.deadline_hit);
}

#[tokio::test(start_paused = true)]
async fn leaf_sharding_sends_each_key_to_its_owner_and_nowhere_else() {
    let sharder = LevelJump::new(8).unwrap();
    let received = Arc::new(Mutex::new(BTreeMap::<u32, Vec<u64>>::new()));
    let rec = received.clone();
    let leaf = move |keys: Vec<u64>, cx: LeafContext| {
        rec.lock()
            .unwrap()
            .entry(cx.shard.get())
            .or_default()
            .extend(&keys);
        async move { Ok::<u64, LeafError>(keys.len() as u64) }
    };
    let root = Scatter::new(Topology::sharded(8, 2).unwrap(), leaf, config(ms(100))).unwrap();
    let keys: Vec<u64> = (0..5).map(|i| i * 1000).collect();
    let plan = Plan::by_key(&sharder, keys.clone(), |k| k);
    let g = root.gather(plan, &Sum::<u64>::new()).await.unwrap();
    assert_eq!(g.output, Ok(5));
    let received = received.lock().unwrap();
    let mut all: Vec<u64> = received.values().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, keys, "each key sent exactly once");
    for (shard, ks) in received.iter() {
        for k in ks {
            assert_eq!(
                sharder.shard_for(k).get(),
                *shard,
                "key {k} went to shard {shard}"
            );
        }
    }
    // Shards owning none of the keys were not asked, and say so.
    let skipped = g
        .report
        .shards
        .iter()
        .filter(|s| s.outcome == ShardOutcome::Skipped)
        .count();
    assert_eq!(skipped, 8 - received.len());
    assert!(g.report.complete(), "skipped shards are not missing");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_call_cancels_every_leaf() {
    let drops = Drops::default();
    let started = Arc::new(AtomicUsize::new(0));
    let (d, st) = (drops.clone(), started.clone());
    let leaf = move |_: (), _cx: LeafContext| {
        let guard = d.guard();
        st.fetch_add(1, Ordering::SeqCst);
        async move {
            let _guard = guard;
            futures::future::pending::<Result<u64, LeafError>>().await
        }
    };
    let root = Scatter::new(Topology::sharded(20, 2).unwrap(), leaf, config(ms(10_000))).unwrap();
    let count = Count::new();
    let call = root.gather(Plan::broadcast(20, ()), &count);
    assert!(tokio::time::timeout(ms(30), call).await.is_err());
    let n = started.load(Ordering::SeqCst);
    assert!(n >= 20, "{n} leaves started");
    assert_eq!(drops.count(), n, "every started leaf was dropped");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_leaf_fails_its_shard_not_the_root() {
    let leaf = |_: (), cx: LeafContext| async move {
        if cx.shard.get() == 1 {
            panic!("leaf bug");
        }
        Ok::<u64, LeafError>(1)
    };
    let root = Scatter::new(Topology::sharded(3, 2).unwrap(), leaf, config(ms(100))).unwrap();
    let g = root
        .gather(Plan::broadcast(3, ()), &Count::new())
        .await
        .unwrap();
    assert_eq!(g.output, 2);
    assert_eq!(
        g.report.shards[1].outcome,
        ShardOutcome::Failed {
            error: "leaf panicked".into(),
            class: ErrorClass::Permanent
        }
    );
}

#[tokio::test(start_paused = true)]
async fn first_k_returns_after_k_answers_and_cancels_the_rest() {
    let drops = Drops::default();
    let d = drops.clone();
    let leaf = move |_: (), cx: LeafContext| {
        let guard = d.guard();
        async move {
            let _guard = guard;
            sleep(ms(10 * u64::from(cx.shard.get() + 1))).await;
            Ok::<u64, LeafError>(1)
        }
    };
    let cfg = config(ms(1000))
        .gather(Gather::FirstK(3))
        .hedging(Hedging::off());
    let root = Scatter::new(Topology::sharded(6, 1).unwrap(), leaf, cfg).unwrap();
    let start = Instant::now();
    let g = root
        .gather(Plan::broadcast(6, ()), &Count::new())
        .await
        .unwrap();
    assert_eq!(start.elapsed(), ms(30));
    assert_eq!(g.output, 3);
    assert_eq!((g.report.answered(), g.report.cancelled()), (3, 3));
    assert!(g.report.policy_met() && !g.report.complete());
    assert_eq!(drops.count(), 6);
}

#[tokio::test(start_paused = true)]
async fn fraction_policy_is_judged_at_the_deadline() {
    let leaf = |_: (), cx: LeafContext| async move {
        if cx.shard.get() == 9 {
            futures::future::pending::<()>().await;
        }
        Ok::<u64, LeafError>(1)
    };
    let cfg = config(ms(40))
        .gather(Gather::Fraction(0.9))
        .hedging(Hedging::off());
    let root = Scatter::new(Topology::sharded(10, 1).unwrap(), leaf, cfg).unwrap();
    let g = root
        .gather(Plan::broadcast(10, ()), &Count::new())
        .await
        .unwrap();
    assert!(g.report.policy_met() && !g.report.complete());
    assert_eq!(g.clone().require_policy().unwrap(), 9);
    assert!(g.require_complete().is_err());
}

#[tokio::test(start_paused = true)]
async fn quorum_asks_q_replicas_and_resolves_disagreement() {
    // Replica r of the shard holds version r.
    let leaf = |_: (), cx: LeafContext| async move { Ok::<u64, LeafError>(cx.replica as u64) };
    let cfg = config(ms(100))
        .gather(Gather::Quorum(2))
        .hedging(Hedging::off());
    let root = Scatter::new(Topology::sharded(1, 3).unwrap(), leaf, cfg).unwrap();
    let newest = |answers: Vec<u64>| answers.into_iter().max().unwrap_or(0);
    let g = root
        .gather_resolved(
            Plan::broadcast(1, ()),
            &Sum::<u64>::new(),
            CallOptions::default(),
            newest,
        )
        .await
        .unwrap();
    assert_eq!(g.report.shards[0].attempts, 2);
    let v = g.output.unwrap();
    assert!(
        v == 1 || v == 2,
        "the newer of the two versions asked, got {v}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_replica_goes_on_probation_and_returns_after_a_probe() {
    let broken = Arc::new(AtomicUsize::new(1)); // replica 0 fails while set
    let b = broken.clone();
    let leaf = move |_: (), cx: LeafContext| {
        let fail = cx.replica == 0 && b.load(Ordering::SeqCst) == 1;
        async move {
            if fail {
                Err(LeafError::Busy)
            } else {
                Ok::<u64, LeafError>(1)
            }
        }
    };
    let cfg = config(ms(100))
        .hedging(Hedging::off())
        .health(HealthPolicy::new(1, 2, 1).unwrap(), ms(1000));
    let root = Scatter::new(Topology::replicated(1, 2).unwrap(), leaf, cfg).unwrap();
    for _ in 0..20 {
        let g = root
            .gather(Plan::broadcast(1, ()), &Count::new())
            .await
            .unwrap();
        assert!(g.report.complete());
    }
    assert_eq!(root.replica_health(0), Health::Down);
    // On probation: no traffic at all until the probation period ends.
    let before = count_calls_to_zero(&root, 20).await;
    assert_eq!(before, 0);
    broken.store(0, Ordering::SeqCst);
    tokio::time::advance(ms(1001)).await;
    // One probe is allowed; it succeeds and the replica is back.
    let after = count_calls_to_zero(&root, 50).await;
    assert!(after >= 1);
    assert_ne!(root.replica_health(0), Health::Down);
}

async fn count_calls_to_zero<L>(root: &Scatter<L>, calls: usize) -> usize
where
    L: weft_scatter::Leaf<(), Response = u64>,
{
    let mut n = 0;
    for _ in 0..calls {
        let g = root
            .gather(Plan::broadcast(1, ()), &Count::new())
            .await
            .unwrap();
        if let ShardOutcome::Answered { replica: 0, .. } = g.report.shards[0].outcome {
            n += 1;
        }
    }
    n
}

#[tokio::test(start_paused = true)]
async fn waiting_for_a_concurrency_slot_counts_against_the_deadline() {
    let leaf = |_: (), _cx: LeafContext| async move {
        sleep(ms(30)).await;
        Ok::<u64, LeafError>(1)
    };
    let cfg = config(ms(50)).max_in_flight(1).hedging(Hedging::off());
    let root = Scatter::new(Topology::sharded(3, 1).unwrap(), leaf, cfg).unwrap();
    let start = Instant::now();
    let g = root
        .gather(Plan::broadcast(3, ()), &Count::new())
        .await
        .unwrap();
    assert_eq!(start.elapsed(), ms(50));
    assert_eq!((g.report.answered(), g.report.timed_out()), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn per_attempt_timeouts_retry_on_another_replica() {
    let leaf = |_: (), cx: LeafContext| async move {
        if cx.attempt == 1 {
            sleep(ms(1000)).await;
        }
        Ok::<u64, LeafError>(1)
    };
    let cfg = config(ms(500))
        .attempt_timeout(ms(20))
        .hedging(Hedging::off());
    let root = Scatter::new(Topology::sharded(1, 2).unwrap(), leaf, cfg).unwrap();
    let start = Instant::now();
    let g = root
        .gather(Plan::broadcast(1, ()), &Count::new())
        .await
        .unwrap();
    assert_eq!(start.elapsed(), ms(20));
    assert_eq!(g.report.shards[0].retries, 1);
    assert!(g.report.complete());
}

#[tokio::test(start_paused = true)]
async fn a_call_can_opt_out_of_hedging() {
    let leaf = |_: (), cx: LeafContext| async move {
        if cx.attempt == 1 {
            sleep(ms(100)).await;
        }
        Ok::<u64, LeafError>(1)
    };
    let root = Scatter::new(Topology::sharded(1, 2).unwrap(), leaf, config(ms(500))).unwrap();
    let g = root
        .gather_with(
            Plan::broadcast(1, ()),
            &Count::new(),
            CallOptions::default().no_hedge(),
        )
        .await
        .unwrap();
    assert_eq!(g.report.hedges(), 0);
    assert_eq!(g.report.elapsed, ms(100));
}

#[test]
fn the_report_serialises_with_every_shard() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let leaf = |_: (), cx: LeafContext| async move {
            if cx.shard.get() == 0 {
                Err(LeafError::Invalid)
            } else {
                Ok::<u64, LeafError>(1)
            }
        };
        let root = Scatter::new(Topology::sharded(3, 1).unwrap(), leaf, config(ms(10))).unwrap();
        let plan = Plan::new(vec![(ShardId::new(0), ()), (ShardId::new(1), ())]);
        let g = root.gather(plan, &Count::new()).await.unwrap();
        let json = serde_json::to_value(&g.report).unwrap();
        assert_eq!(json["shards"].as_array().unwrap().len(), 3);
        assert_eq!(json["shards"][0]["outcome"]["state"], "failed");
        assert_eq!(json["shards"][1]["outcome"]["state"], "answered");
        assert_eq!(json["shards"][2]["outcome"]["state"], "skipped");
        assert_eq!(json["complete"], false);
    });
}

#[test]
fn bad_input_is_a_typed_error() {
    let leaf = |_: (), _cx: LeafContext| async move { Ok::<u64, LeafError>(1) };
    let t = || Topology::sharded(4, 2).unwrap();
    let d = ms(10);
    let err = |c: ScatterConfig| Scatter::new(t(), leaf, c).unwrap_err();
    assert_eq!(
        err(ScatterConfig::new(Duration::ZERO)),
        ScatterError::ZeroDuration("deadline")
    );
    assert_eq!(
        err(ScatterConfig::new(d).gather(Gather::FirstK(0))),
        ScatterError::BadK { k: 0, shards: 4 }
    );
    assert_eq!(
        err(ScatterConfig::new(d).gather(Gather::FirstK(5))),
        ScatterError::BadK { k: 5, shards: 4 }
    );
    assert_eq!(
        err(ScatterConfig::new(d).gather(Gather::Fraction(0.0))),
        ScatterError::BadFraction(0.0)
    );
    assert_eq!(
        err(ScatterConfig::new(d).gather(Gather::Fraction(1.5))),
        ScatterError::BadFraction(1.5)
    );
    assert!(matches!(
        err(ScatterConfig::new(d).gather(Gather::Quorum(3))),
        ScatterError::BadQuorum { q: 3, .. }
    ));
    assert_eq!(
        err(ScatterConfig::new(d).max_extra_load(-0.1)),
        ScatterError::BadBudget(-0.1)
    );
    assert_eq!(
        err(ScatterConfig::new(d).max_extra_load(1.5)),
        ScatterError::BadBudget(1.5)
    );
    assert_eq!(
        err(ScatterConfig::new(d).retry_budget(RetryBudget::new(1.5))),
        ScatterError::BadRetryBudget(1.5)
    );
    assert!(matches!(
        err(ScatterConfig::new(d).retry_budget(RetryBudget::new(f64::NAN))),
        ScatterError::BadRetryBudget(r) if r.is_nan()
    ));
    assert!(
        Scatter::new(
            t(),
            leaf,
            ScatterConfig::new(d).retry_budget(RetryBudget::new(1.0).burst(u64::MAX))
        )
        .is_ok(),
        "a huge burst is legal"
    );
    assert_eq!(
        err(ScatterConfig::new(d).hedging(Hedging::adaptive().percentile(0.0))),
        ScatterError::BadPercentile(0.0)
    );
    assert_eq!(
        err(ScatterConfig::new(d).hedging(Hedging::adaptive().percentile(100.0))),
        ScatterError::BadPercentile(100.0)
    );
    assert!(matches!(
        err(ScatterConfig::new(d).hedging(Hedging::adaptive().bounds(ms(5), ms(1)))),
        ScatterError::FloorAboveCeiling { .. }
    ));
    assert_eq!(
        Topology::sharded(0, 1).unwrap_err(),
        ScatterError::ZeroShards
    );
    assert_eq!(
        Topology::sharded(2, 0).unwrap_err(),
        ScatterError::NoReplicas(ShardId::new(0))
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let root = Scatter::new(t(), leaf, ScatterConfig::new(d)).unwrap();
    rt.block_on(async {
        let bad = Plan::new(vec![(ShardId::new(9), ())]);
        assert_eq!(
            root.gather(bad, &Count::new()).await.unwrap_err(),
            ScatterError::UnknownShard(ShardId::new(9))
        );
        let dup = Plan::new(vec![(ShardId::new(1), ()), (ShardId::new(1), ())]);
        assert_eq!(
            root.gather(dup, &Count::new()).await.unwrap_err(),
            ScatterError::DuplicateShard(ShardId::new(1))
        );
        let zero = CallOptions::default().deadline(Duration::ZERO);
        assert!(
            root.gather_with(Plan::broadcast(4, ()), &Count::new(), zero)
                .await
                .is_err()
        );
    });
}

#[test]
fn configurations_that_can_never_work_are_typed_errors() {
    let leaf = |_: (), _cx: LeafContext| async move { Ok::<u64, LeafError>(1) };
    let t = |r| Topology::sharded(4, r).unwrap();
    let d = ms(10);
    let err = |c: ScatterConfig, r| Scatter::new(t(r), leaf, c).unwrap_err();
    // A quorum that needs more attempts than a root makes per shard, even
    // where the shard has replicas enough.
    assert_eq!(
        err(ScatterConfig::new(d).gather(Gather::Quorum(9)), 12),
        ScatterError::TooManyAttempts {
            what: "quorum",
            got: 9,
            max: weft_scatter::MAX_ATTEMPTS
        }
    );
    assert!(Scatter::new(t(8), leaf, ScatterConfig::new(d).gather(Gather::Quorum(8))).is_ok());
    assert!(matches!(
        err(
            ScatterConfig::new(d).retry(RetryPolicy::new(9, Backoff::NONE).unwrap()),
            2
        ),
        ScatterError::TooManyAttempts {
            what: "max attempts",
            got: 9,
            ..
        }
    ));
    assert!(
        RetryPolicy::new(0, Backoff::NONE)
            .unwrap_err()
            .to_string()
            .contains("max attempts is 0")
    );
    assert_eq!(
        err(ScatterConfig::new(d).max_in_flight(0), 2),
        ScatterError::ZeroCount("max in flight")
    );
    assert_eq!(
        err(
            ScatterConfig::new(d).hedging(Hedging::adaptive().window(0)),
            2
        ),
        ScatterError::ZeroCount("latency window")
    );
    assert_eq!(
        err(ScatterConfig::new(d).attempt_timeout(ms(11)), 2),
        ScatterError::TimeoutAboveDeadline {
            timeout: ms(11),
            deadline: d
        }
    );
    assert!(Scatter::new(t(2), leaf, ScatterConfig::new(d).attempt_timeout(d)).is_ok());
    assert!(matches!(
        err(ScatterConfig::new(d).max_extra_load(f64::NAN), 2),
        ScatterError::BadBudget(_)
    ));
    assert!(matches!(
        err(ScatterConfig::new(d).gather(Gather::Fraction(f64::NAN)), 2),
        ScatterError::BadFraction(_)
    ));
}

#[test]
fn topologies_too_large_to_hold_are_refused_before_allocating() {
    for (shards, replicas) in [
        (usize::MAX, 1),
        (1, usize::MAX),
        (1 << 21, 1),
        (1 << 13, 1 << 12),
    ] {
        let err = Topology::sharded(shards, replicas).unwrap_err();
        assert!(
            matches!(err, ScatterError::TooLarge { .. }),
            "{shards}×{replicas}: {err}"
        );
        assert!(err.to_string().contains("limit"), "{err}");
        let err = Topology::replicated(shards, replicas).unwrap_err();
        assert!(matches!(err, ScatterError::TooLarge { .. }), "{err}");
    }
    // Overflowing products are refused too, not wrapped.
    assert!(matches!(
        Topology::sharded(usize::MAX / 2, 3),
        Err(ScatterError::TooLarge { .. })
    ));
    assert!(Topology::sharded(Topology::MAX_SHARDS, 1).is_ok());
}

#[tokio::test(start_paused = true)]
async fn durations_at_the_extremes_mean_wait_forever_and_never_overflow() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let leaf = move |_: (), cx: LeafContext| {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            if cx.replica.is_multiple_of(2) {
                sleep(ms(30)).await;
                Err(LeafError::Busy)
            } else {
                Ok::<u64, LeafError>(1)
            }
        }
    };
    let config = ScatterConfig::new(Duration::MAX)
        .attempt_timeout(Duration::MAX)
        .hedging(
            Hedging::adaptive()
                .fallback(Duration::MAX, u64::MAX)
                .bounds(Duration::ZERO, Duration::MAX),
        )
        .health(HealthPolicy::default(), Duration::MAX)
        .max_extra_load(1.0);
    let root = Scatter::new(Topology::sharded(4, 2).unwrap(), leaf, config).unwrap();
    for _ in 0..3 {
        let g = root
            .gather(Plan::broadcast(4, ()), &Count::new())
            .await
            .unwrap();
        assert_eq!(g.output, 4, "every shard answers, first or on retry");
    }
    let forever = CallOptions::default().deadline(Duration::MAX);
    let g = root
        .gather_with(Plan::broadcast(4, ()), &Count::new(), forever)
        .await
        .unwrap();
    assert_eq!(g.output, 4);
    assert!(calls.load(Ordering::SeqCst) >= 16);
}

#[tokio::test(start_paused = true)]
async fn a_leaf_that_panics_before_returning_its_future_fails_its_shard() {
    struct Eager;
    impl weft_scatter::Leaf<()> for Eager {
        type Response = u64;
        type Error = LeafError;
        type Future = std::future::Ready<Result<u64, LeafError>>;
        fn call(&self, _: (), cx: LeafContext) -> Self::Future {
            assert!(
                cx.shard.get() != 2,
                "bug in the synchronous part of the call"
            );
            std::future::ready(Ok(1))
        }
    }
    let root = Scatter::new(Topology::sharded(4, 2).unwrap(), Eager, config(ms(100))).unwrap();
    let g = root
        .gather(Plan::broadcast(4, ()), &Count::new())
        .await
        .unwrap();
    assert_eq!(g.output, 3);
    assert!(matches!(
        &g.report.shards[2].outcome,
        ShardOutcome::Failed { error, .. } if error == "leaf panicked"
    ));
    assert_eq!(g.report.answered(), 3);
}

#[test]
fn a_call_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    let leaf = |_: (), _cx: LeafContext| async move { Ok::<u64, LeafError>(1) };
    let root = Scatter::new(Topology::sharded(2, 1).unwrap(), leaf, config(ms(10))).unwrap();
    let err = futures::executor::block_on(root.gather(Plan::broadcast(2, ()), &Count::new()))
        .unwrap_err();
    assert_eq!(err, ScatterError::NoRuntime);
}

#[tokio::test(start_paused = true)]
async fn a_fresh_root_fails_over_from_a_down_replica_on_every_one_of_its_first_queries() {
    // 8 shards × 2 replicas; the first replica of every shard refuses
    // connections at once, the other answers after 1 ms.
    let topology = Topology::sharded(8, 2).unwrap();
    let down: Arc<Vec<usize>> = Arc::new(
        (0..8)
            .map(|s| topology.replicas_of(ShardId::new(s))[0])
            .collect(),
    );
    let leaf = {
        let down = down.clone();
        move |_: (), cx: LeafContext| {
            let refused = down.contains(&cx.replica);
            async move {
                if refused {
                    return Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
                }
                sleep(ms(1)).await;
                Ok(1u64)
            }
        }
    };
    let run = |budget: RetryBudget| {
        let root = Scatter::new(
            topology.clone(),
            leaf.clone(),
            ScatterConfig::new(ms(100)).retry_budget(budget),
        )
        .unwrap();
        async move {
            let (mut complete, mut failovers, mut answers) = (0, 0u32, 0usize);
            for _ in 0..50 {
                let g = root
                    .gather(Plan::broadcast(8, ()), &Count::new())
                    .await
                    .unwrap();
                let r = &g.report;
                complete += usize::from(r.complete());
                failovers += r.failovers();
                answers += r.answered();
                for line in &r.shards {
                    // An answer, with or without a failover before it, took
                    // the 1 ms, and its line says so.
                    if matches!(line.outcome, ShardOutcome::Answered { .. }) {
                        assert!(line.elapsed >= ms(1), "{line:?}");
                    }
                    assert!(line.failovers <= 1, "{line:?}");
                }
            }
            (complete, failovers, answers)
        }
    };
    // The default budget is warm and sized to the topology: every query of
    // the fresh root is complete, although its hedge budget starts empty.
    let (complete, failovers, answers) = run(RetryBudget::new(0.1)).await;
    assert_eq!(complete, 50);
    // The failovers stay within the bound (the burst, down_after ×
    // replicas = 48, plus a tenth of the answers), and health stops them
    // once each down replica is known: at most its 3 failures each.
    assert!(f64::from(failovers) <= 48.0 + 0.1 * answers as f64);
    assert!(failovers <= 8 * 3, "{failovers} failovers");
    assert!(failovers >= 8, "every down replica was tried at least once");

    // A cold budget of the same bound starts empty: the first queries that
    // meet a down replica are incomplete, which is what the warm start
    // prevents.
    let (complete, _, _) = run(RetryBudget::new(0.1).cold()).await;
    assert!(complete < 50, "{complete} of 50 complete");
    // No budget at all: a refused connection fails its shard.
    let (complete, failovers, _) = run(RetryBudget::off()).await;
    assert_eq!(failovers, 0);
    assert!(complete < 50);
}

/// Hedges seen by a [`warmed_root`]: (call number, shard, when sent).
type Hedges = Arc<Mutex<Vec<(u64, u32, Instant)>>>;

/// A root over 100 shards × 2 replicas with a 3 % budget, warmed up by 100
/// calls without hedging so that the latency window holds exactly the
/// warm-up latencies (96 % take 10 ms, 1.5 % 200 ms, 2.5 % 1 s: the hedge
/// delay follows p98, the 1 s ones, the early hedges p97, the 200 ms
/// ones, and the last few p95.5, the 10 ms ones) and the budget fills.
/// Later calls take `special(call, shard)` ms where it says, 10 ms
/// elsewhere; hedges answer in 1 ms. The call number is set through the
/// returned counter.
async fn warmed_root(
    special: fn(u64, u32) -> Option<u64>,
) -> (
    Scatter<impl weft_scatter::Leaf<(), Response = u64> + use<>>,
    Arc<std::sync::atomic::AtomicU64>,
    Hedges,
) {
    use std::sync::atomic::AtomicU64;
    let call_no = Arc::new(AtomicU64::new(0));
    let hedged_at: Hedges = Arc::default();
    let (calls, hedges) = (call_no.clone(), hedged_at.clone());
    let leaf = move |_: (), cx: LeafContext| {
        let n = calls.load(Ordering::SeqCst);
        let hedges = hedges.clone();
        async move {
            let shard = cx.shard.get();
            if cx.hedge {
                hedges.lock().unwrap().push((n, shard, Instant::now()));
                sleep(ms(1)).await;
                return Ok::<u64, LeafError>(1);
            }
            let d = if n < 100 {
                match (n * 100 + u64::from(shard)) % 200 {
                    0..=191 => 10,
                    192..=194 => 200,
                    _ => 1000,
                }
            } else {
                special(n, shard).unwrap_or(10)
            };
            sleep(ms(d)).await;
            Ok(1)
        }
    };
    let config = ScatterConfig::new(ms(20_000))
        .max_extra_load(0.03)
        .hedging(Hedging::adaptive().fallback(ms(5000), 200));
    let root = Scatter::new(Topology::sharded(100, 2).unwrap(), leaf, config).unwrap();
    for n in 0..100 {
        call_no.store(n, Ordering::SeqCst);
        root.gather_with(
            Plan::broadcast(100, ()),
            &Count::new(),
            CallOptions::default().no_hedge(),
        )
        .await
        .unwrap();
    }
    (root, call_no, hedged_at)
}

/// Runs call `n` over the first `shards` shards; the hedges it sent, by
/// shard, and when, from its start.
async fn hedged_call(
    root: &Scatter<impl weft_scatter::Leaf<(), Response = u64>>,
    call_no: &std::sync::atomic::AtomicU64,
    hedges: &Hedges,
    n: u64,
    shards: usize,
) -> BTreeMap<u32, Duration> {
    call_no.store(n, Ordering::SeqCst);
    let start = Instant::now();
    let g = root
        .gather(Plan::broadcast(shards, ()), &Count::new())
        .await
        .unwrap();
    assert!(g.report.complete());
    hedges
        .lock()
        .unwrap()
        .iter()
        .filter(|(call, _, _)| *call == n)
        .map(|(_, shard, at)| (*shard, *at - start))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn with_budget_to_spare_a_straggler_of_a_narrow_call_is_hedged_early_not_at_the_hedge_delay()
{
    // Shard 0 takes 10 s in call 100.
    let (root, call_no, hedges) = warmed_root(|_, shard| (shard == 0).then_some(10_000)).await;
    let late = root.hedge_delay();
    assert!(
        late >= ms(900),
        "the hedge delay follows the 1 s leaves: {late:?}"
    );
    // A call of 20 shards, too few to have last few (a wide call's early
    // hedges go to its last few shards: see the next test): the straggler
    // is hedged at the early delay (the 200 ms leaves), not at the hedge
    // delay.
    let hedged = hedged_call(&root, &call_no, &hedges, 100, 20).await;
    let at = hedged.get(&0).expect("the straggler was hedged");
    assert!(
        *at >= ms(190) && *at < ms(400),
        "hedged {at:?} after the start, hedge delay {late:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wide_call_hedges_its_last_few_shards_as_soon_as_only_they_are_left() {
    // With a 3 % budget over 100 shards the last few are 3, hedged once
    // they have waited p95.5 (10 ms); the early delay is p97 (200 ms) and
    // the hedge delay p98 (1 s).
    let (root, call_no, hedges) = warmed_root(|n, shard| match (n, shard) {
        // Two shards answer at 100 ms and three take 5 s: from 100 ms
        // only the three are left.
        (1000, 0 | 1) => Some(100),
        (1000, 2..=4) => Some(5_000),
        // Four take 5 s: never only three left until they end.
        (1001, 0..=3) => Some(5_000),
        _ => None,
    })
    .await;
    // The three left are hedged the moment they are the last three,
    // before the early delay; the two that answered at 100 ms never were.
    let hedged = hedged_call(&root, &call_no, &hedges, 1000, 100).await;
    assert_eq!(
        hedged.keys().copied().collect::<Vec<_>>(),
        [2, 3, 4],
        "{hedged:?}"
    );
    for (shard, at) in &hedged {
        assert!(
            *at >= ms(100) && *at < ms(110),
            "shard {shard} hedged {at:?} after the start"
        );
    }
    // Four left are not the last few: they wait for the hedge delay.
    let hedged = hedged_call(&root, &call_no, &hedges, 1001, 100).await;
    assert_eq!(hedged.len(), 4, "{hedged:?}");
    for (shard, at) in &hedged {
        assert!(
            *at >= ms(900),
            "shard {shard} hedged {at:?} after the start"
        );
    }
}
