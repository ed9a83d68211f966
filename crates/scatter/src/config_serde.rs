//! Configuration as data: the file forms of [`ScatterConfig`],
//! [`Hedging`] and [`RetryBudget`], every setting but `deadline` optional
//! (missing ones take the builder's defaults), validated on the way in.

use std::time::Duration;

use serde::Deserialize;
use weft_core::{HealthPolicy, RetryPolicy};

use crate::{Gather, Hedging, RetryBudget, ScatterConfig, ScatterError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScatterFile {
    #[serde(with = "weft_core::duration")]
    deadline: Duration,
    #[serde(with = "weft_core::duration::option", default)]
    attempt_timeout: Option<Duration>,
    gather: Option<Gather>,
    hedging: Option<Hedging>,
    retry: Option<RetryPolicy>,
    retry_budget: Option<RetryBudget>,
    max_extra_load: Option<f64>,
    budget_window: Option<u64>,
    max_in_flight: Option<usize>,
    health: Option<HealthPolicy>,
    #[serde(with = "weft_core::duration::option", default)]
    probation: Option<Duration>,
    seed: Option<u64>,
}

impl TryFrom<ScatterFile> for ScatterConfig {
    type Error = ScatterError;
    fn try_from(f: ScatterFile) -> Result<ScatterConfig, ScatterError> {
        let d = ScatterConfig::new(f.deadline);
        let config = ScatterConfig {
            attempt_timeout: f.attempt_timeout,
            gather: f.gather.unwrap_or(d.gather),
            hedging: f.hedging.unwrap_or(d.hedging),
            retry: f.retry.unwrap_or(d.retry),
            retry_budget: f.retry_budget.unwrap_or(d.retry_budget),
            max_extra_load: f.max_extra_load.unwrap_or(d.max_extra_load),
            budget_window: f.budget_window.unwrap_or(d.budget_window),
            max_in_flight: f.max_in_flight,
            health: f.health.unwrap_or(d.health),
            probation: f.probation.unwrap_or(d.probation),
            seed: f.seed.unwrap_or(d.seed),
            ..d
        };
        config.check()?;
        Ok(config)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HedgingFile {
    enabled: Option<bool>,
    percentile: Option<f64>,
    #[serde(with = "weft_core::duration::option", default)]
    floor: Option<Duration>,
    #[serde(with = "weft_core::duration::option", default)]
    ceiling: Option<Duration>,
    #[serde(with = "weft_core::duration::option", default)]
    fallback: Option<Duration>,
    min_samples: Option<u64>,
    window: Option<u64>,
}

impl TryFrom<HedgingFile> for Hedging {
    type Error = ScatterError;
    fn try_from(f: HedgingFile) -> Result<Hedging, ScatterError> {
        let d = Hedging::adaptive();
        let hedging = Hedging {
            enabled: f.enabled.unwrap_or(d.enabled),
            percentile: f.percentile,
            floor: f.floor.unwrap_or(d.floor),
            ceiling: f.ceiling.unwrap_or(d.ceiling),
            fallback: f.fallback.unwrap_or(d.fallback),
            min_samples: f.min_samples.unwrap_or(d.min_samples),
            window: f.window.unwrap_or(d.window),
        };
        hedging.validate()?;
        Ok(hedging)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryBudgetFile {
    ratio: Option<f64>,
    burst: Option<u64>,
    warm: Option<bool>,
}

impl TryFrom<RetryBudgetFile> for RetryBudget {
    type Error = ScatterError;
    fn try_from(f: RetryBudgetFile) -> Result<RetryBudget, ScatterError> {
        let d = RetryBudget::default();
        let budget = RetryBudget {
            ratio: f.ratio.unwrap_or(d.ratio),
            burst: f.burst,
            warm: f.warm.unwrap_or(d.warm),
        };
        if !(0.0..=1.0).contains(&budget.ratio) {
            return Err(ScatterError::BadRetryBudget(budget.ratio));
        }
        Ok(budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_round_trips_and_a_file_needs_only_the_deadline() {
        let ms = Duration::from_millis;
        let config = ScatterConfig::new(ms(50))
            .attempt_timeout(ms(20))
            .gather(Gather::Fraction(0.9))
            .hedging(
                Hedging::adaptive()
                    .percentile(99.0)
                    .bounds(ms(1), Duration::MAX),
            )
            .retry(RetryPolicy::exponential(4, ms(1), ms(8)).unwrap())
            .retry_budget(RetryBudget::new(0.2).burst(7).cold())
            .max_in_flight(64)
            .health(HealthPolicy::new(2, 4, 3).unwrap(), Duration::MAX)
            .seed(9);
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(
            serde_json::from_str::<ScatterConfig>(&json).unwrap(),
            config,
            "{json}"
        );
        let json = serde_json::to_string(&ScatterConfig::new(Duration::MAX)).unwrap();
        assert_eq!(
            serde_json::from_str::<ScatterConfig>(&json).unwrap(),
            ScatterConfig::new(Duration::MAX)
        );

        let minimal: ScatterConfig = serde_json::from_str(r#"{"deadline":"250ms"}"#).unwrap();
        assert_eq!(minimal, ScatterConfig::new(ms(250)));
        let some: ScatterConfig = serde_json::from_str(
            r#"{"deadline":"1s","gather":{"first_k":2},"hedging":{"enabled":false},"retry_budget":{"burst":3}}"#,
        )
        .unwrap();
        assert_eq!(
            some,
            ScatterConfig::new(Duration::from_secs(1))
                .gather(Gather::FirstK(2))
                .hedging(Hedging::off())
                .retry_budget(RetryBudget::new(0.1).burst(3))
        );
    }

    #[test]
    fn a_bad_file_is_refused_naming_the_setting() {
        let refused = |json: &str| {
            serde_json::from_str::<ScatterConfig>(json)
                .unwrap_err()
                .to_string()
        };
        let cases = [
            (r#"{}"#, "deadline"),
            (r#"{"deadline":"0s"}"#, "deadline"),
            (r#"{"deadline":"10"}"#, "no unit"),
            (
                r#"{"deadline":"1s","attempt_timeout":"2s"}"#,
                "longer than the deadline",
            ),
            (r#"{"deadline":"1s","max_extra_load":1.5}"#, "1.5"),
            (r#"{"deadline":"1s","gather":{"fraction":0}}"#, "fraction"),
            (r#"{"deadline":"1s","gather":{"quorum":9}}"#, "quorum"),
            (r#"{"deadline":"1s","gather":"most"}"#, "unknown variant"),
            (r#"{"deadline":"1s","max_in_flight":0}"#, "max in flight"),
            (r#"{"deadline":"1s","budget_window":0}"#, "budget window"),
            (
                r#"{"deadline":"1s","retry":{"max_attempts":9}}"#,
                "max attempts",
            ),
            (r#"{"deadline":"1s","retry_budget":{"ratio":-1}}"#, "-1"),
            (r#"{"deadline":"1s","hedging":{"percentile":100}}"#, "100"),
            (
                r#"{"deadline":"1s","hedging":{"floor":"2s","ceiling":"1s"}}"#,
                "floor",
            ),
            (
                r#"{"deadline":"1s","hedging":{"window":0}}"#,
                "latency window",
            ),
            (
                r#"{"deadline":"1s","health":{"suspect_after":0,"down_after":1,"recover_after":1}}"#,
                "at least 1",
            ),
            (r#"{"deadline":"1s","dedline":"2s"}"#, "unknown field"),
        ];
        for (json, names) in cases {
            let err = refused(json);
            assert!(err.contains(names), "{json}: {err}");
        }
    }
}
