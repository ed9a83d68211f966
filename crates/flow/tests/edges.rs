//! Items that could vanish and shapes that could hang: pushes after close,
//! refused acknowledgements, unread outputs.

use std::sync::Arc;
use std::time::Duration;

use weft_flow::queue::{Autoscaler, Closed, Item, MemorySource, QueueConfig, Source, WorkQueue};
use weft_flow::{Flow, FlowConfig};

fn config(output_capacity: usize) -> QueueConfig {
    QueueConfig::new(Autoscaler::new(1, 2, 0.8, 1).unwrap(), 2)
        .unwrap()
        .output(FlowConfig::new(output_capacity, output_capacity.min(4)).unwrap())
}

#[test]
fn a_push_after_close_hands_the_payload_back() {
    let source = MemorySource::new();
    assert_eq!(source.push("a"), Ok(0));
    source.close();
    assert_eq!(source.push("b"), Err(Closed("b")));
    assert!(source.is_closed());
    assert_eq!(
        source.pending(),
        1,
        "only the item pushed before the close waits"
    );
}

#[test]
fn every_push_that_got_an_id_is_handed_out_whatever_races_the_close() {
    for round in 0..200u64 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let (accepted, taken) = rt.block_on(async move {
            let source = Arc::new(MemorySource::new());
            let pushers: Vec<_> = (0..4u64)
                .map(|p| {
                    let source = source.clone();
                    tokio::spawn(async move {
                        let mut ids = Vec::new();
                        for i in 0..50 {
                            if let Ok(id) = source.push(p * 1000 + i) {
                                ids.push(id);
                            }
                            if i % 8 == round % 8 {
                                tokio::task::yield_now().await;
                            }
                        }
                        ids
                    })
                })
                .collect();
            let closer = {
                let source = source.clone();
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    source.close();
                })
            };
            let taker = {
                let source = source.clone();
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    while let Some(Item { id, .. }) = source.next().await {
                        assert!(source.ack(id).await);
                        ids.push(id);
                    }
                    ids
                })
            };
            let mut accepted = Vec::new();
            for p in pushers {
                accepted.extend(p.await.unwrap());
            }
            closer.await.unwrap();
            (accepted, taker.await.unwrap())
        });
        let (mut accepted, mut taken) = (accepted, taken);
        accepted.sort_unstable();
        taken.sort_unstable();
        assert_eq!(accepted, taken, "round {round}: an accepted push vanished");
    }
}

/// A source whose claims on odd ids are lost before the commit.
struct LosesOddClaims(MemorySource<u64>);

impl Source<u64> for LosesOddClaims {
    type Id = u64;

    async fn next(&self) -> Option<Item<u64>> {
        self.0.next().await
    }
    async fn ack(&self, id: u64) -> bool {
        self.0.ack(id).await && id.is_multiple_of(2)
    }
    async fn nack(&self, item: Item<u64>) {
        self.0.nack(item).await;
    }
    fn arrived(&self) -> u64 {
        self.0.arrived()
    }
}

#[tokio::test]
async fn a_refused_acknowledgement_gives_the_user_the_id() {
    let source = Arc::new(LosesOddClaims(MemorySource::from_items(0..100u64)));
    let worker = |x: u64| async move { Ok::<_, std::io::Error>(x) };
    let done = WorkQueue::spawn(source, worker, config(16))
        .collect_all()
        .await
        .unwrap();
    let mut out: Vec<u64> = done.output.iter().map(|(id, _)| *id).collect();
    out.sort_unstable();
    let mut discarded = done.discarded;
    discarded.sort_unstable();
    assert_eq!(out, (0..100).step_by(2).collect::<Vec<_>>());
    assert_eq!(discarded, (1..100).step_by(2).collect::<Vec<_>>());
    assert_eq!(done.status.discarded, 50);
}

/// A source that hands out items in batches and answers a batch of
/// acknowledgements short: only its first half gets an answer (`true`);
/// the rest count as refused.
#[derive(Default)]
struct AnswersHalf {
    inner: MemorySource<u64>,
    confirmed: std::sync::Mutex<Vec<u64>>,
    batches: std::sync::atomic::AtomicUsize,
}

impl Source<u64> for AnswersHalf {
    type Id = u64;

    async fn next(&self) -> Option<Item<u64>> {
        self.inner.next().await
    }
    async fn next_batch(&self, max: usize) -> Vec<Item<u64>> {
        self.inner.next_batch(max).await
    }
    async fn ack(&self, id: u64) -> bool {
        self.ack_batch(vec![id])
            .await
            .first()
            .copied()
            .unwrap_or(false)
    }
    async fn ack_batch(&self, ids: Vec<u64>) -> Vec<bool> {
        self.batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let half = ids.len().div_ceil(2);
        self.confirmed.lock().unwrap().extend(&ids[..half]);
        let mut answers = self.inner.ack_batch(ids).await;
        answers.truncate(half);
        answers
    }
    async fn nack(&self, item: Item<u64>) {
        self.inner.nack(item).await;
    }
    fn arrived(&self) -> u64 {
        self.inner.arrived()
    }
}

#[tokio::test]
async fn results_committed_in_batches_leave_only_for_the_acknowledgements_confirmed() {
    let source = Arc::new(AnswersHalf::default());
    for i in 0..1000u64 {
        source.inner.push(i).unwrap();
    }
    source.inner.close();
    let worker = |x: u64| async move { Ok::<_, std::io::Error>(x) };
    let done = WorkQueue::spawn(source.clone(), worker, config(64))
        .collect_all()
        .await
        .unwrap();
    let mut out: Vec<u64> = done.output.iter().map(|(id, _)| *id).collect();
    out.sort_unstable();
    let mut confirmed = source.confirmed.lock().unwrap().clone();
    confirmed.sort_unstable();
    assert_eq!(
        out, confirmed,
        "exactly the confirmed results leave the queue"
    );
    let mut all = out.clone();
    all.extend(&done.discarded);
    all.sort_unstable();
    assert_eq!(
        all,
        (0..1000).collect::<Vec<_>>(),
        "every item once: output or discarded"
    );
    assert_eq!(done.status.discarded as usize, done.discarded.len());
    assert!(
        source.batches.load(std::sync::atomic::Ordering::Relaxed) < 1000,
        "fast results are acknowledged in batches"
    );
}

#[tokio::test(start_paused = true)]
async fn collect_all_cannot_deadlock_where_waiting_first_does() {
    let worker = |x: u64| async move { Ok::<_, std::io::Error>(x) };
    // Waiting on the control before reading: the output edge (8 items)
    // fills and the queue never ends.
    let WorkQueue {
        output,
        dead_letters,
        control,
    } = WorkQueue::spawn(
        Arc::new(MemorySource::from_items(0..1000u64)),
        worker,
        config(8),
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(60), control.wait())
            .await
            .is_err(),
        "waiting before reading should block on the full output"
    );
    drop((output, dead_letters));

    let done = WorkQueue::spawn(
        Arc::new(MemorySource::from_items(0..1000u64)),
        worker,
        config(8),
    )
    .collect_all()
    .await
    .unwrap();
    assert_eq!(done.output.len(), 1000);
    assert_eq!(done.status.done, 1000);
}

#[tokio::test]
async fn reading_copies_concurrently_completes_where_one_after_another_would_not() {
    let items: Vec<u64> = (0..10_000).collect();
    let outs = Flow::from_iter(items.clone(), FlowConfig::new(64, 16).unwrap())
        .copy(3)
        .unwrap();
    let all = Flow::collect_all(outs).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|out| *out == items));
}

#[derive(Debug)]
struct Busy;

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("busy")
    }
}

impl weft_core::Classify for Busy {
    fn class(&self) -> weft_core::ErrorClass {
        weft_core::ErrorClass::Transient
    }
}

#[tokio::test(start_paused = true)]
async fn extreme_queue_settings_are_refused_or_work_without_overflow() {
    let autoscaler = || Autoscaler::new(1, 2, 0.8, 1).unwrap();
    assert!(QueueConfig::new(autoscaler(), usize::MAX).is_err());
    assert!(Autoscaler::new(1, usize::MAX, 0.8, 1).is_ok());
    // A retry cap of Duration::MAX and an evaluation interval of
    // Duration::MAX: backoff and ticks saturate instead of overflowing.
    let retry =
        weft_flow::queue::RetryPolicy::exponential(2, Duration::from_millis(1), Duration::MAX)
            .unwrap();
    let config = QueueConfig::new(autoscaler(), 2)
        .unwrap()
        .retry(retry)
        .evaluate_every(Duration::MAX)
        .unwrap();
    let worker = |x: u64| async move {
        if x.is_multiple_of(2) {
            Ok(x)
        } else {
            Err(Busy)
        }
    };
    let done = WorkQueue::spawn(Arc::new(MemorySource::from_items(0..10u64)), worker, config)
        .collect_all()
        .await
        .unwrap();
    assert_eq!(done.output.len(), 5);
    assert_eq!(
        done.dead_letters.len(),
        5,
        "odd items fail twice, then dead-letter"
    );
}
