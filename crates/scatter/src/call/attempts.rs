//! Attempts: launching one leaf call at a replica, the future that runs it
//! (a concurrency slot, the leaf, panics caught, cancellation), and
//! stopping the losers.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use weft_core::Combine;

use super::Call;
use crate::{Leaf, LeafContext};

/// A cancellation flag and waker per attempt, borrowed by the attempt's
/// future so that a loser can be stopped (and dropped) at once.
#[derive(Default)]
pub(crate) struct Slot {
    cancelled: AtomicBool,
    waker: AtomicWaker,
}

/// How an attempt ended, as the attempt's future reports it.
pub(super) enum Ended<T, E> {
    Answer(Result<T, E>),
    Panicked,
    Cancelled,
}

/// An attempt's index and how it ended.
pub(super) type AttemptEnd<T, E> = (usize, Ended<T, E>);

/// Bookkeeping for one attempt (the call's, not the future's).
#[derive(Clone, Copy)]
pub(super) struct AttemptInfo {
    pub(super) run: usize,
    pub(super) replica: usize,
    pub(super) seq: u32,
    /// When it was sent, from the start of the call.
    pub(super) issued: Duration,
    pub(super) live: bool,
}

/// Why an attempt is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    First,
    /// While another attempt is in flight, early: from the extra-load
    /// budget above its reserve.
    EarlyHedge,
    /// While another attempt is in flight (extra-load budget).
    Hedge,
    /// After an attempt timed out (extra-load budget).
    Retry,
    /// After a transient error, with nothing in flight (retry budget).
    Failover,
}

impl<'a, L, Req, C, R> Call<'a, L, Req, C, R>
where
    L: Leaf<Req, Response = C::Input>,
    Req: Clone,
    C: Combine,
{
    /// Starts one attempt of run `r`; false if no attempt or replica is
    /// left or, for a hedge or retry, the budget is spent.
    pub(super) fn launch(&mut self, r: usize, kind: Kind) -> bool {
        let root = self.root;
        let run = &mut self.runs[r];
        let n = run.attempts as usize;
        if n >= self.max_attempts || self.info.len() >= self.slots.len() {
            return false;
        }
        let Some(replica) = root.replicas.pick(
            root.topology.replicas_of(run.shard),
            &run.tried[..n],
            self.clock.now(),
        ) else {
            return false;
        };
        match kind {
            Kind::First => {}
            Kind::EarlyHedge if !root.budget.take_above_reserve() => return false,
            Kind::Hedge | Kind::Retry if !root.budget.take() => return false,
            Kind::Failover if !root.retry_budget.take() => return false,
            Kind::Hedge | Kind::EarlyHedge => run.hedges += 1,
            Kind::Retry => run.retries += 1,
            Kind::Failover => {
                run.retries += 1;
                run.failovers += 1;
            }
        }
        let index = self.info.len();
        run.tried[n] = replica;
        run.attempts += 1;
        run.live += 1;
        self.info.push(AttemptInfo {
            run: r,
            replica,
            seq: run.attempts,
            issued: self.clock.since(),
            live: true,
        });
        root.replicas.started(replica);
        let cx = LeafContext {
            shard: run.shard,
            replica,
            attempt: run.attempts,
            hedge: matches!(kind, Kind::Hedge | Kind::EarlyHedge),
            deadline: self.deadline,
        };
        // A leaf that panics before it returns its future fails its
        // attempt, as one that panics while polled does.
        let request = run.request.clone();
        let call = std::panic::catch_unwind(AssertUnwindSafe(|| root.leaf.call(request, cx))).ok();
        self.fresh.push(Box::pin(Attempt {
            slot: &self.slots[index],
            index,
            acquire: root
                .slots
                .as_ref()
                .map(|s| Box::pin(s.acquire()) as Acquire<'a>),
            permit: None,
            call,
        }));
        self.timers.unarmed.push(index);
        true
    }

    /// Cancels attempt `index`: its future is woken and dropped. A loser to
    /// a faster replica (`slow`) counts against its replica's health, and
    /// its elapsed time enters the latency window as a lower bound, so that
    /// cancelled stragglers do not vanish from the percentile.
    pub(super) fn stop(&mut self, index: usize, slow: bool) {
        let a = self.info[index];
        if !a.live {
            return;
        }
        let root = self.root;
        self.info[index].live = false;
        self.runs[a.run].live -= 1;
        root.replicas.finished(a.replica);
        root.hedger
            .record(self.clock.since().saturating_sub(a.issued));
        if slow || self.runs[a.run].outcome.is_none() {
            // Timed out, or beaten by a hedge: the replica was slow.
            root.replicas.failure(a.replica);
        }
        self.slots[index].cancelled.store(true, Ordering::Release);
        self.slots[index].waker.wake();
    }

    /// Cancels every live attempt of run `r`.
    pub(super) fn stop_run(&mut self, r: usize, slow: bool) {
        if self.runs[r].live == 0 {
            return;
        }
        for index in 0..self.info.len() {
            if self.info[index].run == r && self.info[index].live {
                self.stop(index, slow);
            }
        }
    }
}

pub(super) type Acquire<'a> = Pin<
    Box<
        dyn Future<Output = Result<tokio::sync::SemaphorePermit<'a>, tokio::sync::AcquireError>>
            + Send
            + 'a,
    >,
>;

pin_project_lite::pin_project! {
    /// One attempt: waits for a concurrency slot if the root limits them,
    /// runs the leaf, turns a panic into an outcome, and ends at once when
    /// cancelled (the call then drops it, and the leaf's future with it).
    pub(super) struct Attempt<'a, F> {
        slot: &'a Slot,
        index: usize,
        acquire: Option<Acquire<'a>>,
        permit: Option<tokio::sync::SemaphorePermit<'a>>,
        // None: the leaf panicked while making the future.
        #[pin]
        call: Option<F>,
    }
}

impl<F, T, E> Future for Attempt<'_, F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = AttemptEnd<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let index = *this.index;
        if this.slot.cancelled.load(Ordering::Acquire) {
            return Poll::Ready((index, Ended::Cancelled));
        }
        if let Some(acquire) = this.acquire.as_mut() {
            match acquire.as_mut().poll(cx) {
                // Held until the attempt is dropped.
                Poll::Ready(permit) => {
                    *this.permit = permit.ok();
                    *this.acquire = None;
                }
                Poll::Pending => return cancel_or_pending(this.slot, index, cx),
            }
        }
        let Some(call) = this.call.as_pin_mut() else {
            return Poll::Ready((index, Ended::Panicked));
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| call.poll(cx))) {
            Ok(Poll::Ready(result)) => Poll::Ready((index, Ended::Answer(result))),
            // Only a pending attempt needs to hear about cancellation.
            Ok(Poll::Pending) => cancel_or_pending(this.slot, index, cx),
            Err(_) => Poll::Ready((index, Ended::Panicked)),
        }
    }
}

fn cancel_or_pending<T, E>(
    slot: &Slot,
    index: usize,
    cx: &mut Context<'_>,
) -> Poll<(usize, Ended<T, E>)> {
    slot.waker.register(cx.waker());
    if slot.cancelled.load(Ordering::Acquire) {
        Poll::Ready((index, Ended::Cancelled))
    } else {
        Poll::Pending
    }
}
