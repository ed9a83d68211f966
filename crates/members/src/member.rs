//! A member's record, and the member sets a watcher yields.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weft_lease::Version;

use crate::MembersError;

/// What a process registers about itself: a stable name (its place in
/// every placement, kept across restarts), where to reach it, its weight,
/// and small metadata (shard and replica index, zone, …).
///
/// # Examples
///
/// ```
/// use weft_members::Member;
///
/// let m = Member::new("cache-1", "10.0.0.7:11211")?
///     .with_weight(2.0)?
///     .with_meta("zone", "eu-west-1a")?;
/// assert_eq!(m.name(), "cache-1");
/// # Ok::<(), weft_members::MembersError>(())
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Record", into = "Record")]
pub struct Member {
    /// Shared: a member set clones its members on every change.
    r: Arc<Record>,
}

/// A member's fields, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    name: String,
    address: String,
    #[serde(default = "one")]
    weight: f64,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

impl From<Record> for Member {
    fn from(r: Record) -> Member {
        Member { r: Arc::new(r) }
    }
}

impl From<Member> for Record {
    fn from(m: Member) -> Record {
        Arc::unwrap_or_clone(m.r)
    }
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("name", &self.r.name)
            .field("address", &self.r.address)
            .field("weight", &self.r.weight)
            .field("metadata", &self.r.metadata)
            .finish()
    }
}

fn one() -> f64 {
    1.0
}

/// The longest member name, in bytes.
pub const MAX_NAME: usize = 253;

impl Member {
    /// A member of weight 1 with no metadata.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for an empty name, a name over
    /// [`MAX_NAME`] bytes or with `/` or a control character (a name is a
    /// key's last segment), or an empty address.
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Result<Self, MembersError> {
        let member = Member::from(Record {
            name: name.into(),
            address: address.into(),
            weight: 1.0,
            metadata: BTreeMap::new(),
        });
        member.validate()?;
        Ok(member)
    }

    /// This member with `weight` (its share of keys relative to others).
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for a weight that is not finite and above
    /// zero.
    pub fn with_weight(mut self, weight: f64) -> Result<Self, MembersError> {
        check_weight(weight)?;
        Arc::make_mut(&mut self.r).weight = weight;
        Ok(self)
    }

    /// This member with metadata `key` set to `value`.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for an empty key.
    pub fn with_meta(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MembersError> {
        let key = key.into();
        if key.is_empty() {
            return Err(MembersError::invalid(
                "metadata key",
                key,
                "a non-empty key",
            ));
        }
        Arc::make_mut(&mut self.r)
            .metadata
            .insert(key, value.into());
        Ok(self)
    }

    /// The member's name.
    pub fn name(&self) -> &str {
        &self.r.name
    }

    /// Where to reach it.
    pub fn address(&self) -> &str {
        &self.r.address
    }

    /// Its weight.
    pub fn weight(&self) -> f64 {
        self.r.weight
    }

    /// Its metadata.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.r.metadata
    }

    /// Metadata `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.r.metadata.get(key).map(String::as_str)
    }

    /// Checks every field (a record read from a store is checked too).
    pub(crate) fn validate(&self) -> Result<(), MembersError> {
        check_name(&self.r.name)?;
        if self.r.address.is_empty() {
            return Err(MembersError::invalid(
                "address",
                &self.r.address,
                "a non-empty address",
            ));
        }
        check_weight(self.r.weight)?;
        if self.r.metadata.keys().any(String::is_empty) {
            return Err(MembersError::invalid("metadata key", "", "a non-empty key"));
        }
        Ok(())
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        // invariant: a struct of strings, a finite f64 and a string map
        // always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Member> {
        let m: Member = serde_json::from_slice(bytes).ok()?;
        m.validate().ok()?;
        Some(m)
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), MembersError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(MembersError::invalid(
            "name",
            name,
            format!("1 to {MAX_NAME} bytes"),
        ));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(MembersError::invalid(
            "name",
            name,
            "no '/' and no control characters (a name is a key's last segment)",
        ));
    }
    Ok(())
}

fn check_weight(weight: f64) -> Result<(), MembersError> {
    if !(weight.is_finite() && weight > 0.0) {
        return Err(MembersError::invalid(
            "weight",
            weight,
            "finite and above zero",
        ));
    }
    Ok(())
}

/// A live member: its record and the fencing token of the registration
/// that holds it (a member that re-registered after losing its lease has a
/// higher token).
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    /// The record.
    pub member: Member,
    /// The registration's lease token.
    pub token: Version,
}

/// A set of live members, sorted by name, as a watcher yields it.
///
/// - `epoch` numbers the sets one watcher yields (1, 2, …): a later set
///   has a higher epoch.
/// - `digest` is the content's fingerprint (names, tokens, addresses,
///   weights, metadata): two processes whose sets have the same digest
///   hold the same members, and route every key alike.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberSet {
    epoch: u64,
    digest: u64,
    members: Arc<[Live]>,
}

impl MemberSet {
    pub(crate) fn new(epoch: u64, mut members: Vec<Live>) -> Self {
        members.sort_by(|a, b| a.member.r.name.cmp(&b.member.r.name));
        let digest = digest(&members);
        MemberSet {
            epoch,
            digest,
            members: members.into(),
        }
    }

    /// A set of `members` numbered `epoch`, for a sharder fed from
    /// elsewhere than a [`Watcher`](crate::Watcher) (a static list, a
    /// test); sets fed to one sharder must number later sets higher.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for two members of one name, or a member
    /// whose fields are not valid.
    ///
    /// # Examples
    ///
    /// ```
    /// use weft_lease::Version;
    /// use weft_members::{Live, Member, MemberSet};
    ///
    /// let live = |name: &str| Live { member: Member::new(name, "h:1").unwrap(), token: Version(1) };
    /// let set = MemberSet::of(1, vec![live("b"), live("a")])?;
    /// assert_eq!(set.members()[0].member.name(), "a");
    /// assert!(MemberSet::of(1, vec![live("a"), live("a")]).is_err());
    /// # Ok::<(), weft_members::MembersError>(())
    /// ```
    pub fn of(epoch: u64, members: Vec<Live>) -> Result<Self, MembersError> {
        for l in &members {
            l.member.validate()?;
        }
        let set = MemberSet::new(epoch, members);
        if let Some(pair) = set
            .members
            .windows(2)
            .find(|w| w[0].member.r.name == w[1].member.r.name)
        {
            return Err(MembersError::invalid(
                "member set",
                pair[0].member.name(),
                "one member per name",
            ));
        }
        Ok(set)
    }

    /// The set's number among those its watcher yielded.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The content's fingerprint.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The members, sorted by name.
    pub fn members(&self) -> &[Live] {
        &self.members
    }

    /// The member named `name`.
    pub fn get(&self, name: &str) -> Option<&Live> {
        self.members
            .binary_search_by(|l| l.member.r.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.members[i])
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// FNV-1a over the sorted members' fields, each length-prefixed: the same
/// on every platform and release.
fn digest(members: &[Live]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for l in members {
        eat(l.member.r.name.as_bytes());
        eat(&l.token.0.to_le_bytes());
        eat(l.member.r.address.as_bytes());
        eat(&l.member.r.weight.to_bits().to_le_bytes());
        for (k, v) in &l.member.r.metadata {
            eat(k.as_bytes());
            eat(v.as_bytes());
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_members_are_refused_by_field() {
        let field = |r: Result<Member, MembersError>| match r {
            Err(MembersError::Invalid { what, .. }) => what,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(Member::new("", "a:1")), "name");
        assert_eq!(field(Member::new("a/b", "a:1")), "name");
        assert_eq!(field(Member::new("a\nb", "a:1")), "name");
        assert_eq!(field(Member::new("x".repeat(MAX_NAME + 1), "a:1")), "name");
        assert_eq!(field(Member::new("a", "")), "address");
        let m = Member::new("a", "a:1").unwrap();
        for w in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(field(m.clone().with_weight(w)), "weight");
        }
        assert_eq!(field(m.clone().with_meta("", "v")), "metadata key");
        assert!(
            m.with_weight(f64::MAX).is_ok(),
            "a huge finite weight is a weight"
        );
    }

    #[test]
    fn records_round_trip_and_bad_records_do_not_decode() {
        let m = Member::new("a", "h:1")
            .unwrap()
            .with_weight(3.5)
            .unwrap()
            .with_meta("shard", "2")
            .unwrap();
        assert_eq!(Member::decode(&m.encode()), Some(m));
        assert_eq!(Member::decode(b"{}"), None);
        assert_eq!(
            Member::decode(br#"{"name":"a","address":"h","weight":-1}"#),
            None
        );
        assert_eq!(Member::decode(b"\xff"), None);
        // Unknown fields from a newer writer are ignored.
        let newer = Member::decode(br#"{"name":"a","address":"h","extra":1}"#).unwrap();
        assert_eq!(newer.weight(), 1.0);
    }

    #[test]
    fn the_digest_follows_content_not_order() {
        let live = |name: &str, token: u64| Live {
            member: Member::new(name, "h:1").unwrap(),
            token: Version(token),
        };
        let a = MemberSet::new(1, vec![live("a", 1), live("b", 2)]);
        let b = MemberSet::new(7, vec![live("b", 2), live("a", 1)]);
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.members()[0].member.name(), "a");
        let c = MemberSet::new(1, vec![live("a", 1), live("b", 3)]);
        assert_ne!(a.digest(), c.digest(), "a re-registration is a change");
        assert_eq!(a.get("b").map(|l| l.token), Some(Version(2)));
        assert!(a.get("c").is_none());
    }
}
