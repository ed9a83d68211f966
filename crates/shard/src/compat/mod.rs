//! Partitioners that reproduce real systems byte for byte.
//!
//! Each function names the exact variant it matches; clients of the same
//! system often disagree, and these are the classic mismatches:
//!
//! | system | weft function | matches | does **not** match |
//! |---|---|---|---|
//! | Kafka | [`kafka_partition`] | the Java client's default partitioner for keyed records: `(murmur2(key) & 0x7fffffff) % n`, murmur2 seed `0x9747b28c` | librdkafka's default (CRC32), Sarama's default (FNV-1a) |
//! | librdkafka | [`librdkafka_consistent_random`] | librdkafka's default `consistent_random`: `crc32(key) % n`; an empty or absent key gets a random partition (`None` here) | the Java client; librdkafka's `murmur2_random` ([`librdkafka_murmur2_random`], which matches Java and hashes an empty key) |
//! | Sarama (Go) | [`sarama_hash`] | `NewHashPartitioner` (the default): FNV-1a 32, `abs(int32(h) % n)` | Java; [`sarama_reference_hash`] (`NewReferenceHashPartitioner`, same hash, Java's masking) |
//! | Redis Cluster | [`redis_slot`] | `CRC16-XMODEM(key or hash tag) mod 16384`; the tag is the bytes between the first `{` and the next `}`, if not empty | |
//! | libmemcached | [`Ketama`] | weighted ketama (`KETAMA_WEIGHTED`): MD5 key hash, 4 points per MD5 of `host-i` (port omitted when 11211), libmemcached's float rounding of the point count | libketama and spymemcached (other point strings); twemproxy unless `hash: md5` and no server names; unweighted ketama (100 points per server) |
//! | twemproxy | [`Twemproxy`] | nutcracker 0.5.0 on x86-64: `distribution: ketama` and `modula`, all twelve `hash:` functions, `hash_tag`, server names and weights, pool order by name, ejected hosts ([`Twemproxy::without`]) | `distribution: random` (refused: not reproducible); builds where C `char` is unsigned, for keys with bytes ≥ 0x80 under the hashes that read them signed |
//! | HAProxy | [`Haproxy`] | HAProxy 2.6 `hash-type map-based` and `consistent` with `sdbm`, `djb2`, `wt6`, `crc32` and `avalanche`; weights (0–256, divided by their gcd for the map) and ids as HAProxy numbers them; `balance source`'s address XOR ([`Haproxy::server_for_source`]); disabled and failed servers; `backup` servers with and without `option allbackups` | `hash-balance-factor` (depends on live load), `hash-key addr` / `addr-port` (3.0+) |
//! | nginx | [`NginxHash`] | nginx 1.22 `upstream { hash $key; }` (Cache::Memcached's `(crc32 >> 16) & 0x7fff` over weighted servers, rehashing past `down` ones) and `hash $key consistent;` (160 CRC-32 points per weight from `host\0port` as written); `None` where nginx falls back to round robin | an upstream whose server name resolves to several addresses (nginx picks among them by round robin) |
//! | Guava | [`guava_consistent_hash`] | `Hashing.consistentHash(long, int)` | |
//! | Cassandra | [`cassandra_token`], [`TokenRing`] | `Murmur3Partitioner`: MurmurHash3 x64-128 `h1` with Cassandra's sign-extended tail bytes; owner = first token ≥ key token | canonical MurmurHash3 on keys whose tail holds a byte ≥ 0x80 |
//! | ScyllaDB | [`ScyllaNode`] | shard-aware drivers' shard of a Murmur3 token (`biased-token-round-robin`, `SCYLLA_NR_SHARDS`, `SCYLLA_SHARDING_IGNORE_MSB`, default 12): Scylla's `dht::shard_of`, the Rust driver 1.8, gocql, the Python driver 3.29 | nodes on another partitioner or sharding algorithm than `Murmur3Partitioner` with `biased-token-round-robin` (the only ones Scylla ships) |
//! | Couchbase | [`couchbase_vbucket`], [`CouchbaseMap`] | `(crc32(key) >> 16 & 0x7fff) mod vBuckets` (libcouchbase `lcbvb_k2vb`, the Java SDK, gocbcore); the active server from the bucket's `vBucketServerMap` | counts that are not powers of two (refused: there libcouchbase's `%` and the Java SDK's `& (n − 1)` disagree) |
//! | Envoy | [`EnvoyRing`], [`EnvoyMaglev`] | `ring_hash` (xxHash or `MURMUR_HASH_2`, `minimum_ring_size` default 1024, `maximum_ring_size` default 8M, `"{key}_{i}"` entries from Envoy's running weighted sums) and `maglev` (prime `table_size`, default 65537, hosts sorted by key, Envoy's weighted fill); request hash = xxHash64 of the hashed value | locality-weighted clusters, priorities, `hash_balance_factor` (live load), several `hash_policy` entries combined |
//! | groupcache | [`Groupcache`] | `consistenthash` with the default CRC-32: `replicas` points `crc32("{i}{peer}")` per peer (50 in `HTTPPool`), the later peer on equal points | rings built with `consistenthash.New(n, fn)` and another `fn` |
//! | Elasticsearch | [`Elasticsearch`] | document routing: MurmurHash3 x86-32 of the routing string's UTF-16 code units, `number_of_routing_shards`, routing factor and partition offset; the 7.0+ default routing-shard count | indices created before 7.0 (routing shards = shards) unless given explicitly |

mod cassandra;
mod couchbase;
mod elasticsearch;
mod envoy;
mod groupcache;
mod haproxy;
mod kafka;
mod ketama;
mod nginx;
mod redis;
mod scylla;
mod twemproxy;

pub use cassandra::{TokenRing, cassandra_token, murmur3_x64_128_cassandra};
pub use couchbase::{COUCHBASE_VBUCKETS, Couchbase, CouchbaseMap, couchbase_vbucket};
pub use elasticsearch::{Elasticsearch, murmur3_x86_32, routing_hash};
pub use envoy::{
    EnvoyHost, EnvoyMaglev, EnvoyRing, EnvoyRingHashFn, envoy_murmur2, parse_envoy_hosts,
    parse_envoy_load_assignment, xxhash64,
};
pub use groupcache::Groupcache;
pub use haproxy::{
    Haproxy, HaproxyHashFn, HaproxyHashType, HaproxyMethod, HaproxyServer, haproxy_full_hash,
};
pub use kafka::{
    fnv1a_32, kafka_partition, librdkafka_consistent_random, librdkafka_murmur2_random, murmur2,
    sarama_hash, sarama_reference_hash,
};
pub use ketama::{Ketama, ketama_hash};
pub use nginx::{NginxHash, NginxHashMode, NginxServer};
pub use redis::{REDIS_SLOTS, redis_slot};
pub use scylla::ScyllaNode;
pub use twemproxy::{Distribution, Twemproxy, TwemproxyHash, TwemproxyServer};

use crate::{Jump, ShardError};

/// Guava's `Hashing.consistentHash(long input, int buckets)`.
///
/// # Errors
///
/// [`ShardError::ZeroShards`] if `buckets` is zero (Guava throws).
///
/// # Examples
///
/// ```
/// assert_eq!(weft_shard::compat::guava_consistent_hash(256, 1024)?, 520);
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
pub fn guava_consistent_hash(input: u64, buckets: u32) -> Result<u32, ShardError> {
    if buckets == 0 {
        return Err(ShardError::ZeroShards);
    }
    Ok(Jump::bucket(input, buckets))
}

fn check_partitions(n: u32) -> Result<(), ShardError> {
    if n == 0 {
        Err(ShardError::ZeroShards)
    } else {
        Ok(())
    }
}
