//! Integer mixing shared by the algorithms. Pinned: golden vectors depend on
//! these constants.

pub(crate) use weft_core::mix::{GAMMA, mix64};

/// The odd constant of [`draw`], offset by the stream.
pub(crate) const DRAW_FACTOR: u64 = 0xa076_1d64_78bd_642f;

/// The `stream`-th pseudo-random word derived from `hash`: the folded
/// 128-bit product ("mum", as in wyhash) of the hash, offset by a
/// per-stream SplitMix64 constant, and a fixed odd constant. One multiply;
/// every output bit depends on every input bit.
#[inline]
pub(crate) fn draw(hash: u64, stream: u64) -> u64 {
    let p = u128::from(hash ^ GAMMA.wrapping_mul(stream)) * u128::from(DRAW_FACTOR ^ stream);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Maps a uniform 64-bit word to `0..n` by multiply-shift (Lemire): no
/// division, bias below n / 2⁶⁴.
#[inline]
pub(crate) fn below(word: u64, n: u64) -> u64 {
    ((u128::from(word) * u128::from(n)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_per_stream_and_spread_over_all_bits() {
        let words: Vec<u64> = (1..=64).map(|s| draw(12345, s)).collect();
        let mut unique = words.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 64);
        // Every output bit is set in some draw and clear in another.
        let ones = words.iter().fold(0u64, |a, w| a | w);
        let zeros = words.iter().fold(0u64, |a, w| a | !w);
        assert_eq!((ones, zeros), (u64::MAX, u64::MAX));
    }

    #[test]
    fn below_stays_in_range() {
        for n in [1u64, 2, 3, 1000, u64::from(u32::MAX)] {
            assert!(below(u64::MAX, n) < n);
            assert_eq!(below(0, n), 0);
        }
    }
}
