//! Splitter: route items by predicates.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::fanout::{check_outputs, fan_out};
use crate::{Flow, FlowError};

/// A route of a splitter: items for which it returns true go to its output.
pub type Route<T> = Box<dyn Fn(&T) -> bool + Send + Sync>;

/// What a splitter does with items that match no route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmatched {
    /// They go to an extra output, [`Split::unmatched`].
    ToOutput,
    /// They are dropped and counted ([`Split::dropped`]).
    Count,
}

/// The outputs of [`Flow::split`].
#[derive(Debug)]
pub struct Split<T> {
    /// One output per route, in route order.
    pub outputs: Vec<Flow<T>>,
    /// The output for unmatched items, with [`Unmatched::ToOutput`].
    pub unmatched: Option<Flow<T>>,
    dropped: Arc<AtomicU64>,
}

impl<T> Split<T> {
    /// Items that matched no route and were dropped (with
    /// [`Unmatched::Count`]).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A handle on the dropped count that outlives the split.
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }
}

impl<T: Clone + Send + 'static> Flow<T> {
    /// Routes each item to the output of every route it matches (the book's
    /// splitter): an item may go to several outputs, and one that matches
    /// none goes where `unmatched` says, never silently away.
    ///
    /// ```text
    ///               ┌─ route 0 ──▶ out 0
    /// in ──▶ split ─┼─ route 1 ──▶ out 1
    ///               └─ no route ──▶ unmatched (or counted as dropped)
    /// ```
    ///
    /// # Backpressure
    ///
    /// Waits while any output it must write to is full.
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] with no routes, or more outputs than
    /// [`MAX_OUTPUTS`](crate::MAX_OUTPUTS).
    pub fn split(self, routes: Vec<Route<T>>, unmatched: Unmatched) -> Result<Split<T>, FlowError> {
        if routes.is_empty() {
            return Err(FlowError::invalid(
                "splitter routes",
                0,
                "at least one route",
            ));
        }
        let n = routes.len();
        let extra = usize::from(unmatched == Unmatched::ToOutput);
        check_outputs("splitter outputs", n + extra)?;
        let dropped = Arc::new(AtomicU64::new(0));
        let count = dropped.clone();
        let mut outputs = fan_out(
            self.stream,
            self.config,
            n + extra,
            move |batch, buffers| {
                for item in batch {
                    let mut hits = routes
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r(&item))
                        .map(|(i, _)| i);
                    match hits.next() {
                        None if extra == 1 => buffers[n].push(item),
                        None => {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(first) => {
                            let rest: Vec<usize> = hits.collect();
                            for &i in &rest {
                                buffers[i].push(item.clone());
                            }
                            buffers[first].push(item);
                        }
                    }
                }
                Ok(())
            },
        );
        let unmatched = (extra == 1).then(|| outputs.pop()).flatten();
        Ok(Split {
            outputs,
            unmatched,
            dropped,
        })
    }
}
