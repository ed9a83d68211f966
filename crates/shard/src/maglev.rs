//! Maglev hashing (Eisenbud et al., NSDI 2016) with weights.

use weft_core::{ShardId, Sharder, key_hash};

use crate::mix::{below, mix64};
use crate::{Members, ShardError};

/// Maglev: a lookup table of prime size M filled from each member's
/// permutation of the slots; a key's shard is one table read.
///
/// Each member walks its own permutation (`offset + j·skip mod M`, both from
/// its name hash) and claims the next free slot, in turns, until the table
/// is full; a member of weight `w` takes `w / max weight` turns per round.
/// Members take turns in the order of their name hashes, so the table
/// depends on names and weights only. Balance is within about 1 % when
/// `M > 100 · n`. Disruption is near-minimal: when a member leaves, its slots
/// go to others and a small share of other slots also change hands (the
/// price of a full, balanced table; measured by `weft bench-hash`).
///
/// Keep M fixed across membership changes: a table size that follows `n`
/// reshuffles every key.
///
/// # Examples
///
/// ```
/// use weft_core::ShardExt;
/// use weft_shard::Maglev;
///
/// let maglev = Maglev::new("a,b,c".parse()?, Maglev::DEFAULT_TABLE_SIZE)?;
/// assert!(maglev.shard_for("user-42").index() < 3);
/// assert!(Maglev::new("a".parse()?, 65536).is_err()); // not prime
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Maglev {
    members: Members,
    table: Vec<u32>,
}

impl Maglev {
    /// The default table size, 65537 (prime).
    pub const DEFAULT_TABLE_SIZE: u64 = 65_537;
    /// The largest table size (2²⁶, 256 MB of table).
    pub const MAX_TABLE_SIZE: u64 = 1 << 26;

    /// Builds the table of size `table_size` for `members`.
    ///
    /// # Errors
    ///
    /// [`ShardError::TableNotPrime`] if `table_size` is not prime,
    /// [`ShardError::TableTooSmall`] if it is below the member count and
    /// [`ShardError::TableTooLarge`] above
    /// [`MAX_TABLE_SIZE`](Maglev::MAX_TABLE_SIZE).
    pub fn new(members: Members, table_size: u64) -> Result<Self, ShardError> {
        if table_size > Maglev::MAX_TABLE_SIZE {
            return Err(ShardError::TableTooLarge(table_size));
        }
        if !is_prime(table_size) {
            return Err(ShardError::TableNotPrime(table_size));
        }
        if table_size < members.len() as u64 {
            return Err(ShardError::TableTooSmall {
                size: table_size,
                members: members.len(),
            });
        }
        let m = table_size;
        let max_weight = members.iter().map(|x| x.weight).fold(0.0, f64::max);
        // Turn order: by name hash (ties by name), independent of list order.
        let mut order: Vec<(u64, &str, u32)> = members
            .iter()
            .enumerate()
            .map(|(id, x)| (key_hash(x.name.as_str()), x.name.as_str(), id as u32))
            .collect();
        order.sort_unstable();
        struct Walker {
            id: u32,
            pos: u64,
            skip: u64,
            share: f64,
            credit: f64,
        }
        let mut walkers: Vec<Walker> = order
            .iter()
            .map(|&(seed, _, id)| Walker {
                id,
                pos: below(mix64(seed), m),
                skip: below(mix64(seed ^ 0x5bd1_e995_5bd1_e995), m - 1) + 1,
                share: members
                    .get(ShardId::new(id))
                    .map_or(1.0, |x| x.weight / max_weight),
                credit: 0.0,
            })
            .collect();
        const EMPTY: u32 = u32::MAX;
        let mut table = vec![EMPTY; m as usize];
        let mut filled = 0u64;
        'fill: loop {
            for w in walkers.iter_mut() {
                w.credit += w.share;
                while w.credit >= 1.0 {
                    w.credit -= 1.0;
                    // Next free slot along this member's permutation. It
                    // exists: the table is not full, and a permutation
                    // visits every slot.
                    while table[w.pos as usize] != EMPTY {
                        w.pos += w.skip;
                        if w.pos >= m {
                            w.pos -= m;
                        }
                    }
                    table[w.pos as usize] = w.id;
                    filled += 1;
                    if filled == m {
                        break 'fill;
                    }
                }
            }
        }
        Ok(Maglev { members, table })
    }

    /// The members.
    pub fn members(&self) -> &Members {
        &self.members
    }

    /// The table size M.
    pub fn table_size(&self) -> usize {
        self.table.len()
    }
}

impl Sharder for Maglev {
    fn shard_count(&self) -> usize {
        self.members.len()
    }

    #[inline]
    fn shard_for_hash(&self, hash: u64) -> ShardId {
        ShardId::new(self.table[below(hash, self.table.len() as u64) as usize])
    }
}

/// Deterministic primality for `u64` by trial division up to `√n` (table
/// sizes are at most 2³², so at most 65536 divisions, once per build).
pub(crate) fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3u64;
    while d.saturating_mul(d) <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}
