//! Golden vectors for key bytes and the default key hash.
//!
//! These constants are the routing contract: every release must reproduce
//! them. The hashes were computed with the reference xxHash C library
//! (XXH3_64bits, seed 0) over the byte encoding documented in
//! `weft_core::ShardKey`, not by this crate. If a change makes this test
//! fail, the change moves keys between shards: it is a breaking change, and
//! the answer is a new hasher version, never new constants here.

use weft_core::{CompositeKey, KeyBuf, KeyHashV1, KeyHasher, ShardKey, key_hash};

/// Deterministic filler bytes: byte i is (31·i + 7) mod 256.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + 7) % 256) as u8).collect()
}

fn encoded_len<K: ShardKey + ?Sized>(key: &K) -> usize {
    let mut buf = KeyBuf::new();
    key.write_key(&mut buf);
    buf.len()
}

/// (name, encoded length, key hash), checked for one key.
fn check<K: ShardKey + ?Sized>(name: &str, key: &K, len: usize, expected: u64) {
    assert_eq!(encoded_len(key), len, "{name}: encoded length");
    let got = key_hash(key);
    assert_eq!(
        got, expected,
        "{name}: key_hash is {got:#018x}, the pinned value is {expected:#018x}"
    );
    assert_eq!(KeyHashV1.hash_key(key), expected, "{name}: KeyHashV1");
}

#[test]
fn golden_vectors_pin_key_hash_v1() {
    check("empty", "", 0, 0x2d06800538d394c2);
    check("one_byte", "a", 1, 0xe6c632b61e964e1f);
    check("zero_byte", &[0u8; 1], 1, 0xc44bdff4074eecdb);
    check("three_bytes", "abc", 3, 0x78af5f94892f3950);
    check("eight_bytes", &pattern(8), 8, 0xdec6a9a43575982e);
    check("sixteen_bytes", "0123456789abcdef", 16, 0x64439946d8fa212d);
    check("seventeen_bytes", &pattern(17), 17, 0x208bde5ee2bed407);
    check("bytes_128", &pattern(128), 128, 0xf92b70eaa21a6288);
    check("bytes_129", &pattern(129), 129, 0xf8f76713f2bb60fa);
    check("bytes_240", &pattern(240), 240, 0xccc7375172c41f03);
    check("bytes_241", &pattern(241), 241, 0x0b3b630948ce4a00);
    check("one_kib", &pattern(1024), 1024, 0x23bc880ebf0d29c6);
    check("ascii_word", "user-42", 7, 0x50fe4b21cf7b09cd);
    check("latin1_accents", "héllo wörld", 13, 0xca5aeb8da2d76864);
    check("cjk", "日本語キー", 15, 0x6a8d2ce520757e2e);
    check("emoji", "🦀", 4, 0x38256e7e50056328);
    check("u8_zero", &0u8, 1, 0xc44bdff4074eecdb);
    check("u32_42", &42u32, 4, 0x2132b64814a1ad5d);
    check("u64_max", &u64::MAX, 8, 0x5111c7e47d784413);
    check(
        "u64_pattern",
        &0x0123_4567_89ab_cdefu64,
        8,
        0xb78df414284277a6,
    );
    check("i64_minus_one", &-1i64, 8, 0x5111c7e47d784413);
    check("i128_min", &i128::MIN, 16, 0x2d3009acd6987c6f);
    check("tuple_ab_c", &("ab", "c"), 5, 0xc6041cee400b7013);
    check("tuple_a_bc", &("a", "bc"), 5, 0x6eeea4010a22a899);
    check("tuple_tenant", &("tenant-7", 42u64), 18, 0x953a481e9af20241);
    check("tuple_empty_parts", &("", ""), 2, 0x3325230e1f285505);
    check("tuple_nested", &(("x", "y"), 7u16), 8, 0x39beaa8dd5cb2679);
    check(
        "tuple_long_part",
        &(pattern(300), 1u8),
        304,
        0x2a0bfe64ea8d9d33,
    );
}

#[test]
fn every_string_and_byte_form_of_a_key_hashes_alike() {
    let expected = 0x50fe4b21cf7b09cd;
    let s = String::from("user-42");
    let v: Vec<u8> = b"user-42".to_vec();
    assert_eq!(key_hash(&s), expected);
    assert_eq!(key_hash(&&s), expected);
    assert_eq!(key_hash(&v), expected);
    assert_eq!(key_hash(&v[..]), expected);
    assert_eq!(key_hash(b"user-42"), expected);
    assert_eq!(key_hash(&Box::new("user-42")), expected);
    assert_eq!(key_hash(&std::sync::Arc::<str>::from("user-42")), expected);
}

#[test]
fn a_composite_key_built_at_run_time_hashes_like_its_tuple() {
    let key = CompositeKey::builder()
        .part("tenant-7")
        .part(&42u64)
        .build()
        .unwrap();
    assert_eq!(key_hash(&key), 0x953a481e9af20241);
}
