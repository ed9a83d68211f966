//! Key hashing: stable key bytes to a `u64`, through one versioned default.

use crate::key::ShardKey;

/// Maps key bytes to a 64-bit hash.
///
/// # Implementing KeyHasher
///
/// The hash must be a pure function of the bytes: the same on every
/// platform, in every process and in every release of the implementation.
/// A hasher whose output is used for placement is part of the data's
/// address; changing it moves keys.
pub trait KeyHasher {
    /// Hashes `bytes`.
    fn hash_bytes(&self, bytes: &[u8]) -> u64;

    /// Hashes a key's stable bytes (see [`ShardKey`]).
    fn hash_key<K: ShardKey + ?Sized>(&self, key: &K) -> u64
    where
        Self: Sized,
    {
        key.with_key_bytes(|bytes| self.hash_bytes(bytes))
    }
}

impl<H: KeyHasher + ?Sized> KeyHasher for &H {
    fn hash_bytes(&self, bytes: &[u8]) -> u64 {
        (**self).hash_bytes(bytes)
    }
}

impl<H: KeyHasher + ?Sized> KeyHasher for Box<H> {
    fn hash_bytes(&self, bytes: &[u8]) -> u64 {
        (**self).hash_bytes(bytes)
    }
}

impl<H: KeyHasher + ?Sized> KeyHasher for std::sync::Arc<H> {
    fn hash_bytes(&self, bytes: &[u8]) -> u64 {
        (**self).hash_bytes(bytes)
    }
}

/// The default key hash, version 1: XXH3-64 with seed 0 over the key's
/// stable bytes. Fixed forever.
///
/// Every pattern in weft hashes keys through this one function unless told
/// otherwise, so two processes built from any two releases route a key
/// alike. A later default, if one is ever needed, gets a new name
/// (`KeyHashV2`); this one keeps its output. The test
/// `golden_vectors_pin_key_hash_v1` pins it.
///
/// # Why XXH3-64
///
/// - It is specified: the algorithm has been frozen since xxHash 0.8.0
///   (2020), with a reference implementation and published test vectors, and
///   independent implementations in most languages, so a non-Rust service
///   can route alike.
/// - It is fast on the short keys sharding sees (a few nanoseconds for 16
///   bytes; see `docs/keys.md`) and passes SMHasher, so jump-style functions
///   that consume the hash bits get uniform input.
/// - Seed 0 because placement needs agreement, not secrecy: a keyed hash
///   (SipHash with a random key) would make every process disagree. Keys an
///   attacker controls can be aimed at one shard with any unkeyed hash;
///   bounded-load assignment, not the hash, is the defence against hot
///   shards.
///
/// The alternatives lost on one of these: SipHash is slower and only useful
/// keyed; FNV-1a mixes short keys poorly; MurmurHash3 is slower and has no
/// 64-bit variant of its own; wyhash has changed its output between
/// versions.
///
/// # Examples
///
/// ```
/// use weft_core::{KeyHashV1, KeyHasher};
///
/// assert_eq!(KeyHashV1.hash_bytes(b""), 0x2d06_8005_38d3_94c2);
/// assert_eq!(KeyHashV1.hash_key("user-42"), KeyHashV1.hash_bytes(b"user-42"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct KeyHashV1;

impl KeyHashV1 {
    /// The name this hash is recorded under, e.g. next to a persisted
    /// member list.
    pub const NAME: &'static str = "weft-key-hash-v1:xxh3-64:seed-0";
}

impl KeyHasher for KeyHashV1 {
    #[inline]
    fn hash_bytes(&self, bytes: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64(bytes)
    }
}

/// The hasher weft uses when none is chosen: [`KeyHashV1`].
pub type DefaultKeyHasher = KeyHashV1;

/// Hashes a key through the default hasher, the one path every weft pattern
/// uses.
///
/// # Examples
///
/// ```
/// use weft_core::key_hash;
///
/// // Composite keys are length-delimited, so these differ.
/// assert_ne!(key_hash(&("ab", "c")), key_hash(&("a", "bc")));
/// ```
#[inline]
pub fn key_hash<K: ShardKey + ?Sized>(key: &K) -> u64 {
    KeyHashV1.hash_key(key)
}
