//! Reduce: an associative merge that starts early and runs as a tree.

use futures::StreamExt;
use weft_core::Combine;

use crate::edge::unbox;
use crate::error::task_failed;
use crate::fanout::{check_outputs, fan_out};
use crate::{Flow, FlowError};

impl<T: Send + 'static> Flow<T> {
    /// Folds every item with `combine` as it arrives (the book's reduce:
    /// it starts before the input ends) and returns the output.
    ///
    /// # Errors
    ///
    /// The failure that ended the input.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the input.
    pub async fn reduce<C>(self, combine: &C) -> Result<C::Output, FlowError>
    where
        C: Combine<Input = T>,
    {
        let mut acc = combine.create();
        let mut s = self.stream;
        while let Some(m) = s.next().await {
            for item in unbox(m)? {
                combine.add(&mut acc, item);
            }
        }
        Ok(combine.extract(acc))
    }

    /// As [`reduce`](Flow::reduce), with `parallelism` partial reducers,
    /// each folding the batches dealt to it in turn, whose accumulators are
    /// then merged pairwise as a tree. The output equals the sequential
    /// fold for any [`Combine`] (associative and commutative by contract).
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] if `parallelism` is zero or above [`MAX_OUTPUTS`](crate::MAX_OUTPUTS); the failure that
    /// ended the input.
    ///
    /// # Cancel safety
    ///
    /// As [`reduce`](Flow::reduce).
    pub async fn reduce_parallel<C>(
        self,
        combine: C,
        parallelism: usize,
    ) -> Result<C::Output, FlowError>
    where
        C: Combine<Input = T> + Clone + Send + Sync + 'static,
        C::Acc: Send + 'static,
    {
        check_outputs("reduce parallelism", parallelism)?;
        let mut turn = 0;
        let parts = fan_out(
            self.stream,
            self.config,
            parallelism,
            move |batch, buffers| {
                buffers[turn % buffers.len()].extend(batch);
                turn += 1;
                Ok(())
            },
        );
        let tasks: Vec<_> = parts
            .into_iter()
            .map(|part| {
                let c = combine.clone();
                tokio::spawn(async move {
                    let mut acc = c.create();
                    let mut s = part.stream;
                    while let Some(m) = s.next().await {
                        for item in unbox(m)? {
                            c.add(&mut acc, item);
                        }
                    }
                    Ok::<_, FlowError>(acc)
                })
            })
            .collect();
        let mut level = Vec::with_capacity(tasks.len());
        for t in tasks {
            level.push(t.await.map_err(task_failed)??);
        }
        // Merge as a tree: pairs, then pairs of pairs.
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len().div_ceil(2));
            let mut it = level.into_iter();
            while let Some(mut a) = it.next() {
                if let Some(b) = it.next() {
                    combine.merge(&mut a, b);
                }
                next.push(a);
            }
            level = next;
        }
        let acc = level.pop().unwrap_or_else(|| combine.create());
        Ok(combine.extract(acc))
    }
}
