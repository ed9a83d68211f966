//! A bounded edge between stages: batches of items, capacity counted in
//! items.

use std::sync::Arc;

use tokio::sync::{Semaphore, SemaphorePermit, TryAcquireError, mpsc};

use crate::FlowError;
use crate::stall::Stall;

/// Reads how many items an edge holds.
#[derive(Clone)]
pub(crate) struct Probe {
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) capacity: usize,
}

/// What travels on an edge: a batch of items, or the failure that ended
/// the stream. Completion is the edge closing.
pub(crate) type Msg<T> = Result<Vec<T>, FlowError>;

/// The sending side. Sending waits while the edge holds `capacity` items.
#[derive(Debug)]
pub(crate) struct EdgeTx<T> {
    tx: mpsc::UnboundedSender<Msg<T>>,
    permits: Arc<Semaphore>,
    capacity: usize,
    stall: Arc<Stall>,
}

impl<T> Clone for EdgeTx<T> {
    fn clone(&self) -> Self {
        EdgeTx {
            tx: self.tx.clone(),
            permits: self.permits.clone(),
            capacity: self.capacity,
            stall: self.stall.clone(),
        }
    }
}

/// Room for one item on an edge, taken before the item exists so that
/// sending it cannot wait.
#[derive(Debug)]
pub(crate) struct Slot<'a, T> {
    tx: &'a EdgeTx<T>,
    permit: tokio::sync::SemaphorePermit<'a>,
}

impl<T> Slot<'_, T> {
    /// Keeps the room for an item the caller buffers and sends later with
    /// [`EdgeTx::send_kept`].
    pub(crate) fn keep(self) {
        self.permit.forget();
    }

    /// Sends `item` into the reserved room; `false` if the receiver is gone.
    pub(crate) fn send(self, item: T) -> bool {
        // The receiver returns the permit when it takes the item.
        self.permit.forget();
        self.tx.tx.send(Ok(vec![item])).is_ok()
    }
}

/// The receiving side.
#[derive(Debug)]
pub(crate) struct EdgeRx<T> {
    rx: mpsc::UnboundedReceiver<Msg<T>>,
    permits: Arc<Semaphore>,
    capacity: usize,
}

/// A bounded edge holding at most `capacity` items (at least 1).
pub(crate) fn edge<T>(capacity: usize) -> (EdgeTx<T>, EdgeRx<T>) {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::unbounded_channel();
    let permits = Arc::new(Semaphore::new(capacity));
    (
        EdgeTx {
            tx,
            permits: permits.clone(),
            capacity,
            stall: Stall::new(capacity),
        },
        EdgeRx {
            rx,
            permits,
            capacity,
        },
    )
}

impl<T> EdgeTx<T> {
    /// Sends `batch`, waiting for room; a batch larger than the capacity is
    /// sent in capacity-sized parts. `false` if the receiver is gone.
    pub(crate) async fn send(&self, mut batch: Vec<T>) -> bool {
        while !batch.is_empty() {
            let rest = if batch.len() > self.capacity {
                batch.split_off(self.capacity)
            } else {
                Vec::new()
            };
            // invariant: a batch is at most the capacity, at most 2³⁰.
            let n = u32::try_from(batch.len()).unwrap_or(u32::MAX);
            let permit = match self.permits.try_acquire_many(n) {
                Ok(permit) => permit,
                Err(TryAcquireError::Closed) => return false,
                Err(TryAcquireError::NoPermits) => match self.wait_for_room(n).await {
                    Some(permit) => permit,
                    None => return false,
                },
            };
            // The receiver returns the permits when it takes the batch.
            permit.forget();
            if self.tx.send(Ok(batch)).is_err() {
                return false;
            }
            batch = rest;
        }
        true
    }

    /// Waits for room for `n` items: the slow path of a send, watched
    /// by the stall watchdog.
    async fn wait_for_room(&self, n: u32) -> Option<SemaphorePermit<'_>> {
        // Cleared when the wait ends, or when the send is dropped waiting.
        let _waiting = self.stall.waiting();
        self.permits.acquire_many(n).await.ok()
    }

    /// Waits for room for one item; `None` if the receiver is gone. The
    /// room is given back if the slot is dropped unused.
    pub(crate) async fn reserve(&self) -> Option<Slot<'_, T>> {
        let permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return None,
            Err(TryAcquireError::NoPermits) => self.wait_for_room(1).await?,
        };
        Some(Slot { tx: self, permit })
    }

    /// Room for one item if there is some now.
    pub(crate) fn try_reserve(&self) -> Option<Slot<'_, T>> {
        let permit = self.permits.try_acquire().ok()?;
        Some(Slot { tx: self, permit })
    }

    /// Sends items whose room was taken with [`Slot::keep`]; `false` if the
    /// receiver is gone.
    pub(crate) fn send_kept(&self, batch: Vec<T>) -> bool {
        batch.is_empty() || self.tx.send(Ok(batch)).is_ok()
    }

    /// Sends a failure downstream.
    pub(crate) fn fail(&self, error: FlowError) {
        let _ = self.tx.send(Err(error));
    }

    /// Whether the receiver is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl<T> EdgeRx<T> {
    /// The next message; `None` when every sender is gone (completion).
    pub(crate) async fn recv(&mut self) -> Option<Msg<T>> {
        let msg = self.rx.recv().await?;
        if let Ok(batch) = &msg {
            self.permits.add_permits(batch.len());
        }
        Some(msg)
    }

    /// A reader of how many items this edge holds.
    pub(crate) fn probe(&self) -> Probe {
        Probe {
            permits: self.permits.clone(),
            capacity: self.capacity,
        }
    }
}

impl<T> Drop for EdgeRx<T> {
    fn drop(&mut self) {
        // Wake senders waiting for room: they see the edge closed.
        self.permits.close();
    }
}
