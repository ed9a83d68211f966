//! HAProxy's hash-based balancing: `hash-type map-based` and
//! `hash-type consistent`, with its hash functions, the `avalanche`
//! modifier, server weights and ids, byte-exact with HAProxy 2.6.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use weft_core::{ShardId, Sharder};

use crate::ShardError;

/// A `hash-type` hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HaproxyHashFn {
    /// `sdbm`, the default.
    Sdbm,
    /// `djb2`.
    Djb2,
    /// `wt6`.
    Wt6,
    /// `crc32` (IEEE).
    Crc32,
}

impl HaproxyHashFn {
    /// The hash of `key`, as HAProxy's `gen_hash` computes it.
    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            HaproxyHashFn::Sdbm => key.iter().fold(0u32, |h, &c| {
                u32::from(c)
                    .wrapping_add(h << 6)
                    .wrapping_add(h << 16)
                    .wrapping_sub(h)
            }),
            HaproxyHashFn::Djb2 => key.iter().fold(5381u32, |h, &c| {
                (h << 5).wrapping_add(h).wrapping_add(u32::from(c))
            }),
            HaproxyHashFn::Wt6 => wt6(key),
            HaproxyHashFn::Crc32 => crc32fast::hash(key),
        }
    }
}

fn wt6(key: &[u8]) -> u32 {
    let (mut h0, mut h1): (u32, u32) = (0xa53c_965a, 0x5ca6_953a);
    let (mut step0, mut step1) = (6u32, 18u32);
    for &c in key {
        let t = u32::from(c);
        h0 = !(h0 ^ t);
        h1 = !(h1.wrapping_add(t));
        let t = h1.rotate_left(step0);
        h1 = h0.rotate_left(step1);
        h0 = t;
        let t = ((h0 >> 16) ^ h1) & 0xffff;
        step0 = t & 0x1f;
        step1 = t >> 11;
    }
    h0 ^ h1
}

/// HAProxy's `full_hash`: one of Bob Jenkins' integer avalanche functions
/// times a large prime. It is the `avalanche` modifier, and it places a
/// consistent-hash server's nodes.
pub fn haproxy_full_hash(a: u32) -> u32 {
    let mut a = a;
    a = a.wrapping_add(0x7ed5_5d16).wrapping_add(a << 12);
    a = (a ^ 0xc761_c23c) ^ (a >> 19);
    a = a.wrapping_add(0x1656_67b1).wrapping_add(a << 5);
    a = a.wrapping_add(0xd3a2_646c) ^ (a << 9);
    a = a.wrapping_add(0xfd70_46c5).wrapping_add(a << 3);
    a = (a ^ 0xb55a_4f09) ^ (a >> 16);
    a.wrapping_mul(3_221_225_473)
}

impl FromStr for HaproxyHashFn {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Self, ShardError> {
        match s {
            "sdbm" => Ok(HaproxyHashFn::Sdbm),
            "djb2" => Ok(HaproxyHashFn::Djb2),
            "wt6" => Ok(HaproxyHashFn::Wt6),
            "crc32" => Ok(HaproxyHashFn::Crc32),
            other => Err(ShardError::UnknownScheme {
                what: "HAProxy hash function",
                name: other.to_string(),
                known: "sdbm, djb2, wt6, crc32",
            }),
        }
    }
}

impl fmt::Display for HaproxyHashFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HaproxyHashFn::Sdbm => "sdbm",
            HaproxyHashFn::Djb2 => "djb2",
            HaproxyHashFn::Wt6 => "wt6",
            HaproxyHashFn::Crc32 => "crc32",
        })
    }
}

/// A `hash-type` method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HaproxyMethod {
    /// `map-based`: `hash mod Σweights` over a table of servers spread by
    /// weight.
    MapBased,
    /// `consistent`: a tree of `16 × weight` nodes per server.
    Consistent,
}

/// A backend's `hash-type` line: method, function and modifier.
///
/// Parsed as HAProxy reads it: `hash-type consistent` alone means `sdbm`
/// with `avalanche`; `map-based` alone means `sdbm` without; a backend
/// with no `hash-type` line is `map-based sdbm` ([`Default`]).
///
/// ```
/// use weft_shard::compat::{HaproxyHashFn, HaproxyHashType, HaproxyMethod};
///
/// let t: HaproxyHashType = "hash-type consistent".parse()?;
/// assert_eq!((t.method, t.function, t.avalanche), (HaproxyMethod::Consistent, HaproxyHashFn::Sdbm, true));
/// let t: HaproxyHashType = "map-based crc32".parse()?;
/// assert!(!t.avalanche);
/// assert!("consistent md5".parse::<HaproxyHashType>().is_err());
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HaproxyHashType {
    /// The method.
    pub method: HaproxyMethod,
    /// The hash function.
    pub function: HaproxyHashFn,
    /// Whether `avalanche` applies `full_hash` to the key's hash.
    pub avalanche: bool,
}

impl Default for HaproxyHashType {
    fn default() -> Self {
        HaproxyHashType {
            method: HaproxyMethod::MapBased,
            function: HaproxyHashFn::Sdbm,
            avalanche: false,
        }
    }
}

impl FromStr for HaproxyHashType {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Self, ShardError> {
        let bad = |reason| ShardError::MemberSyntax {
            input: s.to_string(),
            reason,
        };
        let mut words = s.split_whitespace().peekable();
        if words.peek() == Some(&"hash-type") {
            words.next();
        }
        let method = match words.next() {
            Some("map-based") => HaproxyMethod::MapBased,
            Some("consistent") => HaproxyMethod::Consistent,
            _ => return Err(bad("hash-type only supports 'consistent' and 'map-based'")),
        };
        let Some(function) = words.next() else {
            return Ok(HaproxyHashType {
                method,
                function: HaproxyHashFn::Sdbm,
                avalanche: method == HaproxyMethod::Consistent,
            });
        };
        let function = function.parse()?;
        let avalanche = match words.next() {
            None => false,
            Some("avalanche") => true,
            Some(_) => return Err(bad("'avalanche' is the only hash modifier")),
        };
        if words.next().is_some() {
            return Err(bad("hash-type takes a method, a function and a modifier"));
        }
        Ok(HaproxyHashType {
            method,
            function,
            avalanche,
        })
    }
}

impl fmt::Display for HaproxyHashType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = match self.method {
            HaproxyMethod::MapBased => "map-based",
            HaproxyMethod::Consistent => "consistent",
        };
        write!(f, "hash-type {method} {}", self.function)?;
        if self.avalanche {
            f.write_str(" avalanche")?;
        }
        Ok(())
    }
}

/// One `server` line of a backend: name, address, `weight`, `id`,
/// `disabled` and `backup`.
///
/// Parsed from `server web1 10.0.0.1:8080 weight 20 id 3 check` (the
/// `server` word may be left out). Other keywords (`check`, `inter 2s`,
/// `maxconn 100`, …) do not change the placement and are passed over.
///
/// ```
/// use weft_shard::compat::HaproxyServer;
///
/// let s: HaproxyServer = "server web1 10.0.0.1:8080 weight 20 id 3 check".parse()?;
/// assert_eq!((s.name(), s.weight(), s.id()), ("web1", 20, Some(3)));
/// assert!("server web2 10.0.0.2:8080 weight 257".parse::<HaproxyServer>().is_err());
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyServer {
    name: String,
    address: String,
    weight: u32,
    id: Option<u32>,
    disabled: bool,
    backup: bool,
}

impl HaproxyServer {
    /// The most a server's weight can be.
    pub const MAX_WEIGHT: u32 = 256;

    /// A server `name` at `address` of `weight` (0 to 256), with HAProxy
    /// numbering it.
    ///
    /// # Errors
    ///
    /// As parsing its `server` line.
    pub fn new(name: &str, address: &str, weight: u32) -> Result<Self, ShardError> {
        format!("server {name} {address} weight {weight}").parse()
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address as written.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The weight (1 unless `weight` says otherwise).
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The `id` given on the line, if any.
    pub fn id(&self) -> Option<u32> {
        self.id
    }

    /// Whether the line says `disabled` (the server starts in
    /// maintenance).
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// Whether the line says `backup`: the server takes keys only while no
    /// active server is up.
    pub fn is_backup(&self) -> bool {
        self.backup
    }
}

impl fmt::Display for HaproxyServer {
    /// The `server` line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server {} {} weight {}",
            self.name, self.address, self.weight
        )?;
        if let Some(id) = self.id {
            write!(f, " id {id}")?;
        }
        if self.disabled {
            f.write_str(" disabled")?;
        }
        if self.backup {
            f.write_str(" backup")?;
        }
        Ok(())
    }
}

impl FromStr for HaproxyServer {
    type Err = ShardError;

    fn from_str(line: &str) -> Result<Self, ShardError> {
        let bad = |reason| ShardError::MemberSyntax {
            input: line.to_string(),
            reason,
        };
        let mut words = line.split_whitespace().peekable();
        if words.peek() == Some(&"server") {
            words.next();
        }
        let name = words
            .next()
            .ok_or_else(|| bad("expected server <name> <address> [weight N] [id N]"))?;
        let address = words
            .next()
            .ok_or_else(|| bad("a server line needs an address after the name"))?;
        let mut server = HaproxyServer {
            name: name.to_string(),
            address: address.to_string(),
            weight: 1,
            id: None,
            disabled: false,
            backup: false,
        };
        while let Some(word) = words.next() {
            match word {
                "weight" => {
                    server.weight = match words.next().map(str::parse::<u32>) {
                        Some(Ok(w)) if w <= HaproxyServer::MAX_WEIGHT => w,
                        _ => return Err(bad("weight must be a whole number from 0 to 256")),
                    }
                }
                "id" => {
                    server.id = match words.next().map(str::parse::<u32>) {
                        Some(Ok(id)) if (1..=i32::MAX as u32).contains(&id) => Some(id),
                        _ => return Err(bad("id must be a whole number from 1 to 2147483647")),
                    }
                }
                "disabled" => server.disabled = true,
                "enabled" => server.disabled = false,
                "backup" => server.backup = true,
                _ => {}
            }
        }
        Ok(server)
    }
}

/// The server an HAProxy backend sends a key to under
/// `balance hdr()`, `url_param`, `uri`, … (the key's bytes) or
/// `balance source` (the client address), with its `hash-type`.
///
/// - **Ids.** A server keeps the `id` its line gives; the others are
///   numbered in declaration order from 1, each taking the first number not
///   given to another server and at least one above the previous line's
///   counter, as HAProxy's `get_next_id` does.
/// - **map-based.** Weights are divided by their greatest common divisor;
///   a table of `Σweights` slots spreads the servers by weight in
///   HAProxy's order (the server earliest declared wins ties); the key goes
///   to slot `hash mod Σweights`.
/// - **consistent.** A server of weight `w` has `16·w` nodes at
///   `full_hash(id·4096 + j)`; a key goes to the nearer of the nodes just
///   below and at-or-above its hash (the one below on a tie), wrapping.
/// - **Key hash.** The function of the `hash-type` over the key's bytes,
///   then `full_hash` with `avalanche`. For `balance source`,
///   [`server_for_source`](Haproxy::server_for_source): the address's
///   32-bit words XORed (no hash function), then `avalanche`.
/// - **Down servers.** A `disabled` server, one of weight 0 and one taken
///   out by [`with_down`](Haproxy::with_down) (a failed health check) hold
///   no slots or nodes. With no server left, HAProxy answers 503:
///   `None`.
/// - **Backups.** `backup` servers take keys only while no active server
///   is up. Then, with [`all_backups`](Haproxy::all_backups) (`option
///   allbackups`), keys spread over the backups as over active servers;
///   without it every key goes to one backup: the first usable one under
///   `consistent`, and under `map-based` the winner of the map's first
///   slot, which HAProxy fills from all backups with the first one's
///   weight as the total (a heavier backup further down wins it).
///
/// What a key *is* (`hdr(name)` takes the header's first comma-separated
/// value, trimmed; `uri` the path, with `whole`/`len`/`depth` options;
/// an absent header or parameter means round robin) is the caller's to
/// extract; this type places its bytes.
///
/// # Examples
///
/// ```
/// use weft_shard::compat::Haproxy;
///
/// let backend = Haproxy::parse_servers(
///     "server a 10.0.0.1:80 weight 10\nserver b 10.0.0.2:80 weight 10\nserver c 10.0.0.3:80 weight 20",
///     "hash-type consistent".parse()?,
/// )?;
/// let s = backend.server_for(b"session-42").unwrap();
/// assert_eq!(s.name(), "c");
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Haproxy {
    servers: Vec<HaproxyServer>,
    ids: Vec<u32>,
    down: Vec<bool>,
    hash_type: HaproxyHashType,
    /// `option allbackups`.
    all_backups: bool,
    /// The one server every key goes to: the backup HAProxy falls back to
    /// while no active server is up (without `allbackups`).
    fixed: Option<u32>,
    /// The gcd of the configured non-zero weights (map-based).
    divisor: u32,
    /// map-based: the server of each slot.
    map: Vec<u32>,
    /// consistent: node keys, sorted (equal keys in insertion order), and
    /// their servers.
    keys: Vec<u32>,
    owners: Vec<u32>,
}

impl Haproxy {
    /// The most consistent-hash nodes (`16 × Σweights`) a backend may have.
    pub const MAX_NODES: u64 = 1 << 24;
    /// The most map-building steps (map slots × servers, after the weights'
    /// gcd) a map-based backend may take: HAProxy's own loop is quadratic.
    pub const MAX_MAP_WORK: u64 = 1 << 28;

    /// A backend of `servers` in declaration order with its `hash-type`.
    ///
    /// # Errors
    ///
    /// [`ShardError::EmptyMembers`] for no servers,
    /// [`ShardError::DuplicateMember`] for two servers with one name or one
    /// `id` (HAProxy refuses both), and [`ShardError::TooManyPoints`] above
    /// [`MAX_NODES`](Haproxy::MAX_NODES) or
    /// [`MAX_MAP_WORK`](Haproxy::MAX_MAP_WORK).
    pub fn new(
        servers: Vec<HaproxyServer>,
        hash_type: HaproxyHashType,
    ) -> Result<Self, ShardError> {
        if servers.is_empty() {
            return Err(ShardError::EmptyMembers);
        }
        let mut names = std::collections::HashSet::with_capacity(servers.len());
        let mut ids = std::collections::HashSet::new();
        for s in &servers {
            if !names.insert(s.name.as_str()) {
                return Err(ShardError::DuplicateMember(s.name.clone()));
            }
            if let Some(id) = s.id
                && !ids.insert(id)
            {
                return Err(ShardError::DuplicateMember(format!("id {id}")));
            }
        }
        let ids = assign_ids(&servers);
        let divisor = servers
            .iter()
            .map(|s| s.weight)
            .filter(|&w| w > 0)
            .fold(0, gcd)
            .max(1);
        // The work to build: map slots times servers (HAProxy's loop), or
        // tree nodes.
        let total: u64 = servers.iter().map(|s| u64::from(s.weight / divisor)).sum();
        let (work, max) = match hash_type.method {
            HaproxyMethod::MapBased => (total * servers.len() as u64, Haproxy::MAX_MAP_WORK),
            HaproxyMethod::Consistent => (
                servers.iter().map(|s| u64::from(s.weight) * 16).sum(),
                Haproxy::MAX_NODES,
            ),
        };
        if work > max {
            return Err(ShardError::TooManyPoints {
                points: work as f64,
                max: max as usize,
            });
        }
        let down = servers.iter().map(|s| s.disabled).collect();
        let mut backend = Haproxy {
            servers,
            ids,
            down,
            hash_type,
            all_backups: false,
            fixed: None,
            divisor,
            map: Vec::new(),
            keys: Vec::new(),
            owners: Vec::new(),
        };
        backend.build();
        Ok(backend)
    }

    /// A backend from its `server` lines, one per line (blank lines
    /// allowed).
    ///
    /// # Errors
    ///
    /// [`ShardError::MemberSyntax`] naming the first bad line, and as
    /// [`Haproxy::new`].
    pub fn parse_servers(lines: &str, hash_type: HaproxyHashType) -> Result<Self, ShardError> {
        let servers = lines
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Haproxy::new(servers, hash_type)
    }

    /// The backend with `option allbackups` (`true`) or without it: while
    /// no active server is up, keys spread over every backup server by the
    /// backend's hash, instead of all going to one backup.
    pub fn all_backups(mut self, on: bool) -> Self {
        self.all_backups = on;
        self.build();
        self
    }

    /// The backend with server `name` down (failed health checks, or
    /// `disable server`): its keys move, and under `consistent` no other
    /// key does.
    ///
    /// # Errors
    ///
    /// [`ShardError::UnknownMember`] for a name not in the backend.
    pub fn with_down(&self, name: &str) -> Result<Self, ShardError> {
        let at = self
            .servers
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| ShardError::UnknownMember(name.to_string()))?;
        let mut backend = self.clone();
        backend.down[at] = true;
        backend.build();
        Ok(backend)
    }

    /// The index (into [`servers`](Haproxy::servers)) of the server for a
    /// key's bytes, or `None` when no server is up.
    pub fn shard_for(&self, key: &[u8]) -> Option<ShardId> {
        self.place(self.hash_type.function.hash(key))
    }

    /// The server for a key's bytes, or `None` when no server is up.
    pub fn server_for(&self, key: &[u8]) -> Option<&HaproxyServer> {
        self.shard_for(key).map(|id| &self.servers[id.index()])
    }

    /// The server `balance source` picks for a client at `addr`, or `None`
    /// when no server is up.
    pub fn server_for_source(&self, addr: IpAddr) -> Option<&HaproxyServer> {
        let hash = match addr {
            IpAddr::V4(v4) => u32::from(v4),
            IpAddr::V6(v6) => v6
                .octets()
                .chunks_exact(4)
                .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
                .fold(0, |h, w| h ^ w),
        };
        self.place(hash).map(|id| &self.servers[id.index()])
    }

    /// The servers, in declaration order.
    pub fn servers(&self) -> &[HaproxyServer] {
        &self.servers
    }

    /// The id of each server (given or assigned), in declaration order.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// The `hash-type`.
    pub fn hash_type(&self) -> HaproxyHashType {
        self.hash_type
    }

    fn place(&self, hash: u32) -> Option<ShardId> {
        let hash = if self.hash_type.avalanche {
            haproxy_full_hash(hash)
        } else {
            hash
        };
        self.lookup(hash)
    }

    fn lookup(&self, hash: u32) -> Option<ShardId> {
        if let Some(only) = self.fixed {
            return Some(ShardId::new(only));
        }
        let owner = match self.hash_type.method {
            HaproxyMethod::MapBased => {
                if self.map.is_empty() {
                    return None;
                }
                self.map[(hash % self.map.len() as u32) as usize]
            }
            HaproxyMethod::Consistent => {
                let n = self.keys.len();
                if n == 0 {
                    return None;
                }
                let next = crate::ring::successor(&self.keys, hash);
                let prev = if next == 0 { n - 1 } else { next - 1 };
                let below = hash.wrapping_sub(self.keys[prev]);
                let above = self.keys[next].wrapping_sub(hash);
                self.owners[if below <= above { prev } else { next }]
            }
        };
        Some(ShardId::new(owner))
    }

    fn usable(&self, i: usize) -> bool {
        !self.down[i] && self.servers[i].weight > 0
    }

    /// The servers that take keys now: the usable active ones, or, when
    /// none is, the usable backups.
    fn serving(&self) -> Vec<usize> {
        let (backups, active): (Vec<usize>, Vec<usize>) = (0..self.servers.len())
            .filter(|&i| self.usable(i))
            .partition(|&i| self.servers[i].backup);
        if active.is_empty() { backups } else { active }
    }

    fn build(&mut self) {
        self.map.clear();
        self.keys.clear();
        self.owners.clear();
        self.fixed = None;
        let serving = self.serving();
        let on_backups = serving.first().is_some_and(|&i| self.servers[i].backup);
        if on_backups && !self.all_backups {
            self.fixed = self.fallback(&serving);
            return;
        }
        match self.hash_type.method {
            HaproxyMethod::MapBased => self.build_map(&serving),
            HaproxyMethod::Consistent => self.build_tree(&serving),
        }
    }

    /// Without `allbackups`, HAProxy counts only the first usable backup
    /// (`fbck`): one server in use, so it hashes nothing (every key takes
    /// slot or node 0). A consistent backend returns `fbck`; a map-based
    /// one builds its map over every usable backup with `fbck`'s weight as
    /// the total, so the first slot's winner, a heavier backup when there is
    /// one, takes every key.
    fn fallback(&self, backups: &[usize]) -> Option<u32> {
        let &first = backups.first()?;
        match self.hash_type.method {
            HaproxyMethod::Consistent => Some(first as u32),
            HaproxyMethod::MapBased => {
                let total = self.servers[first].weight / self.divisor;
                self.spread(backups, i64::from(total)).first().copied()
            }
        }
    }

    /// The map over `serving`, of as many slots as their weights sum to.
    fn build_map(&mut self, serving: &[usize]) {
        let total = serving
            .iter()
            .map(|&i| i64::from(self.servers[i].weight / self.divisor))
            .sum();
        self.map = self.spread(serving, total);
    }

    /// `recalc_server_map`: `total` slots, each going to the server whose
    /// running score, raised by its weight each round, first reaches the
    /// top (the earliest declared on a tie); with one slot, the first
    /// server.
    fn spread(&self, serving: &[usize], total: i64) -> Vec<u32> {
        let live: Vec<(u32, i64)> = serving
            .iter()
            .map(|&i| (i as u32, i64::from(self.servers[i].weight / self.divisor)))
            .collect();
        if total <= 1 {
            return live
                .first()
                .filter(|_| total == 1)
                .map(|s| s.0)
                .into_iter()
                .collect();
        }
        let mut map = Vec::with_capacity(total as usize);
        let mut score = vec![0i64; live.len()];
        for _ in 0..total {
            let mut best: Option<(usize, i64)> = None;
            for (k, &(_, weight)) in live.iter().enumerate() {
                score[k] += weight;
                let v = (score[k] + total) / total;
                if best.is_none_or(|(_, max)| v > max) {
                    best = Some((k, v));
                }
            }
            if let Some((k, _)) = best {
                map.push(live[k].0);
                score[k] -= total;
            }
        }
        map
    }

    /// `chash_init_server_tree`: `16·weight` nodes per usable server, in
    /// the tree (active or backup) that takes keys now.
    fn build_tree(&mut self, serving: &[usize]) {
        let mut nodes: Vec<(u32, u32)> = Vec::new();
        for &i in serving {
            let base = self.ids[i].wrapping_mul(4096);
            for j in 0..self.servers[i].weight * 16 {
                nodes.push((haproxy_full_hash(base.wrapping_add(j)), i as u32));
            }
        }
        // Equal keys stay in insertion order, as the tree keeps duplicates.
        nodes.sort_by_key(|n| n.0);
        (self.keys, self.owners) = nodes.into_iter().unzip();
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// HAProxy's server numbering: given ids kept, the others from a counter
/// that starts at 1, skips ids in use and moves past every line.
fn assign_ids(servers: &[HaproxyServer]) -> Vec<u32> {
    let mut used: Vec<u32> = servers.iter().filter_map(|s| s.id).collect();
    used.sort_unstable();
    let mut next: u32 = 1;
    let mut ids = Vec::with_capacity(servers.len());
    for s in servers {
        match s.id {
            Some(id) => ids.push(id),
            None => {
                while used.binary_search(&next).is_ok() {
                    next = next.wrapping_add(1);
                }
                let at = used.partition_point(|&u| u < next);
                used.insert(at, next);
                ids.push(next);
            }
        }
        next = next.wrapping_add(1);
    }
    ids
}

/// The backend as a weft [`Sharder`]: weft's key hash (its top 32 bits)
/// on HAProxy's slots or nodes, so shares and movement when servers go
/// down are the backend's. For HAProxy's own choice for a key's bytes, call
/// [`Haproxy::server_for`].
///
/// With every server down, every hash goes to server 0.
impl Sharder for Haproxy {
    fn shard_count(&self) -> usize {
        self.servers.len()
    }

    fn shard_for_hash(&self, hash: u64) -> ShardId {
        self.lookup((hash >> 32) as u32).unwrap_or(ShardId::new(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(lines: &str, hash_type: &str) -> Haproxy {
        Haproxy::parse_servers(lines, hash_type.parse().unwrap()).unwrap()
    }

    #[test]
    fn ids_are_numbered_as_haproxy_numbers_them() {
        let b = backend(
            "server a x:1\nserver b x:2 id 1\nserver c x:3\nserver d x:4 id 5\nserver e x:5",
            "map-based",
        );
        // a takes 2 (1 is b's); the counter moves past b to 4 for c; e
        // skips d's 5.
        assert_eq!(b.ids(), [2, 1, 4, 5, 6]);
        let plain = backend("server a x:1\nserver b x:2\nserver c x:3", "consistent");
        assert_eq!(plain.ids(), [1, 2, 3]);
    }

    #[test]
    fn the_map_spreads_servers_by_weight_in_order() {
        let b = backend(
            "server a x:1 weight 2\nserver b x:2 weight 4\nserver c x:3 weight 6",
            "map-based",
        );
        // Weights divided by their gcd (2): 1, 2, 3 over 6 slots.
        let mut counts = [0; 3];
        for &s in &b.map {
            counts[s as usize] += 1;
        }
        assert_eq!((b.map.len(), counts), (6, [1, 2, 3]));
        // recalc_server_map's order for 1:2:3, worked by hand: a wins the
        // first round's tie, then c, b, c, b, c.
        assert_eq!(b.map, [0, 2, 1, 2, 1, 2]);
    }

    #[test]
    fn down_and_zero_weight_servers_hold_nothing() {
        for t in ["map-based", "consistent"] {
            let b = backend(
                "server a x:1\nserver b x:2 weight 0\nserver c x:3 disabled\nserver d x:4",
                t,
            );
            let d = b.with_down("a").unwrap().with_down("d").unwrap();
            for k in 0..300u32 {
                let name = b.server_for(&k.to_le_bytes()).unwrap().name();
                assert!(name == "a" || name == "d", "{t}: {name}");
                assert_eq!(d.server_for(&k.to_le_bytes()), None);
            }
            assert!(b.with_down("zz").is_err());
        }
    }

    #[test]
    fn consistent_down_servers_move_only_their_keys() {
        let b = backend(
            "server a x:1 weight 3\nserver b x:2\nserver c x:3 weight 7\nserver d x:4",
            "consistent",
        );
        let without = b.with_down("c").unwrap();
        for k in 0..2000u32 {
            let key = format!("k{k}");
            let before = b.server_for(key.as_bytes()).unwrap().name();
            let after = without.server_for(key.as_bytes()).unwrap().name();
            assert!(
                before == after || before == "c",
                "{key}: {before} -> {after}"
            );
        }
    }

    #[test]
    fn source_hashing_xors_the_address_words() {
        let b = backend("server a x:1\nserver b x:2\nserver c x:3", "map-based");
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            b.server_for_source(v4).map(HaproxyServer::name),
            b.lookup(0x0a01_0203).map(|i| b.servers[i.index()].name())
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            b.server_for_source(v6).map(HaproxyServer::name),
            b.lookup(0x2001_0db8 ^ 1)
                .map(|i| b.servers[i.index()].name())
        );
    }

    #[test]
    fn bad_backends_are_refused_by_name() {
        for bad in [
            "server a",
            "server",
            "server a x:1 weight 257",
            "server a x:1 weight -1",
            "server a x:1 weight",
            "server a x:1 id 0",
            "server a x:1 id 2147483648",
        ] {
            let err = Haproxy::parse_servers(bad, HaproxyHashType::default()).unwrap_err();
            assert!(
                matches!(err, ShardError::MemberSyntax { .. }),
                "{bad}: {err}"
            );
        }
        let t = HaproxyHashType::default();
        assert_eq!(
            Haproxy::parse_servers("server a x:1\nserver a x:2", t).unwrap_err(),
            ShardError::DuplicateMember("a".into())
        );
        assert_eq!(
            Haproxy::parse_servers("server a x:1 id 4\nserver b x:2 id 4", t).unwrap_err(),
            ShardError::DuplicateMember("id 4".into())
        );
        assert_eq!(
            Haproxy::parse_servers("", t).unwrap_err(),
            ShardError::EmptyMembers
        );
        for bad in [
            "",
            "random",
            "consistent md5",
            "map-based sdbm avalanche x",
            "consistent sdbm fast",
        ] {
            assert!(bad.parse::<HaproxyHashType>().is_err(), "{bad}");
        }
    }

    #[test]
    fn backups_take_keys_only_while_no_active_server_is_up() {
        let lines = "server a x:1\nserver b x:2 backup weight 2\nserver c x:3 backup weight 10";
        for t in ["map-based", "consistent"] {
            let up = backend(lines, t);
            let down = up.with_down("a").unwrap();
            let spread = down.clone().all_backups(true);
            let mut seen = std::collections::BTreeSet::new();
            for k in 0..500u32 {
                let key = k.to_le_bytes();
                assert_eq!(up.server_for(&key).unwrap().name(), "a");
                // Without allbackups, one backup takes every key: the first
                // one under consistent, the first slot's winner (the
                // heavier c) under map-based.
                let one = if t == "consistent" { "b" } else { "c" };
                assert_eq!(down.server_for(&key).unwrap().name(), one, "{t}");
                seen.insert(spread.server_for(&key).unwrap().name().to_string());
            }
            assert_eq!(seen.len(), 2, "{t}: allbackups spreads over both");
            assert!(
                down.with_down("b")
                    .unwrap()
                    .with_down("c")
                    .unwrap()
                    .server_for(b"k")
                    .is_none()
            );
        }
    }

    #[test]
    fn backends_too_large_to_build_are_refused() {
        // 20,000 servers of weights 255 and 256 (gcd 1): 5.1 M slots × 20,000.
        let lines: String = (0..20_000)
            .map(|i| format!("server s{i} x:{i} weight {}\n", 255 + i % 2))
            .collect();
        for t in ["map-based", "consistent"] {
            let err = Haproxy::parse_servers(&lines, t.parse().unwrap()).unwrap_err();
            assert!(
                matches!(err, ShardError::TooManyPoints { .. }),
                "{t}: {err}"
            );
        }
        // 2,000 servers of weight 1 build in both.
        let lines: String = (0..2_000).map(|i| format!("server s{i} x:{i}\n")).collect();
        for t in ["map-based", "consistent"] {
            assert!(Haproxy::parse_servers(&lines, t.parse().unwrap()).is_ok());
        }
    }

    #[test]
    fn hash_functions_on_known_values() {
        // sdbm and djb2 of "a": 97 and 5381 * 33 + 97.
        assert_eq!(HaproxyHashFn::Sdbm.hash(b"a"), 97);
        assert_eq!(HaproxyHashFn::Djb2.hash(b"a"), 177_670);
        assert_eq!(HaproxyHashFn::Djb2.hash(b""), 5381);
        assert_eq!(HaproxyHashFn::Crc32.hash(b"123456789"), 0xcbf4_3926);
        assert_eq!(HaproxyHashFn::Wt6.hash(b""), 0xa53c_965a ^ 0x5ca6_953a);
    }
}
