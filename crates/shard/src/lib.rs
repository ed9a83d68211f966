//! Sharding functions for weft: map a key to a shard so that every process
//! agrees, balance stays even, and a membership change moves as few keys as
//! possible.
//!
//! ```
//! use weft_core::ShardExt;
//! use weft_shard::{LevelJump, Memento, Rendezvous};
//!
//! // Numbered shards: weft's default, O(1), minimal movement on resize.
//! let shards = LevelJump::new(10)?;
//! let shard = shards.shard_for("user-42");
//! assert!(shard.index() < 10);
//!
//! // Named members, any of which may leave: only its keys move.
//! let mut caches = Memento::new(["cache-a", "cache-b", "cache-c"])?;
//! let owner = caches.shard_for("user-42");
//! caches.remove("cache-b")?;
//! let now = caches.shard_for("user-42");
//! assert!(now == owner || caches.name(owner).is_none());
//!
//! // Weighted members with replica sets.
//! let hrw = Rendezvous::new("a=1,b=2,c=1".parse()?);
//! println!("user-42 -> {}", hrw.members().get(hrw.shard_for("user-42")).unwrap().name);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Choosing
//!
//! | function | lookup | state | movement on change | removal | weights |
//! |---|---|---|---|---|---|
//! | [`LevelJump`] (default) | O(1) | none | minimal | last only | no |
//! | [`Jump`] (Guava) | O(ln n) | none | minimal | last only | no |
//! | [`Modulo`] | O(1) | none | nearly all keys | last only | no |
//! | [`Memento`] | O(1) + O(removed) | 16 B per slot | minimal | any | no |
//! | [`Rendezvous`] | O(n) | n names | minimal | any | yes |
//! | [`Ring`] | O(log vn) | v points per member | minimal | any | yes |
//! | [`Maglev`] | O(1) | table of M | near-minimal | any | yes |
//! | [`BoundedLoad`] | ring walk | loads | (assigner) | any | yes |
//!
//! [`Named`] puts names on any function built from a member list (every
//! one above but [`Memento`], which has its own, and [`BoundedLoad`]):
//! add and remove by name, ids that stay with names, serde. Numbered
//! functions under it still remove only their last member.
//!
//! `docs/sharding.md` has the measured numbers. Every function implements
//! [`weft_core::Sharder`], hashes keys through [`weft_core::key_hash`], and
//! is a pure function of its membership (except [`BoundedLoad`], which
//! assigns by live load, and [`Memento`], which depends on the order of
//! removals). [`compat`] reproduces the partitioners of Kafka, librdkafka,
//! Sarama, Redis Cluster, libmemcached, Guava, Cassandra, Elasticsearch,
//! Couchbase and ScyllaDB, and the placements of the proxies twemproxy,
//! HAProxy, nginx and Envoy and of groupcache.
//!
//! # Not guaranteed
//!
//! Shard ids are positions (in a member list, or slots of a [`Memento`]);
//! they are not stable across different lists. Placement by the weighted
//! [`Rendezvous`] uses `f64::ln`, whose last bit can vary between platform
//! maths libraries.

pub mod analysis;
mod bounded;
pub mod compat;
mod error;
mod jump;
mod level_jump;
mod maglev;
mod members;
mod memento;
mod mix;
mod modulo;
mod named;
mod rendezvous;
mod ring;

pub use bounded::BoundedLoad;
pub use error::ShardError;
pub use jump::Jump;
pub use level_jump::LevelJump;
pub use maglev::Maglev;
pub use members::{Member, Members};
pub use memento::{Memento, MementoState};
pub use modulo::Modulo;
pub use named::{Named, NamedState, Placement, Removal};
pub use rendezvous::Rendezvous;
pub use ring::Ring;

/// The function weft uses when none is chosen: [`LevelJump`].
pub type DefaultSharder = LevelJump;
