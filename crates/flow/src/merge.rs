//! Merger: many inputs, one output.

use futures::StreamExt;

use crate::{Flow, FlowError};

impl<T: Send + 'static> Flow<T> {
    /// Merges `inputs` into one flow (the book's merger), taking batches
    /// from the inputs in turn (fair), without a task of its own.
    ///
    /// ```text
    /// in 0 ──┐
    /// in 1 ──┼──▶ merge ──▶ out
    /// in 2 ──┘
    /// ```
    ///
    /// Completes when every input has completed. An input's failure is
    /// passed on as the output's failure, not lost.
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] with no inputs.
    pub fn merge(inputs: Vec<Flow<T>>) -> Result<Flow<T>, FlowError> {
        let config = inputs
            .first()
            .map(|f| f.config)
            .ok_or_else(|| FlowError::invalid("merger inputs", 0, "at least one input"))?;
        let streams = inputs.into_iter().map(|f| f.stream);
        Ok(Flow {
            stream: futures::stream::select_all(streams).boxed(),
            config,
            probe: None,
        })
    }
}
