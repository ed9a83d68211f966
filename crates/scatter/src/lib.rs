//! Scatter/gather for weft: fan a request out to shards and their replicas,
//! gather the answers with a deadline, hedge stragglers under a load budget,
//! and always report what is missing.
//!
//! ```
//! use std::time::Duration;
//! use weft_core::TopK;
//! use weft_scatter::{Gather, LeafContext, Plan, Scatter, ScatterConfig, Topology};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! // A search index in 8 shards, 3 replicas each; every shard returns its
//! // best (score, doc) and the root keeps the top 3. Any error type that
//! // says whether it is transient will do; io::Error does.
//! let leaf = |term: &'static str, cx: LeafContext| async move {
//!     let doc = cx.shard.get() * 10;
//!     Ok::<_, std::io::Error>((term.len() as u32 + doc, doc))
//! };
//! let config = ScatterConfig::new(Duration::from_millis(200)).gather(Gather::All).max_extra_load(0.03);
//! let root = Scatter::new(Topology::sharded(8, 3)?, leaf, config)?;
//! let top = TopK::largest(3).unwrap();
//! let gathered = root.gather(Plan::broadcast(8, "rust"), &top).await?;
//! assert!(gathered.report.complete());
//! assert_eq!(gathered.output.len(), 3);
//! # Ok::<(), weft_scatter::ScatterError>(())
//! # }).unwrap();
//! ```
//!
//! # The two forms of the pattern
//!
//! - **Leaf sharding**: each shard holds part of the data and must answer
//!   for it ([`Topology::sharded`], [`Plan::by_key`] to split a multi-key
//!   request by owner, [`Plan::broadcast`] for a query every shard answers).
//! - **Root distribution**: identical replicas, the work split in parts
//!   that any replica can serve ([`Topology::replicated`]).
//!
//! # What a call guarantees
//!
//! - The global deadline bounds the whole call, including waiting for a
//!   concurrency slot; when it passes the call returns at once with what it
//!   has.
//! - Answers are combined as they arrive through a [`weft_core::Combine`].
//! - A straggling attempt is hedged to a **different** replica after the
//!   adaptive delay; the first success wins and the losers are dropped; a
//!   transient error moves to the next replica, a permanent one fails the
//!   shard; an error never beats a success still in flight.
//! - Hedges and retries after a timeout draw on the extra-load budget and
//!   never exceed `max_extra_load` of first attempts. Failovers (the next
//!   replica after a transient error) draw on the [`RetryBudget`]: warm
//!   from the first call, at most its burst plus its ratio of answers, so a
//!   down replica is failed over at once and a failing backend does not
//!   get a retry storm.
//! - The [`Report`] lists every shard of the topology exactly once with its
//!   outcome; [`Gathered::require_complete`] turns anything missing into an
//!   error. A leaf that panics fails its shard, not the root.
//!
//! # Not guaranteed
//!
//! - Leaves are cancelled by dropping their futures; a remote server learns
//!   of it only if the leaf's transport tells it (tied requests need leaf
//!   cooperation).
//! - Leaves run concurrently inside the caller's task; CPU-heavy leaves
//!   should spawn their work.
//! - The latency window and health are statistics: under contention a
//!   sample may be lost while the window rotates.

mod budget;
mod call;
mod config;
mod config_serde;
mod error;
mod hedging;
mod latency;
mod leaf;
mod plan;
mod replicas;
mod report;
mod root;
mod topology;

pub use budget::RetryBudget;
pub use config::{CallOptions, Gather, MAX_ATTEMPTS, ScatterConfig};
pub use error::ScatterError;
pub use hedging::Hedging;
pub use leaf::{Leaf, LeafContext};
#[cfg(feature = "tower")]
pub use leaf::{Mode, Plain, ServiceError, ServiceLeaf, WithContext};
pub use plan::Plan;
pub use report::{Gathered, Report, ShardOutcome, ShardReport};
pub use root::Scatter;
pub use topology::Topology;
