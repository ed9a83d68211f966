//! Join: a barrier over complete inputs.

use futures::StreamExt;

use crate::edge::unbox;
use crate::{Flow, FlowError};

/// How one input of a [`Flow::join`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome<T> {
    /// It completed with these items.
    Completed(Vec<T>),
    /// It failed; the items it delivered before failing are kept.
    Failed {
        /// The failure.
        error: FlowError,
        /// Items before the failure.
        partial: Vec<T>,
    },
    /// It was cancelled upstream.
    Cancelled {
        /// Items before the cancellation.
        partial: Vec<T>,
    },
}

impl<T> JoinOutcome<T> {
    /// Whether the input completed.
    pub fn is_completed(&self) -> bool {
        matches!(self, JoinOutcome::Completed(_))
    }
}

impl<T: Send + 'static> Flow<T> {
    /// Waits until every input has ended and returns each input's outcome,
    /// in input order (the book's join: a barrier). Nothing is released
    /// before every input has ended, and a failure is reported as a failure,
    /// never mistaken for an early end. There is no timeout inside: compose
    /// one around the future if you want one.
    ///
    /// ```text
    /// in 0 ──┐
    /// in 1 ──┼──▶ join ══▶ [outcome 0, outcome 1, outcome 2]  (once all end)
    /// in 2 ──┘
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops every input.
    pub async fn join(inputs: Vec<Flow<T>>) -> Vec<JoinOutcome<T>> {
        let collect = inputs.into_iter().map(|f| async move {
            let mut items = Vec::new();
            let mut s = f.stream;
            while let Some(m) = s.next().await {
                match unbox(m) {
                    Ok(batch) => items.extend(batch),
                    Err(FlowError::Cancelled) => return JoinOutcome::Cancelled { partial: items },
                    Err(error) => {
                        return JoinOutcome::Failed {
                            error,
                            partial: items,
                        };
                    }
                }
            }
            JoinOutcome::Completed(items)
        });
        futures::future::join_all(collect).await
    }
}
