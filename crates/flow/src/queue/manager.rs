//! Starting a queue and its manager: the task that scales the workers to
//! the arrival rate and publishes the status.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::stop::Stop;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;

use super::done::DoneSet;
use super::{
    Control, DeadLetter, ItemId, Load, QueueConfig, RetryPolicy, Source, Status, WorkQueue, Worker,
};
use crate::Flow;
use crate::edge::{EdgeTx, edge};

/// What the manager and the workers share.
pub(super) struct Shared<S, W, T>
where
    S: Source<T>,
    W: Worker<T, S::Id>,
{
    pub(super) source: Arc<S>,
    pub(super) worker: Arc<W>,
    pub(super) retry: RetryPolicy,
    pub(super) attempt_timeout: Option<Duration>,
    pub(super) batch: usize,
    pub(super) done: DoneSet<S::Id>,
    /// `None` when the workers can never exceed the bound.
    pub(super) in_flight: Option<Semaphore>,
    pub(super) output: EdgeTx<(S::Id, W::Output)>,
    pub(super) dead: EdgeTx<DeadLetter<T, S::Id>>,
    pub(super) target: AtomicUsize,
    pub(super) active: AtomicUsize,
    pub(super) processing_ewma_us: AtomicU64,
    pub(super) done_count: AtomicU64,
    pub(super) dead_count: AtomicU64,
    pub(super) discarded_count: AtomicU64,
    pub(super) discarded: Arc<Mutex<Vec<S::Id>>>,
    pub(super) drain: Stop,
    pub(super) cancel: Stop,
    /// Wakes idle workers when there are more than the target.
    pub(super) rescaled: Notify,
}

impl<O, T, I> WorkQueue<O, T, I>
where
    O: Send + 'static,
    T: Clone + Send + Sync + 'static,
    I: ItemId,
{
    /// Starts workers over `source` with `worker`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the manager is a task).
    pub fn spawn<S, W>(source: Arc<S>, worker: W, config: QueueConfig) -> Self
    where
        S: Source<T, Id = I> + 'static,
        W: Worker<T, I, Output = O>,
    {
        let (out_tx, out_rx) = edge(config.output);
        let (dead_tx, dead_rx) = edge(config.output);
        let drain = Stop::default();
        let cancel = Stop::default();
        let mut autoscaler = config.autoscaler.clone();
        let shared = Arc::new(Shared {
            source: source.clone(),
            worker: Arc::new(worker),
            retry: config.retry,
            attempt_timeout: config.attempt_timeout,
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
                        && !shared.drain.is_raised()
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
        WorkQueue {
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
