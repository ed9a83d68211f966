//! Copier: every item to every output.

use crate::fanout::{check_outputs, fan_out};
use crate::{Flow, FlowError};

impl<T: Clone + Send + 'static> Flow<T> {
    /// Copies every item to each of `n` outputs (the book's copier).
    ///
    /// ```text
    ///          ┌──▶ out 0
    /// in ──▶ copy ──▶ out 1
    ///          └──▶ out 2
    /// ```
    ///
    /// Lossless: an item reaches every output that is still read. Each
    /// batch is cloned once per output but the last, which gets the
    /// original.
    ///
    /// # Backpressure
    ///
    /// Paced by the slowest output: when one output's edge is full the
    /// copier waits, and so does its input.
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] if `n` is zero or above [`MAX_OUTPUTS`](crate::MAX_OUTPUTS).
    pub fn copy(self, n: usize) -> Result<Vec<Flow<T>>, FlowError> {
        check_outputs("copier outputs", n)?;
        Ok(fan_out(
            self.stream,
            self.config,
            n,
            move |batch, buffers| {
                // `buffers` has n >= 1 entries.
                if let Some((last, rest)) = buffers.split_last_mut() {
                    for b in rest {
                        b.extend(batch.iter().cloned());
                    }
                    last.extend(batch);
                }
                Ok(())
            },
        ))
    }

    /// [`copy`](Flow::copy) into a fixed number of outputs, as an array to
    /// take apart: `let [a, b] = flow.copy_n()?;`.
    ///
    /// # Backpressure
    ///
    /// As [`copy`](Flow::copy).
    ///
    /// # Errors
    ///
    /// As [`copy`](Flow::copy), for `N` = 0 or above
    /// [`MAX_OUTPUTS`](crate::MAX_OUTPUTS).
    pub fn copy_n<const N: usize>(self) -> Result<[Flow<T>; N], FlowError> {
        let outputs = self.copy(N)?;
        // invariant: `copy(N)` returns exactly N outputs.
        outputs.try_into().map_err(|v: Vec<Flow<T>>| {
            FlowError::invalid("copier outputs", v.len(), format!("{N}"))
        })
    }
}
