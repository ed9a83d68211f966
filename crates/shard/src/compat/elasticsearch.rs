//! Elasticsearch document routing.

use crate::ShardError;

/// MurmurHash3 x86-32 with `seed`.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for b in &mut blocks {
        let mut k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    let mut k = 0u32;
    for (i, &b) in tail.iter().enumerate() {
        k |= u32::from(b) << (8 * i);
    }
    if !tail.is_empty() {
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Elasticsearch's `Murmur3HashFunction.hash(String)`: MurmurHash3 x86-32,
/// seed 0, over the string's UTF-16 code units, each as two little-endian
/// bytes. Returned as Java's signed `int`.
///
/// # Examples
///
/// ```
/// assert_eq!(weft_shard::compat::routing_hash("hello") as u32, 0xd7c31989);
/// ```
pub fn routing_hash(routing: &str) -> i32 {
    let bytes: Vec<u8> = routing.encode_utf16().flat_map(u16::to_le_bytes).collect();
    murmur3_x86_32(&bytes, 0) as i32
}

/// An index's routing: which shard a document goes to.
///
/// `shard = floorMod(hash(routing) + offset, routing_shards) / routing_factor`
/// with `routing_factor = routing_shards / shards`, where `routing` is the
/// document's `_routing` or else its `_id`, and `offset =
/// floorMod(hash(_id), routing_partition_size)` only when
/// `index.routing_partition_size` is above 1.
///
/// # Examples
///
/// ```
/// use weft_shard::compat::Elasticsearch;
///
/// // A 5-shard index created by Elasticsearch 7.0 or later.
/// let index = Elasticsearch::new(5)?;
/// assert_eq!(index.routing_shards(), 640);
/// assert_eq!(index.shard("hello"), 4);
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elasticsearch {
    shards: u32,
    routing_shards: u32,
    partition_size: u32,
}

impl Elasticsearch {
    /// An index of `shards` primary shards with the default
    /// `number_of_routing_shards` of Elasticsearch 7.0 and later:
    /// `shards · 2^max(1, 10 − ⌈log₂ shards⌉)` (640 for 5 shards, 1024 for
    /// 1, 1200 for 600).
    ///
    /// # Errors
    ///
    /// [`ShardError::ZeroShards`] if `shards` is zero.
    pub fn new(shards: u32) -> Result<Self, ShardError> {
        if shards == 0 {
            return Err(ShardError::ZeroShards);
        }
        let log2_shards = 32 - (shards - 1).leading_zeros();
        let splits = 10u32.saturating_sub(log2_shards).max(1);
        let routing = u64::from(shards) << splits;
        let routing = u32::try_from(routing).map_err(|_| ShardError::TooManyShards(routing))?;
        Elasticsearch::with_routing_shards(shards, routing)
    }

    /// An index with an explicit `number_of_routing_shards` (for indices
    /// created before 7.0 it equals `shards`).
    ///
    /// # Errors
    ///
    /// [`ShardError::ZeroShards`] if `shards` is zero, and
    /// [`ShardError::RoutingShards`] if `routing_shards` is not a multiple of
    /// `shards`.
    pub fn with_routing_shards(shards: u32, routing_shards: u32) -> Result<Self, ShardError> {
        if shards == 0 {
            return Err(ShardError::ZeroShards);
        }
        if routing_shards == 0 || !routing_shards.is_multiple_of(shards) {
            return Err(ShardError::RoutingShards {
                routing_shards,
                shards,
            });
        }
        Ok(Elasticsearch {
            shards,
            routing_shards,
            partition_size: 1,
        })
    }

    /// Sets `index.routing_partition_size` (1, the default, disables the
    /// partition offset).
    ///
    /// # Errors
    ///
    /// [`ShardError::PartitionSize`] if `size` is zero, or above 1 and
    /// not below the shard count (Elasticsearch refuses such an index: the
    /// partition offset would wrap onto the same shards).
    pub fn with_partition_size(mut self, size: u32) -> Result<Self, ShardError> {
        if size == 0 || (size > 1 && size >= self.shards) {
            return Err(ShardError::PartitionSize {
                size,
                shards: self.shards,
            });
        }
        self.partition_size = size;
        Ok(self)
    }

    /// `number_of_routing_shards`.
    pub fn routing_shards(&self) -> u32 {
        self.routing_shards
    }

    /// The shard of a document routed by `routing` (its `_routing`, or its
    /// `_id` when it has none), without a partition offset.
    pub fn shard(&self, routing: &str) -> u32 {
        self.shard_with_offset(routing, 0)
    }

    /// The shard of a document with custom `routing` and `id`, applying the
    /// partition offset when `routing_partition_size` is above 1.
    pub fn shard_for_document(&self, routing: Option<&str>, id: &str) -> u32 {
        let offset = if self.partition_size > 1 {
            routing_hash(id).rem_euclid(self.partition_size as i32)
        } else {
            0
        };
        self.shard_with_offset(routing.unwrap_or(id), offset)
    }

    fn shard_with_offset(&self, routing: &str, offset: i32) -> u32 {
        let hash = routing_hash(routing).wrapping_add(offset);
        let factor = self.routing_shards / self.shards;
        (i64::from(hash).rem_euclid(i64::from(self.routing_shards)) as u32) / factor
    }
}
