//! Integer mixing shared by the algorithms. Pinned: golden vectors depend on
//! these constants.

/// The SplitMix64 increment (2⁶⁴ / φ, odd).
pub(crate) const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 output function: a bijective 64-bit finaliser.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `stream`-th pseudo-random word derived from `hash`: the folded
/// 128-bit product ("mum", as in wyhash) of the hash, offset by a
/// per-stream SplitMix64 constant, and a fixed odd constant. One multiply;
/// every output bit depends on every input bit.
#[inline]
pub(crate) fn draw(hash: u64, stream: u64) -> u64 {
    let p = u128::from(hash ^ GAMMA.wrapping_mul(stream))
        * u128::from(0xa076_1d64_78bd_642f_u64 ^ stream);
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
    fn mix64_matches_splitmix64_reference_outputs() {
        // SplitMix64 seeded with 0: the first outputs of the reference
        // generator are mix64(GAMMA), mix64(2·GAMMA), ...
        assert_eq!(mix64(GAMMA), 0xe220_a839_7b1d_cdaf);
        assert_eq!(mix64(GAMMA.wrapping_mul(2)), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(mix64(GAMMA.wrapping_mul(3)), 0x06c4_5d18_8009_454f);
    }

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
