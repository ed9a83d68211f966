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
    /// sent, if this call hedges and its shard has attempts left.
    pub(super) fn arm_hedge(&mut self, index: usize) {
        let a = self.info[index];
        if self.hedging && (self.runs[a.run].attempts as usize) < self.max_attempts {
            let (delay, event) = match self.early_delay {
                Some(early) => (early, Event::EarlyHedge(index)),
                None => (self.hedge_delay, Event::Hedge(index)),
            };
            let at = self.clock.start + a.issued + capped(delay);
            self.timers.push(at, event);
        }
    }

    /// The early hedge timer of attempt `index` fired: hedge from the
    /// budget above its reserve, or wait for the hedge delay.
    pub(super) fn on_early_hedge_timer(&mut self, index: usize) {
        if !self.hedge_due(index) {
            return;
        }
        let r = self.info[index].run;
        if self.launch(r, Kind::EarlyHedge) {
            tracing::debug!(shard = self.runs[r].shard.get(), "early hedge sent");
        } else {
            let at = self.clock.start + self.info[index].issued + capped(self.hedge_delay);
            self.timers.push(at, Event::Hedge(index));
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
