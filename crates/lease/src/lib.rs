//! Leases for weft: a compare-and-swap store trait, TTL locks, renewable
//! leases that say they are lost before the store expires them, leader
//! election, and the fence that makes them safe.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use weft_lease::{Fence, Lease, LeaseConfig, MemoryFence, MemoryStore};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let store = Arc::new(MemoryStore::new());
//! let fence = MemoryFence::new(); // lives with the resource
//!
//! let config = LeaseConfig::new(Duration::from_secs(3));
//! let lease = Lease::builder(store.clone(), "inventory/owner", config.clone())
//!     .value(b"worker-1")
//!     .acquire(Duration::from_secs(1))
//!     .await?;
//! let token = lease.token();
//! // Every write to the resource carries the token; the resource checks it.
//! fence.check_and_advance("inventory", token).await?;
//! lease.release().await?;
//!
//! // The next holder gets a higher token; the old one is now rejected.
//! let next = Lease::builder(store, "inventory/owner", config)
//!     .value(b"worker-2")
//!     .acquire(Duration::from_secs(1))
//!     .await?;
//! fence.check_and_advance("inventory", next.token()).await?;
//! assert!(fence.check_and_advance("inventory", token).await.is_err());
//! # Ok::<(), weft_lease::LeaseError>(())
//! # }).unwrap();
//! ```
//!
//! # Guarantees
//!
//! - A [`CasStore`]'s versions strictly increase per key across writes,
//!   deletes and expiry, so a holder's version is its fencing token; the
//!   rules are written on the trait and checked by the conformance suite in
//!   `weft-test`, which [`MemoryStore`] passes.
//! - A [`Lease`] believes it is held only until `safe_until`, computed from
//!   when its last successful renewal was **sent**, the TTL, the clock-rate
//!   bound and a margin; its lost signal fires before the store can expire
//!   the key, as long as the local clock's rate error stays within the bound.
//! - A [`Fence`] rejects any token lower than one it has seen.
//!
//! # Not guaranteed
//!
//! A lease without a fence protects nothing from a holder that was paused
//! (GC, swap, a stopped VM) between checking that it holds the lease and
//! acting on it: the store expires the lease, another holder takes it, and
//! the paused one acts late. Only the resource, checking the token, can
//! reject that write. Stores may keep a lease alive longer than its TTL
//! (etcd resets leases on leader change), which delays failover but never
//! shortens a holder's lease.

mod acquire;
mod cas_fence;
mod clock;
mod connect;
mod election;
mod error;
mod fence;
mod lease;
mod lock;
mod memory;
mod store;

/// The attribute that implements the object-safe async traits
/// ([`CasStore`], [`Fence`]): `#[weft_lease::async_trait]`.
pub use async_trait::async_trait;
pub use cas_fence::CasFence;
pub use clock::{LeaseClock, SystemClock};
pub use connect::connect_within;
pub use election::{Election, Leader, Leadership};
pub use error::LeaseError;
pub use fence::{Fence, MemoryFence};
pub use lease::{Lease, LeaseBuilder, LeaseConfig, LeaseGuard, LeaseState};
pub use lock::{Lock, LockGuard};
pub use memory::MemoryStore;
pub use store::{
    BadVersion, CasStore, Entry, Limits, PrefixEvent, StoreError, Swap, Version, WatchEvent,
};
