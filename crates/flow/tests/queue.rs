//! The work queue: no item lost or duplicated under chaos, retries, dead
//! letters, panics, cancellation, and autoscaling on paused time.

use std::sync::Arc;
use std::time::Duration;

use weft_core::{Classify, ErrorClass, key_hash};
use weft_flow::queue::{Autoscaler, Load, MemorySource, QueueConfig, RetryPolicy, WorkQueue};
use weft_flow::{FlowConfig, FlowError};

#[derive(Debug, Clone)]
struct Fail(bool);

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0 { "busy" } else { "bad item" })
    }
}

impl Classify for Fail {
    fn class(&self) -> ErrorClass {
        if self.0 {
            ErrorClass::Transient
        } else {
            ErrorClass::Permanent
        }
    }
}

fn unit(parts: (u64, u64, u8)) -> f64 {
    weft_core::mix::unit(key_hash(&parts))
}

/// One seeded run: random transient errors, permanent errors, panics,
/// slow work, a slow consumer of the output, and (in half the runs) a
/// cancellation part-way, after which a second queue finishes the source.
/// The outputs and dead letters together must be the inputs, each once.
async fn chaos(seed: u64) {
    let n = 60u64;
    let source = Arc::new(MemorySource::from_items(0..n));
    let attempt_log = Arc::new(std::sync::Mutex::new(
        std::collections::HashMap::<u64, u32>::new(),
    ));
    let make_worker = |log: Arc<std::sync::Mutex<std::collections::HashMap<u64, u32>>>| {
        move |x: u64| {
            let attempt = {
                let mut l = log.lock().unwrap();
                let a = l.entry(x).or_insert(0);
                *a += 1;
                *a
            };
            async move {
                let r = unit((seed, x, attempt as u8));
                tokio::time::sleep(Duration::from_millis((r * 20.0) as u64)).await;
                if r < 0.03 {
                    panic!("worker bug on {x}");
                }
                if r < 0.08 {
                    return Err(Fail(false));
                }
                if r < 0.35 {
                    return Err(Fail(true));
                }
                Ok(x * 2)
            }
        }
    };
    let config = || {
        QueueConfig::new(Autoscaler::new(1, 4, 0.8, 2).unwrap(), 3)
            .unwrap()
            .retry(
                RetryPolicy::exponential(3, Duration::from_millis(5), Duration::from_millis(50))
                    .unwrap(),
            )
            .output(FlowConfig::new(4, 2).unwrap())
            .evaluate_every(Duration::from_millis(50))
            .unwrap()
    };
    let mut outputs = Vec::new();
    let mut dead = Vec::new();
    let cancel_at = seed
        .is_multiple_of(2)
        .then(|| Duration::from_millis(30 + seed % 200));
    // A cancelled first round gives its in-flight items back; a second
    // queue over the same source finishes them.
    for round in 0..2 {
        let running = WorkQueue::spawn(source.clone(), make_worker(attempt_log.clone()), config());
        let (o, d) = drive(running, cancel_at.filter(|_| round == 0)).await;
        outputs.extend(o);
        dead.extend(d);
        if source.pending() == 0 {
            break;
        }
    }
    let mut seen: Vec<u64> = outputs
        .iter()
        .map(|(id, _)| *id)
        .chain(
            dead.iter()
                .map(|l: &weft_flow::queue::DeadLetter<u64>| l.item.id),
        )
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..n).collect::<Vec<_>>(),
        "seed {seed}: items lost or duplicated"
    );
    assert!(outputs.iter().all(|(id, o)| *o == id * 2));
    // A transient failure is dead-lettered only once its retries ran out,
    // and says so.
    for letter in &dead {
        if letter.class == weft_core::ErrorClass::Transient {
            assert_eq!(letter.attempts, 3, "seed {seed}: {letter:?}");
        }
    }
}

/// Reads the output slowly and the dead letters, cancelling at `cancel_at`.
async fn drive(
    running: WorkQueue<u64, u64>,
    cancel_at: Option<Duration>,
) -> (Vec<(u64, u64)>, Vec<weft_flow::queue::DeadLetter<u64>>) {
    let WorkQueue {
        output,
        dead_letters,
        control: running,
    } = running;
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut s = output.into_stream();
        use futures::StreamExt;
        while let Some(x) = s.next().await {
            got.push(x.unwrap());
            // A slow consumer.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        got
    });
    let dead_reader = tokio::spawn(dead_letters.collect());
    if let Some(at) = cancel_at {
        tokio::time::sleep(at).await;
        running.cancel();
    }
    running.wait().await.unwrap();
    (reader.await.unwrap(), dead_reader.await.unwrap().unwrap())
}

#[test]
fn no_item_is_lost_or_duplicated_under_chaos() {
    for seed in weft_test::sim::seeds("WEFT_CHAOS_SEEDS", 1000) {
        weft_test::sim::paused_runtime().block_on(chaos(seed));
    }
}

#[tokio::test(start_paused = true)]
async fn acknowledged_items_are_never_processed_again_and_panics_are_dead_lettered() {
    let source = Arc::new(MemorySource::new());
    for x in [1u64, 2, 3] {
        source.push(x).unwrap();
    }
    source.close();
    let worker = |x: u64| async move {
        if x == 2 {
            panic!("bad input");
        }
        Ok::<_, Fail>(x)
    };
    let running = WorkQueue::spawn(
        source.clone(),
        worker,
        QueueConfig::new(Autoscaler::new(1, 2, 0.8, 1).unwrap(), 2).unwrap(),
    );
    let WorkQueue {
        output: out,
        dead_letters: dead,
        control: running,
    } = running;
    let (o, d) = tokio::join!(out.collect(), dead.collect());
    running.wait().await.unwrap();
    let mut ids: Vec<u64> = o.unwrap().into_iter().map(|(id, _)| id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [0, 2]);
    let d = d.unwrap();
    assert_eq!(d.len(), 1);
    assert!(d[0].error.contains("panicked"), "{}", d[0].error);
    assert_eq!(d[0].class, weft_core::ErrorClass::Permanent);
    assert_eq!(source.pending(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_autoscaler_converges_on_steady_rates_and_does_not_flap_under_noise() {
    // 50 items/s, 100 ms each (±20 % noise), 80 % utilisation: ceil(50 × 0.1 / 0.8) = 7.
    let source = Arc::new(MemorySource::new());
    let producer = {
        let source = source.clone();
        tokio::spawn(async move {
            for i in 0..1500u64 {
                source.push(i).unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            source.close();
        })
    };
    let worker = |x: u64| async move {
        let noise = 0.8 + 0.4 * unit((7, x, 0));
        tokio::time::sleep(Duration::from_millis(100).mul_f64(noise)).await;
        Ok::<_, Fail>(x)
    };
    let config = QueueConfig::new(Autoscaler::new(1, 32, 0.8, 3).unwrap(), 64)
        .unwrap()
        .evaluate_every(Duration::from_secs(1))
        .unwrap();
    let running = WorkQueue::spawn(source.clone(), worker, config);
    let WorkQueue {
        output: out,
        control: running,
        ..
    } = running;
    let mut status = running.watch_status();
    let reader = tokio::spawn(out.collect());
    let mut targets = Vec::new();
    while status.changed().await.is_ok() {
        targets.push(status.borrow().target);
        if targets.len() >= 25 {
            break;
        }
    }
    let settled = &targets[8..];
    assert!(
        settled.iter().all(|&t| (6..=8).contains(&t)),
        "targets {targets:?}"
    );
    let changes = settled.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(changes <= 2, "the target flapped: {targets:?}");
    producer.await.unwrap();
    let got = reader.await.unwrap().unwrap();
    running.wait().await.unwrap();
    assert_eq!(got.len(), 1500);
}

#[test]
fn bad_queue_configuration_is_a_typed_error() {
    assert!(
        matches!(Autoscaler::new(0, 0, 0.8, 1), Err(FlowError::Invalid { setting: "max workers", value, .. }) if value == "0")
    );
    assert!(
        matches!(Autoscaler::new(5, 2, 0.8, 1), Err(FlowError::Invalid { setting: "min workers", value, expected }) if value == "5" && expected.contains("(2)"))
    );
    assert!(matches!(
        Autoscaler::new(1, 2, 0.0, 1),
        Err(FlowError::Invalid {
            setting: "target utilisation",
            ..
        })
    ));
    assert!(matches!(
        Autoscaler::new(1, 2, 1.5, 1),
        Err(FlowError::Invalid { value, .. }) if value == "1.5"
    ));
    assert!(matches!(
        Autoscaler::new(1, 2, 0.8, 1)
            .unwrap()
            .drain_backlog_within(Duration::ZERO),
        Err(FlowError::Invalid {
            setting: "backlog drain time",
            ..
        })
    ));
    assert!(
        matches!(RetryPolicy::exponential(0, Duration::from_millis(1), Duration::from_secs(1)), Err(weft_core::CoreError::Backoff(m)) if m.contains("attempts is 0"))
    );
    assert!(matches!(
        RetryPolicy::exponential(3, Duration::from_secs(2), Duration::from_secs(1)),
        Err(weft_core::CoreError::Backoff(m)) if m.contains("2s is above its cap 1s")
    ));
    assert!(matches!(
        QueueConfig::new(Autoscaler::new(1, 2, 0.8, 1).unwrap(), 0),
        Err(FlowError::Invalid {
            setting: "max in flight",
            ..
        })
    ));
    assert!(matches!(
        QueueConfig::new(Autoscaler::new(1, 2, 0.8, 1).unwrap(), 4)
            .unwrap()
            .evaluate_every(Duration::ZERO),
        Err(FlowError::Invalid {
            setting: "autoscaler evaluation interval",
            ..
        })
    ));
    assert!(matches!(
        RetryPolicy::exponential(3, Duration::ZERO, Duration::from_secs(1)),
        Err(weft_core::CoreError::Backoff(m)) if m.contains("base is zero")
    ));
}

#[tokio::test(start_paused = true)]
async fn a_queue_output_feeds_the_next_queue_with_backpressure() {
    let first = Arc::new(MemorySource::from_items(0..400u64));
    let second = Arc::new(MemorySource::new());
    let two_workers = || {
        QueueConfig::new(Autoscaler::new(2, 2, 1.0, 1).unwrap(), 2)
            .unwrap()
            .output(FlowConfig::new(8, 4).unwrap())
    };
    // Stage one is fast; stage two is ten times slower, so stage one's
    // output must wait on the bound between them.
    let stage_one = WorkQueue::spawn(
        first,
        |x: u64| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok::<_, Fail>(x + 1)
        },
        two_workers(),
    );
    let WorkQueue {
        output: out_one,
        control: stage_one,
        ..
    } = stage_one;
    let bound = 16;
    let feeding = second.feed(out_one.map(|(_, v)| v), bound).unwrap();
    let stage_two = WorkQueue::spawn(
        second.clone(),
        |x: u64| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok::<_, Fail>(x * 2)
        },
        two_workers(),
    );
    let WorkQueue {
        output: out_two,
        control: stage_two,
        ..
    } = stage_two;
    let most_waiting = {
        let second = second.clone();
        tokio::spawn(async move {
            let mut most = 0;
            for _ in 0..3000 {
                most = most.max(second.pending());
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            most
        })
    };
    let mut got: Vec<u64> = out_two
        .collect()
        .await
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..400u64).map(|x| (x + 1) * 2).collect::<Vec<_>>());
    assert_eq!(feeding.await.unwrap().unwrap(), 400);
    stage_one.wait().await.unwrap();
    stage_two.wait().await.unwrap();
    let most = most_waiting.await.unwrap();
    assert!(
        most <= bound,
        "{most} items waited between the stages; bound {bound}"
    );
    assert!(
        most >= bound / 2,
        "stage two never fell behind ({most}): the test shows nothing"
    );
}

#[tokio::test]
async fn a_failed_upstream_closes_the_fed_source_and_reports_the_failure() {
    let source = Arc::new(MemorySource::<u64>::new());
    let (tx, flow) = weft_flow::channel(FlowConfig::new(4, 1).unwrap());
    let feeding = source.feed(flow, 4).unwrap();
    assert!(tx.send(1).await);
    tx.fail(FlowError::Upstream(weft_core::Cause::message(
        "reader crashed",
        weft_core::ErrorClass::Transient,
    )));
    drop(tx);
    let err = feeding.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("reader crashed"), "{err}");
    assert_eq!(source.pending(), 1);
    assert!(matches!(
        source.feed(
            weft_flow::Flow::from_iter(Vec::new(), FlowConfig::default()),
            0
        ),
        Err(FlowError::Invalid {
            setting: "feed bound",
            ..
        })
    ));
}

#[tokio::test(start_paused = true)]
async fn the_workers_follow_the_target_down_and_back_up() {
    // 50/s, then 5/s, then 50/s again, 100 ms per item at 80 %: targets
    // 7, then 1, then 7. The workers must follow in both directions.
    let source = Arc::new(MemorySource::new());
    let producer = {
        let source = source.clone();
        tokio::spawn(async move {
            for (per_sec, seconds) in [(50u64, 15u64), (5, 15), (50, 15)] {
                for _ in 0..per_sec * seconds {
                    source.push(0u64).unwrap();
                    tokio::time::sleep(Duration::from_millis(1000 / per_sec)).await;
                }
            }
            source.close();
        })
    };
    let worker = |x: u64| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, Fail>(x)
    };
    let config = QueueConfig::new(Autoscaler::new(1, 32, 0.8, 3).unwrap(), 64).unwrap();
    let WorkQueue {
        output,
        control: running,
        ..
    } = WorkQueue::spawn(source.clone(), worker, config);
    let mut status = running.watch_status();
    let reader = tokio::spawn(output.collect());
    let mut seen = Vec::new();
    while status.changed().await.is_ok() {
        let s = status.borrow().clone();
        seen.push((s.target, s.workers));
        if seen.len() >= 44 {
            break;
        }
    }
    let at = |second: usize| seen[second - 1];
    assert!((6..=8).contains(&at(14).0), "first phase: {seen:?}");
    // Idle workers leave within a tick of the target dropping (a few
    // seconds into the second phase, by the patience of 3).
    let (target, workers) = at(22);
    assert!(target <= 2, "second phase: {seen:?}");
    assert_eq!(workers, target, "idle workers did not leave: {seen:?}");
    let (target, workers) = at(44);
    assert!((6..=8).contains(&target), "third phase: {seen:?}");
    assert_eq!(workers, target, "workers did not come back up: {seen:?}");
    producer.await.unwrap();
    assert_eq!(reader.await.unwrap().unwrap().len(), 50 * 15 * 2 + 5 * 15);
    running.wait().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_backlog_draws_workers_to_clear_it_then_lets_them_go() {
    // 2,000 items waiting, nothing more arriving, 100 ms each: one worker
    // would take 200 s. Clearing within 10 s at 80 % asks for
    // ceil(200/s × 0.1 s ÷ 0.8) = 25 workers.
    let source = Arc::new(MemorySource::from_items(0..2000u64));
    let worker = |x: u64| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, Fail>(x)
    };
    let config = QueueConfig::new(Autoscaler::new(1, 32, 0.8, 2).unwrap(), 64).unwrap();
    let started = tokio::time::Instant::now();
    let WorkQueue {
        output,
        control: running,
        ..
    } = WorkQueue::spawn(source, worker, config);
    let mut status = running.watch_status();
    let reader = tokio::spawn(output.collect());
    let mut seen = Vec::new();
    while status.changed().await.is_ok() {
        let s = status.borrow().clone();
        seen.push((s.target, s.backlog));
        if s.backlog == 0 && seen.len() > 3 {
            break;
        }
    }
    let most = seen.iter().map(|(t, _)| *t).max().unwrap();
    assert!(most >= 20, "the backlog did not draw workers: {seen:?}");
    assert!(seen[0].1 > 1500, "the backlog was not reported: {seen:?}");
    let got = reader.await.unwrap().unwrap();
    assert_eq!(got.len(), 2000);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(40),
        "took {took:?} for 2,000 items"
    );
    let last = running.wait().await.unwrap();
    assert_eq!(last.done, 2000);
}

#[test]
fn the_autoscaler_follows_a_ramp_and_ignores_noise_around_its_target() {
    let load = |per_sec: u32| Load {
        arrivals_per_sec: f64::from(per_sec),
        processing: Duration::from_secs(1),
        backlog: 0,
    };
    let mut a = Autoscaler::new(1, 100, 1.0, 3).unwrap();
    // A ramp wants a new value at every evaluation; it still gets through,
    // to the most cautious of the last three.
    let ramp: Vec<usize> = (10..16).map(|r| a.observe(&load(r))).collect();
    assert_eq!(ramp, [1, 1, 10, 10, 10, 13]);
    // Noise on both sides of the target never moves it.
    let noise: Vec<usize> = (0..20)
        .map(|i| a.observe(&load(if i % 2 == 0 { 11 } else { 15 })))
        .collect();
    assert!(noise.iter().all(|&t| t == 13), "{noise:?}");
    // A drop moves it down after three agreeing evaluations, to the
    // highest of them.
    let down: Vec<usize> = [5, 4, 6, 5].iter().map(|&r| a.observe(&load(r))).collect();
    assert_eq!(down, [13, 13, 6, 6]);
}

#[tokio::test(start_paused = true)]
async fn a_worker_with_context_sees_its_item_and_attempt() {
    use weft_flow::queue::{WorkContext, with_context};
    let source = Arc::new(MemorySource::from_items(0..6u64));
    // Odd items fail transiently on their first attempt.
    let worker = with_context(|x: u64, cx: WorkContext| async move {
        assert_eq!(cx.max_attempts, 3);
        if x % 2 == 1 && cx.attempt == 1 {
            return Err(Fail(true));
        }
        Ok((cx.id, cx.attempt, cx.is_last_attempt()))
    });
    let retry = RetryPolicy::exponential(3, Duration::from_millis(1), Duration::from_millis(4));
    let config = QueueConfig::fixed(2).unwrap().retry(retry.unwrap());
    let done = WorkQueue::spawn(source, worker, config)
        .collect_all()
        .await
        .unwrap();
    let mut seen: Vec<_> = done.output.into_iter().map(|(_, v)| v).collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            (0, 1, false),
            (1, 2, false),
            (2, 1, false),
            (3, 2, false),
            (4, 1, false),
            (5, 2, false)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_attempt_past_its_timeout_is_retried_then_dead_lettered_saying_so() {
    let source = Arc::new(MemorySource::from_items(0..4u64));
    // Item 0 never finishes; item 1 hangs on its first attempt only.
    let tries = Arc::new(std::sync::Mutex::new(
        std::collections::HashMap::<u64, u32>::new(),
    ));
    let worker = {
        let tries = tries.clone();
        move |x: u64| {
            let n = {
                let mut t = tries.lock().unwrap();
                let n = t.entry(x).or_insert(0);
                *n += 1;
                *n
            };
            async move {
                if x == 0 || (x == 1 && n == 1) {
                    std::future::pending::<()>().await;
                }
                Ok::<_, Fail>(x)
            }
        }
    };
    let retry = RetryPolicy::exponential(2, Duration::from_millis(1), Duration::from_millis(1));
    let config = QueueConfig::fixed(2)
        .unwrap()
        .retry(retry.unwrap())
        .attempt_timeout(Duration::from_millis(50))
        .unwrap();
    let done = WorkQueue::spawn(source, worker, config)
        .collect_all()
        .await
        .unwrap();
    let mut ids: Vec<u64> = done.output.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(done.dead_letters.len(), 1);
    let letter = &done.dead_letters[0];
    assert_eq!(letter.item.id, 0);
    assert_eq!(letter.attempts, 2);
    assert!(letter.retries_exhausted);
    assert_eq!(letter.class, ErrorClass::Transient);
    assert!(
        letter.error.contains("timed out after 50ms"),
        "{}",
        letter.error
    );
    assert!(
        QueueConfig::fixed(1)
            .unwrap()
            .attempt_timeout(Duration::ZERO)
            .is_err()
    );
    assert!(
        QueueConfig::fixed(1)
            .unwrap()
            .attempt_timeout(Duration::MAX)
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn the_fixed_and_batch_presets_run_their_workers_from_the_start() {
    for (name, config, workers) in [
        ("fixed", QueueConfig::fixed(4).unwrap(), 4u64),
        ("batch", QueueConfig::batch(8).unwrap(), 8),
    ] {
        // A pile of 4 × workers items of 100 ms each: with every worker
        // busy from the start they take 400 ms.
        let source = Arc::new(MemorySource::from_items(0..4 * workers));
        let worker = |x: u64| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, Fail>(x)
        };
        let start = tokio::time::Instant::now();
        let done = WorkQueue::spawn(source, worker, config)
            .collect_all()
            .await
            .unwrap();
        assert_eq!(done.output.len() as u64, 4 * workers, "{name}");
        let took = start.elapsed();
        assert!(took < Duration::from_millis(450), "{name}: {took:?}");
    }
    assert!(QueueConfig::fixed(0).is_err());
    assert!(QueueConfig::batch(0).is_err());
    // A permanent error is not a retry that ran out.
    let source = Arc::new(MemorySource::from_items(0..1u64));
    let done = WorkQueue::spawn(
        source,
        |_: u64| async { Err::<u64, _>(Fail(false)) },
        QueueConfig::fixed(1).unwrap(),
    )
    .collect_all()
    .await
    .unwrap();
    assert!(!done.dead_letters[0].retries_exhausted);
    assert_eq!(done.dead_letters[0].attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn slow_items_spread_over_the_workers_fast_ones_are_taken_in_batches() {
    // Fast items: a worker takes several at a time from the source.
    let source = Arc::new(TakeSizes {
        inner: MemorySource::from_items(0..10_000u64),
        largest: Default::default(),
    });
    let fast = |x: u64| async move { Ok::<_, std::io::Error>(x) };
    let done = WorkQueue::spawn(source.clone(), fast, QueueConfig::fixed(2).unwrap())
        .collect_all()
        .await
        .unwrap();
    assert_eq!(done.output.len(), 10_000);
    assert!(
        source.largest.load(std::sync::atomic::Ordering::Relaxed) > 1,
        "fast items are taken several at a time"
    );

    // Slow items (100 ms each), 4 workers, 8 items: two rounds, 200 ms.
    // A worker that kept a second item in hand would make it three.
    let source = Arc::new(MemorySource::from_items(0..8u64));
    let slow = |x: u64| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(x)
    };
    let started = tokio::time::Instant::now();
    let done = WorkQueue::spawn(source, slow, QueueConfig::fixed(4).unwrap())
        .collect_all()
        .await
        .unwrap();
    assert_eq!(done.output.len(), 8);
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(250),
        "8 slow items on 4 workers took {took:?}"
    );
}

/// A source that records the largest batch it handed out.
struct TakeSizes {
    inner: MemorySource<u64>,
    largest: std::sync::atomic::AtomicUsize,
}

impl weft_flow::queue::Source<u64> for TakeSizes {
    type Id = u64;

    async fn next(&self) -> Option<weft_flow::queue::Item<u64>> {
        self.next_batch(1).await.pop()
    }
    async fn next_batch(&self, max: usize) -> Vec<weft_flow::queue::Item<u64>> {
        let items = self.inner.next_batch(max).await;
        self.largest
            .fetch_max(items.len(), std::sync::atomic::Ordering::Relaxed);
        items
    }
    async fn ack(&self, id: u64) -> bool {
        self.inner.ack(id).await
    }
    async fn ack_batch(&self, ids: Vec<u64>) -> Vec<bool> {
        self.inner.ack_batch(ids).await
    }
    async fn nack(&self, item: weft_flow::queue::Item<u64>) {
        self.inner.nack(item).await;
    }
    fn arrived(&self) -> u64 {
        self.inner.arrived()
    }
}

/// Fast results wait for their batch at most about the linger (1 ms, and
/// the items of one look at the clock): with items of 20 µs and the source
/// always ready, a batch of 512 would take 10 ms to fill.
#[tokio::test(start_paused = true)]
async fn fast_results_wait_for_their_batch_at_most_about_a_millisecond() {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use tokio::time::Instant;
    let finished: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let source = Arc::new(MemorySource::from_items(0..5_000u64));
    let marks = finished.clone();
    let worker = move |x: u64| {
        let marks = marks.clone();
        async move {
            tokio::time::advance(Duration::from_micros(20)).await;
            marks.lock().unwrap().insert(x, Instant::now());
            Ok::<_, std::io::Error>(x)
        }
    };
    let WorkQueue {
        output, control, ..
    } = WorkQueue::spawn(source, worker, QueueConfig::fixed(1).unwrap());
    let mut worst = Duration::ZERO;
    let mut arrivals = 0usize;
    let mut seen = 0usize;
    let mut last = None;
    output
        .for_each(|(_, x)| {
            let now = Instant::now();
            let done = finished.lock().unwrap()[&x];
            worst = worst.max(now - done);
            seen += 1;
            if last != Some(now) {
                arrivals += 1;
                last = Some(now);
            }
        })
        .await
        .unwrap();
    control.wait().await.unwrap();
    assert_eq!(seen, 5_000);
    assert!(
        arrivals < seen / 10,
        "results are committed in batches: {arrivals} arrivals for {seen}"
    );
    assert!(
        worst <= Duration::from_micros(1_200),
        "a result waited {worst:?} for its batch"
    );
}
