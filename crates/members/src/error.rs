//! The error type of weft-members.

use weft_core::{Classify, ErrorClass};
use weft_lease::{LeaseError, StoreError};
use weft_scatter::ScatterError;

/// Why registering, watching or following failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MembersError {
    /// A setting or a member field that cannot be used: which one, the
    /// value given, and what it must be.
    #[error("invalid {what} {value}: {expected}")]
    Invalid {
        /// The setting or field (e.g. "name", "weight", "hold window").
        what: &'static str,
        /// The value given.
        value: String,
        /// What it must be.
        expected: String,
    },
    /// Another process holds the name under the prefix.
    #[error("member name {name:?} under {prefix:?} is held by another process")]
    NameTaken {
        /// The prefix.
        prefix: String,
        /// The name.
        name: String,
    },
    /// A key under the prefix belongs to a prefix nested in it: two
    /// services share a prefix.
    #[error("key {key:?} under {prefix:?} is not a member (another prefix overlaps this one)")]
    Overlap {
        /// The prefix.
        prefix: String,
        /// The key found.
        key: String,
    },
    /// The lease under a registration failed.
    #[error("registration of {name:?}: {source}")]
    Lease {
        /// The member's name.
        name: String,
        /// What the lease said.
        #[source]
        source: LeaseError,
    },
    /// The store failed.
    #[error("member store under {prefix:?}: {source}")]
    Store {
        /// The prefix.
        prefix: String,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// No member set was applied yet.
    #[error("no member set applied yet")]
    NoSet,
    /// The scatter root refused a call (a plan naming a shard outside
    /// the topology, a zero deadline).
    #[error("scatter: {source}")]
    Scatter {
        /// What the root said.
        #[source]
        source: ScatterError,
    },
    /// The set has no member to route to.
    #[error("no live member under {prefix:?}")]
    Empty {
        /// The prefix.
        prefix: String,
    },
}

impl MembersError {
    pub(crate) fn invalid(
        what: &'static str,
        value: impl std::fmt::Debug,
        expected: impl Into<String>,
    ) -> MembersError {
        MembersError::Invalid {
            what,
            value: format!("{value:?}"),
            expected: expected.into(),
        }
    }
}

impl Classify for MembersError {
    fn class(&self) -> ErrorClass {
        match self {
            MembersError::Lease { source, .. } => source.class(),
            MembersError::Store { source, .. } => source.class(),
            MembersError::Scatter { source } => source.class(),
            MembersError::NoSet => ErrorClass::Transient,
            // A name frees when its holder's lease expires (a restarted
            // process waits out its earlier life's registration).
            MembersError::Empty { .. } | MembersError::NameTaken { .. } => ErrorClass::Transient,
            MembersError::Invalid { .. } | MembersError::Overlap { .. } => ErrorClass::Permanent,
        }
    }
}
