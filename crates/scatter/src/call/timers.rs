//! A call's clock and its timers: hedges, attempt timeouts and delayed
//! retries, in one heap under the call's deadline.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use tokio::time::Instant;

/// What a timer does when it fires.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Event {
    /// Maybe hedge attempt `index` early, from the budget above its
    /// reserve (see `Call::hedge_due`).
    EarlyHedge(usize),
    /// Maybe hedge attempt `index` (see `Call::hedge_due`).
    Hedge(usize),
    /// Attempt `index` took too long.
    Timeout(usize),
    /// Run `run` waited out its backoff after a failure.
    Retry(usize),
}

/// The timers of a call. Attempts are armed lazily: an attempt's timers
/// go into the heap only when the call would block, so leaves that answer
/// at once never touch the heap.
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Event)>>,
    /// Attempts launched whose timers are not armed yet.
    pub(super) unarmed: Vec<usize>,
    /// Retries waiting in the heap: the call is not over while any is.
    pub(super) retries_waiting: usize,
}

impl Timers {
    pub(super) fn with_capacity(attempts: usize) -> Self {
        Timers {
            heap: BinaryHeap::new(),
            unarmed: Vec::with_capacity(attempts),
            retries_waiting: 0,
        }
    }

    pub(super) fn push(&mut self, at: Instant, event: Event) {
        if matches!(event, Event::Retry(_)) {
            self.retries_waiting += 1;
        }
        self.heap.push(Reverse((at, event)));
    }

    /// When the next timer fires, if any is set.
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|t| t.0.0)
    }

    /// The next timer due at `now`, removed.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Event> {
        let Reverse((at, event)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        if matches!(event, Event::Retry(_)) {
            self.retries_waiting -= 1;
        }
        Some(event)
    }
}

/// The call's clock: read once per batch of work. Leaves that complete
/// together share a timestamp, which keeps the clock off the per-leaf path.
pub(super) struct Clock {
    pub(super) start: Instant,
    now: Cell<Instant>,
    since: Cell<Duration>,
}

impl Clock {
    pub(super) fn new() -> Self {
        let start = Instant::now();
        Clock {
            start,
            now: Cell::new(start),
            since: Cell::new(Duration::ZERO),
        }
    }

    pub(super) fn tick(&self) {
        let now = Instant::now();
        self.now.set(now);
        self.since.set(now.saturating_duration_since(self.start));
    }

    /// The time at the last tick.
    pub(super) fn now(&self) -> Instant {
        self.now.get()
    }

    /// From the start of the call to the last tick.
    pub(super) fn since(&self) -> Duration {
        self.since.get()
    }
}
