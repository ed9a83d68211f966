//! libmemcached's weighted ketama continuum.

use md5::{Digest, Md5};
use weft_core::{ShardId, Sharder};

use crate::{Members, ShardError};

/// The ketama key hash: the first four bytes of `MD5(key)`, little-endian.
pub fn ketama_hash(key: &[u8]) -> u32 {
    let d = Md5::digest(key);
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

/// libmemcached's weighted ketama (`MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA`
/// with `KETAMA_WEIGHTED`), point for point.
///
/// Members are `host:port` (or `host`, meaning port 11211) with whole-number
/// weights. Server `i` gets `points = ⌊pct · 160 / 4 · n + 10⁻¹⁰⌋ · 4` points,
/// computed as libmemcached does (the products in `f32`, the small constant
/// added in `f64`, the sum rounded back to `f32`), where
/// `pct = wᵢ / Σw`; so at some equal-weight counts (n = 25, 47, 50, …) a
/// server has 156 points, not 160, exactly like the C library. Point group
/// `p` hashes `host-p` when the port is 11211 (libmemcached leaves the
/// default port out) and `host:port-p` otherwise; each MD5 gives four
/// little-endian points. A key belongs to the first point at or above
/// [`ketama_hash`] of it, wrapping to the first point.
///
/// # Examples
///
/// ```
/// use weft_shard::compat::Ketama;
///
/// let ring = Ketama::new("10.0.1.1:11211=600,10.0.1.2:11211=300".parse()?)?;
/// let owner = ring.server_for(b"user-42");
/// assert!(owner.starts_with("10.0.1."));
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Ketama {
    members: Members,
    points: Vec<u32>,
    owners: Vec<u32>,
}

impl Ketama {
    /// The most points a continuum may have.
    pub const MAX_POINTS: usize = 1 << 24;

    /// Builds the continuum.
    ///
    /// # Errors
    ///
    /// [`ShardError::WeightNotWhole`] for a weight that is not a whole
    /// number (libmemcached weights are integers),
    /// [`ShardError::TooManyPoints`] above
    /// [`MAX_POINTS`](Ketama::MAX_POINTS) points (160 a member), and
    /// [`ShardError::MemberSyntax`] for a port that is not a number.
    pub fn new(members: Members) -> Result<Self, ShardError> {
        let mut total: u64 = 0;
        for m in &members {
            if m.weight.fract() != 0.0 || m.weight > f64::from(u32::MAX) {
                return Err(ShardError::WeightNotWhole {
                    member: m.name.clone(),
                    weight: m.weight,
                    scheme: "libmemcached ketama",
                    max: u64::from(u32::MAX),
                });
            }
            total += m.weight as u64;
        }
        // 160 points a member whatever the weights (their shares of 160·n).
        let points = 160.0 * members.len() as f64;
        if points > Ketama::MAX_POINTS as f64 {
            return Err(ShardError::TooManyPoints {
                points,
                max: Ketama::MAX_POINTS,
            });
        }
        let live = members.len();
        let mut entries: Vec<(u32, u32)> = Vec::new();
        for (id, m) in members.iter().enumerate() {
            let (host, port) = split_host_port(&m.name)?;
            let points = point_count(m.weight as u32, total, live);
            for p in 0..points / 4 {
                let label = if port == 11211 {
                    format!("{host}-{p}")
                } else {
                    format!("{host}:{port}-{p}")
                };
                let d = Md5::digest(label.as_bytes());
                for x in 0..4 {
                    let v =
                        u32::from_le_bytes([d[4 * x], d[4 * x + 1], d[4 * x + 2], d[4 * x + 3]]);
                    entries.push((v, id as u32));
                }
            }
        }
        entries.sort_unstable();
        Ok(Ketama {
            members,
            points: entries.iter().map(|e| e.0).collect(),
            owners: entries.iter().map(|e| e.1).collect(),
        })
    }

    /// The member id owning `key`.
    pub fn shard_for(&self, key: &[u8]) -> ShardId {
        let point = self.point_index(ketama_hash(key));
        ShardId::new(self.owners[point])
    }

    /// The name of the member owning `key`.
    pub fn server_for(&self, key: &[u8]) -> &str {
        // invariant: every owner id indexes `members`.
        self.members
            .get(self.shard_for(key))
            .map_or("", |m| m.name.as_str())
    }

    /// The continuum point that `key` lands on.
    pub fn point_for(&self, key: &[u8]) -> u32 {
        self.points[self.point_index(ketama_hash(key))]
    }

    /// The number of points on the continuum.
    pub fn point_count(&self) -> usize {
        self.points.len()
    }

    /// The members, by id.
    pub fn members(&self) -> &Members {
        &self.members
    }

    fn point_index(&self, hash: u32) -> usize {
        crate::ring::successor(&self.points, hash)
    }
}

/// The points of a server of `weight` among `live` servers of `total`
/// weight, as libmemcached and twemproxy compute them:
/// `⌊pct · 160 / 4 · n + 10⁻¹⁰⌋ · 4` with the products in `f32`, the small
/// constant added in `f64`, and the sum rounded back to `f32`.
pub(crate) fn point_count(weight: u32, total: u64, live: usize) -> u32 {
    let pct = weight as f32 / total as f32;
    let scaled = pct * 160.0 / 4.0 * live as f32;
    ((f64::from(scaled) + 0.000_000_000_1) as f32).floor() as u32 * 4
}

fn split_host_port(name: &str) -> Result<(&str, u16), ShardError> {
    match name.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.ends_with(':') => {
            let port = port.parse().map_err(|_| ShardError::MemberSyntax {
                input: name.to_string(),
                reason: "port after ':' is not a number in 0..=65535",
            })?;
            Ok((host, port))
        }
        _ => Ok((name, 11211)),
    }
}

/// Ketama as a weft [`Sharder`]: weft's key hash (its top 32 bits) on
/// libmemcached's continuum. The servers' points are libmemcached's, so
/// the movement on a membership change is ketama's, but a key's point is
/// not: for routing byte-compatible with libmemcached, call the inherent
/// [`Ketama::shard_for`] with the key's bytes.
impl Sharder for Ketama {
    fn shard_count(&self) -> usize {
        self.members.len()
    }

    fn shard_for_hash(&self, hash: u64) -> ShardId {
        ShardId::new(self.owners[self.point_index((hash >> 32) as u32)])
    }
}
