//! The sticky assignor: which live member owns each of P partitions.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::MembersError;

/// The most partitions an assignment holds.
pub const MAX_PARTITIONS: u32 = 1 << 20;

/// The owner of each of P partitions (work-queue shards, streams, key
/// ranges), numbered by generation.
///
/// [`next`](Assignment::next) moves it to a new member set the way Kafka's
/// sticky assignor does for one topic (KIP-54): balanced (every member owns
/// ⌊P/N⌋ or ⌈P/N⌉ partitions), and keeping as many partitions where they
/// are as balance allows, so that one member joining or leaving moves at
/// most ⌈P/N⌉ partitions. It is a pure function of the previous assignment
/// and the new names: every process that applies it to the same inputs gets
/// the same owners.
///
/// The assignment only says who should own what; exclusive ownership
/// (revoke before assign, fencing) is the job of one lease per partition.
///
/// # Examples
///
/// ```
/// use weft_members::Assignment;
///
/// let a = Assignment::new(12)?.next(["a", "b", "c"]);
/// assert_eq!(a.owned_by("a").count(), 4);
/// let b = a.next(["a", "b", "c", "d"]);
/// assert_eq!(b.generation(), 2);
/// assert_eq!(b.moved_from(&a), 3); // d's share, nothing else
/// # Ok::<(), weft_members::MembersError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    generation: u64,
    owners: Vec<Option<String>>,
}

impl Assignment {
    /// `partitions` partitions, none owned, generation 0.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for zero partitions or more than
    /// [`MAX_PARTITIONS`].
    pub fn new(partitions: u32) -> Result<Self, MembersError> {
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(MembersError::invalid(
                "partition count",
                partitions,
                format!("1 to {MAX_PARTITIONS}"),
            ));
        }
        Ok(Assignment {
            generation: 0,
            owners: vec![None; partitions as usize],
        })
    }

    /// The assignment for `members` (names; duplicates count once), one
    /// generation on: balanced, and sticky to this one.
    pub fn next<I, S>(&self, members: I) -> Assignment
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let names: BTreeSet<String> = members
            .into_iter()
            .map(|s| s.as_ref().to_string())
            .collect();
        let generation = self.generation.saturating_add(1);
        let p = self.owners.len();
        if names.is_empty() {
            return Assignment {
                generation,
                owners: vec![None; p],
            };
        }
        // What each live member holds now, in partition order.
        let mut held: BTreeMap<&str, Vec<usize>> =
            names.iter().map(|n| (n.as_str(), Vec::new())).collect();
        for (partition, owner) in self.owners.iter().enumerate() {
            if let Some(list) = owner.as_deref().and_then(|o| held.get_mut(o)) {
                list.push(partition);
            }
        }
        // Quotas: ⌊P/N⌋ each, and one more for the P mod N members that
        // hold the most now (ties by name), so the fewest partitions move.
        let n = names.len();
        let (base, extra) = (p / n, p % n);
        let mut by_holding: Vec<&str> = held.keys().copied().collect();
        by_holding.sort_by(|a, b| held[b].len().cmp(&held[a].len()).then(a.cmp(b)));
        let quota: BTreeMap<&str, usize> = by_holding
            .iter()
            .enumerate()
            .map(|(rank, name)| (*name, base + usize::from(rank < extra)))
            .collect();
        // Keep what fits in each quota; the rest, and the partitions of
        // members that left, go to members under quota, in name order.
        let mut owners: Vec<Option<String>> = vec![None; p];
        let mut room: BTreeMap<&str, usize> = BTreeMap::new();
        for (name, list) in &held {
            let keep = list.len().min(quota[name]);
            for &partition in &list[..keep] {
                owners[partition] = Some((*name).to_string());
            }
            room.insert(name, quota[name] - keep);
        }
        let mut takers = room.iter_mut().filter(|(_, r)| **r > 0);
        let mut taker = takers.next();
        for owner in owners.iter_mut().filter(|o| o.is_none()) {
            while taker.as_ref().is_some_and(|(_, r)| **r == 0) {
                taker = takers.next();
            }
            // invariant: the quotas add up to P, so there is room for
            // every partition not kept.
            let Some((name, r)) = taker.as_mut() else {
                unreachable!("quotas add up to the partition count")
            };
            *owner = Some((**name).to_string());
            **r -= 1;
        }
        Assignment { generation, owners }
    }

    /// The generation: 0 for a new assignment, one more for each
    /// [`next`](Assignment::next).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The number of partitions.
    pub fn partitions(&self) -> u32 {
        // invariant: at most MAX_PARTITIONS entries.
        u32::try_from(self.owners.len()).unwrap_or(MAX_PARTITIONS)
    }

    /// The owner of `partition`, if any.
    pub fn owner(&self, partition: u32) -> Option<&str> {
        self.owners.get(partition as usize)?.as_deref()
    }

    /// The partitions `name` owns, in order.
    pub fn owned_by<'a>(&'a self, name: &'a str) -> impl Iterator<Item = u32> + 'a {
        self.owners
            .iter()
            .enumerate()
            .filter(move |(_, o)| o.as_deref() == Some(name))
            .map(|(p, _)| p as u32)
    }

    /// How many partitions have another owner here than in `earlier`
    /// (a partition that had none counts as moved).
    pub fn moved_from(&self, earlier: &Assignment) -> usize {
        self.owners
            .iter()
            .zip(&earlier.owners)
            .filter(|(now, then)| now != then)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn counts(a: &Assignment, names: &[String]) -> Vec<usize> {
        names.iter().map(|n| a.owned_by(n).count()).collect()
    }

    #[test]
    fn bad_partition_counts_are_refused() {
        assert!(Assignment::new(0).is_err());
        assert!(Assignment::new(MAX_PARTITIONS + 1).is_err());
        assert!(Assignment::new(u32::MAX).is_err());
        assert!(Assignment::new(MAX_PARTITIONS).is_ok());
    }

    #[test]
    fn no_member_owns_nothing_and_one_owns_everything() {
        let a = Assignment::new(5).unwrap().next(Vec::<&str>::new());
        assert!((0..5).all(|p| a.owner(p).is_none()));
        let b = a.next(["x", "x"]);
        assert_eq!(b.owned_by("x").count(), 5);
        assert_eq!(b.moved_from(&a), 5);
        assert_eq!(b.next(["x"]).moved_from(&b), 0);
        // More members than partitions: some own none, none owns two.
        let c = b.next(["a", "b", "c", "d", "e", "f", "x"]);
        let names: Vec<String> = ["a", "b", "c", "d", "e", "f", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(counts(&c, &names).iter().all(|&k| k <= 1));
    }

    /// Ten partitions over eight members: two hold two. When a one-holder
    /// leaves, the two-holders must keep both (the extra quotas go to
    /// those who hold the most), or a partition moves that need not.
    #[test]
    fn extra_quotas_go_to_the_members_that_hold_the_most() {
        let all = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let a = Assignment::new(10).unwrap().next(all);
        let two: Vec<&str> = all
            .iter()
            .copied()
            .filter(|n| a.owned_by(n).count() == 2)
            .collect();
        assert_eq!(two, ["a", "b"]);
        // Rename so that the two-holders sort last.
        let renamed = Assignment {
            generation: a.generation,
            owners: a
                .owners
                .iter()
                .map(|o| {
                    o.as_deref().map(|n| match n {
                        "a" => "y".to_string(),
                        "b" => "z".to_string(),
                        other => other.to_string(),
                    })
                })
                .collect(),
        };
        let b = renamed.next(
            ["c", "d", "e", "f", "g", "h", "y", "z"]
                .into_iter()
                .filter(|&n| n != "c"),
        );
        assert_eq!(
            b.moved_from(&renamed),
            1,
            "{:?} -> {:?}",
            renamed.owners,
            b.owners
        );
    }

    fn names(ids: &BTreeSet<u8>) -> Vec<String> {
        ids.iter().map(|i| format!("m{i}")).collect()
    }

    proptest! {
        /// Every partition is owned by a live member, counts differ by at
        /// most one, one join or leave moves only partitions to the joiner
        /// or from the leaver (so at most ⌈P/N⌉, N the larger set), and
        /// the same inputs give the same owners.
        #[test]
        fn assignments_stay_balanced_and_move_little(
            partitions in prop_oneof![1u32..24, 1u32..300],
            start in proptest::collection::btree_set(0u8..40, 1..12),
            changes in proptest::collection::vec((any::<bool>(), 0u8..40), 1..12),
        ) {
            let mut members = start;
            let mut a = Assignment::new(partitions).unwrap().next(names(&members));
            for (join, who) in changes {
                let before = members.len();
                if join { members.insert(who); } else if members.len() > 1 { members.remove(&who); }
                if members.len() == before { continue; }
                let live = names(&members);
                let b = a.next(&live);
                prop_assert_eq!(b.generation(), a.generation() + 1);
                for p in 0..partitions {
                    let owner = b.owner(p).map(str::to_string);
                    prop_assert!(owner.is_some_and(|o| live.contains(&o)), "partition {} unowned or dead", p);
                }
                let c = counts(&b, &live);
                prop_assert!(c.iter().max().unwrap() - c.iter().min().unwrap() <= 1, "unbalanced {:?}", c);
                let n = before.max(members.len()) as u32;
                let bound = partitions.div_ceil(n) as usize;
                prop_assert!(b.moved_from(&a) <= bound, "moved {} > {}", b.moved_from(&a), bound);
                // Only what the change must move: partitions to a joiner,
                // or a leaver's partitions.
                let changed = format!("m{who}");
                for p in 0..partitions {
                    if a.owner(p) != b.owner(p) {
                        let side = if join { b.owner(p) } else { a.owner(p) };
                        prop_assert_eq!(side, Some(changed.as_str()), "partition {} moved from {:?} to {:?}", p, a.owner(p), b.owner(p));
                    }
                }
                prop_assert_eq!(&a.next(&live), &b);
                a = b;
            }
        }
    }
}
