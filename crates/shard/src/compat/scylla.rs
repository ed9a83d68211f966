//! ScyllaDB shard-aware routing: the shard (core) of a node that owns a
//! token.

use weft_core::{ShardId, Sharder};

use super::cassandra::cassandra_token;
use crate::ShardError;

/// A ScyllaDB node's sharding, as it announces it in its `SUPPORTED`
/// frame (`SCYLLA_NR_SHARDS`, `SCYLLA_SHARDING_IGNORE_MSB`), which
/// shard-aware drivers use to send each request to the core that owns its
/// token.
///
/// The shard of a Murmur3 token `t` ([`cassandra_token`]) is Scylla's
/// `biased-token-round-robin`: bias the token to unsigned
/// (`t + 2⁶³`), shift out the `ignore_msb` top bits, and take the top 64
/// bits of its 128-bit product with the shard count. This is Scylla's
/// `dht::shard_of` and every shard-aware driver's (the Rust driver 1.8,
/// gocql, the Python driver 3.29).
///
/// # Examples
///
/// ```
/// use weft_shard::compat::ScyllaNode;
///
/// let node = ScyllaNode::new(4, ScyllaNode::DEFAULT_IGNORE_MSB)?;
/// // gocql's vectors, also the Rust driver's.
/// assert_eq!(node.shard_of_token(-9219783007514621794), 3);
/// assert_eq!(node.shard_of_token(9222582454147032830), 3);
/// assert!(ScyllaNode::new(0, 12).is_err());
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScyllaNode {
    shards: u16,
    ignore_msb: u8,
}

impl ScyllaNode {
    /// Scylla's default `murmur3_partitioner_ignore_msb_bits`.
    pub const DEFAULT_IGNORE_MSB: u32 = 12;

    /// A node of `shards` shards that ignores the `ignore_msb` top bits of
    /// a biased token.
    ///
    /// # Errors
    ///
    /// [`ShardError::BadSetting`] for a shard count of zero or above 65535
    /// (the protocol's 16 bits), and for `ignore_msb` above 63.
    pub fn new(shards: u32, ignore_msb: u32) -> Result<Self, ShardError> {
        let shards = match u16::try_from(shards) {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(ShardError::BadSetting {
                    what: "Scylla shard count",
                    value: shards.to_string(),
                    must: "is outside 1 to 65535",
                });
            }
        };
        let ignore_msb = match u8::try_from(ignore_msb) {
            Ok(b) if b <= 63 => b,
            _ => {
                return Err(ShardError::BadSetting {
                    what: "Scylla sharding_ignore_msb",
                    value: ignore_msb.to_string(),
                    must: "is above 63",
                });
            }
        };
        Ok(ScyllaNode { shards, ignore_msb })
    }

    /// The shard owning `token` on this node.
    pub fn shard_of_token(&self, token: i64) -> u16 {
        let biased = (token as u64).wrapping_add(1 << 63) << self.ignore_msb;
        ((u128::from(biased) * u128::from(self.shards)) >> 64) as u16
    }

    /// The shard owning a serialised partition key on this node.
    pub fn shard_for_key(&self, key: &[u8]) -> u16 {
        self.shard_of_token(cassandra_token(key))
    }

    /// The shard count.
    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// The top bits of a biased token the node ignores.
    pub fn ignore_msb(&self) -> u8 {
        self.ignore_msb
    }
}

/// The node's shards as a weft [`Sharder`]: weft's key hash read as a
/// token, so the balance and the movement when the shard count changes are
/// Scylla's. For a partition key's own shard, call
/// [`ScyllaNode::shard_for_key`].
impl Sharder for ScyllaNode {
    fn shard_count(&self) -> usize {
        usize::from(self.shards)
    }

    fn shard_for_hash(&self, hash: u64) -> ShardId {
        ShardId::new(u32::from(self.shard_of_token(hash as i64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_of_the_token_range() {
        let node = ScyllaNode::new(7, 0).unwrap();
        assert_eq!(node.shard_of_token(i64::MIN), 0);
        assert_eq!(node.shard_of_token(i64::MAX), 6);
        // ignore_msb 63 keeps only the lowest bit of the biased token.
        let node = ScyllaNode::new(2, 63).unwrap();
        assert_eq!(node.shard_of_token(0), 0);
        assert_eq!(node.shard_of_token(1), 1);
        let one = ScyllaNode::new(1, 12).unwrap();
        assert_eq!(one.shard_of_token(12345), 0);
    }

    #[test]
    fn settings_outside_scyllas_are_refused_by_value() {
        for (shards, msb) in [(0, 12), (65536, 12), (u32::MAX, 12), (4, 64), (4, u32::MAX)] {
            let err = ScyllaNode::new(shards, msb).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(&shards.to_string()) || text.contains(&msb.to_string()),
                "{text}"
            );
        }
        assert!(ScyllaNode::new(65535, 63).is_ok());
    }
}
