//! One call of a root: the shards' runs, their attempts in flight, the
//! timers, and the loop that drives them to a gathered result.
//!
//! ```text
//!  launch first attempts ──▶ loop ─┬─ an attempt ended ─▶ answer / failure ─▶ retry?
//!                                  ├─ hedge timer ──────▶ hedge_due? ─▶ launch hedge
//!                                  ├─ timeout timer ────▶ stop ─▶ retry at once?
//!                                  ├─ retry timer ──────▶ launch retry
//!                                  └─ deadline / policy met ─▶ finish: cancel, report
//! ```
//!
//! One module per concern: `attempts` (launching, the attempt future,
//! stopping), `hedge`, `retry`, `timers` (the heap and the clock).

mod attempts;
mod hedge;
mod retry;
mod timers;

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;
use weft_core::{Classify, Combine, ErrorClass, ShardId};

pub(crate) use attempts::Slot;
use attempts::{Attempt, AttemptEnd, AttemptInfo, Ended, Kind};
use timers::{Clock, Event, Timers};

use crate::{
    CallOptions, Gather, Gathered, Leaf, MAX_ATTEMPTS, Plan, Report, Scatter, ScatterError,
    ShardOutcome, ShardReport,
};

/// One shard's progress in a call.
struct Run<Req, T> {
    shard: ShardId,
    request: Req,
    tried: [usize; MAX_ATTEMPTS],
    attempts: u32,
    hedges: u32,
    retries: u32,
    /// Of the retries, those after a transient error.
    failovers: u32,
    live: u32,
    /// Answers so far, for a quorum.
    answers: Vec<T>,
    last_error: Option<String>,
    timed_out: bool,
    outcome: Option<ShardOutcome>,
    finished: Duration,
}

/// A call in progress.
pub(crate) struct Call<'a, L, Req, C, R>
where
    L: Leaf<Req>,
    C: Combine,
{
    root: &'a Scatter<L>,
    combine: &'a C,
    resolve: R,
    /// One per attempt the call may make; attempt futures borrow them.
    slots: &'a [Slot],
    clock: Clock,
    deadline: Instant,
    hedging: bool,
    hedge_delay: Duration,
    /// The early hedge delay, below `hedge_delay`, if the call hedges early.
    early_delay: Option<Duration>,
    /// When the call hedges early it also hedges its last few shards: once
    /// at most `last_few` are pending and `last_delay` has passed, each of
    /// them not hedged yet is, from the early budget (0: no such rule).
    last_few: usize,
    last_delay: Duration,
    /// Whether the last few shards were looked at (once per call).
    last_seen: bool,
    quorum: usize,
    max_attempts: usize,
    /// Shard index → its run (`usize::MAX`: not asked).
    asked: Vec<usize>,
    runs: Vec<Run<Req, C::Input>>,
    info: Vec<AttemptInfo>,
    /// Attempts launched and not polled yet: each is polled once where it
    /// is, and joins `inflight` only if it is not ready at once, so leaves
    /// that answer at once never pay for the set.
    fresh: Vec<Pin<Box<Attempt<'a, L::Future>>>>,
    /// Ended fresh attempts, waiting for their bookkeeping.
    ready: Vec<AttemptEnd<C::Input, L::Error>>,
    inflight: FuturesUnordered<Pin<Box<Attempt<'a, L::Future>>>>,
    timers: Timers,
    acc: C::Acc,
    answered: usize,
    resolved: usize,
    deadline_hit: bool,
}

/// The checks a call makes before it starts, and the slots its attempts
/// borrow (allocated by the caller, so that they outlive the call).
pub(crate) struct Prepared<Req> {
    start: Clock,
    deadline: Instant,
    asked: Vec<usize>,
    plan: Plan<Req>,
    quorum: usize,
    max_attempts: usize,
}

impl<Req> Prepared<Req> {
    /// Checks `plan` and `options` against the root.
    pub(crate) fn new<L>(
        root: &Scatter<L>,
        plan: Plan<Req>,
        options: &CallOptions,
    ) -> Result<Self, ScatterError> {
        // The deadline and hedges are tokio timers: fail plainly where no
        // runtime is running.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ScatterError::NoRuntime);
        }
        let start = Clock::new();
        let deadline_after = options.deadline.unwrap_or(root.config.deadline);
        if deadline_after.is_zero() {
            return Err(ScatterError::ZeroDuration("deadline"));
        }
        let deadline = start.start + weft_core::time::capped(deadline_after);
        let mut asked = vec![usize::MAX; root.topology.shard_count()];
        for (i, (shard, _)) in plan.entries.iter().enumerate() {
            let Some(slot) = asked.get_mut(shard.index()) else {
                return Err(ScatterError::UnknownShard(*shard));
            };
            if *slot != usize::MAX {
                return Err(ScatterError::DuplicateShard(*shard));
            }
            *slot = i;
        }
        let quorum = match root.config.gather {
            Gather::Quorum(q) => q,
            _ => 1,
        };
        Ok(Prepared {
            start,
            deadline,
            asked,
            max_attempts: root.config.attempts_per_shard(quorum),
            plan,
            quorum,
        })
    }

    /// The attempt slots the call needs.
    pub(crate) fn slots(&self) -> Box<[Slot]> {
        (0..self.plan.entries.len() * self.max_attempts)
            .map(|_| Slot::default())
            .collect()
    }
}

impl<'a, L, Req, C, R> Call<'a, L, Req, C, R>
where
    L: Leaf<Req, Response = C::Input>,
    Req: Clone,
    C: Combine,
    R: Fn(Vec<C::Input>) -> C::Input,
{
    pub(crate) fn new(
        root: &'a Scatter<L>,
        prepared: Prepared<Req>,
        slots: &'a [Slot],
        combine: &'a C,
        options: &CallOptions,
        resolve: R,
    ) -> Self {
        let Prepared {
            start,
            deadline,
            asked,
            plan,
            quorum,
            max_attempts,
        } = prepared;
        let runs: Vec<_> = plan
            .entries
            .into_iter()
            .map(|(shard, request)| Run {
                shard,
                request,
                tried: [usize::MAX; MAX_ATTEMPTS],
                attempts: 0,
                hedges: 0,
                retries: 0,
                failovers: 0,
                live: 0,
                answers: Vec::new(),
                last_error: None,
                timed_out: false,
                outcome: None,
                finished: Duration::ZERO,
            })
            .collect();
        let delays = root.hedger.delays();
        let hedging = root.hedger.enabled() && !options.no_hedge;
        let (last_few, last_delay) = match delays.last {
            Some(delay) if hedging => (root.config.last_few(runs.len()), delay),
            _ => (0, Duration::MAX),
        };
        Call {
            root,
            combine,
            resolve,
            slots,
            clock: start,
            deadline,
            hedging,
            hedge_delay: delays.late,
            early_delay: delays.early,
            last_few,
            last_delay,
            last_seen: false,
            quorum,
            max_attempts,
            asked,
            info: Vec::with_capacity(slots.len()),
            fresh: Vec::with_capacity(slots.len()),
            ready: Vec::new(),
            inflight: FuturesUnordered::new(),
            timers: Timers::with_capacity(runs.len() * quorum),
            runs,
            acc: combine.create(),
            answered: 0,
            resolved: 0,
            deadline_hit: false,
        }
    }

    /// Runs the call to its end: every shard resolved, the policy met, or
    /// the deadline.
    pub(crate) async fn run(mut self) -> Gathered<C::Output> {
        self.start();
        let mut sleep = pin!(tokio::time::sleep_until(self.deadline));
        let mut armed_for = self.deadline;
        loop {
            // Every pending shard has an attempt in flight or a retry
            // waiting, so when neither is left every shard is resolved.
            if self.policy_met() {
                break;
            }
            if !self.fresh.is_empty() {
                std::future::poll_fn(|cx| {
                    self.poll_fresh(cx);
                    Poll::Ready(())
                })
                .await;
                let mut ready = std::mem::take(&mut self.ready);
                for (index, ended) in ready.drain(..) {
                    self.ended(index, ended);
                }
                self.ready = ready;
                self.hedge_the_last_few();
                continue;
            }
            if self.inflight.is_empty() && self.timers.retries_waiting == 0 {
                break;
            }
            // Completions that are ready now, without arming anything.
            let ready = match futures::poll!(self.inflight.next()) {
                Poll::Ready(Some(done)) => Some(done),
                _ => None,
            };
            let (index, ended) = match ready {
                Some(done) => done,
                None => {
                    self.clock.tick();
                    self.arm();
                    let next = self
                        .timers
                        .next()
                        .map_or(self.deadline, |t| t.min(self.deadline));
                    if next != armed_for {
                        sleep.as_mut().reset(next);
                        armed_for = next;
                    }
                    tokio::select! {
                        biased;
                        done = self.inflight.next(), if !self.inflight.is_empty() => match done {
                            Some(done) => {
                                self.clock.tick();
                                done
                            }
                            None => continue,
                        },
                        () = &mut sleep => {
                            self.clock.tick();
                            if self.clock.now() >= self.deadline {
                                self.deadline_hit = true;
                                tracing::debug!(answered = self.answered, asked = self.runs.len(), "scatter deadline hit");
                                break;
                            }
                            self.fire_timers();
                            continue;
                        }
                    }
                }
            };
            self.ended(index, ended);
            self.hedge_the_last_few();
        }
        self.finish()
    }

    /// Polls each fresh attempt once: the ended ones go to `ready`, the
    /// others into `inflight` (which polls them again, with its own waker).
    fn poll_fresh(&mut self, cx: &mut Context<'_>) {
        for mut attempt in self.fresh.drain(..) {
            match attempt.as_mut().poll(cx) {
                Poll::Ready(ended) => self.ready.push(ended),
                Poll::Pending => self.inflight.push(attempt),
            }
        }
    }

    /// First attempts (a quorum's worth) for every shard.
    fn start(&mut self) {
        for r in 0..self.runs.len() {
            for _ in 0..self.quorum {
                self.launch(r, Kind::First);
            }
            if self.runs[r].attempts == 0 {
                self.settle(
                    r,
                    ShardOutcome::Failed {
                        error: "no replica available".into(),
                        class: ErrorClass::Transient,
                    },
                );
            }
        }
        self.root
            .budget
            .earn(self.runs.iter().map(|run| u64::from(run.attempts)).sum());
    }

    fn policy_met(&self) -> bool {
        match self.root.config.gather {
            Gather::FirstK(k) => self.answered >= k.min(self.runs.len()),
            _ => self.resolved == self.runs.len(),
        }
    }

    /// Arms the timers of the attempts launched since the last wait.
    fn arm(&mut self) {
        let mut unarmed = std::mem::take(&mut self.timers.unarmed);
        for &index in &unarmed {
            let a = self.info[index];
            if !a.live {
                continue;
            }
            self.arm_hedge(index);
            if let Some(t) = self.root.config.attempt_timeout {
                let at = self.clock.start + a.issued + weft_core::time::capped(t);
                self.timers.push(at, Event::Timeout(index));
            }
        }
        unarmed.clear();
        self.timers.unarmed = unarmed;
    }

    fn fire_timers(&mut self) {
        while let Some(event) = self.timers.pop_due(self.clock.now()) {
            match event {
                Event::EarlyHedge(index) => self.on_early_hedge_timer(index),
                Event::Hedge(index) => self.on_hedge_timer(index),
                Event::Timeout(index) => self.on_timeout(index),
                Event::Retry(r) => self.on_retry_timer(r),
            }
        }
    }

    /// Attempt `index` ended.
    fn ended(&mut self, index: usize, ended: Ended<C::Input, L::Error>) {
        let a = self.info[index];
        if !a.live {
            return; // a loser we cancelled
        }
        let root = self.root;
        self.info[index].live = false;
        root.replicas.finished(a.replica);
        let r = a.run;
        self.runs[r].live -= 1;
        let result = match ended {
            Ended::Cancelled => return,
            Ended::Panicked => Err(("leaf panicked".to_string(), ErrorClass::Permanent)),
            Ended::Answer(Ok(answer)) => {
                root.hedger
                    .record(self.clock.since().saturating_sub(a.issued));
                Ok(answer)
            }
            Ended::Answer(Err(e)) => Err((e.to_string(), e.class())),
        };
        if self.runs[r].outcome.is_some() {
            return;
        }
        match result {
            Ok(answer) => self.answer(r, a, answer),
            Err((message, class)) => {
                root.replicas.failure(a.replica);
                if class == ErrorClass::Permanent {
                    self.settle(
                        r,
                        ShardOutcome::Failed {
                            error: message,
                            class,
                        },
                    );
                    self.stop_run(r, false);
                } else {
                    self.runs[r].last_error = Some(message);
                    // An error never beats a success still in flight.
                    if self.runs[r].live == 0 {
                        self.retry_after_failure(r);
                    }
                }
            }
        }
    }

    /// An answer for run `r` from attempt `a`: combined at once, or kept
    /// until a quorum's worth agree.
    fn answer(&mut self, r: usize, a: AttemptInfo, answer: C::Input) {
        self.root.replicas.success(a.replica);
        let run = &mut self.runs[r];
        let value = if self.quorum == 1 {
            Some(answer)
        } else {
            run.answers.push(answer);
            (run.answers.len() >= self.quorum)
                .then(|| (self.resolve)(std::mem::take(&mut run.answers)))
        };
        if let Some(value) = value {
            self.combine.add(&mut self.acc, value);
            self.answered += 1;
            self.settle(
                r,
                ShardOutcome::Answered {
                    replica: a.replica,
                    attempt: a.seq,
                },
            );
            self.stop_run(r, true);
        }
    }

    /// Run `r` ends with `outcome`. A failure reads the clock (failures
    /// are rare; answers share the batch's reading), so that its elapsed
    /// time is its own.
    fn settle(&mut self, r: usize, outcome: ShardOutcome) {
        if !matches!(outcome, ShardOutcome::Answered { .. }) {
            self.clock.tick();
        }
        let run = &mut self.runs[r];
        run.outcome = Some(outcome);
        run.finished = self.clock.since();
        self.resolved += 1;
    }

    /// Whatever is still pending timed out at the deadline, or is no longer
    /// needed once the policy was met; every attempt is cancelled and the
    /// report written.
    fn finish(mut self) -> Gathered<C::Output> {
        self.clock.tick();
        // Answers earn failovers for later calls.
        self.root.retry_budget.earn(self.answered as u64);
        let elapsed = self.clock.since();
        for r in 0..self.runs.len() {
            if self.runs[r].outcome.is_none() {
                self.runs[r].outcome = Some(if self.deadline_hit {
                    ShardOutcome::TimedOut
                } else {
                    ShardOutcome::Cancelled
                });
                self.runs[r].finished = elapsed;
            }
            self.stop_run(r, false);
        }
        self.fresh.clear();
        self.inflight.clear();
        let lines = self
            .asked
            .iter()
            .enumerate()
            .map(|(shard, &r)| match self.runs.get_mut(r) {
                Some(run) => ShardReport {
                    shard: run.shard,
                    outcome: run.outcome.take().unwrap_or(ShardOutcome::Cancelled),
                    attempts: run.attempts,
                    hedges: run.hedges,
                    retries: run.retries,
                    failovers: run.failovers,
                    elapsed: run.finished,
                },
                None => ShardReport {
                    shard: ShardId::new(shard as u32),
                    outcome: ShardOutcome::Skipped,
                    attempts: 0,
                    hedges: 0,
                    retries: 0,
                    failovers: 0,
                    elapsed: Duration::ZERO,
                },
            })
            .collect();
        let report = Report::assemble(
            lines,
            self.runs.len(),
            self.root.config.gather,
            self.deadline_hit,
            self.hedge_delay,
            elapsed,
        );
        Gathered {
            output: self.combine.extract(self.acc),
            report,
        }
    }
}
