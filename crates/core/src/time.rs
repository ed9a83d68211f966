//! Time arithmetic that cannot overflow.
//!
//! Every wait, deadline, TTL and probation in weft accepts any `Duration`,
//! `Duration::MAX` included: a wait longer than [`FOREVER`] (about a
//! century) means "as long as it takes", and is scheduled as `FOREVER`, so
//! `now + wait` never overflows an `Instant` (which panics in debug builds
//! and wraps in release). Counters kept in whole microseconds saturate.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use weft_core::time::{capped, micros};
//!
//! let deadline = Instant::now() + capped(Duration::MAX); // no overflow
//! assert!(deadline > Instant::now());
//! assert_eq!(micros(Duration::MAX), u64::MAX);
//! ```

use std::time::Duration;

/// The longest span weft schedules: 100 years of 365 days. A longer
/// `Duration` is a wait forever in practice and is treated as this.
pub const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `d`, at most [`FOREVER`]: safe to add to any `Instant` the process reads.
pub fn capped(d: Duration) -> Duration {
    d.min(FOREVER)
}

/// `d` in whole microseconds, saturating at `u64::MAX` (about 584,000
/// years).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_waits_add_to_an_instant_without_overflow() {
        let now = std::time::Instant::now();
        for d in [
            Duration::ZERO,
            Duration::from_secs(1),
            FOREVER,
            Duration::MAX,
        ] {
            let at = now + capped(d);
            assert!(at >= now);
            assert_eq!(capped(d), d.min(FOREVER));
        }
        assert!(
            now.checked_add(Duration::MAX).is_none(),
            "the case capped exists for"
        );
    }

    #[test]
    fn micros_saturate() {
        assert_eq!(micros(Duration::from_micros(7)), 7);
        assert_eq!(micros(Duration::from_nanos(1_999)), 1);
        assert_eq!(micros(Duration::MAX), u64::MAX);
        assert_eq!(micros(Duration::from_micros(u64::MAX)), u64::MAX);
    }
}
