//! Where work items come from.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::{Flow, FlowError};

/// A push to a closed [`MemorySource`]: the payload, handed back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the source is closed: no more items are taken")]
pub struct Closed<T>(pub T);

/// A work item: an id unique within its source, and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<T, I = u64> {
    /// The id; acknowledged ids are never processed again.
    pub id: I,
    /// The work.
    pub payload: T,
}

/// The id of an item within its source: a sequence number (`u64`, what
/// [`MemorySource`] gives), a log position of two numbers (a Redis stream
/// entry's `ms-seq`), or whatever names an item where it lives. Each
/// [`Source`] says which; outputs, dead letters and the worker's
/// [`WorkContext`](super::WorkContext) carry it unchanged.
pub trait ItemId:
    Clone + Eq + std::hash::Hash + fmt::Debug + fmt::Display + Send + Sync + 'static
{
    /// A word that identifies the id, spreading retry jitter over items.
    fn seed(&self) -> u64;

    /// The id as a dense integer, for sources that number their items in
    /// order: the queue then records finished ids as bits instead of
    /// entries. `None` (the default) records them in a hash set.
    fn dense(&self) -> Option<u64> {
        None
    }
}

impl ItemId for u64 {
    fn seed(&self) -> u64 {
        *self
    }

    fn dense(&self) -> Option<u64> {
        Some(*self)
    }
}

/// A source of work items with acknowledgement.
///
/// # Implementing Source
///
/// `next` hands out each unacknowledged item to one taker at a time; an
/// item that is `nack`ed becomes available again; `next` returns `None`
/// only when the source is closed and every item was handed out. `ack` is
/// final: the item is never handed out again.
///
/// A source whose claims can lapse (a lease that expired while its holder
/// was paused) must make `ack` the commit point: it returns `true` only if
/// this taker's claim still held when the acknowledgement applied, and
/// `false` if the item may have gone to another taker. The queue sends a
/// result downstream only after `ack` returned `true`, so at most one
/// taker's result for an item ever leaves a queue.
///
/// `next` must be cancel safe: the queue drops its future when it drains,
/// and an item must not be lost with it.
pub trait Source<T>: Send + Sync {
    /// How this source names its items.
    type Id: ItemId;

    /// The next item, waiting while none is available; `None` when the
    /// source is closed and drained.
    ///
    /// # Cancel safety
    ///
    /// Must be cancel safe: an item is taken only when the future
    /// completes, so dropping it loses nothing.
    fn next(&self) -> impl Future<Output = Option<Item<T, Self::Id>>> + Send;
    /// Up to `max` items (at least one if `max` is), waiting while none is
    /// available; empty only when the source is closed and drained. The
    /// queue takes items this way while they are fast to process, so a
    /// source that can hand out several at the cost of one (one lock, one
    /// read) should say so here; the default takes one with
    /// [`next`](Source::next).
    ///
    /// # Cancel safety
    ///
    /// As [`next`](Source::next): items are taken only when the future
    /// completes.
    fn next_batch(&self, max: usize) -> impl Future<Output = Vec<Item<T, Self::Id>>> + Send {
        let _ = max;
        async move { self.next().await.into_iter().collect() }
    }
    /// Marks an item done; `false` if this taker's claim on it was lost
    /// (the result must then be discarded).
    ///
    /// # Cancel safety
    ///
    /// The queue never drops it: it runs to the end once the result has
    /// room downstream. A source whose ack is one remote write (a CAS)
    /// leaves it applied or not if a caller drops it.
    fn ack(&self, id: Self::Id) -> impl Future<Output = bool> + Send;
    /// Marks several items done: one answer per id, in order, each as
    /// [`ack`](Source::ack) would give it (a missing answer counts as
    /// `false`). The queue commits the results of fast items this way, a
    /// batch at a time, so a source that can acknowledge many at the cost
    /// of one (one counter, one round trip) should say so here; the
    /// default acknowledges them one by one.
    ///
    /// # Cancel safety
    ///
    /// As [`ack`](Source::ack): the queue never drops it.
    fn ack_batch(&self, ids: Vec<Self::Id>) -> impl Future<Output = Vec<bool>> + Send {
        async move {
            let mut acked = Vec::with_capacity(ids.len());
            for id in ids {
                acked.push(self.ack(id).await);
            }
            acked
        }
    }
    /// Returns an item to the source, to be handed out again.
    ///
    /// # Cancel safety
    ///
    /// The queue never drops it. A dropped nack that did not apply leaves
    /// the item claimed until its claim lapses (a lease's TTL), never lost.
    fn nack(&self, item: Item<T, Self::Id>) -> impl Future<Output = ()> + Send;
    /// Items pushed so far (for the autoscaler's arrival rate).
    fn arrived(&self) -> u64;
    /// Items waiting to be handed out, if the source knows (the
    /// autoscaler adds workers to clear a backlog).
    fn backlog(&self) -> Option<usize> {
        None
    }
}

/// The in-memory [`Source`]: a queue of items, pushed by hand or from an
/// iterator, closed when no more will come.
#[derive(Debug)]
pub struct MemorySource<T> {
    queue: Mutex<VecDeque<Item<T>>>,
    next_id: AtomicU64,
    arrived: AtomicU64,
    closed: AtomicBool,
    in_hand: AtomicU64,
    ready: Notify,
    taken: Notify,
    /// Set while a feed waits for room; takers notify only then.
    feeding: AtomicBool,
}

impl<T> Default for MemorySource<T> {
    fn default() -> Self {
        MemorySource {
            queue: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
            arrived: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            in_hand: AtomicU64::new(0),
            ready: Notify::new(),
            taken: Notify::new(),
            feeding: AtomicBool::new(false),
        }
    }
}

impl<T> MemorySource<T> {
    /// An empty, open source.
    pub fn new() -> Self {
        MemorySource::default()
    }

    /// A closed source holding `items` (ids 0, 1, …).
    pub fn from_items<I: IntoIterator<Item = T>>(items: I) -> Self {
        let queue: VecDeque<Item<T>> = (0u64..)
            .zip(items)
            .map(|(id, payload)| Item { id, payload })
            .collect();
        let n = queue.len() as u64;
        let s = MemorySource {
            queue: Mutex::new(queue),
            next_id: AtomicU64::new(n),
            arrived: AtomicU64::new(n),
            ..MemorySource::default()
        };
        s.close();
        s
    }

    /// Adds an item; returns its id.
    ///
    /// # Errors
    ///
    /// [`Closed`], holding the payload, once the source is closed: no
    /// taker would ever get the item, so it is handed back rather than
    /// given an id.
    pub fn push(&self, payload: T) -> Result<u64, Closed<T>> {
        // Closing takes the same lock, so a push either lands before the
        // close (and is handed out) or is refused.
        let mut queue = self.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(Closed(payload));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        queue.push_back(Item { id, payload });
        self.arrived.fetch_add(1, Ordering::Relaxed);
        drop(queue);
        self.ready.notify_one();
        Ok(id)
    }

    /// No more items will be pushed; later pushes are refused.
    pub fn close(&self) {
        let queue = self.lock();
        self.closed.store(true, Ordering::Release);
        drop(queue);
        self.ready.notify_waiters();
    }

    /// Whether the source is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Items waiting to be handed out.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Feeds this source from `flow`, so that one queue's output (or any
    /// flow) becomes the next queue's work: the book's multi-stage
    /// pipeline. Pushes every item, waiting while `bound` items are
    /// waiting to be taken (backpressure reaches the flow), and closes the
    /// source when the flow ends, so the next queue drains and stops.
    ///
    /// The handle yields the number of items fed, or the flow's failure;
    /// the source is closed either way, so await the handle to tell a
    /// failed upstream from a finished one.
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] if `bound` is zero.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn feed(
        self: &Arc<Self>,
        flow: Flow<T>,
        bound: usize,
    ) -> Result<JoinHandle<Result<u64, FlowError>>, FlowError>
    where
        T: Send + 'static,
    {
        if bound == 0 {
            return Err(FlowError::invalid(
                "feed bound",
                0,
                "at least 1: no item could ever wait",
            ));
        }
        let source = self.clone();
        let mut batches = flow.stream;
        Ok(tokio::spawn(async move {
            let mut fed = 0u64;
            let result = 'feed: loop {
                match batches.next().await {
                    None => break Ok(fed),
                    Some(Err(e)) => break Err(*e),
                    Some(Ok(batch)) => {
                        for item in batch {
                            loop {
                                // Set before looking, so that a taker that
                                // pops after the look sees it and wakes us.
                                source.feeding.store(true, Ordering::SeqCst);
                                let taken = source.taken.notified();
                                if source.pending() < bound {
                                    break;
                                }
                                taken.await;
                            }
                            if source.push(item).is_err() {
                                break 'feed Err(FlowError::SourceClosed { fed });
                            }
                            fed += 1;
                        }
                    }
                }
            };
            source.close();
            result
        }))
    }

    /// Up to `max` items (at least one), waiting while none is there;
    /// empty when closed, drained and nothing in hand can come back.
    async fn take(&self, max: usize) -> Vec<Item<T>> {
        let max = max.max(1);
        loop {
            let ready = self.ready.notified();
            let (taken, done) = {
                let mut queue = self.lock();
                let n = max.min(queue.len());
                let taken: Vec<Item<T>> = queue.drain(..n).collect();
                // Closed, empty, and nothing in hand that could be nacked
                // back; read under the lock, so no push lands after this.
                let done = taken.is_empty()
                    && self.closed.load(Ordering::Acquire)
                    && self.in_hand.load(Ordering::Acquire) == 0;
                (taken, done)
            };
            if !taken.is_empty() {
                self.in_hand.fetch_add(taken.len() as u64, Ordering::AcqRel);
                self.popped();
                return taken;
            }
            if done {
                self.ready.notify_waiters();
                return taken;
            }
            ready.await;
        }
    }

    /// `n` items in hand are done; the last one wakes takers waiting for
    /// the end.
    fn settled(&self, n: u64) {
        if n > 0 && self.in_hand.fetch_sub(n, Ordering::AcqRel) == n {
            self.ready.notify_waiters();
        }
    }

    fn popped(&self) {
        if self.feeding.load(Ordering::SeqCst) {
            self.taken.notify_waiters();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Item<T>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Send> Source<T> for MemorySource<T> {
    type Id = u64;

    async fn next(&self) -> Option<Item<T>> {
        self.take(1).await.pop()
    }

    async fn next_batch(&self, max: usize) -> Vec<Item<T>> {
        self.take(max).await
    }

    async fn ack(&self, _id: u64) -> bool {
        self.settled(1);
        true
    }

    async fn ack_batch(&self, ids: Vec<u64>) -> Vec<bool> {
        self.settled(ids.len() as u64);
        vec![true; ids.len()]
    }

    async fn nack(&self, item: Item<T>) {
        self.lock().push_back(item);
        self.in_hand.fetch_sub(1, Ordering::AcqRel);
        self.ready.notify_one();
    }

    fn arrived(&self) -> u64 {
        self.arrived.load(Ordering::Relaxed)
    }

    fn backlog(&self) -> Option<usize> {
        Some(self.pending())
    }
}
