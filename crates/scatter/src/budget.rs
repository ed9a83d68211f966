//! The budgets extra attempts draw on: the extra-load budget of hedges and
//! timeout retries, and the retry budget of failovers after a fast failure.

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
    /// Earns `ratio` of an attempt per credited event, banks at most
    /// `cap_requests` events' worth (at least one attempt), starts empty.
    pub(crate) fn new(ratio: f64, cap_requests: u64) -> Self {
        let earn = (ratio * TOKEN as f64).floor() as u64;
        Budget {
            milli: AtomicU64::new(0),
            earn,
            cap: earn.saturating_mul(cap_requests).max(TOKEN),
        }
    }

    /// Earns `ratio` of an attempt per credited event, banks at most
    /// `burst` attempts, and starts with `start` of them.
    pub(crate) fn with_burst(ratio: f64, burst: u64, start: u64) -> Self {
        let cap = burst.saturating_mul(TOKEN);
        Budget {
            milli: AtomicU64::new(start.saturating_mul(TOKEN).min(cap)),
            earn: (ratio * TOKEN as f64).floor() as u64,
            cap,
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

    /// Takes one extra attempt's worth if the balance keeps at least half
    /// of its cap after it: early hedges use only the top half, so that
    /// late ones (the true stragglers) always find the rest.
    pub(crate) fn take_above_reserve(&self) -> bool {
        let reserve = self.cap / 2;
        self.milli
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                m.checked_sub(TOKEN).filter(|&left| left >= reserve)
            })
            .is_ok()
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

/// The retry budget: how many failovers (retries after a transient error,
/// at the next replica) a root may send beyond its first attempts.
///
/// In the style of gRPC's retry throttling: the root holds up to `burst`
/// retry tokens, each failover spends one, and each answer earns `ratio` of
/// one, so over a root's life failovers never exceed `burst + ratio ×
/// answers`. A failing backend earns nothing and its failovers stop once
/// the tokens are spent, so retries cannot grow into a storm; a healthy one
/// keeps the budget full. It starts full (warm), so a fresh root fails over
/// from its first call; [`cold`](RetryBudget::cold) starts it empty.
///
/// Hedges and retries after a timeout add load to slow replicas and are
/// paid from the extra-load budget
/// ([`max_extra_load`](crate::ScatterConfig::max_extra_load)) instead.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft_scatter::{RetryBudget, ScatterConfig};
///
/// let config = ScatterConfig::new(Duration::from_millis(100))
///     .retry_budget(RetryBudget::new(0.1).burst(50));
/// # let _ = config;
/// ```
///
/// With serde: `{"ratio": 0.1, "burst": 50, "warm": true}`, each optional
/// (`burst: null` sizes it to the topology).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "crate::config_serde::RetryBudgetFile")]
pub struct RetryBudget {
    pub(crate) ratio: f64,
    pub(crate) burst: Option<u64>,
    pub(crate) warm: bool,
}

impl Default for RetryBudget {
    /// [`RetryBudget::new(0.1)`](RetryBudget::new).
    fn default() -> Self {
        RetryBudget::new(0.1)
    }
}

impl RetryBudget {
    /// Earns `ratio` of a failover per answer (0.1: one failover per ten
    /// answers, as gRPC's default token ratio), with the burst sized to the
    /// topology: enough failovers for every replica to fail until its
    /// health marks it down (`down_after × replicas`, at least 10).
    pub const fn new(ratio: f64) -> RetryBudget {
        RetryBudget {
            ratio,
            burst: None,
            warm: true,
        }
    }

    /// No failovers at all: a transient error fails its shard at once.
    pub const fn off() -> RetryBudget {
        RetryBudget {
            ratio: 0.0,
            burst: Some(0),
            warm: false,
        }
    }

    /// At most `burst` failovers banked.
    #[must_use]
    pub const fn burst(mut self, burst: u64) -> RetryBudget {
        self.burst = Some(burst);
        self
    }

    /// Starts empty: failovers wait until answers have earned them.
    #[must_use]
    pub const fn cold(mut self) -> RetryBudget {
        self.warm = false;
        self
    }

    /// The budget's tokens for a topology of `replicas` replicas whose
    /// health marks a replica down after `down_after` failures.
    pub(crate) fn tokens(&self, replicas: usize, down_after: u32) -> Budget {
        let sized = (replicas as u64)
            .saturating_mul(u64::from(down_after))
            .max(10);
        let burst = self.burst.unwrap_or(sized);
        Budget::with_burst(self.ratio, burst, if self.warm { burst } else { 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_budget_spends_its_burst_then_earns_by_ratio() {
        let b = RetryBudget::new(0.25).burst(3).tokens(4, 3);
        assert!((0..3).all(|_| b.take()), "warm: the burst is there at once");
        assert!(!b.take());
        b.earn(3);
        assert!(!b.take(), "three answers earn 0.75 of a retry");
        b.earn(1);
        assert!(b.take());
        assert!(!b.take());
        let cold = RetryBudget::new(0.5).burst(2).cold().tokens(1, 3);
        assert!(!cold.take());
        cold.earn(100);
        assert!(
            cold.take() && cold.take() && !cold.take(),
            "capped at the burst"
        );
        let sized = RetryBudget::new(0.0).tokens(8, 3);
        assert_eq!((0..100).filter(|_| sized.take()).count(), 24);
        let off = RetryBudget::off().tokens(8, 3);
        off.earn(1000);
        assert!(!off.take());
    }

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

    #[test]
    fn early_hedges_leave_half_the_cap_for_late_ones() {
        // Half an attempt per event, ten events' worth banked: 5 attempts.
        let b = Budget::new(0.5, 10);
        b.earn(100);
        let early = (0..10).filter(|_| b.take_above_reserve()).count();
        assert_eq!(
            early, 2,
            "5 → 4 → 3 attempts left; a third would leave 2 < 2.5"
        );
        let late = (0..10).filter(|_| b.take()).count();
        assert_eq!(late, 3, "the reserve goes to late hedges");
        assert!(!b.take_above_reserve());
    }
}
