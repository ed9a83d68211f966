//! The one extra-load budget that hedges and retries draw on.

use std::sync::atomic::{AtomicU64, Ordering};

/// Milli-tokens: each first attempt earns `ratio · 1000` (rounded down),
/// each extra attempt costs 1000. The balance is capped so that a quiet
/// period does not bank a burst.
#[derive(Debug)]
pub(crate) struct Budget {
    milli: AtomicU64,
    earn: u64,
    cap: u64,
}

const TOKEN: u64 = 1000;

impl Budget {
    pub(crate) fn new(ratio: f64, cap_requests: u64) -> Self {
        let earn = (ratio * TOKEN as f64).floor() as u64;
        Budget {
            milli: AtomicU64::new(0),
            earn,
            cap: (earn * cap_requests).max(TOKEN),
        }
    }

    /// Credits `n` first attempts.
    pub(crate) fn earn(&self, n: u64) {
        if self.earn == 0 {
            return;
        }
        let add = self.earn.saturating_mul(n);
        let _ = self
            .milli
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                Some(m.saturating_add(add).min(self.cap))
            });
    }

    /// Takes one extra attempt's worth, if the balance allows.
    pub(crate) fn take(&self) -> bool {
        self.milli
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                m.checked_sub(TOKEN)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_attempts_never_exceed_the_ratio_of_first_attempts() {
        let b = Budget::new(0.05, 1_000_000);
        let mut extra = 0;
        for first in 1..=1000u64 {
            b.earn(1);
            while b.take() {
                extra += 1;
            }
            assert!(extra * 100 <= first * 5, "{extra} extra after {first}");
        }
        assert_eq!(extra, 50);
        let none = Budget::new(0.0, 100);
        none.earn(1000);
        assert!(!none.take());
    }
}
