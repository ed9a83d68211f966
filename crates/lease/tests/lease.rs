//! Locks, leases, elections and fences on paused tokio time.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::{Instant, advance, sleep};
use weft_lease::{
    CasStore, Election, Fence, Lease, LeaseConfig, LeaseError, LeaseState, Limits, Lock,
    MemoryFence, MemoryStore, StoreError, Swap, Version, WatchEvent,
};
use weft_test::faults::{FaultPlan, FaultyStore};

fn secs(n: f64) -> Duration {
    Duration::from_secs_f64(n)
}

fn store() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new())
}

/// A 3 s lease on "k", taken within 1 s.
async fn hold_k(store: Arc<dyn CasStore>) -> Lease {
    Lease::builder(store, "k", LeaseConfig::new(secs(3.0)))
        .value(b"a")
        .acquire(secs(1.0))
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_lock_excludes_others_and_unlocks_only_with_its_version() {
    let lock = Lock::new(store());
    let a = lock
        .try_acquire("l", b"a".to_vec(), secs(5.0))
        .await
        .unwrap()
        .unwrap();
    assert!(
        lock.try_acquire("l", b"b".to_vec(), secs(5.0))
            .await
            .unwrap()
            .is_none()
    );
    let stale = weft_lease::LockGuard {
        token: Version(a.token.0 + 99),
        ..a.clone()
    };
    assert!(
        !lock.unlock(&stale).await.unwrap(),
        "a wrong version unlocks nothing"
    );
    assert!(lock.unlock(&a).await.unwrap());
    let b = lock
        .try_acquire("l", b"b".to_vec(), secs(5.0))
        .await
        .unwrap()
        .unwrap();
    assert!(b.token > a.token, "the next holder's token is higher");
    assert!(
        !lock.unlock(&a).await.unwrap(),
        "the old holder cannot unlock the new one"
    );
}

#[tokio::test(start_paused = true)]
async fn acquire_waits_for_expiry_and_gives_up_at_its_deadline() {
    let lock = Lock::new(store());
    lock.try_acquire("l", b"a".to_vec(), secs(1.0))
        .await
        .unwrap()
        .unwrap();
    let start = Instant::now();
    let err = lock
        .acquire("l", b"b".to_vec(), secs(5.0), secs(0.5))
        .await
        .unwrap_err();
    assert!(matches!(err, LeaseError::Timeout { .. }));
    assert_eq!(start.elapsed(), secs(0.5));
    let b = lock
        .acquire("l", b"b".to_vec(), secs(5.0), secs(5.0))
        .await
        .unwrap();
    assert_eq!(
        start.elapsed(),
        secs(1.0),
        "acquired the moment the first lock expired"
    );
    assert_eq!(b.value, b"b");
}

#[tokio::test(start_paused = true)]
async fn a_lease_renews_and_keeps_its_token() {
    let s = store();
    let lease = hold_k(s.clone()).await;
    let token = lease.token();
    sleep(secs(60.0)).await;
    assert_eq!(lease.state(), LeaseState::Held);
    assert!(lease.is_held());
    assert_eq!(
        s.get("k").await.unwrap().unwrap().version,
        token,
        "renewals keep the version"
    );
    assert!(lease.remaining() > secs(1.0));
    lease.release().await.unwrap();
    lease.release().await.unwrap(); // idempotent
    assert!(s.get("k").await.unwrap().is_none());
    assert_eq!(lease.state(), LeaseState::Lost);
}

#[tokio::test(start_paused = true)]
async fn the_lost_signal_fires_before_the_store_expires_the_key() {
    let s = store();
    let faulty = Arc::new(FaultyStore::new(s.clone(), FaultPlan::default()));
    let config = LeaseConfig::new(secs(3.0));
    let lease = Lease::builder(faulty.clone(), "k", config)
        .value(b"a")
        .acquire(secs(1.0))
        .await
        .unwrap();
    let mut events = s.watch("k").unwrap();
    sleep(secs(10.0)).await;
    // The holder's process stops reaching the store: renewals hang.
    faulty.set_paused(true);
    let cut = Instant::now();
    let mut state = lease.watch_state();
    let at_risk_or_lost = async {
        state.wait_for(|s| *s == LeaseState::Lost).await.unwrap();
        Instant::now()
    };
    let lost_at = at_risk_or_lost.await;
    let expired_at = loop {
        if let Some(WatchEvent::Expired { .. }) = events.next().await {
            break Instant::now();
        }
    };
    assert!(
        lost_at < expired_at,
        "lost at {:?}, expired at {:?}",
        lost_at - cut,
        expired_at - cut
    );
    // Margin: ttl/10 + ρ·ttl at the least.
    assert!(
        expired_at - lost_at >= secs(0.3),
        "margin only {:?}",
        expired_at - lost_at
    );
    assert!(!lease.is_held());
}

#[tokio::test(start_paused = true)]
async fn a_guarded_task_is_cancelled_on_loss_and_stops_before_run_returns() {
    let s = store();
    let faulty = Arc::new(FaultyStore::new(s.clone(), FaultPlan::default()));
    let lease = hold_k(faulty.clone()).await;
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stopped.clone();
    let f = faulty.clone();
    let run = lease.run(|guard| async move {
        sleep(secs(5.0)).await;
        f.set_paused(true); // renewals stop reaching the store
        guard.cancelled().await;
        sleep(secs(0.1)).await; // cleanup
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let result = run.await;
    assert!(matches!(result, Err(LeaseError::Lost { .. })));
    assert!(
        stopped.load(std::sync::atomic::Ordering::SeqCst),
        "run returned before the task stopped"
    );
}

#[tokio::test(start_paused = true)]
async fn a_guarded_task_that_finishes_releases_the_lease() {
    let s = store();
    let lease = hold_k(s.clone()).await;
    let token = lease.token();
    let got = lease.run(|g| async move { g.token }).await.unwrap();
    assert_eq!(got, token);
    assert!(
        s.get("k").await.unwrap().is_none(),
        "released after the task"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_a_lease_stops_renewals_and_frees_the_key() {
    let s = store();
    let lease = hold_k(s.clone()).await;
    drop(lease);
    advance(secs(0.01)).await;
    tokio::task::yield_now().await;
    assert!(s.get("k").await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn bad_lease_configuration_is_a_typed_error() {
    let s: Arc<dyn CasStore> = store();
    let check = |c: LeaseConfig| c.validate(s.as_ref()).unwrap_err();
    assert!(
        matches!(check(LeaseConfig::new(Duration::ZERO)), LeaseError::Invalid { setting: "TTL", value, .. } if value == "0ns")
    );
    assert!(
        matches!(check(LeaseConfig::new(secs(3.0)).renew_every(secs(3.0))), LeaseError::Invalid { setting: "renewal interval", value, .. } if value == "3s")
    );
    assert!(
        matches!(check(LeaseConfig::new(secs(3.0)).margin(secs(3.0))), LeaseError::Invalid { setting: "margin", value, .. } if value == "3s")
    );
    assert!(
        matches!(check(LeaseConfig::new(secs(3.0)).drift(1.0)), LeaseError::Invalid { setting: "drift bound", value, .. } if value == "1.0")
    );
    assert!(
        matches!(check(LeaseConfig::new(secs(3.0)).drift(-0.1)), LeaseError::Invalid { setting: "drift bound", value, .. } if value == "-0.1")
    );
    assert!(
        matches!(check(LeaseConfig::new(secs(3.0)).margin(secs(2.0))), LeaseError::Invalid { setting: "TTL", expected, .. } if expected.contains("safe period"))
    );
    let etcd_like: Arc<dyn CasStore> = Arc::new(
        MemoryStore::with_limits(Limits {
            ttl_granularity: secs(1.0),
            min_ttl: secs(2.0),
            ..s.limits()
        })
        .unwrap(),
    );
    for ttl in [secs(1.0), secs(2.5)] {
        let e = LeaseConfig::new(ttl)
            .validate(etcd_like.as_ref())
            .unwrap_err();
        assert!(
            matches!(e, LeaseError::Store(StoreError::BadTtl { .. })),
            "{ttl:?}: {e}"
        );
    }
    let e = Lease::builder(s.clone(), "", LeaseConfig::new(secs(3.0)))
        .value(b"v")
        .try_acquire()
        .await
        .unwrap_err();
    assert_eq!(e, LeaseError::Store(StoreError::EmptyKey));
    let e = Lease::builder(s.clone(), "k", LeaseConfig::new(secs(3.0)))
        .value(vec![0; 2 << 20])
        .try_acquire()
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        LeaseError::Store(StoreError::ValueTooLarge { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn candidates_lead_in_arrival_order_with_increasing_tokens() {
    let s = store();
    let election = Election::new(s.clone(), "svc", LeaseConfig::new(secs(3.0)));
    let mut observed = election.observe();
    assert_eq!(observed.next().await.unwrap().unwrap(), None);
    let first = election.campaign(b"one".to_vec(), secs(1.0)).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for name in ["two", "three"] {
        let (e, tx) = (election.clone(), tx.clone());
        tokio::spawn(async move {
            let l = e
                .campaign(name.as_bytes().to_vec(), secs(100.0))
                .await
                .unwrap();
            tx.send((name, l.token())).unwrap();
            sleep(secs(1.0)).await;
            l.resign().await.unwrap();
        });
        sleep(secs(0.1)).await; // arrival order
    }
    let leader = observed.next().await.unwrap().unwrap().unwrap();
    assert_eq!(
        (leader.value.as_slice(), leader.token),
        (b"one".as_slice(), first.token())
    );
    let first_token = first.token();
    first.resign().await.unwrap();
    let (a, ta) = rx.recv().await.unwrap();
    let seen_two = observed.next().await.unwrap().unwrap().unwrap();
    let (b, tb) = rx.recv().await.unwrap();
    let seen_three = observed.next().await.unwrap().unwrap().unwrap();
    assert_eq!((a, b), ("two", "three"), "fair order");
    assert!(
        first_token < ta && ta < tb,
        "tokens increase from leader to leader"
    );
    // The observer saw each leader, each with its token, then none.
    assert_eq!((seen_two.value, seen_two.token), (b"two".to_vec(), ta));
    assert_eq!(
        (seen_three.value, seen_three.token),
        (b"three".to_vec(), tb)
    );
    assert_eq!(observed.next().await.unwrap().unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_leader_paused_past_its_ttl_is_replaced_and_its_late_write_fenced() {
    let s = store();
    let fence = MemoryFence::new();
    let faulty = Arc::new(FaultyStore::new(s.clone(), FaultPlan::default()));
    let old = Election::new(faulty.clone(), "svc", LeaseConfig::new(secs(3.0)));
    let new = Election::new(s.clone(), "svc", LeaseConfig::new(secs(3.0)));
    let leader = old.campaign(b"old".to_vec(), secs(1.0)).await.unwrap();
    fence.check_and_advance("db", leader.token()).await.unwrap();
    faulty.set_paused(true); // the old leader's process stops
    let successor = new.campaign(b"new".to_vec(), secs(10.0)).await.unwrap();
    assert!(!leader.is_leader(), "the old leader knows it lost");
    fence
        .check_and_advance("db", successor.token())
        .await
        .unwrap();
    let late = fence.check_and_advance("db", leader.token()).await;
    assert!(matches!(late, Err(LeaseError::StaleToken { .. })));
}

/// Races `tasks` concurrent writers per round against `fence` on a
/// multi-thread runtime and returns the first violation found: a token
/// accepted although a higher one had been accepted before its check began,
/// or a fence whose highest token ends other than the highest it accepted.
fn race_fence(fence: Arc<dyn Fence>, rounds: u64, tasks: u64) -> Option<String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    rt.block_on(async move {
        for round in 0..rounds {
            let resource = format!("r{round}");
            let completed = Arc::new(AtomicU64::new(0));
            let handles: Vec<_> = (0..tasks)
                .map(|i| {
                    let (fence, resource, completed) =
                        (fence.clone(), resource.clone(), completed.clone());
                    // Tokens in a scrambled order, with repeats.
                    let token = (i * 7 + round) % (tasks / 2 + 1) + 1;
                    tokio::spawn(async move {
                        let before = completed.load(Ordering::SeqCst);
                        let ok = fence
                            .check_and_advance(&resource, Version(token))
                            .await
                            .is_ok();
                        if ok {
                            completed.fetch_max(token, Ordering::SeqCst);
                        }
                        (token, before, ok)
                    })
                })
                .collect();
            let mut highest_accepted = 0;
            for h in handles {
                let (token, before, ok) = h.await.unwrap();
                if ok && token < before {
                    return Some(format!(
                        "round {round}: token {token} accepted after {before} was"
                    ));
                }
                if ok {
                    highest_accepted = highest_accepted.max(token);
                }
            }
            let at_highest = fence
                .check_and_advance(&resource, Version(highest_accepted))
                .await;
            if at_highest.is_err() {
                return Some(format!(
                    "round {round}: the fence ends above its highest accepted token {highest_accepted}"
                ));
            }
            if highest_accepted > 1
                && fence
                    .check_and_advance(&resource, Version(highest_accepted - 1))
                    .await
                    .is_ok()
            {
                return Some(format!(
                    "round {round}: the fence ends below its highest accepted token {highest_accepted}"
                ));
            }
        }
        None
    })
}

#[test]
fn the_fence_rejects_lower_tokens_under_concurrency() {
    assert_eq!(race_fence(Arc::new(MemoryFence::new()), 300, 64), None);
}

/// A fence that checks, lets others run, then advances: the race the
/// concurrency test must catch.
#[derive(Debug, Default)]
struct NonAtomicFence(std::sync::Mutex<std::collections::HashMap<String, Version>>);

#[async_trait::async_trait]
impl Fence for NonAtomicFence {
    async fn check_and_advance(&self, resource: &str, token: Version) -> Result<(), LeaseError> {
        let high = self.0.lock().unwrap().get(resource).copied();
        if let Some(highest) = high.filter(|&h| token < h) {
            return Err(LeaseError::StaleToken {
                resource: resource.into(),
                token,
                highest,
            });
        }
        tokio::task::yield_now().await;
        self.0.lock().unwrap().insert(resource.into(), token);
        Ok(())
    }
}

#[test]
fn the_concurrency_check_catches_a_fence_that_checks_then_advances() {
    let found = race_fence(Arc::new(NonAtomicFence::default()), 300, 64);
    assert!(found.is_some(), "a non-atomic fence passed the race");
}

#[tokio::test(start_paused = true)]
async fn waits_of_duration_max_wait_as_long_as_it_takes() {
    let s = store();
    let config = LeaseConfig::new(secs(3.0));
    let first = Lease::builder(s.clone(), "k", config.clone())
        .value(b"a")
        .acquire(Duration::MAX)
        .await
        .unwrap();
    let first_token = first.token();
    let waiter = tokio::spawn({
        let (s, config) = (s.clone(), config.clone());
        async move {
            Lease::builder(s, "k", config)
                .value(b"b")
                .acquire(Duration::MAX)
                .await
        }
    });
    sleep(secs(60.0)).await;
    assert!(!waiter.is_finished(), "a wait forever does not give up");
    first.release().await.unwrap();
    let second = waiter.await.unwrap().unwrap();
    assert!(second.token() > first_token);

    let lock = Lock::new(s.clone());
    let held = lock
        .acquire("l", b"a".to_vec(), secs(2.0), Duration::MAX)
        .await
        .unwrap();
    // The first lock expires after its TTL; the wait forever then wins it.
    let again = lock
        .acquire("l", b"b".to_vec(), secs(2.0), Duration::MAX)
        .await
        .unwrap();
    assert!(again.token > held.token);

    let election = Election::new(s.clone(), "svc", config);
    let leader = election
        .campaign(b"x".to_vec(), Duration::MAX)
        .await
        .unwrap();
    assert!(leader.is_leader());
}

#[tokio::test(start_paused = true)]
async fn the_longest_ttl_the_limits_allow_is_kept_not_overflowed() {
    let forever: Arc<dyn CasStore> = Arc::new(
        MemoryStore::with_limits(Limits {
            max_ttl: Duration::MAX,
            ttl_granularity: Duration::ZERO,
            ..MemoryStore::new().limits()
        })
        .unwrap(),
    );
    let Swap::Done { version } = forever
        .create("k", b"v".to_vec(), Duration::MAX)
        .await
        .unwrap()
    else {
        panic!("create")
    };
    tokio::time::sleep(secs(365.0 * 24.0 * 3600.0)).await;
    assert_eq!(forever.get("k").await.unwrap().unwrap().version, version);
    assert!(matches!(
        forever.refresh("k", version, Duration::MAX).await.unwrap(),
        Swap::Done { .. }
    ));
}

#[test]
fn store_limits_no_operation_can_meet_are_refused() {
    let base = MemoryStore::new().limits();
    for (limits, needle) in [
        (
            Limits {
                min_ttl: secs(10.0),
                max_ttl: secs(5.0),
                ..base
            },
            "above the maximum",
        ),
        (
            Limits {
                max_key_len: 0,
                ..base
            },
            "key limit",
        ),
        (
            Limits {
                min_ttl: Duration::ZERO,
                ..base
            },
            "minimum TTL is zero",
        ),
    ] {
        let err = MemoryStore::with_limits(limits).unwrap_err();
        assert!(
            matches!(&err, StoreError::BadLimits(m) if m.contains(needle)),
            "{needle}: {err}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn zero_operation_or_release_timeouts_are_refused() {
    let s = store();
    for (config, needle) in [
        (
            LeaseConfig::new(secs(3.0)).op_timeout(Duration::ZERO),
            "operation timeout",
        ),
        (
            LeaseConfig::new(secs(3.0)).release_timeout(Duration::ZERO),
            "release timeout",
        ),
    ] {
        let e = Lease::builder(s.clone(), "k", config)
            .value(b"v")
            .try_acquire()
            .await
            .unwrap_err();
        assert!(
            matches!(&e, LeaseError::Invalid { setting, value, .. } if *setting == needle && value == "0ns"),
            "{e}"
        );
    }
}

#[test]
fn a_memory_store_write_without_a_tokio_runtime_is_an_error_not_a_panic() {
    let s = MemoryStore::new();
    let err = futures::executor::block_on(s.create("k", b"v".to_vec(), secs(1.0))).unwrap_err();
    assert!(matches!(err, StoreError::NoRuntime { .. }), "{err}");
    assert!(err.to_string().contains("tokio runtime"), "{err}");
    // Nothing was written.
    assert_eq!(futures::executor::block_on(s.get("k")).unwrap(), None);
}

/// A clock the test moves by hand: a process that was frozen sees it jump.
#[derive(Debug, Default)]
struct JumpClock(std::sync::atomic::AtomicU64);

impl weft_lease::LeaseClock for JumpClock {
    fn now(&self) -> Duration {
        Duration::from_micros(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[tokio::test(start_paused = true)]
async fn a_guard_checked_after_a_pause_past_the_safe_period_says_stop_at_once() {
    let clock = Arc::new(JumpClock::default());
    let config = LeaseConfig::new(secs(3.0)).clock(clock.clone());
    let lease = Lease::builder(store(), "k", config)
        .value(b"a")
        .try_acquire()
        .await
        .unwrap()
        .unwrap();
    let guard = lease.cancellation();
    let token = guard.cancellation_token();
    assert!(!guard.is_cancelled());
    // The process was frozen: on resume its clock is past the safe time,
    // and no task (renewal or other) has run yet.
    let jump = lease.safe_until() + Duration::from_millis(1);
    clock
        .0
        .store(jump.as_micros() as u64, std::sync::atomic::Ordering::SeqCst);
    assert!(guard.is_cancelled(), "the first check on resume says stop");
    assert!(!lease.is_held());
    // The asynchronous token has heard of it too, through the check.
    assert!(token.is_cancelled());
    tokio::time::timeout(secs(1.0), guard.cancelled())
        .await
        .expect("cancelled() resolves");
}

#[tokio::test(start_paused = true)]
async fn a_guard_resolves_at_the_safe_time_when_renewals_stop() {
    let s = store();
    let lease = Lease::builder(s.clone(), "k", LeaseConfig::new(secs(3.0)))
        .value(b"a")
        .try_acquire()
        .await
        .unwrap()
        .unwrap();
    let guard = lease.cancellation();
    // Renewals keep it: the guard does not fire while they succeed.
    assert!(
        tokio::time::timeout(secs(10.0), guard.cancelled())
            .await
            .is_err()
    );
    assert!(!guard.is_cancelled());
    let started = Instant::now();
    drop(lease);
    guard.cancelled().await;
    assert!(
        started.elapsed() < secs(0.1),
        "dropping the lease stops the guard"
    );
}

/// A store whose first create applies `apply_after` later, as a stalled
/// Redis does when it resumes: the caller sees a timeout at once, or, with
/// `hang`, no answer at all.
#[derive(Debug)]
struct LateFirstCreate {
    inner: Arc<MemoryStore>,
    late: std::sync::atomic::AtomicBool,
    apply_after: Duration,
    hang: bool,
}

impl LateFirstCreate {
    fn store(inner: &Arc<MemoryStore>, apply_after: Duration, hang: bool) -> Arc<dyn CasStore> {
        Arc::new(LateFirstCreate {
            inner: inner.clone(),
            late: std::sync::atomic::AtomicBool::new(true),
            apply_after,
            hang,
        })
    }
}

#[async_trait::async_trait]
impl CasStore for LateFirstCreate {
    fn limits(&self) -> Limits {
        self.inner.limits()
    }
    async fn get(&self, key: &str) -> Result<Option<weft_lease::Entry>, StoreError> {
        self.inner.get(key).await
    }
    async fn create(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<Swap, StoreError> {
        if self.late.swap(false, std::sync::atomic::Ordering::SeqCst) {
            let (inner, key2, after) = (self.inner.clone(), key.to_string(), self.apply_after);
            tokio::spawn(async move {
                sleep(after).await;
                let _ = inner.create(&key2, value, ttl).await;
            });
            if self.hang {
                futures::future::pending::<()>().await;
            }
            return Err(StoreError::Indeterminate {
                store: "late".into(),
                key: key.into(),
                reason: "timed out on the client".into(),
                cause: None,
            });
        }
        self.inner.create(key, value, ttl).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Version,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.inner.compare_and_swap(key, expected, value, ttl).await
    }
    async fn delete(&self, key: &str, expected: Version) -> Result<Swap, StoreError> {
        self.inner.delete(key, expected).await
    }
    async fn refresh(
        &self,
        key: &str,
        expected: Version,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.inner.refresh(key, expected, ttl).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<(String, weft_lease::Entry)>, StoreError> {
        self.inner.list(prefix).await
    }
    fn watch(&self, key: &str) -> Option<futures::stream::BoxStream<'static, WatchEvent>> {
        self.inner.watch(key)
    }
}

#[tokio::test(start_paused = true)]
async fn a_create_that_applies_after_its_timeout_is_adopted_not_orphaned() {
    let inner = store();
    let s = LateFirstCreate::store(&inner, Duration::from_millis(5), false);
    let started = Instant::now();
    let lease = Lease::builder(s.clone(), "k", LeaseConfig::new(secs(3.0)))
        .value(b"me")
        .acquire(secs(10.0))
        .await
        .unwrap();
    assert!(
        started.elapsed() < secs(1.0),
        "the late create was waited out as someone else's: {:?}",
        started.elapsed()
    );
    // The lease holds the late create's version, and renews it.
    let entry = inner.get("k").await.unwrap().unwrap();
    assert_eq!(lease.token(), entry.version);
    sleep(secs(10.0)).await;
    assert!(lease.is_held());
    assert_eq!(
        inner.get("k").await.unwrap().unwrap().created,
        lease.token()
    );
}

#[tokio::test(start_paused = true)]
async fn wait_bounds_acquire_and_campaign_when_the_store_hangs() {
    let inner = store();
    let faulty = Arc::new(FaultyStore::new(inner.clone(), FaultPlan::default()));
    faulty.set_paused(true);
    let s: Arc<dyn CasStore> = faulty.clone();
    let wait = secs(5.0);
    let started = Instant::now();
    let e = Lease::builder(s.clone(), "k", LeaseConfig::new(secs(3.0)))
        .value(b"a")
        .acquire(wait)
        .await
        .unwrap_err();
    assert!(matches!(e, LeaseError::Timeout { .. }), "{e}");
    assert!(
        started.elapsed() <= wait + secs(0.01),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let e = Lock::new(s.clone())
        .acquire("l", b"a".to_vec(), secs(3.0), wait)
        .await
        .unwrap_err();
    assert!(matches!(e, LeaseError::Timeout { .. }), "{e}");
    assert!(
        started.elapsed() <= wait + secs(0.01),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let election = Election::new(s.clone(), "svc", LeaseConfig::new(secs(3.0)));
    assert!(election.campaign(b"x".to_vec(), wait).await.is_err());
    assert!(
        started.elapsed() <= wait + secs(0.01),
        "{:?}",
        started.elapsed()
    );

    faulty.set_paused(false);

    // A create that never answers is abandoned at the deadline too; when
    // the store applies it later, the acquisition's background resolution
    // finds the key held by nobody in this process and deletes it, well
    // before its TTL would free it.
    let inner = store();
    let s = LateFirstCreate::store(&inner, secs(1.5), true);
    let started = Instant::now();
    let e = Lease::builder(s.clone(), "k", LeaseConfig::new(secs(3.0)))
        .value(b"a")
        .acquire(secs(1.0))
        .await
        .unwrap_err();
    assert!(matches!(e, LeaseError::Timeout { .. }), "{e}");
    assert!(started.elapsed() <= secs(1.01), "{:?}", started.elapsed());
    sleep(secs(0.6)).await;
    let late = inner.get("k").await.unwrap();
    assert!(late.is_some(), "the late create applied");
    sleep(secs(1.0)).await;
    assert_eq!(
        inner.get("k").await.unwrap(),
        None,
        "the orphaned key was left for its TTL"
    );
    // The resolution never deletes a lease this process holds with the
    // same value.
    let mine = Lease::builder(s.clone(), "k", LeaseConfig::new(secs(3.0)))
        .value(b"a")
        .acquire(secs(1.0))
        .await
        .unwrap();
    sleep(secs(5.0)).await;
    assert!(mine.is_held());
    assert_eq!(inner.get("k").await.unwrap().unwrap().version, mine.token());
}

#[test]
fn waiting_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    let s: Arc<dyn CasStore> = store();
    let e = futures::executor::block_on(
        Lease::builder(s.clone(), "k", LeaseConfig::new(secs(3.0)))
            .value(b"a")
            .acquire(secs(1.0)),
    )
    .unwrap_err();
    assert!(
        matches!(e, LeaseError::Store(StoreError::NoRuntime { .. })),
        "{e}"
    );
    let e =
        futures::executor::block_on(Lock::new(s).acquire("l", b"a".to_vec(), secs(1.0), secs(1.0)))
            .unwrap_err();
    assert!(e.to_string().contains("tokio runtime"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_try_acquire_whose_create_applies_late_is_not_left_for_a_ttl() {
    let inner = store();
    let s = LateFirstCreate::store(&inner, Duration::from_millis(100), false);
    let config = LeaseConfig::new(secs(3.0));
    let first = Lease::builder(s.clone(), "k", config.clone())
        .value(b"a")
        .try_acquire()
        .await
        .unwrap();
    assert!(first.is_none(), "the outcome was unknown");
    sleep(secs(0.2)).await;
    assert!(
        inner.get("k").await.unwrap().is_some(),
        "the create applied late"
    );
    // Resolved in the background, well before the 3 s TTL.
    sleep(secs(1.5)).await;
    assert_eq!(inner.get("k").await.unwrap(), None);
    // Or, when the holder tries again first, adopted by its acquisition.
    let inner = store();
    let s = LateFirstCreate::store(&inner, Duration::from_millis(100), false);
    assert!(
        Lease::builder(s.clone(), "k", config.clone())
            .value(b"a")
            .try_acquire()
            .await
            .unwrap()
            .is_none()
    );
    sleep(secs(0.2)).await;
    let started = Instant::now();
    let lease = Lease::builder(s, "k", config)
        .value(b"a")
        .acquire(secs(5.0))
        .await
        .unwrap();
    assert!(started.elapsed() < secs(0.5), "{:?}", started.elapsed());
    assert_eq!(
        lease.token(),
        inner.get("k").await.unwrap().unwrap().version
    );
}

#[test]
fn a_lease_config_round_trips_through_serde_and_a_bad_file_is_refused_by_setting() {
    let config = LeaseConfig::new(secs(10.0))
        .renew_every(secs(2.0))
        .jitter(0.2)
        .drift(0.02)
        .margin(Duration::from_millis(500))
        .op_timeout(secs(1.0))
        .release_timeout(Duration::MAX)
        .stop_timeout(secs(3.0));
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(
        json,
        r#"{"ttl":"10s","renew_every":"2s","jitter":0.2,"drift":0.02,"margin":"500ms","op_timeout":"1s","release_timeout":"forever","stop_timeout":"3s"}"#
    );
    let back: LeaseConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    let minimal: LeaseConfig = serde_json::from_str(r#"{"ttl":"3s"}"#).unwrap();
    assert_eq!(
        serde_json::to_string(&minimal).unwrap(),
        serde_json::to_string(&LeaseConfig::new(secs(3.0))).unwrap()
    );
    let cases = [
        (r#"{}"#, "ttl"),
        (r#"{"ttl":"0s"}"#, "TTL"),
        (r#"{"ttl":"3"}"#, "no unit"),
        (r#"{"ttl":"3s","renew_every":"3s"}"#, "renewal interval"),
        (r#"{"ttl":"3s","margin":"2s"}"#, "safe period"),
        (r#"{"ttl":"3s","jitter":1.0}"#, "jitter"),
        (r#"{"ttl":"3s","drift":-0.1}"#, "drift"),
        (r#"{"ttl":"3s","op_timeout":"0s"}"#, "operation timeout"),
        (r#"{"ttl":"3s","release_timeout":"0s"}"#, "release timeout"),
        (r#"{"ttl":"3s","clock":"system"}"#, "unknown field"),
    ];
    for (json, names) in cases {
        let err = serde_json::from_str::<LeaseConfig>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains(names), "{json}: {err}");
    }
}
