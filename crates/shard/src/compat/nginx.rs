//! nginx `upstream { hash $key; }` and `hash $key consistent;`, byte-exact
//! with nginx 1.22 (`ngx_http_upstream_hash_module`; the same code since
//! 1.7.2).

use std::fmt;
use std::str::FromStr;

use weft_core::{ShardId, Sharder};

use crate::ShardError;

/// One `server` line of an upstream: its address as written, its
/// `weight=` and whether it is `down`.
///
/// Parsed from `server 10.0.0.1:8080 weight=2;` (the `server` word and the
/// `;` may be left out). `max_fails=`, `fail_timeout=` and `max_conns=`
/// are accepted and do not change the placement; `backup` is refused, as
/// nginx refuses it in a `hash` upstream.
///
/// # Examples
///
/// ```
/// use weft_shard::compat::NginxServer;
///
/// let s: NginxServer = "server 10.0.0.1:8080 weight=3 max_fails=2;".parse()?;
/// assert_eq!((s.address(), s.weight(), s.is_down()), ("10.0.0.1:8080", 3, false));
/// assert!("server 10.0.0.2 weight=0;".parse::<NginxServer>().is_err());
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxServer {
    address: String,
    weight: u32,
    down: bool,
}

impl NginxServer {
    /// A server at `address` (as written in its `server` line) of
    /// `weight`.
    ///
    /// # Errors
    ///
    /// As parsing its `server` line.
    pub fn new(address: &str, weight: u32) -> Result<Self, ShardError> {
        format!("server {address} weight={weight};").parse()
    }

    /// The address as written: what consistent hashing hashes.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The weight (1 unless `weight=` says otherwise).
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// Whether the line says `down`.
    pub fn is_down(&self) -> bool {
        self.down
    }
}

impl fmt::Display for NginxServer {
    /// The `server` line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "server {}", self.address)?;
        if self.weight != 1 {
            write!(f, " weight={}", self.weight)?;
        }
        if self.down {
            f.write_str(" down")?;
        }
        f.write_str(";")
    }
}

impl FromStr for NginxServer {
    type Err = ShardError;

    fn from_str(line: &str) -> Result<Self, ShardError> {
        let bad = |reason| ShardError::MemberSyntax {
            input: line.to_string(),
            reason,
        };
        let text = line.trim();
        let text = text.strip_suffix(';').unwrap_or(text);
        let mut words = text.split_whitespace();
        let mut address = words.next().ok_or_else(|| bad("empty server line"))?;
        if address == "server" {
            address = words
                .next()
                .ok_or_else(|| bad("a server line needs an address"))?;
        }
        let mut server = NginxServer {
            address: address.to_string(),
            weight: 1,
            down: false,
        };
        for word in words {
            if let Some(w) = word.strip_prefix("weight=") {
                server.weight = match w.parse::<u32>() {
                    Ok(w) if (1..=i32::MAX as u32).contains(&w) => w,
                    _ => return Err(bad("weight= must be a whole number from 1 to 2147483647")),
                };
            } else if word == "down" {
                server.down = true;
            } else if word == "backup" {
                return Err(bad("nginx refuses backup servers in a hash upstream"));
            } else if ["max_fails=", "fail_timeout=", "max_conns="]
                .iter()
                .any(|p| word.starts_with(p))
            {
                // Failure accounting: which servers are down right now is
                // the caller's to say (`NginxHash::with_down`).
            } else {
                return Err(bad(
                    "unknown server parameter (known: weight=, down, max_fails=, fail_timeout=, max_conns=)",
                ));
            }
        }
        Ok(server)
    }
}

/// Which `hash` an upstream has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NginxHashMode {
    /// `hash $key;`: Cache::Memcached's rehash loop over the weighted
    /// servers.
    Plain,
    /// `hash $key consistent;`: ketama-style points, 160 per unit of
    /// weight.
    Consistent,
}

/// The upstream server nginx proxies a request to under `hash $key` or
/// `hash $key consistent`, given the key's value.
///
/// - **`hash $key;`** The key's CRC-32 bits 16–30 pick a residue of
///   Σweights, which names a server by its weight's run in list order. A
///   `down` server (or one [`with_down`](NginxHash::with_down), failed by
///   `max_fails`) makes nginx try again with `crc32("{n}" ++ key)` added,
///   `n` = 1, 2, …; after 21 tries it gives up to round robin.
/// - **`hash $key consistent;`** Each server has `160 × weight` points,
///   a CRC-32 chain over `host \0 port` as written in its `server` line
///   (`unix:` paths without a port); equal points keep the first server's.
///   A key goes to the first point at or above its CRC-32, wrapping, and
///   past `down` servers to the next point, for 20 more points.
/// - **Round robin.** nginx does not hash an empty key, nor when the
///   upstream has one server; it falls back to round robin. So
///   [`server_for`](NginxHash::server_for) answers `None` for an empty key,
///   the one server (unless it is down) for a one-server upstream, and
///   `None` where nginx's tries run out: no client can say which server
///   round robin picks.
///
/// # Examples
///
/// ```
/// use weft_shard::compat::{NginxHash, NginxHashMode};
///
/// let up = NginxHash::parse_servers(
///     "server 10.0.0.1:8080;\nserver 10.0.0.2:8080 weight=2;\nserver 10.0.0.3:8080;",
///     NginxHashMode::Consistent,
/// )?;
/// let s = up.server_for(b"/img/42.png").unwrap();
/// assert_eq!(s.address(), "10.0.0.1:8080");
/// // With that server failed, the key moves to the next point's server.
/// let failed = up.with_down("10.0.0.1:8080")?;
/// assert_eq!(failed.server_for(b"/img/42.png").unwrap().address(), "10.0.0.3:8080");
/// assert_eq!(up.server_for(b""), None); // nginx: round robin
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct NginxHash {
    servers: Vec<NginxServer>,
    mode: NginxHashMode,
    /// Plain: the running sum of weights after each server.
    ends: Vec<u64>,
    /// Consistent: sorted distinct point values and their servers.
    points: Vec<u32>,
    owners: Vec<u32>,
}

/// nginx's tries before it falls back to round robin.
const TRIES: u32 = 20;

impl NginxHash {
    /// The most consistent-hash points (`160 × Σweights`) an upstream may
    /// have.
    pub const MAX_POINTS: usize = 1 << 24;

    /// An upstream of `servers` in their `server` lines' order.
    ///
    /// # Errors
    ///
    /// [`ShardError::EmptyMembers`] for no servers (nginx: "no servers in
    /// upstream"), [`ShardError::DuplicateMember`] for one address written
    /// twice (nginx would pick between the two by round robin), and
    /// [`ShardError::TooManyPoints`] for a consistent upstream above
    /// [`MAX_POINTS`](NginxHash::MAX_POINTS).
    pub fn new(servers: Vec<NginxServer>, mode: NginxHashMode) -> Result<Self, ShardError> {
        if servers.is_empty() {
            return Err(ShardError::EmptyMembers);
        }
        let mut seen = std::collections::HashSet::with_capacity(servers.len());
        if let Some(s) = servers.iter().find(|s| !seen.insert(s.address.as_str())) {
            return Err(ShardError::DuplicateMember(s.address.clone()));
        }
        let total: u64 = servers.iter().map(|s| u64::from(s.weight)).sum();
        let mut up = NginxHash {
            servers,
            mode,
            ends: Vec::new(),
            points: Vec::new(),
            owners: Vec::new(),
        };
        match mode {
            NginxHashMode::Plain => {
                up.ends = up
                    .servers
                    .iter()
                    .scan(0u64, |sum, s| {
                        *sum += u64::from(s.weight);
                        Some(*sum)
                    })
                    .collect();
            }
            NginxHashMode::Consistent => {
                if total.saturating_mul(160) > NginxHash::MAX_POINTS as u64 {
                    return Err(ShardError::TooManyPoints {
                        points: total as f64 * 160.0,
                        max: NginxHash::MAX_POINTS,
                    });
                }
                (up.points, up.owners) = continuum(&up.servers);
            }
        }
        Ok(up)
    }

    /// An upstream from its `server` lines, one per line or separated by
    /// `;` (blank lines allowed).
    ///
    /// # Errors
    ///
    /// [`ShardError::MemberSyntax`] naming the first bad line, and as
    /// [`NginxHash::new`].
    pub fn parse_servers(lines: &str, mode: NginxHashMode) -> Result<Self, ShardError> {
        let servers = lines
            .split([';', '\n'])
            .filter(|l| !l.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()?;
        NginxHash::new(servers, mode)
    }

    /// The upstream with the server at `address` down: what nginx routes
    /// by while `max_fails` holds it out, or with `down` on its line.
    ///
    /// # Errors
    ///
    /// [`ShardError::UnknownMember`] for an address not in the upstream.
    pub fn with_down(&self, address: &str) -> Result<Self, ShardError> {
        let at = self
            .servers
            .iter()
            .position(|s| s.address == address)
            .ok_or_else(|| ShardError::UnknownMember(address.to_string()))?;
        let mut up = self.clone();
        up.servers[at].down = true;
        Ok(up)
    }

    /// The index (into [`servers`](NginxHash::servers)) of the server nginx
    /// proxies `key` to, or `None` where nginx would use round robin.
    pub fn shard_for(&self, key: &[u8]) -> Option<ShardId> {
        if self.servers.len() == 1 {
            return (!self.servers[0].down).then(|| ShardId::new(0));
        }
        if key.is_empty() {
            return None;
        }
        match self.mode {
            NginxHashMode::Plain => self.plain(key),
            NginxHashMode::Consistent => {
                self.consistent(crate::ring::successor(&self.points, crc32fast::hash(key)))
            }
        }
    }

    /// The server nginx proxies `key` to, or `None` where nginx would use
    /// round robin.
    pub fn server_for(&self, key: &[u8]) -> Option<&NginxServer> {
        self.shard_for(key).map(|id| &self.servers[id.index()])
    }

    /// The servers, in their lines' order.
    pub fn servers(&self) -> &[NginxServer] {
        &self.servers
    }

    /// The `hash` mode.
    pub fn mode(&self) -> NginxHashMode {
        self.mode
    }

    fn plain(&self, key: &[u8]) -> Option<ShardId> {
        let total = *self.ends.last()?;
        let mut sum: u32 = 0;
        for rehash in 0..=TRIES {
            let mut h = crc32fast::Hasher::new();
            if rehash > 0 {
                h.update(rehash.to_string().as_bytes());
            }
            h.update(key);
            sum = sum.wrapping_add((h.finalize() >> 16) & 0x7fff);
            let w = u64::from(sum) % total;
            let at = self.ends.partition_point(|&end| end <= w);
            if !self.servers[at].down {
                return Some(ShardId::new(at as u32));
            }
        }
        None
    }

    fn consistent(&self, first: usize) -> Option<ShardId> {
        (0..=TRIES as usize)
            .map(|k| self.owners[(first + k) % self.points.len()])
            .find(|&s| !self.servers[s as usize].down)
            .map(ShardId::new)
    }
}

/// The consistent-hash points of `servers`: sorted, the first server's
/// kept where two are equal.
fn continuum(servers: &[NginxServer]) -> (Vec<u32>, Vec<u32>) {
    let mut entries: Vec<(u32, u32)> = Vec::new();
    for (index, server) in servers.iter().enumerate() {
        let (host, port) = host_and_port(&server.address);
        let mut base = crc32fast::Hasher::new();
        base.update(host.as_bytes());
        base.update(&[0]);
        base.update(port.as_bytes());
        let mut prev: u32 = 0;
        for _ in 0..u64::from(server.weight) * 160 {
            let mut h = base.clone();
            h.update(&prev.to_le_bytes());
            prev = h.finalize();
            entries.push((prev, index as u32));
        }
    }
    // A stable sort keeps list order among equal points, as glibc's qsort
    // (a merge sort) does; then the first of each value stays.
    entries.sort_by_key(|e| e.0);
    entries.dedup_by_key(|e| e.0);
    entries.into_iter().unzip()
}

/// nginx's split of a `server` address for hashing: `unix:` paths have no
/// port; otherwise the digits after the last `:`, if all that follows it
/// is digits.
fn host_and_port(address: &str) -> (&str, &str) {
    // Bytes, not a `str` slice: the fifth byte need not end a character.
    if address
        .as_bytes()
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"unix:"))
    {
        return (&address[5..], "");
    }
    let digits = address.bytes().rev().take_while(u8::is_ascii_digit).count();
    let cut = address.len() - digits;
    match address[..cut].strip_suffix(':') {
        Some(host) => (host, &address[cut..]),
        None => (address, ""),
    }
}

/// The upstream as a weft [`Sharder`]: weft's key hash on nginx's points
/// (consistent) or weighted residues (plain), skipping down servers as
/// nginx does, so shares and movement are the upstream's. For nginx's own
/// choice for a key's bytes, call [`NginxHash::server_for`].
///
/// A hash the upstream cannot place (every server down, or nginx's tries
/// run out) goes to server 0.
impl Sharder for NginxHash {
    fn shard_count(&self) -> usize {
        self.servers.len()
    }

    fn shard_for_hash(&self, hash: u64) -> ShardId {
        let found = match self.mode {
            NginxHashMode::Plain => {
                // nginx's rehash loop, with the next draws of weft's hash
                // for the CRC of "{n}key".
                let total = self.ends.last().copied().unwrap_or(1);
                let mut draw = hash;
                (0..=TRIES).find_map(|_| {
                    let at = self.ends.partition_point(|&end| end <= draw % total);
                    draw = crate::mix::mix64(draw);
                    (!self.servers[at].down).then(|| ShardId::new(at as u32))
                })
            }
            NginxHashMode::Consistent => {
                let top = (hash >> 32) as u32;
                self.consistent(crate::ring::successor(&self.points, top))
            }
        };
        found.unwrap_or(ShardId::new(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_as_nginx_splits_them() {
        assert_eq!(host_and_port("10.0.0.1:8080"), ("10.0.0.1", "8080"));
        assert_eq!(host_and_port("backend"), ("backend", ""));
        assert_eq!(host_and_port("[::1]:80"), ("[::1]", "80"));
        assert_eq!(host_and_port("[::1]"), ("[::1]", ""));
        assert_eq!(host_and_port("unix:/tmp/s.sock"), ("/tmp/s.sock", ""));
        assert_eq!(host_and_port("UNIX:/tmp/s"), ("/tmp/s", ""));
        assert_eq!(host_and_port("host8080"), ("host8080", ""));
        assert_eq!(host_and_port("h:"), ("h", ""));
        // A character across the fifth byte: no slice inside it.
        assert_eq!(host_and_port("abcdé:80"), ("abcdé", "80"));
        assert_eq!(host_and_port("日本"), ("日本", ""));
    }

    #[test]
    fn plain_hash_is_crc_bits_over_the_weighted_residues() {
        let up = NginxHash::parse_servers(
            "server a:1 weight=2;server b:1;server c:1 weight=3",
            NginxHashMode::Plain,
        )
        .unwrap();
        for k in 0..300u32 {
            let key = format!("k{k}");
            let w = u64::from((crc32fast::hash(key.as_bytes()) >> 16) & 0x7fff) % 6;
            let want = match w {
                0 | 1 => 0,
                2 => 1,
                _ => 2,
            };
            assert_eq!(up.shard_for(key.as_bytes()).unwrap().get(), want, "{key}");
        }
    }

    #[test]
    fn down_servers_are_passed_and_all_down_gives_up() {
        let up = NginxHash::parse_servers("a:1\nb:1\nc:1", NginxHashMode::Plain).unwrap();
        let up_c = NginxHash::parse_servers("a:1\nb:1\nc:1", NginxHashMode::Consistent).unwrap();
        for up in [up, up_c] {
            let b_down = up.with_down("b:1").unwrap();
            let all_down = b_down.with_down("a:1").unwrap().with_down("c:1").unwrap();
            for k in 0..500u32 {
                let key = k.to_string();
                let s = b_down.server_for(key.as_bytes()).map(NginxServer::address);
                assert_ne!(s, Some("b:1"));
                if up.server_for(key.as_bytes()).unwrap().address() != "b:1" {
                    assert_eq!(s, up.server_for(key.as_bytes()).map(NginxServer::address));
                }
                assert_eq!(all_down.server_for(key.as_bytes()), None);
            }
            assert!(up.with_down("zz:1").is_err());
        }
    }

    #[test]
    fn one_server_and_empty_keys_are_round_robin_cases() {
        let one = NginxHash::parse_servers("server a:1;", NginxHashMode::Plain).unwrap();
        assert_eq!(one.shard_for(b""), Some(ShardId::new(0)));
        assert_eq!(one.with_down("a:1").unwrap().shard_for(b"k"), None);
        let two = NginxHash::parse_servers("a:1;b:1", NginxHashMode::Consistent).unwrap();
        assert_eq!(two.shard_for(b""), None);
    }

    #[test]
    fn bad_upstreams_are_refused_by_name() {
        for bad in [
            "server a:1 weight=0;",
            "server a:1 weight=-1;",
            "server a:1 weight=x;",
            "server a:1 weight=4294967296;",
            "server a:1 backup;",
            "server a:1 resolve;",
            "server;",
        ] {
            let err = NginxHash::parse_servers(bad, NginxHashMode::Plain).unwrap_err();
            assert!(
                matches!(err, ShardError::MemberSyntax { .. }),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            NginxHash::parse_servers("", NginxHashMode::Plain).unwrap_err(),
            ShardError::EmptyMembers
        );
        assert_eq!(
            NginxHash::parse_servers("a:1;b:1;a:1", NginxHashMode::Plain).unwrap_err(),
            ShardError::DuplicateMember("a:1".into())
        );
        let heavy =
            NginxHash::parse_servers("a:1 weight=2147483647;b:1", NginxHashMode::Consistent);
        assert!(matches!(heavy, Err(ShardError::TooManyPoints { .. })));
        // Plain hashing has no points: a huge weight is fine.
        let plain =
            NginxHash::parse_servers("a:1 weight=2147483647;b:1", NginxHashMode::Plain).unwrap();
        assert!(plain.server_for(b"k").is_some());
    }
}
