//! A queue's settings as data: the file forms of [`QueueConfig`] and
//! [`Autoscaler`], validated on the way in.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Autoscaler, QueueConfig, RetryPolicy};
use crate::{FlowConfig, FlowError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueueFile {
    autoscaler: Autoscaler,
    max_in_flight: Option<usize>,
    retry: Option<RetryPolicy>,
    #[serde(with = "weft_core::duration::option", default)]
    evaluate_every: Option<Duration>,
    output: Option<FlowConfig>,
    #[serde(with = "weft_core::duration::option", default)]
    attempt_timeout: Option<Duration>,
}

impl TryFrom<QueueFile> for QueueConfig {
    type Error = FlowError;
    fn try_from(f: QueueFile) -> Result<QueueConfig, FlowError> {
        let in_flight = f.max_in_flight.unwrap_or(f.autoscaler.max_workers());
        let mut config = QueueConfig::new(f.autoscaler, in_flight)?;
        if let Some(retry) = f.retry {
            config = config.retry(retry);
        }
        if let Some(every) = f.evaluate_every {
            config = config.evaluate_every(every)?;
        }
        if let Some(output) = f.output {
            config = config.output(output);
        }
        if let Some(timeout) = f.attempt_timeout {
            config = config.attempt_timeout(timeout)?;
        }
        Ok(config)
    }
}

/// The file form of an [`Autoscaler`]: its bounds and targets, and the
/// workers it starts with.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AutoscalerFile {
    min: usize,
    max: usize,
    #[serde(default = "utilisation")]
    utilisation: f64,
    #[serde(default = "patience")]
    patience: u32,
    #[serde(with = "weft_core::duration::option", default)]
    drain_within: Option<Duration>,
    start: Option<usize>,
}

fn utilisation() -> f64 {
    0.8
}

fn patience() -> u32 {
    2
}

impl TryFrom<AutoscalerFile> for Autoscaler {
    type Error = FlowError;
    fn try_from(f: AutoscalerFile) -> Result<Autoscaler, FlowError> {
        let mut a = Autoscaler::new(f.min, f.max, f.utilisation, f.patience)?;
        if let Some(within) = f.drain_within {
            a = a.drain_backlog_within(within)?;
        }
        if let Some(start) = f.start {
            if start < f.min.max(1) || start > f.max {
                return Err(FlowError::invalid(
                    "starting workers",
                    start,
                    format!("within min..=max workers ({}..={})", f.min.max(1), f.max),
                ));
            }
            a = a.starting_at(start);
        }
        Ok(a)
    }
}

impl From<Autoscaler> for AutoscalerFile {
    fn from(a: Autoscaler) -> AutoscalerFile {
        AutoscalerFile {
            min: a.min,
            max: a.max,
            utilisation: a.utilisation,
            patience: a.patience,
            drain_within: Some(a.drain_within),
            start: Some(a.current),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(c: &QueueConfig) -> String {
        serde_json::to_string(c).unwrap()
    }

    #[test]
    fn a_queue_config_round_trips_and_a_file_needs_only_the_autoscaler() {
        let config = QueueConfig::batch(8)
            .unwrap()
            .retry(RetryPolicy::exponential(3, Duration::from_millis(5), Duration::MAX).unwrap())
            .output(FlowConfig::new(64, 16).unwrap())
            .attempt_timeout(Duration::from_secs(30))
            .unwrap();
        let text = json(&config);
        assert_eq!(
            text,
            r#"{"autoscaler":{"min":1,"max":8,"utilisation":0.8,"patience":2,"drain_within":"1s","start":8},"max_in_flight":8,"retry":{"max_attempts":3,"backoff":{"base":"5ms","max":"forever","jitter":0.5}},"evaluate_every":"1s","output":{"capacity":64,"batch":16},"attempt_timeout":"30s"}"#
        );
        let back: QueueConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(json(&back), text);
        let fixed: QueueConfig =
            serde_json::from_str(r#"{"autoscaler":{"min":16,"max":16}}"#).unwrap();
        assert_eq!(
            json(&fixed),
            json(&QueueConfig::new(Autoscaler::new(16, 16, 0.8, 2).unwrap(), 16).unwrap())
        );
    }

    #[test]
    fn a_bad_queue_file_is_refused_naming_the_setting() {
        let cases = [
            (r#"{}"#, "autoscaler"),
            (r#"{"autoscaler":{"min":2,"max":0}}"#, "max workers"),
            (r#"{"autoscaler":{"min":3,"max":2}}"#, "min workers"),
            (
                r#"{"autoscaler":{"min":1,"max":2,"utilisation":0}}"#,
                "target utilisation",
            ),
            (
                r#"{"autoscaler":{"min":1,"max":2,"patience":0}}"#,
                "patience",
            ),
            (
                r#"{"autoscaler":{"min":1,"max":2,"drain_within":"0s"}}"#,
                "backlog drain time",
            ),
            (
                r#"{"autoscaler":{"min":1,"max":2,"start":5}}"#,
                "starting workers",
            ),
            (
                r#"{"autoscaler":{"min":1,"max":2},"max_in_flight":0}"#,
                "max in flight",
            ),
            (
                r#"{"autoscaler":{"min":1,"max":2},"evaluate_every":"0s"}"#,
                "evaluation interval",
            ),
            (
                r#"{"autoscaler":{"min":1,"max":2},"attempt_timeout":"0s"}"#,
                "attempt timeout",
            ),
            (
                r#"{"autoscaler":{"min":1,"max":2},"output":{"capacity":4,"batch":8}}"#,
                "batch size",
            ),
            (
                r#"{"autoscaler":{"min":1,"max":2},"output":{"capacity":0}}"#,
                "capacity",
            ),
            (
                r#"{"autoscaler":{"min":1,"max":2},"retry":{"max_attempts":0}}"#,
                "max attempts",
            ),
            (
                r#"{"autoscaler":{"min":1,"max":2},"workers":4}"#,
                "unknown field",
            ),
        ];
        for (text, names) in cases {
            let err = serde_json::from_str::<QueueConfig>(text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(names), "{text}: {err}");
        }
    }
}
