//! How many workers a queue needs.

use std::time::Duration;

use crate::FlowError;

/// What one evaluation of a queue sees.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Load {
    /// Items arriving per second since the last evaluation.
    pub arrivals_per_sec: f64,
    /// Mean processing time of an item.
    pub processing: Duration,
    /// Items waiting in the source.
    pub backlog: usize,
}

/// Parallelism from arrival rate and processing time:
/// `ceil(arrival rate × processing time ÷ target utilisation)`, within
/// bounds, changed only when `patience` evaluations in a row want it
/// higher (or all lower), and then to the most cautious of their values
/// (hysteresis), so noise does not make it flap.
///
/// A backlog counts as extra arrivals: `backlog ÷ drain_within` items per
/// second (default: within 10 s), so a queue that starts on a pile of work
/// grows to clear it, then shrinks to what the steady arrivals need.
///
/// With serde: `{"min": 1, "max": 16, "utilisation": 0.8, "patience": 2,
/// "drain_within": "10s", "start": 4}`, only `min` and `max` required.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(
    try_from = "super::config_serde::AutoscalerFile",
    into = "super::config_serde::AutoscalerFile"
)]
pub struct Autoscaler {
    pub(super) min: usize,
    pub(super) max: usize,
    pub(super) utilisation: f64,
    pub(super) patience: u32,
    pub(super) drain_within: Duration,
    /// The target now: the starting workers until the first evaluation.
    pub(super) current: usize,
    wanted: usize,
    streak: u32,
}

impl Autoscaler {
    /// Bounds `min..=max` workers, aiming at `utilisation` (0.8 = workers
    /// busy 80 % of the time), changing after `patience` agreeing
    /// evaluations.
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] for zero workers, `min > max`, a utilisation
    /// outside (0, 1] or zero patience.
    pub fn new(min: usize, max: usize, utilisation: f64, patience: u32) -> Result<Self, FlowError> {
        if max == 0 {
            return Err(FlowError::invalid("max workers", 0, "at least 1"));
        }
        if min > max {
            return Err(FlowError::invalid(
                "min workers",
                min,
                format!("at most max workers ({max})"),
            ));
        }
        if !(utilisation > 0.0 && utilisation <= 1.0) {
            return Err(FlowError::invalid(
                "target utilisation",
                utilisation,
                "in (0, 1]",
            ));
        }
        if patience == 0 {
            return Err(FlowError::invalid(
                "autoscaler patience",
                0,
                "at least 1 evaluation",
            ));
        }
        let start = min.max(1);
        Ok(Autoscaler {
            min,
            max,
            utilisation,
            patience,
            drain_within: Duration::from_secs(10),
            current: start,
            wanted: start,
            streak: 0,
        })
    }

    /// Exactly `workers` workers, whatever the load: the choice when the
    /// parallelism is known (a pool sized to a downstream's limit).
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] for zero workers.
    pub fn fixed(workers: usize) -> Result<Self, FlowError> {
        Autoscaler::new(workers, workers, 1.0, 1)
    }

    /// Starts with `workers` workers (clamped to the bounds) instead of
    /// the minimum: a queue that starts on a pile of work need not wait
    /// for evaluations to grow.
    #[must_use]
    pub fn starting_at(mut self, workers: usize) -> Self {
        let start = workers.clamp(self.min.max(1), self.max);
        self.current = start;
        self.wanted = start;
        self
    }

    /// How soon a backlog should be cleared (default 10 s): a backlog of
    /// `b` items adds `b ÷ within` to the arrival rate.
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] if `within` is zero.
    pub fn drain_backlog_within(mut self, within: Duration) -> Result<Self, FlowError> {
        if within.is_zero() {
            return Err(FlowError::invalid(
                "backlog drain time",
                "0s",
                "above zero: no number of workers clears a backlog at once",
            ));
        }
        self.drain_within = within;
        Ok(self)
    }

    /// The most workers.
    pub fn max_workers(&self) -> usize {
        self.max
    }

    /// The parallelism a load calls for, before hysteresis.
    pub fn desired(&self, load: &Load) -> usize {
        let rate =
            load.arrivals_per_sec.max(0.0) + load.backlog as f64 / self.drain_within.as_secs_f64();
        let need = (rate * load.processing.as_secs_f64() / self.utilisation).ceil();
        (need.max(0.0) as usize).clamp(self.min.max(1), self.max)
    }

    /// Feeds one evaluation; returns the (possibly new) target.
    ///
    /// The target moves once `patience` evaluations in a row have wanted
    /// more than it (or all less), and then only as far as the most
    /// cautious of them: noise on both sides of the target resets the
    /// count, and a steady ramp still gets through.
    pub fn observe(&mut self, load: &Load) -> usize {
        let d = self.desired(load);
        let direction = d.cmp(&self.current);
        if direction == std::cmp::Ordering::Equal {
            self.streak = 0;
            return self.current;
        }
        if self.streak > 0 && direction == self.wanted.cmp(&self.current) {
            self.streak += 1;
            self.wanted = if direction == std::cmp::Ordering::Greater {
                self.wanted.min(d)
            } else {
                self.wanted.max(d)
            };
        } else {
            self.streak = 1;
            self.wanted = d;
        }
        if self.streak >= self.patience {
            self.current = self.wanted;
            self.streak = 0;
        }
        self.current
    }

    /// The bounds `(min, max)` on the number of workers.
    pub fn bounds(&self) -> (usize, usize) {
        (self.min, self.max)
    }

    /// The current target parallelism.
    pub fn target(&self) -> usize {
        self.current
    }
}
