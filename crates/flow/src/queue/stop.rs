//! A stop signal that workers check between items for the cost of one
//! atomic load, and wait on when idle.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// A stop signal (a queue's drain or cancel), shared by its clones.
#[derive(Debug, Clone, Default)]
pub(super) struct Stop {
    set: Arc<AtomicBool>,
    token: CancellationToken,
}

impl Stop {
    /// Raises the signal; waiting workers wake.
    pub(super) fn raise(&self) {
        self.set.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// Whether the signal was raised (one atomic load: a cancellation
    /// token's own check takes a lock).
    pub(super) fn is_raised(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Completes once the signal is raised.
    pub(super) fn raised(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }
}
