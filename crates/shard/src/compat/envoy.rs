//! Envoy's hashing load balancers: `ring_hash` (xxHash or MurmurHash2,
//! minimum and maximum ring size, host weights) and `maglev` (prime table
//! size, default 65537, host weights).

use std::fmt;

use serde_json::Value;
use weft_core::{ShardId, Sharder};

use crate::ShardError;

/// xxHash64 of `data` with `seed`: Envoy's `HashUtil::xxHash64`, the hash
/// of request keys (header values, cookies, …) and of ring and table
/// entries.
pub fn xxhash64(data: &[u8], seed: u64) -> u64 {
    const P1: u64 = 0x9e37_79b1_85eb_ca87;
    const P2: u64 = 0xc2b2_ae3d_27d4_eb4f;
    const P3: u64 = 0x1656_67b1_9e37_79f9;
    const P4: u64 = 0x85eb_ca77_c2b2_ae63;
    const P5: u64 = 0x27d4_eb2f_1656_67c5;
    let round = |acc: u64, lane: u64| {
        acc.wrapping_add(lane.wrapping_mul(P2))
            .rotate_left(31)
            .wrapping_mul(P1)
    };
    let merge = |acc: u64, v: u64| (acc ^ round(0, v)).wrapping_mul(P1).wrapping_add(P4);
    let u64_at = |b: &[u8]| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let mut rest = data;
    let mut h = if data.len() >= 32 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        while rest.len() >= 32 {
            for (i, lane) in v.iter_mut().enumerate() {
                *lane = round(*lane, u64_at(&rest[8 * i..]));
            }
            rest = &rest[32..];
        }
        let h = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
        v.iter().fold(h, |h, &lane| merge(h, lane))
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(data.len() as u64);
    while rest.len() >= 8 {
        h ^= round(0, u64_at(rest));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        let word = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        h ^= u64::from(word).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        rest = &rest[4..];
    }
    for &b in rest {
        h ^= u64::from(b).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

/// Envoy's `MurmurHash::murmurHash2` with `STD_HASH_SEED` (libstdc++'s
/// 64-bit `_Hash_bytes`): the ring's `hash_function: MURMUR_HASH_2`.
pub fn envoy_murmur2(data: &[u8]) -> u64 {
    const MUL: u64 = 0xc6a4_a793_5bd1_e995;
    const SEED: u64 = 0xc70f_6907;
    let shift_mix = |v: u64| v ^ (v >> 47);
    let mut hash = SEED ^ (data.len() as u64).wrapping_mul(MUL);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        hash ^= shift_mix(word.wrapping_mul(MUL)).wrapping_mul(MUL);
        hash = hash.wrapping_mul(MUL);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let word = tail
            .iter()
            .rev()
            .fold(0u64, |w, &b| (w << 8) | u64::from(b));
        hash ^= word;
        hash = hash.wrapping_mul(MUL);
    }
    hash = shift_mix(hash).wrapping_mul(MUL);
    shift_mix(hash)
}

/// One upstream host of an Envoy cluster: the string Envoy hashes for it
/// and its `load_balancing_weight`.
///
/// The key is the host's address as Envoy prints it (`10.0.0.1:8080`,
/// `[::1]:8080`), or its hostname with `use_hostname_for_hashing`, or the
/// `hash_key` of its `envoy.lb` metadata when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvoyHost {
    key: String,
    weight: u32,
}

impl EnvoyHost {
    /// A host hashed as `key` with `weight`.
    ///
    /// # Errors
    ///
    /// [`ShardError::EmptyMemberName`] for an empty key and
    /// [`ShardError::WeightNotWhole`] for weight 0 (Envoy requires 1 or
    /// more).
    pub fn new(key: &str, weight: u32) -> Result<Self, ShardError> {
        if key.is_empty() {
            return Err(ShardError::EmptyMemberName);
        }
        if weight == 0 {
            return Err(ShardError::WeightNotWhole {
                member: key.to_string(),
                weight: 0.0,
                scheme: "Envoy load_balancing_weight",
                max: u64::from(u32::MAX),
            });
        }
        Ok(EnvoyHost {
            key: key.to_string(),
            weight,
        })
    }

    /// The string Envoy hashes for the host.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }
}

impl fmt::Display for EnvoyHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.weight)
    }
}

/// Hosts from `key=weight,key,…` (weight 1 when left out).
///
/// # Errors
///
/// [`ShardError::MemberSyntax`] naming a bad entry, and as
/// [`EnvoyHost::new`].
pub fn parse_envoy_hosts(list: &str) -> Result<Vec<EnvoyHost>, ShardError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let (key, weight) = match entry.rsplit_once('=') {
                Some((k, w)) => {
                    let w = w.trim().parse::<u32>().map_err(|_| ShardError::MemberSyntax {
                        input: entry.to_string(),
                        reason: "the weight after = must be a whole number from 1 to 4294967295",
                    })?;
                    (k.trim(), w)
                }
                None => (entry, 1),
            };
            EnvoyHost::new(key, weight)
        })
        .collect()
}

/// The healthy hosts of a `ClusterLoadAssignment` in its JSON form (an
/// EDS response, a `config_dump`, or the `load_assignment` of a static
/// cluster written as JSON), each keyed as Envoy keys it: its `envoy.lb`
/// metadata `hash_key` if it has one, else its `hostname` when
/// `use_hostname_for_hashing`, else its address as Envoy prints it
/// (`10.0.0.1:80`, `[2001:db8::1]:80`).
///
/// Hosts come in the order of `endpoints` then `lb_endpoints`; those whose
/// `health_status` is not `UNKNOWN` or `HEALTHY` are left out, as Envoy
/// builds its ring and table from healthy hosts. Field names may be
/// snake_case or camelCase, as Envoy accepts both.
///
/// # Errors
///
/// [`ShardError::MemberSyntax`] for JSON that is not a load assignment, an
/// endpoint without an address, a port outside 1–65535, an address that is
/// not an IP, or a `priority` above 0 (priorities are not modelled); and as
/// [`EnvoyHost::new`].
///
/// # Examples
///
/// ```
/// use weft_shard::compat::parse_envoy_load_assignment;
///
/// let hosts = parse_envoy_load_assignment(r#"{"cluster_name": "web", "endpoints": [{"lb_endpoints": [
///     {"endpoint": {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 80}}},
///      "load_balancing_weight": 2},
///     {"endpoint": {"address": {"socket_address": {"address": "2001:db8::1", "port_value": 80}}},
///      "metadata": {"filter_metadata": {"envoy.lb": {"hash_key": "web-2"}}}},
///     {"endpoint": {"address": {"socket_address": {"address": "10.0.0.3", "port_value": 80}}},
///      "health_status": "UNHEALTHY"}]}]}"#, false)?;
/// let keys: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
/// assert_eq!(keys, ["10.0.0.1:80=2", "web-2=1"]);
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
pub fn parse_envoy_load_assignment(
    json: &str,
    use_hostname_for_hashing: bool,
) -> Result<Vec<EnvoyHost>, ShardError> {
    let bad = |reason| ShardError::MemberSyntax {
        input: json.chars().take(80).collect(),
        reason,
    };
    let root: Value = serde_json::from_str(json)
        .map_err(|_| bad("not JSON: expected a ClusterLoadAssignment"))?;
    let groups = field(&root, "endpoints", "endpoints")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("a ClusterLoadAssignment has an endpoints list"))?;
    let mut hosts = Vec::new();
    for group in groups {
        if field(group, "priority", "priority")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            != 0
        {
            return Err(bad("endpoints of priority above 0 are not modelled"));
        }
        let endpoints = field(group, "lb_endpoints", "lbEndpoints")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for lb in endpoints {
            let health = field(lb, "health_status", "healthStatus")
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN");
            if health != "UNKNOWN" && health != "HEALTHY" {
                continue;
            }
            let endpoint = field(lb, "endpoint", "endpoint")
                .ok_or_else(|| bad("an lb_endpoint has no endpoint"))?;
            let socket = field(endpoint, "address", "address")
                .and_then(|a| field(a, "socket_address", "socketAddress"))
                .ok_or_else(|| bad("an endpoint has no address.socket_address"))?;
            let ip = field(socket, "address", "address")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("a socket_address has no address"))?;
            let port = field(socket, "port_value", "portValue")
                .and_then(Value::as_u64)
                .filter(|p| (1..=65535).contains(p))
                .ok_or_else(|| bad("a socket_address needs a port_value from 1 to 65535"))?;
            let address = match ip.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(v4)) => format!("{v4}:{port}"),
                Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
                Err(_) => return Err(bad("a socket_address is not an IP address")),
            };
            let hash_key = field(lb, "metadata", "metadata")
                .and_then(|m| field(m, "filter_metadata", "filterMetadata"))
                .and_then(|f| f.get("envoy.lb"))
                .and_then(|lb| field(lb, "hash_key", "hashKey"))
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty());
            let key = match (hash_key, use_hostname_for_hashing) {
                (Some(k), _) => k,
                (None, true) => field(endpoint, "hostname", "hostname")
                    .and_then(Value::as_str)
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| {
                        bad("an endpoint has no hostname to hash by (use_hostname_for_hashing)")
                    })?,
                (None, false) => &address,
            };
            let weight = match field(lb, "load_balancing_weight", "loadBalancingWeight") {
                None => 1,
                Some(w) => w
                    .as_u64()
                    .or_else(|| w.get("value").and_then(Value::as_u64))
                    .and_then(|w| u32::try_from(w).ok())
                    .ok_or_else(|| {
                        bad("load_balancing_weight must be a whole number from 1 to 4294967295")
                    })?,
            };
            hosts.push(EnvoyHost::new(key, weight)?);
        }
    }
    Ok(hosts)
}

/// A field by its snake_case or camelCase name (Envoy's JSON accepts
/// both).
fn field<'v>(v: &'v Value, snake: &str, camel: &str) -> Option<&'v Value> {
    v.get(snake).or_else(|| v.get(camel))
}

/// Which hash builds an Envoy ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnvoyRingHashFn {
    /// `XX_HASH`, the default.
    XxHash,
    /// `MURMUR_HASH_2`.
    MurmurHash2,
}

/// Envoy's sum of weights must fit in 32 bits, and the hosts must be
/// there.
fn check_hosts(hosts: &[EnvoyHost]) -> Result<u64, ShardError> {
    if hosts.is_empty() {
        return Err(ShardError::EmptyMembers);
    }
    let mut seen = std::collections::HashSet::with_capacity(hosts.len());
    if let Some(h) = hosts.iter().find(|h| !seen.insert(h.key.as_str())) {
        return Err(ShardError::DuplicateMember(h.key.clone()));
    }
    let sum: u64 = hosts.iter().map(|h| u64::from(h.weight)).sum();
    if sum > u64::from(u32::MAX) {
        return Err(ShardError::BadSetting {
            what: "Envoy sum of host weights",
            value: sum.to_string(),
            must: "is above 4294967295",
        });
    }
    Ok(sum)
}

/// The host Envoy's `ring_hash` load balancer picks for a request hash.
///
/// - **Ring.** Weights are normalized (`weight / Σweight`); the ring has
///   `scale = min(⌈wₘᵢₙ · min_ring_size⌉ / wₘᵢₙ, max_ring_size)` entries,
///   handed out in host order from running sums of `scale · w`; host
///   entry `i` is the hash of `"{key}_{i}"`.
/// - **Lookup.** A request hash goes to the first entry at or above it,
///   wrapping to the first.
/// - **Request hash.** For one `hash_policy` over a value (a header, a
///   cookie, a query parameter), the xxHash64 of its bytes
///   ([`host_for_key`](EnvoyRing::host_for_key)); for anything else, give
///   the hash ([`host_for_hash`](EnvoyRing::host_for_hash)).
///
/// Matches Envoy's `ring_hash_lb.cc` (unchanged in placement since 1.10)
/// and its test vectors; healthy hosts only, one priority, no locality
/// weighting, no `hash_balance_factor` (it follows live load).
///
/// # Examples
///
/// ```
/// use weft_shard::compat::{EnvoyRing, EnvoyRingHashFn, parse_envoy_hosts};
///
/// // Envoy's ring_hash_lb_test.cc, "Basic": six hosts, a ring of 12.
/// let hosts = parse_envoy_hosts(
///     "127.0.0.1:90,127.0.0.1:91,127.0.0.1:92,127.0.0.1:93,127.0.0.1:94,127.0.0.1:95",
/// )?;
/// let ring = EnvoyRing::new(hosts, 12, EnvoyRing::DEFAULT_MAX_SIZE, EnvoyRingHashFn::XxHash)?;
/// assert_eq!(ring.host_for_hash(0).key(), "127.0.0.1:94");
/// assert_eq!(ring.host_for_hash(3551244743356806948).key(), "127.0.0.1:93");
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct EnvoyRing {
    hosts: Vec<EnvoyHost>,
    hashes: Vec<u64>,
    owners: Vec<u32>,
}

impl EnvoyRing {
    /// `minimum_ring_size` unless configured.
    pub const DEFAULT_MIN_SIZE: u64 = 1024;
    /// `maximum_ring_size` unless configured, and the most Envoy accepts
    /// for either bound.
    pub const DEFAULT_MAX_SIZE: u64 = 8 * 1024 * 1024;

    /// The ring over `hosts` (in the cluster's host order) with the ring
    /// size bounds and hash function.
    ///
    /// # Errors
    ///
    /// [`ShardError::EmptyMembers`], [`ShardError::DuplicateMember`] for a
    /// key given twice, and [`ShardError::BadSetting`] for a ring size of
    /// 0 or above 8388608, a minimum above the maximum (Envoy refuses it
    /// too), or weights summing above 32 bits.
    pub fn new(
        hosts: Vec<EnvoyHost>,
        min_ring_size: u64,
        max_ring_size: u64,
        hash: EnvoyRingHashFn,
    ) -> Result<Self, ShardError> {
        for (what, size) in [
            ("Envoy minimum_ring_size", min_ring_size),
            ("Envoy maximum_ring_size", max_ring_size),
        ] {
            if size == 0 || size > EnvoyRing::DEFAULT_MAX_SIZE {
                return Err(ShardError::BadSetting {
                    what,
                    value: size.to_string(),
                    must: "is outside 1 to 8388608",
                });
            }
        }
        if min_ring_size > max_ring_size {
            return Err(ShardError::BadSetting {
                what: "Envoy minimum_ring_size",
                value: min_ring_size.to_string(),
                must: "is above maximum_ring_size",
            });
        }
        let sum = check_hosts(&hosts)? as f64;
        let weights: Vec<f64> = hosts.iter().map(|h| f64::from(h.weight) / sum).collect();
        let min_w = weights.iter().copied().fold(1.0, f64::min);
        let scale = ((min_w * min_ring_size as f64).ceil() / min_w).min(max_ring_size as f64);
        let mut entries: Vec<(u64, u32)> = Vec::with_capacity(scale.ceil() as usize);
        let (mut current, mut target) = (0.0f64, 0.0f64);
        let mut label = Vec::new();
        for (index, (host, w)) in hosts.iter().zip(&weights).enumerate() {
            target += scale * w;
            let mut i: u64 = 0;
            while current < target {
                label.clear();
                label.extend_from_slice(host.key.as_bytes());
                label.push(b'_');
                label.extend_from_slice(i.to_string().as_bytes());
                let h = match hash {
                    EnvoyRingHashFn::XxHash => xxhash64(&label, 0),
                    EnvoyRingHashFn::MurmurHash2 => envoy_murmur2(&label),
                };
                entries.push((h, index as u32));
                i += 1;
                current += 1.0;
            }
        }
        entries.sort_by_key(|e| e.0);
        let (hashes, owners) = entries.into_iter().unzip();
        Ok(EnvoyRing {
            hosts,
            hashes,
            owners,
        })
    }

    /// The index (into [`hosts`](EnvoyRing::hosts)) of the host for a
    /// request hash.
    pub fn shard_for_request_hash(&self, hash: u64) -> ShardId {
        ShardId::new(self.owners[crate::ring::successor(&self.hashes, hash)])
    }

    /// The host for a request hash.
    pub fn host_for_hash(&self, hash: u64) -> &EnvoyHost {
        &self.hosts[self.shard_for_request_hash(hash).index()]
    }

    /// The host for a request whose one hash policy hashes `value` (a
    /// header's value, a cookie's, a query parameter's).
    pub fn host_for_key(&self, value: &[u8]) -> &EnvoyHost {
        self.host_for_hash(xxhash64(value, 0))
    }

    /// The hosts, in the order given.
    pub fn hosts(&self) -> &[EnvoyHost] {
        &self.hosts
    }

    /// The ring's entries in ring order: each position and its host (what
    /// Envoy logs at trace level as `ring hash: host=… hash=…`).
    pub fn entries(&self) -> impl Iterator<Item = (u64, &EnvoyHost)> + '_ {
        self.hashes
            .iter()
            .zip(&self.owners)
            .map(|(&h, &o)| (h, &self.hosts[o as usize]))
    }

    /// The number of entries (Envoy's `ring_hash_lb.size`).
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether the ring has no entries (never: a ring has at least one
    /// entry per host).
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

impl Sharder for EnvoyRing {
    fn shard_count(&self) -> usize {
        self.hosts.len()
    }

    /// Weft's key hash as the request hash.
    fn shard_for_hash(&self, hash: u64) -> ShardId {
        self.shard_for_request_hash(hash)
    }
}

/// The host Envoy's `maglev` load balancer picks for a request hash.
///
/// - **Table.** Hosts are sorted by key; host `h` has offset
///   `xxHash64(key, 0) mod M` and skip `xxHash64(key, 1) mod (M − 1) + 1`;
///   the table is filled in rounds, a host of normalized weight `w` taking
///   its next free preferred slot in round `r` when `r·w ≥` its running
///   target (raised by the largest normalized weight each time it takes
///   one).
/// - **Lookup.** A request hash goes to slot `hash mod M`.
/// - **Request hash.** As for [`EnvoyRing`].
///
/// Matches Envoy's `maglev_lb.cc` (the original and compact tables place
/// alike) and its test vectors; healthy hosts only, one priority, no
/// locality weighting, no `hash_balance_factor`.
///
/// # Examples
///
/// ```
/// use weft_shard::compat::{EnvoyMaglev, parse_envoy_hosts};
///
/// // Envoy's maglev_lb_test.cc, "Weighted": table size 17.
/// let table = EnvoyMaglev::new(parse_envoy_hosts("127.0.0.1:90=1,127.0.0.1:91=2")?, 17)?;
/// assert_eq!(table.host_for_hash(1).key(), "127.0.0.1:90");
/// assert_eq!(table.host_for_hash(17).key(), "127.0.0.1:91");
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct EnvoyMaglev {
    hosts: Vec<EnvoyHost>,
    table: Vec<u32>,
}

impl EnvoyMaglev {
    /// `table_size` unless configured.
    pub const DEFAULT_TABLE_SIZE: u64 = 65537;
    /// The largest `table_size` Envoy accepts.
    pub const MAX_TABLE_SIZE: u64 = 5_000_011;

    /// The table over `hosts` with `table_size` slots.
    ///
    /// # Errors
    ///
    /// [`ShardError::EmptyMembers`], [`ShardError::DuplicateMember`], and
    /// [`ShardError::BadSetting`] for a table size that is not a prime
    /// from 2 to 5000011 ("The table size of maglev must be prime number")
    /// or weights summing above 32 bits.
    pub fn new(hosts: Vec<EnvoyHost>, table_size: u64) -> Result<Self, ShardError> {
        if !(2..=EnvoyMaglev::MAX_TABLE_SIZE).contains(&table_size) || !is_prime(table_size) {
            return Err(ShardError::BadSetting {
                what: "Envoy maglev table_size",
                value: table_size.to_string(),
                must: "is not a prime from 2 to 5000011",
            });
        }
        let sum = check_hosts(&hosts)? as f64;
        let m = table_size;
        struct Entry {
            host: u32,
            offset: u64,
            skip: u64,
            weight: f64,
            target: f64,
            next: u64,
        }
        let mut order: Vec<usize> = (0..hosts.len()).collect();
        order.sort_by(|&a, &b| hosts[a].key.as_bytes().cmp(hosts[b].key.as_bytes()));
        let mut entries: Vec<Entry> = order
            .iter()
            .map(|&i| {
                let key = hosts[i].key.as_bytes();
                Entry {
                    host: i as u32,
                    offset: xxhash64(key, 0) % m,
                    skip: xxhash64(key, 1) % (m - 1) + 1,
                    weight: f64::from(hosts[i].weight) / sum,
                    target: 0.0,
                    next: 0,
                }
            })
            .collect();
        let max_w = entries.iter().map(|e| e.weight).fold(0.0, f64::max);
        let mut table = vec![u32::MAX; m as usize];
        let mut filled: u64 = 0;
        let mut round: u32 = 1;
        while filled < m {
            for e in entries.iter_mut() {
                if filled == m {
                    break;
                }
                if f64::from(round) * e.weight < e.target {
                    continue;
                }
                e.target += max_w;
                let mut c = slot(e.offset, e.skip, e.next, m);
                while table[c] != u32::MAX {
                    e.next += 1;
                    c = slot(e.offset, e.skip, e.next, m);
                }
                table[c] = e.host;
                e.next += 1;
                filled += 1;
            }
            round = round.wrapping_add(1);
        }
        Ok(EnvoyMaglev { hosts, table })
    }

    /// The index (into [`hosts`](EnvoyMaglev::hosts)) of the host for a
    /// request hash.
    pub fn shard_for_request_hash(&self, hash: u64) -> ShardId {
        ShardId::new(self.table[(hash % self.table.len() as u64) as usize])
    }

    /// The host for a request hash.
    pub fn host_for_hash(&self, hash: u64) -> &EnvoyHost {
        &self.hosts[self.shard_for_request_hash(hash).index()]
    }

    /// The host for a request whose one hash policy hashes `value`.
    pub fn host_for_key(&self, value: &[u8]) -> &EnvoyHost {
        self.host_for_hash(xxhash64(value, 0))
    }

    /// The hosts, in the order given.
    pub fn hosts(&self) -> &[EnvoyHost] {
        &self.hosts
    }
}

/// The `next`-th slot of a host's permutation; `offset, skip < m`, so the
/// product is taken in 128 bits.
fn slot(offset: u64, skip: u64, next: u64, m: u64) -> usize {
    ((u128::from(offset) + u128::from(skip) * u128::from(next)) % u128::from(m)) as usize
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

impl Sharder for EnvoyMaglev {
    fn shard_count(&self) -> usize {
        self.hosts.len()
    }

    /// Weft's key hash as the request hash.
    fn shard_for_hash(&self, hash: u64) -> ShardId {
        self.shard_for_request_hash(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxhash64_matches_the_reference_values() {
        // The xxHash reference's published values for the empty input and
        // "abc" (seed 0), and the 32-byte and longer paths against a
        // second computation by 8-byte lanes.
        assert_eq!(xxhash64(b"", 0), 0xef46_db37_51d8_e999);
        assert_eq!(xxhash64(b"abc", 0), 0x44bc_2cf5_ad77_0999);
        let long: Vec<u8> = (0..100u8).collect();
        assert_ne!(xxhash64(&long, 0), xxhash64(&long, 1));
        assert_ne!(xxhash64(&long[..32], 0), xxhash64(&long[..31], 0));
    }

    #[test]
    fn bad_settings_are_refused_by_value() {
        let hosts = || parse_envoy_hosts("a:1,b:1").unwrap();
        for (min, max) in [(0, 10), (10, 0), (20, 10), (1, 8_388_609)] {
            let err = EnvoyRing::new(hosts(), min, max, EnvoyRingHashFn::XxHash).unwrap_err();
            assert!(
                matches!(err, ShardError::BadSetting { .. }),
                "{min} {max}: {err}"
            );
        }
        for m in [0, 1, 8, 65536, 5_000_012, u64::MAX] {
            let err = EnvoyMaglev::new(hosts(), m).unwrap_err();
            assert!(err.to_string().contains(&m.to_string()), "{err}");
        }
        assert!(parse_envoy_hosts("a:1=0").is_err());
        assert!(parse_envoy_hosts("a:1=x").is_err());
        assert!(parse_envoy_hosts("=2").is_err());
        let dup = EnvoyMaglev::new(parse_envoy_hosts("a:1,a:1").unwrap(), 7);
        assert_eq!(dup.unwrap_err(), ShardError::DuplicateMember("a:1".into()));
        let heavy = parse_envoy_hosts("a=4294967295,b=1").unwrap();
        assert!(EnvoyMaglev::new(heavy, 7).is_err());
        assert_eq!(
            EnvoyMaglev::new(Vec::new(), 7).unwrap_err(),
            ShardError::EmptyMembers
        );
    }

    #[test]
    fn load_assignments_are_read_as_envoy_reads_them() {
        let json = r#"{"clusterName": "c", "endpoints": [
            {"lbEndpoints": [
                {"endpoint": {"address": {"socketAddress": {"address": "::ffff:10.0.0.1", "portValue": 8080}},
                              "hostname": "h1"},
                 "loadBalancingWeight": {"value": 3}},
                {"endpoint": {"address": {"socket_address": {"address": "10.0.0.2", "port_value": 8080}},
                              "hostname": "h2"}, "health_status": "DRAINING"}]},
            {"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "2001:0db8::0001", "port_value": 1}},
                              "hostname": "h3"}, "health_status": "HEALTHY"}]}]}"#;
        let by_address: Vec<String> = parse_envoy_load_assignment(json, false)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            by_address,
            ["[::ffff:10.0.0.1]:8080=3", "[2001:db8::1]:1=1"]
        );
        let by_name: Vec<String> = parse_envoy_load_assignment(json, true)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(by_name, ["h1=3", "h3=1"]);
        for bad in [
            "",
            "{}",
            r#"{"endpoints": [{"priority": 1, "lb_endpoints": []}]}"#,
            r#"{"endpoints": [{"lb_endpoints": [{"endpoint": {}}]}]}"#,
            r#"{"endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 0}}}}]}]}"#,
            r#"{"endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "web", "port_value": 80}}}}]}]}"#,
            r#"{"endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 80}}}, "load_balancing_weight": 0}]}]}"#,
        ] {
            assert!(parse_envoy_load_assignment(bad, true).is_err(), "{bad}");
        }
        // No hostname to hash by: refused.
        let nameless = r#"{"endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 80}}}}]}]}"#;
        assert!(matches!(
            parse_envoy_load_assignment(nameless, true),
            Err(ShardError::MemberSyntax { .. })
        ));
        assert!(parse_envoy_load_assignment(nameless, false).is_ok());
    }

    #[test]
    fn huge_weights_and_the_largest_bounds_build() {
        let hosts = parse_envoy_hosts("a=4294967294,b=1").unwrap();
        let ring = EnvoyRing::new(hosts.clone(), 1, 64, EnvoyRingHashFn::XxHash).unwrap();
        // The ring is capped at the maximum.
        assert!((64..=65).contains(&ring.len()), "{}", ring.len());
        // The table gives every host its first pick.
        let table = EnvoyMaglev::new(hosts, 101).unwrap();
        let light = table.table.iter().filter(|&&h| h == 1).count();
        assert_eq!(light, 1);
    }
}
