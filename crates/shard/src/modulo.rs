//! `hash mod n`: uniform, but not consistent.

use weft_core::{ShardId, Sharder};

use crate::ShardError;

/// Modulo placement: shard = `hash mod n`.
///
/// Balanced and cheap, but **not consistent**: changing `n` to `n + 1` moves
/// a key unless `hash mod n == hash mod (n + 1)`, which holds for about
/// `1/(n+1)` of keys; so about `n/(n+1)` of all keys move (measured with
/// `weft bench-hash`: 10 → 11 shards moves 90.9 % of keys where the ideal is
/// 9.1 %). Use it only when the shard count never changes, or when a full
/// reshuffle on resize is acceptable; otherwise use [`crate::LevelJump`].
///
/// # Examples
///
/// ```
/// use weft_core::Sharder;
/// use weft_shard::Modulo;
///
/// let shards = Modulo::new(10)?;
/// assert_eq!(shards.shard_for_hash(1234).get(), 4);
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modulo {
    n: u32,
}

impl Modulo {
    /// Modulo over `n` shards.
    ///
    /// # Errors
    ///
    /// [`ShardError::ZeroShards`] if `n` is zero.
    pub fn new(n: u32) -> Result<Self, ShardError> {
        if n == 0 {
            return Err(ShardError::ZeroShards);
        }
        Ok(Modulo { n })
    }
}

impl Sharder for Modulo {
    fn shard_count(&self) -> usize {
        self.n as usize
    }

    #[inline]
    fn shard_for_hash(&self, hash: u64) -> ShardId {
        ShardId::new((hash % u64::from(self.n)) as u32)
    }
}
