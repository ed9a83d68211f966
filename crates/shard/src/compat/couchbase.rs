//! Couchbase vBuckets: the key's vBucket id, and the server a bucket's
//! `vBucketServerMap` makes active for it.

use serde::Deserialize;
use weft_core::{ShardId, Sharder};

use crate::ShardError;

/// The vBucket count of a Couchbase bucket on Linux and Windows (macOS
/// builds use 64).
pub const COUCHBASE_VBUCKETS: u32 = 1024;

/// The most vBuckets a key can reach: the key hash keeps 15 bits.
const MAX_VBUCKETS: u32 = 1 << 15;

/// The vBucket of `key` in a bucket of `vbuckets`: bits 16–30 of the
/// key's CRC-32 (IEEE), modulo the count, as libcouchbase (`lcbvb_k2vb`),
/// the Java SDK and gocbcore compute it.
///
/// # Errors
///
/// [`ShardError::BadSetting`] unless `vbuckets` is a power of two from 1
/// to 32768 (Couchbase makes only such buckets, and the hash reaches no
/// vBucket above 32767).
///
/// # Examples
///
/// ```
/// use weft_shard::compat::{COUCHBASE_VBUCKETS, couchbase_vbucket};
///
/// assert_eq!(couchbase_vbucket(b"foo", COUCHBASE_VBUCKETS)?, 115);
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
pub fn couchbase_vbucket(key: &[u8], vbuckets: u32) -> Result<u16, ShardError> {
    check_vbuckets(vbuckets)?;
    Ok(vbucket_of(key, vbuckets))
}

fn check_vbuckets(vbuckets: u32) -> Result<(), ShardError> {
    if vbuckets.is_power_of_two() && vbuckets <= MAX_VBUCKETS {
        Ok(())
    } else {
        Err(ShardError::BadSetting {
            what: "Couchbase vBucket count",
            value: vbuckets.to_string(),
            must: "is not a power of two from 1 to 32768",
        })
    }
}

fn vbucket_of(key: &[u8], vbuckets: u32) -> u16 {
    (((crc32fast::hash(key) >> 16) & 0x7fff) % vbuckets) as u16
}

/// A bucket's `vBucketServerMap`: which server holds the active copy of
/// each vBucket, so which server a client sends a key to.
///
/// Read from the bucket configuration the cluster serves
/// (`/pools/default/buckets/<bucket>`, or a client's config dump): either
/// the whole bucket object or its `vBucketServerMap` member. The map's
/// `serverList` names the servers (`host:port`, the data port); each row of
/// `vBucketMap` is one vBucket, the active server's index first, then the
/// replicas'; `-1` means no server holds it (after a failover, before a
/// rebalance).
///
/// # Examples
///
/// ```
/// use weft_shard::compat::CouchbaseMap;
///
/// let map = CouchbaseMap::from_json(r#"{"vBucketServerMap": {
///     "hashAlgorithm": "CRC", "numReplicas": 1,
///     "serverList": ["10.0.0.1:11210", "10.0.0.2:11210"],
///     "vBucketMap": [[0, 1], [1, 0], [0, 1], [-1, 0]]}}"#)?;
/// assert_eq!(map.vbucket(b"foo"), 3);
/// assert_eq!(map.server_for(b"foo"), None); // vBucket 3 has no active copy
/// assert_eq!(map.server_for(b"key"), Some("10.0.0.1:11210")); // vBucket 0
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CouchbaseMap {
    servers: Vec<String>,
    active: Vec<Option<u32>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerMap {
    #[serde(default)]
    hash_algorithm: Option<String>,
    server_list: Vec<String>,
    v_bucket_map: Vec<Vec<i64>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Config {
    Bucket {
        #[serde(rename = "vBucketServerMap")]
        map: ServerMap,
    },
    Map(ServerMap),
}

impl CouchbaseMap {
    /// A map from the bucket configuration JSON.
    ///
    /// # Errors
    ///
    /// [`ShardError::MemberSyntax`] for JSON that is not such a
    /// configuration, a `hashAlgorithm` other than `CRC`, an empty row, or
    /// a server index outside `serverList`; [`ShardError::BadSetting`] for a
    /// vBucket count that is not a power of two from 1 to 32768.
    pub fn from_json(json: &str) -> Result<Self, ShardError> {
        let bad = |reason| ShardError::MemberSyntax {
            input: json.chars().take(80).collect(),
            reason,
        };
        let config: Config = serde_json::from_str(json).map_err(|_| {
            bad("not a bucket configuration: expected vBucketServerMap with serverList and vBucketMap")
        })?;
        let (Config::Bucket { map } | Config::Map(map)) = config;
        if map.hash_algorithm.as_deref().is_some_and(|h| h != "CRC") {
            return Err(bad("hashAlgorithm is not CRC, the only one Couchbase uses"));
        }
        let rows = map.v_bucket_map.len();
        check_vbuckets(u32::try_from(rows).unwrap_or(u32::MAX))?;
        let mut active = Vec::with_capacity(rows);
        for row in &map.v_bucket_map {
            let first = *row
                .first()
                .ok_or_else(|| bad("a vBucketMap row is empty"))?;
            if row
                .iter()
                .any(|&i| i < -1 || i >= map.server_list.len() as i64)
            {
                return Err(bad("a vBucketMap row names a server not in serverList"));
            }
            active.push(u32::try_from(first).ok());
        }
        Ok(CouchbaseMap {
            servers: map.server_list,
            active,
        })
    }

    /// The vBucket of `key`.
    pub fn vbucket(&self, key: &[u8]) -> u16 {
        vbucket_of(key, self.active.len() as u32)
    }

    /// The server with the active copy of `key`'s vBucket, or `None` when
    /// no server holds it.
    pub fn server_for(&self, key: &[u8]) -> Option<&str> {
        let server = self.active[usize::from(self.vbucket(key))]?;
        Some(&self.servers[server as usize])
    }

    /// The `serverList`.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// The vBucket count.
    pub fn vbuckets(&self) -> u32 {
        self.active.len() as u32
    }
}

/// A bucket's vBuckets as a weft [`Sharder`]: shard `i` is vBucket `i`,
/// chosen by weft's key hash. For Couchbase's own vBucket of a key's bytes,
/// call [`couchbase_vbucket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Couchbase {
    vbuckets: u32,
}

impl Couchbase {
    /// A bucket of `vbuckets`.
    ///
    /// # Errors
    ///
    /// As [`couchbase_vbucket`].
    pub fn new(vbuckets: u32) -> Result<Self, ShardError> {
        check_vbuckets(vbuckets)?;
        Ok(Couchbase { vbuckets })
    }

    /// The vBucket of `key`.
    pub fn vbucket(&self, key: &[u8]) -> u16 {
        vbucket_of(key, self.vbuckets)
    }
}

impl Sharder for Couchbase {
    fn shard_count(&self) -> usize {
        self.vbuckets as usize
    }

    fn shard_for_hash(&self, hash: u64) -> ShardId {
        ShardId::new(((hash >> 49) as u32) % self.vbuckets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vbucket_counts_must_be_powers_of_two_the_hash_reaches() {
        for n in [1, 2, 64, 1024, 32768] {
            assert!(couchbase_vbucket(b"k", n).is_ok(), "{n}");
        }
        for n in [0, 3, 1000, 65536, u32::MAX] {
            let err = couchbase_vbucket(b"k", n).unwrap_err();
            assert!(err.to_string().contains(&n.to_string()), "{err}");
        }
    }

    #[test]
    fn bad_maps_are_refused() {
        let cases = [
            "",
            "[]",
            r#"{"serverList": ["a:1"]}"#,
            r#"{"hashAlgorithm": "MD5", "serverList": ["a:1"], "vBucketMap": [[0]]}"#,
            r#"{"serverList": ["a:1"], "vBucketMap": [[0], []]}"#,
            r#"{"serverList": ["a:1"], "vBucketMap": [[0], [1]]}"#,
            r#"{"serverList": ["a:1"], "vBucketMap": [[0], [-2]]}"#,
            r#"{"serverList": ["a:1"], "vBucketMap": [[0], [0], [0]]}"#,
            r#"{"serverList": ["a:1"], "vBucketMap": []}"#,
        ];
        for json in cases {
            assert!(CouchbaseMap::from_json(json).is_err(), "{json}");
        }
        let map = CouchbaseMap::from_json(r#"{"serverList": ["a:1"], "vBucketMap": [[0], [-1]]}"#)
            .unwrap();
        assert_eq!(map.vbuckets(), 2);
    }

    #[test]
    fn the_sharder_covers_every_vbucket() {
        let bucket = Couchbase::new(64).unwrap();
        let mut seen = [false; 64];
        for i in 0..10_000u64 {
            seen[bucket.shard_for_hash(weft_core::key_hash(&i)).index()] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
