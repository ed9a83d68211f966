//! Waits between tries: one backoff schedule with seeded jitter, and the
//! retry policy that bounds it. Every retrying loop in weft uses these: the
//! work queue's retries, the claims commit, lock and lease polling, lease
//! renewal and the scatter root's retries.
//!
//! Jitter is seeded, not random: the caller passes a word that identifies
//! the waiter (an item id, a key's hash, an owner), so a run is
//! reproducible while different waiters spread apart.
//!
//! ```
//! use std::time::Duration;
//! use weft_core::{Backoff, RetryPolicy};
//!
//! // 10 ms doubling to at most 1 s, each wait ±50 %.
//! let backoff = Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1))?
//!     .with_jitter(0.5)?;
//! let wait = backoff.delay(3, 42); // before the 4th try: 40 ms ± 50 %
//! assert!(wait >= Duration::from_millis(20) && wait <= Duration::from_millis(60));
//!
//! // Three tries in all: two waits, then none.
//! let retry = RetryPolicy::new(3, backoff)?;
//! assert!(retry.next(1, 42).is_some());
//! assert!(retry.next(2, 42).is_some());
//! assert_eq!(retry.next(3, 42), None);
//! # Ok::<(), weft_core::CoreError>(())
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::mix::{GAMMA, mix64, unit};
use crate::time::capped;

/// A wait schedule: `base · 2^(n−1)` before try `n + 1` (a constant
/// schedule never grows), at most `max`, each wait spread by ±`jitter`.
///
/// Waits are [capped](crate::time::capped) before the jitter is applied, so
/// any `Duration`, `Duration::MAX` included, is a valid base or cap.
///
/// With serde it reads and writes `{"base": "10ms", "max": "1s", "jitter":
/// 0.5}` (a schedule grows when `max` is above `base`; `max` defaults to
/// `base` and `jitter` to 0), validated as the constructors validate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BackoffSpec", into = "BackoffSpec")]
pub struct Backoff {
    base: Duration,
    max: Duration,
    growing: bool,
    jitter: f64,
}

impl Backoff {
    /// No wait at all: the next try follows at once.
    pub const NONE: Backoff = Backoff {
        base: Duration::ZERO,
        max: Duration::ZERO,
        growing: false,
        jitter: 0.0,
    };

    /// The same wait before every try.
    pub const fn constant(every: Duration) -> Backoff {
        Backoff {
            base: every,
            max: every,
            growing: false,
            jitter: 0.0,
        }
    }

    /// Waits that double from `base` up to `max`.
    ///
    /// # Errors
    ///
    /// [`CoreError::Backoff`] for a zero base or a base above the cap.
    pub fn exponential(base: Duration, max: Duration) -> Result<Backoff, CoreError> {
        if base.is_zero() {
            return Err(CoreError::Backoff(format!(
                "exponential backoff base is zero (cap {max:?}): it would never grow"
            )));
        }
        if base > max {
            return Err(CoreError::Backoff(format!(
                "backoff base {base:?} is above its cap {max:?}"
            )));
        }
        Ok(Backoff {
            base,
            max,
            // Doubling capped at the base is the constant schedule.
            growing: base < max,
            jitter: 0.0,
        })
    }

    /// Spreads every wait uniformly over `wait · (1 ± fraction)`.
    ///
    /// # Errors
    ///
    /// [`CoreError::Backoff`] for a fraction outside `[0, 1]` or NaN.
    pub fn with_jitter(self, fraction: f64) -> Result<Backoff, CoreError> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(CoreError::Backoff(format!(
                "jitter {fraction} is outside [0, 1]"
            )));
        }
        Ok(Backoff {
            jitter: fraction,
            ..self
        })
    }

    /// The first wait, before jitter.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The longest wait, before jitter.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The jitter fraction.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The longest wait this schedule can return, jitter included.
    pub fn longest(&self) -> Duration {
        capped(self.max).mul_f64(1.0 + self.jitter)
    }

    /// The wait after `tries` tries (`tries ≥ 1`; 0 is read as 1), jittered
    /// by `seed`: the same seed and count give the same wait.
    pub fn delay(&self, tries: u32, seed: u64) -> Duration {
        let wait = if self.growing {
            // Doubling stops at 2^30: every cap weft accepts is reached
            // long before (a 1 ns base reaches a second at 2^30).
            let doublings = tries.saturating_sub(1).min(30);
            self.base.saturating_mul(1 << doublings).min(self.max)
        } else {
            self.base
        };
        let wait = capped(wait);
        if self.jitter == 0.0 || wait.is_zero() {
            return wait;
        }
        // One SplitMix64 step per try of this seed's sequence.
        let word = mix64(seed.wrapping_add(GAMMA.wrapping_mul(u64::from(tries).wrapping_add(1))));
        wait.mul_f64(1.0 + self.jitter * (2.0 * unit(word) - 1.0))
    }
}

/// How many tries an operation gets in all, and the waits between them.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft_core::{Backoff, RetryPolicy};
///
/// let policy = RetryPolicy::new(2, Backoff::constant(Duration::from_millis(5)))?;
/// assert_eq!(policy.next(1, 0), Some(Duration::from_millis(5)));
/// assert_eq!(policy.next(2, 0), None);
/// # Ok::<(), weft_core::CoreError>(())
/// ```
///
/// With serde: `{"max_attempts": 5, "backoff": {...}}`, validated as
/// [`RetryPolicy::new`] validates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RetrySpec")]
pub struct RetryPolicy {
    max_attempts: u32,
    backoff: Backoff,
}

impl RetryPolicy {
    /// At most `max_attempts` tries in all (the first included), waiting
    /// per `backoff` between them.
    ///
    /// # Errors
    ///
    /// [`CoreError::Backoff`] for zero attempts: the first try is one.
    pub fn new(max_attempts: u32, backoff: Backoff) -> Result<RetryPolicy, CoreError> {
        if max_attempts == 0 {
            return Err(CoreError::Backoff(
                "max attempts is 0: every operation needs one try".into(),
            ));
        }
        Ok(RetryPolicy {
            max_attempts,
            backoff,
        })
    }

    /// At most `max_attempts` tries, waiting `base · 2^(n−1)` (at most
    /// `max`, ±50 % jitter) before try `n + 1`: the usual shape.
    ///
    /// # Errors
    ///
    /// [`CoreError::Backoff`] as [`RetryPolicy::new`] and
    /// [`Backoff::exponential`].
    pub fn exponential(
        max_attempts: u32,
        base: Duration,
        max: Duration,
    ) -> Result<RetryPolicy, CoreError> {
        let backoff = Backoff::exponential(base, max)?.with_jitter(0.5)?;
        RetryPolicy::new(max_attempts, backoff)
    }

    /// One try, no retries.
    pub const ONCE: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        backoff: Backoff::NONE,
    };

    /// The tries allowed in all.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait schedule.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// After `tries` failed tries: the wait before the next, or `None` when
    /// none is left.
    pub fn next(&self, tries: u32, seed: u64) -> Option<Duration> {
        (tries < self.max_attempts).then(|| self.backoff.delay(tries, seed))
    }
}

impl Default for RetryPolicy {
    /// 5 tries, waiting 10 ms doubling to at most 1 s, ±50 %.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            backoff: Backoff {
                base: Duration::from_millis(10),
                max: Duration::from_secs(1),
                growing: true,
                jitter: 0.5,
            },
        }
    }
}

/// The file form of a [`Backoff`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackoffSpec {
    #[serde(with = "crate::duration")]
    base: Duration,
    #[serde(with = "crate::duration::option", default)]
    max: Option<Duration>,
    #[serde(default)]
    jitter: f64,
}

impl TryFrom<BackoffSpec> for Backoff {
    type Error = CoreError;
    fn try_from(spec: BackoffSpec) -> Result<Backoff, CoreError> {
        let max = spec.max.unwrap_or(spec.base);
        let backoff = if max == spec.base {
            Backoff::constant(spec.base)
        } else {
            Backoff::exponential(spec.base, max)?
        };
        backoff.with_jitter(spec.jitter)
    }
}

impl From<Backoff> for BackoffSpec {
    fn from(b: Backoff) -> BackoffSpec {
        BackoffSpec {
            base: b.base,
            max: Some(b.max),
            jitter: b.jitter,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetrySpec {
    max_attempts: u32,
    #[serde(default = "no_backoff")]
    backoff: Backoff,
}

fn no_backoff() -> Backoff {
    Backoff::NONE
}

impl TryFrom<RetrySpec> for RetryPolicy {
    type Error = CoreError;
    fn try_from(spec: RetrySpec) -> Result<RetryPolicy, CoreError> {
        RetryPolicy::new(spec.max_attempts, spec.backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn schedules_and_policies_round_trip_through_serde_and_bad_ones_are_refused() {
        let ms = Duration::from_millis;
        let policies = [
            RetryPolicy::ONCE,
            RetryPolicy::exponential(5, ms(10), Duration::from_secs(1)).unwrap(),
            RetryPolicy::new(3, Backoff::constant(ms(30)).with_jitter(0.25).unwrap()).unwrap(),
            RetryPolicy::new(
                u32::MAX,
                Backoff::exponential(ms(1), Duration::MAX).unwrap(),
            )
            .unwrap(),
            RetryPolicy::new(2, Backoff::exponential(ms(7), ms(7)).unwrap()).unwrap(),
        ];
        for p in policies {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(
                serde_json::from_str::<RetryPolicy>(&json).unwrap(),
                p,
                "{json}"
            );
        }
        let p: RetryPolicy = serde_json::from_str(
            r#"{"max_attempts":4,"backoff":{"base":"10ms","max":"1s","jitter":0.5}}"#,
        )
        .unwrap();
        assert_eq!(
            p,
            RetryPolicy::exponential(4, ms(10), Duration::from_secs(1)).unwrap()
        );
        let once: RetryPolicy = serde_json::from_str(r#"{"max_attempts":1}"#).unwrap();
        assert_eq!(once, RetryPolicy::ONCE);
        let refused = |json: &str| {
            serde_json::from_str::<RetryPolicy>(json)
                .unwrap_err()
                .to_string()
        };
        assert!(refused(r#"{"max_attempts":0}"#).contains("max attempts is 0"));
        let b = |backoff: &str| refused(&format!(r#"{{"max_attempts":2,"backoff":{backoff}}}"#));
        assert!(b(r#"{"base":"1s","max":"10ms"}"#).contains("above its cap"));
        assert!(b(r#"{"base":"0s","max":"10ms"}"#).contains("base is zero"));
        assert!(b(r#"{"base":"1s","jitter":1.5}"#).contains("jitter 1.5"));
        assert!(b(r#"{"base":"1s","jiter":0.5}"#).contains("unknown field"));
        assert!(b(r#"{"base":"1"}"#).contains("no unit"));
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn exponential_doubles_to_the_cap() {
        let b = Backoff::exponential(10 * MS, 50 * MS).unwrap();
        let waits: Vec<_> = (1..=5).map(|n| b.delay(n, 7)).collect();
        assert_eq!(waits, [10 * MS, 20 * MS, 40 * MS, 50 * MS, 50 * MS]);
        assert_eq!(b.delay(0, 7), 10 * MS, "0 tries reads as 1");
        assert_eq!(b.delay(u32::MAX, 7), 50 * MS);
    }

    #[test]
    fn constant_and_none_never_grow() {
        let b = Backoff::constant(3 * MS);
        assert!((1..100).all(|n| b.delay(n, n.into()) == 3 * MS));
        assert_eq!(Backoff::NONE.delay(9, 9), Duration::ZERO);
        assert_eq!(
            Backoff::NONE.with_jitter(1.0).unwrap().delay(9, 9),
            Duration::ZERO
        );
    }

    #[test]
    fn bad_schedules_name_the_value() {
        let zero = Backoff::exponential(Duration::ZERO, MS).unwrap_err();
        assert!(zero.to_string().contains("base is zero"), "{zero}");
        let above = Backoff::exponential(2 * MS, MS).unwrap_err();
        assert!(above.to_string().contains("2ms"), "{above}");
        for j in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let e = Backoff::NONE.with_jitter(j).unwrap_err();
            assert!(e.to_string().contains(&format!("{j}")), "{e}");
        }
        assert!(RetryPolicy::new(0, Backoff::NONE).is_err());
    }

    #[test]
    fn extreme_durations_do_not_overflow() {
        let b = Backoff::exponential(Duration::from_nanos(1), Duration::MAX)
            .unwrap()
            .with_jitter(1.0)
            .unwrap();
        for n in [1, 31, 64, u32::MAX] {
            assert!(b.delay(n, u64::MAX) <= b.longest());
        }
        let c = Backoff::constant(Duration::MAX).with_jitter(1.0).unwrap();
        assert!(c.delay(1, 1) <= crate::time::FOREVER * 2);
    }

    #[test]
    fn the_default_is_a_valid_policy() {
        let built =
            RetryPolicy::exponential(5, Duration::from_millis(10), Duration::from_secs(1)).unwrap();
        assert_eq!(RetryPolicy::default(), built);
    }

    #[test]
    fn retry_policy_counts_tries() {
        let p = RetryPolicy::new(3, Backoff::constant(MS)).unwrap();
        assert_eq!(p.next(1, 0), Some(MS));
        assert_eq!(p.next(2, 0), Some(MS));
        assert_eq!(p.next(3, 0), None);
        assert_eq!(p.next(u32::MAX, 0), None);
        assert_eq!(RetryPolicy::ONCE.next(1, 0), None);
    }

    #[test]
    fn seeds_spread_waits() {
        let b = Backoff::constant(100 * MS).with_jitter(0.5).unwrap();
        let waits: std::collections::BTreeSet<_> = (0..64u64).map(|s| b.delay(1, s)).collect();
        assert!(
            waits.len() > 50,
            "64 seeds gave {} distinct waits",
            waits.len()
        );
        assert_ne!(b.delay(1, 5), b.delay(2, 5), "a seed's waits vary per try");
    }

    proptest! {
        #[test]
        fn jittered_waits_stay_within_the_spread(
            base_us in 1u64..1_000_000, extra in 0u64..10_000_000,
            jitter in 0.0f64..=1.0, tries in 0u32..100, seed: u64,
        ) {
            let base = Duration::from_micros(base_us);
            let max = base + Duration::from_micros(extra);
            let b = Backoff::exponential(base, max).unwrap().with_jitter(jitter).unwrap();
            let plain = Backoff::exponential(base, max).unwrap().delay(tries, seed);
            let got = b.delay(tries, seed);
            prop_assert!(got >= plain.mul_f64(1.0 - jitter).saturating_sub(Duration::from_nanos(1)));
            prop_assert!(got <= plain.mul_f64(1.0 + jitter) + Duration::from_nanos(1));
            prop_assert!(got <= b.longest() + Duration::from_nanos(1));
            prop_assert_eq!(got, b.delay(tries, seed));
        }
    }
}
