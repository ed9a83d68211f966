//! The worker: what the queue runs on each item.

use std::fmt::Display;
use std::future::Future;

use weft_core::Classify;

/// Processes one work item.
///
/// Implemented for every `Fn(T) -> impl Future<Output = Result<O, E>>` with
/// a classified error. A retry calls it again with a clone of the item.
pub trait Worker<T>: Send + Sync + 'static {
    /// What processing yields.
    type Output: Send + 'static;
    /// A failure: transient ones are retried, permanent ones dead-lettered.
    type Error: Classify + Display + Send;
    /// Processes `item`.
    fn process(&self, item: T) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;
}

impl<T, F, Fut, O, E> Worker<T> for F
where
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send,
    O: Send + 'static,
    E: Classify + Display + Send,
{
    type Output = O;
    type Error = E;
    fn process(&self, item: T) -> impl Future<Output = Result<O, E>> + Send {
        self(item)
    }
}
