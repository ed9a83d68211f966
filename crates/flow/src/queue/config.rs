//! A queue's settings.

use std::time::Duration;

use tokio::sync::Semaphore;

use super::{Autoscaler, RetryPolicy};
use crate::{FlowConfig, FlowError};

/// A queue's settings.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub(super) autoscaler: Autoscaler,
    pub(super) max_in_flight: usize,
    pub(super) retry: RetryPolicy,
    pub(super) evaluate_every: Duration,
    pub(super) output: FlowConfig,
}

impl QueueConfig {
    /// A queue scaled by `autoscaler`, with at most `max_in_flight` items
    /// being processed at once.
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] if `max_in_flight` is zero.
    pub fn new(autoscaler: Autoscaler, max_in_flight: usize) -> Result<Self, FlowError> {
        if max_in_flight == 0 {
            return Err(FlowError::invalid("max in flight", 0, "at least 1"));
        }
        if max_in_flight > Semaphore::MAX_PERMITS {
            return Err(FlowError::invalid(
                "max in flight",
                max_in_flight,
                format!("at most {}", Semaphore::MAX_PERMITS),
            ));
        }
        Ok(QueueConfig {
            autoscaler,
            max_in_flight,
            retry: RetryPolicy::default(),
            evaluate_every: Duration::from_secs(1),
            output: FlowConfig::default(),
        })
    }

    /// The retry policy.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How often the autoscaler looks at the rates (default 1 s).
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] if `every` is zero.
    pub fn evaluate_every(mut self, every: Duration) -> Result<Self, FlowError> {
        if every.is_zero() {
            return Err(FlowError::invalid(
                "autoscaler evaluation interval",
                "0s",
                "above zero",
            ));
        }
        self.evaluate_every = every;
        Ok(self)
    }

    /// The output flows' buffers.
    #[must_use]
    pub fn output(mut self, config: FlowConfig) -> Self {
        self.output = config;
        self
    }
}
