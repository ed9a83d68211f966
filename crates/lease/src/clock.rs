//! The lease clock: time that keeps counting while the host is suspended.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// A clock for lease safety: monotonic, and it must not stop while the
/// process or host is suspended, or a holder would wake up believing it
/// still holds a lease the store has expired.
pub trait LeaseClock: Send + Sync + fmt::Debug {
    /// Time since an arbitrary, fixed origin. Never decreases.
    fn now(&self) -> Duration;
}

/// The default clock: tokio's clock (so paused-time tests drive it), plus
/// the time the host spent suspended.
///
/// On Linux the suspended time is `CLOCK_BOOTTIME − CLOCK_MONOTONIC` (read
/// through `rustix`): the monotonic clock that `Instant` and tokio use stops
/// during suspend, the boot-time clock does not. Elsewhere the suspended
/// time is taken as zero: on macOS `Instant` does not count sleep either, so
/// a suspend longer than a lease's margin there goes unnoticed until the
/// next renewal fails; on Windows `Instant` counts suspend.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
    suspended_at_origin: Duration,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
            suspended_at_origin: suspended(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl LeaseClock for SystemClock {
    fn now(&self) -> Duration {
        let running = Instant::now().saturating_duration_since(self.origin);
        running + suspended().saturating_sub(self.suspended_at_origin)
    }
}

/// Time the host has spent suspended since boot.
#[cfg(target_os = "linux")]
fn suspended() -> Duration {
    use rustix::time::{ClockId, clock_gettime};
    let d = |t: rustix::time::Timespec| Duration::new(t.tv_sec as u64, t.tv_nsec as u32);
    d(clock_gettime(ClockId::Boottime)).saturating_sub(d(clock_gettime(ClockId::Monotonic)))
}

#[cfg(not(target_os = "linux"))]
fn suspended() -> Duration {
    Duration::ZERO
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_system_clock_follows_tokio_time() {
        let clock = SystemClock::new();
        let before = clock.now();
        tokio::time::advance(Duration::from_secs(3)).await;
        let after = clock.now();
        // Paused time moved 3 s; the host did not suspend meanwhile (or
        // only by the time the test took).
        assert!(after - before >= Duration::from_secs(3));
        assert!(after - before < Duration::from_secs(4));
    }
}
