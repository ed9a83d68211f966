//! Retries within a call: after a transient failure or a timeout, the next
//! replica, under the root's retry policy and budget.

use weft_core::mix::mix64;
use weft_core::time::capped;
use weft_core::{Combine, ErrorClass};

use super::Call;
use super::attempts::Kind;
use super::timers::Event;
use crate::{Leaf, ShardOutcome};

impl<L, Req, C, R> Call<'_, L, Req, C, R>
where
    L: Leaf<Req, Response = C::Input>,
    Req: Clone,
    C: Combine,
    R: Fn(Vec<C::Input>) -> C::Input,
{
    /// Attempt `index` of run `r` took longer than the attempt timeout: it
    /// is stopped, and if nothing else is in flight for the shard the next
    /// replica is tried at once (the time is already spent).
    pub(super) fn on_timeout(&mut self, index: usize) {
        if !self.info[index].live {
            return;
        }
        let r = self.info[index].run;
        self.stop(index, false);
        self.runs[r].timed_out = true;
        if self.runs[r].live == 0 && self.runs[r].outcome.is_none() && !self.launch(r, Kind::Retry)
        {
            self.resolve_unretried(r);
        }
    }

    /// Run `r` failed transiently with nothing else in flight: the next
    /// replica after the policy's backoff (at once when it has none), or
    /// the shard's outcome when no attempt, replica, budget or time is
    /// left.
    pub(super) fn retry_after_failure(&mut self, r: usize) {
        let run = &self.runs[r];
        let now = self.clock.now();
        let retried = if now >= self.deadline || run.attempts as usize >= self.max_attempts {
            false
        } else {
            let seed = mix64(self.root.config.seed ^ u64::from(run.shard.get()));
            match self.root.config.retry.next(run.attempts, seed) {
                None => false,
                Some(wait) if wait.is_zero() => self.launch(r, Kind::Failover),
                Some(wait) => {
                    let at = now + capped(wait);
                    let fits = at < self.deadline;
                    if fits {
                        self.timers.push(at, Event::Retry(r));
                    }
                    fits
                }
            }
        };
        if !retried {
            self.resolve_unretried(r);
        }
    }

    /// The backoff of run `r` is over.
    pub(super) fn on_retry_timer(&mut self, r: usize) {
        if self.runs[r].outcome.is_none()
            && self.runs[r].live == 0
            && !self.launch(r, Kind::Failover)
        {
            self.resolve_unretried(r);
        }
    }

    /// Run `r` ends without another attempt: timed out if any attempt did,
    /// else failed with its last (transient) error.
    fn resolve_unretried(&mut self, r: usize) {
        let run = &mut self.runs[r];
        let outcome = if run.timed_out {
            ShardOutcome::TimedOut
        } else {
            ShardOutcome::Failed {
                error: run.last_error.take().unwrap_or_default(),
                class: ErrorClass::Transient,
            }
        };
        self.settle(r, outcome);
    }
}
