//! How the queue retries: a worker's transient failure (its error's
//! [`Classify`](weft_core::Classify) says so) is tried again after the
//! policy's backoff, up to the policy's attempts, with the item's id as the
//! jitter seed; a permanent failure, a panic or the last failed attempt
//! sends the item to the dead letters. The step itself is in `work.rs`;
//! the schedule is weft-core's, the one every retrying loop in weft uses.

pub use weft_core::{Backoff, RetryPolicy};
