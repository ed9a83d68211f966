//! A bounded edge between stages: batches of items, capacity counted in
//! items.
//!
//! One lock guards everything an edge has: the parcels on it, the count of
//! items it holds, the sends waiting for room and the reader's waker. A
//! send is one lock (room and parcel together) and, when the reader
//! sleeps, one wake-up; a read is one lock, and wakes the first waiting
//! send only when the room it freed is enough for it. (A channel with a
//! semaphore beside it takes each of those twice, in two structures.)

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use crate::batch::Batch;
use crate::stall::{Stall, Waiting};
use crate::{FlowConfig, FlowError};

/// Reads how many items an edge holds.
#[derive(Clone)]
pub(crate) struct Probe(Arc<dyn Held>);

impl Probe {
    /// A probe of anything that holds items for a flow's reader (an edge,
    /// or one output's part of the copier's line).
    pub(crate) fn of(held: Arc<dyn Held>) -> Probe {
        Probe(held)
    }

    /// Items on the edge, and room taken for items about to be sent.
    pub(crate) fn held(&self) -> usize {
        self.0.held()
    }
}

/// What holds items for a reader (an edge, or one output of the copier's
/// line), seen without its item type.
pub(crate) trait Held: Send + Sync {
    fn held(&self) -> usize;
}

/// What a stage reads from an edge or a stream, and what travels on an
/// edge: a batch of items in the form the writer had it (one item, without
/// an allocation; a vector; or a batch shared with other edges, taken
/// apart only by the reader), or the failure that ended the stream, which
/// takes no room. Completion is the end of the stream. The failure is
/// boxed: it is rare, and a small message is cheaper to move through every
/// stage for every batch.
pub(crate) type Msg<T> = Result<Batch<T>, Box<FlowError>>;

/// A message as a batch or the failure itself, for `?`.
pub(crate) fn unbox<T>(m: Msg<T>) -> Result<Batch<T>, FlowError> {
    m.map_err(|e| *e)
}

/// Items a message takes room for.
fn items_of<T>(msg: &Msg<T>) -> usize {
    msg.as_ref().map_or(0, Batch::len)
}

/// The edge itself, shared by its senders and its reader.
struct Chan<T> {
    state: Mutex<State<T>>,
    /// Set (under the lock) when the reader is gone; read without it.
    closed: AtomicBool,
    capacity: usize,
    /// The most single items gathered into one batch.
    batch: usize,
    stall: Arc<Stall>,
}

struct State<T> {
    parcels: VecDeque<Msg<T>>,
    /// Items on the edge, plus room taken for items not sent yet: at most
    /// the capacity.
    held: usize,
    /// Sends waiting for room, first come first served: a send that finds
    /// others waiting waits behind them, so a large batch is not starved
    /// by small ones.
    waiting: VecDeque<Waiter>,
    next_waiter: u64,
    /// The reader, when it waits for a parcel.
    reader: Option<Waker>,
    senders: usize,
}

struct Waiter {
    id: u64,
    need: usize,
    /// Taken when the waiter is woken.
    waker: Option<Waker>,
}

impl<T> State<T> {
    fn free(&self, capacity: usize) -> usize {
        capacity.saturating_sub(self.held)
    }

    /// The first waiting send, if the room now free is enough for it.
    fn wake_first(&mut self, capacity: usize) -> Option<Waker> {
        let free = self.free(capacity);
        let first = self.waiting.front_mut()?;
        if first.need <= free {
            first.waker.take()
        } else {
            None
        }
    }

    /// Gives back room for `n` items; the send to wake, if any.
    fn release(&mut self, n: usize, capacity: usize) -> Option<Waker> {
        self.held = self.held.saturating_sub(n);
        self.wake_first(capacity)
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

impl<T> Chan<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while the lock is held; a poisoned lock's state
        // is whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Room for `n` items now, if no send waits before this one.
    fn try_take(&self, n: usize) -> Take {
        let mut st = self.lock();
        if self.closed.load(Ordering::Relaxed) {
            Take::Closed
        } else if st.waiting.is_empty() && st.free(self.capacity) >= n {
            st.held += n;
            Take::Taken
        } else {
            Take::Full
        }
    }

    /// Sends `msg` into room taken for `taken` items; the room it does not
    /// use is given back. `false` if the reader is gone.
    fn deliver(&self, msg: Msg<T>, taken: usize) -> bool {
        let n = items_of(&msg);
        let mut st = self.lock();
        if self.closed.load(Ordering::Relaxed) {
            drop(st);
            drop(msg);
            return false;
        }
        st.held = (st.held + n).saturating_sub(taken);
        let writer = if n < taken {
            st.wake_first(self.capacity)
        } else {
            None
        };
        st.parcels.push_back(msg);
        let reader = st.reader.take();
        drop(st);
        wake(reader);
        wake(writer);
        true
    }

    /// Gives back room for `n` items taken and not used.
    fn give_back(&self, n: usize) {
        if n > 0 {
            let writer = self.lock().release(n, self.capacity);
            wake(writer);
        }
    }
}

impl<T: Send> Held for Chan<T> {
    fn held(&self) -> usize {
        self.lock().held
    }
}

enum Take {
    Taken,
    Full,
    Closed,
}

/// The sending side. Sending waits while the edge holds `capacity` items.
pub(crate) struct EdgeTx<T> {
    chan: Arc<Chan<T>>,
}

impl<T> std::fmt::Debug for EdgeTx<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeTx")
            .field("capacity", &self.chan.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> Clone for EdgeTx<T> {
    fn clone(&self) -> Self {
        self.chan.lock().senders += 1;
        EdgeTx {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for EdgeTx<T> {
    fn drop(&mut self) {
        let mut st = self.chan.lock();
        st.senders -= 1;
        // The last sender gone completes the stream: the reader sees it
        // once the parcels are read.
        let reader = if st.senders == 0 {
            st.reader.take()
        } else {
            None
        };
        drop(st);
        wake(reader);
    }
}

/// Room taken on an edge and not used yet: given back when dropped.
#[derive(Debug)]
struct Taken<'a, T> {
    tx: &'a EdgeTx<T>,
    n: usize,
}

impl<T> Taken<'_, T> {
    /// Sends `msg` into this room.
    fn deliver(mut self, msg: Msg<T>) -> bool {
        let taken = std::mem::take(&mut self.n);
        self.tx.chan.deliver(msg, taken)
    }
}

impl<T> Drop for Taken<'_, T> {
    fn drop(&mut self) {
        self.tx.chan.give_back(self.n);
    }
}

/// Room for one item on an edge, taken before the item exists so that
/// sending it cannot wait.
#[derive(Debug)]
pub(crate) struct Slot<'a, T>(Taken<'a, T>);

impl<T> Slot<'_, T> {
    /// Sends `item` into the reserved room; `false` if the receiver is gone.
    pub(crate) fn send(self, item: T) -> bool {
        self.0.deliver(Ok(Batch::One(item)))
    }
}

/// Room for up to `n` items on an edge, taken before they are sent.
#[derive(Debug)]
pub(crate) struct Room<'a, T>(Taken<'a, T>);

impl<T> Room<'_, T> {
    /// Sends `items` (at most the room taken) and gives back the room they
    /// do not use; `false` if the receiver is gone.
    pub(crate) fn send(self, items: Vec<T>) -> bool {
        if items.is_empty() {
            // Dropping the room gives it back.
            return true;
        }
        self.0.deliver(Ok(Batch::Owned(items)))
    }
}

/// The receiving side.
pub(crate) struct EdgeRx<T> {
    chan: Arc<Chan<T>>,
}

impl<T> std::fmt::Debug for EdgeRx<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeRx")
            .field("capacity", &self.chan.capacity)
            .finish_non_exhaustive()
    }
}

/// A bounded edge holding at most `config.capacity` items, whose reader
/// gathers single items into batches of up to `config.batch`.
pub(crate) fn edge<T>(config: FlowConfig) -> (EdgeTx<T>, EdgeRx<T>) {
    let capacity = config.capacity.max(1);
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            parcels: VecDeque::new(),
            held: 0,
            waiting: VecDeque::new(),
            next_waiter: 0,
            reader: None,
            senders: 1,
        }),
        closed: AtomicBool::new(false),
        capacity,
        batch: config.batch.max(1),
        stall: Stall::new(capacity),
    });
    (EdgeTx { chan: chan.clone() }, EdgeRx { chan })
}

impl<T> EdgeTx<T> {
    /// Sends a batch as it is, shared or owned, waiting for room; `false`
    /// if the receiver is gone. A batch larger than the capacity is sent in
    /// capacity-sized parts (a shared one is taken apart for that).
    pub(crate) async fn send_batch(&self, batch: Batch<T>) -> bool {
        let capacity = self.chan.capacity;
        let n = batch.len();
        if n == 0 {
            return true;
        }
        if n <= capacity {
            // The wait's first look is the fast path: room now, no wait.
            return self.wait(n, Some(Ok(batch))).await.is_some();
        }
        for part in batch.parts(capacity) {
            let n = part.len();
            if self.wait(n, Some(Ok(Batch::Owned(part)))).await.is_none() {
                return false;
            }
        }
        true
    }

    /// Sends `items`, waiting for room: [`send_batch`](EdgeTx::send_batch)
    /// of a vector.
    pub(crate) fn send(&self, items: Vec<T>) -> impl Future<Output = bool> + '_ {
        self.send_batch(Batch::Owned(items))
    }

    /// Sends one item, waiting for room; `false` if the receiver is gone.
    pub(crate) async fn send_one(&self, item: T) -> bool {
        // One item always fits: no parts.
        self.wait(1, Some(Ok(Batch::One(item)))).await.is_some()
    }

    /// Room for `n` items (at most the capacity), at once if there is
    /// some, else waiting for it; `None` if the receiver is gone.
    async fn room(&self, n: usize) -> Option<Taken<'_, T>> {
        let n = n.min(self.chan.capacity);
        match self.chan.try_take(n) {
            Take::Taken => Some(Taken { tx: self, n }),
            Take::Closed => None,
            Take::Full => {
                let n = self.wait(n, None).await?;
                Some(Taken { tx: self, n })
            }
        }
    }

    /// Room for `n` items (at most the capacity), with `parcel` sent into
    /// it under the same lock if there is one: at once if there is room
    /// and no send waits before this one, else in line, watched by the
    /// stall watchdog from the moment it has to wait. The room taken (and
    /// not filled), or `None` if the receiver is gone.
    fn wait(&self, n: usize, parcel: Option<Msg<T>>) -> WaitForRoom<'_, T> {
        WaitForRoom {
            chan: &self.chan,
            need: n.min(self.chan.capacity),
            id: None,
            parcel,
            stalled: None,
        }
    }

    /// Waits for room for one item; `None` if the receiver is gone. The
    /// room is given back if the slot is dropped unused.
    pub(crate) async fn reserve(&self) -> Option<Slot<'_, T>> {
        self.room(1).await.map(Slot)
    }

    /// Waits for room for `n` items (at most the capacity); `None` if the
    /// receiver is gone. The room is given back if it is dropped unused.
    pub(crate) async fn reserve_many(&self, n: usize) -> Option<Room<'_, T>> {
        self.room(n).await.map(Room)
    }

    /// Room for one item if there is some now.
    pub(crate) fn try_reserve(&self) -> Option<Slot<'_, T>> {
        match self.chan.try_take(1) {
            Take::Taken => Some(Slot(Taken { tx: self, n: 1 })),
            Take::Full | Take::Closed => None,
        }
    }

    /// Sends a failure downstream (it takes no room).
    pub(crate) fn fail(&self, error: Box<FlowError>) {
        self.chan.deliver(Err(error), 0);
    }

    /// Whether the receiver is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.chan.closed.load(Ordering::Acquire)
    }
}

/// A send waiting for room, in line behind the sends that waited before
/// it. Dropped while waiting, it leaves the line (and passes a wake-up it
/// was given on to the next in line).
struct WaitForRoom<'a, T> {
    chan: &'a Chan<T>,
    need: usize,
    /// Its place in the line, once it has one.
    id: Option<u64>,
    /// What to send into the room, under the same lock that takes it.
    parcel: Option<Msg<T>>,
    /// The stall watchdog's view of the wait, from its first `Pending`
    /// until it is dropped.
    stalled: Option<Waiting<'a>>,
}

/// The parcel is moved out, never polled in place.
impl<T> Unpin for WaitForRoom<'_, T> {}

impl<T> Future for WaitForRoom<'_, T> {
    /// The room taken and not filled by the parcel (0 with one), or `None`
    /// if the reader is gone.
    type Output = Option<usize>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<usize>> {
        let chan = self.chan;
        let mut st = chan.lock();
        if chan.closed.load(Ordering::Relaxed) {
            if let Some(id) = self.id.take() {
                st.waiting.retain(|w| w.id != id);
            }
            return Poll::Ready(None);
        }
        let first = match self.id {
            None => st.waiting.is_empty(),
            Some(id) => st.waiting.front().is_some_and(|w| w.id == id),
        };
        if first && st.free(chan.capacity) >= self.need {
            st.held += self.need;
            if self.id.take().is_some() {
                st.waiting.pop_front();
            }
            // Room may be left for the next in line.
            let next = st.wake_first(chan.capacity);
            let (unfilled, reader) = match self.parcel.take() {
                Some(parcel) => {
                    st.parcels.push_back(parcel);
                    (0, st.reader.take())
                }
                None => (self.need, None),
            };
            drop(st);
            wake(reader);
            wake(next);
            return Poll::Ready(Some(unfilled));
        }
        match self.id {
            Some(id) => {
                if let Some(w) = st.waiting.iter_mut().find(|w| w.id == id) {
                    match &w.waker {
                        Some(waker) if waker.will_wake(cx.waker()) => {}
                        _ => w.waker = Some(cx.waker().clone()),
                    }
                }
            }
            None => {
                self.stalled = Some(chan.stall.waiting());
                let id = st.next_waiter;
                st.next_waiter += 1;
                st.waiting.push_back(Waiter {
                    id,
                    need: self.need,
                    waker: Some(cx.waker().clone()),
                });
                self.id = Some(id);
            }
        }
        Poll::Pending
    }
}

impl<T> Drop for WaitForRoom<'_, T> {
    fn drop(&mut self) {
        let Some(id) = self.id else {
            return;
        };
        let mut st = self.chan.lock();
        let was_first = st.waiting.front().is_some_and(|w| w.id == id);
        st.waiting.retain(|w| w.id != id);
        let next = if was_first {
            st.wake_first(self.chan.capacity)
        } else {
            None
        };
        drop(st);
        wake(next);
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
        // A reader that always finds parcels still yields to the other
        // tasks of its thread now and then, as tokio's own channels do.
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        let chan = &*self.chan;
        let mut st = chan.lock();
        let Some(first) = st.parcels.pop_front() else {
            if st.senders == 0 {
                coop.made_progress();
                return Poll::Ready(None);
            }
            match &st.reader {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => st.reader = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        };
        let items = match first {
            Err(e) => {
                drop(st);
                coop.made_progress();
                return Poll::Ready(Some(Err(e)));
            }
            Ok(Batch::One(item)) => {
                let more = if chan.batch == 1 {
                    0
                } else {
                    st.parcels
                        .iter()
                        .take(chan.batch - 1)
                        .take_while(|w| matches!(w, Ok(Batch::One(_))))
                        .count()
                };
                if more == 0 {
                    // Alone on the edge: read alone, without an allocation.
                    Batch::One(item)
                } else {
                    let mut items = Vec::with_capacity(more + 1);
                    items.push(item);
                    for msg in st.parcels.drain(..more) {
                        if let Ok(Batch::One(item)) = msg {
                            items.push(item);
                        }
                    }
                    Batch::Owned(items)
                }
            }
            Ok(batch) => batch,
        };
        let writer = st.release(items.len(), chan.capacity);
        drop(st);
        wake(writer);
        coop.made_progress();
        Poll::Ready(Some(Ok(items)))
    }
}

impl<T: Send + 'static> EdgeRx<T> {
    /// A reader of how many items this edge holds.
    pub(crate) fn probe(&self) -> Probe {
        Probe(self.chan.clone())
    }
}

/// Nothing in an edge's reader is pinned.
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
        // Senders see the edge closed, and those waiting for room wake to
        // see it; what was on the edge is dropped outside the lock.
        let mut st = self.chan.lock();
        self.chan.closed.store(true, Ordering::Release);
        let parcels = std::mem::take(&mut st.parcels);
        st.held = 0;
        let writers: Vec<Waker> = st
            .waiting
            .iter_mut()
            .filter_map(|w| w.waker.take())
            .collect();
        st.reader = None;
        drop(st);
        for waker in writers {
            waker.wake();
        }
        drop(parcels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Flag, poll_with};
    use proptest::prelude::*;

    fn config(capacity: usize, batch: usize) -> FlowConfig {
        FlowConfig::new(capacity, batch).expect("a valid configuration")
    }

    type Send<'a> = Pin<Box<dyn Future<Output = bool> + 'a>>;

    /// A send in progress, with the waker it was polled with.
    struct Pending<'a> {
        send: Send<'a>,
        flag: Arc<Flag>,
        need: usize,
        items: Vec<u64>,
    }

    /// Takes a finished send's items, checking that no send that began
    /// before it is still waiting (first come, first served).
    fn finish(
        pending: &mut Vec<Pending<'_>>,
        i: usize,
        sent: &mut Vec<u64>,
    ) -> Result<(), TestCaseError> {
        let done = pending.remove(i);
        prop_assert!(
            pending.iter().all(|p| p.items[0] > done.items[0]),
            "a send finished before one that began waiting earlier"
        );
        sent.extend(done.items);
        Ok(())
    }

    fn poll_send(p: &mut Pending<'_>) -> Poll<bool> {
        let flag = p.flag.clone();
        poll_with(&flag, |cx| p.send.as_mut().poll(cx))
    }

    fn read(rx: &mut EdgeRx<u64>, flag: &Arc<Flag>) -> Poll<Option<Msg<u64>>> {
        poll_with(flag, |cx| rx.poll_recv(cx))
    }

    #[derive(Debug, Clone)]
    enum Op {
        Send(usize),
        SendOne,
        Read,
        Drop(usize),
    }

    fn op(capacity: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            (1..=capacity).prop_map(Op::Send),
            Just(Op::SendOne),
            Just(Op::Read),
            Just(Op::Read),
            any::<usize>().prop_map(Op::Drop),
        ]
    }

    proptest! {
        /// Against a model: the edge never holds more than its capacity,
        /// a send is never left waiting while the first in line fits (no
        /// lost wake-up, also when a woken send is dropped), items come out
        /// once each in the order their sends completed, and a dropped
        /// send sent nothing.
        #[test]
        fn room_is_first_come_first_served_and_no_wake_up_is_lost(
            (capacity, batch, ops) in (1usize..8).prop_flat_map(|c| {
                (Just(c), 1..=c, proptest::collection::vec(op(c), 1..120))
            })
        ) {
            let (tx, mut rx) = edge::<u64>(config(capacity, batch));
            let probe = Probe(rx.chan.clone());
            let reader = Arc::new(Flag::default());
            let mut next = 0u64;
            let mut pending: Vec<Pending<'_>> = Vec::new();
            let mut sent: Vec<u64> = Vec::new();
            let mut got: Vec<u64> = Vec::new();
            for op in ops {
                match op {
                    Op::Send(k) => {
                        let items: Vec<u64> = (next..next + k as u64).collect();
                        next += k as u64;
                        pending.push(Pending {
                            send: Box::pin(tx.send(items.clone())),
                            flag: Arc::new(Flag::default()),
                            need: k,
                            items,
                        });
                        let last = pending.len() - 1;
                        if let Poll::Ready(ok) = poll_send(&mut pending[last]) {
                            prop_assert!(ok);
                            finish(&mut pending, last, &mut sent)?;
                        }
                    }
                    Op::SendOne => {
                        let item = next;
                        next += 1;
                        pending.push(Pending {
                            send: Box::pin(tx.send_one(item)),
                            flag: Arc::new(Flag::default()),
                            need: 1,
                            items: vec![item],
                        });
                        let last = pending.len() - 1;
                        if let Poll::Ready(ok) = poll_send(&mut pending[last]) {
                            prop_assert!(ok);
                            finish(&mut pending, last, &mut sent)?;
                        }
                    }
                    Op::Read => {
                        if let Poll::Ready(Some(Ok(batch))) = read(&mut rx, &reader) {
                            prop_assert!(batch.len() <= capacity);
                            got.extend(batch.into_vec());
                        }
                    }
                    Op::Drop(i) => {
                        if !pending.is_empty() {
                            let i = i % pending.len();
                            drop(pending.remove(i));
                        }
                    }
                }
                // Run what was woken, as an executor would, until nothing is.
                while let Some(i) = pending.iter().position(|p| p.flag.take()) {
                    if let Poll::Ready(ok) = poll_send(&mut pending[i]) {
                        prop_assert!(ok);
                        finish(&mut pending, i, &mut sent)?;
                    }
                }
                let held = probe.held();
                prop_assert!(held <= capacity, "holds {} of {}", held, capacity);
                if let Some(first) = pending.first() {
                    prop_assert!(
                        capacity - held < first.need,
                        "the first waiting send (of {}) fits in {} free and was not woken",
                        first.need,
                        capacity - held
                    );
                }
            }
            drop(pending);
            drop(tx);
            while let Poll::Ready(Some(m)) = read(&mut rx, &reader) {
                got.extend(m.expect("no failure was sent").into_vec());
            }
            prop_assert_eq!(got, sent);
            prop_assert_eq!(probe.held(), 0);
        }
    }

    #[test]
    fn a_dropped_reader_wakes_every_waiting_send_and_refuses_the_rest() {
        let (tx, rx) = edge::<u64>(config(2, 2));
        let flags: Vec<Arc<Flag>> = (0..3).map(|_| Arc::new(Flag::default())).collect();
        let mut sends: Vec<Pending<'_>> = flags
            .iter()
            .map(|flag| Pending {
                send: Box::pin(tx.send(vec![1, 2])),
                flag: flag.clone(),
                need: 2,
                items: vec![1, 2],
            })
            .collect();
        let polled: Vec<Poll<bool>> = sends.iter_mut().map(poll_send).collect();
        assert_eq!(polled, [Poll::Ready(true), Poll::Pending, Poll::Pending]);
        drop(rx);
        for (i, send) in sends.iter_mut().enumerate().skip(1) {
            assert!(send.flag.take(), "waiting send {i} was not woken");
            assert_eq!(poll_send(send), Poll::Ready(false), "send {i}");
        }
        assert!(tx.is_closed());
        assert!(tx.try_reserve().is_none());
        assert_eq!(
            futures::FutureExt::now_or_never(tx.send_one(3)),
            Some(false)
        );
    }

    #[test]
    fn only_a_send_that_waits_is_watched_for_a_stall() {
        let (tx, mut rx) = edge::<u64>(config(2, 2));
        let stall = tx.chan.stall.clone();
        let mut fits = Pending {
            send: Box::pin(tx.send(vec![1, 2])),
            flag: Arc::new(Flag::default()),
            need: 2,
            items: vec![1, 2],
        };
        assert_eq!(poll_send(&mut fits), Poll::Ready(true));
        assert!(!stall.is_waiting(), "a send that found room is not watched");
        let mut waits = Pending {
            send: Box::pin(tx.send_one(3)),
            flag: Arc::new(Flag::default()),
            need: 1,
            items: vec![3],
        };
        assert_eq!(poll_send(&mut waits), Poll::Pending);
        assert!(stall.is_waiting(), "a send waiting for room is watched");
        let reader = Arc::new(Flag::default());
        assert!(matches!(read(&mut rx, &reader), Poll::Ready(Some(Ok(_)))));
        assert!(waits.flag.take(), "the read woke the waiting send");
        assert_eq!(poll_send(&mut waits), Poll::Ready(true));
        drop(waits);
        assert!(!stall.is_waiting(), "a finished wait is not watched");
        let mut dropped = Pending {
            send: Box::pin(tx.send(vec![4, 5])),
            flag: Arc::new(Flag::default()),
            need: 2,
            items: vec![4, 5],
        };
        assert_eq!(poll_send(&mut dropped), Poll::Pending);
        assert!(stall.is_waiting());
        drop(dropped);
        assert!(!stall.is_waiting(), "a send dropped waiting is not watched");
    }

    #[test]
    fn room_taken_is_given_back_when_unused_or_dropped() {
        let (tx, rx) = edge::<u64>(config(4, 4));
        let probe = rx.probe();
        let room = futures::FutureExt::now_or_never(tx.reserve_many(10))
            .flatten()
            .expect("room on an empty edge");
        assert_eq!(
            probe.held(),
            4,
            "a request above the capacity takes the capacity"
        );
        assert!(tx.try_reserve().is_none(), "the edge is full");
        assert!(room.send(vec![7]));
        assert_eq!(probe.held(), 1, "the room not filled is given back");
        let slot = tx.try_reserve().expect("room for one");
        assert_eq!(probe.held(), 2);
        drop(slot);
        assert_eq!(probe.held(), 1, "a dropped slot gives its room back");
        let empty = futures::FutureExt::now_or_never(tx.reserve_many(3))
            .flatten()
            .expect("room for three");
        assert!(empty.send(Vec::new()));
        assert_eq!(probe.held(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_senders_on_two_threads_lose_and_repeat_nothing() {
        use futures::StreamExt;
        const SENDERS: u64 = 4;
        const EACH: u64 = 20_000;
        let (tx, mut rx) = edge::<u64>(config(64, 16));
        for s in 0..SENDERS {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut i = 0;
                while i < EACH {
                    // One at a time, and batches of 1 to 100 (some larger
                    // than the edge, sent in parts).
                    let k = (i * 7 + s) % 101;
                    if k == 0 {
                        assert!(tx.send_one(s * EACH + i).await);
                        i += 1;
                    } else {
                        let end = (i + k).min(EACH);
                        assert!(tx.send((s * EACH + i..s * EACH + end).collect()).await);
                        i = end;
                    }
                }
            });
        }
        drop(tx);
        let mut next = [0u64; SENDERS as usize];
        let mut total = 0;
        while let Some(m) = rx.next().await {
            for item in m.expect("no failure").into_vec() {
                let s = (item / EACH) as usize;
                assert_eq!(item, s as u64 * EACH + next[s], "sender {s} out of order");
                next[s] += 1;
                total += 1;
            }
        }
        assert_eq!(total, SENDERS * EACH);
    }
}
