//! Copier: every item to every output.

use futures::StreamExt;

use crate::broadcast::broadcast;
use crate::fanout::check_outputs;
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
    /// The copier copies nothing: it places each batch once, shared, in
    /// one line that every output reads at its own place. A reader that
    /// reads in place ([`for_each_batch`](Flow::for_each_batch)) copies
    /// nothing either; one that takes the items copies them while another
    /// output still holds the batch, and the last to pass it takes the
    /// batch itself. So each item is cloned at most once per output but
    /// one, in parallel across the readers, and for an `Arc` payload a
    /// clone is a reference count. A batch larger than the capacity (from
    /// a [`flat_map`](Flow::flat_map) that grew it) is placed in
    /// capacity-sized parts, each shared.
    ///
    /// # Backpressure
    ///
    /// Paced by the slowest output: the line holds at most the capacity
    /// in items, and a batch leaves it once every output still read has
    /// read it, so each output has at most the capacity waiting, as behind
    /// an edge of its own. When the slowest output is a full capacity
    /// behind, the copier waits, and so does its input. An output that is
    /// dropped no longer holds anything back.
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] if `n` is zero or above [`MAX_OUTPUTS`](crate::MAX_OUTPUTS).
    pub fn copy(self, n: usize) -> Result<Vec<Flow<T>>, FlowError> {
        check_outputs("copier outputs", n)?;
        let config = self.config;
        let (tx, rxs) = broadcast(config, n);
        let mut input = self.stream;
        tokio::spawn(async move {
            while let Some(m) = input.next().await {
                match m {
                    Ok(batch) => {
                        if !tx.send(batch).await {
                            return;
                        }
                    }
                    Err(e) => {
                        tx.fail(e);
                        return;
                    }
                }
            }
        });
        Ok(rxs
            .into_iter()
            .map(|rx| {
                let probe = Some(rx.probe());
                Flow {
                    stream: rx.boxed(),
                    config,
                    probe,
                }
            })
            .collect())
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
