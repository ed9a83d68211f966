//! One worker's loop: take, process with retries, commit (acknowledge, then
//! send), dead-letter, batch fast results.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;
use weft_core::{Classify, ErrorClass};

use super::handle::lock_ids;
use super::manager::Shared;
use super::{DeadLetter, Item, ItemId, MAX_DISCARDED_IDS, Source, WorkContext, Worker};
use crate::edge::EdgeTx;

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
        // Results of fast items are kept here (their room on the output already
        // taken) and sent as one batch: when the batch is full, when the source
        // has nothing ready, when room runs out, after LINGER, and on exit.
        let mut out = Batch {
            items: Vec::new(),
            since: Instant::now(),
        };
        let mut taken = 0u64;
        loop {
            if self.drain.is_cancelled() {
                break;
            }
            if self.retire_if_surplus() {
                out.flush(&self.output);
                return;
            }
            let next = self.source.next();
            tokio::pin!(next);
            let item = match futures::poll!(next.as_mut()) {
                std::task::Poll::Ready(item) => item,
                std::task::Poll::Pending => {
                    if !out.flush(&self.output) {
                        break;
                    }
                    let rescaled = self.rescaled.notified();
                    tokio::select! {
                        biased;
                        () = self.drain.cancelled() => break,
                        item = &mut next => item,
                        // Too many workers: an idle one goes (sources' `next`
                        // is cancel safe).
                        () = rescaled => continue,
                    }
                }
            };
            let Some(item) = item else { break };
            taken += 1;
            // Time the first items, then one in TIME_EVERY (clock reads cost as
            // much as a fast item's bookkeeping).
            let timed = taken <= 16 || taken.is_multiple_of(TIME_EVERY);
            if !self.process_one(item, &mut out, timed).await {
                break;
            }
            let fast = self.processing_ewma_us.load(Ordering::Relaxed) < FAST_US;
            let flush = out.items.len() >= self.batch
                || !fast
                || (taken.is_multiple_of(TIME_EVERY) && out.since.elapsed() >= LINGER);
            if flush && !out.flush(&self.output) {
                break;
            }
        }
        out.flush(&self.output);
        self.active.fetch_sub(1, Ordering::AcqRel);
    }

    /// Processes one item to its end; `false` if the worker must stop
    /// (cancelled, or the output is gone).
    async fn process_one(
        &self,
        item: Item<T, S::Id>,
        out: &mut Batch<(S::Id, W::Output)>,
        timed: bool,
    ) -> bool {
        if self.done.contains(&item.id) {
            self.source.ack(item.id).await;
            return true;
        }
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
            let call =
                AssertUnwindSafe(self.worker.process(item.payload.clone(), cx)).catch_unwind();
            let timeout = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            // The call first: work that is ready never touches the cancel
            // token's waiter list.
            let result = tokio::select! {
                biased;
                r = call => Some(r),
                () = self.cancel.cancelled() => {
                    drop(permit);
                    self.source.nack(item).await;
                    return false;
                }
                () = timeout => None,
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
                    return self
                        .commit(&self.output, item, Some(out), |item| (item.id, output))
                        .await;
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
                    () = self.cancel.cancelled() => {
                        self.source.nack(item).await;
                        return false;
                    }
                    () = tokio::time::sleep(wait) => continue,
                }
            }
            return self
                .commit(&self.dead, item, None, |item| DeadLetter {
                    item,
                    error,
                    class,
                    attempts: attempt,
                    retries_exhausted: class == ErrorClass::Transient,
                })
                .await;
        }
    }

    /// Commits an item's result: takes room downstream first (so that nothing
    /// is acknowledged and then lost on a full or closed edge), acknowledges
    /// the item at the source, and sends the result only if the source
    /// confirmed the claim. `false` if the worker must stop.
    ///
    /// Results go into `out` (to be sent in a batch); dead letters (`out` is
    /// `None`) are sent at once. A dead letter whose reader is gone is still
    /// committed, counted and logged; a result whose reader is gone is given
    /// back to the source (no one can receive it) and stops the worker.
    async fn commit<X>(
        &self,
        edge: &EdgeTx<X>,
        item: Item<T, S::Id>,
        mut out: Option<&mut Batch<X>>,
        value: impl FnOnce(Item<T, S::Id>) -> X,
    ) -> bool {
        let id = item.id.clone();
        let dead = out.is_none();
        let slot = match edge.try_reserve() {
            Some(slot) => Some(slot),
            None => {
                // Waiting for room: send what this worker holds first, so that
                // workers never wait on room their own batches occupy.
                if let Some(out) = out.as_deref_mut()
                    && !out.flush(edge)
                {
                    self.source.nack(item).await;
                    return false;
                }
                tokio::select! {
                    biased;
                    () = self.cancel.cancelled() => {
                        self.source.nack(item).await;
                        return false;
                    }
                    slot = edge.reserve() => slot,
                }
            }
        };
        if slot.is_none() && !dead {
            // Nobody reads the output: give the item back.
            self.source.nack(item).await;
            return false;
        }
        if !self.source.ack(id.clone()).await {
            // The claim was lost (another taker owns the item now): this
            // result must not count.
            self.discarded_count.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%id, "claim lost before commit; result discarded");
            let mut ids = lock_ids(&self.discarded);
            if ids.len() < MAX_DISCARDED_IDS {
                ids.push(id);
            }
            drop(ids);
            return true;
        }
        self.done.insert(&id);
        self.done_count.fetch_add(1, Ordering::Relaxed);
        if dead {
            self.dead_count.fetch_add(1, Ordering::Relaxed);
        }
        match (slot, out) {
            (Some(slot), Some(out)) => {
                slot.keep();
                out.push(value(item));
                true
            }
            (Some(slot), None) => slot.send(value(item)) || dead,
            (None, _) => {
                tracing::warn!(%id, "dead letter dropped: its reader is gone");
                true
            }
        }
    }
}

/// Items under this mean processing time (µs) have their results batched.
const FAST_US: u64 = 50;
/// How long a batched result may wait for its batch (checked every
/// TIME_EVERY items, so the bound is LINGER + TIME_EVERY × FAST_US).
const LINGER: Duration = Duration::from_millis(1);
/// One item in this many is timed for the processing-time average.
const TIME_EVERY: u64 = 8;

/// A worker's results waiting to be sent together.
struct Batch<X> {
    items: Vec<X>,
    since: Instant,
}

impl<X> Batch<X> {
    fn push(&mut self, item: X) {
        if self.items.is_empty() {
            self.since = Instant::now();
        }
        self.items.push(item);
    }

    /// `false` if the receiver is gone.
    fn flush(&mut self, edge: &EdgeTx<X>) -> bool {
        edge.send_kept(std::mem::take(&mut self.items))
    }
}
