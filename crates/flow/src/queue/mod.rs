//! The work queue: a source of items, workers, and a manager that retries,
//! dead-letters, tracks what is done and scales the workers.

mod autoscale;
mod config;
mod config_serde;
mod dead_letter;
mod done;
mod handle;
mod manager;
mod retry;
mod source;
mod status;
mod stop;
mod work;
mod worker;

pub use autoscale::{Autoscaler, Load};
pub use config::QueueConfig;
pub use dead_letter::DeadLetter;
pub use handle::{Collected, Control, MAX_DISCARDED_IDS, WorkQueue};
pub use retry::{Backoff, RetryPolicy};
pub use source::{Closed, Item, ItemId, MemorySource, Source};
pub use status::Status;
pub use worker::{WithContext, WorkContext, Worker, with_context};
