//! The root: fans a plan out over the topology and gathers the answers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use futures::task::AtomicWaker;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use weft_core::time::{capped, micros};
use weft_core::{Classify, Combine, Health, ShardId};

use crate::budget::Budget;
use crate::latency::LatencyWindow;
use crate::replicas::Replicas;
use crate::{
    CallOptions, Config, Gather, Gathered, Leaf, LeafContext, MAX_ATTEMPTS, Outcome, Plan, Report,
    ScatterError, ShardReport, Topology,
};

/// A scatter/gather root over a topology of shards × replicas.
///
/// Holds what outlives a call: replica health and load, the latency window
/// that sets the hedge delay, and the extra-load budget. Share it (`&self`
/// or `Arc`) between concurrent calls.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft_core::{Count, ErrorClass, Classify};
/// use weft_scatter::{Config, LeafContext, Plan, Scatter, Topology};
///
/// #[derive(Debug)]
/// struct Unavailable;
/// impl std::fmt::Display for Unavailable {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("unavailable") }
/// }
/// impl Classify for Unavailable { fn class(&self) -> ErrorClass { ErrorClass::Transient } }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let leaf = |query: &'static str, cx: LeafContext| async move {
///     Ok::<_, Unavailable>(format!("{query} from shard {}", cx.shard.get()))
/// };
/// let root = Scatter::new(Topology::sharded(4, 2)?, leaf, Config::new(Duration::from_millis(100)))?;
/// let gathered = root.gather(Plan::broadcast(4, "q"), &Count::new()).await?;
/// assert_eq!(gathered.require_complete()?, 4);
/// # Ok::<(), weft_scatter::ScatterError>(())
/// # }).unwrap();
/// ```
pub struct Scatter<L> {
    leaf: L,
    topology: Topology,
    config: Config,
    replicas: Replicas,
    latency: LatencyWindow,
    budget: Budget,
    slots: Option<Semaphore>,
    hedge_cache: DelayCache,
}

/// The last computed hedge delay (µs) and the sample count it was computed
/// at; `u64::MAX` when none is cached.
#[derive(Debug)]
struct DelayCache {
    at: std::sync::atomic::AtomicU64,
    delay_us: std::sync::atomic::AtomicU64,
}

impl DelayCache {
    fn get(&self) -> (u64, u64) {
        (
            self.at.load(Ordering::Relaxed),
            self.delay_us.load(Ordering::Relaxed),
        )
    }
    fn set(&self, at: u64, delay_us: u64) {
        self.at.store(at, Ordering::Relaxed);
        self.delay_us.store(delay_us, Ordering::Relaxed);
    }
}

impl<L> std::fmt::Debug for Scatter<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scatter")
            .field("topology", &self.topology)
            .field("config", &self.config)
            .field("replicas", &self.replicas)
            .field("latency", &self.latency)
            .finish_non_exhaustive()
    }
}

/// A cancellation flag and waker per attempt, borrowed by the attempt's
/// future so that a loser can be stopped (and dropped) at once.
#[derive(Default)]
struct Slot {
    cancelled: AtomicBool,
    waker: AtomicWaker,
}

/// How an attempt ended, as the attempt's future reports it.
enum Ended<T, E> {
    Answer(Result<T, E>),
    Panicked,
    Cancelled,
}

/// Bookkeeping for one attempt (the loop's, not the future's).
#[derive(Clone, Copy)]
struct AttemptInfo {
    run: usize,
    replica: usize,
    seq: u32,
    /// When it was sent, from the start of the call.
    issued: Duration,
    live: bool,
}

/// One shard's progress in a call.
struct Run<Req, T> {
    shard: ShardId,
    request: Req,
    tried: [usize; MAX_ATTEMPTS],
    attempts: u32,
    hedges: u32,
    retries: u32,
    live: u32,
    answers: Vec<T>,
    last_error: Option<(String, bool)>,
    timed_out: bool,
    outcome: Option<Outcome>,
    finished: Duration,
}

/// Why an attempt is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    First,
    Hedge,
    Retry,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Hedge(usize),
    Timeout(usize),
}

impl<L> Scatter<L> {
    /// A root over `topology` calling `leaf`.
    ///
    /// # Errors
    ///
    /// A [`ScatterError`] naming the first invalid setting of `config`.
    pub fn new(topology: Topology, leaf: L, config: Config) -> Result<Self, ScatterError> {
        config.validate(&topology)?;
        Ok(Scatter {
            replicas: Replicas::new(
                topology.replica_count(),
                config.health,
                config.probation,
                config.seed,
            ),
            latency: LatencyWindow::new(config.hedging.window),
            budget: Budget::new(config.max_extra_load, config.budget_window),
            slots: config.max_in_flight.map(Semaphore::new),
            hedge_cache: DelayCache {
                at: std::sync::atomic::AtomicU64::new(0),
                delay_us: std::sync::atomic::AtomicU64::new(u64::MAX),
            },
            leaf,
            topology,
            config,
        })
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// A replica's current health.
    pub fn replica_health(&self, replica: usize) -> Health {
        self.replicas.health(replica)
    }

    /// The hedge delay a call starting now would use.
    ///
    /// Recomputed from the latency window after every `window / 16` new
    /// samples (a percentile reads the whole histogram), cached in between.
    pub fn hedge_delay(&self) -> Duration {
        let samples = self.latency.samples();
        let (at, cached) = self.hedge_cache.get();
        let every = (self.config.hedging.window / 16).max(16);
        if cached != u64::MAX && samples >= at && samples - at < every {
            return Duration::from_micros(cached);
        }
        let h = &self.config.hedging;
        let delay = self
            .latency
            .percentile(self.config.percentile(), h.min_samples)
            .unwrap_or(h.fallback)
            .clamp(h.floor, h.ceiling);
        self.hedge_cache
            .set(samples, micros(delay).min(u64::MAX - 1));
        delay
    }

    /// Sends `plan` to its shards and combines the answers with `combine`,
    /// under the root's policy and deadline.
    ///
    /// # Errors
    ///
    /// Only for a plan that names a shard outside the topology or one shard
    /// twice. Shards that fail or time out are in the report, not errors:
    /// see [`Gathered::require_complete`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels (drops) every leaf call in flight.
    pub async fn gather<Req, C>(
        &self,
        plan: Plan<Req>,
        combine: &C,
    ) -> Result<Gathered<C::Output>, ScatterError>
    where
        L: Leaf<Req, Response = C::Input>,
        Req: Clone,
        C: Combine,
    {
        self.gather_resolved(plan, combine, CallOptions::default(), first)
            .await
    }

    /// [`gather`](Scatter::gather) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`gather`](Scatter::gather), and [`ScatterError::ZeroDuration`] for
    /// a zero deadline.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels every leaf call in flight.
    pub async fn gather_with<Req, C>(
        &self,
        plan: Plan<Req>,
        combine: &C,
        options: CallOptions,
    ) -> Result<Gathered<C::Output>, ScatterError>
    where
        L: Leaf<Req, Response = C::Input>,
        Req: Clone,
        C: Combine,
    {
        self.gather_resolved(plan, combine, options, first).await
    }

    /// [`gather_with`](Scatter::gather_with) with a resolver for
    /// [`Gather::Quorum`]: it receives the `q` answers of a shard (in arrival
    /// order) and returns the one to combine, e.g. the highest version when
    /// replicas disagree. Other policies never call it.
    ///
    /// # Errors
    ///
    /// As [`gather_with`](Scatter::gather_with).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels every leaf call in flight.
    pub async fn gather_resolved<Req, C, R>(
        &self,
        plan: Plan<Req>,
        combine: &C,
        options: CallOptions,
        resolve: R,
    ) -> Result<Gathered<C::Output>, ScatterError>
    where
        L: Leaf<Req, Response = C::Input>,
        Req: Clone,
        C: Combine,
        R: Fn(Vec<C::Input>) -> C::Input,
    {
        // The deadline and hedges are tokio timers: fail plainly where no
        // runtime is running.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ScatterError::NoRuntime);
        }
        // One clock read per batch of work: leaves that complete together
        // share a timestamp, which keeps the clock off the per-leaf path.
        let clock = Clock::new();
        let start = clock.start;
        let deadline_after = options.deadline.unwrap_or(self.config.deadline);
        if deadline_after.is_zero() {
            return Err(ScatterError::ZeroDuration("deadline"));
        }
        let deadline = start + capped(deadline_after);
        let shard_count = self.topology.shard_count();
        let mut asked = vec![usize::MAX; shard_count];
        for (i, (shard, _)) in plan.entries.iter().enumerate() {
            let Some(slot) = asked.get_mut(shard.index()) else {
                return Err(ScatterError::UnknownShard(*shard));
            };
            if *slot != usize::MAX {
                return Err(ScatterError::DuplicateShard(*shard));
            }
            *slot = i;
        }
        let hedging = self.config.hedging.enabled && !options.no_hedge;
        let hedge_delay = self.hedge_delay();
        let quorum = match self.config.gather {
            Gather::Quorum(q) => q,
            _ => 1,
        };
        let max_attempts = (self.config.hedging.max_attempts as usize)
            .max(quorum)
            .min(MAX_ATTEMPTS);

        let mut runs: Vec<Run<Req, C::Input>> = plan
            .entries
            .into_iter()
            .map(|(shard, request)| Run {
                shard,
                request,
                tried: [usize::MAX; MAX_ATTEMPTS],
                attempts: 0,
                hedges: 0,
                retries: 0,
                live: 0,
                answers: Vec::new(),
                last_error: None,
                timed_out: false,
                outcome: None,
                finished: Duration::ZERO,
            })
            .collect();
        let slots: Box<[Slot]> = (0..runs.len() * max_attempts)
            .map(|_| Slot::default())
            .collect();
        let mut info: Vec<AttemptInfo> = Vec::with_capacity(slots.len());
        let mut inflight = FuturesUnordered::new();
        let mut timers: BinaryHeap<Reverse<(Instant, Event)>> = BinaryHeap::new();
        // Attempts launched but whose timers are not armed yet: arming waits
        // until the loop would block, so leaves that answer at once never
        // touch the timer heap.
        let mut unarmed: Vec<usize> = Vec::with_capacity(runs.len() * quorum);
        let mut acc = combine.create();
        let (mut answered, mut resolved) = (0usize, 0usize);

        // Starts one attempt of run `r`; false if no replica is left or, for
        // a hedge or retry, the budget is spent.
        let launch = |r: usize,
                      kind: Kind,
                      runs: &mut Vec<Run<Req, C::Input>>,
                      info: &mut Vec<AttemptInfo>,
                      inflight: &mut FuturesUnordered<_>,
                      unarmed: &mut Vec<usize>|
         -> bool {
            let run = &mut runs[r];
            let n = run.attempts as usize;
            if n >= max_attempts || info.len() >= slots.len() {
                return false;
            }
            let Some(replica) = self.replicas.pick(
                self.topology.replicas_of(run.shard),
                &run.tried[..n],
                clock.now(),
            ) else {
                return false;
            };
            match kind {
                Kind::First => {}
                Kind::Hedge | Kind::Retry if !self.budget.take() => return false,
                Kind::Hedge => run.hedges += 1,
                Kind::Retry => run.retries += 1,
            }
            let index = info.len();
            run.tried[n] = replica;
            run.attempts += 1;
            run.live += 1;
            info.push(AttemptInfo {
                run: r,
                replica,
                seq: run.attempts,
                issued: clock.since(),
                live: true,
            });
            self.replicas.started(replica);
            let cx = LeafContext {
                shard: run.shard,
                replica,
                attempt: run.attempts,
                hedge: kind == Kind::Hedge,
                deadline,
            };
            // A leaf that panics before it returns its future fails its
            // attempt, as one that panics while polled does.
            let request = run.request.clone();
            let call =
                std::panic::catch_unwind(AssertUnwindSafe(|| self.leaf.call(request, cx))).ok();
            inflight.push(Attempt {
                slot: &slots[index],
                index,
                acquire: self
                    .slots
                    .as_ref()
                    .map(|s| Box::pin(s.acquire()) as Acquire<'_>),
                permit: None,
                call,
            });
            unarmed.push(index);
            true
        };

        for r in 0..runs.len() {
            for _ in 0..quorum {
                launch(
                    r,
                    Kind::First,
                    &mut runs,
                    &mut info,
                    &mut inflight,
                    &mut unarmed,
                );
            }
            if runs[r].attempts == 0 {
                runs[r].outcome = Some(Outcome::Failed {
                    error: "no replica available".into(),
                    transient: true,
                });
                resolved += 1;
            }
        }

        self.budget
            .earn(runs.iter().map(|run| u64::from(run.attempts)).sum());
        let mut sleep = pin!(tokio::time::sleep_until(deadline));
        let mut armed_for = deadline;
        let mut deadline_hit = false;
        let policy_met = |answered: usize, resolved: usize, total: usize| match self.config.gather {
            Gather::FirstK(k) => answered >= k.min(total),
            _ => resolved == total,
        };

        loop {
            // Every pending shard has an attempt in flight, so an empty set
            // means every shard is resolved.
            if policy_met(answered, resolved, runs.len()) || inflight.is_empty() {
                break;
            }
            // Completions that are ready now, without arming anything.
            let ready = match futures::poll!(inflight.next()) {
                Poll::Ready(Some(done)) => Some(done),
                _ => None,
            };
            if ready.is_none() {
                clock.tick();
            }
            let (index, ended) = match ready {
                Some(done) => done,
                None => {
                    for index in unarmed.drain(..) {
                        let a = info[index];
                        if !a.live {
                            continue;
                        }
                        if hedging && runs[a.run].attempts < max_attempts as u32 {
                            timers.push(Reverse((
                                start + a.issued + capped(hedge_delay),
                                Event::Hedge(index),
                            )));
                        }
                        if let Some(t) = self.config.attempt_timeout {
                            timers.push(Reverse((
                                start + a.issued + capped(t),
                                Event::Timeout(index),
                            )));
                        }
                    }
                    let next = timers.peek().map_or(deadline, |t| t.0.0.min(deadline));
                    if next != armed_for {
                        sleep.as_mut().reset(next);
                        armed_for = next;
                    }
                    tokio::select! {
                        biased;
                        done = inflight.next(), if !inflight.is_empty() => match done {
                            Some(done) => {
                                clock.tick();
                                done
                            }
                            None => continue,
                        },
                        () = &mut sleep => {
                            clock.tick();
                            let t = clock.now();
                            if t >= deadline {
                                deadline_hit = true;
                                tracing::debug!(answered, asked = runs.len(), "scatter deadline hit");
                                break;
                            }
                            while let Some(Reverse((at, event))) = timers.peek().copied() {
                                if at > t {
                                    break;
                                }
                                timers.pop();
                                match event {
                                    Event::Hedge(index) => {
                                        let a = info[index];
                                        let run = &runs[a.run];
                                        // Hedge only the newest attempt of a
                                        // pending shard, and only on budget.
                                        if a.live
                                            && run.outcome.is_none()
                                            && a.seq == run.attempts
                                            && launch(a.run, Kind::Hedge, &mut runs, &mut info, &mut inflight, &mut unarmed)
                                        {
                                            tracing::debug!(shard = runs[a.run].shard.get(), delay_us = micros(hedge_delay), "hedge sent");
                                        }
                                    }
                                    Event::Timeout(index) => {
                                        if !info[index].live {
                                            continue;
                                        }
                                        let r = info[index].run;
                                        self.stop(&slots, &mut info, &mut runs, index, false, clock.since());
                                        runs[r].timed_out = true;
                                        if runs[r].live == 0
                                            && runs[r].outcome.is_none()
                                            && !launch(r, Kind::Retry, &mut runs, &mut info, &mut inflight, &mut unarmed) {
                                            runs[r].outcome = Some(Outcome::TimedOut);
                                            runs[r].finished = clock.since();
                                            resolved += 1;
                                        }
                                    }
                                }
                            }
                            continue;
                        }
                    }
                }
            };

            let a = info[index];
            if !a.live {
                continue; // a loser we cancelled
            }
            info[index].live = false;
            self.replicas.finished(a.replica);
            let r = a.run;
            runs[r].live -= 1;
            let result = match ended {
                Ended::Cancelled => continue,
                Ended::Panicked => Err(("leaf panicked".to_string(), false)),
                Ended::Answer(Ok(answer)) => {
                    self.latency.record(clock.since().saturating_sub(a.issued));
                    Ok(answer)
                }
                Ended::Answer(Err(e)) => Err((e.to_string(), e.is_transient())),
            };
            if runs[r].outcome.is_some() {
                continue;
            }
            match result {
                Ok(answer) => {
                    self.replicas.success(a.replica);
                    let run = &mut runs[r];
                    let value = if quorum == 1 {
                        Some(answer)
                    } else {
                        run.answers.push(answer);
                        (run.answers.len() >= quorum)
                            .then(|| resolve(std::mem::take(&mut run.answers)))
                    };
                    if let Some(value) = value {
                        combine.add(&mut acc, value);
                        run.outcome = Some(Outcome::Answered {
                            replica: a.replica,
                            attempt: a.seq,
                        });
                        run.finished = clock.since();
                        answered += 1;
                        resolved += 1;
                        self.stop_run(&slots, &mut info, &mut runs, r, true, clock.since());
                    }
                }
                Err((message, transient)) => {
                    self.replicas.failure(a.replica);
                    runs[r].last_error = Some((message.clone(), transient));
                    if !transient {
                        runs[r].outcome = Some(Outcome::Failed {
                            error: message,
                            transient: false,
                        });
                        runs[r].finished = clock.since();
                        resolved += 1;
                        self.stop_run(&slots, &mut info, &mut runs, r, false, clock.since());
                    } else if runs[r].live == 0 {
                        // Nothing else in flight for this shard: try the next
                        // replica at once, if the budget allows.
                        let retried = clock.now() < deadline
                            && launch(
                                r,
                                Kind::Retry,
                                &mut runs,
                                &mut info,
                                &mut inflight,
                                &mut unarmed,
                            );
                        if !retried {
                            runs[r].outcome = Some(if runs[r].timed_out {
                                Outcome::TimedOut
                            } else {
                                Outcome::Failed {
                                    error: message,
                                    transient: true,
                                }
                            });
                            runs[r].finished = clock.since();
                            resolved += 1;
                        }
                    }
                }
            }
        }

        // Whatever is still pending: timed out at the deadline, or no longer
        // needed once the policy was met.
        clock.tick();
        let elapsed = clock.since();
        for r in 0..runs.len() {
            if runs[r].outcome.is_none() {
                runs[r].outcome = Some(if deadline_hit {
                    Outcome::TimedOut
                } else {
                    Outcome::Cancelled
                });
                runs[r].finished = elapsed;
            }
            self.stop_run(&slots, &mut info, &mut runs, r, false, clock.since());
        }
        drop(inflight);

        let mut report = Report {
            shards: Vec::with_capacity(shard_count),
            asked: runs.len(),
            answered: 0,
            timed_out: 0,
            failed: 0,
            cancelled: 0,
            skipped: 0,
            leaf_requests: 0,
            hedges: 0,
            retries: 0,
            complete: false,
            policy_met: false,
            deadline_hit,
            hedge_delay,
            elapsed,
        };
        for (shard, &r) in asked.iter().enumerate() {
            let line = match runs.get_mut(r) {
                Some(run) => ShardReport {
                    shard: run.shard,
                    outcome: run.outcome.take().unwrap_or(Outcome::Cancelled),
                    attempts: run.attempts,
                    hedges: run.hedges,
                    retries: run.retries,
                    elapsed: run.finished,
                },
                None => ShardReport {
                    shard: ShardId::new(shard as u32),
                    outcome: Outcome::Skipped,
                    attempts: 0,
                    hedges: 0,
                    retries: 0,
                    elapsed: Duration::ZERO,
                },
            };
            match line.outcome {
                Outcome::Answered { .. } => report.answered += 1,
                Outcome::TimedOut => report.timed_out += 1,
                Outcome::Failed { .. } => report.failed += 1,
                Outcome::Cancelled => report.cancelled += 1,
                Outcome::Skipped => report.skipped += 1,
            }
            report.leaf_requests += line.attempts;
            report.hedges += line.hedges;
            report.retries += line.retries;
            report.shards.push(line);
        }
        report.complete = report.answered == report.asked;
        report.policy_met = match self.config.gather {
            Gather::FirstK(k) => report.answered >= k,
            Gather::Fraction(f) => report.answered as f64 >= (f * report.asked as f64).ceil(),
            Gather::All | Gather::Quorum(_) => report.complete,
        };
        Ok(Gathered {
            output: combine.extract(acc),
            report,
        })
    }

    /// Cancels attempt `index`: its future is woken and dropped. A loser to
    /// a faster replica (`slow`) counts against its replica's health, and
    /// its elapsed time enters the latency window as a lower bound, so that
    /// cancelled stragglers do not vanish from the percentile.
    fn stop<Req, T>(
        &self,
        slots: &[Slot],
        info: &mut [AttemptInfo],
        runs: &mut [Run<Req, T>],
        index: usize,
        slow: bool,
        since: Duration,
    ) {
        let a = info[index];
        if !a.live {
            return;
        }
        info[index].live = false;
        runs[a.run].live -= 1;
        self.replicas.finished(a.replica);
        self.latency.record(since.saturating_sub(a.issued));
        if slow || runs[a.run].outcome.is_none() {
            // Timed out, or beaten by a hedge: the replica was slow.
            self.replicas.failure(a.replica);
        }
        slots[index].cancelled.store(true, Ordering::Release);
        slots[index].waker.wake();
    }

    /// Cancels every live attempt of run `r`.
    fn stop_run<Req, T>(
        &self,
        slots: &[Slot],
        info: &mut [AttemptInfo],
        runs: &mut [Run<Req, T>],
        r: usize,
        slow: bool,
        since: Duration,
    ) {
        if runs[r].live == 0 {
            return;
        }
        for index in 0..info.len() {
            if info[index].run == r && info[index].live {
                self.stop(slots, info, runs, index, slow, since);
            }
        }
    }
}

/// The call's clock: read once per batch of work.
struct Clock {
    start: Instant,
    now: std::cell::Cell<Instant>,
    since: std::cell::Cell<Duration>,
}

impl Clock {
    fn new() -> Self {
        let start = Instant::now();
        Clock {
            start,
            now: std::cell::Cell::new(start),
            since: std::cell::Cell::new(Duration::ZERO),
        }
    }
    fn tick(&self) {
        let now = Instant::now();
        self.now.set(now);
        self.since.set(now.saturating_duration_since(self.start));
    }
    fn now(&self) -> Instant {
        self.now.get()
    }
    fn since(&self) -> Duration {
        self.since.get()
    }
}

/// The quorum resolver used when none is given: the first answer.
fn first<T>(answers: Vec<T>) -> T {
    // invariant: a quorum is at least 1, so `answers` is never empty.
    answers
        .into_iter()
        .next()
        .expect("quorum answers are never empty")
}

type Acquire<'a> = Pin<
    Box<
        dyn Future<Output = Result<tokio::sync::SemaphorePermit<'a>, tokio::sync::AcquireError>>
            + Send
            + 'a,
    >,
>;

pin_project_lite::pin_project! {
    /// One attempt: waits for a concurrency slot if the root limits them,
    /// runs the leaf, turns a panic into an outcome, and ends at once when
    /// cancelled (the root then drops it, and the leaf's future with it).
    struct Attempt<'a, F> {
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
    type Output = (usize, Ended<T, E>);

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
