//! What happened to every shard of a call.

use std::time::Duration;

use serde::{Serialize, Serializer};
use weft_core::{ErrorClass, ShardId};

use crate::{Gather, ScatterError};

fn micros<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros().min(u128::from(u64::MAX)) as u64)
}

/// How one shard ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ShardOutcome {
    /// It answered.
    Answered {
        /// The replica whose answer was used (for a quorum, the one that
        /// completed it).
        replica: usize,
        /// Which attempt answered (1 = the first).
        attempt: u32,
    },
    /// The deadline passed, or every attempt timed out, before it answered.
    TimedOut,
    /// It failed: a permanent error, or transient errors with no replica or
    /// budget left to try.
    Failed {
        /// The last error's message.
        error: String,
        /// The last error's class: transient when no replica or budget was
        /// left to try, permanent when retrying could not help.
        class: ErrorClass,
    },
    /// The call had gathered enough (first k) and stopped asking it.
    Cancelled,
    /// The plan did not ask it.
    Skipped,
}

/// One shard's line in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ShardReport {
    /// The shard.
    pub shard: ShardId,
    /// How it ended.
    pub outcome: ShardOutcome,
    /// Leaf requests sent for it.
    pub attempts: u32,
    /// Of those, hedges (sent while another was in flight).
    pub hedges: u32,
    /// Of those, retries (sent after a failure or timeout).
    pub retries: u32,
    /// Of the retries, failovers: sent after a transient error, paid from
    /// the retry budget (the others from the extra-load budget).
    pub failovers: u32,
    /// From the start of the call to its outcome.
    #[serde(rename = "elapsed_us", serialize_with = "micros")]
    pub elapsed: Duration,
}

/// Every shard's outcome, totals, and whether the result is complete.
///
/// A partial result is never presented as complete: `complete` is true only
/// when every shard asked answered. The totals and flags, derived from the
/// lines when the call ends, are read through methods; the serialized form
/// carries them as fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// One line per shard of the topology, in shard order.
    pub shards: Vec<ShardReport>,
    /// Shards asked (the plan's shards).
    pub(crate) asked: usize,
    /// Shards that answered.
    pub(crate) answered: usize,
    /// Shards that timed out.
    pub(crate) timed_out: usize,
    /// Shards that failed.
    pub(crate) failed: usize,
    /// Shards cancelled once the policy was met.
    pub(crate) cancelled: usize,
    /// Shards the plan did not ask.
    pub(crate) skipped: usize,
    /// Leaf requests sent in all.
    pub(crate) leaf_requests: u32,
    /// Hedges sent.
    pub(crate) hedges: u32,
    /// Retries sent.
    pub(crate) retries: u32,
    /// Of the retries, failovers after a transient error.
    pub(crate) failovers: u32,
    /// Every shard asked answered.
    pub(crate) complete: bool,
    /// The gather policy was met.
    pub(crate) policy_met: bool,
    /// The call stopped at its deadline.
    pub deadline_hit: bool,
    /// The hedge delay this call used.
    #[serde(rename = "hedge_delay_us", serialize_with = "micros")]
    pub hedge_delay: Duration,
    /// The call's duration.
    #[serde(rename = "elapsed_us", serialize_with = "micros")]
    pub elapsed: Duration,
}

impl Report {
    /// Shards asked (the plan's shards).
    pub fn asked(&self) -> usize {
        self.asked
    }
    /// Shards that answered.
    pub fn answered(&self) -> usize {
        self.answered
    }
    /// Shards that timed out.
    pub fn timed_out(&self) -> usize {
        self.timed_out
    }
    /// Shards that failed.
    pub fn failed(&self) -> usize {
        self.failed
    }
    /// Shards cancelled once the policy was met.
    pub fn cancelled(&self) -> usize {
        self.cancelled
    }
    /// Shards the plan did not ask.
    pub fn skipped(&self) -> usize {
        self.skipped
    }
    /// Leaf requests sent in all.
    pub fn leaf_requests(&self) -> u32 {
        self.leaf_requests
    }
    /// Hedges sent.
    pub fn hedges(&self) -> u32 {
        self.hedges
    }
    /// Retries sent.
    pub fn retries(&self) -> u32 {
        self.retries
    }
    /// Of the retries, failovers after a transient error.
    pub fn failovers(&self) -> u32 {
        self.failovers
    }
    /// Every shard asked answered.
    pub fn complete(&self) -> bool {
        self.complete
    }
    /// The gather policy was met.
    pub fn policy_met(&self) -> bool {
        self.policy_met
    }

    /// The report of a call from its lines (one per shard of the topology,
    /// in shard order), with the totals and flags they imply.
    pub(crate) fn assemble(
        shards: Vec<ShardReport>,
        asked: usize,
        gather: Gather,
        deadline_hit: bool,
        hedge_delay: Duration,
        elapsed: Duration,
    ) -> Report {
        let mut report = Report {
            shards: Vec::new(),
            asked,
            answered: 0,
            timed_out: 0,
            failed: 0,
            cancelled: 0,
            skipped: 0,
            leaf_requests: 0,
            hedges: 0,
            retries: 0,
            failovers: 0,
            complete: false,
            policy_met: false,
            deadline_hit,
            hedge_delay,
            elapsed,
        };
        for line in &shards {
            match line.outcome {
                ShardOutcome::Answered { .. } => report.answered += 1,
                ShardOutcome::TimedOut => report.timed_out += 1,
                ShardOutcome::Failed { .. } => report.failed += 1,
                ShardOutcome::Cancelled => report.cancelled += 1,
                ShardOutcome::Skipped => report.skipped += 1,
            }
            report.leaf_requests += line.attempts;
            report.hedges += line.hedges;
            report.retries += line.retries;
            report.failovers += line.failovers;
        }
        report.shards = shards;
        report.complete = report.answered == report.asked;
        report.policy_met = match gather {
            Gather::FirstK(k) => report.answered >= k,
            Gather::Fraction(f) => report.answered as f64 >= (f * report.asked as f64).ceil(),
            Gather::All | Gather::Quorum(_) => report.complete,
        };
        report
    }
}

/// A call's combined output and its report.
#[derive(Debug, Clone)]
pub struct Gathered<O> {
    /// The combined answers of the shards that answered.
    pub output: O,
    /// What happened to every shard.
    pub report: Report,
}

impl<O> Gathered<O> {
    /// The output if every shard asked answered.
    ///
    /// # Errors
    ///
    /// [`ScatterError::Incomplete`] with the report otherwise.
    pub fn require_complete(self) -> Result<O, ScatterError> {
        if self.report.complete {
            Ok(self.output)
        } else {
            Err(ScatterError::Incomplete(Box::new(self.report)))
        }
    }

    /// The output if the gather policy was met (e.g. enough shards for
    /// first-k or a fraction).
    ///
    /// # Errors
    ///
    /// [`ScatterError::PolicyNotMet`] with the report otherwise.
    pub fn require_policy(self) -> Result<O, ScatterError> {
        if self.report.policy_met {
            Ok(self.output)
        } else {
            Err(ScatterError::PolicyNotMet(Box::new(self.report)))
        }
    }
}
