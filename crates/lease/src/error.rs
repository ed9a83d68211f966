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
    /// A configuration the lease cannot keep.
    #[error("lease configuration rejected: {0}")]
    Config(String),
}

impl Classify for LeaseError {
    fn class(&self) -> ErrorClass {
        match self {
            LeaseError::Store(e) => e.class(),
            LeaseError::Timeout { .. } | LeaseError::Lost { .. } => ErrorClass::Transient,
            LeaseError::StaleToken { .. } | LeaseError::Config(_) => ErrorClass::Permanent,
        }
    }
}
