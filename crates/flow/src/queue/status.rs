//! What a running queue reports.

use std::time::Duration;

/// What a running queue reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The autoscaler's target parallelism.
    pub target: usize,
    /// Workers running.
    pub workers: usize,
    /// Items arriving per second, over the last evaluation.
    pub arrivals_per_sec: f64,
    /// Items waiting in the source at the last evaluation.
    pub backlog: usize,
    /// Mean processing time per attempt (moving average).
    pub processing: Duration,
    /// Items done (output or dead-lettered).
    pub done: u64,
    /// Items dead-lettered (counted even if the dead-letter reader is
    /// gone).
    pub dead: u64,
    /// Results discarded because the source refused the acknowledgement:
    /// the claim on the item was lost (e.g. a lease expired during a
    /// pause) and another taker owns it.
    pub discarded: u64,
}
