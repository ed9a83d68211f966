//! weft flows across processes, with Redis Streams as the broker: work
//! queues whose workers in many processes share one stream through a
//! consumer group ([`StreamSource`]), sinks that append a flow once
//! ([`StreamSink`], [`ShardedSink`]), and stages from stream to stream
//! whose outputs are committed exactly once ([`StreamStage`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use weft_flow::queue::{QueueConfig, WorkQueue};
//! use weft_flow_redis::{StreamConfig, StreamSource};
//!
//! // In every worker process: the same stream and group.
//! let source: StreamSource<String> =
//!     StreamSource::connect("redis://127.0.0.1:6379", "photos", "resizers", StreamConfig::new())
//!         .await?;
//! let worker = |name: String| async move { Ok::<_, weft_core::Cause>(name.len()) };
//! let done = WorkQueue::spawn(Arc::new(source), worker, QueueConfig::fixed(8)?)
//!     .collect_all()
//!     .await?;
//! println!("{} resized", done.output.len());
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - Each entry is handed to one consumer of the group at a time; an
//!   entry left unacknowledged for the claim idle time (a crashed or
//!   paused consumer) is taken over by another at the next delivery.
//! - An acknowledgement applies only if this consumer still holds the
//!   entry at the delivery it was given (one Lua script checks, then
//!   acknowledges). A consumer that was paused past the idle time gets
//!   `false`, and the work queue discards its late result: at most one
//!   result per entry leaves the queues of a group. The check reads each
//!   entry's pending record only when the consumer's fence record (kept
//!   by the same scripts) shows that the entry, or anything in its pending
//!   list, was changed by another consumer or by a client outside weft.
//! - An acknowledgement whose reply is lost (a timeout, Redis down) is
//!   retried, and a receipt kept in the same script tells a retry what the
//!   first try applied, so a result is neither lost nor counted twice.
//! - An entry delivered more than `max_deliveries` times, and one whose
//!   payload does not decode, is moved to the dead-letter stream
//!   (`<stream>:dead`) with its fields, why, and its class, in the same
//!   script that acknowledges it: never dropped, never retried forever.
//!
//! # Not guaranteed
//!
//! - A worker's side effects outside Redis happen at least once: a worker
//!   taken over after a pause has done its work once more. Make them
//!   idempotent, or fence them with a weft lease token.
//! - Redis replicates asynchronously: a failover can lose acknowledged
//!   entries' acknowledgements (they are then delivered again) and
//!   appended entries.
//! - Acknowledged entries stay in the stream until trimmed
//!   ([`Retention`]); trimming does not wait for slow groups.
//!
//! `docs/flows-redis.md` has the timing rules, Redis Cluster, the chaos
//! figures and the measured numbers.

mod codec;
mod config;
mod error;
mod id;
mod reply;
mod scripts;
mod sink;
mod source;
mod stage;

pub use codec::{Codec, Json, Raw};
pub use config::{StartAt, StreamConfig};
pub use error::StreamError;
pub use id::StreamId;
pub use sink::{MAX_PAYLOAD, Retention, ShardedSink, StreamSink};
pub use source::{SourceCounters, SourceStats, StreamSource};
pub use stage::{RunningStage, StageOutput, StreamStage};
