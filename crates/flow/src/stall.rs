//! The stall watchdog: a warning when a send has waited for room so long
//! that the edge's output is probably never read (the usual cause of a
//! pipeline that hangs: outputs of one stage read one after another, or a
//! queue awaited before its output).
//!
//! Sends wait for room on the edge itself and need no timer, so flows run
//! on any tokio runtime, with or without its time driver. The watchdog is
//! one plain thread per process, started by the first send that has to
//! wait; it wakes every quarter of the threshold, counts a tick and looks
//! at the edges that have waited. A waiting send reads the tick and stores
//! it (no clock read: on a full edge, sends wait all the time).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

/// How long a send waits for room before the watchdog warns.
pub(crate) const STALL_WARNING: Duration = Duration::from_secs(5);

/// The watchdog's ticks a send must have waited through before it is
/// flagged: the wait began before the tick after it started, so five
/// ticks of a quarter of the threshold are at least the threshold.
const TICKS: u64 = 5;

/// One edge's waiting state, shared by its senders.
#[derive(Debug)]
pub(crate) struct Stall {
    /// The watchdog's tick when a send began to wait (plus one, so that 0
    /// means "not waiting").
    since: AtomicU64,
    warned: AtomicBool,
    watched: AtomicBool,
    capacity: usize,
}

struct Watchdog {
    tick: AtomicU64,
    edges: Mutex<Vec<Weak<Stall>>>,
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("weft-flow-stall".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(STALL_WARNING / 4);
                    watchdog().scan();
                }
            });
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "no stall watchdog: warnings about unread outputs are off");
        }
        Watchdog {
            tick: AtomicU64::new(0),
            edges: Mutex::new(Vec::new()),
        }
    })
}

impl Watchdog {
    fn scan(&self) {
        let now = self.tick.fetch_add(1, Ordering::Relaxed) + 1;
        let mut edges = self.edges.lock().unwrap_or_else(|e| e.into_inner());
        edges.retain(|edge| {
            let Some(stall) = edge.upgrade() else {
                return false;
            };
            stall.check(now);
            true
        });
    }
}

/// A send waiting for room; dropping it (room found, edge closed, or the
/// send cancelled) ends the wait.
pub(crate) struct Waiting<'a>(&'a Stall);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.since.store(0, Ordering::Relaxed);
    }
}

impl Stall {
    pub(crate) fn new(capacity: usize) -> Arc<Stall> {
        Arc::new(Stall {
            since: AtomicU64::new(0),
            warned: AtomicBool::new(false),
            watched: AtomicBool::new(false),
            capacity,
        })
    }

    /// A send on this edge begins to wait for room, until the guard drops.
    pub(crate) fn waiting(self: &Arc<Self>) -> Waiting<'_> {
        let dog = watchdog();
        let tick = dog.tick.load(Ordering::Relaxed);
        self.since.store(tick.saturating_add(1), Ordering::Relaxed);
        // Registered once: after that, a wait is a load and a store.
        if !self.watched.load(Ordering::Relaxed) && !self.watched.swap(true, Ordering::Relaxed) {
            let mut edges = dog.edges.lock().unwrap_or_else(|e| e.into_inner());
            edges.push(Arc::downgrade(self));
        }
        Waiting(self)
    }

    /// Whether a send on this edge is waiting for room now.
    #[cfg(test)]
    pub(crate) fn is_waiting(&self) -> bool {
        self.since.load(Ordering::Relaxed) != 0
    }

    /// Warns once per edge when a send has waited past the threshold.
    fn check(&self, now: u64) {
        let since = self.since.load(Ordering::Relaxed);
        if since != 0
            && now.saturating_sub(since - 1) >= TICKS
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                capacity = self.capacity,
                "a flow edge has been full for {STALL_WARNING:?}: is its output read? \
                 Read every output of a stage concurrently (Flow::collect_all, \
                 WorkQueue::collect_all), or the stage waits for room forever"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts warning events about unread outputs.
    struct Warnings(Arc<std::sync::atomic::AtomicUsize>);

    struct Message<'a>(&'a mut String);

    impl tracing::field::Visit for Message<'_> {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0.push_str(&format!("{value:?}"));
            }
        }
    }

    impl tracing::Subscriber for Warnings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut text = String::new();
            event.record(&mut Message(&mut text));
            if *event.metadata().level() == tracing::Level::WARN
                && text.contains("is its output read")
            {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn a_send_waiting_past_the_threshold_is_flagged_once() {
        let stall = Stall::new(8);
        let waiting = stall.waiting();
        let since = stall.since.load(Ordering::Relaxed) - 1;
        let threshold = TICKS;
        let warnings = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        tracing::subscriber::with_default(Warnings(warnings.clone()), || {
            stall.check(since + threshold - 1);
            assert_eq!(warnings.load(Ordering::SeqCst), 0, "too early");
            stall.check(since + threshold);
            stall.check(since + threshold * 2);
        });
        assert_eq!(warnings.load(Ordering::SeqCst), 1, "one warning an edge");
        drop(waiting);
        assert_eq!(stall.since.load(Ordering::Relaxed), 0);
        // A finished (or cancelled) wait is never flagged.
        let quiet = Stall::new(8);
        drop(quiet.waiting());
        quiet.check(u64::MAX);
        assert!(!quiet.warned.load(Ordering::Relaxed));
    }
}
