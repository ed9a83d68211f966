//! The lease torture test: seeded simulations on paused tokio time. Three
//! clients contend for one lease over the in-memory store, with injected
//! process pauses (a holder stops between checking its lease and writing,
//! for longer than the TTL), store delays and lost requests or answers,
//! clock drift within the configured bound, and crashes. Every holder writes
//! to a shared resource, once through a fence and once without.
//!
//! `WEFT_TORTURE_SEEDS=100000 cargo test --release -p weft-lease --test torture -- --nocapture`
//! runs 100,000 seeds (CI runs 1,000) and prints the figures recorded in
//! docs/leases.md.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::{Instant, sleep};
use weft_core::key_hash;
use weft_lease::{
    CasStore, Fence, Lease, LeaseClock, LeaseConfig, MemoryFence, MemoryStore, Version, WatchEvent,
};
use weft_test::faults::{FaultPlan, FaultyStore};

const KEY: &str = "resource/owner";
const TTL: Duration = Duration::from_secs(1);
const RENEW: Duration = Duration::from_millis(333);
const DRIFT: f64 = 0.02;
const MAX_DELAY: Duration = Duration::from_millis(40);
const RUN: Duration = Duration::from_secs(12);

/// A clock that runs at `rate` × tokio time (within the drift bound).
#[derive(Debug)]
struct DriftClock {
    origin: Instant,
    rate: f64,
}

impl LeaseClock for DriftClock {
    fn now(&self) -> Duration {
        Instant::now()
            .duration_since(self.origin)
            .mul_f64(self.rate)
    }
}

fn unit(parts: (u64, u64, u64, u8)) -> f64 {
    weft_core::mix::unit(key_hash(&parts))
}

#[derive(Debug, Default)]
struct Log {
    /// Store-side grants: (token, time), from the store's watch.
    grants: Vec<(Version, Instant)>,
    /// Store-side expiries: (token that expired, time).
    expiries: Vec<(Version, Instant)>,
    /// Holders' beliefs: (token, time) at which `is_held()` said yes before
    /// a write.
    checks: Vec<(Version, Instant)>,
    /// Write attempts: (token, time).
    writes: Vec<(Version, Instant, bool)>,
    /// When each holder's lost signal fired.
    lost: HashMap<Version, Instant>,
    /// Crashes: (time, token held).
    crashes: Vec<(Instant, Version)>,
}

#[derive(Debug, Default, Clone)]
struct Figures {
    seeds: u64,
    grants: u64,
    belief_overlaps: u64,
    token_regressions: u64,
    fenced_stale_accepted: u64,
    fenced_rejected: u64,
    unfenced_violations: u64,
    expiries: u64,
    lost_after_expiry: u64,
    min_margin: Option<Duration>,
    failovers: Vec<Duration>,
}

async fn simulate(seed: u64) -> Log {
    let store = Arc::new(MemoryStore::new());
    let log = Arc::new(Mutex::new(Log::default()));
    let fence = Arc::new(MemoryFence::new());
    let end = Instant::now() + RUN;

    // The store's view: who was granted the key when, and when it expired.
    let mut events = store.watch(KEY).expect("the memory store watches");
    let l = log.clone();
    let observer = tokio::spawn(async move {
        let mut holder = None;
        while let Some(e) = events.next().await {
            let mut log = l.lock().unwrap();
            match e {
                WatchEvent::Put(entry) => {
                    if holder != Some(entry.created) {
                        holder = Some(entry.created);
                        log.grants.push((entry.created, Instant::now()));
                    }
                }
                WatchEvent::Expired { .. } => {
                    if let Some(h) = holder.take() {
                        log.expiries.push((h, Instant::now()));
                    }
                }
                WatchEvent::Deleted { .. } => holder = None,
            }
        }
    });

    let clients = (0..3u64).map(|client| {
        let (store, log, fence) = (store.clone(), log.clone(), fence.clone());
        async move {
            let plan = FaultPlan {
                max_delay: MAX_DELAY.mul_f64(unit((seed, client, 0, 0))),
                lost_answer: 0.03,
                lost_request: 0.03,
                seed: key_hash(&(seed, client)),
            };
            let faulty = Arc::new(FaultyStore::new(store.clone(), plan));
            let rate = 1.0 + DRIFT * (2.0 * unit((seed, client, 0, 1)) - 1.0);
            let clock = Arc::new(DriftClock {
                origin: Instant::now(),
                rate,
            });
            let config = LeaseConfig::new(TTL)
                .renew_every(RENEW)
                .drift(DRIFT)
                .clock(clock);
            let mut step = 0u64;
            while Instant::now() < end {
                let lease = match Lease::builder(faulty.clone(), KEY, config.clone())
                    .value(client.to_le_bytes().to_vec())
                    .acquire(Duration::from_secs(2))
                    .await
                {
                    Ok(lease) => lease,
                    Err(e) => {
                        if std::env::var_os("WEFT_TORTURE_DEBUG").is_some() {
                            eprintln!("acquire: {e}");
                        }
                        continue;
                    }
                };
                let token = lease.token();
                // When the lease's own lost signal fires.
                let signal = lease.cancellation();
                let l = log.clone();
                tokio::spawn(async move {
                    signal.cancelled().await;
                    l.lock()
                        .unwrap()
                        .lost
                        .entry(token)
                        .or_insert(Instant::now());
                });
                loop {
                    step += 1;
                    sleep(Duration::from_millis(50)).await;
                    if !lease.is_held() || Instant::now() >= end {
                        break;
                    }
                    log.lock().unwrap().checks.push((token, Instant::now()));
                    let r = unit((seed, client, step, 2));
                    if r < 0.004 {
                        // Crash: the process stops for good, holding the lease.
                        faulty.set_paused(true);
                        log.lock().unwrap().crashes.push((Instant::now(), token));
                        lease.lost().await;
                        // Stay dead: never write, never release.
                        std::mem::forget(lease);
                        return;
                    }
                    if r < 0.03 {
                        // A process pause between the check and the write,
                        // longer than the TTL: renewals stop too.
                        faulty.set_paused(true);
                        sleep(TTL.mul_f64(1.5)).await;
                        faulty.set_paused(false);
                    }
                    let accepted = fence.check_and_advance("resource", token).await.is_ok();
                    log.lock()
                        .unwrap()
                        .writes
                        .push((token, Instant::now(), accepted));
                }
                let _ = lease.release().await;
            }
        }
    });
    futures::future::join_all(clients).await;
    sleep(TTL * 2).await; // let the store expire what crashed holders left
    observer.abort();
    std::mem::take(&mut *log.lock().unwrap())
}

/// Checks one run's log and adds it to the figures.
fn judge(log: &Log, f: &mut Figures) {
    f.seeds += 1;
    f.grants += log.grants.len() as u64;
    // Fencing tokens strictly increase in grant order.
    f.token_regressions += log.grants.windows(2).filter(|w| w[1].0 <= w[0].0).count() as u64;
    // At most one holder per epoch: no holder believed it held the lease
    // after the store had granted a newer token.
    for &(token, at) in &log.checks {
        if log.grants.iter().any(|&(t, g)| t > token && g <= at) {
            f.belief_overlaps += 1;
        }
    }
    // Fenced: accepted writes never go back in token order.
    let mut high = Version(0);
    let mut raw_high = Version(0);
    for &(token, _, accepted) in &log.writes {
        if accepted {
            if token < high {
                f.fenced_stale_accepted += 1;
            }
            high = high.max(token);
        } else {
            f.fenced_rejected += 1;
        }
        // Unfenced: every write lands; a write with an older token than
        // one already written is a lost update.
        if token < raw_high {
            f.unfenced_violations += 1;
        }
        raw_high = raw_high.max(token);
    }
    // The lost signal fires before the store's expiry.
    for &(token, expired) in &log.expiries {
        f.expiries += 1;
        match log.lost.get(&token) {
            Some(&lost) if lost < expired => {
                let margin = expired - lost;
                f.min_margin = Some(f.min_margin.map_or(margin, |m| m.min(margin)));
            }
            _ => f.lost_after_expiry += 1,
        }
    }
    // Failover after a crash: the next grant.
    for &(crash, _) in &log.crashes {
        if let Some(&(_, g)) = log.grants.iter().find(|&&(_, g)| g > crash) {
            f.failovers.push(g - crash);
        }
    }
}

fn run_seeds(seeds: std::ops::Range<u64>) -> Figures {
    let mut f = Figures::default();
    for seed in seeds {
        let log = weft_test::sim::paused_runtime().block_on(simulate(seed));
        judge(&log, &mut f);
    }
    f
}

#[test]
fn lease_torture_safety_holds_over_seeded_schedules() {
    let f = run_seeds(weft_test::sim::seeds("WEFT_TORTURE_SEEDS", 1000));
    let mut failovers = f.failovers.clone();
    failovers.sort();
    let pct = |p: f64| {
        failovers
            .get(((p * failovers.len() as f64) as usize).min(failovers.len().saturating_sub(1)))
            .copied()
    };
    println!(
        "torture: {} seeds, {} grants, {} expiries; belief overlaps {}, token regressions {}, \
         fenced stale accepted {}, fenced rejected {}, unfenced violations {}, lost after expiry {}, \
         min lost→expiry margin {:?}; failover after crash: n = {}, p50 {:?}, p99 {:?}, max {:?}",
        f.seeds,
        f.grants,
        f.expiries,
        f.belief_overlaps,
        f.token_regressions,
        f.fenced_stale_accepted,
        f.fenced_rejected,
        f.unfenced_violations,
        f.lost_after_expiry,
        f.min_margin,
        failovers.len(),
        pct(0.5),
        pct(0.99),
        failovers.last()
    );
    assert_eq!(f.belief_overlaps, 0, "at most one holder per epoch");
    assert_eq!(f.token_regressions, 0, "fencing tokens strictly increase");
    assert_eq!(
        f.fenced_stale_accepted, 0,
        "with fencing, no stale write is accepted"
    );
    assert!(
        f.unfenced_violations > 0,
        "without fencing the same schedules must produce violations"
    );
    assert!(
        f.fenced_rejected > 0,
        "the fence rejected the stale writes the pauses produced"
    );
    assert_eq!(
        f.lost_after_expiry, 0,
        "the lost signal fires before the store's expiry"
    );
    assert!(f.expiries > 0 && f.min_margin.is_some());
    let bound = TTL + RENEW + MAX_DELAY * 2;
    assert!(!failovers.is_empty(), "crashes happened");
    assert!(
        failovers.iter().all(|&d| d <= bound),
        "failover above {bound:?}: {:?}",
        failovers.last()
    );
}
