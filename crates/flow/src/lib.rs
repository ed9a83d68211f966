//! Batch flows for weft: the copier, filter, splitter, sharder, merger, join
//! and reduce of the book's event-driven and coordinated batch patterns,
//! and a work queue, all with backpressure and no lost or duplicated items.
//!
//! ```
//! use weft_core::Count;
//! use weft_flow::{Flow, FlowConfig};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let words = Flow::from_iter(["a", "bb", "ccc", "dd", "e"], FlowConfig::default());
//! let [all, long] = words.copy_n()?;
//! let long = long.filter(|w| w.len() > 1);
//! assert_eq!(long.reduce(&Count::new()).await?, 3);
//! assert_eq!(all.collect().await?, ["a", "bb", "ccc", "dd", "e"]);
//! # Ok::<(), weft_flow::FlowError>(())
//! # }).unwrap();
//! ```
//!
//! # Guarantees
//!
//! - **Backpressure**: every edge holds at most its capacity, counted in
//!   items; a full edge stops its writer and, transitively, the source.
//! - **Completion and failure flow**: a stage completes when its inputs
//!   complete; a failure ends the stream with the error, which fan-out
//!   stages pass to every output and the merger passes on.
//! - **Nothing lost silently**: the copier delivers every item to every
//!   output that is read; the splitter sends unmatched items to a named
//!   output or counts them; the work queue delivers every item to the
//!   output or the dead letters exactly once (acknowledged items are never
//!   processed again; cancelled ones go back to the source).
//! - **Order**: a single path keeps order; the sharder keeps per-key order
//!   unless spill-over is on; the merger and parallel reduce do not order.
//!
//! # Batching and latency
//!
//! Items move in batches (default up to 512) so that a channel hop costs
//! per batch, not per item; per-item stages (`map`, `filter`, `inspect`)
//! fuse into the stage that pulls them. A batch leaves a stage when the
//! stage has processed an input batch, so batching adds no timer delay:
//! latency is that of the batch the item arrived in. Items fed one at a
//! time through a [`FlowSender`] travel alone, without an allocation each,
//! and the reader takes the ones already waiting together (up to the batch
//! size), so they move on as batches without waiting for more. The work
//! queue takes fast items (under 50 µs each) from its source in batches
//! and commits their results together, holding them for at most about
//! 1.1 ms.
//!
//! A [`copy`](Flow::copy) shares each batch among its outputs instead of
//! copying it: a stage that reads in place
//! ([`for_each_batch`](Flow::for_each_batch)) never copies an item, and
//! one that takes items (`map`, `collect`, …) copies a batch only while
//! another output still holds it.
//!
//! # Runtime
//!
//! Stages that run a task (`copy`, `split`, `shard`, `boundary`,
//! `reduce_parallel`, the work queue, `MemorySource::feed`) spawn it on
//! the current tokio runtime: build them inside one (outside, tokio
//! panics).

mod batch;
mod broadcast;
mod copy;
mod edge;
mod error;
mod fanout;
mod flow;
mod join;
mod merge;
pub mod queue;
mod reduce;
mod shard;
mod split;
mod stall;
#[cfg(test)]
mod testing;

pub use error::FlowError;
pub use fanout::MAX_OUTPUTS;
pub use flow::{Flow, FlowConfig, FlowSender, channel};
pub use join::JoinOutcome;
pub use shard::Shards;
pub use split::{Route, Split, Unmatched};
