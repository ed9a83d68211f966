//! Named members over any placement: names ↔ stable ids, members added and
//! removed by name, the whole set serialisable.

use std::collections::HashMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use weft_core::{CoreError, ReplicaSharder, ShardExt, ShardId, ShardKey, Sharder};

use crate::compat::Ketama;
use crate::{Jump, LevelJump, Maglev, Member, Members, Modulo, Rendezvous, Ring, ShardError};

/// Which members a placement can lose while only their keys move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Any member: the placement depends on names and weights, not on
    /// positions.
    Any,
    /// Only the member with the highest id: the placement is over
    /// positions `0..n` (jump, modulo).
    LastOnly,
}

/// A sharding function that can be built from a member list: what
/// [`Named`] rebuilds when its members change.
///
/// # Implementing Placement
///
/// - [`place`](Placement::place) gives member `i` of the list the id `i`.
/// - With [`Removal::Any`], a member's keys do not depend on where the
///   other members sit in the list: [`Named`] inserts a joining member into
///   the lowest free id, which changes positions, and relies on that to
///   move only the keys a change should move.
/// - [`NAME`](Placement::NAME) is unique among placements: serialised
///   state names the function it was made for and is refused by another.
pub trait Placement: Sharder + Sized {
    /// The function's name in serialised state, e.g. `"ring"`.
    const NAME: &'static str;

    /// Which members can leave.
    const REMOVAL: Removal;

    /// What the function needs besides the members (virtual nodes, a table
    /// size), `()` when nothing.
    type Settings: Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned;

    /// The settings [`Named::new`] uses.
    fn default_settings() -> Self::Settings;

    /// Builds the function over `members`, member `i` as id `i`.
    ///
    /// # Errors
    ///
    /// Whatever the function's own constructor refuses.
    fn place(members: &Members, settings: &Self::Settings) -> Result<Self, ShardError>;
}

/// Named members over any [`Placement`]: each name keeps a stable id while
/// it stays, members join and leave by name, and the set serialises with
/// its ids.
///
/// - **Ids.** A joining member takes the lowest free id, so a member that
///   leaves and comes back, with no one else joining meanwhile, gets its id
///   back; ids of members that stay never change. Per-id state needs
///   [`id_bound`](Sharder::id_bound) entries (ids have holes after a
///   removal, for placements that allow one).
/// - **Placement.** Each change rebuilds the function over the members that
///   are present. A name-based function (ring, rendezvous, Maglev, ketama)
///   moves only the keys the change should move; a numbered one (jump,
///   modulo) places by position, so it can only lose its last member and
///   refuses any other removal ([`ShardError::RemovalNotSupported`]; use
///   [`crate::Memento`] for jump placement with arbitrary removal).
/// - **Agreement.** Processes that hold the same set (the same
///   serialised state, or the same changes applied in the same order)
///   route every key to the same name. Ids are this set's: compare names,
///   not ids, with a process that built its set another way.
/// - **Lookups** cost the function's lookup plus one indexed load; they do
///   not lock or allocate. A change builds the new function before
///   replacing the old one, so a failed change leaves the set as it was.
///
/// # Examples
///
/// ```
/// use weft_core::ShardExt;
/// use weft_shard::{Member, Named, Ring};
///
/// let mut caches = Named::<Ring>::new("cache-a,cache-b,cache-c".parse()?)?;
/// let b = caches.id_of("cache-b").unwrap();
/// let before = caches.member_for("user-42").name.clone();
///
/// caches.remove("cache-a")?;
/// caches.add(Member::weighted("cache-d", 2.0))?;
/// assert_eq!(caches.id_of("cache-b"), Some(b)); // ids stay with names
/// let after = &caches.member_for("user-42").name;
/// assert!(after == &before || before == "cache-a" || after == "cache-d");
///
/// let json = serde_json::to_string(&caches)?;
/// let copy: Named<Ring> = serde_json::from_str(&json)?;
/// assert_eq!(copy.shard_for("user-42"), caches.shard_for("user-42"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Named<P: Placement> {
    settings: P::Settings,
    /// The member holding each id, `None` for a free id below the highest.
    slots: Vec<Option<Member>>,
    index: HashMap<String, u32>,
    /// The present members in id order: what the placement is built from.
    members: Members,
    /// Position in `members` → id.
    ids: Vec<ShardId>,
    placement: P,
}

impl<P: Placement> Named<P> {
    /// The members, ids `0, 1, …` in list order, with the function's
    /// default settings.
    ///
    /// # Errors
    ///
    /// Whatever the function refuses for these members (for a numbered
    /// function, weights other than 1: [`ShardError::WeightsNotSupported`]).
    pub fn new(members: Members) -> Result<Self, ShardError> {
        Named::with_settings(members, P::default_settings())
    }

    /// The members with the function's settings (a ring's virtual nodes, a
    /// Maglev table size).
    ///
    /// # Errors
    ///
    /// As [`Named::new`], and whatever the function refuses of the
    /// settings.
    pub fn with_settings(members: Members, settings: P::Settings) -> Result<Self, ShardError> {
        let slots = members.iter().cloned().map(Some).collect();
        Named::assemble(settings, slots)
    }

    fn assemble(settings: P::Settings, slots: Vec<Option<Member>>) -> Result<Self, ShardError> {
        if slots.len() as u64 > u64::from(u32::MAX) {
            return Err(ShardError::TooManyShards(slots.len() as u64));
        }
        let mut present = Vec::with_capacity(slots.len());
        let mut ids = Vec::with_capacity(slots.len());
        let mut index = HashMap::with_capacity(slots.len());
        for (id, slot) in slots.iter().enumerate() {
            if let Some(m) = slot {
                present.push(m.clone());
                ids.push(ShardId::new(id as u32));
                index.insert(m.name.clone(), id as u32);
            }
        }
        // Validates names and weights, and that one member is present.
        let members = Members::new(present)?;
        let placement = P::place(&members, &settings)?;
        Ok(Named {
            settings,
            slots,
            index,
            members,
            ids,
            placement,
        })
    }

    /// Adds a member (a name, or a [`Member`] with a weight) and returns its
    /// id: the lowest free id, or the next one.
    ///
    /// # Errors
    ///
    /// [`ShardError::DuplicateMember`] if the name is present,
    /// [`ShardError::EmptyMemberName`], [`ShardError::BadWeight`], and
    /// whatever the function refuses of the grown set. On an error the set
    /// is unchanged.
    pub fn add(&mut self, member: impl Into<Member>) -> Result<ShardId, ShardError> {
        let member = member.into();
        if self.index.contains_key(&member.name) {
            return Err(ShardError::DuplicateMember(member.name));
        }
        let mut slots = self.slots.clone();
        let id = match slots.iter().position(Option::is_none) {
            Some(free) => {
                slots[free] = Some(member);
                free
            }
            None => {
                slots.push(Some(member));
                slots.len() - 1
            }
        };
        *self = Named::assemble(self.settings.clone(), slots)?;
        Ok(ShardId::new(id as u32))
    }

    /// Removes the member called `name` and returns the id it had; only
    /// its keys move.
    ///
    /// # Errors
    ///
    /// [`ShardError::UnknownMember`], [`ShardError::LastMember`] for the
    /// only member, and [`ShardError::RemovalNotSupported`] for a member of
    /// a numbered function that is not the one with the highest id. On an
    /// error the set is unchanged.
    pub fn remove(&mut self, name: &str) -> Result<ShardId, ShardError> {
        let id = *self
            .index
            .get(name)
            .ok_or_else(|| ShardError::UnknownMember(name.to_string()))?;
        if self.members.len() == 1 {
            return Err(ShardError::LastMember(name.to_string()));
        }
        if P::REMOVAL == Removal::LastOnly && id as usize + 1 != self.slots.len() {
            return Err(ShardError::RemovalNotSupported {
                member: name.to_string(),
                function: P::NAME,
            });
        }
        let mut slots = self.slots.clone();
        slots[id as usize] = None;
        while slots.last().is_some_and(Option::is_none) {
            slots.pop();
        }
        *self = Named::assemble(self.settings.clone(), slots)?;
        Ok(ShardId::new(id))
    }

    /// The member with id `id`, if present.
    pub fn member(&self, id: ShardId) -> Option<&Member> {
        self.slots.get(id.index())?.as_ref()
    }

    /// The name of the member with id `id`, if present.
    pub fn name(&self, id: ShardId) -> Option<&str> {
        self.member(id).map(|m| m.name.as_str())
    }

    /// The id of the member called `name`.
    pub fn id_of(&self, name: &str) -> Option<ShardId> {
        self.index.get(name).map(|&id| ShardId::new(id))
    }

    /// The member that owns `key` (hashed with weft's key hash).
    pub fn member_for<K: ShardKey + ?Sized>(&self, key: &K) -> &Member {
        let id = self.shard_for(key);
        // invariant: a lookup returns the id of a present member.
        self.slots[id.index()]
            .as_ref()
            .unwrap_or_else(|| unreachable!("lookup returned the free id {id}"))
    }

    /// The number of members present.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a set keeps at least one member.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The members present with their ids, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (ShardId, &Member)> + '_ {
        self.ids.iter().copied().zip(self.members.iter())
    }

    /// The members present, in id order (their positions in this list are
    /// the function's own ids; see [`id_at`](Named::id_at)).
    pub fn members(&self) -> &Members {
        &self.members
    }

    /// The id of the member at `position` in [`members`](Named::members):
    /// turns an answer of the function itself (for a compatible
    /// placement's own key hash, e.g. `named.placement().shard_for(bytes)`
    /// of a ketama continuum) into this set's id.
    pub fn id_at(&self, position: ShardId) -> Option<ShardId> {
        self.ids.get(position.index()).copied()
    }

    /// The function built over the present members.
    pub fn placement(&self) -> &P {
        &self.placement
    }

    /// The function's settings.
    pub fn settings(&self) -> &P::Settings {
        &self.settings
    }
}

impl<P: Placement> Sharder for Named<P> {
    fn shard_count(&self) -> usize {
        self.members.len()
    }

    #[inline]
    fn shard_for_hash(&self, hash: u64) -> ShardId {
        self.ids[self.placement.shard_for_hash(hash).index()]
    }

    fn id_bound(&self) -> usize {
        self.slots.len()
    }

    fn contains(&self, id: ShardId) -> bool {
        self.slots.get(id.index()).is_some_and(Option::is_some)
    }
}

impl<P: Placement + ReplicaSharder> ReplicaSharder for Named<P> {
    fn replicas_for_hash(&self, hash: u64, out: &mut [ShardId]) -> Result<(), CoreError> {
        self.placement.replicas_for_hash(hash, out)?;
        for id in out.iter_mut() {
            *id = self.ids[id.index()];
        }
        Ok(())
    }
}

impl<P: Placement> fmt::Debug for Named<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Named")
            .field("function", &P::NAME)
            .field("settings", &self.settings)
            .field("slots", &self.slots)
            .finish()
    }
}

impl<P: Placement> PartialEq for Named<P> {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings && self.slots == other.slots
    }
}

/// The serialised form of a [`Named`] set: the function's name, its
/// settings, and the member at each id (`null` for a free id).
///
/// ```json
/// {"function":"ring","settings":160,"slots":[{"name":"a","weight":1.0},null,{"name":"c","weight":2.0}]}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedState<S> {
    /// [`Placement::NAME`] of the function.
    pub function: String,
    /// The function's settings.
    pub settings: S,
    /// The member at each id.
    pub slots: Vec<Option<Member>>,
}

impl<P: Placement> Named<P> {
    /// The set as plain data.
    pub fn state(&self) -> NamedState<P::Settings> {
        NamedState {
            function: P::NAME.to_string(),
            settings: self.settings.clone(),
            slots: self.slots.clone(),
        }
    }

    /// The set `state` describes, validated as a set built by changes
    /// would be.
    ///
    /// # Errors
    ///
    /// [`ShardError::BadState`] for state of another function, a free id
    /// as the highest, or a free id under a numbered function; and every
    /// error a member list or the function can give.
    pub fn from_state(state: NamedState<P::Settings>) -> Result<Self, ShardError> {
        if state.function != P::NAME {
            return Err(ShardError::BadState {
                function: P::NAME,
                reason: format!("the state is for the function {:?}", state.function),
            });
        }
        if state.slots.last().is_some_and(Option::is_none) {
            return Err(ShardError::BadState {
                function: P::NAME,
                reason: "the highest id is free (a set never ends in a free id)".into(),
            });
        }
        if P::REMOVAL == Removal::LastOnly && state.slots.iter().any(Option::is_none) {
            return Err(ShardError::BadState {
                function: P::NAME,
                reason: "a numbered function cannot have a free id".into(),
            });
        }
        Named::assemble(state.settings, state.slots)
    }
}

impl<P: Placement> Serialize for Named<P> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        self.state().serialize(serializer)
    }
}

impl<'de, P: Placement> Deserialize<'de> for Named<P> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let state = NamedState::<P::Settings>::deserialize(deserializer)?;
        Named::from_state(state).map_err(serde::de::Error::custom)
    }
}

fn unweighted(members: &Members, function: &'static str) -> Result<u32, ShardError> {
    if let Some(m) = members.iter().find(|m| m.weight != 1.0) {
        return Err(ShardError::WeightsNotSupported {
            member: m.name.clone(),
            weight: m.weight,
            function,
        });
    }
    // invariant: Members holds at most u32::MAX members.
    Ok(members.len() as u32)
}

macro_rules! numbered_placement {
    ($($ty:ty => $name:literal),*) => {$(
        impl Placement for $ty {
            const NAME: &'static str = $name;
            const REMOVAL: Removal = Removal::LastOnly;
            type Settings = ();
            fn default_settings() {}
            fn place(members: &Members, _: &()) -> Result<Self, ShardError> {
                <$ty>::new(unweighted(members, $name)?)
            }
        }
    )*};
}
numbered_placement!(LevelJump => "level-jump", Jump => "jump", Modulo => "modulo");

impl Placement for Rendezvous {
    const NAME: &'static str = "rendezvous";
    const REMOVAL: Removal = Removal::Any;
    type Settings = ();
    fn default_settings() {}
    fn place(members: &Members, _: &()) -> Result<Self, ShardError> {
        Ok(Rendezvous::new(members.clone()))
    }
}

/// Settings: virtual nodes per unit of weight.
impl Placement for Ring {
    const NAME: &'static str = "ring";
    const REMOVAL: Removal = Removal::Any;
    type Settings = u32;
    fn default_settings() -> u32 {
        Ring::DEFAULT_VNODES
    }
    fn place(members: &Members, vnodes: &u32) -> Result<Self, ShardError> {
        Ring::new(members.clone(), *vnodes)
    }
}

/// Settings: the table size (a prime).
impl Placement for Maglev {
    const NAME: &'static str = "maglev";
    const REMOVAL: Removal = Removal::Any;
    type Settings = u64;
    fn default_settings() -> u64 {
        Maglev::DEFAULT_TABLE_SIZE
    }
    fn place(members: &Members, table_size: &u64) -> Result<Self, ShardError> {
        Maglev::new(members.clone(), *table_size)
    }
}

/// libmemcached's continuum; two points of different servers with the same
/// value (rare: about one pair in 2³² per pair of points) go to the one
/// with the lower id, as in libmemcached, so only those depend on order.
impl Placement for Ketama {
    const NAME: &'static str = "ketama";
    const REMOVAL: Removal = Removal::Any;
    type Settings = ();
    fn default_settings() {}
    fn place(members: &Members, _: &()) -> Result<Self, ShardError> {
        Ketama::new(members.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(list: &str) -> Named<Ring> {
        Named::new(list.parse().unwrap()).unwrap()
    }

    #[test]
    fn ids_stay_with_names_and_free_ids_are_reused_lowest_first() {
        let mut set = ring("a,b,c,d");
        assert_eq!(set.remove("b").unwrap(), ShardId::new(1));
        assert_eq!(set.remove("c").unwrap(), ShardId::new(2));
        assert_eq!(set.id_of("d"), Some(ShardId::new(3)));
        assert_eq!(set.id_bound(), 4);
        assert!(!set.contains(ShardId::new(1)));
        assert_eq!(set.add("c").unwrap(), ShardId::new(1));
        assert_eq!(set.add("e").unwrap(), ShardId::new(2));
        assert_eq!(set.add("f").unwrap(), ShardId::new(4));
        assert_eq!(set.name(ShardId::new(3)), Some("d"));
        // Removing the highest id trims the bound.
        set.remove("f").unwrap();
        set.remove("d").unwrap();
        assert_eq!(set.id_bound(), 3);
    }

    #[test]
    fn a_failed_change_leaves_the_set_as_it_was() {
        let mut set = ring("a,b");
        let before = set.clone();
        assert_eq!(set.add("a"), Err(ShardError::DuplicateMember("a".into())));
        assert!(matches!(
            set.add(Member::weighted("c", f64::NAN)),
            Err(ShardError::BadWeight { .. })
        ));
        assert!(matches!(
            set.add(Member::weighted("c", 1e12)),
            Err(ShardError::TooManyPoints { .. })
        ));
        assert_eq!(
            set.remove("zz"),
            Err(ShardError::UnknownMember("zz".into()))
        );
        set.remove("a").unwrap();
        assert_eq!(set.remove("b"), Err(ShardError::LastMember("b".into())));
        set.add("a").unwrap();
        assert_eq!(set, before);
    }

    #[test]
    fn numbered_functions_remove_only_their_last_member_and_refuse_weights() {
        let mut set = Named::<LevelJump>::new("a,b,c".parse().unwrap()).unwrap();
        assert_eq!(
            set.remove("a"),
            Err(ShardError::RemovalNotSupported {
                member: "a".into(),
                function: "level-jump"
            })
        );
        assert_eq!(set.remove("c").unwrap(), ShardId::new(2));
        assert_eq!(set.add("d").unwrap(), ShardId::new(2));
        // The numbered function places by position: the set routes like it.
        let plain = LevelJump::new(3).unwrap();
        for k in 0..1000u64 {
            assert_eq!(set.shard_for(&k), plain.shard_for(&k));
        }
        assert!(matches!(
            set.add(Member::weighted("e", 2.0)),
            Err(ShardError::WeightsNotSupported {
                function: "level-jump",
                ..
            })
        ));
    }

    #[test]
    fn state_round_trips_and_bad_state_is_refused_by_name() {
        let mut set = ring("a,b=2,c");
        set.remove("b").unwrap();
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(
            json,
            r#"{"function":"ring","settings":160,"slots":[{"name":"a","weight":1.0},null,{"name":"c","weight":1.0}]}"#
        );
        let copy: Named<Ring> = serde_json::from_str(&json).unwrap();
        assert_eq!(copy, set);
        for k in 0..1000u64 {
            assert_eq!(copy.shard_for(&k), set.shard_for(&k));
        }
        let refused = |json: &str| serde_json::from_str::<Named<Ring>>(json).unwrap_err();
        let other = refused(r#"{"function":"maglev","settings":160,"slots":[{"name":"a"}]}"#);
        assert!(other.to_string().contains("maglev"), "{other}");
        let trailing = refused(r#"{"function":"ring","settings":160,"slots":[{"name":"a"},null]}"#);
        assert!(trailing.to_string().contains("highest id"), "{trailing}");
        let empty = refused(r#"{"function":"ring","settings":160,"slots":[null]}"#);
        assert!(empty.to_string().contains("free"), "{empty}");
        let dup =
            refused(r#"{"function":"ring","settings":160,"slots":[{"name":"a"},{"name":"a"}]}"#);
        assert!(dup.to_string().contains("more than once"), "{dup}");
        let zero = refused(r#"{"function":"ring","settings":0,"slots":[{"name":"a"}]}"#);
        assert!(zero.to_string().contains("virtual nodes"), "{zero}");
        let hole = serde_json::from_str::<Named<Jump>>(
            r#"{"function":"jump","settings":null,"slots":[null,{"name":"a"}]}"#,
        )
        .unwrap_err();
        assert!(hole.to_string().contains("numbered"), "{hole}");
    }

    #[test]
    fn replica_sets_come_back_as_this_sets_ids() {
        let mut set = Named::<Rendezvous>::new("a,b,c,d".parse().unwrap()).unwrap();
        set.remove("a").unwrap();
        let mut out = [ShardId::new(0); 3];
        for k in 0..200u64 {
            set.replicas_for_hash(k, &mut out).unwrap();
            assert!(out.iter().all(|&id| set.contains(id)), "{out:?}");
            assert_eq!(out[0], set.shard_for_hash(k));
        }
    }
}
