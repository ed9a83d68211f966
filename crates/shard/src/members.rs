//! Named members with optional weights: the membership every process shares.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use weft_core::ShardId;

use crate::ShardError;

/// One member: a name and a weight (1.0 unless given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The member's name, e.g. `cache-3` or `10.0.1.7:11211`.
    pub name: String,
    /// Relative capacity; shares of keys are proportional to it.
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

impl Member {
    /// A member of weight 1.
    pub fn new(name: impl Into<String>) -> Self {
        Member {
            name: name.into(),
            weight: 1.0,
        }
    }

    /// A member with a weight.
    pub fn weighted(name: impl Into<String>, weight: f64) -> Self {
        Member {
            name: name.into(),
            weight,
        }
    }
}

impl From<&str> for Member {
    fn from(name: &str) -> Self {
        Member::new(name)
    }
}

impl From<String> for Member {
    fn from(name: String) -> Self {
        Member::new(name)
    }
}

/// A validated member list: non-empty, unique non-empty names, finite
/// positive weights.
///
/// A member's [`ShardId`] is its position in the list. Placement by the
/// functions built from it depends only on names and weights, never on the
/// order; so every process holding the same members routes a key to the same
/// member, and appending members keeps the ids of the others.
///
/// # Examples
///
/// ```
/// use weft_shard::Members;
///
/// let members: Members = "cache-a,cache-b=2,cache-c".parse()?;
/// assert_eq!(members.len(), 3);
/// assert_eq!(members.get(weft_core::ShardId::new(1)).unwrap().weight, 2.0);
/// assert!("a,a".parse::<Members>().is_err());
/// # Ok::<(), weft_shard::ShardError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Member>", into = "Vec<Member>")]
pub struct Members {
    list: Vec<Member>,
}

impl Members {
    /// Validates a list of members.
    ///
    /// # Errors
    ///
    /// [`ShardError::EmptyMembers`], [`ShardError::EmptyMemberName`],
    /// [`ShardError::DuplicateMember`], [`ShardError::BadWeight`] or
    /// [`ShardError::TooManyShards`].
    pub fn new(list: Vec<Member>) -> Result<Self, ShardError> {
        if list.is_empty() {
            return Err(ShardError::EmptyMembers);
        }
        if list.len() as u64 > u64::from(u32::MAX) {
            return Err(ShardError::TooManyShards(list.len() as u64));
        }
        let mut names: Vec<&str> = Vec::with_capacity(list.len());
        for m in &list {
            if m.name.is_empty() {
                return Err(ShardError::EmptyMemberName);
            }
            if !(m.weight.is_finite() && m.weight > 0.0) {
                return Err(ShardError::BadWeight {
                    member: m.name.clone(),
                    weight: m.weight,
                });
            }
            names.push(&m.name);
        }
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(ShardError::DuplicateMember(w[0].to_string()));
        }
        Ok(Members { list })
    }

    /// Members of weight 1 with the given names.
    ///
    /// # Errors
    ///
    /// As [`Members::new`].
    pub fn named<I, S>(names: I) -> Result<Self, ShardError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Members::new(names.into_iter().map(Member::new).collect())
    }

    /// These members and `member`, appended: every other member keeps its
    /// id.
    ///
    /// # Errors
    ///
    /// As [`Members::new`]: a duplicate name, an empty name, a bad weight.
    pub fn with(&self, member: Member) -> Result<Members, ShardError> {
        let mut list = self.list.clone();
        list.push(member);
        Members::new(list)
    }

    /// These members without the one called `name`. The members after it
    /// move down one id; placements built from names and weights (ring,
    /// rendezvous, Maglev, ketama) still send every other member's keys to
    /// that member, so map ids back to names with [`get`](Members::get)
    /// (for ids that never move, use a member-set function with holes:
    /// `Memento`).
    ///
    /// # Errors
    ///
    /// [`ShardError::UnknownMember`] for a name not in the set and
    /// [`ShardError::LastMember`] for the only member left.
    ///
    /// # Examples
    ///
    /// ```
    /// use weft_shard::{Member, Members};
    ///
    /// let m: Members = "a,b,c".parse()?;
    /// let grown = m.with(Member::weighted("d", 2.0))?;
    /// assert_eq!(grown.id_of("c"), m.id_of("c"));
    /// let shrunk = grown.without("b")?;
    /// assert_eq!(shrunk.to_string(), "a,c,d=2");
    /// assert!(shrunk.without("zz").is_err());
    /// assert!("a".parse::<Members>()?.without("a").is_err());
    /// # Ok::<(), weft_shard::ShardError>(())
    /// ```
    pub fn without(&self, name: &str) -> Result<Members, ShardError> {
        let at = self
            .list
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| ShardError::UnknownMember(name.to_string()))?;
        if self.list.len() == 1 {
            return Err(ShardError::LastMember(name.to_string()));
        }
        let mut list = self.list.clone();
        list.remove(at);
        Ok(Members { list })
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Always false: a member list is never empty.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The member with id `id`.
    pub fn get(&self, id: ShardId) -> Option<&Member> {
        self.list.get(id.index())
    }

    /// The id of the member called `name`.
    pub fn id_of(&self, name: &str) -> Option<ShardId> {
        self.list
            .iter()
            .position(|m| m.name == name)
            .map(|i| ShardId::new(i as u32))
    }

    /// The members in id order.
    pub fn iter(&self) -> std::slice::Iter<'_, Member> {
        self.list.iter()
    }

    /// Whether every member has the same weight.
    pub fn uniform_weights(&self) -> bool {
        self.list.iter().all(|m| m.weight == self.list[0].weight)
    }

    /// The sum of the weights.
    pub fn total_weight(&self) -> f64 {
        self.list.iter().map(|m| m.weight).sum()
    }
}

impl<'a> IntoIterator for &'a Members {
    type Item = &'a Member;
    type IntoIter = std::slice::Iter<'a, Member>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl TryFrom<Vec<Member>> for Members {
    type Error = ShardError;
    fn try_from(list: Vec<Member>) -> Result<Self, ShardError> {
        Members::new(list)
    }
}

impl From<Members> for Vec<Member> {
    fn from(m: Members) -> Self {
        m.list
    }
}

/// Parses `name` or `name=weight` items separated by commas
/// (`a,b=2,10.0.1.1:11211=600`). Whitespace around items is ignored.
impl FromStr for Members {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, ShardError> {
        let mut list = Vec::new();
        for item in s.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(ShardError::MemberSyntax {
                    input: s.to_string(),
                    reason: "empty item in the list",
                });
            }
            let member = match item.rsplit_once('=') {
                Some((name, weight)) => {
                    let weight =
                        weight
                            .trim()
                            .parse::<f64>()
                            .map_err(|_| ShardError::MemberSyntax {
                                input: item.to_string(),
                                reason: "weight after '=' is not a number",
                            })?;
                    Member::weighted(name.trim(), weight)
                }
                None => Member::new(item),
            };
            list.push(member);
        }
        Members::new(list)
    }
}

impl fmt::Display for Members {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.list.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if m.weight == 1.0 {
                write!(f, "{}", m.name)?;
            } else {
                write!(f, "{}={}", m.name, m.weight)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_member_lists_are_rejected_by_name() {
        assert_eq!(Members::new(vec![]), Err(ShardError::EmptyMembers));
        assert_eq!(
            "a,b,a".parse::<Members>(),
            Err(ShardError::DuplicateMember("a".into()))
        );
        for bad in ["a=0", "a=-1", "a=NaN", "a=inf"] {
            assert!(
                matches!(bad.parse::<Members>(), Err(ShardError::BadWeight { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            "a=x".parse::<Members>(),
            Err(ShardError::MemberSyntax { .. })
        ));
        assert!(matches!(
            "a,,b".parse::<Members>(),
            Err(ShardError::MemberSyntax { .. })
        ));
        assert_eq!("=2".parse::<Members>(), Err(ShardError::EmptyMemberName));
    }

    #[test]
    fn member_lists_round_trip_through_text_and_json() {
        let m: Members = "10.0.1.1:11211=600, b".parse().unwrap();
        assert_eq!(m.get(ShardId::new(0)).unwrap().name, "10.0.1.1:11211");
        assert_eq!(m.to_string().parse::<Members>().unwrap(), m);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Members>(&json).unwrap(), m);
        let bad = r#"[{"name":"a"},{"name":"a"}]"#;
        assert!(serde_json::from_str::<Members>(bad).is_err());
        let defaulted: Members = serde_json::from_str(r#"[{"name":"a"}]"#).unwrap();
        assert_eq!(defaulted.get(ShardId::new(0)).unwrap().weight, 1.0);
    }
}
