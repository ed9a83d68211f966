//! A bounded edge between stages: batches of items, capacity counted in
//! items.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{Semaphore, SemaphorePermit, TryAcquireError, mpsc};

use crate::batch::{Batch, Shared};
use crate::stall::Stall;
use crate::{FlowConfig, FlowError};

/// Reads how many items an edge holds.
#[derive(Clone)]
pub(crate) struct Probe {
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) capacity: usize,
}

/// What a stage reads from an edge or a stream: a batch of items, or the
/// failure that ended the stream. Completion is the end of the stream.
pub(crate) type Msg<T> = Result<Batch<T>, FlowError>;

/// What travels on an edge, in the form the writer had it: one item (no
/// allocation), a batch, or a batch shared with other edges, taken apart
/// only by the reader.
enum Parcel<T> {
    One(T),
    Batch(Vec<T>),
    Shared(Arc<dyn Shared<T>>),
}

impl<T> Parcel<T> {
    fn len(&self) -> usize {
        match self {
            Parcel::One(_) => 1,
            Parcel::Batch(items) => items.len(),
            Parcel::Shared(items) => items.len(),
        }
    }
}

/// A parcel, or the failure that ended the stream (boxed: it is rare, and
/// a small message is cheaper to move for every item).
type Wire<T> = Result<Parcel<T>, Box<FlowError>>;

/// The sending side. Sending waits while the edge holds `capacity` items.
#[derive(Debug)]
pub(crate) struct EdgeTx<T> {
    tx: mpsc::UnboundedSender<Wire<T>>,
    permits: Arc<Semaphore>,
    capacity: usize,
    stall: Arc<Stall>,
}

impl<T> std::fmt::Debug for Parcel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Parcel({} items)", self.len())
    }
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
    /// Sends `item` into the reserved room; `false` if the receiver is gone.
    pub(crate) fn send(self, item: T) -> bool {
        // The receiver returns the permit when it takes the item.
        self.permit.forget();
        self.tx.tx.send(Ok(Parcel::One(item))).is_ok()
    }
}

/// Room for up to `n` items on an edge, taken before they are sent.
#[derive(Debug)]
pub(crate) struct Room<'a, T> {
    tx: &'a EdgeTx<T>,
    permit: SemaphorePermit<'a>,
}

impl<T> Room<'_, T> {
    /// Sends `items` (at most the room taken) and gives back the room they
    /// do not use; `false` if the receiver is gone.
    pub(crate) fn send(mut self, items: Vec<T>) -> bool {
        let unused = self.permit.num_permits().saturating_sub(items.len());
        drop(self.permit.split(unused));
        // The receiver returns the rest when it takes the items.
        self.permit.forget();
        items.is_empty() || self.tx.tx.send(Ok(Parcel::Batch(items))).is_ok()
    }
}

/// The receiving side.
#[derive(Debug)]
pub(crate) struct EdgeRx<T> {
    rx: mpsc::UnboundedReceiver<Wire<T>>,
    permits: Arc<Semaphore>,
    capacity: usize,
    /// The most single items gathered into one batch.
    batch: usize,
    /// A parcel met while gathering single items, to be read next.
    held: Option<Wire<T>>,
}

/// A bounded edge holding at most `config.capacity` items, whose reader
/// gathers single items into batches of up to `config.batch`.
pub(crate) fn edge<T>(config: FlowConfig) -> (EdgeTx<T>, EdgeRx<T>) {
    let capacity = config.capacity.max(1);
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
            batch: config.batch.max(1),
            held: None,
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
            let Some(permit) = self.room(batch.len()).await else {
                return false;
            };
            // The receiver returns the permits when it takes the batch.
            permit.forget();
            if self.tx.send(Ok(Parcel::Batch(batch))).is_err() {
                return false;
            }
            batch = rest;
        }
        true
    }

    /// Sends a batch as it is, shared or owned, waiting for room; `false`
    /// if the receiver is gone.
    pub(crate) async fn send_batch(&self, batch: Batch<T>) -> bool {
        match batch {
            Batch::One(item) => self.send_one(item).await,
            Batch::Shared(shared) if shared.len() <= self.capacity => {
                self.send_shared(shared).await
            }
            batch => self.send(batch.into_vec()).await,
        }
    }

    /// Sends one item, waiting for room; `false` if the receiver is gone.
    pub(crate) async fn send_one(&self, item: T) -> bool {
        match self.reserve().await {
            Some(slot) => slot.send(item),
            None => false,
        }
    }

    /// Sends a batch that other edges hold too, waiting for room; `false`
    /// if the receiver is gone. A batch larger than the edge's capacity
    /// cannot travel shared: it is taken apart and sent in parts.
    pub(crate) async fn send_shared(&self, batch: Arc<dyn Shared<T>>) -> bool {
        if batch.len() > self.capacity {
            return self.send(batch.take()).await;
        }
        let Some(permit) = self.room(batch.len()).await else {
            return false;
        };
        // The receiver returns the permits when it takes the batch.
        permit.forget();
        self.tx.send(Ok(Parcel::Shared(batch))).is_ok()
    }

    /// Room for `n` items (at most the capacity), at once if there is
    /// some, else waiting for it; `None` if the receiver is gone.
    async fn room(&self, n: usize) -> Option<SemaphorePermit<'_>> {
        // invariant: `n` is at most the capacity, at most 2³⁰.
        let n = u32::try_from(n.min(self.capacity)).unwrap_or(u32::MAX);
        match self.permits.try_acquire_many(n) {
            Ok(permit) => Some(permit),
            Err(TryAcquireError::Closed) => None,
            Err(TryAcquireError::NoPermits) => self.wait_for_room(n).await,
        }
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
        let permit = self.room(1).await?;
        Some(Slot { tx: self, permit })
    }

    /// Waits for room for `n` items (at most the capacity); `None` if the
    /// receiver is gone. The room is given back if it is dropped unused.
    pub(crate) async fn reserve_many(&self, n: usize) -> Option<Room<'_, T>> {
        let permit = self.room(n).await?;
        Some(Room { tx: self, permit })
    }

    /// Room for one item if there is some now.
    pub(crate) fn try_reserve(&self) -> Option<Slot<'_, T>> {
        let permit = self.permits.try_acquire().ok()?;
        Some(Slot { tx: self, permit })
    }

    /// Sends a failure downstream.
    pub(crate) fn fail(&self, error: FlowError) {
        let _ = self.tx.send(Err(Box::new(error)));
    }

    /// Whether the receiver is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl<T> EdgeRx<T> {
    /// The next message, if one is there; `Ready(None)` when every sender
    /// is gone (completion).
    ///
    /// Single items already waiting are taken together, up to the batch
    /// size, so that items sent one at a time move on as batches; a shared
    /// batch stays shared.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Msg<T>>> {
        let first = match self.held.take() {
            Some(held) => held,
            None => match self.rx.poll_recv(cx) {
                Poll::Ready(Some(first)) => first,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            },
        };
        let items = match first {
            Err(e) => return Poll::Ready(Some(Err(*e))),
            Ok(Parcel::Batch(items)) => Batch::Owned(items),
            Ok(Parcel::Shared(items)) => Batch::Shared(items),
            // Alone on the edge: read alone, without an allocation.
            Ok(Parcel::One(item)) if self.rx.is_empty() || self.batch == 1 => Batch::One(item),
            Ok(Parcel::One(item)) => {
                let mut items = Vec::with_capacity((self.rx.len() + 1).min(self.batch));
                items.push(item);
                while items.len() < self.batch {
                    match self.rx.try_recv() {
                        Ok(Ok(Parcel::One(item))) => items.push(item),
                        Ok(other) => {
                            self.held = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                Batch::Owned(items)
            }
        };
        self.permits.add_permits(items.len());
        Poll::Ready(Some(Ok(items)))
    }

    /// A reader of how many items this edge holds.
    pub(crate) fn probe(&self) -> Probe {
        Probe {
            permits: self.permits.clone(),
            capacity: self.capacity,
        }
    }
}

/// Nothing in an edge's reader is pinned: a held item is moved out, never
/// polled in place.
impl<T> Unpin for EdgeRx<T> {}

/// The reader's side as the stream of a flow.
impl<T> futures::Stream for EdgeRx<T> {
    type Item = Msg<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Msg<T>>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<T> Drop for EdgeRx<T> {
    fn drop(&mut self) {
        // Wake senders waiting for room: they see the edge closed.
        self.permits.close();
    }
}
