//! How many workers a queue needs.

use std::time::Duration;

use crate::FlowError;

/// Parallelism from arrival rate and processing time:
/// `ceil(arrival rate × processing time ÷ target utilisation)`, within
/// bounds, changed only when the same new value is wanted for
/// `patience` evaluations in a row (hysteresis), so noise does not make
/// it flap.
#[derive(Debug, Clone)]
pub struct Autoscaler {
    min: usize,
    max: usize,
    utilisation: f64,
    patience: u32,
    current: usize,
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
    /// [`FlowError::Config`] for zero workers, `min > max`, a utilisation
    /// outside (0, 1] or zero patience.
    pub fn new(min: usize, max: usize, utilisation: f64, patience: u32) -> Result<Self, FlowError> {
        if max == 0 {
            return Err(FlowError::Config("max workers is zero".into()));
        }
        if min > max {
            return Err(FlowError::Config(format!(
                "min workers {min} is above max workers {max}"
            )));
        }
        if !(utilisation > 0.0 && utilisation <= 1.0) {
            return Err(FlowError::Config(format!(
                "target utilisation {utilisation} is outside (0, 1]"
            )));
        }
        if patience == 0 {
            return Err(FlowError::Config("autoscaler patience is zero".into()));
        }
        let start = min.max(1);
        Ok(Autoscaler {
            min,
            max,
            utilisation,
            patience,
            current: start,
            wanted: start,
            streak: 0,
        })
    }

    /// The parallelism the rates call for, before hysteresis.
    pub fn desired(&self, arrivals_per_sec: f64, processing: Duration) -> usize {
        let need = (arrivals_per_sec * processing.as_secs_f64() / self.utilisation).ceil();
        (need.max(0.0) as usize).clamp(self.min.max(1), self.max)
    }

    /// Feeds one evaluation; returns the (possibly new) target.
    pub fn observe(&mut self, arrivals_per_sec: f64, processing: Duration) -> usize {
        let d = self.desired(arrivals_per_sec, processing);
        if d == self.current {
            self.streak = 0;
        } else if d == self.wanted {
            self.streak += 1;
            if self.streak >= self.patience {
                self.current = d;
                self.streak = 0;
            }
        } else {
            self.wanted = d;
            self.streak = 1;
            if self.patience == 1 {
                self.current = d;
                self.streak = 0;
            }
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
