//! Cassandra's `Murmur3Partitioner` tokens and token-ring ownership.

use weft_core::{ShardId, Sharder};

use crate::ShardError;

const C1: u64 = 0x87c3_7b91_1142_53d5;
const C2: u64 = 0x4cf5_ad43_2745_937f;

fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// MurmurHash3 x64-128 (seed 0) as Cassandra computes it: tail bytes are
/// sign-extended before they are mixed (`(long) key.get(i) << s` on a Java
/// `byte`), so keys whose last `len % 16` bytes include one ≥ 0x80 hash
/// differently from canonical MurmurHash3. Returns `(h1, h2)`.
pub fn murmur3_x64_128_cassandra(data: &[u8]) -> (u64, u64) {
    let (mut h1, mut h2) = (0u64, 0u64);
    let mut blocks = data.chunks_exact(16);
    for b in &mut blocks {
        let mut k1 = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
        let mut k2 = u64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    // Java: (long) byte sign-extends.
    let signed = |i: usize| tail[i] as i8 as i64 as u64;
    let (mut k1, mut k2) = (0u64, 0u64);
    for i in (8..tail.len()).rev() {
        k2 ^= signed(i) << ((i - 8) * 8);
    }
    if tail.len() > 8 {
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    }
    for i in (0..tail.len().min(8)).rev() {
        k1 ^= signed(i) << (i * 8);
    }
    if !tail.is_empty() {
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    }
    h1 ^= data.len() as u64;
    h2 ^= data.len() as u64;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1, h2)
}

/// The `Murmur3Partitioner` token of a serialised partition key: `h1` as a
/// signed 64-bit value, with `i64::MIN` mapped to `i64::MAX` (Cassandra
/// reserves the minimum token).
///
/// # Examples
///
/// ```
/// assert_eq!(weft_shard::compat::cassandra_token(b"123"), -7468325962851647638);
/// ```
pub fn cassandra_token(key: &[u8]) -> i64 {
    let token = murmur3_x64_128_cassandra(key).0 as i64;
    if token == i64::MIN { i64::MAX } else { token }
}

/// A Cassandra token ring: each node owns the range that ends at each of
/// its tokens, so a key belongs to the node with the first token at or
/// above the key's token, wrapping to the lowest.
///
/// # Examples
///
/// ```
/// use weft_shard::compat::TokenRing;
///
/// let ring = TokenRing::new(vec![
///     (-6_000_000_000_000_000_000, "node-a".into()),
///     (0, "node-b".into()),
///     (6_000_000_000_000_000_000, "node-c".into()),
/// ])?;
/// assert_eq!(ring.node_for_token(-1), "node-b");
/// assert_eq!(ring.node_for_token(7_000_000_000_000_000_000), "node-a"); // wraps
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TokenRing {
    tokens: Vec<i64>,
    owners: Vec<u32>,
    nodes: Vec<String>,
}

impl TokenRing {
    /// A ring from `(token, node)` pairs; a node may hold several tokens.
    ///
    /// # Errors
    ///
    /// [`ShardError::EmptyMembers`] with no tokens,
    /// [`ShardError::EmptyMemberName`] for an empty node name, and
    /// [`ShardError::DuplicateMember`] (naming the token) when two nodes
    /// claim one token.
    pub fn new(tokens: Vec<(i64, String)>) -> Result<Self, ShardError> {
        if tokens.is_empty() {
            return Err(ShardError::EmptyMembers);
        }
        let mut nodes: Vec<String> = Vec::new();
        let mut entries: Vec<(i64, u32)> = Vec::with_capacity(tokens.len());
        for (token, node) in tokens {
            if node.is_empty() {
                return Err(ShardError::EmptyMemberName);
            }
            let id = match nodes.iter().position(|n| *n == node) {
                Some(i) => i,
                None => {
                    nodes.push(node);
                    nodes.len() - 1
                }
            };
            entries.push((token, id as u32));
        }
        entries.sort_unstable();
        if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(ShardError::DuplicateMember(format!("token {}", w[0].0)));
        }
        Ok(TokenRing {
            tokens: entries.iter().map(|e| e.0).collect(),
            owners: entries.iter().map(|e| e.1).collect(),
            nodes,
        })
    }

    /// The node id owning `token` (ids in order of first appearance).
    pub fn owner_of_token(&self, token: i64) -> ShardId {
        ShardId::new(self.owners[crate::ring::successor(&self.tokens, token)])
    }

    /// The node owning `token`.
    pub fn node_for_token(&self, token: i64) -> &str {
        &self.nodes[self.owner_of_token(token).index()]
    }

    /// The node owning a serialised partition key.
    pub fn node_for_key(&self, key: &[u8]) -> &str {
        self.node_for_token(cassandra_token(key))
    }

    /// Node names, by id.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }
}

/// The token ring as a weft [`Sharder`]: weft's key hash, read as a signed
/// 64-bit token, on the ring's tokens, so a node's share and the movement
/// when nodes change are the ring's. For Cassandra's own placement of a
/// partition key, call [`TokenRing::node_for_key`] with its bytes.
impl Sharder for TokenRing {
    fn shard_count(&self) -> usize {
        self.nodes.len()
    }

    fn shard_for_hash(&self, hash: u64) -> ShardId {
        self.owner_of_token(hash as i64)
    }
}
