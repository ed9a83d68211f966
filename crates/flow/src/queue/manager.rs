//! The work queue's manager: workers, retries, dead letters, done-tracking
//! and autoscaling.

use std::collections::HashSet;
use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weft_core::{Classify, key_hash};

use super::{Autoscaler, Item, Source};
use crate::edge::{EdgeTx, edge};
use crate::{Flow, FlowConfig, FlowError};

/// Processes one work item.
///
/// Implemented for every `Fn(T) -> impl Future<Output = Result<O, E>>` with
/// a classified error. A retry calls it again with a clone of the item.
pub trait Worker<T>: Send + Sync + 'static {
    /// What processing yields.
    type Output: Send + 'static;
    /// A failure: transient ones are retried, permanent ones dead-lettered.
    type Error: Classify + Display + Send;
    /// Processes `item`.
    fn process(&self, item: T) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;
}

impl<T, F, Fut, O, E> Worker<T> for F
where
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send,
    O: Send + 'static,
    E: Classify + Display + Send,
{
    type Output = O;
    type Error = E;
    fn process(&self, item: T) -> impl Future<Output = Result<O, E>> + Send {
        self(item)
    }
}

/// Retries of transient failures: up to `max_attempts` attempts in all,
/// waiting `base · 2^(n−1)` (capped at `max`, with ±50 % jitter) before
/// attempt `n + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base: Duration,
    max: Duration,
}

impl RetryPolicy {
    /// A policy.
    ///
    /// # Errors
    ///
    /// [`FlowError::Config`] for zero attempts, a zero base delay, or a base
    /// above the cap.
    pub fn new(max_attempts: u32, base: Duration, max: Duration) -> Result<Self, FlowError> {
        if max_attempts == 0 {
            return Err(FlowError::Config(
                "max attempts is zero: every item needs one".into(),
            ));
        }
        if base.is_zero() || base > max {
            return Err(FlowError::Config(format!(
                "retry backoff base {base:?} must be positive and at most the cap {max:?}"
            )));
        }
        Ok(RetryPolicy {
            max_attempts,
            base,
            max,
        })
    }

    fn delay(&self, attempt: u32, id: u64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max);
        let unit = (key_hash(&(id, attempt)) >> 11) as f64 / (1u64 << 53) as f64;
        exp.mul_f64(0.5 + unit)
    }
}

impl Default for RetryPolicy {
    /// 5 attempts, 10 ms doubling to at most 1 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(10),
            max: Duration::from_secs(1),
        }
    }
}

/// A queue's settings.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    autoscaler: Autoscaler,
    max_in_flight: usize,
    retry: RetryPolicy,
    evaluate_every: Duration,
    output: FlowConfig,
}

impl QueueConfig {
    /// A queue scaled by `autoscaler`, with at most `max_in_flight` items
    /// being processed at once.
    ///
    /// # Errors
    ///
    /// [`FlowError::Config`] if `max_in_flight` is zero.
    pub fn new(autoscaler: Autoscaler, max_in_flight: usize) -> Result<Self, FlowError> {
        if max_in_flight == 0 {
            return Err(FlowError::Config("max in flight is zero".into()));
        }
        Ok(QueueConfig {
            autoscaler,
            max_in_flight,
            retry: RetryPolicy::default(),
            evaluate_every: Duration::from_secs(1),
            output: FlowConfig::default(),
        })
    }

    /// The retry policy.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How often the autoscaler looks at the rates.
    #[must_use]
    pub fn evaluate_every(mut self, every: Duration) -> Self {
        self.evaluate_every = every;
        self
    }

    /// The output flows' buffers.
    #[must_use]
    pub fn output(mut self, config: FlowConfig) -> Self {
        self.output = config;
        self
    }
}

/// An item that failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter<T> {
    /// The item.
    pub item: Item<T>,
    /// The last error (or the panic).
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
}

/// What a running queue reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The autoscaler's target parallelism.
    pub target: usize,
    /// Workers running.
    pub workers: usize,
    /// Items arriving per second, over the last evaluation.
    pub arrivals_per_sec: f64,
    /// Mean processing time per attempt (moving average).
    pub processing: Duration,
    /// Items done (output or dead-lettered).
    pub done: u64,
    /// Items dead-lettered (counted even if the dead-letter reader is
    /// gone).
    pub dead: u64,
    /// Results discarded because the source refused the acknowledgement:
    /// the claim on the item was lost (e.g. a lease expired during a
    /// pause) and another taker owns it.
    pub discarded: u64,
}

struct Shared<S, W, T>
where
    W: Worker<T>,
{
    source: Arc<S>,
    worker: Arc<W>,
    retry: RetryPolicy,
    done: Mutex<HashSet<u64>>,
    in_flight: Semaphore,
    output: EdgeTx<(u64, W::Output)>,
    dead: EdgeTx<DeadLetter<T>>,
    target: AtomicUsize,
    active: AtomicUsize,
    processing_ewma_us: AtomicU64,
    done_count: AtomicU64,
    dead_count: AtomicU64,
    discarded_count: AtomicU64,
    drain: CancellationToken,
    cancel: CancellationToken,
}

/// A running queue: its output, its dead letters, and the control of the
/// queue. The fields are public so that they can be taken apart:
///
/// ```
/// use std::sync::Arc;
/// use weft_flow::queue::{Autoscaler, MemorySource, QueueConfig, Running, WorkQueue};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let source = Arc::new(MemorySource::from_items(1..=3u64));
/// let worker = |x: u64| async move { Ok::<_, std::io::Error>(x * 10) };
/// let config = QueueConfig::new(Autoscaler::new(1, 2, 0.8, 2)?, 4)?;
/// let Running { output, dead_letters, control } = WorkQueue::spawn(source, worker, config);
/// let (out, dead) = tokio::join!(output.collect(), dead_letters.collect());
/// control.wait().await?;
/// let mut values: Vec<u64> = out?.into_iter().map(|(_, v)| v).collect();
/// values.sort();
/// assert_eq!(values, [10, 20, 30]);
/// assert!(dead?.is_empty());
/// # Ok::<(), weft_flow::FlowError>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Running<O, T> {
    /// `(item id, output)` for each item processed.
    pub output: Flow<(u64, O)>,
    /// Items that failed for good.
    pub dead_letters: Flow<DeadLetter<T>>,
    /// The status, drain, cancel and wait.
    pub control: Control,
}

/// Controls a running queue: its status, graceful drain, cancellation,
/// and waiting for its end.
#[derive(Debug)]
pub struct Control {
    status: watch::Receiver<Status>,
    drain: CancellationToken,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

impl Control {
    /// The latest status.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// A receiver of status updates.
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Stops taking new items; items being processed finish (graceful
    /// drain). Items not taken stay in the source.
    pub fn drain(&self) {
        self.drain.cancel();
    }

    /// Stops at once: items being processed are returned to the source
    /// (nack), to be processed by a later queue. Nothing is lost.
    pub fn cancel(&self) {
        self.drain.cancel();
        self.cancel.cancel();
    }

    /// Waits until every worker has stopped (the source is drained, or
    /// after [`drain`](Control::drain) / [`cancel`](Control::cancel)).
    /// Read the output meanwhile: a full output holds the workers.
    ///
    /// # Errors
    ///
    /// [`FlowError::Upstream`] if the manager task panicked.
    pub async fn wait(self) -> Result<Status, FlowError> {
        let status = self.status.clone();
        self.handle
            .await
            .map_err(|e| FlowError::Upstream(format!("queue manager: {e}")))?;
        let s = status.borrow().clone();
        Ok(s)
    }
}

/// A work queue (the book's work-queue pattern): workers take items from a
/// [`Source`], process them with bounded in-flight work, retry transient
/// failures with backoff, dead-letter permanent ones and exhausted retries,
/// never process an acknowledged item twice, and scale the number of
/// workers to the arrival rate.
///
/// A worker that panics fails that item (dead-lettered), not the queue.
/// Outputs and dead letters are flows, so one queue's output can feed the
/// next queue (multi-stage pipelines).
#[derive(Debug)]
pub struct WorkQueue;

impl WorkQueue {
    /// Starts workers over `source` with `worker`.
    pub fn spawn<T, S, W>(source: Arc<S>, worker: W, config: QueueConfig) -> Running<W::Output, T>
    where
        T: Clone + Send + Sync + 'static,
        S: Source<T> + 'static,
        W: Worker<T>,
    {
        let (out_tx, out_rx) = edge(config.output.capacity());
        let (dead_tx, dead_rx) = edge(config.output.capacity());
        let drain = CancellationToken::new();
        let cancel = CancellationToken::new();
        let mut autoscaler = config.autoscaler.clone();
        let shared = Arc::new(Shared {
            source: source.clone(),
            worker: Arc::new(worker),
            retry: config.retry,
            done: Mutex::new(HashSet::new()),
            in_flight: Semaphore::new(config.max_in_flight),
            output: out_tx,
            dead: dead_tx,
            target: AtomicUsize::new(autoscaler.target()),
            active: AtomicUsize::new(0),
            processing_ewma_us: AtomicU64::new(0),
            done_count: AtomicU64::new(0),
            dead_count: AtomicU64::new(0),
            discarded_count: AtomicU64::new(0),
            drain: drain.clone(),
            cancel: cancel.clone(),
        });
        let status_of = |shared: &Shared<S, W, T>, rate: f64| Status {
            target: shared.target.load(Ordering::Relaxed),
            workers: shared.active.load(Ordering::Relaxed),
            arrivals_per_sec: rate,
            processing: Duration::from_micros(shared.processing_ewma_us.load(Ordering::Relaxed)),
            done: shared.done_count.load(Ordering::Relaxed),
            dead: shared.dead_count.load(Ordering::Relaxed),
            discarded: shared.discarded_count.load(Ordering::Relaxed),
        };
        let (status_tx, status_rx) = watch::channel(status_of(&shared, 0.0));
        let every = config.evaluate_every;
        let manager = {
            let shared = shared.clone();
            async move {
                let mut workers = tokio::task::JoinSet::new();
                let mut next_index = 0usize;
                let spawn_up_to = |workers: &mut tokio::task::JoinSet<()>,
                                   next_index: &mut usize| {
                    while shared.active.load(Ordering::Relaxed)
                        < shared.target.load(Ordering::Relaxed)
                        && !shared.drain.is_cancelled()
                    {
                        shared.active.fetch_add(1, Ordering::Relaxed);
                        workers.spawn(work(shared.clone(), *next_index));
                        *next_index += 1;
                    }
                };
                spawn_up_to(&mut workers, &mut next_index);
                let mut last = (Instant::now(), shared.source.arrived());
                let mut tick = tokio::time::interval_at(Instant::now() + every, every);
                loop {
                    tokio::select! {
                        joined = workers.join_next() => {
                            if joined.is_none() {
                                break;
                            }
                            if shared.active.load(Ordering::Relaxed) == 0 && workers.is_empty() {
                                break;
                            }
                        }
                        _ = tick.tick() => {
                            let now = (Instant::now(), shared.source.arrived());
                            let secs = now.0.duration_since(last.0).as_secs_f64().max(1e-9);
                            let rate = (now.1 - last.1) as f64 / secs;
                            last = now;
                            let processing = Duration::from_micros(shared.processing_ewma_us.load(Ordering::Relaxed));
                            let target = autoscaler.observe(rate, processing);
                            if target != shared.target.swap(target, Ordering::Relaxed) {
                                tracing::debug!(target, rate, "work queue rescaled");
                            }
                            spawn_up_to(&mut workers, &mut next_index);
                            let _ = status_tx.send(status_of(&shared, rate));
                        }
                    }
                }
                let _ = status_tx.send(status_of(&shared, 0.0));
            }
        };
        let handle = tokio::spawn(manager);
        Running {
            output: Flow::from_edge(out_rx, config.output),
            dead_letters: Flow::from_edge(dead_rx, config.output),
            control: Control {
                status: status_rx,
                drain,
                cancel,
                handle,
            },
        }
    }
}

/// One worker: takes items until the source is drained, the queue drains
/// or is cancelled, or the target drops below its index (retire).
async fn work<T, S, W>(shared: Arc<Shared<S, W, T>>, index: usize)
where
    T: Clone + Send + Sync + 'static,
    S: Source<T> + 'static,
    W: Worker<T>,
{
    loop {
        if index >= shared.target.load(Ordering::Relaxed) {
            break;
        }
        let item = tokio::select! {
            biased;
            () = shared.drain.cancelled() => break,
            item = shared.source.next() => match item {
                Some(item) => item,
                None => break,
            },
        };
        if !process_one(&shared, item).await {
            break;
        }
    }
    shared.active.fetch_sub(1, Ordering::Relaxed);
}

/// Processes one item to its end; `false` if the worker must stop
/// (cancelled, or the output is gone).
async fn process_one<T, S, W>(shared: &Shared<S, W, T>, item: Item<T>) -> bool
where
    T: Clone + Send + Sync + 'static,
    S: Source<T> + 'static,
    W: Worker<T>,
{
    let id = item.id;
    let seen = shared
        .done
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&id);
    if seen {
        shared.source.ack(id).await;
        return true;
    }
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let Ok(permit) = shared.in_flight.acquire().await else {
            shared.source.nack(item).await;
            return false;
        };
        let started = Instant::now();
        let call = AssertUnwindSafe(shared.worker.process(item.payload.clone())).catch_unwind();
        let result = tokio::select! {
            biased;
            () = shared.cancel.cancelled() => {
                drop(permit);
                shared.source.nack(item).await;
                return false;
            }
            r = call => r,
        };
        drop(permit);
        let us = started.elapsed().as_micros() as u64;
        let old = shared.processing_ewma_us.load(Ordering::Relaxed);
        let ewma = if old == 0 { us } else { (old * 7 + us) / 8 };
        shared.processing_ewma_us.store(ewma, Ordering::Relaxed);
        let failure = match result {
            Ok(Ok(output)) => {
                return commit(shared, &shared.output, item, false, |item| {
                    (item.id, output)
                })
                .await;
            }
            Ok(Err(e)) if e.is_transient() && attempt < shared.retry.max_attempts => {
                let wait = shared.retry.delay(attempt, id);
                tokio::select! {
                    biased;
                    () = shared.cancel.cancelled() => {
                        shared.source.nack(item).await;
                        return false;
                    }
                    () = tokio::time::sleep(wait) => continue,
                }
            }
            Ok(Err(e)) => e.to_string(),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "worker panicked".into());
                format!("worker panicked: {what}")
            }
        };
        return commit(shared, &shared.dead, item, true, |item| DeadLetter {
            item,
            error: failure,
            attempts: attempt,
        })
        .await;
    }
}

/// Commits an item's result: takes room downstream first (so that nothing
/// is acknowledged and then lost on a full or closed edge), acknowledges
/// the item at the source, and sends the result only if the source
/// confirmed the claim. `false` if the worker must stop.
///
/// A dead letter whose reader is gone is still committed, counted and
/// logged; a result whose reader is gone is given back to the source (no
/// one can receive it) and stops the worker.
async fn commit<T, S, W, X>(
    shared: &Shared<S, W, T>,
    edge: &EdgeTx<X>,
    item: Item<T>,
    dead: bool,
    value: impl FnOnce(Item<T>) -> X,
) -> bool
where
    T: Clone + Send + Sync + 'static,
    S: Source<T> + 'static,
    W: Worker<T>,
{
    let id = item.id;
    let slot = tokio::select! {
        biased;
        () = shared.cancel.cancelled() => {
            shared.source.nack(item).await;
            return false;
        }
        slot = edge.reserve() => slot,
    };
    if slot.is_none() && !dead {
        // Nobody reads the output: give the item back.
        shared.source.nack(item).await;
        return false;
    }
    if !shared.source.ack(id).await {
        // The claim was lost (another taker owns the item now): this
        // result must not count.
        shared.discarded_count.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(id, "claim lost before commit; result discarded");
        return true;
    }
    shared
        .done
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id);
    shared.done_count.fetch_add(1, Ordering::Relaxed);
    if dead {
        shared.dead_count.fetch_add(1, Ordering::Relaxed);
    }
    match slot {
        Some(slot) => slot.send(value(item)) || dead,
        None => {
            tracing::warn!(id, "dead letter dropped: its reader is gone");
            true
        }
    }
}
