//! A member set where any member can leave and join: AnchorHash's removal
//! bookkeeping over [`LevelJump`], without a fixed capacity.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use weft_core::{ShardId, Sharder};

use crate::ShardError;
use crate::level_jump::LevelJump;
use crate::mix::{below, draw};

/// Consistent hashing over a named member set with arbitrary removal in
/// O(1): any member (not only the last) can leave, and only its keys move.
///
/// # How
///
/// Members sit in slots `0..s`. A key first picks a slot with
/// [`LevelJump`] over all `s` slots. If that slot's member has left, the key
/// re-draws among the members that were still there when it left, following
/// AnchorHash's record of which slot took over which position (Mendelson et
/// al., 2021); a member that leaves later sends its keys on the same way.
/// So a removal moves exactly the removed member's keys, spread evenly over
/// the rest, and no key between two members that stay.
///
/// A join fills the most recently vacated slot, exactly undoing that
/// removal; with no vacated slot it appends a slot, which [`LevelJump`]
/// fills with `1/(s+1)` of the keys. AnchorHash fixes its capacity up front;
/// growing the jump range instead (the idea of MementoHash, Coluzzi et al.,
/// 2024) removes that limit, and memory stays 16 bytes per slot.
///
/// # History
///
/// The placement depends on the order of removals, not only on the current
/// members: two processes agree when they apply the same changes in the same
/// order, or share the state by serialising it (serde keeps slots and the
/// removal order).
///
/// Weights are not supported: use [`crate::Rendezvous`] for weighted
/// members with arbitrary removal.
///
/// # Examples
///
/// ```
/// use weft_core::ShardExt;
/// use weft_shard::Memento;
///
/// let mut set = Memento::new(["a", "b", "c", "d"])?;
/// let before = set.shard_for("user-42");
/// set.remove("b")?; // any member, not only the last
/// let after = set.shard_for("user-42");
/// assert!(after == before || set.name(before).is_none());
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "MementoState", into = "MementoState")]
pub struct Memento {
    /// Per slot: 0 while its member is present, else the number of members
    /// left just after it was removed.
    removed_at: Vec<u32>,
    /// Per slot: the slot that took its position when it left.
    successor: Vec<u32>,
    /// Position → slot, for the first `present` positions.
    slot_at: Vec<u32>,
    /// Slot → position.
    position_of: Vec<u32>,
    /// Vacated slots, most recent last.
    vacated: Vec<u32>,
    present: u32,
    names: Vec<Option<String>>,
    index: HashMap<String, u32>,
}

/// The serialised form of a [`Memento`]: slot names (null for a vacated
/// slot) and the vacated slots in the order they were vacated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MementoState {
    /// The member in each slot, `None` where it left.
    pub slots: Vec<Option<String>>,
    /// Vacated slots, in the order of removal.
    pub vacated: Vec<u32>,
}

impl Memento {
    /// A set of the given members, in slots `0, 1, …` in that order.
    ///
    /// # Errors
    ///
    /// [`ShardError::EmptyMembers`], [`ShardError::EmptyMemberName`] or
    /// [`ShardError::DuplicateMember`].
    pub fn new<I, S>(names: I) -> Result<Self, ShardError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut set = Memento::empty();
        for name in names {
            set.add(name)?;
        }
        if set.present == 0 {
            return Err(ShardError::EmptyMembers);
        }
        Ok(set)
    }

    /// The member in slot `id`, if it is present.
    pub fn name(&self, id: ShardId) -> Option<&str> {
        self.names.get(id.index())?.as_deref()
    }

    /// The slot of member `name`.
    pub fn id_of(&self, name: &str) -> Option<ShardId> {
        self.index.get(name).map(|&s| ShardId::new(s))
    }

    /// The number of present members.
    pub fn len(&self) -> usize {
        self.present as usize
    }

    /// Always false once constructed: the set is never empty.
    pub fn is_empty(&self) -> bool {
        self.present == 0
    }

    /// The number of slots (present members plus vacated slots).
    pub fn slots(&self) -> usize {
        self.removed_at.len()
    }

    /// Adds a member, in the most recently vacated slot if there is one.
    /// Returns its id.
    ///
    /// # Errors
    ///
    /// [`ShardError::DuplicateMember`] if it is present already,
    /// [`ShardError::EmptyMemberName`] for an empty name, and
    /// [`ShardError::TooManyShards`] beyond 2³² − 1 slots.
    pub fn add(&mut self, name: impl Into<String>) -> Result<ShardId, ShardError> {
        let name = name.into();
        if name.is_empty() {
            return Err(ShardError::EmptyMemberName);
        }
        if self.index.contains_key(&name) {
            return Err(ShardError::DuplicateMember(name));
        }
        let slot = match self.vacated.pop() {
            Some(slot) => {
                // Undo that slot's removal: it takes back its position.
                let last = self.slot_at[self.present as usize];
                self.removed_at[slot as usize] = 0;
                self.position_of[last as usize] = self.present;
                self.slot_at[self.position_of[slot as usize] as usize] = slot;
                self.successor[slot as usize] = slot;
                slot
            }
            None => self.push_slot()?,
        };
        self.present += 1;
        self.names[slot as usize] = Some(name.clone());
        self.index.insert(name, slot);
        Ok(ShardId::new(slot))
    }

    fn empty() -> Memento {
        Memento {
            removed_at: Vec::new(),
            successor: Vec::new(),
            slot_at: Vec::new(),
            position_of: Vec::new(),
            vacated: Vec::new(),
            present: 0,
            names: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Appends a slot at the end of the jump range (not yet counted as
    /// present).
    fn push_slot(&mut self) -> Result<u32, ShardError> {
        let slot = u32::try_from(self.removed_at.len())
            .ok()
            .filter(|&s| s < u32::MAX)
            .ok_or(ShardError::TooManyShards(self.removed_at.len() as u64 + 1))?;
        self.removed_at.push(0);
        self.successor.push(slot);
        self.slot_at.push(slot);
        self.position_of.push(slot);
        self.names.push(None);
        Ok(slot)
    }

    /// Removes a member; only its keys move.
    ///
    /// # Errors
    ///
    /// [`ShardError::UnknownMember`] if it is not present, and
    /// [`ShardError::LastMember`] if it is the only one.
    pub fn remove(&mut self, name: &str) -> Result<ShardId, ShardError> {
        let &slot = self
            .index
            .get(name)
            .ok_or_else(|| ShardError::UnknownMember(name.to_string()))?;
        if self.present == 1 {
            return Err(ShardError::LastMember(name.to_string()));
        }
        self.index.remove(name);
        self.names[slot as usize] = None;
        self.vacate(slot);
        Ok(ShardId::new(slot))
    }

    fn vacate(&mut self, slot: u32) {
        self.vacated.push(slot);
        self.present -= 1;
        let n = self.present;
        self.removed_at[slot as usize] = n;
        // The member at the last position moves into the vacated position.
        let last = self.slot_at[n as usize];
        let pos = self.position_of[slot as usize];
        self.slot_at[pos as usize] = last;
        self.position_of[last as usize] = pos;
        self.successor[slot as usize] = last;
    }
}

impl Sharder for Memento {
    fn shard_count(&self) -> usize {
        self.present as usize
    }

    /// The slot count: ids of removed members stay vacant until reused.
    fn id_bound(&self) -> usize {
        self.names.len()
    }

    fn contains(&self, id: ShardId) -> bool {
        self.names.get(id.index()).is_some_and(Option::is_some)
    }

    #[inline]
    fn shard_for_hash(&self, hash: u64) -> ShardId {
        let mut b = LevelJump::bucket(hash, self.removed_at.len() as u32);
        loop {
            let gone = self.removed_at[b as usize];
            if gone == 0 {
                return ShardId::new(b);
            }
            // Re-draw among the `gone` members present when b left; follow
            // the successors of slots that had left before b did.
            let mut h = below(draw(hash, u64::from(b) + 1), u64::from(gone)) as u32;
            while self.removed_at[h as usize] >= gone {
                h = self.successor[h as usize];
            }
            b = h;
        }
    }
}

impl TryFrom<MementoState> for Memento {
    type Error = ShardError;

    fn try_from(state: MementoState) -> Result<Self, ShardError> {
        // Rebuild by replaying: every slot present, then the removals in
        // order.
        let mut set = Memento::empty();
        for (i, name) in state.slots.iter().enumerate() {
            set.push_slot()?;
            set.present += 1;
            if let Some(name) = name {
                if name.is_empty() {
                    return Err(ShardError::EmptyMemberName);
                }
                if set.index.insert(name.clone(), i as u32).is_some() {
                    return Err(ShardError::DuplicateMember(name.clone()));
                }
                set.names[i] = Some(name.clone());
            }
        }
        let mut seen = vec![false; state.slots.len()];
        for &slot in &state.vacated {
            let s = slot as usize;
            if s >= state.slots.len() || seen[s] || state.slots[s].is_some() {
                return Err(ShardError::MemberSyntax {
                    input: format!("vacated slot {slot}"),
                    reason: "vacated slots must be distinct, in range and have no member",
                });
            }
            seen[s] = true;
            set.vacate(slot);
        }
        if set.names.iter().zip(&seen).any(|(n, &v)| n.is_none() && !v) {
            return Err(ShardError::MemberSyntax {
                input: "slots".into(),
                reason: "a slot without a member is missing from the vacated list",
            });
        }
        if set.present == 0 {
            return Err(ShardError::EmptyMembers);
        }
        Ok(set)
    }
}

impl From<Memento> for MementoState {
    fn from(set: Memento) -> Self {
        MementoState {
            slots: set.names,
            vacated: set.vacated,
        }
    }
}
