//! How a root gathers: policy, deadlines, hedging, retries and the load
//! budget.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_core::{Backoff, HealthPolicy, RetryPolicy};

use crate::{Hedging, RetryBudget, ScatterError, Topology};

/// The most attempts a root makes for one shard: first, hedges and retries.
pub const MAX_ATTEMPTS: usize = 8;

/// When a call has gathered enough.
///
/// With serde: `"all"`, `{"first_k": 3}`, `{"fraction": 0.9}`,
/// `{"quorum": 2}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gather {
    /// Every shard asked must answer (or fail, or time out at the deadline).
    All,
    /// Return as soon as `k` shards answered; the rest are cancelled.
    FirstK(usize),
    /// Wait for all until the deadline; the policy is met when at least this
    /// fraction of the shards asked answered.
    Fraction(f64),
    /// Each shard asks `q` distinct replicas and answers once `q` agree
    /// through the call's resolver.
    Quorum(usize),
}

/// A root's configuration. Built with chained setters; [`crate::Scatter::new`]
/// validates it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft_scatter::{Gather, ScatterConfig};
///
/// let config = ScatterConfig::new(Duration::from_millis(50))
///     .attempt_timeout(Duration::from_millis(20))
///     .gather(Gather::Fraction(0.9))
///     .max_extra_load(0.03);
/// # let _ = config;
/// ```
///
/// # As data
///
/// With serde, every setting by its builder's name, durations as text
/// (`"250ms"`, `"forever"`); a file needs only `deadline`, the rest take
/// the defaults above, and reading it checks everything that does not
/// depend on a topology ([`crate::Scatter::new`] checks the rest):
///
/// ```
/// # use weft_scatter::ScatterConfig;
/// let config: ScatterConfig = serde_json::from_str(r#"{
///     "deadline": "50ms",
///     "attempt_timeout": "20ms",
///     "gather": {"fraction": 0.9},
///     "hedging": {"percentile": 99.0, "floor": "1ms"},
///     "retry": {"max_attempts": 3, "backoff": {"base": "1ms", "max": "8ms"}},
///     "retry_budget": {"ratio": 0.1, "burst": 20}
/// }"#)?;
/// assert!(serde_json::from_str::<ScatterConfig>(r#"{"deadline": "0s"}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "crate::config_serde::ScatterFile")]
pub struct ScatterConfig {
    #[serde(with = "weft_core::duration")]
    pub(crate) deadline: Duration,
    #[serde(with = "weft_core::duration::option")]
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) gather: Gather,
    pub(crate) hedging: Hedging,
    pub(crate) retry: RetryPolicy,
    pub(crate) retry_budget: RetryBudget,
    pub(crate) max_extra_load: f64,
    pub(crate) budget_window: u64,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) health: HealthPolicy,
    #[serde(with = "weft_core::duration")]
    pub(crate) probation: Duration,
    pub(crate) seed: u64,
}

impl ScatterConfig {
    /// Defaults around a global `deadline` per call: gather all, hedge
    /// adaptively, 3 attempts per shard, at most 5 % extra leaf requests,
    /// no per-attempt timeout.
    pub fn new(deadline: Duration) -> Self {
        ScatterConfig {
            deadline,
            attempt_timeout: None,
            gather: Gather::All,
            hedging: Hedging::adaptive(),
            retry: default_retry(),
            retry_budget: RetryBudget::new(0.1),
            max_extra_load: 0.05,
            budget_window: 1000,
            max_in_flight: None,
            health: HealthPolicy::default(),
            probation: Duration::from_secs(5),
            seed: 0x5eed,
        }
    }

    /// The gather policy.
    #[must_use]
    pub fn gather(mut self, gather: Gather) -> Self {
        self.gather = gather;
        self
    }

    /// A timeout per attempt: a leaf call slower than this is cancelled and
    /// the next replica is tried (a retry, from the extra-load budget: it
    /// adds load where load is already slow).
    #[must_use]
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// The extra-load budget: hedges and retries after a timeout together
    /// never exceed this fraction of first attempts (0.05 = 5 % more leaf requests), counted
    /// over the root's life, with at most `1000 ·` this many extra attempts
    /// banked.
    #[must_use]
    pub fn max_extra_load(mut self, ratio: f64) -> Self {
        self.max_extra_load = ratio;
        self
    }

    /// When to hedge (default [`Hedging::adaptive`]).
    #[must_use]
    pub fn hedging(mut self, hedging: Hedging) -> Self {
        self.hedging = hedging;
        self
    }

    /// Attempts per shard and the wait before a retry.
    ///
    /// The policy's attempts (1 to [`MAX_ATTEMPTS`]) bound every attempt at
    /// a shard: the first, hedges and retries (a quorum raises it to the
    /// quorum). After a transient error with nothing else in flight for the
    /// shard, the next replica is tried after the policy's backoff (none by
    /// default: at once); an attempt that timed out is retried at once.
    /// A retry after a transient error (a failover) is paid from the
    /// [`retry_budget`](ScatterConfig::retry_budget); one after a timeout,
    /// like a hedge, from the extra-load budget.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The budget of failovers: retries at the next replica after a
    /// transient error (default [`RetryBudget::new(0.1)`](RetryBudget::new),
    /// warm).
    #[must_use]
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.retry_budget = budget;
        self
    }

    /// At most `n` leaf calls in flight across all calls of this root;
    /// waiting for a slot counts against each call's deadline.
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = Some(n);
        self
    }

    /// When replicas are suspect and down; a down replica gets one probe
    /// request per `probation` and rejoins after the policy's successes.
    #[must_use]
    pub fn health(mut self, policy: HealthPolicy, probation: Duration) -> Self {
        self.health = policy;
        self.probation = probation;
        self
    }

    /// The seed of replica choice (power of two choices), for reproducible
    /// runs.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// When a call has gathered enough (set with
    /// [`gather`](ScatterConfig::gather)).
    pub fn policy(&self) -> Gather {
        self.gather
    }

    pub(crate) fn validate(&self, topology: &Topology) -> Result<(), ScatterError> {
        self.check()?;
        match self.gather {
            Gather::FirstK(k) if k == 0 || k > topology.shard_count() => {
                return Err(ScatterError::BadK {
                    k,
                    shards: topology.shard_count(),
                });
            }
            Gather::Quorum(q) => {
                for i in 0..topology.shard_count() {
                    let shard = weft_core::ShardId::new(i as u32);
                    let replicas = topology.replicas_of(shard).len();
                    if q == 0 || q > replicas {
                        return Err(ScatterError::BadQuorum { q, shard, replicas });
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The checks that do not depend on a topology: what a configuration
    /// read from a file must pass.
    pub(crate) fn check(&self) -> Result<(), ScatterError> {
        if self.deadline.is_zero() {
            return Err(ScatterError::ZeroDuration("deadline"));
        }
        if let Some(timeout) = self.attempt_timeout {
            if timeout.is_zero() {
                return Err(ScatterError::ZeroDuration("attempt timeout"));
            }
            if timeout > self.deadline {
                return Err(ScatterError::TimeoutAboveDeadline {
                    timeout,
                    deadline: self.deadline,
                });
            }
        }
        if self.max_in_flight == Some(0) {
            return Err(ScatterError::ZeroCount("max in flight"));
        }
        if self.budget_window == 0 {
            return Err(ScatterError::ZeroCount("budget window"));
        }
        if !(0.0..=1.0).contains(&self.max_extra_load) {
            return Err(ScatterError::BadBudget(self.max_extra_load));
        }
        self.hedging.validate()?;
        if !(0.0..=1.0).contains(&self.retry_budget.ratio) {
            return Err(ScatterError::BadRetryBudget(self.retry_budget.ratio));
        }
        if self.retry.max_attempts() as usize > MAX_ATTEMPTS {
            return Err(ScatterError::TooManyAttempts {
                what: "max attempts",
                got: self.retry.max_attempts() as usize,
                max: MAX_ATTEMPTS,
            });
        }
        match self.gather {
            Gather::Fraction(f) if !(f > 0.0 && f <= 1.0) => {
                return Err(ScatterError::BadFraction(f));
            }
            Gather::Quorum(q) if q > MAX_ATTEMPTS => {
                return Err(ScatterError::TooManyAttempts {
                    what: "quorum",
                    got: q,
                    max: MAX_ATTEMPTS,
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// The percentile the hedge delay follows when the hedging settings
    /// name none: the one the budget implies.
    pub(crate) fn budget_percentile(&self) -> f64 {
        (100.0 * (1.0 - self.max_extra_load * 2.0 / 3.0)).clamp(50.0, 99.9)
    }

    /// The early hedges' percentile: the one whose hedges would spend the
    /// whole budget, `100 · (1 − max_extra_load)`.
    pub(crate) fn early_percentile(&self) -> f64 {
        (100.0 * (1.0 - self.max_extra_load)).clamp(50.0, 99.9)
    }

    /// The last shards' percentile: once a call has waited this long and
    /// has at most [`last_few`](ScatterConfig::last_few) shards pending, it
    /// hedges them early, `100 · (1 − 1.5 · max_extra_load)`.
    pub(crate) fn last_percentile(&self) -> f64 {
        (100.0 * (1.0 - self.max_extra_load * 1.5)).clamp(50.0, 99.9)
    }

    /// How few pending shards of a call of `shards` are its last ones: a
    /// budget's worth of them, `⌊max_extra_load · shards⌋` (3 of 100 at
    /// 3 %; none below 34 shards).
    pub(crate) fn last_few(&self, shards: usize) -> usize {
        // invariant: max_extra_load is in [0, 1], so this is at most `shards`.
        (self.max_extra_load * shards as f64).floor() as usize
    }

    /// The most attempts a call makes at a shard under `quorum`.
    pub(crate) fn attempts_per_shard(&self, quorum: usize) -> usize {
        (self.retry.max_attempts() as usize)
            .max(quorum)
            .min(MAX_ATTEMPTS)
    }
}

/// Per-call choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallOptions {
    pub(crate) deadline: Option<Duration>,
    pub(crate) no_hedge: bool,
}

impl CallOptions {
    /// Overrides the root's deadline for this call.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// No hedges for this call (e.g. an expensive request that duplicating
    /// would only slow down); retries on transient errors still happen.
    #[must_use]
    pub fn no_hedge(mut self) -> Self {
        self.no_hedge = true;
        self
    }
}

/// 3 attempts per shard, the next replica at once.
fn default_retry() -> RetryPolicy {
    // invariant: 3 attempts is a valid policy.
    RetryPolicy::new(3, Backoff::NONE).unwrap_or(RetryPolicy::ONCE)
}
