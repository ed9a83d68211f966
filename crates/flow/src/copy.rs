//! Copier: every item to every output.

use crate::fanout::{Routed, check_outputs, fan_out};
use crate::{Flow, FlowError};

impl<T: Clone + Send + Sync + 'static> Flow<T> {
    /// Copies every item to each of `n` outputs (the book's copier).
    ///
    /// ```text
    ///          ┌──▶ out 0
    /// in ──▶ copy ──▶ out 1
    ///          └──▶ out 2
    /// ```
    ///
    /// Lossless: an item reaches every output that is still read.
    ///
    /// # Copies
    ///
    /// The copier copies nothing: every output gets the same batch, shared.
    /// Each output's reader takes its items out of it in its own task, as
    /// a copy while other outputs still hold the batch, and the last
    /// reader takes the batch itself. So each item is cloned once per
    /// output but one, in parallel across the readers, and for an `Arc`
    /// payload a clone is a reference count. A batch larger than an edge's
    /// capacity (from a [`flat_map`](Flow::flat_map) that grew it) is
    /// copied by the copier instead, as the edge takes it in parts.
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
        let capacity = self.config.capacity;
        Ok(fan_out(
            self.stream,
            self.config,
            n,
            move |batch, buffers| {
                if batch.is_empty() {
                    return Ok(Routed::Buffers);
                }
                if batch.len() <= capacity {
                    return Ok(Routed::Shared(batch.into_shared()));
                }
                // Too big to share (an edge takes it in parts): a copy per
                // output but the last, which gets the original.
                if let Some((last, rest)) = buffers.split_last_mut() {
                    for b in rest {
                        b.extend(batch.as_slice().iter().cloned());
                    }
                    last.extend(batch);
                }
                Ok(Routed::Buffers)
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
