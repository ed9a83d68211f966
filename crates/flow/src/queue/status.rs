//! What a running queue reports.

use std::time::Duration;

use serde::{Serialize, Serializer};

fn micros<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(weft_core::time::micros(*d))
}

/// What a running queue reports; `serde::Serialize` for a status endpoint
/// (`processing` as `processing_us`, whole microseconds).
///
/// ```
/// let status = weft_flow::queue::Status::default();
/// let json = serde_json::to_string(&status).unwrap();
/// assert!(json.contains("\"processing_us\":0"));
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
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
    #[serde(rename = "processing_us", serialize_with = "micros")]
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
