//! Hedging within a call: arming an attempt's hedge timer, and the one
//! decision "hedge now?".

use weft_core::Combine;
use weft_core::time::{capped, micros};

use super::Call;
use super::attempts::Kind;
use super::timers::Event;
use crate::Leaf;

impl<L, Req, C, R> Call<'_, L, Req, C, R>
where
    L: Leaf<Req, Response = C::Input>,
    Req: Clone,
    C: Combine,
    R: Fn(Vec<C::Input>) -> C::Input,
{
    /// Sets attempt `index`'s hedge timer, one hedge delay after it was
    /// sent, if this call hedges and its shard has attempts left. In a
    /// call that hedges its last few shards, a shard not hedged yet is
    /// looked at once the last few's delay has passed.
    pub(super) fn arm_hedge(&mut self, index: usize) {
        let a = self.info[index];
        let run = &self.runs[a.run];
        if self.hedging && (run.attempts as usize) < self.max_attempts {
            let (delay, event) = match self.early_delay {
                Some(_) if self.last_few > 0 && run.hedges == 0 => {
                    (self.last_delay, Event::EarlyHedge(index))
                }
                Some(early) => (early, Event::EarlyHedge(index)),
                None => (self.hedge_delay, Event::Hedge(index)),
            };
            let at = self.clock.start + a.issued + capped(delay);
            self.timers.push(at, event);
        }
    }

    /// The early hedge timer of attempt `index` fired: hedge from the
    /// budget above its reserve, or wait for the hedge delay. In a call
    /// that hedges its last few shards, a shard not hedged yet is hedged
    /// early only as one of them: now if it is, else when it becomes one
    /// (or at the hedge delay).
    pub(super) fn on_early_hedge_timer(&mut self, index: usize) {
        if !self.hedge_due(index) {
            return;
        }
        let r = self.info[index].run;
        let among_last = self.runs.len() - self.resolved <= self.last_few;
        if self.last_few > 0 && self.runs[r].hedges == 0 && !among_last {
            let at = self.clock.start + self.info[index].issued + capped(self.hedge_delay);
            self.timers.push(at, Event::Hedge(index));
            return;
        }
        if self.launch(r, Kind::EarlyHedge) {
            tracing::debug!(shard = self.runs[r].shard.get(), "early hedge sent");
        } else {
            let at = self.clock.start + self.info[index].issued + capped(self.hedge_delay);
            self.timers.push(at, Event::Hedge(index));
        }
    }

    /// Once at most the last few shards are pending (and the call hedges
    /// them), hedges each of them not hedged yet whose newest attempt has
    /// waited the last few's delay, from the budget above its reserve; the
    /// younger ones are hedged by their own timers at that delay. Once per
    /// call.
    ///
    /// In a wide fan-out the last shards are the ones the call waits for:
    /// an early hedge spent on one of them moves the call's end, one spent
    /// on a shard among many still pending rarely does. So the early
    /// budget goes to the last few, earlier than a delay shared by every
    /// shard could send it.
    pub(super) fn hedge_the_last_few(&mut self) {
        let pending = self.runs.len() - self.resolved;
        if self.last_seen || pending > self.last_few || pending == 0 {
            return;
        }
        self.last_seen = true;
        let now = self.clock.since();
        for index in 0..self.info.len() {
            let a = self.info[index];
            if self.hedge_due(index)
                && self.runs[a.run].hedges == 0
                && now.saturating_sub(a.issued) >= self.last_delay
                && self.launch(a.run, Kind::EarlyHedge)
            {
                tracing::debug!(shard = self.runs[a.run].shard.get(), "last shards hedged");
            }
        }
    }

    /// Hedge now? Only the newest attempt of a shard still pending, and
    /// only while it is in flight; [`launch`](Call::launch) then takes a
    /// replica not yet tried and the budget.
    fn hedge_due(&self, index: usize) -> bool {
        let a = self.info[index];
        let run = &self.runs[a.run];
        a.live && run.outcome.is_none() && a.seq == run.attempts
    }

    /// The hedge timer of attempt `index` fired.
    pub(super) fn on_hedge_timer(&mut self, index: usize) {
        let r = self.info[index].run;
        if self.hedge_due(index) && self.launch(r, Kind::Hedge) {
            tracing::debug!(
                shard = self.runs[r].shard.get(),
                delay_us = micros(self.hedge_delay),
                "hedge sent"
            );
        }
    }
}
