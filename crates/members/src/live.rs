//! A sharder that follows the live member set.

use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwapOption, Cache};
use weft_core::{ShardExt, ShardId, ShardKey, key_hash};
use weft_shard::{Named, NamedState, Placement};

use crate::member::{Live, MemberSet};
use crate::{MembersError, Watcher};

/// The routes of one member set: the placement built over it, and each id's
/// live member.
#[derive(Debug)]
pub struct Routes<P: Placement> {
    set: MemberSet,
    named: Named<P>,
    /// The live member at each position of the placement's own members,
    /// so that a lookup goes from the placement's answer straight to it.
    placed: Vec<Live>,
    /// Each id's position in `placed` (`None` for a free id).
    positions: Vec<Option<u32>>,
}

impl<P: Placement> Routes<P> {
    /// The member that owns `key` (weft's key hash, the placement's
    /// lookup): no lock, no allocation.
    #[inline]
    pub fn route<K: ShardKey + ?Sized>(&self, key: &K) -> &Live {
        let position = self.named.placement().shard_for_hash(key_hash(key));
        // invariant: the placement answers a position among the members it
        // was built from, and `placed` holds one member per position.
        self.placed
            .get(position.index())
            .unwrap_or_else(|| unreachable!("the placement answered {position}, past its members"))
    }

    /// The id that owns `key` (stable per name while the name stays in
    /// this process's sharder).
    pub fn shard_for<K: ShardKey + ?Sized>(&self, key: &K) -> ShardId {
        self.named.shard_for(key)
    }

    /// The live member at `id`.
    pub fn live(&self, id: ShardId) -> Option<&Live> {
        let position = (*self.positions.get(id.index())?)?;
        self.placed.get(position as usize)
    }

    /// The member set these routes are for.
    pub fn set(&self) -> &MemberSet {
        &self.set
    }

    /// The placement, by name and id.
    pub fn named(&self) -> &Named<P> {
        &self.named
    }
}

/// A [`LiveSharder`]'s routes cached for one task or thread (`Send`, not
/// shared: each lookup takes `&mut self`).
#[derive(Debug)]
pub struct LiveReader<P: Placement> {
    cache: Cache<Shared<P>, Option<Arc<Routes<P>>>>,
}

/// The current routes, shared by a sharder and its readers.
type Shared<P> = Arc<ArcSwapOption<Routes<P>>>;

impl<P: Placement> LiveReader<P> {
    /// Routes `key` on the current set, as
    /// [`LiveSharder::route`](LiveSharder::route).
    #[inline]
    pub fn route<K: ShardKey + ?Sized, R>(
        &mut self,
        key: &K,
        f: impl FnOnce(&Live) -> R,
    ) -> Option<R> {
        self.cache.load().as_ref().map(|r| f(r.route(key)))
    }

    /// The current routes.
    pub fn routes(&mut self) -> Option<&Arc<Routes<P>>> {
        self.cache.load().as_ref()
    }
}

/// A sharder over the live member set: each set a [`Watcher`] yields is
/// turned into a placement and swapped in whole, so that a lookup sees one
/// set or the next, never a mix, and takes no lock.
///
/// - **Ids.** A name keeps its id while it stays; a joining name takes the
///   lowest free id (as [`Named`]). Ids are this process's: two processes
///   agree on names, not ids.
/// - **Agreement.** The placement depends only on the names and weights
///   present, so every process holding a set of the same
///   [`digest`](MemberSet::digest) routes every key to the same name.
/// - **Movement.** A join or a leave moves only the keys the placement
///   moves for it (for ring, rendezvous, Maglev and ketama, about the
///   member's share).
/// - Placements that can lose only their last member (jump, modulo) follow
///   joins and that removal only: another removal is refused and the
///   routes stay as they were.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::{sync::Arc, time::Duration};
/// use weft_lease::{LeaseConfig, MemoryStore};
/// use weft_members::{LiveSharder, Member, Registration, WatchConfig, Watcher};
/// use weft_shard::Rendezvous;
///
/// let store = Arc::new(MemoryStore::new());
/// let ttl = Duration::from_secs(3);
/// let mut regs = Vec::new();
/// for i in 0..3 {
///     let m = Member::new(format!("cache-{i}"), format!("10.0.0.{i}:11211"))?;
///     regs.push(Registration::register(store.clone(), "caches/", m, LeaseConfig::new(ttl), ttl).await?);
/// }
/// let mut watcher = Watcher::new(store, "caches/", WatchConfig::new(ttl)?)?;
/// let caches = LiveSharder::<Rendezvous>::new();
/// caches.apply(&watcher.next().await?)?;
/// let owner = caches.route("user-42", |live| live.member.address().to_string());
/// assert!(owner.is_some());
/// # Ok::<(), weft_members::MembersError>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct LiveSharder<P: Placement> {
    settings: P::Settings,
    current: Shared<P>,
    /// One update at a time (ids are assigned from the routes replaced).
    updating: Mutex<()>,
}

impl<P: Placement> Default for LiveSharder<P> {
    fn default() -> Self {
        LiveSharder::new()
    }
}

impl<P: Placement> LiveSharder<P> {
    /// A sharder with the placement's default settings and no routes yet.
    pub fn new() -> Self {
        LiveSharder::with_settings(P::default_settings())
    }

    /// A sharder with the placement's `settings` (a ring's virtual nodes, a
    /// Maglev table size).
    pub fn with_settings(settings: P::Settings) -> Self {
        LiveSharder {
            settings,
            current: Arc::new(ArcSwapOption::empty()),
            updating: Mutex::new(()),
        }
    }

    /// A handle for routing many keys from one task or thread: it keeps the
    /// current routes and checks with one atomic read per lookup whether
    /// they were replaced, which makes a lookup cost what the static
    /// placement's does.
    pub fn reader(&self) -> LiveReader<P> {
        LiveReader {
            cache: Cache::new(self.current.clone()),
        }
    }

    /// Routes `key` on the current set: `f` of the member that owns it, or
    /// `None` while there is no member. Lock-free and allocation-free; for
    /// many lookups from one place, a [`reader`](LiveSharder::reader) is
    /// cheaper.
    pub fn route<K: ShardKey + ?Sized, R>(&self, key: &K, f: impl FnOnce(&Live) -> R) -> Option<R> {
        let routes = self.current.load();
        routes.as_ref().map(|r| f(r.route(key)))
    }

    /// The current routes (shared; a later set does not change them).
    pub fn routes(&self) -> Option<Arc<Routes<P>>> {
        self.current.load_full()
    }

    /// Makes `set` the current set: names that stay keep their ids, new
    /// names take free ids, and the new routes replace the old in one swap.
    /// An empty set leaves no routes. A set older than the current one
    /// (a lower epoch from the same watcher) is ignored.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] if the placement refuses the set (a
    /// numbered placement losing a member other than its last, a weight
    /// it cannot take); the current routes stay.
    pub fn apply(&self, set: &MemberSet) -> Result<(), MembersError> {
        let _one = self.updating.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.current.load_full();
        if let Some(old) = &old
            && old.set.epoch() > set.epoch()
        {
            return Ok(());
        }
        if set.is_empty() {
            self.current.store(None);
            return Ok(());
        }
        // Ids: the staying names' ids from the old routes, then the lowest
        // free ids for the rest, in name order.
        let mut lives: Vec<Option<Live>> = Vec::new();
        let mut placed = std::collections::HashSet::new();
        if let Some(old) = &old {
            lives = (0..old.positions.len())
                .map(|id| {
                    let name = old.live(ShardId::new(id as u32))?.member.name();
                    let now = set.get(name)?;
                    placed.insert(name.to_string());
                    Some(now.clone())
                })
                .collect();
        }
        let mut free = 0;
        for live in set.members() {
            if placed.contains(live.member.name()) {
                continue;
            }
            while free < lives.len() && lives[free].is_some() {
                free += 1;
            }
            if free == lives.len() {
                lives.push(None);
            }
            lives[free] = Some(live.clone());
        }
        while lives.last().is_some_and(Option::is_none) {
            lives.pop();
        }
        let slots = lives
            .iter()
            .map(|slot| {
                slot.as_ref()
                    .map(|l| weft_shard::Member::weighted(l.member.name(), l.member.weight()))
            })
            .collect();
        let named = Named::<P>::from_state(NamedState {
            function: P::NAME.to_string(),
            settings: self.settings.clone(),
            slots,
        })
        .map_err(|e| {
            MembersError::invalid(
                "member set",
                set.digest(),
                format!("a set the placement takes: {e}"),
            )
        })?;
        let mut positions = vec![None; lives.len()];
        let mut placed = Vec::with_capacity(named.len());
        for position in 0..named.len() {
            // invariant: every position of the placement's members has an
            // id, and every present id a live member.
            let id = named
                .id_at(ShardId::new(position as u32))
                .unwrap_or_else(|| unreachable!("position {position} has no id"));
            let live = lives[id.index()]
                .take()
                .unwrap_or_else(|| unreachable!("id {id} has no member"));
            positions[id.index()] = Some(position as u32);
            placed.push(live);
        }
        self.current.store(Some(Arc::new(Routes {
            set: set.clone(),
            named,
            placed,
            positions,
        })));
        Ok(())
    }

    /// Applies every set `watcher` yields, until it fails for good. A set
    /// the placement refuses is logged and skipped (the routes stay).
    ///
    /// # Errors
    ///
    /// What the watcher's [`next`](Watcher::next) returns for good.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped, the routes stay at the last set applied.
    pub async fn follow(&self, watcher: &mut Watcher) -> Result<(), MembersError> {
        loop {
            let set = watcher.next().await?;
            if let Err(e) = self.apply(&set) {
                tracing::error!(epoch = set.epoch(), error = %e, "member set not applied");
            }
        }
    }
}
