//! The worker: what the queue runs on each item, and what it may know
//! about the attempt.

use std::fmt::Display;
use std::future::Future;

use tokio::time::Instant;
use weft_core::Classify;

/// Processes one work item.
///
/// Implemented for every `Fn(T) -> impl Future<Output = Result<O, E>>` with
/// a classified error, and, through [`with_context`], for every `Fn(T,
/// WorkContext) -> ...` that wants to know the attempt. A retry calls it
/// again with a clone of the item.
pub trait Worker<T, I = u64>: Send + Sync + 'static {
    /// What processing yields.
    type Output: Send + 'static;
    /// A failure: transient ones are retried, permanent ones dead-lettered.
    type Error: Classify + Display + Send;
    /// Processes `item`; `cx` says which item and attempt this is.
    fn process(
        &self,
        item: T,
        cx: WorkContext<I>,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;
}

/// What a worker may know about the attempt it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkContext<I = u64> {
    /// The item's id.
    pub id: I,
    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub attempt: u32,
    /// The attempts the retry policy allows in all.
    pub max_attempts: u32,
    /// When this attempt is cut short, if the queue has an
    /// [attempt timeout](crate::queue::QueueConfig::attempt_timeout): pass
    /// it on to the worker's own I/O.
    pub deadline: Option<Instant>,
}

impl<I> WorkContext<I> {
    /// Whether a transient failure of this attempt goes to the dead
    /// letters (no retry is left).
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

impl<T, I, F, Fut, O, E> Worker<T, I> for F
where
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send,
    O: Send + 'static,
    E: Classify + Display + Send,
{
    type Output = O;
    type Error = E;
    fn process(&self, item: T, _cx: WorkContext<I>) -> impl Future<Output = Result<O, E>> + Send {
        self(item)
    }
}

/// A worker from a function of the item and its [`WorkContext`].
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use weft_flow::queue::{with_context, Autoscaler, MemorySource, QueueConfig, WorkContext, WorkQueue};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let source = Arc::new(MemorySource::from_items(0..3u64));
/// let worker = with_context(|x: u64, cx: WorkContext| async move {
///     Ok::<_, weft_core::Cause>((cx.id, cx.attempt, x))
/// });
/// let config = QueueConfig::new(Autoscaler::fixed(2)?, 2)?;
/// let done = WorkQueue::spawn(source, worker, config).collect_all().await?;
/// assert!(done.output.iter().all(|(id, (cx_id, attempt, _))| id == cx_id && *attempt == 1));
/// # Ok::<(), weft_flow::FlowError>(())
/// # }).unwrap();
/// ```
pub fn with_context<F>(f: F) -> WithContext<F> {
    WithContext(f)
}

/// A worker that receives the [`WorkContext`], from [`with_context`].
#[derive(Debug, Clone, Copy)]
pub struct WithContext<F>(F);

impl<T, I, F, Fut, O, E> Worker<T, I> for WithContext<F>
where
    F: Fn(T, WorkContext<I>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send,
    O: Send + 'static,
    E: Classify + Display + Send,
{
    type Output = O;
    type Error = E;
    fn process(&self, item: T, cx: WorkContext<I>) -> impl Future<Output = Result<O, E>> + Send {
        (self.0)(item, cx)
    }
}
