//! Balance and movement: how evenly a function spreads keys, and how many
//! move when the membership changes.

use serde::Serialize;

/// How evenly keys spread over shards.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Balance {
    /// Number of shards.
    pub shards: usize,
    /// Number of keys counted.
    pub keys: u64,
    /// Largest shard ÷ mean (1.0 is perfect).
    pub max_over_mean: f64,
    /// Coefficient of variation of the shard sizes (standard deviation ÷
    /// mean).
    pub cv: f64,
    /// `cv` ÷ the CV that uniform random placement of the same keys would
    /// show, `√((n−1)/K)`: about 1.0 means as good as random, which is the
    /// best a hash can do; 3.0 means three times as uneven.
    pub cv_over_random: f64,
}

/// The balance of per-shard key counts.
///
/// # Examples
///
/// ```
/// let b = weft_shard::analysis::balance(&[100, 100, 100, 100]);
/// assert_eq!(b.max_over_mean, 1.0);
/// assert_eq!(b.cv, 0.0);
/// ```
pub fn balance(counts: &[u64]) -> Balance {
    let n = counts.len();
    let keys: u64 = counts.iter().sum();
    if n == 0 || keys == 0 {
        return Balance {
            shards: n,
            keys,
            max_over_mean: 0.0,
            cv: 0.0,
            cv_over_random: 0.0,
        };
    }
    let mean = keys as f64 / n as f64;
    let var = counts
        .iter()
        .map(|&c| (c as f64 - mean).powi(2))
        .sum::<f64>()
        / n as f64;
    let cv = var.sqrt() / mean;
    let random = ((n as f64 - 1.0) / keys as f64).sqrt();
    Balance {
        shards: n,
        keys,
        max_over_mean: counts.iter().copied().max().unwrap_or(0) as f64 / mean,
        cv,
        cv_over_random: if random > 0.0 { cv / random } else { 0.0 },
    }
}

/// A membership change whose movement is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// A member joined; `ideal_share` is the share it should get (`1/(n+1)`
    /// with equal weights).
    Added {
        /// The joining member's label (as the `after` function reports it).
        label: u32,
        /// The share of keys it should own.
        ideal_share: f64,
    },
    /// A member left; its share before the change is what should move.
    Removed {
        /// The leaving member's label (as the `before` function reports it).
        label: u32,
    },
}

/// How many keys moved on a membership change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Movement {
    /// Keys sampled.
    pub keys: u64,
    /// Keys whose owner changed.
    pub moved: u64,
    /// `moved ÷ keys`.
    pub fraction: f64,
    /// The fraction that must move at least: the new member's share, or the
    /// removed member's share before the change.
    pub ideal: f64,
    /// `fraction ÷ ideal`: 1.0 is minimal movement.
    pub ratio: f64,
    /// Moves between two members that were there before and after (neither
    /// to the new member nor from the removed one): needless work.
    pub stray: u64,
}

/// Measures movement over `keys` (key hashes) between two placements that
/// label members alike.
///
/// # Examples
///
/// ```
/// use weft_core::Sharder;
/// use weft_shard::analysis::{movement, Change};
/// use weft_shard::{LevelJump, Modulo};
///
/// let keys: Vec<u64> = (0..10_000u64).map(|i| weft_core::key_hash(&i)).collect();
/// let (ten, eleven) = (LevelJump::new(10)?, LevelJump::new(11)?);
/// let m = movement(&keys, |h| ten.shard_for_hash(h).get(), |h| eleven.shard_for_hash(h).get(),
///     Change::Added { label: 10, ideal_share: 1.0 / 11.0 });
/// assert_eq!(m.stray, 0);
/// assert!((m.ratio - 1.0).abs() < 0.1);
///
/// let (m10, m11) = (Modulo::new(10)?, Modulo::new(11)?);
/// let m = movement(&keys, |h| m10.shard_for_hash(h).get(), |h| m11.shard_for_hash(h).get(),
///     Change::Added { label: 10, ideal_share: 1.0 / 11.0 });
/// assert!(m.ratio > 9.0); // modulo moves nearly everything
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
pub fn movement(
    keys: &[u64],
    before: impl Fn(u64) -> u32,
    after: impl Fn(u64) -> u32,
    change: Change,
) -> Movement {
    let mut moved = 0u64;
    let mut stray = 0u64;
    let mut removed_owned = 0u64;
    for &h in keys {
        let (b, a) = (before(h), after(h));
        if matches!(change, Change::Removed { label } if b == label) {
            removed_owned += 1;
        }
        if a != b {
            moved += 1;
            let expected = match change {
                Change::Added { label, .. } => a == label,
                Change::Removed { label } => b == label,
            };
            if !expected {
                stray += 1;
            }
        }
    }
    let n = keys.len().max(1) as f64;
    let ideal = match change {
        Change::Added { ideal_share, .. } => ideal_share,
        Change::Removed { .. } => removed_owned as f64 / n,
    };
    let fraction = moved as f64 / n;
    Movement {
        keys: keys.len() as u64,
        moved,
        fraction,
        ideal,
        ratio: if ideal > 0.0 { fraction / ideal } else { 0.0 },
        stray,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_reports_skew() {
        let b = balance(&[150, 50]);
        assert_eq!(b.max_over_mean, 1.5);
        assert!((b.cv - 0.5).abs() < 1e-12);
        // Random placement of 200 keys over 2 shards has CV √(1/200).
        assert!((b.cv_over_random - 0.5 / (1.0f64 / 200.0).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn movement_counts_stray_moves() {
        let keys = [1u64, 2, 3, 4];
        // Key 1 moves to the new member 2; key 4 moves between survivors
        // 0 -> 1: stray.
        let m = movement(
            &keys,
            |h| (h % 2) as u32,
            |h| match h {
                1 => 2,
                4 => 1,
                _ => (h % 2) as u32,
            },
            Change::Added {
                label: 2,
                ideal_share: 1.0 / 3.0,
            },
        );
        assert_eq!((m.moved, m.stray), (2, 1));
    }
}
