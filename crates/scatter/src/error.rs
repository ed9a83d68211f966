//! The error type of weft-scatter.

use weft_core::{Classify, ErrorClass, ShardId};

use crate::Report;

/// Why a scatter/gather root could not be built or a call was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScatterError {
    /// A topology with no shards.
    #[error("topology has no shards: at least one is needed")]
    ZeroShards,
    /// A shard with no replicas.
    #[error("shard {0} has no replicas: every shard needs at least one")]
    NoReplicas(ShardId),
    /// A replica index outside the topology's replica list.
    #[error("shard {shard} names replica {replica}, but only {replicas} replicas exist")]
    UnknownReplica {
        /// The shard.
        shard: ShardId,
        /// The replica index given.
        replica: usize,
        /// The number of replicas.
        replicas: usize,
    },
    /// First-k with k = 0 or k above the number of shards asked.
    #[error("first-k needs 1 <= k <= {shards} shards, got k = {k}")]
    BadK {
        /// The k given.
        k: usize,
        /// Shards in the topology.
        shards: usize,
    },
    /// Quorum of zero, or above a shard's replica count.
    #[error("quorum {q} is outside 1..={replicas} (replicas of shard {shard})")]
    BadQuorum {
        /// The quorum given.
        q: usize,
        /// The shard with too few replicas.
        shard: ShardId,
        /// Its replica count.
        replicas: usize,
    },
    /// A fraction outside (0, 1].
    #[error("fraction {0} is outside (0, 1]")]
    BadFraction(f64),
    /// A zero deadline or timeout.
    #[error("{0} is zero: it must be positive")]
    ZeroDuration(&'static str),
    /// An extra-load budget outside [0, 1].
    #[error("max_extra_load {0} is outside [0, 1]")]
    BadBudget(f64),
    /// A retry budget's ratio outside [0, 1].
    #[error("retry budget ratio {0} is outside [0, 1]")]
    BadRetryBudget(f64),
    /// A percentile outside (0, 100).
    #[error("hedge percentile {0} is outside (0, 100)")]
    BadPercentile(f64),
    /// A hedge delay floor above its ceiling.
    #[error("hedge delay floor {floor:?} is above its ceiling {ceiling:?}")]
    FloorAboveCeiling {
        /// The floor.
        floor: std::time::Duration,
        /// The ceiling.
        ceiling: std::time::Duration,
    },
    /// A size above the limit the root can hold.
    #[error("{got} {what} is above the limit of {max}")]
    TooLarge {
        /// What was counted.
        what: &'static str,
        /// How many were asked for.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// A count that must be at least 1.
    #[error("{0} is zero: it must be at least 1")]
    ZeroCount(&'static str),
    /// More attempts per shard than a root makes.
    #[error("{what} of {got} needs more attempts per shard than the limit of {max}")]
    TooManyAttempts {
        /// The setting (`max attempts` or `quorum`).
        what: &'static str,
        /// Its value.
        got: usize,
        /// The most attempts a root makes per shard.
        max: usize,
    },
    /// A per-attempt timeout longer than the call's deadline, which could
    /// never fire.
    #[error("attempt timeout {timeout:?} is longer than the deadline {deadline:?}")]
    TimeoutAboveDeadline {
        /// The attempt timeout.
        timeout: std::time::Duration,
        /// The deadline.
        deadline: std::time::Duration,
    },
    /// A call made outside a tokio runtime: its deadline and hedges are
    /// tokio timers (the runtime needs its time driver too).
    #[error("scatter/gather needs a tokio runtime with time enabled, and none is running")]
    NoRuntime,
    /// A plan that names a shard the topology does not have.
    #[error("the plan names shard {0}, which is not in the topology")]
    UnknownShard(ShardId),
    /// A plan that names a shard twice.
    #[error("the plan names shard {0} twice")]
    DuplicateShard(ShardId),
    /// A result that misses shards, where a complete one was required.
    #[error("{} of {} shards did not answer ({} timed out, {} failed, {} cancelled)",
        .0.asked - .0.answered, .0.asked, .0.timed_out, .0.failed, .0.cancelled)]
    Incomplete(Box<Report>),
    /// A result that does not meet its gather policy, where one was required.
    #[error("gather policy not met: {} of {} shards answered", .0.answered, .0.asked)]
    PolicyNotMet(Box<Report>),
}

impl Classify for ScatterError {
    fn class(&self) -> ErrorClass {
        match self {
            // The same call may well complete next time.
            ScatterError::Incomplete(_) | ScatterError::PolicyNotMet(_) => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }
}
