//! The copier's edge: one line of shared batches that every output reads
//! at its own place, bounded in items like any edge.
//!
//! A copier with an edge per output takes each of `n` locks and fills
//! each of `n` queues for every batch, and waits for room up to `n` times.
//! Here it takes one lock and places the batch once; each output keeps
//! only its place in the line. A batch leaves the line when every output
//! still read has passed it, so the line holds what the slowest output
//! has not read: the room the copier waits for is the room an edge per
//! output would give it, paced by the slowest output.
//!
//! Every output but the last to pass a batch gets another hold of it (a
//! reference count); the last takes the line's own hold, so the readers,
//! not the line, let go of a batch last.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use crate::batch::Batch;
use crate::edge::{Held, Msg, Probe};
use crate::stall::{Stall, Waiting};
use crate::{FlowConfig, FlowError};

struct Line<T> {
    state: Mutex<State<T>>,
    /// The most items the line holds.
    capacity: usize,
    stall: Arc<Stall>,
}

struct State<T> {
    entries: VecDeque<Entry<T>>,
    /// The place in the line of `entries[0]`.
    base: u64,
    /// Items in `entries`: at most the capacity.
    held: usize,
    readers: Vec<Reader>,
    /// Readers not gone.
    open: usize,
    /// The writer, when it waits for room.
    writer: Option<Waker>,
    /// Whether the writer is still there; once gone, a reader at the end
    /// of the line has read everything.
    writing: bool,
}

struct Entry<T> {
    /// Taken by the last reader to pass the entry.
    msg: Option<Msg<T>>,
    items: usize,
    /// Readers still to pass it: the open ones that had not when it came.
    left: usize,
}

struct Reader {
    /// The place in the line of the next entry to read.
    next: u64,
    open: bool,
    /// Set when the reader waits at the end of the line.
    waker: Option<Waker>,
}

impl<T> Line<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while the lock is held; a poisoned lock's state
        // is whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> State<T> {
    /// Removes the entries at the front that every open reader has passed,
    /// moving the messages nobody took into `gone` (to drop outside the
    /// lock); the writer, if it now has room to wake for.
    fn trim(&mut self, gone: &mut Vec<Msg<T>>) -> Option<Waker> {
        let mut freed = false;
        while self.entries.front().is_some_and(|e| e.left == 0) {
            if let Some(entry) = self.entries.pop_front() {
                self.held = self.held.saturating_sub(entry.items);
                self.base += 1;
                gone.extend(entry.msg);
                freed = true;
            }
        }
        if freed { self.writer.take() } else { None }
    }

    /// Places `msg` at the end of the line for every open reader; the
    /// readers waiting for it, to wake.
    fn place(&mut self, msg: Msg<T>, items: usize) -> Wakers {
        self.held += items;
        self.entries.push_back(Entry {
            msg: Some(msg),
            items,
            left: self.open,
        });
        self.readers
            .iter_mut()
            .filter_map(|r| r.waker.take())
            .collect()
    }

    /// Items from reader `id`'s place to the end of the line.
    fn ahead_of(&self, id: usize) -> usize {
        let Some(reader) = self.readers.get(id) else {
            return 0;
        };
        if !reader.open {
            return 0;
        }
        let skip = index_of(reader.next, self.base);
        self.entries.iter().skip(skip).map(|e| e.items).sum()
    }
}

/// Where in `entries` an open reader's next entry is. An entry leaves
/// only once every open reader has passed it, so an open reader's place
/// is never before the front.
fn index_of(next: u64, base: u64) -> usize {
    usize::try_from(next.saturating_sub(base)).unwrap_or(usize::MAX)
}

/// The readers to wake once the lock is let go: the first few without an
/// allocation.
#[derive(Default)]
struct Wakers {
    few: [Option<Waker>; 4],
    more: Vec<Waker>,
}

impl FromIterator<Waker> for Wakers {
    fn from_iter<I: IntoIterator<Item = Waker>>(wakers: I) -> Self {
        let mut all = Wakers::default();
        let mut wakers = wakers.into_iter();
        for (slot, waker) in all.few.iter_mut().zip(wakers.by_ref()) {
            *slot = Some(waker);
        }
        all.more.extend(wakers);
        all
    }
}

fn wake_all(wakers: Wakers) {
    for waker in wakers.few.into_iter().flatten().chain(wakers.more) {
        waker.wake();
    }
}

/// The copier's side of the line: a single writer.
pub(crate) struct BroadcastTx<T> {
    line: Arc<Line<T>>,
}

/// One output's side of the line.
pub(crate) struct BroadcastRx<T> {
    line: Arc<Line<T>>,
    id: usize,
}

/// A line holding at most `config.capacity` items, read by `n` outputs.
pub(crate) fn broadcast<T>(config: FlowConfig, n: usize) -> (BroadcastTx<T>, Vec<BroadcastRx<T>>) {
    let capacity = config.capacity.max(1);
    let line = Arc::new(Line {
        state: Mutex::new(State {
            entries: VecDeque::new(),
            base: 0,
            held: 0,
            readers: (0..n)
                .map(|_| Reader {
                    next: 0,
                    open: true,
                    waker: None,
                })
                .collect(),
            open: n,
            writer: None,
            writing: true,
        }),
        capacity,
        stall: Stall::new(capacity),
    });
    let rxs = (0..n)
        .map(|id| BroadcastRx {
            line: line.clone(),
            id,
        })
        .collect();
    (BroadcastTx { line }, rxs)
}

impl<T: Clone + Send + Sync + 'static> BroadcastTx<T> {
    /// Sends a batch to every open output, shared, waiting for room;
    /// `false` once every output is gone. A batch larger than the capacity
    /// goes in capacity-sized parts, each shared.
    pub(crate) async fn send(&self, batch: Batch<T>) -> bool {
        let capacity = self.line.capacity;
        let n = batch.len();
        if n == 0 {
            return true;
        }
        if n <= capacity {
            return self.put(Ok(Batch::Shared(batch.into_shared())), n).await;
        }
        for part in batch.parts(capacity) {
            let n = part.len();
            if !self.put(Ok(Batch::Shared(Arc::new(part))), n).await {
                return false;
            }
        }
        true
    }
}

impl<T> BroadcastTx<T> {
    fn put(&self, msg: Msg<T>, items: usize) -> Put<'_, T> {
        Put {
            line: &self.line,
            msg: Some(msg),
            items,
            stalled: None,
        }
    }

    /// Sends a failure to every open output (it takes no room).
    pub(crate) fn fail(&self, error: Box<FlowError>) {
        let mut st = self.line.lock();
        let readers = if st.open > 0 {
            st.place(Err(error), 0)
        } else {
            Wakers::default()
        };
        drop(st);
        wake_all(readers);
    }
}

impl<T> Drop for BroadcastTx<T> {
    fn drop(&mut self) {
        let mut st = self.line.lock();
        st.writing = false;
        let readers: Wakers = st
            .readers
            .iter_mut()
            .filter_map(|r| r.waker.take())
            .collect();
        drop(st);
        wake_all(readers);
    }
}

/// A batch waiting for room in the line, watched by the stall watchdog
/// from its first `Pending`.
struct Put<'a, T> {
    line: &'a Line<T>,
    msg: Option<Msg<T>>,
    items: usize,
    stalled: Option<Waiting<'a>>,
}

/// The batch is moved out, never polled in place.
impl<T> Unpin for Put<'_, T> {}

impl<T> Future for Put<'_, T> {
    /// `false` once every output is gone.
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let line = self.line;
        let mut st = line.lock();
        if st.open == 0 {
            return Poll::Ready(false);
        }
        // A batch is at most the capacity (parts are cut to it), so an
        // empty line always has room.
        if st.held == 0 || st.held.saturating_add(self.items) <= line.capacity {
            let Some(msg) = self.msg.take() else {
                return Poll::Ready(true);
            };
            let readers = st.place(msg, self.items);
            drop(st);
            wake_all(readers);
            return Poll::Ready(true);
        }
        match &st.writer {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => st.writer = Some(cx.waker().clone()),
        }
        drop(st);
        if self.stalled.is_none() {
            self.stalled = Some(line.stall.waiting());
        }
        Poll::Pending
    }
}

impl<T: Clone> BroadcastRx<T> {
    /// The next entry for this output; `Ready(None)` once the writer is
    /// gone and the output has read everything.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Msg<T>>> {
        // An output that always finds entries still yields to the other
        // tasks of its thread now and then, as the edges do.
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        let id = self.id;
        let mut guard = self.line.lock();
        let st = &mut *guard;
        let Some(reader) = st.readers.get_mut(id) else {
            return Poll::Ready(None);
        };
        let at = index_of(reader.next, st.base);
        let Some(entry) = st.entries.get_mut(at) else {
            if !st.writing {
                coop.made_progress();
                return Poll::Ready(None);
            }
            match &reader.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => reader.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        };
        reader.next += 1;
        entry.left = entry.left.saturating_sub(1);
        let msg = if entry.left == 0 {
            entry.msg.take()
        } else {
            entry.msg.as_ref().map(copy_of)
        };
        // Only the entry whose message this reader took can leave here, so
        // `gone` stays empty (and unallocated).
        let mut gone = Vec::new();
        let writer = st.trim(&mut gone);
        drop(guard);
        drop(gone);
        if let Some(writer) = writer {
            writer.wake();
        }
        coop.made_progress();
        // invariant: an entry's message is taken only by the last reader
        // to pass it, which removes it; a reader never passes it again.
        Poll::Ready(msg)
    }
}

/// Another hold of a message: a shared batch's reference count, or a copy
/// of the failure.
fn copy_of<T: Clone>(msg: &Msg<T>) -> Msg<T> {
    match msg {
        Ok(Batch::Shared(shared)) => Ok(Batch::Shared(shared.clone())),
        Ok(Batch::One(item)) => Ok(Batch::One(item.clone())),
        Ok(Batch::Owned(items)) => Ok(Batch::Owned(items.clone())),
        Err(e) => Err(e.clone()),
    }
}

/// Nothing in an output's reader is pinned.
impl<T> Unpin for BroadcastRx<T> {}

impl<T: Clone> futures::Stream for BroadcastRx<T> {
    type Item = Msg<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Msg<T>>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<T: Send + 'static> BroadcastRx<T> {
    /// A reader of how many items this output has still to read.
    pub(crate) fn probe(&self) -> Probe {
        Probe::of(Arc::new(Ahead {
            line: self.line.clone(),
            id: self.id,
        }))
    }
}

/// One output's view of the line, for its probe.
struct Ahead<T> {
    line: Arc<Line<T>>,
    id: usize,
}

impl<T: Send> Held for Ahead<T> {
    fn held(&self) -> usize {
        self.line.lock().ahead_of(self.id)
    }
}

impl<T> Drop for BroadcastRx<T> {
    fn drop(&mut self) {
        // The entries this output had not read no longer wait for it; the
        // ones nobody else waits for leave, outside the lock.
        let mut st = self.line.lock();
        let st_ref = &mut *st;
        let Some(reader) = st_ref.readers.get_mut(self.id) else {
            return;
        };
        if !reader.open {
            return;
        }
        reader.open = false;
        reader.waker = None;
        let at = index_of(reader.next, st_ref.base);
        for entry in st_ref.entries.iter_mut().skip(at) {
            entry.left = entry.left.saturating_sub(1);
        }
        st_ref.open = st_ref.open.saturating_sub(1);
        let mut gone = Vec::new();
        let mut writer = st_ref.trim(&mut gone);
        if st_ref.open == 0 {
            // The writer learns that nobody reads any more.
            writer = writer.or_else(|| st_ref.writer.take());
        }
        drop(st);
        drop(gone);
        if let Some(writer) = writer {
            writer.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Flag, poll_with};
    use proptest::prelude::*;

    fn config(capacity: usize) -> FlowConfig {
        FlowConfig::new(capacity, 1).expect("a valid configuration")
    }

    type Send<'a> = Pin<Box<dyn Future<Output = bool> + 'a>>;

    fn poll_send(send: &mut Send<'_>, flag: &Arc<Flag>) -> Poll<bool> {
        poll_with(flag, |cx| send.as_mut().poll(cx))
    }

    fn read(rx: &mut BroadcastRx<u64>, flag: &Arc<Flag>) -> Poll<Option<Msg<u64>>> {
        poll_with(flag, |cx| rx.poll_recv(cx))
    }

    fn items(m: Msg<u64>) -> Vec<u64> {
        m.expect("no failure was sent").into_vec()
    }

    /// The items of the batch an output can read now.
    fn next_items(rx: &mut BroadcastRx<u64>, flag: &Arc<Flag>) -> Vec<u64> {
        match read(rx, flag) {
            Poll::Ready(Some(m)) => items(m),
            other => panic!(
                "expected a batch, got {:?}",
                other.map(|m| m.map(|m| m.is_ok()))
            ),
        }
    }

    #[test]
    fn every_output_reads_every_batch_and_the_last_to_pass_takes_the_line_s_hold() {
        let (tx, mut rxs) = broadcast::<u64>(config(8), 2);
        let flag = Arc::new(Flag::default());
        let mut send: Send<'_> = Box::pin(tx.send(Batch::Owned(vec![1, 2, 3])));
        assert_eq!(poll_send(&mut send, &flag), Poll::Ready(true));
        let Poll::Ready(Some(Ok(Batch::Shared(first)))) = read(&mut rxs[0], &flag) else {
            panic!("the first output reads the batch, shared");
        };
        assert_eq!(first.items(), [1, 2, 3]);
        assert_eq!(Arc::strong_count(&first), 2, "the line still holds it");
        let Poll::Ready(Some(Ok(Batch::Shared(second)))) = read(&mut rxs[1], &flag) else {
            panic!("the second output reads the batch, shared");
        };
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(Arc::strong_count(&first), 2, "the line let go of it");
        assert_eq!(tx.line.lock().held, 0);
        drop(send);
        drop(tx);
        assert!(matches!(read(&mut rxs[0], &flag), Poll::Ready(None)));
        assert!(matches!(read(&mut rxs[1], &flag), Poll::Ready(None)));
    }

    #[test]
    fn the_copier_waits_for_the_slowest_output_and_a_dropped_one_holds_nothing_back() {
        let (tx, mut rxs) = broadcast::<u64>(config(4), 3);
        let flag = Arc::new(Flag::default());
        let mut a: Send<'_> = Box::pin(tx.send(Batch::Owned(vec![0, 1, 2])));
        assert_eq!(poll_send(&mut a, &flag), Poll::Ready(true));
        // Two outputs read it; the third has not: no room for two more.
        for rx in &mut rxs[..2] {
            assert_eq!(next_items(rx, &flag), [0, 1, 2]);
        }
        let mut b: Send<'_> = Box::pin(tx.send(Batch::Owned(vec![3, 4])));
        assert_eq!(poll_send(&mut b, &flag), Poll::Pending);
        assert!(tx.line.stall.is_waiting(), "a waiting copier is watched");
        assert!(!flag.take());
        // The slow output goes: the batch leaves, the copier wakes and sends.
        let slow = rxs.pop().expect("three outputs");
        drop(slow);
        assert!(flag.take(), "the copier was woken");
        assert_eq!(poll_send(&mut b, &flag), Poll::Ready(true));
        drop(b);
        assert!(!tx.line.stall.is_waiting());
        for rx in &mut rxs {
            assert_eq!(next_items(rx, &flag), [3, 4]);
        }
        // Every output gone: a waiting send learns it.
        let mut c: Send<'_> = Box::pin(tx.send(Batch::Owned(vec![5, 6, 7])));
        assert_eq!(poll_send(&mut c, &flag), Poll::Ready(true));
        let mut d: Send<'_> = Box::pin(tx.send(Batch::Owned(vec![8, 9])));
        assert_eq!(poll_send(&mut d, &flag), Poll::Pending);
        rxs.clear();
        assert!(flag.take(), "the copier was woken");
        assert_eq!(poll_send(&mut d, &flag), Poll::Ready(false));
    }

    #[test]
    fn a_failure_reaches_every_output_after_what_came_before_it() {
        let (tx, mut rxs) = broadcast::<u64>(config(4), 2);
        let flag = Arc::new(Flag::default());
        let mut a: Send<'_> = Box::pin(tx.send(Batch::Owned(vec![1])));
        assert_eq!(poll_send(&mut a, &flag), Poll::Ready(true));
        drop(a);
        tx.fail(Box::new(FlowError::invalid("test", 0, "a failure")));
        drop(tx);
        for rx in &mut rxs {
            assert_eq!(next_items(rx, &flag), [1]);
            assert!(matches!(read(rx, &flag), Poll::Ready(Some(Err(_)))));
            assert!(matches!(read(rx, &flag), Poll::Ready(None)));
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Send(usize),
        Read(usize),
        Drop(usize),
    }

    fn op(capacity: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1..=capacity).prop_map(Op::Send),
            4 => any::<usize>().prop_map(Op::Read),
            1 => any::<usize>().prop_map(Op::Drop),
        ]
    }

    proptest! {
        /// Against a model (up to 7 outputs, more than wake without an
        /// allocation): the line never holds more than its capacity and
        /// holds exactly what the slowest open output has still to read;
        /// every open output reads every item once, in order; a waiting
        /// copier or output is always woken when it can go on (no lost
        /// wake-up), and the copier waits only when the batch does not fit.
        #[test]
        fn every_output_reads_every_item_once_in_order_and_no_wake_up_is_lost(
            (capacity, outputs, ops) in (1usize..8, 1usize..8).prop_flat_map(|(c, n)| {
                (Just(c), Just(n), proptest::collection::vec(op(c), 1..150))
            })
        ) {
            let (tx, rxs) = broadcast::<u64>(config(capacity), outputs);
            let mut rxs: Vec<Option<BroadcastRx<u64>>> = rxs.into_iter().map(Some).collect();
            let probes: Vec<Probe> = rxs.iter().flatten().map(BroadcastRx::probe).collect();
            let flags: Vec<Arc<Flag>> = (0..outputs).map(|_| Arc::new(Flag::default())).collect();
            let mut asleep = vec![false; outputs];
            let writer = Arc::new(Flag::default());
            let mut next = 0u64;
            let mut pending: Option<(Send<'_>, usize, bool)> = None;
            let mut sent: Vec<u64> = Vec::new();
            let mut got: Vec<Vec<u64>> = vec![Vec::new(); outputs];
            for op in ops {
                match op {
                    Op::Send(k) => {
                        if pending.is_none() {
                            let items: Vec<u64> = (next..next + k as u64).collect();
                            next += k as u64;
                            sent.extend(&items);
                            pending = Some((Box::pin(tx.send(Batch::Owned(items))), k, true));
                        }
                    }
                    Op::Read(r) => {
                        let r = r % outputs;
                        if let Some(rx) = rxs[r].as_mut() {
                            match read(rx, &flags[r]) {
                                Poll::Ready(Some(m)) => {
                                    let batch = items(m);
                                    prop_assert!(batch.len() <= capacity);
                                    got[r].extend(batch);
                                }
                                Poll::Ready(None) => prop_assert!(false, "ended early"),
                                Poll::Pending => asleep[r] = true,
                            }
                        }
                    }
                    Op::Drop(r) => {
                        rxs[r % outputs] = None;
                    }
                }
                // The copier goes on when it is woken (or first runs), as an
                // executor would run it; then it must be waiting for room
                // that is not there.
                let any_open = rxs.iter().any(Option::is_some);
                if let Some((send, _, fresh)) = pending.as_mut()
                    && (*fresh || writer.take())
                {
                    *fresh = false;
                    if let Poll::Ready(ok) = poll_send(send, &writer) {
                        prop_assert_eq!(ok, any_open);
                        pending = None;
                    }
                }
                if let Some((_, k, _)) = pending.as_ref() {
                    let held = tx.line.lock().held;
                    prop_assert!(any_open && held > 0 && held + k > capacity,
                        "a copier left waiting with {} held of {} for {}", held, capacity, k);
                }
                let held = tx.line.lock().held;
                prop_assert!(held <= capacity, "holds {} of {}", held, capacity);
                let slowest = (0..outputs)
                    .filter(|&r| rxs[r].is_some())
                    .map(|r| probes[r].held())
                    .max()
                    .unwrap_or(0);
                prop_assert_eq!(held, slowest, "holds what the slowest has to read");
                for r in 0..outputs {
                    if asleep[r] && rxs[r].is_some() && probes[r].held() > 0 {
                        prop_assert!(flags[r].take(), "output {} not woken", r);
                        asleep[r] = false;
                    }
                }
            }
            // The last batch goes in once the outputs read on; then the end.
            while let Some((send, _, _)) = pending.as_mut() {
                if poll_send(send, &writer).is_ready() {
                    pending = None;
                    break;
                }
                for (r, rx) in rxs.iter_mut().enumerate() {
                    if let Some(rx) = rx
                        && let Poll::Ready(Some(m)) = read(rx, &flags[r])
                    {
                        got[r].extend(items(m));
                    }
                }
            }
            drop(pending);
            drop(tx);
            for (r, rx) in rxs.iter_mut().enumerate() {
                if let Some(rx) = rx {
                    loop {
                        match read(rx, &flags[r]) {
                            Poll::Ready(Some(m)) => got[r].extend(items(m)),
                            Poll::Ready(None) => break,
                            Poll::Pending => prop_assert!(false, "no end after the copier went"),
                        }
                    }
                    prop_assert_eq!(&got[r], &sent, "output {}", r);
                }
            }
        }
    }
}
