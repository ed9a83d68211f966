//! twemproxy (nutcracker) pools: `distribution: ketama | modula`, every
//! `hash:`, `hash_tag:`, named and weighted servers, byte-exact with
//! nutcracker 0.5.0.

mod hash;
mod server;

use std::fmt;
use std::str::FromStr;

use md5::{Digest, Md5};
use weft_core::{ShardId, Sharder};

pub use hash::TwemproxyHash;
pub use server::TwemproxyServer;

use super::ketama::point_count;
use crate::ShardError;

/// A pool's `distribution:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// `ketama`: a continuum of about 160 MD5 points per server.
    Ketama,
    /// `modula`: `hash mod Σweights`, each server taking `weight`
    /// consecutive residues in pool order.
    Modula,
}

/// Reads `ketama` or `modula`; `random` is refused: twemproxy picks a
/// random server per request, which no client can reproduce.
impl FromStr for Distribution {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Self, ShardError> {
        match s {
            "ketama" => Ok(Distribution::Ketama),
            "modula" => Ok(Distribution::Modula),
            "random" => Err(ShardError::NotReproducible {
                scheme: "twemproxy distribution: random",
            }),
            other => Err(ShardError::UnknownScheme {
                what: "twemproxy distribution",
                name: other.to_string(),
                known: "ketama, modula (random cannot be reproduced)",
            }),
        }
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Distribution::Ketama => "ketama",
            Distribution::Modula => "modula",
        })
    }
}

/// A twemproxy pool's placement: which server nutcracker sends a key to.
///
/// Built from the pool's `servers:` lines, its `distribution:` and its
/// `hash:`; [`hash_tag`](Twemproxy::hash_tag) adds `hash_tag:`. The
/// placement is nutcracker 0.5.0's, point for point:
///
/// - **Pool order.** twemproxy sorts a pool's servers by point name
///   (shorter names first, then bytewise), so [`servers`](Twemproxy::servers)
///   is in that order, whatever order the lines came in; modula's residues
///   follow it.
/// - **Key.** With a hash tag `{}`, the bytes between the first `{` and
///   the next `}` after it, when there is at least one; otherwise the whole
///   key. An empty key hashes to 0. A pool of one server takes every key.
/// - **ketama** computes libmemcached's point counts (about 160 per server,
///   shares by weight, the same `f32` rounding), hashing `name-i` for the
///   point name (truncated to 272 bytes, as twemproxy's buffer does),
///   four points per MD5; a key goes to the first point at or above its
///   `hash:` value, wrapping.
/// - **Ejected servers** (`auto_eject_hosts`): nutcracker rebuilds the
///   distribution over the live servers, which is
///   [`without`](Twemproxy::without).
///
/// # Against libmemcached's ketama
///
/// [`super::Ketama`] is libmemcached's. The continuum is built the same
/// way from the same point names when no server is named, but twemproxy
/// hashes keys with the pool's `hash:` (default `fnv1a_64`, where
/// libmemcached uses MD5) and hashes a server's *name* when it has one. So
/// a pool with `hash: md5` and unnamed servers routes exactly like
/// libmemcached's weighted ketama, and any other pool does not.
///
/// # Examples
///
/// ```
/// use weft_shard::compat::{Distribution, Twemproxy, TwemproxyHash};
///
/// let pool = Twemproxy::parse_servers(
///     "- 127.0.0.1:6380:1 server1\n- 127.0.0.1:6381:1 server2\n- 127.0.0.1:6382:2 server3",
///     Distribution::Ketama,
///     TwemproxyHash::Fnv1a_64,
/// )?
/// .hash_tag("{}")?;
/// let a = pool.server_for(b"user:{42}:profile");
/// let b = pool.server_for(b"user:{42}:orders");
/// assert_eq!(a, b); // the same tag, the same server
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Twemproxy {
    servers: Vec<TwemproxyServer>,
    distribution: Distribution,
    hash: TwemproxyHash,
    tag: Option<[u8; 2]>,
    /// Ketama: sorted point values; modula: empty.
    points: Vec<u32>,
    /// The server index of each point (ketama) or residue (modula).
    owners: Vec<u32>,
}

/// twemproxy's point-name buffer: 272 bytes and the terminating NUL.
const MAX_LABEL: usize = 272;

impl Twemproxy {
    /// The most continuum points or modula residues (Σweights) a pool may
    /// have.
    pub const MAX_POINTS: usize = 1 << 24;

    /// A pool of `servers` (in any order) with its distribution and hash.
    ///
    /// # Errors
    ///
    /// [`ShardError::EmptyMembers`] for no servers,
    /// [`ShardError::DuplicateMember`] for two servers with one point name
    /// (twemproxy refuses the configuration), and
    /// [`ShardError::TooManyPoints`] for a modula pool whose weights sum
    /// above [`MAX_POINTS`](Twemproxy::MAX_POINTS) or weights whose sum
    /// overflows twemproxy's 32-bit total.
    pub fn new(
        mut servers: Vec<TwemproxyServer>,
        distribution: Distribution,
        hash: TwemproxyHash,
    ) -> Result<Self, ShardError> {
        if servers.is_empty() {
            return Err(ShardError::EmptyMembers);
        }
        if servers.len() > Twemproxy::MAX_POINTS {
            return Err(ShardError::TooManyPoints {
                points: servers.len() as f64,
                max: Twemproxy::MAX_POINTS,
            });
        }
        servers.sort_by(|a, b| {
            let (a, b) = (a.point_name().as_bytes(), b.point_name().as_bytes());
            a.len().cmp(&b.len()).then(a.cmp(b))
        });
        if let Some(w) = servers
            .windows(2)
            .find(|w| w[0].point_name() == w[1].point_name())
        {
            return Err(ShardError::DuplicateMember(w[0].point_name().to_string()));
        }
        let total: u64 = servers.iter().map(|s| u64::from(s.weight())).sum();
        let limit = match distribution {
            Distribution::Modula => Twemproxy::MAX_POINTS as u64,
            Distribution::Ketama => u64::from(u32::MAX),
        };
        if total > limit {
            return Err(ShardError::TooManyPoints {
                points: total as f64,
                max: limit as usize,
            });
        }
        let (points, owners) = match distribution {
            Distribution::Ketama => continuum(&servers, total),
            Distribution::Modula => {
                let owners = servers
                    .iter()
                    .enumerate()
                    .flat_map(|(i, s)| std::iter::repeat_n(i as u32, s.weight() as usize))
                    .collect();
                (Vec::new(), owners)
            }
        };
        Ok(Twemproxy {
            servers,
            distribution,
            hash,
            tag: None,
            points,
            owners,
        })
    }

    /// A pool from its `servers:` lines, one per line (`- ` prefixes and
    /// blank lines allowed).
    ///
    /// # Errors
    ///
    /// [`ShardError::MemberSyntax`] naming the first bad line, and as
    /// [`Twemproxy::new`].
    pub fn parse_servers(
        lines: &str,
        distribution: Distribution,
        hash: TwemproxyHash,
    ) -> Result<Self, ShardError> {
        let servers = lines
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Twemproxy::new(servers, distribution, hash)
    }

    /// Routes by the bytes inside a hash tag: `tag` is two characters, the
    /// opening and the closing one (`"{}"`).
    ///
    /// # Errors
    ///
    /// [`ShardError::MemberSyntax`] unless `tag` is exactly two bytes
    /// (twemproxy: "is not a valid hash tag string with two characters").
    pub fn hash_tag(mut self, tag: &str) -> Result<Self, ShardError> {
        match tag.as_bytes() {
            &[open, close] => {
                self.tag = Some([open, close]);
                Ok(self)
            }
            _ => Err(ShardError::MemberSyntax {
                input: tag.to_string(),
                reason: "a hash tag is exactly two characters, e.g. \"{}\"",
            }),
        }
    }

    /// The pool without the server whose point name is `name`: what
    /// nutcracker routes by while it has ejected that server.
    ///
    /// # Errors
    ///
    /// [`ShardError::UnknownMember`] for a name not in the pool and
    /// [`ShardError::LastMember`] for the only server.
    pub fn without(&self, name: &str) -> Result<Self, ShardError> {
        let at = self
            .servers
            .iter()
            .position(|s| s.point_name() == name)
            .ok_or_else(|| ShardError::UnknownMember(name.to_string()))?;
        if self.servers.len() == 1 {
            return Err(ShardError::LastMember(name.to_string()));
        }
        let mut servers = self.servers.clone();
        servers.remove(at);
        let mut pool = Twemproxy::new(servers, self.distribution, self.hash)?;
        pool.tag = self.tag;
        Ok(pool)
    }

    /// The index (into [`servers`](Twemproxy::servers)) of the server
    /// nutcracker sends `key` to.
    pub fn shard_for(&self, key: &[u8]) -> ShardId {
        if self.servers.len() == 1 {
            return ShardId::new(0);
        }
        let key = self.tagged(key);
        let hash = if key.is_empty() {
            0
        } else {
            self.hash.hash(key)
        };
        self.dispatch(hash)
    }

    /// The server nutcracker sends `key` to.
    pub fn server_for(&self, key: &[u8]) -> &TwemproxyServer {
        &self.servers[self.shard_for(key).index()]
    }

    /// The servers, in twemproxy's pool order (by point name).
    pub fn servers(&self) -> &[TwemproxyServer] {
        &self.servers
    }

    /// The distribution.
    pub fn distribution(&self) -> Distribution {
        self.distribution
    }

    /// The key hash.
    pub fn hash(&self) -> TwemproxyHash {
        self.hash
    }

    /// The part of `key` the pool hashes: inside the hash tag, if it has
    /// one and the key holds a non-empty tagged part.
    fn tagged<'k>(&self, key: &'k [u8]) -> &'k [u8] {
        let Some([open, close]) = self.tag else {
            return key;
        };
        let Some(start) = key.iter().position(|&b| b == open) else {
            return key;
        };
        match key[start + 1..].iter().position(|&b| b == close) {
            Some(len) if len > 0 => &key[start + 1..start + 1 + len],
            _ => key,
        }
    }

    fn dispatch(&self, hash: u32) -> ShardId {
        let owner = match self.distribution {
            Distribution::Ketama => self.owners[crate::ring::successor(&self.points, hash)],
            Distribution::Modula => self.owners[(hash % self.owners.len() as u32) as usize],
        };
        ShardId::new(owner)
    }
}

/// twemproxy's ketama continuum over `servers` (in pool order) of `total`
/// weight.
fn continuum(servers: &[TwemproxyServer], total: u64) -> (Vec<u32>, Vec<u32>) {
    let mut entries: Vec<(u32, u32)> = Vec::with_capacity(servers.len() * 160);
    for (index, server) in servers.iter().enumerate() {
        let points = point_count(server.weight(), total, servers.len());
        for p in 0..points / 4 {
            let mut label = format!("{}-{p}", server.point_name()).into_bytes();
            label.truncate(MAX_LABEL);
            let d = Md5::digest(&label);
            for x in 0..4 {
                let v = u32::from_le_bytes([d[4 * x], d[4 * x + 1], d[4 * x + 2], d[4 * x + 3]]);
                entries.push((v, index as u32));
            }
        }
    }
    // Equal points keep pool order, as glibc's (merge sort) qsort keeps
    // insertion order.
    entries.sort_unstable();
    entries.into_iter().unzip()
}

/// The pool as a weft [`Sharder`]: weft's key hash (its top 32 bits) on
/// twemproxy's continuum or residues, so membership changes move keys as
/// the pool does; for nutcracker's own routing of a key's bytes, call the
/// inherent [`Twemproxy::shard_for`].
impl Sharder for Twemproxy {
    fn shard_count(&self) -> usize {
        self.servers.len()
    }

    fn shard_for_hash(&self, hash: u64) -> ShardId {
        self.dispatch((hash >> 32) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(lines: &str, d: Distribution, h: TwemproxyHash) -> Twemproxy {
        Twemproxy::parse_servers(lines, d, h).unwrap()
    }

    #[test]
    fn servers_take_twemproxys_pool_order() {
        let p = pool(
            "10.0.0.1:6379:1 bb\n10.0.0.1:6380:1 a\n10.0.0.1:6381:1 ab",
            Distribution::Modula,
            TwemproxyHash::Md5,
        );
        let names: Vec<&str> = p.servers().iter().map(|s| s.point_name()).collect();
        assert_eq!(names, ["a", "ab", "bb"]);
    }

    #[test]
    fn the_ketama_hash_of_twemproxys_own_test_vectors() {
        // src/test_all.c: ketama_hash("server1-8", 0) and (.., 3).
        let d = Md5::digest(b"server1-8");
        let word =
            |x: usize| u32::from_le_bytes([d[4 * x], d[4 * x + 1], d[4 * x + 2], d[4 * x + 3]]);
        assert_eq!(word(0), 3_853_726_576);
        assert_eq!(word(3), 2_667_054_752);
    }

    #[test]
    fn hash_tags_route_by_the_tagged_part() {
        let p = pool(
            "10.0.0.1:6379:1 a\n10.0.0.2:6379:1 b\n10.0.0.3:6379:1 c",
            Distribution::Modula,
            TwemproxyHash::Crc32a,
        )
        .hash_tag("{}")
        .unwrap();
        let by_hash = |k: &[u8]| p.dispatch(TwemproxyHash::Crc32a.hash(k));
        assert_eq!(p.shard_for(b"x{tag}y"), by_hash(b"tag"));
        assert_eq!(p.shard_for(b"{tag}"), by_hash(b"tag"));
        // No closing brace, or an empty tag: the whole key.
        assert_eq!(p.shard_for(b"x{tag"), by_hash(b"x{tag"));
        assert_eq!(p.shard_for(b"x{}tag}"), by_hash(b"x{}tag}"));
        // The first opening brace and the next closing one.
        assert_eq!(p.shard_for(b"{a{b}c}"), by_hash(b"a{b"));
        assert_eq!(p.shard_for(b""), p.dispatch(0));
        for bad in ["", "{", "{}}"] {
            assert!(p.clone().hash_tag(bad).is_err(), "{bad:?}");
        }
        // Two bytes, as twemproxy counts them.
        assert!(p.clone().hash_tag("é").is_ok());
    }

    #[test]
    fn bad_pools_are_refused_by_name() {
        assert_eq!(
            Twemproxy::new(vec![], Distribution::Ketama, TwemproxyHash::Md5).unwrap_err(),
            ShardError::EmptyMembers
        );
        let dup = Twemproxy::parse_servers(
            "10.0.0.1:6379:1 a\n10.0.0.2:6379:1 a",
            Distribution::Ketama,
            TwemproxyHash::Md5,
        );
        assert_eq!(dup.unwrap_err(), ShardError::DuplicateMember("a".into()));
        // Unnamed on port 11211 and named alike: one point name.
        let dup = Twemproxy::parse_servers(
            "10.0.0.1:11211:1\n10.0.0.2:6379:1 10.0.0.1",
            Distribution::Ketama,
            TwemproxyHash::Md5,
        );
        assert!(matches!(dup, Err(ShardError::DuplicateMember(_))));
        let heavy = Twemproxy::parse_servers(
            "10.0.0.1:6379:2147483647\n10.0.0.2:6379:2147483647\n10.0.0.3:6379:2",
            Distribution::Ketama,
            TwemproxyHash::Md5,
        );
        assert!(matches!(heavy, Err(ShardError::TooManyPoints { .. })));
        let wide = Twemproxy::parse_servers(
            "10.0.0.1:6379:20000000",
            Distribution::Modula,
            TwemproxyHash::Md5,
        );
        assert!(matches!(wide, Err(ShardError::TooManyPoints { .. })));
        let line = Twemproxy::parse_servers(
            "10.0.0.1:6379:1\n10.0.0.2:6379",
            Distribution::Ketama,
            TwemproxyHash::Md5,
        );
        assert!(
            matches!(line, Err(ShardError::MemberSyntax { ref input, .. }) if input == "10.0.0.2:6379"),
            "{line:?}"
        );
        assert!(matches!(
            "random".parse::<Distribution>(),
            Err(ShardError::NotReproducible { .. })
        ));
        assert!(matches!(
            "consistent".parse::<Distribution>(),
            Err(ShardError::UnknownScheme { .. })
        ));
    }

    #[test]
    fn huge_weights_and_long_names_build() {
        let long = "n".repeat(1000);
        let p = pool(
            &format!("10.0.0.1:6379:2147483647 {long}\n10.0.0.2:6379:1 b"),
            Distribution::Ketama,
            TwemproxyHash::Fnv1a_64,
        );
        // The heavy server takes (nearly) all 320 points.
        assert!(p.points.len() >= 316, "{}", p.points.len());
        for k in 0..100u32 {
            let _ = p.server_for(&k.to_le_bytes());
        }
    }

    #[test]
    fn an_ejected_server_leaves_the_others_their_keys_under_ketama() {
        let p = pool(
            "10.0.0.1:6379:1 a\n10.0.0.2:6379:1 b\n10.0.0.3:6379:1 c\n10.0.0.4:6379:1 d",
            Distribution::Ketama,
            TwemproxyHash::Murmur,
        );
        let q = p.without("b").unwrap();
        for k in 0..2000u32 {
            let key = k.to_string();
            let before = p.server_for(key.as_bytes()).point_name();
            let after = q.server_for(key.as_bytes()).point_name();
            assert!(
                before == after || before == "b",
                "{key}: {before} -> {after}"
            );
        }
        assert!(p.without("zz").is_err());
    }
}
