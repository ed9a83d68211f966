//! weft's default consistent hash: jump-hash placement in O(1).

use std::hint::select_unpredictable;

use weft_core::{ShardId, Sharder};

use crate::ShardError;
use crate::mix::{DRAW_FACTOR, GAMMA, below, draw};

/// weft's default sharding function: the placement of jump consistent hash,
/// computed in expected O(1) with integer arithmetic only.
///
/// # Why it is consistent
///
/// Jump hash gives each key a random set of "jump points": index `i ≥ 1` is
/// one with probability `1/(i+1)`, independently, and `0` always is. A key's
/// shard among `n` is its largest jump point below `n`. Growing to `n + 1`
/// moves a key only if `n` is one of its jump points: exactly the `1/(n+1)`
/// of keys the new shard should get, all of them to the new shard. Every
/// shard gets `1/n` of the keys.
///
/// # Why it is O(1)
///
/// Split the indices into levels `[2ᵐ, 2ᵐ⁺¹)`. Multiplying the
/// probabilities, a level holds at least one jump point with probability
/// exactly ½, and its highest jump point is then uniform over the level; and
/// below any jump point `t` of a level, the next one down is uniform over
/// `[0, t)`, landing under `2ᵐ` when the level has no more. So: bit `m` of the
/// key hash says whether level `m` has a jump point; the level of `n − 1`
/// walks down its jump points (about two draws) until one is below `n`; if
/// none is, the highest set bit below that level picks the level, and one
/// draw the point in it. Those are the `O(1)`-expected steps that
/// JumpBackHash (Ertl, 2024) takes. Each draw is one 64×64→128-bit multiply of
/// the key hash with a per-draw constant, folded (as wyhash does), and mapped
/// to a range by multiply-shift: no division and no floating point, so the
/// result is the same on every platform.
///
/// Shards are added and removed at the end (`n ± 1`). To remove any member,
/// use [`crate::Memento`], which builds on this function.
///
/// # Examples
///
/// ```
/// use weft_core::ShardExt;
/// use weft_shard::LevelJump;
///
/// let ten = LevelJump::new(10)?;
/// let eleven = LevelJump::new(11)?;
/// let shard = ten.shard_for("user-42");
/// let moved = eleven.shard_for("user-42");
/// // A key either stays or moves to the new shard.
/// assert!(moved == shard || moved.get() == 10);
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelJump {
    n: u32,
}

impl LevelJump {
    /// The function over `n` shards.
    ///
    /// # Errors
    ///
    /// [`ShardError::ZeroShards`] if `n` is zero.
    pub fn new(n: u32) -> Result<Self, ShardError> {
        if n == 0 {
            return Err(ShardError::ZeroShards);
        }
        Ok(LevelJump { n })
    }

    /// The bucket of `hash` among `n` (`0` when `n` is 0 or 1).
    ///
    /// The coin flip (does the level of `n − 1` hold a jump point?) and the
    /// first step down that level are not branches: both candidates and
    /// the lower levels' answer are computed (three multiplies) and one is
    /// selected, because a key hash is random and a branch on it is
    /// mispredicted half the time. Only the rare walk past the first step
    /// (a few % of keys) branches.
    #[inline]
    pub fn bucket(hash: u64, n: u32) -> u32 {
        if n <= 1 {
            return 0;
        }
        let last = n - 1;
        let top = 31 - last.leading_zeros(); // 2^top <= last < 2^(top+1)
        let floor = 1u32 << top;
        // The level of `last`: its highest jump point.
        let first = floor | (draw(hash, stream(top, 0)) as u32 & (floor - 1));
        let has_point = (hash >> top) & 1 == 1;
        let lower = lower_levels(hash, floor);
        // Points of the level above `last`: how often the first one is.
        let above = floor - 1 - (last - floor);
        if above <= floor / 8 {
            // At most 1 key in 16 goes past the first point: a branch
            // that is nearly always predicted.
            // One compare, not a branch on the coin flip: the first point
            // masked off (0) when the level has none never walks.
            let gate = 0u32.wrapping_sub(((hash >> top) & 1) as u32);
            if first & gate > last {
                return walk_down(hash, top, first, 1, last).unwrap_or(lower);
            }
            return select_unpredictable(has_point, first, lower);
        }
        // Often past it: the next two points down are computed too, and
        // one of the three is selected.
        let second = below(draw(hash, stream(top, 1)), u64::from(first)) as u32;
        let third = below(draw(hash, stream(top, 2)), u64::from(second)) as u32;
        // `third < second < first`. The walk stops at the first of them at
        // most `last`; it left the level (and the answer is below it) if
        // that point is under `floor`. The gate makes it 0, under `floor`,
        // when the level has no point at all.
        let gate = 0u32.wrapping_sub(((hash >> top) & 1) as u32);
        let stop = select_unpredictable(
            first <= last,
            first,
            select_unpredictable(second <= last, second, third),
        ) & gate;
        if stop > last {
            // All three above `n`: walk further down (about 1 key in 50).
            return walk_down(hash, top, third, 3, last).unwrap_or(lower);
        }
        select_unpredictable(stop >= floor, stop, lower)
    }
}

/// Below `point` (a jump point of level `top` above `last`, followed by
/// the level's step `step`), the next jump points of the level until one
/// is at most `last`; `None` once they leave the level.
#[cold]
fn walk_down(hash: u64, top: u32, mut point: u32, mut step: u32, last: u32) -> Option<u32> {
    let floor = 1u32 << top;
    while point > last {
        point = below(draw(hash, stream(top, step)), u64::from(point)) as u32;
        if point < floor {
            return None;
        }
        step += 1;
    }
    Some(point)
}

/// The highest jump point below level `floor`: the highest lower level
/// with one (a bit of the hash each), and its highest point; 0 if none.
#[inline]
fn lower_levels(hash: u64, floor: u32) -> u32 {
    let lower = (hash as u32) & (floor - 1);
    let level = (31 - (lower | 1).leading_zeros()) as usize;
    // The level's mask (`2^level − 1`) from the table too: a shift by a
    // variable count is three micro-operations on x86.
    let [offset, factor, mask] = LEVEL_DRAW[level];
    let mask = mask as u32;
    let p = u128::from(hash ^ offset) * u128::from(factor);
    let word = (p as u64) ^ ((p >> 64) as u64);
    let point = (mask + 1) | (word as u32 & mask);
    select_unpredictable(lower == 0, 0, point)
}

/// `draw(hash, stream(level, 0))` is `fold((hash ^ offset) × factor)`
/// with the offset and factor of its level, and its points are
/// `2^level | (word & mask)`: one row per level, so that the lower
/// levels' draw, whose level depends on the key, needs no multiply to make
/// its stream and no shift by a variable count.
const LEVEL_DRAW: [[u64; 3]; 32] = {
    let mut table = [[0u64; 3]; 32];
    let mut level = 0;
    while level < 32 {
        let stream = level as u64 + 1; // stream(level, 0)
        table[level] = [
            GAMMA.wrapping_mul(stream),
            DRAW_FACTOR ^ stream,
            (1u64 << level) - 1,
        ];
        level += 1;
    }
    table
};

/// A distinct stream number per (level, step), never 0.
#[inline]
fn stream(level: u32, step: u32) -> u64 {
    (u64::from(step) << 6 | u64::from(level)) + 1
}

impl Sharder for LevelJump {
    fn shard_count(&self) -> usize {
        self.n as usize
    }

    #[inline]
    fn shard_for_hash(&self, hash: u64) -> ShardId {
        ShardId::new(LevelJump::bucket(hash, self.n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The placement as first written: a branch per step. The selecting
    /// form must give the same bucket for every hash and `n`.
    fn reference(hash: u64, n: u32) -> u32 {
        if n <= 1 {
            return 0;
        }
        let last = n - 1;
        let top = 31 - last.leading_zeros();
        let floor = 1u32 << top;
        if (hash >> top) & 1 == 1 {
            let mut point = floor | (draw(hash, stream(top, 0)) as u32 & (floor - 1));
            let mut step = 1;
            while point > last {
                point = below(draw(hash, stream(top, step)), u64::from(point)) as u32;
                if point < floor {
                    break;
                }
                step += 1;
            }
            if point >= floor {
                return point;
            }
        }
        let lower = (hash as u32) & (floor - 1);
        if lower == 0 {
            return 0;
        }
        let level = 31 - lower.leading_zeros();
        let base = 1u32 << level;
        base | (draw(hash, stream(level, 0)) as u32 & (base - 1))
    }

    proptest! {
        #[test]
        fn the_selecting_form_places_every_key_as_the_branching_one(hash: u64, n: u32) {
            prop_assert_eq!(LevelJump::bucket(hash, n), reference(hash, n));
        }

        #[test]
        fn small_and_power_of_two_counts_place_as_the_branching_one(
            hash: u64,
            shift in 0u32..32,
            delta in 0u32..3,
        ) {
            let n = (1u32 << shift).saturating_add(delta).saturating_sub(1).max(1);
            prop_assert_eq!(LevelJump::bucket(hash, n), reference(hash, n));
        }
    }

    #[test]
    fn every_hash_of_a_dense_sweep_places_as_the_branching_one() {
        for n in (1..=300u32).chain([1000, 1023, 1024, 1025, 65_537, u32::MAX]) {
            for i in 0..2000u64 {
                let hash = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i << 7);
                assert_eq!(
                    LevelJump::bucket(hash, n),
                    reference(hash, n),
                    "hash {hash}, n {n}"
                );
            }
        }
    }
}
