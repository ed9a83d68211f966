//! The work queue: a source of items, workers, and a manager that retries,
//! dead-letters, tracks what is done and scales the workers.

mod autoscale;
mod manager;
mod source;

pub use autoscale::{Autoscaler, Load};
pub use manager::{
    Collected, Control, DeadLetter, MAX_DISCARDED_IDS, QueueConfig, RetryPolicy, Running, Status,
    WorkQueue, Worker,
};
pub use source::{Closed, Item, MemorySource, Source};
