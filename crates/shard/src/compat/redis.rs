//! Redis Cluster key slots.

/// The number of Redis Cluster slots.
pub const REDIS_SLOTS: u16 = 16_384;

const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);

/// The Redis Cluster slot of `key`: `CRC16-XMODEM(k) mod 16384`, where `k`
/// is the hash tag (the bytes between the first `{` and the first `}` after
/// it) when that is not empty, else the whole key.
///
/// # Examples
///
/// ```
/// use weft_shard::compat::redis_slot;
///
/// assert_eq!(redis_slot(b"somekey"), 11058);
/// assert_eq!(redis_slot(b"{user1000}.following"), redis_slot(b"{user1000}.followers"));
/// ```
pub fn redis_slot(key: &[u8]) -> u16 {
    CRC16.checksum(hash_tag(key)) % REDIS_SLOTS
}

fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        let rest = &key[open + 1..];
        if let Some(close) = rest.iter().position(|&b| b == b'}')
            && close > 0
        {
            return &rest[..close];
        }
    }
    key
}
