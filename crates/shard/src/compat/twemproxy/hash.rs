//! twemproxy's key hashes (`hash:` in a pool), bit for bit with its
//! `src/hashkit` on x86-64.
//!
//! Several of them read key bytes through C's `char`, which is signed on
//! x86-64: a byte ≥ 0x80 enters them sign-extended (0xff as 0xffff_ffff).
//! That is what a twemproxy built for x86-64 computes, and what these do;
//! a build where `char` is unsigned (ARM Linux) routes such keys
//! differently.

use std::fmt;
use std::str::FromStr;

use crate::ShardError;

/// One of twemproxy's `hash:` functions.
// Variants read as twemproxy spells them (`fnv1a_64` is `Fnv1a_64`).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TwemproxyHash {
    /// `one_at_a_time`: Jenkins' one-at-a-time, bytes sign-extended.
    OneAtATime,
    /// `md5`: the first four bytes of MD5, little-endian (ketama's hash).
    Md5,
    /// `crc16`: the XMODEM table, but the register is never truncated to
    /// 16 bits, so results run past 0xffff (`"apple"` → 3662830516).
    Crc16,
    /// `crc32`: libmemcached's 15-bit CRC-32, `(crc32 >> 16) & 0x7fff`.
    Crc32,
    /// `crc32a`: the full CRC-32 (IEEE).
    Crc32a,
    /// `fnv1_64`: FNV-1 over 64 bits, truncated to 32.
    Fnv1_64,
    /// `fnv1a_64` (twemproxy's default): FNV-1a with the 64-bit offset
    /// basis and prime truncated to 32 bits, computed in 32 bits.
    Fnv1a_64,
    /// `fnv1_32`: FNV-1 over 32 bits.
    Fnv1_32,
    /// `fnv1a_32`: FNV-1a over 32 bits.
    Fnv1a_32,
    /// `hsieh`: Paul Hsieh's SuperFastHash.
    Hsieh,
    /// `murmur`: MurmurHash2 seeded with `0xdeadbeef · length`.
    Murmur,
    /// `jenkins`: Bob Jenkins' lookup3 `hashlittle`, initial value 13.
    Jenkins,
}

impl TwemproxyHash {
    /// Every hash, in twemproxy's documented order.
    pub const ALL: [TwemproxyHash; 12] = [
        TwemproxyHash::OneAtATime,
        TwemproxyHash::Md5,
        TwemproxyHash::Crc16,
        TwemproxyHash::Crc32,
        TwemproxyHash::Crc32a,
        TwemproxyHash::Fnv1_64,
        TwemproxyHash::Fnv1a_64,
        TwemproxyHash::Fnv1_32,
        TwemproxyHash::Fnv1a_32,
        TwemproxyHash::Hsieh,
        TwemproxyHash::Murmur,
        TwemproxyHash::Jenkins,
    ];

    /// The name in a pool's `hash:` line.
    pub fn name(self) -> &'static str {
        match self {
            TwemproxyHash::OneAtATime => "one_at_a_time",
            TwemproxyHash::Md5 => "md5",
            TwemproxyHash::Crc16 => "crc16",
            TwemproxyHash::Crc32 => "crc32",
            TwemproxyHash::Crc32a => "crc32a",
            TwemproxyHash::Fnv1_64 => "fnv1_64",
            TwemproxyHash::Fnv1a_64 => "fnv1a_64",
            TwemproxyHash::Fnv1_32 => "fnv1_32",
            TwemproxyHash::Fnv1a_32 => "fnv1a_32",
            TwemproxyHash::Hsieh => "hsieh",
            TwemproxyHash::Murmur => "murmur",
            TwemproxyHash::Jenkins => "jenkins",
        }
    }

    /// The hash of `key`'s bytes.
    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            TwemproxyHash::OneAtATime => one_at_a_time(key),
            TwemproxyHash::Md5 => super::super::ketama_hash(key),
            TwemproxyHash::Crc16 => crc16(key),
            TwemproxyHash::Crc32 => (crc32fast::hash(key) >> 16) & 0x7fff,
            TwemproxyHash::Crc32a => crc32fast::hash(key),
            TwemproxyHash::Fnv1_64 => fnv1_64(key),
            TwemproxyHash::Fnv1a_64 => fnv1a_64(key),
            TwemproxyHash::Fnv1_32 => fnv1_32(key),
            TwemproxyHash::Fnv1a_32 => fnv1a_32(key),
            TwemproxyHash::Hsieh => hsieh(key),
            TwemproxyHash::Murmur => murmur(key),
            TwemproxyHash::Jenkins => jenkins(key),
        }
    }
}

impl fmt::Display for TwemproxyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Reads a `hash:` name (`fnv1a_64`, `murmur`, …).
impl FromStr for TwemproxyHash {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Self, ShardError> {
        TwemproxyHash::ALL
            .into_iter()
            .find(|h| h.name() == s)
            .ok_or_else(|| ShardError::UnknownScheme {
                what: "twemproxy hash",
                name: s.to_string(),
                known: "one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins",
            })
    }
}

/// A key byte as C's signed `char` widened to 32 bits.
fn signed(b: u8) -> u32 {
    b as i8 as i32 as u32
}

fn one_at_a_time(key: &[u8]) -> u32 {
    let mut v: u32 = 0;
    for &b in key {
        v = v.wrapping_add(signed(b));
        v = v.wrapping_add(v << 10);
        v ^= v >> 6;
    }
    v = v.wrapping_add(v << 3);
    v ^= v >> 11;
    v.wrapping_add(v << 15)
}

/// CRC-16/XMODEM's table (polynomial 0x1021, most significant bit first).
const CRC16_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc & 0xffff;
        i += 1;
    }
    table
};

fn crc16(key: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for &b in key {
        crc = (crc << 8) ^ CRC16_TABLE[(((crc >> 8) ^ signed(b)) & 0xff) as usize];
    }
    crc
}

const FNV_64_INIT: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_64_PRIME: u64 = 0x0000_0100_0000_01b3;
const FNV_32_INIT: u32 = 2_166_136_261;
const FNV_32_PRIME: u32 = 16_777_619;

fn fnv1_64(key: &[u8]) -> u32 {
    let mut h = FNV_64_INIT;
    for &b in key {
        h = h.wrapping_mul(FNV_64_PRIME);
        h ^= b as i8 as i64 as u64;
    }
    h as u32
}

fn fnv1a_64(key: &[u8]) -> u32 {
    let mut h = FNV_64_INIT as u32;
    for &b in key {
        h ^= signed(b);
        h = h.wrapping_mul(FNV_64_PRIME as u32);
    }
    h
}

fn fnv1_32(key: &[u8]) -> u32 {
    let mut h = FNV_32_INIT;
    for &b in key {
        h = h.wrapping_mul(FNV_32_PRIME);
        h ^= signed(b);
    }
    h
}

fn fnv1a_32(key: &[u8]) -> u32 {
    let mut h = FNV_32_INIT;
    for &b in key {
        h ^= signed(b);
        h = h.wrapping_mul(FNV_32_PRIME);
    }
    h
}

fn hsieh(key: &[u8]) -> u32 {
    if key.is_empty() {
        return 0;
    }
    let get16 = |d: &[u8]| u32::from(d[0]) | (u32::from(d[1]) << 8);
    let mut hash: u32 = 0;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        hash = hash.wrapping_add(get16(c));
        let tmp = (get16(&c[2..]) << 11) ^ hash;
        hash = (hash << 16) ^ tmp;
        hash = hash.wrapping_add(hash >> 11);
    }
    let rest = chunks.remainder();
    match rest.len() {
        3 => {
            hash = hash.wrapping_add(get16(rest));
            hash ^= hash << 16;
            hash ^= signed(rest[2]) << 18;
            hash = hash.wrapping_add(hash >> 11);
        }
        2 => {
            hash = hash.wrapping_add(get16(rest));
            hash ^= hash << 11;
            hash = hash.wrapping_add(hash >> 17);
        }
        1 => {
            hash = hash.wrapping_add(u32::from(rest[0]));
            hash ^= hash << 10;
            hash = hash.wrapping_add(hash >> 1);
        }
        _ => {}
    }
    hash ^= hash << 3;
    hash = hash.wrapping_add(hash >> 5);
    hash ^= hash << 4;
    hash = hash.wrapping_add(hash >> 17);
    hash ^= hash << 25;
    hash.wrapping_add(hash >> 6)
}

fn murmur(key: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    // twemproxy passes the length as size_t and keeps its low 32 bits.
    let len = key.len() as u32;
    let mut h = 0xdead_beef_u32.wrapping_mul(len) ^ len;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

fn jenkins(key: &[u8]) -> u32 {
    let init = 0xdead_beef_u32
        .wrapping_add(key.len() as u32)
        .wrapping_add(13);
    let (mut a, mut b, mut c) = (init, init, init);
    let word = |w: &[u8]| {
        let mut x = [0u8; 4];
        x[..w.len()].copy_from_slice(w);
        u32::from_le_bytes(x)
    };
    let mut rest = key;
    while rest.len() > 12 {
        a = a.wrapping_add(word(&rest[0..4]));
        b = b.wrapping_add(word(&rest[4..8]));
        c = c.wrapping_add(word(&rest[8..12]));
        mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    if rest.is_empty() {
        return c;
    }
    a = a.wrapping_add(word(&rest[..rest.len().min(4)]));
    if rest.len() > 4 {
        b = b.wrapping_add(word(&rest[4..rest.len().min(8)]));
    }
    if rest.len() > 8 {
        c = c.wrapping_add(word(&rest[8..]));
    }
    // lookup3's final(a, b, c).
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c.wrapping_sub(b.rotate_left(24))
}

/// lookup3's mix(a, b, c).
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// twemproxy's own vectors (`src/test_all.c`, `test_hash_algorithms`,
    /// the same as libmemcached's `tests/hash_results.h`).
    #[test]
    fn twemproxys_own_test_vectors() {
        let apple = [
            (TwemproxyHash::OneAtATime, 2_297_466_611u32),
            (TwemproxyHash::Md5, 3_195_025_439),
            (TwemproxyHash::Crc16, 3_662_830_516),
            (TwemproxyHash::Crc32, 10_542),
            (TwemproxyHash::Crc32a, 2_838_417_488),
            (TwemproxyHash::Fnv1_32, 67_176_023),
            (TwemproxyHash::Fnv1a_32, 280_767_167),
            (TwemproxyHash::Fnv1_64, 473_199_127),
            (TwemproxyHash::Fnv1a_64, 1_488_911_807),
            (TwemproxyHash::Hsieh, 3_738_850_110),
            (TwemproxyHash::Jenkins, 1_442_444_624),
            (TwemproxyHash::Murmur, 4_142_305_122),
        ];
        for (h, want) in apple {
            assert_eq!(h.hash(b"apple"), want, "{h}");
        }
    }

    #[test]
    fn names_parse_back_and_unknown_names_are_refused() {
        for h in TwemproxyHash::ALL {
            assert_eq!(h.name().parse::<TwemproxyHash>().unwrap(), h);
        }
        let err = "fnv".parse::<TwemproxyHash>().unwrap_err();
        assert!(err.to_string().contains("fnv1a_64"), "{err}");
    }

    #[test]
    fn every_hash_takes_every_length_and_byte() {
        // Lengths around each function's block size, all byte values.
        let key: Vec<u8> = (0..=255u8).collect();
        for h in TwemproxyHash::ALL {
            for len in 0..40 {
                let _ = h.hash(&key[..len]);
            }
            let _ = h.hash(&key);
        }
        assert_eq!(TwemproxyHash::Hsieh.hash(b""), 0);
    }
}
