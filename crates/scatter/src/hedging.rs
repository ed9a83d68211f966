//! Hedging: when a root sends a second request for a straggling shard.
//!
//! [`Hedging`] is the setting; the root keeps a `Hedger` (the latency
//! window and the delay it implies); a call decides per attempt with
//! `Call::hedge_due` (in `call/hedge.rs`), and every hedge and retry is paid
//! from the root's extra-load budget (`budget.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use weft_core::time::micros;

use crate::ScatterError;
use crate::latency::LatencyWindow;

/// When to hedge: after an adaptive delay, a latency percentile of recent
/// leaf calls (clamped, with a fallback until enough samples exist), or
/// never.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft_scatter::{Hedging, ScatterConfig};
///
/// let ms = Duration::from_millis;
/// let hedging = Hedging::adaptive()
///     .percentile(99.0)
///     .bounds(ms(1), ms(250))
///     .fallback(ms(20), 500);
/// let config = ScatterConfig::new(ms(500)).hedging(hedging);
/// let plain = ScatterConfig::new(ms(500)).hedging(Hedging::off());
/// # let _ = (config, plain);
/// ```
///
/// With serde: `{"enabled": true, "percentile": 99.0, "floor": "100us",
/// "ceiling": "1s", "fallback": "10ms", "min_samples": 200, "window":
/// 10000}`, each optional (the defaults of [`Hedging::adaptive`];
/// `percentile: null` is the budget's), validated on the way in.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "crate::config_serde::HedgingFile")]
pub struct Hedging {
    pub(crate) enabled: bool,
    pub(crate) percentile: Option<f64>,
    #[serde(with = "weft_core::duration")]
    pub(crate) floor: Duration,
    #[serde(with = "weft_core::duration")]
    pub(crate) ceiling: Duration,
    #[serde(with = "weft_core::duration")]
    pub(crate) fallback: Duration,
    pub(crate) min_samples: u64,
    pub(crate) window: u64,
}

impl Default for Hedging {
    /// [`Hedging::adaptive`].
    fn default() -> Self {
        Hedging::adaptive()
    }
}

impl Hedging {
    /// Hedges after a percentile of recent latencies: by default the one
    /// the budget implies (see [`percentile`](Hedging::percentile)),
    /// clamped to 100 µs – 1 s, 10 ms until 200 samples exist, over a window
    /// of 10,000 calls.
    pub const fn adaptive() -> Hedging {
        Hedging {
            enabled: true,
            percentile: None,
            floor: Duration::from_micros(100),
            ceiling: Duration::from_secs(1),
            fallback: Duration::from_millis(10),
            min_samples: 200,
            window: 10_000,
        }
    }

    /// Never hedges; retries after failures and timeouts still happen.
    pub const fn off() -> Hedging {
        Hedging {
            enabled: false,
            ..Hedging::adaptive()
        }
    }

    /// Whether hedges are sent at all.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The hedge delay's percentile of recent leaf latencies, in (0, 100).
    /// By default it derives from the budget, `100 · (1 − ⅔ ·
    /// max_extra_load)` (p96.7 at 5 %), so that the hedges the delay
    /// triggers stay within the budget and the budget is not spent before
    /// the stragglers that need it; and an attempt is hedged earlier, at
    /// `100 · (1 − max_extra_load)` (p95 at 5 %), while the budget holds
    /// more than half of its bank. In a call of `n` shards with
    /// `⌊max_extra_load · n⌋ ≥ 1`, a shard's first early hedge goes out
    /// instead once at most that many shards are pending and it has waited
    /// the `100 · (1 − 1.5 · max_extra_load)` percentile: the last shards
    /// are the ones a wide call waits for. A percentile set here is the
    /// only delay: no early hedges.
    #[must_use]
    pub fn percentile(mut self, percentile: f64) -> Self {
        self.percentile = Some(percentile);
        self
    }

    /// Clamps the adaptive delay to `floor ..= ceiling`.
    #[must_use]
    pub fn bounds(mut self, floor: Duration, ceiling: Duration) -> Self {
        self.floor = floor;
        self.ceiling = ceiling;
        self
    }

    /// The delay until `min_samples` latencies are known.
    #[must_use]
    pub fn fallback(mut self, delay: Duration, min_samples: u64) -> Self {
        self.fallback = delay;
        self.min_samples = min_samples;
        self
    }

    /// The latency window: percentiles reflect the last `window` to
    /// `2 · window` leaf calls.
    #[must_use]
    pub fn window(mut self, window: u64) -> Self {
        self.window = window;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ScatterError> {
        if self.window == 0 {
            return Err(ScatterError::ZeroCount("latency window"));
        }
        if let Some(p) = self.percentile
            && !(p > 0.0 && p < 100.0)
        {
            return Err(ScatterError::BadPercentile(p));
        }
        if self.floor > self.ceiling {
            return Err(ScatterError::FloorAboveCeiling {
                floor: self.floor,
                ceiling: self.ceiling,
            });
        }
        Ok(())
    }
}

/// A root's hedging state: the latency window and the delay it implies,
/// recomputed after every `window / 16` new samples (a percentile reads the
/// whole histogram) and cached in between.
#[derive(Debug)]
pub(crate) struct Hedger {
    settings: Hedging,
    percentile: f64,
    /// The early hedges' percentile, when the percentile is the budget's.
    early: Option<f64>,
    /// The last shards' percentile (below `early`), when there are early
    /// hedges: a call hedges its last few pending shards once they are
    /// this late.
    last: Option<f64>,
    latency: LatencyWindow,
    /// The sample count the cached delay was computed at.
    cached_at: AtomicU64,
    /// The cached delay (µs); `u64::MAX` when none is cached.
    cached_us: AtomicU64,
    /// The cached early delay (µs), computed with the delay; `u64::MAX`
    /// when there is none.
    cached_early_us: AtomicU64,
    /// The cached last shards' delay (µs), as the early one.
    cached_last_us: AtomicU64,
}

/// The delays a call hedges at (see [`Hedger::delays`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Delays {
    /// The hedge delay.
    pub(crate) late: Duration,
    /// The early hedge delay, below `late`, if the call hedges early.
    pub(crate) early: Option<Duration>,
    /// When the call hedges its last few pending shards (at most `early`),
    /// if it hedges early.
    pub(crate) last: Option<Duration>,
}

impl Hedger {
    /// `percentile` is the one to follow when the settings name none;
    /// `early`, the early hedges' then, and `last` the last shards'.
    pub(crate) fn new(settings: Hedging, default_percentile: f64, early: f64, last: f64) -> Self {
        let early = settings
            .percentile
            .is_none()
            .then_some(early)
            .filter(|&e| e < default_percentile);
        Hedger {
            percentile: settings.percentile.unwrap_or(default_percentile),
            early,
            last: early.map(|e| last.min(e)),
            latency: LatencyWindow::new(settings.window),
            settings,
            cached_at: AtomicU64::new(0),
            cached_us: AtomicU64::new(u64::MAX),
            cached_early_us: AtomicU64::new(u64::MAX),
            cached_last_us: AtomicU64::new(u64::MAX),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// A leaf call's latency (or, for a cancelled loser, a lower bound of
    /// it, so that cancelled stragglers do not vanish from the percentile).
    #[inline]
    pub(crate) fn record(&self, latency: Duration) {
        self.latency.record(latency);
    }

    /// The hedge delay a call starting now uses.
    pub(crate) fn delay(&self) -> Duration {
        self.delays().late
    }

    /// The hedge delay a call starting now uses, its early hedge delay if
    /// it hedges early (the budget's percentiles, enough samples), always
    /// below the hedge delay, and then the delay after which it hedges its
    /// last few shards (at most the early one). All are recomputed together
    /// and cached between.
    pub(crate) fn delays(&self) -> Delays {
        let samples = self.latency.samples();
        let at = self.cached_at.load(Ordering::Relaxed);
        let cached = self.cached_us.load(Ordering::Relaxed);
        let every = (self.settings.window / 16).max(16);
        if cached != u64::MAX && samples >= at && samples - at < every {
            let late = Duration::from_micros(cached);
            let stored = |us: u64| (us != u64::MAX).then(|| Duration::from_micros(us));
            let early = stored(self.cached_early_us.load(Ordering::Relaxed)).filter(|e| *e < late);
            let last = early.and_then(|e| {
                stored(self.cached_last_us.load(Ordering::Relaxed)).map(|l| l.min(e))
            });
            return Delays { late, early, last };
        }
        let h = &self.settings;
        let delay = self
            .latency
            .percentile(self.percentile, h.min_samples)
            .unwrap_or(h.fallback)
            .clamp(h.floor, h.ceiling);
        let early = self
            .early
            .and_then(|p| self.latency.percentile(p, h.min_samples))
            .map(|d| d.clamp(h.floor, h.ceiling))
            .filter(|e| *e < delay);
        let last = early.and_then(|e| {
            self.last
                .and_then(|p| self.latency.percentile(p, h.min_samples))
                .map(|d| d.clamp(h.floor, e))
        });
        self.cached_at.store(samples, Ordering::Relaxed);
        self.cached_us
            .store(micros(delay).min(u64::MAX - 1), Ordering::Relaxed);
        self.cached_early_us.store(
            early.map_or(u64::MAX, |e| micros(e).min(u64::MAX - 1)),
            Ordering::Relaxed,
        );
        self.cached_last_us.store(
            last.map_or(u64::MAX, |l| micros(l).min(u64::MAX - 1)),
            Ordering::Relaxed,
        );
        Delays {
            late: delay,
            early,
            last,
        }
    }
}
