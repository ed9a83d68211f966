//! Where work items come from.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;

/// A work item: an id unique within its source, and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<T> {
    /// The id; acknowledged ids are never processed again.
    pub id: u64,
    /// The work.
    pub payload: T,
}

/// A source of work items with acknowledgement.
///
/// # Implementing Source
///
/// `next` hands out each unacknowledged item to one taker at a time; an
/// item that is `nack`ed becomes available again; `next` returns `None`
/// only when the source is closed and every item was handed out. `ack` is
/// final: the item is never handed out again.
pub trait Source<T>: Send + Sync {
    /// The next item, waiting while none is available; `None` when the
    /// source is closed and drained.
    fn next(&self) -> impl Future<Output = Option<Item<T>>> + Send;
    /// Marks an item done.
    fn ack(&self, id: u64) -> impl Future<Output = ()> + Send;
    /// Returns an item to the source, to be handed out again.
    fn nack(&self, item: Item<T>) -> impl Future<Output = ()> + Send;
    /// Items pushed so far (for the autoscaler's arrival rate).
    fn arrived(&self) -> u64;
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
        let s = MemorySource::new();
        for item in items {
            s.push(item);
        }
        s.close();
        s
    }

    /// Adds an item; returns its id.
    pub fn push(&self, payload: T) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push_back(Item { id, payload });
        self.arrived.fetch_add(1, Ordering::Relaxed);
        self.ready.notify_one();
        id
    }

    /// No more items will be pushed.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.ready.notify_waiters();
    }

    /// Items waiting to be handed out.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Item<T>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Send> Source<T> for MemorySource<T> {
    async fn next(&self) -> Option<Item<T>> {
        loop {
            let ready = self.ready.notified();
            if let Some(item) = self.lock().pop_front() {
                self.in_hand.fetch_add(1, Ordering::AcqRel);
                return Some(item);
            }
            // Closed, empty, and nothing in hand that could be nacked back.
            if self.closed.load(Ordering::Acquire) && self.in_hand.load(Ordering::Acquire) == 0 {
                self.ready.notify_waiters();
                return None;
            }
            ready.await;
        }
    }

    async fn ack(&self, _id: u64) {
        if self.in_hand.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.ready.notify_waiters();
        }
    }

    async fn nack(&self, item: Item<T>) {
        self.lock().push_back(item);
        self.in_hand.fetch_sub(1, Ordering::AcqRel);
        self.ready.notify_one();
    }

    fn arrived(&self) -> u64 {
        self.arrived.load(Ordering::Relaxed)
    }
}
