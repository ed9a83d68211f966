//! weft: distributed-systems pattern primitives (sharding, scatter/gather,
//! leases and batch flows) to compose in your own Rust code.
//!
//! ```
//! use weft::{key_hash, Combine, Sum};
//!
//! // Every process routes a key by the same stable hash.
//! assert_eq!(key_hash("user-42"), key_hash(&String::from("user-42")));
//!
//! // Partial answers merge in any order.
//! let sum = Sum::<u64>::new();
//! let mut total = sum.fold([1, 2]);
//! sum.merge(&mut total, sum.fold([3]));
//! assert_eq!(sum.extract(total), Ok(6));
//! ```
//!
//! This crate is a facade: the shared vocabulary of `weft-core` is always
//! here, at the root (`weft::key_hash`, `weft::Combine`, `weft::time`), and
//! each crate is re-exported under its own name when the cargo feature of
//! that name is on (`full` turns on all of them). The README lists the
//! crates and their status.

pub use weft_core::*;
/// Sharding functions, consistent hashing and compatible partitioners
/// (feature `shard`).
#[cfg(feature = "shard")]
pub use weft_shard as shard;

/// Scatter/gather with deadlines, hedging and partial-result reports
/// (feature `scatter`).
#[cfg(feature = "scatter")]
pub use weft_scatter as scatter;

/// Leases: CAS store trait, locks, renewable leases, election and fencing
/// (feature `lease`).
#[cfg(feature = "lease")]
pub use weft_lease as lease;

/// Batch flows and the work queue (feature `flow`).
#[cfg(feature = "flow")]
pub use weft_flow as flow;

/// Work-queue claims as leases: several queues share one batch of work
/// (feature `claims`).
#[cfg(feature = "claims")]
pub use weft_claims as claims;

/// Live membership: registration under leases, watched member sets and
/// sharders that follow them (feature `members`).
#[cfg(feature = "members")]
pub use weft_members as members;

/// Flows across processes on Redis Streams: a shared work-queue source
/// with reclaim and fenced acknowledgement (feature `flow-redis`).
#[cfg(feature = "flow-redis")]
pub use weft_flow_redis as flow_redis;

/// The lease store over etcd (feature `lease-etcd`).
#[cfg(feature = "lease-etcd")]
pub use weft_lease_etcd as lease_etcd;

/// The lease store over Redis (feature `lease-redis`).
#[cfg(feature = "lease-redis")]
pub use weft_lease_redis as lease_redis;

/// The README's code example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
