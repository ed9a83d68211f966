//! Jump consistent hash (Lamping & Veach 2014), bit-compatible with Guava.

use weft_core::{ShardId, Sharder};

use crate::ShardError;

/// Jump consistent hash, exactly as Guava's
/// `Hashing.consistentHash(long, int)` computes it.
///
/// Minimal movement on growth and perfect balance with no state, at
/// O(ln n) steps per lookup, each with a floating-point division. Shards can
/// only be added or removed at the end. weft's default, [`crate::LevelJump`],
/// has the same properties in O(1); use this one to agree with Guava or with
/// other implementations of the paper.
///
/// # Examples
///
/// ```
/// use weft_shard::Jump;
///
/// // Guava: Hashing.consistentHash(1, 100) == 55
/// assert_eq!(Jump::bucket(1, 100), 55);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jump {
    n: u32,
}

impl Jump {
    /// Jump over `n` shards.
    ///
    /// # Errors
    ///
    /// [`ShardError::ZeroShards`] if `n` is zero.
    pub fn new(n: u32) -> Result<Self, ShardError> {
        if n == 0 {
            return Err(ShardError::ZeroShards);
        }
        Ok(Jump { n })
    }

    /// The bucket of `input` among `buckets` (`0` when `buckets` is 0 or 1).
    ///
    /// Follows Guava's arithmetic to the bit, including its 32-bit `int`
    /// overflow in the generator (where the C++ listing in the paper uses 64
    /// bits); the two differ only when the generator's top 31 bits are all
    /// ones.
    pub fn bucket(input: u64, buckets: u32) -> u32 {
        let buckets = i64::from(buckets);
        let mut state = input;
        let mut candidate: i64 = 0;
        loop {
            state = state
                .wrapping_mul(2_862_933_555_777_941_757)
                .wrapping_add(1);
            // Java: ((double) ((int) (state >>> 33) + 1)) / 0x1.0p31
            let draw = ((state >> 33) as i32).wrapping_add(1);
            let next_double = f64::from(draw) / 2_147_483_648.0;
            // Java's (int) cast saturates and maps NaN to 0, as `as` does.
            let next = i64::from(((candidate + 1) as f64 / next_double) as i32);
            if next >= 0 && next < buckets {
                candidate = next;
            } else {
                return candidate as u32;
            }
        }
    }
}

impl Sharder for Jump {
    fn shard_count(&self) -> usize {
        self.n as usize
    }

    #[inline]
    fn shard_for_hash(&self, hash: u64) -> ShardId {
        ShardId::new(Jump::bucket(hash, self.n))
    }
}
