//! The work queue's manager: workers, retries, dead letters, done-tracking
//! and autoscaling.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weft_core::{Classify, key_hash};

use super::{Autoscaler, Item, Load, Source};
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
        let unit = weft_core::mix::unit(key_hash(&(id, attempt)));
        // Capped first: a cap of Duration::MAX times 1.5 would overflow.
        weft_core::time::capped(exp).mul_f64(0.5 + unit)
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
        if max_in_flight > Semaphore::MAX_PERMITS {
            return Err(FlowError::Config(format!(
                "max in flight {max_in_flight} is above the limit of {}",
                Semaphore::MAX_PERMITS
            )));
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

    /// How often the autoscaler looks at the rates (default 1 s).
    ///
    /// # Errors
    ///
    /// [`FlowError::Config`] if `every` is zero.
    pub fn evaluate_every(mut self, every: Duration) -> Result<Self, FlowError> {
        if every.is_zero() {
            return Err(FlowError::Config(
                "autoscaler evaluation interval is zero".into(),
            ));
        }
        self.evaluate_every = every;
        Ok(self)
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
    /// Items waiting in the source at the last evaluation.
    pub backlog: usize,
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
    batch: usize,
    done: DoneSet,
    /// `None` when the workers can never exceed the bound.
    in_flight: Option<Semaphore>,
    output: EdgeTx<(u64, W::Output)>,
    dead: EdgeTx<DeadLetter<T>>,
    target: AtomicUsize,
    active: AtomicUsize,
    processing_ewma_us: AtomicU64,
    done_count: AtomicU64,
    dead_count: AtomicU64,
    discarded_count: AtomicU64,
    discarded: Arc<Mutex<Vec<u64>>>,
    drain: CancellationToken,
    cancel: CancellationToken,
    /// Wakes idle workers when there are more than the target.
    rescaled: Notify,
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

/// Everything a queue produced, from [`Running::collect_all`].
#[derive(Debug)]
pub struct Collected<O, T> {
    /// `(item id, output)` for each item processed.
    pub output: Vec<(u64, O)>,
    /// Items that failed for good.
    pub dead_letters: Vec<DeadLetter<T>>,
    /// The final status.
    pub status: Status,
    /// Ids whose result was discarded (see [`Control::discarded_ids`]).
    pub discarded: Vec<u64>,
}

impl<O: Send + 'static, T: Send + 'static> Running<O, T> {
    /// Reads the output and the dead letters to the end while waiting for
    /// the queue: the shape that cannot deadlock. (Awaiting
    /// [`Control::wait`] before reading the output stops once the output
    /// edge fills: the workers wait for room that only a reader makes.)
    ///
    /// # Errors
    ///
    /// The failure of the output or dead-letter flow, or of the manager
    /// task.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the outputs and the control: the workers
    /// see their output closed, give their items back and stop.
    pub async fn collect_all(self) -> Result<Collected<O, T>, FlowError> {
        let Running {
            output,
            dead_letters,
            control,
        } = self;
        let discarded = control.discarded.clone();
        let (output, dead_letters, status) =
            futures::future::try_join3(output.collect(), dead_letters.collect(), control.wait())
                .await?;
        let discarded = std::mem::take(&mut *lock_ids(&discarded));
        Ok(Collected {
            output,
            dead_letters,
            status,
            discarded,
        })
    }
}

/// The most discarded ids a queue keeps for [`Control::discarded_ids`];
/// [`Status::discarded`] counts them all.
pub const MAX_DISCARDED_IDS: usize = 1 << 16;

fn lock_ids(ids: &Mutex<Vec<u64>>) -> std::sync::MutexGuard<'_, Vec<u64>> {
    ids.lock().unwrap_or_else(|e| e.into_inner())
}

/// Controls a running queue: its status, graceful drain, cancellation,
/// and waiting for its end.
#[derive(Debug)]
pub struct Control {
    status: watch::Receiver<Status>,
    drain: CancellationToken,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
    discarded: Arc<Mutex<Vec<u64>>>,
}

impl Control {
    /// Takes the ids whose result was discarded since the last call: the
    /// source refused their acknowledgement (the claim was lost, e.g. a
    /// lease that expired while this process was paused), so another taker
    /// owns them and this queue's result for them was not sent. Side
    /// effects the worker had outside the queue for these ids happened
    /// once more; reconcile them by id. At most [`MAX_DISCARDED_IDS`] are
    /// kept between calls (the oldest first); [`Status::discarded`] counts
    /// every one.
    pub fn discarded_ids(&self) -> Vec<u64> {
        std::mem::take(&mut *lock_ids(&self.discarded))
    }

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
            batch: config.output.batch(),
            done: DoneSet::default(),
            in_flight: (config.max_in_flight < config.autoscaler.bounds().1)
                .then(|| Semaphore::new(config.max_in_flight)),
            output: out_tx,
            dead: dead_tx,
            target: AtomicUsize::new(autoscaler.target()),
            active: AtomicUsize::new(0),
            processing_ewma_us: AtomicU64::new(0),
            done_count: AtomicU64::new(0),
            dead_count: AtomicU64::new(0),
            discarded_count: AtomicU64::new(0),
            discarded: Arc::new(Mutex::new(Vec::new())),
            drain: drain.clone(),
            cancel: cancel.clone(),
            rescaled: Notify::new(),
        });
        let status_of = |shared: &Shared<S, W, T>, load: Load| Status {
            target: shared.target.load(Ordering::Relaxed),
            workers: shared.active.load(Ordering::Relaxed),
            arrivals_per_sec: load.arrivals_per_sec,
            backlog: load.backlog,
            processing: Duration::from_micros(shared.processing_ewma_us.load(Ordering::Relaxed)),
            done: shared.done_count.load(Ordering::Relaxed),
            dead: shared.dead_count.load(Ordering::Relaxed),
            discarded: shared.discarded_count.load(Ordering::Relaxed),
        };
        let (status_tx, status_rx) = watch::channel(status_of(&shared, Load::default()));
        let every = config.evaluate_every;
        let manager = {
            let shared = shared.clone();
            async move {
                let mut workers = tokio::task::JoinSet::new();
                let spawn_up_to = |workers: &mut tokio::task::JoinSet<()>| {
                    while shared.active.load(Ordering::Acquire)
                        < shared.target.load(Ordering::Relaxed)
                        && !shared.drain.is_cancelled()
                    {
                        shared.active.fetch_add(1, Ordering::AcqRel);
                        workers.spawn(shared.clone().work());
                    }
                };
                spawn_up_to(&mut workers);
                let mut last = (Instant::now(), shared.source.arrived());
                let mut tick = tokio::time::interval_at(
                    Instant::now() + weft_core::time::capped(every),
                    every,
                );
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
                            let load = Load {
                                arrivals_per_sec: rate,
                                processing: Duration::from_micros(shared.processing_ewma_us.load(Ordering::Relaxed)),
                                backlog: shared.source.backlog().unwrap_or(0),
                            };
                            let target = autoscaler.observe(&load);
                            if target != shared.target.swap(target, Ordering::Relaxed) {
                                tracing::debug!(target, rate, "work queue rescaled");
                            }
                            spawn_up_to(&mut workers);
                            if shared.active.load(Ordering::Acquire) > target {
                                shared.rescaled.notify_waiters();
                            }
                            let _ = status_tx.send(status_of(&shared, load));
                        }
                    }
                }
                let _ = status_tx.send(status_of(&shared, Load::default()));
            }
        };
        let discarded = shared.discarded.clone();
        let handle = tokio::spawn(manager);
        Running {
            output: Flow::from_edge(out_rx, config.output),
            dead_letters: Flow::from_edge(dead_rx, config.output),
            control: Control {
                status: status_rx,
                drain,
                cancel,
                handle,
                discarded,
            },
        }
    }
}

/// The workers' side of the queue.
impl<S, W, T> Shared<S, W, T>
where
    T: Clone + Send + Sync + 'static,
    S: Source<T> + 'static,
    W: Worker<T>,
{
    /// Takes one worker off the count if there are more than the target;
    /// `true` if the caller is that worker and must stop.
    fn retire_if_surplus(&self) -> bool {
        let mut active = self.active.load(Ordering::Acquire);
        while active > self.target.load(Ordering::Relaxed) {
            match self.active.compare_exchange_weak(
                active,
                active - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => active = now,
            }
        }
        false
    }

    /// One worker: takes items until the source is drained, the queue drains
    /// or is cancelled, or there are more workers than the target (the first to
    /// notice retires).
    async fn work(self: Arc<Self>) {
        // Results of fast items are kept here (their room on the output already
        // taken) and sent as one batch: when the batch is full, when the source
        // has nothing ready, when room runs out, after LINGER, and on exit.
        let mut out = Batch {
            items: Vec::new(),
            since: Instant::now(),
        };
        let mut taken = 0u64;
        loop {
            if self.drain.is_cancelled() {
                break;
            }
            if self.retire_if_surplus() {
                out.flush(&self.output);
                return;
            }
            let next = self.source.next();
            tokio::pin!(next);
            let item = match futures::poll!(next.as_mut()) {
                std::task::Poll::Ready(item) => item,
                std::task::Poll::Pending => {
                    if !out.flush(&self.output) {
                        break;
                    }
                    let rescaled = self.rescaled.notified();
                    tokio::select! {
                        biased;
                        () = self.drain.cancelled() => break,
                        item = &mut next => item,
                        // Too many workers: an idle one goes (sources' `next`
                        // is cancel safe).
                        () = rescaled => continue,
                    }
                }
            };
            let Some(item) = item else { break };
            taken += 1;
            // Time the first items, then one in TIME_EVERY (clock reads cost as
            // much as a fast item's bookkeeping).
            let timed = taken <= 16 || taken.is_multiple_of(TIME_EVERY);
            if !self.process_one(item, &mut out, timed).await {
                break;
            }
            let fast = self.processing_ewma_us.load(Ordering::Relaxed) < FAST_US;
            let flush = out.items.len() >= self.batch
                || !fast
                || (taken.is_multiple_of(TIME_EVERY) && out.since.elapsed() >= LINGER);
            if flush && !out.flush(&self.output) {
                break;
            }
        }
        out.flush(&self.output);
        self.active.fetch_sub(1, Ordering::AcqRel);
    }

    /// Processes one item to its end; `false` if the worker must stop
    /// (cancelled, or the output is gone).
    async fn process_one(
        &self,
        item: Item<T>,
        out: &mut Batch<(u64, W::Output)>,
        timed: bool,
    ) -> bool {
        let id = item.id;
        if self.done.contains(id) {
            self.source.ack(id).await;
            return true;
        }
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let permit = match &self.in_flight {
                Some(bound) => match bound.acquire().await {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        self.source.nack(item).await;
                        return false;
                    }
                },
                None => None,
            };
            let started = timed.then(Instant::now);
            let call = AssertUnwindSafe(self.worker.process(item.payload.clone())).catch_unwind();
            // The call first: work that is ready never touches the cancel
            // token's waiter list.
            let result = tokio::select! {
                biased;
                r = call => r,
                () = self.cancel.cancelled() => {
                    drop(permit);
                    self.source.nack(item).await;
                    return false;
                }
            };
            drop(permit);
            if let Some(started) = started {
                let us = started.elapsed().as_micros() as u64;
                let old = self.processing_ewma_us.load(Ordering::Relaxed);
                let ewma = if old == 0 { us } else { (old * 7 + us) / 8 };
                self.processing_ewma_us.store(ewma, Ordering::Relaxed);
            }
            let failure = match result {
                Ok(Ok(output)) => {
                    return self
                        .commit(&self.output, item, Some(out), |item| (item.id, output))
                        .await;
                }
                Ok(Err(e)) if e.is_transient() && attempt < self.retry.max_attempts => {
                    let wait = self.retry.delay(attempt, id);
                    tokio::select! {
                        biased;
                        () = self.cancel.cancelled() => {
                            self.source.nack(item).await;
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
            return self
                .commit(&self.dead, item, None, |item| DeadLetter {
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
    /// Results go into `out` (to be sent in a batch); dead letters (`out` is
    /// `None`) are sent at once. A dead letter whose reader is gone is still
    /// committed, counted and logged; a result whose reader is gone is given
    /// back to the source (no one can receive it) and stops the worker.
    async fn commit<X>(
        &self,
        edge: &EdgeTx<X>,
        item: Item<T>,
        mut out: Option<&mut Batch<X>>,
        value: impl FnOnce(Item<T>) -> X,
    ) -> bool {
        let id = item.id;
        let dead = out.is_none();
        let slot = match edge.try_reserve() {
            Some(slot) => Some(slot),
            None => {
                // Waiting for room: send what this worker holds first, so that
                // workers never wait on room their own batches occupy.
                if let Some(out) = out.as_deref_mut()
                    && !out.flush(edge)
                {
                    self.source.nack(item).await;
                    return false;
                }
                tokio::select! {
                    biased;
                    () = self.cancel.cancelled() => {
                        self.source.nack(item).await;
                        return false;
                    }
                    slot = edge.reserve() => slot,
                }
            }
        };
        if slot.is_none() && !dead {
            // Nobody reads the output: give the item back.
            self.source.nack(item).await;
            return false;
        }
        if !self.source.ack(id).await {
            // The claim was lost (another taker owns the item now): this
            // result must not count.
            self.discarded_count.fetch_add(1, Ordering::Relaxed);
            let mut ids = lock_ids(&self.discarded);
            if ids.len() < MAX_DISCARDED_IDS {
                ids.push(id);
            }
            drop(ids);
            tracing::warn!(id, "claim lost before commit; result discarded");
            return true;
        }
        self.done.insert(id);
        self.done_count.fetch_add(1, Ordering::Relaxed);
        if dead {
            self.dead_count.fetch_add(1, Ordering::Relaxed);
        }
        match (slot, out) {
            (Some(slot), Some(out)) => {
                slot.keep();
                out.push(value(item));
                true
            }
            (Some(slot), None) => slot.send(value(item)) || dead,
            (None, _) => {
                tracing::warn!(id, "dead letter dropped: its reader is gone");
                true
            }
        }
    }
}

/// Ids of items done: a bitmap per shard, keyed by 64-id words.
///
/// Shard `id % 16` holds the id (so workers taking neighbouring ids take
/// different locks), in the word `id / 1024` at bit `(id / 16) % 64`. Ids
/// that arrive mostly in order (a queue's, a log's offsets) cost about two
/// bits each and stay in cache; scattered ids cost 16 bytes each.
#[derive(Default)]
struct DoneSet {
    shards: [Padded<Mutex<Words>>; 16],
}

/// 64-id words of one shard, by word index.
type Words = HashMap<u64, u64, BuildHasherDefault<IdHasher>>;

impl DoneSet {
    fn locate(&self, id: u64) -> (std::sync::MutexGuard<'_, Words>, u64, u64) {
        let shard = self.shards[(id % 16) as usize]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (shard, id / 1024, 1u64 << ((id / 16) % 64))
    }

    fn contains(&self, id: u64) -> bool {
        let (shard, word, bit) = self.locate(id);
        shard.get(&word).is_some_and(|w| w & bit != 0)
    }

    fn insert(&self, id: u64) {
        let (mut shard, word, bit) = self.locate(id);
        *shard.entry(word).or_insert(0) |= bit;
    }
}

/// Keeps each shard's lock on its own cache lines (no false sharing
/// between workers).
#[derive(Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// Hashes a `u64` id with one multiply (ids are not adversarial: they come
/// from the source).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = (id ^ (id >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    }
}

/// Items under this mean processing time (µs) have their results batched.
const FAST_US: u64 = 50;
/// How long a batched result may wait for its batch (checked every
/// TIME_EVERY items, so the bound is LINGER + TIME_EVERY × FAST_US).
const LINGER: Duration = Duration::from_millis(1);
/// One item in this many is timed for the processing-time average.
const TIME_EVERY: u64 = 8;

/// A worker's results waiting to be sent together.
struct Batch<X> {
    items: Vec<X>,
    since: Instant,
}

impl<X> Batch<X> {
    fn push(&mut self, item: X) {
        if self.items.is_empty() {
            self.since = Instant::now();
        }
        self.items.push(item);
    }

    /// `false` if the receiver is gone.
    fn flush(&mut self, edge: &EdgeTx<X>) -> bool {
        edge.send_kept(std::mem::take(&mut self.items))
    }
}

#[cfg(test)]
mod tests {
    use super::DoneSet;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        #[test]
        fn the_done_set_holds_exactly_the_ids_inserted(
            scattered in proptest::collection::vec(any::<u64>(), 0..100),
            start in any::<u64>(),
            run in 0u64..3000,
        ) {
            let set = DoneSet::default();
            let mut model = HashSet::new();
            let dense = (0..run).map(|i| start.wrapping_add(i * 3));
            for id in scattered.iter().copied().chain(dense) {
                set.insert(id);
                model.insert(id);
            }
            // Every id inserted, and its neighbours in the bitmap layout.
            for &id in &model {
                for probe in [id, id ^ 1, id.wrapping_add(16), id.wrapping_sub(16), id ^ 1024, !id] {
                    prop_assert_eq!(set.contains(probe), model.contains(&probe), "id {}", probe);
                }
            }
        }
    }
}
