//! What the crate's own tests share: a waker to poll futures and streams
//! by hand, and to see whether they were woken.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// A waker that counts its wake-ups.
#[derive(Default)]
pub(crate) struct Flag(AtomicUsize);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Flag {
    /// Whether it was woken since the last look.
    pub(crate) fn take(&self) -> bool {
        self.0.swap(0, Ordering::SeqCst) > 0
    }
}

/// Polls `f` once with `flag` as the waker.
pub(crate) fn poll_with<R>(
    flag: &Arc<Flag>,
    f: impl FnOnce(&mut Context<'_>) -> Poll<R>,
) -> Poll<R> {
    let waker = Waker::from(flag.clone());
    f(&mut Context::from_waker(&waker))
}
