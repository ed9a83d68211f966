//! What code acting under a lease holds: the token and the stop signal.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::{LeaseState, Version};

/// What code acting under a lease checks: its fencing token and whether it
/// must stop.
///
/// [`is_cancelled`](LeaseGuard::is_cancelled) compares the lease clock with the
/// lease's safe time at the moment it is asked, as
/// [`Lease::is_held`](crate::Lease::is_held) does: a process paused past its safe period (SIGSTOP,
/// a long GC pause, a suspended VM) is told to stop by its first check on
/// resume, before the renewal task has had a chance to run.
/// [`cancelled`](LeaseGuard::cancelled) resolves at the safe time too, but a
/// paused process runs it only when its runtime runs again: code about to
/// act should check [`is_cancelled`](LeaseGuard::is_cancelled), or better,
/// present [`token`](LeaseGuard::token) to a [`crate::Fence`].
#[derive(Debug, Clone)]
pub struct LeaseGuard {
    /// The lease's fencing token.
    pub token: Version,
    pub(super) shared: Arc<Shared>,
}

impl LeaseGuard {
    /// Resolves when the task must stop: the lease is lost or its safe
    /// period is over.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn cancelled(&self) {
        let shared = &self.shared;
        loop {
            let left = shared
                .safe_until()
                .saturating_sub(shared.config.clock.now());
            if left.is_zero() {
                shared.set(LeaseState::Lost);
                return;
            }
            // A renewal moves the safe time on: look again when it was due.
            tokio::select! {
                () = shared.lost.cancelled() => return,
                () = tokio::time::sleep(left) => {}
            }
        }
    }

    /// How much longer the lease is safely held (zero once it is lost):
    /// the time until its safe moment, on the lease clock.
    pub fn remaining(&self) -> std::time::Duration {
        if self.is_cancelled() {
            return std::time::Duration::ZERO;
        }
        let shared = &self.shared;
        shared
            .safe_until()
            .saturating_sub(shared.config.clock.now())
    }

    /// Whether the task must stop: the lease is lost, or the lease clock
    /// is past its safe time now.
    pub fn is_cancelled(&self) -> bool {
        let shared = &self.shared;
        if shared.lost.is_cancelled() {
            return true;
        }
        if shared.config.clock.now() >= shared.safe_until() {
            shared.set(LeaseState::Lost);
            return true;
        }
        false
    }

    /// A cancellation token that is cancelled when the lease is known to
    /// be lost, for APIs that take one. It is asynchronous: the renewal task
    /// (or a check of the lease or a guard) cancels it, so a process paused
    /// past its safe period sees it uncancelled until its runtime runs
    /// again; check [`is_cancelled`](LeaseGuard::is_cancelled) before acting.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.shared.lost.child_token()
    }
}

#[cfg(test)]
mod remaining_tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::{Lease, LeaseConfig, MemoryStore};

    #[tokio::test(start_paused = true)]
    async fn a_guard_says_how_long_it_is_safe_and_zero_once_released() {
        let store = Arc::new(MemoryStore::new());
        let ttl = Duration::from_secs(3);
        let lease = Lease::builder(store, "k", LeaseConfig::new(ttl))
            .acquire(Duration::from_secs(1))
            .await
            .unwrap();
        let guard = lease.cancellation();
        let left = guard.remaining();
        assert!(left > Duration::ZERO && left < ttl, "{left:?}");
        assert_eq!(left, lease.remaining());
        lease.release().await.unwrap();
        assert_eq!(guard.remaining(), Duration::ZERO);
    }
}
