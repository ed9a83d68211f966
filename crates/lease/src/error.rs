//! The error type of weft-lease.

use std::time::Duration;

use weft_core::{Classify, ErrorClass};

use crate::{StoreError, Version};

/// Why a lock, lease, election or fence operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Waiting to acquire gave up at its deadline.
    #[error("{key:?} not acquired within {waited:?}")]
    Timeout {
        /// The key.
        key: String,
        /// How long it waited.
        waited: Duration,
    },
    /// The lease was lost (expired, taken over, or not renewable in time).
    #[error("lease on {key:?} lost")]
    Lost {
        /// The key.
        key: String,
    },
    /// A fencing token lower than one already seen.
    #[error("stale token {token} for {resource:?}: {highest} already seen")]
    StaleToken {
        /// The resource.
        resource: String,
        /// The token presented.
        token: Version,
        /// The highest token seen.
        highest: Version,
    },
    /// A setting the lease cannot keep: which one, the value given, and
    /// what it must be.
    #[error("invalid {setting} {value}: {expected}")]
    Invalid {
        /// The setting (e.g. "TTL", "jitter").
        setting: &'static str,
        /// The value given.
        value: String,
        /// What it must be.
        expected: String,
    },
}

impl LeaseError {
    /// An [`Invalid`](LeaseError::Invalid) setting.
    pub fn invalid(
        setting: &'static str,
        value: impl std::fmt::Debug,
        expected: impl Into<String>,
    ) -> LeaseError {
        LeaseError::Invalid {
            setting,
            value: format!("{value:?}"),
            expected: expected.into(),
        }
    }
}

impl Classify for LeaseError {
    fn class(&self) -> ErrorClass {
        match self {
            LeaseError::Store(e) => e.class(),
            LeaseError::Timeout { .. } | LeaseError::Lost { .. } => ErrorClass::Transient,
            LeaseError::StaleToken { .. } | LeaseError::Invalid { .. } => ErrorClass::Permanent,
        }
    }
}
