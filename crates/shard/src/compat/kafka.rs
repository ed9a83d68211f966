//! Kafka producers' key partitioners: the Java client, librdkafka and Sarama.

use super::check_partitions;
use crate::ShardError;

/// Kafka's `Utils.murmur2`: MurmurHash2, 32 bits, seed `0x9747b28c`.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The Java client's partition for a keyed record:
/// `(murmur2(key) & 0x7fffffff) % partitions`.
///
/// The mask is not `abs`: `abs(i32::MIN)` would be negative.
///
/// # Errors
///
/// [`ShardError::ZeroShards`] if `partitions` is zero.
///
/// # Examples
///
/// ```
/// // From Kafka's UtilsTest.testMurmur2: murmur2("21") = -973932308.
/// assert_eq!(weft_shard::compat::kafka_partition(b"21", 6)?, 0);
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
pub fn kafka_partition(key: &[u8], partitions: u32) -> Result<u32, ShardError> {
    check_partitions(partitions)?;
    Ok((murmur2(key) as u32 & 0x7fff_ffff) % partitions)
}

/// librdkafka's default partitioner, `consistent_random`:
/// `crc32(key) % partitions`, or `None` (librdkafka picks a random
/// partition) when the key is empty or absent.
///
/// # Errors
///
/// [`ShardError::ZeroShards`] if `partitions` is zero.
pub fn librdkafka_consistent_random(
    key: Option<&[u8]>,
    partitions: u32,
) -> Result<Option<u32>, ShardError> {
    check_partitions(partitions)?;
    Ok(key
        .filter(|k| !k.is_empty())
        .map(|k| crc32fast::hash(k) % partitions))
}

/// librdkafka's `murmur2_random`: the Java client's partition, `None`
/// (random) only for an absent key; an empty key is hashed.
///
/// # Errors
///
/// [`ShardError::ZeroShards`] if `partitions` is zero.
pub fn librdkafka_murmur2_random(
    key: Option<&[u8]>,
    partitions: u32,
) -> Result<Option<u32>, ShardError> {
    check_partitions(partitions)?;
    key.map(|k| kafka_partition(k, partitions)).transpose()
}

/// FNV-1a, 32 bits.
pub fn fnv1a_32(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Sarama's default `NewHashPartitioner`: `p = int32(fnv1a(key)) % n`,
/// negated when negative (Go's `%` truncates toward zero).
///
/// # Errors
///
/// [`ShardError::ZeroShards`] if `partitions` is zero.
pub fn sarama_hash(key: &[u8], partitions: u32) -> Result<u32, ShardError> {
    check_partitions(partitions)?;
    // Go computes in int32; partitions above i32::MAX do not exist there.
    let n = i64::from(partitions);
    let p = i64::from(fnv1a_32(key) as i32) % n;
    Ok(p.unsigned_abs() as u32)
}

/// Sarama's `NewReferenceHashPartitioner`: FNV-1a with the Java client's
/// masking, `(int32(h) & 0x7fffffff) % n`. Not the Java client's hash.
///
/// # Errors
///
/// [`ShardError::ZeroShards`] if `partitions` is zero.
pub fn sarama_reference_hash(key: &[u8], partitions: u32) -> Result<u32, ShardError> {
    check_partitions(partitions)?;
    Ok((fnv1a_32(key) & 0x7fff_ffff) % partitions)
}
