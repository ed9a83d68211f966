//! A queue's settings.

use std::time::Duration;

use tokio::sync::Semaphore;
use weft_core::time::capped;

use super::{Autoscaler, RetryPolicy};
use crate::{FlowConfig, FlowError};

/// A queue's settings.
///
/// # As data
///
/// With serde, every setting by its builder's name, durations as text; a
/// file needs only `autoscaler` (`min` and `max` workers; `utilisation`
/// 0.8, `patience` 2, `drain_within` 10 s and `start` = `min` unless
/// given), `max_in_flight` defaults to the maximum workers, the rest to
/// the defaults of [`QueueConfig::new`]. Reading checks every setting as
/// the builders do.
///
/// ```
/// # use weft_flow::queue::QueueConfig;
/// let fixed: QueueConfig = serde_json::from_str(r#"{
///     "autoscaler": {"min": 16, "max": 16},
///     "retry": {"max_attempts": 3, "backoff": {"base": "10ms", "max": "1s", "jitter": 0.5}},
///     "attempt_timeout": "30s"
/// }"#)?;
/// let bad = serde_json::from_str::<QueueConfig>(r#"{"autoscaler": {"min": 4, "max": 2}}"#);
/// assert!(bad.unwrap_err().to_string().contains("min workers"));
/// # let _ = fixed;
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "super::config_serde::QueueFile")]
pub struct QueueConfig {
    pub(super) autoscaler: Autoscaler,
    pub(super) max_in_flight: usize,
    pub(super) retry: RetryPolicy,
    #[serde(with = "weft_core::duration")]
    pub(super) evaluate_every: Duration,
    pub(super) output: FlowConfig,
    #[serde(with = "weft_core::duration::option")]
    pub(super) attempt_timeout: Option<Duration>,
}

impl QueueConfig {
    /// A queue scaled by `autoscaler`, with at most `max_in_flight` items
    /// being processed at once.
    ///
    /// Parallelism is the autoscaler's number of workers (each processes
    /// one item at a time); `max_in_flight` only caps it, it does not add
    /// workers. Defaults: [`RetryPolicy::default`] (5 attempts, 10 ms
    /// doubling to 1 s, ±50 %), an evaluation every second, output edges
    /// of [`FlowConfig::default`], no attempt timeout. For a known
    /// parallelism use [`fixed`](QueueConfig::fixed); for a pile of work to
    /// clear, [`batch`](QueueConfig::batch).
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
            attempt_timeout: None,
        })
    }

    /// Exactly `workers` workers and as many items in flight.
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] for zero workers or more than the in-flight
    /// limit.
    pub fn fixed(workers: usize) -> Result<Self, FlowError> {
        QueueConfig::new(Autoscaler::fixed(workers)?, workers)
    }

    /// For a backlog to clear as fast as `workers` workers can: starts at
    /// `workers`, keeps them while a backlog remains (drain within 1 s),
    /// and shrinks to what the arrivals need once it is gone.
    ///
    /// # Errors
    ///
    /// As [`fixed`](QueueConfig::fixed).
    pub fn batch(workers: usize) -> Result<Self, FlowError> {
        let autoscaler = Autoscaler::new(1, workers, 0.8, 2)?
            .drain_backlog_within(Duration::from_secs(1))?
            .starting_at(workers);
        QueueConfig::new(autoscaler, workers)
    }

    /// Cuts an attempt short after `timeout` (any `Duration`): it counts
    /// as a transient failure, retried per the policy; the worker sees the
    /// deadline in [`WorkContext::deadline`](super::WorkContext).
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] for a zero timeout.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Result<Self, FlowError> {
        if timeout.is_zero() {
            return Err(FlowError::invalid(
                "attempt timeout",
                "0s",
                "above zero: every attempt would time out",
            ));
        }
        self.attempt_timeout = Some(capped(timeout));
        Ok(self)
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
