//! groupcache's peer picking: Go's `groupcache/consistenthash` with its
//! default CRC-32 hash, the ring most Go services copied.

use weft_core::{ShardId, Sharder};

use crate::ShardError;

/// The peer a groupcache `HTTPPool` asks for a key: its
/// `consistenthash.Map` with the default hash, `crc32.ChecksumIEEE`.
///
/// - **Points.** Each peer string (as given to `HTTPPool.Set`, e.g.
///   `http://10.0.0.1:8080`) gets `replicas` points, the CRC-32 of the
///   decimal replica number followed by the peer (`"0http://…"`,
///   `"1http://…"`, …). `HTTPPool` uses 50 replicas unless
///   `HTTPPoolOptions.Replicas` says otherwise.
/// - **Key.** A key goes to the first point at or above its CRC-32,
///   wrapping to the first point.
/// - **Equal points.** Two points with one value belong to the peer added
///   later, as Go's map keeps the last write. Peers are added in the order
///   given, so the order matters only for such collisions; a peer listed
///   twice keeps its place at its last listing.
///
/// Matches `github.com/golang/groupcache/consistenthash` at 2c02b82
/// (unchanged since 2013) and the copies of it that keep the CRC-32 hash;
/// a `consistenthash.New(replicas, fn)` with another `fn` does not match.
///
/// # Examples
///
/// ```
/// use weft_shard::compat::Groupcache;
///
/// let pool = Groupcache::new(
///     ["http://10.0.0.1:8080", "http://10.0.0.2:8080", "http://10.0.0.3:8080"],
///     Groupcache::DEFAULT_REPLICAS,
/// )?;
/// assert_eq!(pool.peer_for(b"key"), "http://10.0.0.1:8080");
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Groupcache {
    peers: Vec<String>,
    replicas: usize,
    /// Sorted, distinct point values.
    points: Vec<u32>,
    /// The peer index of each point.
    owners: Vec<u32>,
}

impl Groupcache {
    /// `HTTPPool`'s replicas per peer (`defaultReplicas`).
    pub const DEFAULT_REPLICAS: usize = 50;

    /// The most points (peers × replicas) a pool may have.
    pub const MAX_POINTS: usize = 1 << 24;

    /// The pool of `peers`, in the order `HTTPPool.Set` gets them, with
    /// `replicas` points each.
    ///
    /// # Errors
    ///
    /// [`ShardError::EmptyMembers`] with no peers (groupcache would answer
    /// `""` for every key), [`ShardError::EmptyMemberName`] for an empty
    /// peer, [`ShardError::ZeroVirtualNodes`] for zero replicas (no points:
    /// again `""`), and [`ShardError::TooManyPoints`] above
    /// [`MAX_POINTS`](Groupcache::MAX_POINTS).
    pub fn new<I, S>(peers: I, replicas: usize) -> Result<Self, ShardError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let listed: Vec<String> = peers.into_iter().map(Into::into).collect();
        if listed.is_empty() {
            return Err(ShardError::EmptyMembers);
        }
        if listed.iter().any(String::is_empty) {
            return Err(ShardError::EmptyMemberName);
        }
        if replicas == 0 {
            return Err(ShardError::ZeroVirtualNodes);
        }
        let total = listed.len().saturating_mul(replicas);
        if total > Groupcache::MAX_POINTS {
            return Err(ShardError::TooManyPoints {
                points: listed.len() as f64 * replicas as f64,
                max: Groupcache::MAX_POINTS,
            });
        }
        let mut peers: Vec<String> = Vec::new();
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        // (point, write order, peer): the last write of a point wins.
        let mut entries: Vec<(u32, u32, u32)> = Vec::with_capacity(total);
        let mut label = Vec::new();
        for peer in &listed {
            let id = *index.entry(peer.as_str()).or_insert_with(|| {
                peers.push(peer.clone());
                peers.len() - 1
            });
            for i in 0..replicas {
                label.clear();
                label.extend_from_slice(i.to_string().as_bytes());
                label.extend_from_slice(peer.as_bytes());
                let order = entries.len() as u32;
                entries.push((crc32fast::hash(&label), order, id as u32));
            }
        }
        entries.sort_unstable();
        let mut points = Vec::with_capacity(entries.len());
        let mut owners = Vec::with_capacity(entries.len());
        for (i, &(point, _, owner)) in entries.iter().enumerate() {
            // Keep the last write of each value.
            if entries.get(i + 1).is_some_and(|next| next.0 == point) {
                continue;
            }
            points.push(point);
            owners.push(owner);
        }
        Ok(Groupcache {
            peers,
            replicas,
            points,
            owners,
        })
    }

    /// The index (into [`peers`](Groupcache::peers)) of the peer for
    /// `key`.
    pub fn shard_for(&self, key: &[u8]) -> ShardId {
        self.dispatch(crc32fast::hash(key))
    }

    /// The peer groupcache asks for `key`.
    pub fn peer_for(&self, key: &[u8]) -> &str {
        &self.peers[self.shard_for(key).index()]
    }

    /// The distinct peers, in the order first given.
    pub fn peers(&self) -> &[String] {
        &self.peers
    }

    /// Points per peer.
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    fn dispatch(&self, hash: u32) -> ShardId {
        ShardId::new(self.owners[crate::ring::successor(&self.points, hash)])
    }
}

/// The ring as a weft [`Sharder`]: weft's key hash (its top 32 bits) on
/// groupcache's points; for groupcache's own choice for a key's bytes, call
/// [`Groupcache::peer_for`].
impl Sharder for Groupcache {
    fn shard_count(&self) -> usize {
        self.peers.len()
    }

    fn shard_for_hash(&self, hash: u64) -> ShardId {
        self.dispatch((hash >> 32) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_the_crc_of_the_replica_number_and_the_peer() {
        let pool = Groupcache::new(["a", "b"], 2).unwrap();
        let mut want: Vec<(u32, u32)> = [("0a", 0), ("1a", 0), ("0b", 1), ("1b", 1)]
            .iter()
            .map(|&(l, o)| (crc32fast::hash(l.as_bytes()), o))
            .collect();
        want.sort_unstable();
        let got: Vec<(u32, u32)> = pool
            .points
            .iter()
            .copied()
            .zip(pool.owners.iter().copied())
            .collect();
        assert_eq!(got, want);
        // A key on a point belongs to that point; one above the last wraps.
        for (point, owner) in want {
            assert_eq!(pool.dispatch(point).get(), owner);
        }
        assert_eq!(pool.dispatch(u32::MAX).get(), pool.owners[0]);
    }

    #[test]
    fn a_peer_listed_twice_is_one_peer() {
        let pool = Groupcache::new(["a", "b", "a"], 50).unwrap();
        assert_eq!(pool.peers(), ["a", "b"]);
        let once = Groupcache::new(["a", "b"], 50).unwrap();
        for k in 0..500u32 {
            let key = k.to_string();
            assert_eq!(pool.peer_for(key.as_bytes()), once.peer_for(key.as_bytes()));
        }
    }

    #[test]
    fn bad_pools_are_refused() {
        let none: [&str; 0] = [];
        assert_eq!(
            Groupcache::new(none, 50).unwrap_err(),
            ShardError::EmptyMembers
        );
        assert_eq!(
            Groupcache::new(["a", ""], 50).unwrap_err(),
            ShardError::EmptyMemberName
        );
        assert_eq!(
            Groupcache::new(["a"], 0).unwrap_err(),
            ShardError::ZeroVirtualNodes
        );
        assert!(matches!(
            Groupcache::new(["a", "b"], usize::MAX),
            Err(ShardError::TooManyPoints { .. })
        ));
    }
}
