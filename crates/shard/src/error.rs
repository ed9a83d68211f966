//! The error type of weft-shard.

use weft_core::{Classify, CoreError, ErrorClass};

/// Why a sharding function or partitioner could not be built or changed.
///
/// Every variant is bad input, so every one is permanent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// A shard count of zero.
    #[error("shard count is zero: at least one shard is needed")]
    ZeroShards,
    /// More shards than a `ShardId` can name.
    #[error("{0} shards is more than the {max} a ShardId can name", max = u32::MAX)]
    TooManyShards(u64),
    /// An empty member list.
    #[error("member list is empty: at least one member is needed")]
    EmptyMembers,
    /// A member name that appears twice.
    #[error("member {0:?} appears more than once")]
    DuplicateMember(String),
    /// An empty member name.
    #[error("member name is empty")]
    EmptyMemberName,
    /// A weight that is zero, negative, NaN or infinite.
    #[error("member {member:?} has weight {weight}: weights must be finite and above zero")]
    BadWeight {
        /// The member.
        member: String,
        /// The weight given.
        weight: f64,
    },
    /// A member list that could not be parsed.
    #[error("cannot parse member {input:?}: {reason}")]
    MemberSyntax {
        /// The text that failed.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A Maglev table size that is not prime.
    #[error("Maglev table size {0} is not prime")]
    TableNotPrime(u64),
    /// A Maglev table smaller than the member count.
    #[error("Maglev table size {size} is smaller than the {members} members")]
    TableTooSmall {
        /// The table size.
        size: u64,
        /// The member count.
        members: usize,
    },
    /// A Maglev table larger than the limit.
    #[error("Maglev table size {0} is above the limit of {max}", max = crate::Maglev::MAX_TABLE_SIZE)]
    TableTooLarge(u64),
    /// A ring or continuum with more points than the limit (weights times
    /// virtual nodes), refused before anything is allocated.
    #[error(
        "{points} points (weights × virtual nodes) is above the limit of {max}: lower the weights or the virtual nodes"
    )]
    TooManyPoints {
        /// The points the members would need.
        points: f64,
        /// The limit.
        max: usize,
    },
    /// A weight that is not a whole number, for a scheme whose weights are
    /// integers.
    #[error(
        "member {member:?} has weight {weight}: {scheme} weights are whole numbers from 1 to {max}"
    )]
    WeightNotWhole {
        /// The member.
        member: String,
        /// The weight given.
        weight: f64,
        /// The scheme.
        scheme: &'static str,
        /// The largest weight allowed.
        max: u64,
    },
    /// A bounded-load capacity factor that is not above 1.
    #[error("capacity factor {0} must be finite and above 1")]
    CapacityFactor(f64),
    /// A ring with zero virtual nodes per member.
    #[error("virtual nodes per member is zero: a ring needs at least one point per member")]
    ZeroVirtualNodes,
    /// Elasticsearch routing shards that are not a multiple of the shards.
    #[error(
        "number_of_routing_shards {routing_shards} is not a multiple of number_of_shards {shards}"
    )]
    RoutingShards {
        /// The routing-shard count.
        routing_shards: u32,
        /// The shard count.
        shards: u32,
    },
    /// An Elasticsearch `routing_partition_size` that is zero, or above 1
    /// and not below the shard count.
    #[error(
        "routing_partition_size {size} must be 1, or above 1 and below number_of_shards {shards}"
    )]
    PartitionSize {
        /// The partition size given.
        size: u32,
        /// The shard count.
        shards: u32,
    },
    /// A member name that is not in the set.
    #[error("member {0:?} is not in the set")]
    UnknownMember(String),
    /// Removing the only member left.
    #[error("member {0:?} is the last one: a set cannot be empty")]
    LastMember(String),
    /// Removing a member other than the last from a numbered function.
    #[error(
        "member {member:?} is not the last one: {function} places by position and can only remove its last member (Memento removes any)"
    )]
    RemovalNotSupported {
        /// The member.
        member: String,
        /// The function.
        function: &'static str,
    },
    /// A weight other than 1 for a function without weights.
    #[error("member {member:?} has weight {weight}: {function} has no weights (every member is 1)")]
    WeightsNotSupported {
        /// The member.
        member: String,
        /// The weight given.
        weight: f64,
        /// The function.
        function: &'static str,
    },
    /// Serialised member-set state that no sequence of changes could make.
    #[error("bad {function} member-set state: {reason}")]
    BadState {
        /// The function the state was loaded for.
        function: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A scheme, distribution or hash name that is not known.
    #[error("unknown {what} {name:?}: known are {known}")]
    UnknownScheme {
        /// What was named.
        what: &'static str,
        /// The name given.
        name: String,
        /// The names known.
        known: &'static str,
    },
    /// A placement that no client can reproduce (it is random per request).
    #[error("{scheme} picks a server at random per request: no client can route like it")]
    NotReproducible {
        /// The scheme.
        scheme: &'static str,
    },
    /// A system setting outside what that system accepts (a Scylla shard
    /// count of zero, a Couchbase vBucket count that is not a power of
    /// two, an HAProxy weight above 256, …).
    #[error("{what} {value} {must}")]
    BadSetting {
        /// The setting, in the system's own words.
        what: &'static str,
        /// The value given.
        value: String,
        /// What the system requires of it.
        must: &'static str,
    },
    /// A release for a shard that holds no load.
    #[error("shard {0} holds no load to release")]
    NothingToRelease(weft_core::ShardId),
    /// An error from weft-core.
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl Classify for ShardError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}
