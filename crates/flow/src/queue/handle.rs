//! The running queue: its output, its dead letters and its control.

use std::sync::{Arc, Mutex};

use super::stop::Stop;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{DeadLetter, Status};
use crate::{Flow, FlowError};

/// A work queue (the book's work-queue pattern): workers take items from a
/// [`Source`](super::Source), process them with bounded in-flight work, retry transient
/// failures with backoff, dead-letter permanent ones and exhausted retries,
/// never process an acknowledged item twice, and scale the number of
/// workers to the arrival rate.
///
/// A worker that panics fails that item (dead-lettered), not the queue.
/// Outputs and dead letters are flows, so one queue's output can feed the
/// next queue (multi-stage pipelines).
///
/// [`WorkQueue::spawn`] starts a queue and returns it running: its output,
/// its dead letters and its control. The fields are public so that they can
/// be taken apart:
///
/// ```
/// use std::sync::Arc;
/// use weft_flow::queue::{Autoscaler, MemorySource, QueueConfig, WorkQueue};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let source = Arc::new(MemorySource::from_items(1..=3u64));
/// let worker = |x: u64| async move { Ok::<_, std::io::Error>(x * 10) };
/// let config = QueueConfig::new(Autoscaler::new(1, 2, 0.8, 2)?, 4)?;
/// let WorkQueue { output, dead_letters, control } = WorkQueue::spawn(source, worker, config);
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
pub struct WorkQueue<O, T, I = u64> {
    /// `(item id, output)` for each item processed.
    pub output: Flow<(I, O)>,
    /// Items that failed for good.
    pub dead_letters: Flow<DeadLetter<T, I>>,
    /// The status, drain, cancel and wait.
    pub control: Control<I>,
}

/// Everything a queue produced, from [`WorkQueue::collect_all`].
#[derive(Debug)]
pub struct Collected<O, T, I = u64> {
    /// `(item id, output)` for each item processed.
    pub output: Vec<(I, O)>,
    /// Items that failed for good.
    pub dead_letters: Vec<DeadLetter<T, I>>,
    /// The final status.
    pub status: Status,
    /// Ids whose result was discarded (see [`Control::discarded_ids`]).
    pub discarded: Vec<I>,
}

impl<O: Send + 'static, T: Send + 'static, I: Send + 'static> WorkQueue<O, T, I> {
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
    pub async fn collect_all(self) -> Result<Collected<O, T, I>, FlowError> {
        let WorkQueue {
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

pub(super) fn lock_ids<I>(ids: &Mutex<Vec<I>>) -> std::sync::MutexGuard<'_, Vec<I>> {
    ids.lock().unwrap_or_else(|e| e.into_inner())
}

/// Controls a running queue: its status, graceful drain, cancellation,
/// and waiting for its end.
#[derive(Debug)]
pub struct Control<I = u64> {
    pub(super) status: watch::Receiver<Status>,
    pub(super) drain: Stop,
    pub(super) cancel: Stop,
    pub(super) handle: JoinHandle<()>,
    pub(super) discarded: Arc<Mutex<Vec<I>>>,
}

impl<I> Control<I> {
    /// Takes the ids whose result was discarded since the last call: the
    /// source refused their acknowledgement (the claim was lost, e.g. a
    /// lease that expired while this process was paused), so another taker
    /// owns them and this queue's result for them was not sent. Side
    /// effects the worker had outside the queue for these ids happened
    /// once more; reconcile them by id. At most [`MAX_DISCARDED_IDS`] are
    /// kept between calls (the oldest first); [`Status::discarded`] counts
    /// every one.
    pub fn discarded_ids(&self) -> Vec<I> {
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
        self.drain.raise();
    }

    /// Stops at once: items being processed are returned to the source
    /// (nack), to be processed by a later queue. Nothing is lost.
    pub fn cancel(&self) {
        self.drain.raise();
        self.cancel.raise();
    }

    /// Waits until every worker has stopped (the source is drained, or
    /// after [`drain`](Control::drain) / [`cancel`](Control::cancel)).
    /// Read the output meanwhile: a full output holds the workers.
    ///
    /// # Errors
    ///
    /// [`FlowError::Upstream`] if the manager task panicked.
    ///
    /// # Cancel safety
    ///
    /// The control is consumed: dropping the future leaves the queue
    /// running on its own (its workers finish as they would) with no way to
    /// drain, cancel or wait for it. Call [`drain`](Control::drain) or
    /// [`cancel`](Control::cancel) first to stop it.
    pub async fn wait(self) -> Result<Status, FlowError> {
        let status = self.status.clone();
        self.handle.await.map_err(crate::error::task_failed)?;
        let s = status.borrow().clone();
        Ok(s)
    }
}
