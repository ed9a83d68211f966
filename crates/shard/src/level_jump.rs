//! weft's default consistent hash: jump-hash placement in O(1).

use weft_core::{ShardId, Sharder};

use crate::ShardError;
use crate::mix::{below, draw};

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
    #[inline]
    pub fn bucket(hash: u64, n: u32) -> u32 {
        if n <= 1 {
            return 0;
        }
        let last = n - 1;
        let top = 31 - last.leading_zeros(); // 2^top <= last < 2^(top+1)
        let floor = 1u32 << top;
        if (hash >> top) & 1 == 1 {
            // The level of `last` has jump points: walk down them.
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
        // The highest lower level with a jump point, and its highest point.
        let lower = (hash as u32) & (floor - 1);
        if lower == 0 {
            return 0;
        }
        let level = 31 - lower.leading_zeros();
        let base = 1u32 << level;
        base | (draw(hash, stream(level, 0)) as u32 & (base - 1))
    }
}

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
