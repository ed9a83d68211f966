//! How a lease is timed: TTL, renewal interval and jitter, drift bound,
//! safety margin and timeouts.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_core::Backoff;

use crate::{CasStore, LeaseClock, LeaseError, SystemClock};

/// How a lease is timed.
///
/// # As data
///
/// With serde, every setting by its builder's name, durations as text; a
/// file needs only `ttl`, the rest take the defaults of
/// [`LeaseConfig::new`] (`null` for a derived one: the renewal interval,
/// margin and operation timeout). The clock is not data: a configuration
/// read from a file uses [`SystemClock`]. Reading checks every setting
/// against the others; [`validate`](LeaseConfig::validate) (which every
/// lease calls) adds the store's limits.
///
/// ```
/// # use weft_lease::LeaseConfig;
/// let config: LeaseConfig = serde_json::from_str(
///     r#"{"ttl": "10s", "renew_every": "2s", "drift": 0.02}"#,
/// )?;
/// assert_eq!(config.ttl(), std::time::Duration::from_secs(10));
/// let err = serde_json::from_str::<LeaseConfig>(r#"{"ttl": "10s", "renew_every": "10s"}"#);
/// assert!(err.unwrap_err().to_string().contains("renewal interval"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "LeaseFile")]
pub struct LeaseConfig {
    #[serde(with = "weft_core::duration")]
    pub(super) ttl: Duration,
    #[serde(with = "weft_core::duration::option")]
    pub(super) renew_every: Option<Duration>,
    pub(super) jitter: f64,
    pub(super) drift: f64,
    #[serde(with = "weft_core::duration::option")]
    pub(super) margin: Option<Duration>,
    #[serde(with = "weft_core::duration::option")]
    pub(super) op_timeout: Option<Duration>,
    #[serde(with = "weft_core::duration")]
    pub(super) release_timeout: Duration,
    #[serde(with = "weft_core::duration")]
    pub(super) stop_timeout: Duration,
    #[serde(skip)]
    pub(super) clock: Arc<dyn LeaseClock>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaseFile {
    #[serde(with = "weft_core::duration")]
    ttl: Duration,
    #[serde(with = "weft_core::duration::option", default)]
    renew_every: Option<Duration>,
    jitter: Option<f64>,
    drift: Option<f64>,
    #[serde(with = "weft_core::duration::option", default)]
    margin: Option<Duration>,
    #[serde(with = "weft_core::duration::option", default)]
    op_timeout: Option<Duration>,
    #[serde(with = "weft_core::duration::option", default)]
    release_timeout: Option<Duration>,
    #[serde(with = "weft_core::duration::option", default)]
    stop_timeout: Option<Duration>,
}

impl TryFrom<LeaseFile> for LeaseConfig {
    type Error = LeaseError;
    fn try_from(f: LeaseFile) -> Result<LeaseConfig, LeaseError> {
        let d = LeaseConfig::new(f.ttl);
        let config = LeaseConfig {
            renew_every: f.renew_every,
            jitter: f.jitter.unwrap_or(d.jitter),
            drift: f.drift.unwrap_or(d.drift),
            margin: f.margin,
            op_timeout: f.op_timeout,
            release_timeout: f.release_timeout.unwrap_or(d.release_timeout),
            stop_timeout: f.stop_timeout.unwrap_or(d.stop_timeout),
            ..d
        };
        config.check()?;
        Ok(config)
    }
}

impl LeaseConfig {
    /// A lease of `ttl`, renewed every `ttl/3` (±10 % jitter), trusting
    /// the local clock's rate to within 1 % (`drift` ρ = 0.01), with a margin
    /// of `ttl/10`.
    pub fn new(ttl: Duration) -> Self {
        LeaseConfig {
            ttl,
            renew_every: None,
            jitter: 0.1,
            drift: 0.01,
            margin: None,
            op_timeout: None,
            release_timeout: Duration::from_secs(2),
            stop_timeout: Duration::from_secs(2),
            clock: Arc::new(SystemClock::new()),
        }
    }

    /// Renews this often (measured from when each renewal was sent).
    #[must_use]
    pub fn renew_every(mut self, interval: Duration) -> Self {
        self.renew_every = Some(interval);
        self
    }

    /// The jitter of the renewal interval, as a fraction (0.1 = ±10 %).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// The bound ρ on the local clock's rate error relative to the store's
    /// (0.01 = the local clock may run 1 % fast or slow).
    #[must_use]
    pub fn drift(mut self, bound: f64) -> Self {
        self.drift = bound;
        self
    }

    /// Time subtracted from the safe period, for the time between deciding
    /// the lease is held and acting on it.
    #[must_use]
    pub fn margin(mut self, margin: Duration) -> Self {
        self.margin = Some(margin);
        self
    }

    /// A timeout per store call (default: the renewal interval).
    #[must_use]
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = Some(timeout);
        self
    }

    /// How long an explicit release may take.
    #[must_use]
    pub fn release_timeout(mut self, timeout: Duration) -> Self {
        self.release_timeout = timeout;
        self
    }

    /// How long a guarded task may take to stop once cancelled.
    #[must_use]
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// The clock (default [`SystemClock`]); tests inject drift here.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn LeaseClock>) -> Self {
        self.clock = clock;
        self
    }

    /// The TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub(super) fn interval(&self) -> Duration {
        self.renew_every.unwrap_or(self.ttl / 3)
    }

    pub(super) fn margin_or_default(&self) -> Duration {
        self.margin.unwrap_or(self.ttl / 10)
    }

    /// How long after a renewal was sent the holder may believe it holds
    /// the lease.
    pub(super) fn safe_period(&self) -> Duration {
        self.ttl
            .mul_f64(1.0 - self.drift)
            .saturating_sub(self.margin_or_default())
    }

    /// The renewal schedule: every interval, spread by the jitter.
    pub(super) fn renewals(&self) -> Backoff {
        let every = Backoff::constant(self.interval());
        // A jitter outside [0, 1) fails validation before any renewal.
        every.with_jitter(self.jitter).unwrap_or(every)
    }

    /// Checks the configuration against itself and the store.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Store`] with [`StoreError::BadTtl`](crate::StoreError::BadTtl) for a TTL the store
    /// cannot honour; [`LeaseError::Invalid`] naming any other setting, its
    /// value and what it must be.
    pub fn validate(&self, store: &dyn CasStore) -> Result<(), LeaseError> {
        self.check()?;
        store.limits().check("k", None, Some(self.ttl))?;
        Ok(())
    }

    /// The checks that do not depend on a store: what a configuration read
    /// from a file must pass.
    fn check(&self) -> Result<(), LeaseError> {
        let bad = |setting, value: &dyn std::fmt::Debug, expected: String| {
            Err(LeaseError::invalid(setting, value, expected))
        };
        if self.ttl.is_zero() {
            return bad("TTL", &self.ttl, "above zero".into());
        }
        if !(0.0..1.0).contains(&self.drift) {
            return bad("drift bound", &self.drift, "in [0, 1)".into());
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return bad("jitter", &self.jitter, "in [0, 1)".into());
        }
        let interval = self.interval();
        if interval.is_zero() || interval >= self.ttl {
            return bad(
                "renewal interval",
                &interval,
                format!("above zero and below the TTL {:?}", self.ttl),
            );
        }
        if let Some(t) = self.op_timeout.filter(|t| t.is_zero()) {
            return bad(
                "operation timeout",
                &t,
                "above zero: every renewal would time out".into(),
            );
        }
        if self.release_timeout.is_zero() {
            return bad(
                "release timeout",
                &self.release_timeout,
                "above zero: every release would time out".into(),
            );
        }
        if self.margin_or_default() >= self.ttl {
            return bad(
                "margin",
                &self.margin_or_default(),
                format!("below the TTL {:?}", self.ttl),
            );
        }
        let longest_gap = self.renewals().longest();
        if self.safe_period() <= longest_gap {
            return bad(
                "TTL",
                &self.ttl,
                format!(
                    "with drift {} and margin {:?} it leaves a safe period of {:?}, not more than the longest renewal interval {:?}: the lease would be lost between renewals",
                    self.drift,
                    self.margin_or_default(),
                    self.safe_period(),
                    longest_gap
                ),
            );
        }
        Ok(())
    }
}
