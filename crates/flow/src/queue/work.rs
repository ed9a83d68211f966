//! One worker's loop: take, process with retries, commit (acknowledge, then
//! send), dead-letter, batch fast results.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;
use weft_core::{Classify, ErrorClass};

use super::handle::lock_ids;
use super::manager::Shared;
use super::{DeadLetter, Item, ItemId, MAX_DISCARDED_IDS, Source, WorkContext, Worker};

/// The workers' side of the queue.
impl<S, W, T> Shared<S, W, T>
where
    T: Clone + Send + Sync + 'static,
    S: Source<T> + 'static,
    W: Worker<T, S::Id>,
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
    pub(super) async fn work(self: Arc<Self>) {
        // Results of fast items wait here, to be committed together (room
        // taken, acknowledged in one batch, sent as one batch): when the
        // batch is full, when the source has nothing ready, after LINGER,
        // and on exit. A slow item's result is committed at once.
        let mut out = Pending {
            items: Vec::new(),
            since: Instant::now(),
        };
        // Items taken from the source but not started: a worker takes
        // several at once while items are fast, doubling the take up to
        // MAX_TAKE, and one at a time once they are slow (so that slow
        // items spread over the workers).
        let mut hand: VecDeque<Item<T, S::Id>> = VecDeque::new();
        let mut take = 0usize;
        let mut taken = 0u64;
        loop {
            if self.drain.is_raised() {
                break;
            }
            if self.retire_if_surplus() {
                self.give_back(&mut hand).await;
                self.settle(&mut out).await;
                return;
            }
            let item = match hand.pop_front() {
                Some(item) => item,
                None => {
                    // Double the take while items are fast (once one has
                    // been timed), back to one as soon as they are not.
                    let fast = self.processing_ewma_us.load(Ordering::Relaxed) < FAST_US;
                    take = if taken > 0 && fast {
                        (take * 2).min(MAX_TAKE)
                    } else {
                        1
                    };
                    let next = self.source.next_batch(take);
                    tokio::pin!(next);
                    let items = match futures::poll!(next.as_mut()) {
                        std::task::Poll::Ready(items) => items,
                        std::task::Poll::Pending => {
                            if !self.settle(&mut out).await {
                                break;
                            }
                            let rescaled = self.rescaled.notified();
                            tokio::select! {
                                biased;
                                () = self.drain.raised() => break,
                                items = &mut next => items,
                                // Too many workers: an idle one goes (sources'
                                // `next_batch` is cancel safe).
                                () = rescaled => continue,
                            }
                        }
                    };
                    if items.is_empty() {
                        break;
                    }
                    // An item already done (handed out again by its
                    // source) is acknowledged, not processed again.
                    let done = self.done.contains_each(items.iter().map(|item| &item.id));
                    for (item, done) in items.into_iter().zip(done) {
                        if done {
                            self.source.ack(item.id).await;
                        } else {
                            hand.push_back(item);
                        }
                    }
                    continue;
                }
            };
            taken += 1;
            // Time the first items, then one in TIME_EVERY (clock reads cost as
            // much as a fast item's bookkeeping).
            let timed = taken <= 16 || taken.is_multiple_of(TIME_EVERY);
            if !self.process_one(item, &mut out, timed).await {
                break;
            }
            let ewma_us = self.processing_ewma_us.load(Ordering::Relaxed);
            let fast = ewma_us < FAST_US;
            if !fast && !hand.is_empty() {
                // Items turned slow: the rest of the hand goes back, for
                // idle workers to take.
                self.give_back(&mut hand).await;
            }
            let flush = out.items.len() >= self.batch
                || !fast
                || (taken.is_multiple_of(linger_every(ewma_us)) && out.since.elapsed() >= LINGER);
            if flush && !self.settle(&mut out).await {
                break;
            }
        }
        self.give_back(&mut hand).await;
        self.settle(&mut out).await;
        self.active.fetch_sub(1, Ordering::AcqRel);
    }

    /// Commits the results waiting in `out`: takes room for them
    /// downstream first (so that nothing is acknowledged and then lost on a
    /// full or closed edge), acknowledges them at the source in one batch,
    /// and sends, as one batch, those whose claim held. `false` if the
    /// worker must stop: cancelled while waiting for room, or nobody reads
    /// the output; the items then go back to the source.
    async fn settle(&self, out: &mut Pending<T, S::Id, W::Output>) -> bool {
        if out.items.is_empty() {
            return true;
        }
        let n = out.items.len();
        let room = tokio::select! {
            biased;
            room = self.output.reserve_many(n) => room,
            () = self.cancel.raised() => None,
        };
        let Some(room) = room else {
            for (item, _) in out.items.drain(..) {
                self.source.nack(item).await;
            }
            return false;
        };
        let ids = out.items.iter().map(|(item, _)| item.id.clone()).collect();
        let acked = self.source.ack_batch(ids).await;
        let mut results = Vec::with_capacity(n);
        for (i, (item, output)) in out.items.drain(..).enumerate() {
            if acked.get(i).copied().unwrap_or(false) {
                results.push((item.id, output));
            } else {
                self.discard(item.id);
            }
        }
        self.done.insert_each(results.iter().map(|(id, _)| id));
        self.done_count
            .fetch_add(results.len() as u64, Ordering::Relaxed);
        room.send(results)
    }

    /// A result whose acknowledgement the source refused: the claim was
    /// lost (another taker owns the item now), so it must not count.
    fn discard(&self, id: S::Id) {
        self.discarded_count.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%id, "claim lost before commit; result discarded");
        let mut ids = lock_ids(&self.discarded);
        if ids.len() < MAX_DISCARDED_IDS {
            ids.push(id);
        }
    }

    /// Returns the items a stopping worker took but did not start.
    async fn give_back(&self, hand: &mut VecDeque<Item<T, S::Id>>) {
        for item in hand.drain(..) {
            self.source.nack(item).await;
        }
    }

    /// Processes one item to its end; `false` if the worker must stop
    /// (cancelled, or the output is gone).
    async fn process_one(
        &self,
        item: Item<T, S::Id>,
        out: &mut Pending<T, S::Id, W::Output>,
        timed: bool,
    ) -> bool {
        let seed = item.id.seed();
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
            let deadline = self.attempt_timeout.map(|t| Instant::now() + t);
            let cx = WorkContext {
                id: item.id.clone(),
                attempt,
                max_attempts: self.retry.max_attempts(),
                deadline,
            };
            let mut call = pin!(
                AssertUnwindSafe(self.worker.process(item.payload.clone(), cx)).catch_unwind()
            );
            // The call first: work that is ready at once never builds the
            // waits on the cancel token and the timeout.
            let result = match futures::poll!(call.as_mut()) {
                Poll::Ready(r) => Some(r),
                Poll::Pending => {
                    let timeout = pin!(async {
                        match deadline {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    });
                    match wait_for(call, self.cancel.raised(), timeout).await {
                        Ended::Done(r) => Some(r),
                        Ended::Cancelled => {
                            drop(permit);
                            self.source.nack(item).await;
                            return false;
                        }
                        Ended::TimedOut => None,
                    }
                }
            };
            drop(permit);
            if let Some(started) = started {
                let us = started.elapsed().as_micros() as u64;
                let old = self.processing_ewma_us.load(Ordering::Relaxed);
                let ewma = if old == 0 { us } else { (old * 7 + us) / 8 };
                self.processing_ewma_us.store(ewma, Ordering::Relaxed);
            }
            // A failure: its message and class, whatever ended the attempt.
            let (error, class) = match result {
                Some(Ok(Ok(output))) => {
                    out.push(item, output);
                    return true;
                }
                Some(Ok(Err(e))) => (e.to_string(), e.class()),
                Some(Err(panic)) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "worker panicked".into());
                    (format!("worker panicked: {what}"), ErrorClass::Permanent)
                }
                None => {
                    let timeout = self.attempt_timeout.unwrap_or_default();
                    (
                        format!("attempt timed out after {timeout:?}"),
                        ErrorClass::Transient,
                    )
                }
            };
            if class == ErrorClass::Transient
                && let Some(wait) = self.retry.next(attempt, seed)
            {
                tokio::select! {
                    biased;
                    () = self.cancel.raised() => {
                        self.source.nack(item).await;
                        return false;
                    }
                    () = tokio::time::sleep(wait) => continue,
                }
            }
            return self
                .commit_dead(item, |item| DeadLetter {
                    item,
                    error,
                    class,
                    attempts: attempt,
                    retries_exhausted: class == ErrorClass::Transient,
                })
                .await;
        }
    }

    /// Commits a dead letter: takes room on the dead-letter edge first,
    /// acknowledges the item at the source, and sends the letter only if
    /// the source confirmed the claim. `false` if the worker must stop
    /// (cancelled while waiting for room). A dead letter whose reader is
    /// gone is still committed, counted and logged.
    async fn commit_dead(
        &self,
        item: Item<T, S::Id>,
        letter: impl FnOnce(Item<T, S::Id>) -> DeadLetter<T, S::Id>,
    ) -> bool {
        let id = item.id.clone();
        let slot = match self.dead.try_reserve() {
            Some(slot) => Some(slot),
            None => tokio::select! {
                biased;
                () = self.cancel.raised() => {
                    self.source.nack(item).await;
                    return false;
                }
                slot = self.dead.reserve() => slot,
            },
        };
        if !self.source.ack(id.clone()).await {
            self.discard(id);
            return true;
        }
        self.done.insert(&id);
        self.done_count.fetch_add(1, Ordering::Relaxed);
        self.dead_count.fetch_add(1, Ordering::Relaxed);
        match slot {
            Some(slot) => {
                slot.send(letter(item));
            }
            None => tracing::warn!(%id, "dead letter dropped: its reader is gone"),
        }
        true
    }
}

/// How a call that was not ready at once ended.
enum Ended<R> {
    Done(R),
    Cancelled,
    TimedOut,
}

/// Waits for a call polled once already (and pending), its cancellation
/// or its timeout, in that order of precedence. The call is not polled
/// again until it is woken: a worker that yields once to let other tasks
/// run (`yield_now`) is not resumed at once.
async fn wait_for<C: Future>(
    mut call: Pin<&mut C>,
    cancel: impl Future<Output = ()>,
    mut timeout: Pin<&mut impl Future<Output = ()>>,
) -> Ended<C::Output> {
    let mut cancel = pin!(cancel);
    let mut polled = true;
    std::future::poll_fn(move |cx| {
        if !std::mem::take(&mut polled)
            && let Poll::Ready(r) = call.as_mut().poll(cx)
        {
            return Poll::Ready(Ended::Done(r));
        }
        if cancel.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ended::Cancelled);
        }
        if timeout.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ended::TimedOut);
        }
        Poll::Pending
    })
    .await
}

/// Items under this mean processing time (µs) have their results batched.
const FAST_US: u64 = 50;
/// How long a batched result may wait for its batch (checked about every
/// eighth of it, so the bound is about 9/8 of it).
const LINGER: Duration = Duration::from_millis(1);
/// The most items a worker takes from the source at once.
const MAX_TAKE: usize = 64;
/// One item in this many is timed for the processing-time average.
const TIME_EVERY: u64 = 32;

/// Every how many items a worker looks whether its results have waited
/// LINGER: about an eighth of LINGER's worth of items at the mean
/// processing time, 1 to 64 (items under a microsecond read the clock
/// once in 64, not once in 8: a clock read costs what their bookkeeping
/// does).
fn linger_every(ewma_us: u64) -> u64 {
    let eighth_us = u64::try_from(LINGER.as_micros() / 8).unwrap_or(u64::MAX);
    (eighth_us / ewma_us.max(1)).clamp(1, 64)
}

/// A worker's results waiting to be committed together, with their items
/// (given back to the source if the commit cannot happen).
struct Pending<T, I, O> {
    items: Vec<(Item<T, I>, O)>,
    since: Instant,
}

impl<T, I, O> Pending<T, I, O> {
    fn push(&mut self, item: Item<T, I>, output: O) {
        if self.items.is_empty() {
            self.since = Instant::now();
        }
        self.items.push((item, output));
    }
}
