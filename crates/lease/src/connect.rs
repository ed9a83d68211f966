//! Connecting to a store that may not be up yet.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use weft_core::time::capped;
use weft_core::{Backoff, Classify};

use crate::StoreError;

/// Calls `connect` until it succeeds, fails permanently, or `wait` (any
/// `Duration`) has passed, waiting between tries with backoff (50 ms
/// doubling to 1 s, ±25 %): for a process started next to its store, which
/// may still be starting. Returns the last error at the deadline.
///
/// # Errors
///
/// The first permanent error (a malformed endpoint), or the last transient
/// one once `wait` has passed.
///
/// # Cancel safety
///
/// Cancel safe if `connect` is (the stores' `connect` are).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft_lease::{connect_within, MemoryStore, StoreError};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let mut tries = 0;
/// let store = connect_within(Duration::from_secs(5), || {
///     tries += 1;
///     let up = tries >= 3; // the server answers from the third try
///     async move {
///         if up {
///             Ok(MemoryStore::new())
///         } else {
///             Err(StoreError::Unavailable { store: "s".into(), reason: "refused".into(), cause: None })
///         }
///     }
/// })
/// .await?;
/// # let _ = store;
/// # Ok::<(), StoreError>(())
/// # }).unwrap();
/// ```
pub async fn connect_within<S, F, Fut>(wait: Duration, mut connect: F) -> Result<S, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let deadline = Instant::now() + capped(wait);
    // invariant: 50 ms is below the 1 s cap and 0.25 is a valid jitter.
    let backoff = Backoff::exponential(Duration::from_millis(50), Duration::from_secs(1))
        .and_then(|b| b.with_jitter(0.25))
        .unwrap_or(Backoff::constant(Duration::from_millis(50)));
    let mut tries = 0u32;
    loop {
        tries = tries.saturating_add(1);
        match connect().await {
            Ok(store) => return Ok(store),
            Err(e) if e.is_transient() => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(e);
                }
                let pause = backoff.delay(tries, u64::from(std::process::id()));
                tokio::time::sleep_until((now + pause).min(deadline)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable() -> StoreError {
        StoreError::Unavailable {
            store: "s".into(),
            reason: "refused".into(),
            cause: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn it_tries_until_the_wait_then_returns_the_last_error() {
        let start = Instant::now();
        let mut tries = 0;
        let r: Result<(), _> = connect_within(Duration::from_secs(3), || {
            tries += 1;
            async { Err(unavailable()) }
        })
        .await;
        assert!(matches!(r, Err(StoreError::Unavailable { .. })));
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert!((4..=10).contains(&tries), "{tries} tries in 3 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_error_ends_it_at_once() {
        let start = Instant::now();
        let r: Result<(), _> = connect_within(Duration::MAX, || async {
            Err(StoreError::Other {
                store: "s".into(),
                reason: "malformed".into(),
                cause: None,
            })
        })
        .await;
        assert!(matches!(r, Err(StoreError::Other { .. })));
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
