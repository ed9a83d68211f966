//! The shared vocabulary of weft: stable key hashing, the sharding-function
//! traits, associative combiners, member health and error classification.
//!
//! ```
//! use weft_core::{key_hash, Combine, Histogram, ShardExt, ShardId, Sharder, TopK};
//!
//! // A key's hash is the same in every process, platform and release.
//! let hash = key_hash(&("tenant-7", 42u64));
//! assert_eq!(hash, key_hash(&("tenant-7", 42u64)));
//!
//! // Any sharding function routes through that one hash.
//! struct Modulo(u32);
//! impl Sharder for Modulo {
//!     fn shard_count(&self) -> usize { self.0 as usize }
//!     fn shard_for_hash(&self, h: u64) -> ShardId { ShardId::new((h % u64::from(self.0)) as u32) }
//! }
//! assert_eq!(Modulo(4).shard_for(&("tenant-7", 42u64)), Modulo(4).shard_for_hash(hash));
//!
//! // Answers from shards merge in any order to the same result.
//! let top = TopK::by_key(2, |hit: &(u32, &str)| hit.0)?;
//! let mut answer = top.fold([(3, "doc-a"), (9, "doc-b")]);
//! top.merge(&mut answer, top.fold([(7, "doc-c")]));
//! assert_eq!(top.extract(answer), [(9, "doc-b"), (7, "doc-c")]);
//!
//! let latency = Histogram::exponential(1.0, 2.0, 10)?;
//! let p99 = latency.extract(latency.fold([3.0, 5.0, 40.0]))?.quantile(0.99)?;
//! assert!(p99.is_some());
//! # Ok::<(), weft_core::CoreError>(())
//! ```
//!
//! # Concepts
//!
//! - [`ShardKey`] turns a key into bytes that never change; [`KeyHasher`]
//!   turns bytes into a `u64`; [`KeyHashV1`] is the default, fixed forever,
//!   and [`key_hash`] is the one path every pattern routes by.
//! - [`Sharder`] maps a hash to a [`ShardId`]; [`ReplicaSharder`] maps it to
//!   R distinct shards; [`ShardExt`] and [`ReplicaExt`] route by key. The
//!   algorithms live in `weft-shard`.
//! - [`Combine`] merges answers associatively: [`Count`], [`Sum`],
//!   [`Histogram`], [`TopK`], [`Min`], [`Max`].
//! - [`Health`] and [`HealthTracker`] describe whether a member may be used.
//! - [`Classify`] says whether an error is transient or permanent; every weft
//!   error implements it, and so do `std::io::Error` and, behind features,
//!   `tonic::Status`, `redis::RedisError` and `hyper::Error`. [`Cause`] is a
//!   classified error to return without writing one ([`ResultExt`]:
//!   `.transient()`, `.permanent()`, `.classified()`).
//! - [`Backoff`] and [`RetryPolicy`] are the one wait-and-retry schedule
//!   (seeded jitter from [`mix`]) that every retrying loop uses.
//! - [`time`] keeps time arithmetic from overflowing: `Duration::MAX` is a
//!   valid "wait forever" everywhere.
//!
//! # Guarantees
//!
//! Key bytes and [`KeyHashV1`] are pinned by golden vectors: a release that
//! changed them would move keys and is a breaking change. The provided
//! combiners give the same output for every split and merge order (checked
//! by property tests). Nothing here does I/O, spawns tasks or reads a clock.
//!
//! # Not guaranteed
//!
//! Keys carry no type tag: `"\u{1}"` and `1u8` hash alike. The default hash
//! is not keyed, so a client that chooses keys can aim them at one shard.

mod cause;
mod clients;
mod combine;
mod composite;
pub mod duration;
mod error;
mod hash;
mod health;
mod key;
pub mod mix;
mod retry;
mod shard;
pub mod time;

pub use cause::{Cause, ResultExt};
pub use combine::{
    Buckets, Combine, Count, CountBy, Flatten, FloatSum, Histogram, HistogramAcc, Max, MergeBy,
    Min, Score, Sum, TopK,
};
pub use composite::{CompositeKey, CompositeKeyBuilder};
pub use error::{BoundsProblem, Classify, CoreError, ErrorClass};
pub use hash::{DefaultKeyHasher, KeyHashV1, KeyHasher, key_hash};
pub use health::{Health, HealthPolicy, HealthTracker, Transition};
pub use key::{KeyBuf, ShardKey};
pub use retry::{Backoff, RetryPolicy};
pub use shard::{ReplicaExt, ReplicaSharder, ShardExt, ShardId, Sharder};

/// The traits most code needs in scope: `use weft_core::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Classify, Combine, KeyHasher, ReplicaExt, ReplicaSharder, ShardExt, ShardKey, Sharder,
    };
}
