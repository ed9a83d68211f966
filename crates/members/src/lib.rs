//! Live membership for weft: services register under leases in any CAS
//! store, clients watch the live member set, and sharders follow it.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! use std::{sync::Arc, time::Duration};
//! use weft_lease::{LeaseConfig, MemoryStore};
//! use weft_members::{LiveSharder, Member, Registration, WatchConfig, Watcher};
//! use weft_shard::Maglev;
//!
//! let store = Arc::new(MemoryStore::new()); // or etcd, Redis: any CasStore
//! let ttl = Duration::from_secs(3);
//! // Each cache server registers itself under a stable name.
//! let a = Member::new("cache-a", "10.0.0.1:11211")?;
//! let b = Member::new("cache-b", "10.0.0.2:11211")?;
//! let reg_a = Registration::register(store.clone(), "caches/", a, LeaseConfig::new(ttl), ttl).await?;
//! let reg_b = Registration::register(store.clone(), "caches/", b, LeaseConfig::new(ttl), ttl).await?;
//!
//! // A client watches and routes through a sharder that follows the set.
//! let config = WatchConfig::new(ttl)?.hold(Duration::from_secs(1))?;
//! let mut watcher = Watcher::new(store, "caches/", config)?;
//! let caches = LiveSharder::<Maglev>::new();
//! caches.apply(&watcher.next().await?)?;
//! assert_eq!(caches.routes().unwrap().set().len(), 2);
//!
//! // cache-b drains: after the hold window only its keys move to cache-a.
//! reg_b.deregister().await?;
//! caches.apply(&watcher.next().await?)?;
//! let owner = caches.route("user-42", |live| live.member.name().to_string());
//! assert_eq!(owner.as_deref(), Some("cache-a"));
//! # drop(reg_a);
//! # Ok::<(), weft_members::MembersError>(())
//! # }).unwrap();
//! ```
//!
//! # Concepts
//!
//! - [`Member`]: a stable name (its place in every placement), an address,
//!   a weight and small metadata.
//! - [`Registration`]: the member's record at `<prefix><name>`, held by a
//!   renewed weft lease.
//! - [`Watcher`]: the live set under a prefix, as versioned
//!   [`MemberSet`]s, with removals held for a window and ejection by the
//!   application's own health verdict.
//! - [`LiveSharder`]: any name-based weft placement rebuilt from each set
//!   and swapped in whole; lookups take no lock.
//! - [`SharedMemento`]: Memento (any member can leave, only its keys
//!   move) over the live set, its placement kept in the store so that
//!   every process routes alike.
//! - [`LiveScatter`]: a weft-scatter root over the live set, shards ×
//!   replicas from member metadata ([`TopologySpec`]); each leaf call gets
//!   the member it goes to ([`MemberContext::address`]).
//! - [`Assignment`] and [`Ownership`]: P partitions spread over the live
//!   members by a sticky, balanced assignor, each held under its own lease
//!   (one owner at a time, a fencing token per partition).
//!
//! # Guarantees
//!
//! - One record per name: a second registration of a held name fails with
//!   [`MembersError::NameTaken`]; a lost lease registers again under a
//!   higher token.
//! - A watcher never yields a member at a lower token than one it yielded
//!   before, and every set it yields differs from the one before.
//! - Sets with the same digest route every key to the same name, in every
//!   process.
//!
//! # Not guaranteed
//!
//! - Watchers see a change when the store's prefix watch reports it
//!   (etcd, in memory) or at their next poll (Redis), and two watchers may
//!   see one change at different times: routes agree once both have seen
//!   the same set.
//! - A member that dies stays in the set until its lease's TTL ends and
//!   then for the hold window: requests sent to it meanwhile fail, which
//!   the caller (or weft-scatter's replicas) must handle.
//! - A record written by another program under the prefix is read as a
//!   member if it decodes as one.
//!
//! `docs/membership.md` has the timing rules and the measured numbers.

mod assign;
mod error;
mod live;
mod member;
mod own;
mod register;
mod shared;
mod topology;
mod watch;

pub use assign::{Assignment, MAX_PARTITIONS};
pub use error::MembersError;
pub use live::{LiveReader, LiveSharder, Routes};
pub use member::{Live, MAX_NAME, Member, MemberSet};
pub use own::{Owned, Ownership, OwnershipConfig};
pub use register::{Registered, Registration};
pub use shared::{SharedMemento, SharedReader, SharedRoutes};
pub use topology::{
    LiveRoot, LiveScatter, MemberContext, MemberLeaf, MemberLeafError, MemberTopology, Misplaced,
    TopologySpec,
};
pub use watch::{WatchConfig, Watcher};
