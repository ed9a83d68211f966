//! Weighted rendezvous (highest random weight) hashing.

use weft_core::{CoreError, ReplicaSharder, ShardId, Sharder, key_hash};

use crate::mix::mix64;
use crate::{Members, ShardError};

/// Rendezvous hashing: each member scores every key and the highest score
/// wins. Weighted with the logarithmic method.
///
/// Every member draws a score from the key hash and its own name hash; with
/// weights, the score is `w / −ln(u)` for the member's uniform draw `u`
/// (Schindelhauer & Schomaker's logarithmic method), so a member's share is
/// exactly proportional to its weight and changing one member's weight moves
/// keys only to or from that member. Removing any member moves only its keys;
/// adding one takes only the keys it now wins.
///
/// Lookups score all members: O(n) with no allocation (about 2 ns per member
/// with equal weights, more with weights because of the logarithm). The
/// ranking gives replica sets for free: [`ReplicaSharder`] returns the top R
/// members, stable under membership change.
///
/// With unequal weights the score uses `f64::ln`, whose last bit may differ
/// between platform maths libraries; two platforms can then disagree on a
/// key whose top two scores differ in the last bit (a chance near 2⁻⁵⁰ per
/// key). With equal weights the comparison is integer-only.
///
/// # Examples
///
/// ```
/// use weft_core::{ReplicaExt, ShardExt, ShardId};
/// use weft_shard::Rendezvous;
///
/// let hrw = Rendezvous::new("a,b=2,c".parse()?);
/// let mut replicas = [ShardId::default(); 2];
/// hrw.replicas_for("user-42", &mut replicas)?;
/// assert_eq!(replicas[0], hrw.shard_for("user-42"));
/// assert_ne!(replicas[0], replicas[1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Rendezvous {
    members: Members,
    seeds: Vec<u64>,
    weights: Vec<f64>,
    uniform: bool,
}

impl Rendezvous {
    /// Rendezvous over `members`.
    pub fn new(members: Members) -> Self {
        let seeds = members.iter().map(|m| key_hash(m.name.as_str())).collect();
        let weights = members.iter().map(|m| m.weight).collect();
        let uniform = members.uniform_weights();
        Rendezvous {
            members,
            seeds,
            weights,
            uniform,
        }
    }

    /// Rendezvous over `n` members named `0`, `1`, …
    ///
    /// # Errors
    ///
    /// [`ShardError::ZeroShards`] if `n` is zero.
    pub fn numbered(n: u32) -> Result<Self, ShardError> {
        if n == 0 {
            return Err(ShardError::ZeroShards);
        }
        Ok(Rendezvous::new(Members::named(
            (0..n).map(|i| i.to_string()),
        )?))
    }

    /// The members.
    pub fn members(&self) -> &Members {
        &self.members
    }

    #[inline]
    fn draw(&self, hash: u64, i: usize) -> u64 {
        mix64(hash ^ self.seeds[i])
    }

    /// The score of member `i` for `hash`, compared lexicographically:
    /// the weighted score (0 with equal weights), then the integer draw,
    /// then the member's name hash, so ties are broken by values alone.
    #[inline]
    fn score(&self, hash: u64, i: usize) -> Score {
        let d = self.draw(hash, i);
        if self.uniform {
            return Score(0.0, d, self.seeds[i]);
        }
        // u in (0, 1]; w / -ln(u) grows with u.
        let u = ((d >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
        Score(self.weights[i] / -u.ln(), d, self.seeds[i])
    }
}

/// An order-preserving score; never NaN (weights are finite and positive).
#[derive(Clone, Copy)]
struct Score(f64, u64, u64);

impl Score {
    #[inline]
    fn beats(self, other: Score) -> bool {
        self.0 > other.0 || (self.0 == other.0 && (self.1, self.2) > (other.1, other.2))
    }
}

impl Sharder for Rendezvous {
    fn shard_count(&self) -> usize {
        self.seeds.len()
    }

    fn shard_for_hash(&self, hash: u64) -> ShardId {
        let mut best = 0;
        let mut best_score = self.score(hash, 0);
        for i in 1..self.seeds.len() {
            let s = self.score(hash, i);
            if s.beats(best_score) {
                best = i;
                best_score = s;
            }
        }
        ShardId::new(best as u32)
    }
}

impl ReplicaSharder for Rendezvous {
    fn replicas_for_hash(&self, hash: u64, out: &mut [ShardId]) -> Result<(), CoreError> {
        if out.is_empty() {
            return Err(CoreError::ZeroReplicas);
        }
        let r = out.len();
        if r > self.seeds.len() {
            return Err(CoreError::NotEnoughShards {
                requested: r,
                available: self.seeds.len(),
            });
        }
        // Insertion into the caller's slice, best first; scores of the kept
        // members are recomputed rather than stored, so nothing allocates.
        let mut kept = 0;
        for i in 0..self.seeds.len() {
            let s = self.score(hash, i);
            let mut at = kept;
            while at > 0 && s.beats(self.score(hash, out[at - 1].index())) {
                at -= 1;
            }
            if at < r {
                let end = kept.min(r - 1);
                out.copy_within(at..end, at + 1);
                out[at] = ShardId::new(i as u32);
                kept = (kept + 1).min(r);
            }
        }
        Ok(())
    }
}
