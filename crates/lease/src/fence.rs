//! The resource side of fencing: reject writes carrying a stale token.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::{LeaseError, Version};

/// Validates fencing tokens at the resource: a request carrying a token
/// lower than the highest seen for its resource is rejected; a new high is
/// recorded. Equal tokens pass (the same holder writing again).
///
/// This is the check that makes a lease safe against a holder that was
/// paused past its TTL: the lease alone cannot stop such a holder, the
/// resource can.
///
/// # Implementing Fence
///
/// `check_and_advance` must be atomic per resource (two concurrent calls
/// must not both pass with tokens out of order), and a persistent fence must
/// record the new high before returning `Ok`, so a restart never lowers it.
#[async_trait::async_trait]
pub trait Fence: Send + Sync + std::fmt::Debug {
    /// Accepts `token` for `resource` if it is at least the highest seen,
    /// recording it as the new highest.
    ///
    /// # Errors
    ///
    /// [`LeaseError::StaleToken`] naming the resource, the token and the
    /// highest seen.
    async fn check_and_advance(&self, resource: &str, token: Version) -> Result<(), LeaseError>;
}

/// An in-memory [`Fence`].
///
/// # Examples
///
/// ```
/// use weft_lease::{Fence, MemoryFence, Version};
///
/// # futures::executor::block_on(async {
/// let fence = MemoryFence::new();
/// fence.check_and_advance("orders", Version(7)).await?;
/// fence.check_and_advance("orders", Version(7)).await?; // same holder again
/// assert!(fence.check_and_advance("orders", Version(5)).await.is_err()); // stale
/// # Ok::<(), weft_lease::LeaseError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct MemoryFence {
    highest: Mutex<HashMap<String, Version>>,
}

impl MemoryFence {
    /// An empty fence.
    pub fn new() -> Self {
        MemoryFence::default()
    }

    /// The highest token seen for `resource`.
    pub fn highest(&self, resource: &str) -> Option<Version> {
        self.highest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(resource)
            .copied()
    }
}

#[async_trait::async_trait]
impl Fence for MemoryFence {
    async fn check_and_advance(&self, resource: &str, token: Version) -> Result<(), LeaseError> {
        let mut highest = self.highest.lock().unwrap_or_else(|e| e.into_inner());
        match highest.get(resource) {
            Some(&high) if token < high => Err(LeaseError::StaleToken {
                resource: resource.to_string(),
                token,
                highest: high,
            }),
            _ => {
                highest.insert(resource.to_string(), token);
                Ok(())
            }
        }
    }
}
