//! Fault scenarios that every real store runs the same way.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use weft_lease::{CasStore, Fence, Lease, LeaseConfig, LeaseError, MemoryFence};

/// The store's process frozen (SIGSTOP) for twice the TTL while a lease is
/// held and another client waits for it. Asserts that the holder's lost
/// signal fires before the waiter acquires, that the new holder's token is
/// higher, and that the old holder's fenced write is refused afterwards.
///
/// `pause` and `resume` stop and continue the server's process.
///
/// # Panics
///
/// When a property does not hold, or the store fails.
pub async fn paused_past_the_ttl(
    store: Arc<dyn CasStore>,
    ttl: Duration,
    pause: impl FnOnce() -> std::io::Result<()>,
    resume: impl FnOnce() -> std::io::Result<()>,
) {
    let config = LeaseConfig::new(ttl);
    let a = Lease::builder(store.clone(), "owner", config.clone())
        .value(b"a")
        .acquire(ttl)
        .await
        .expect("the first holder acquires");
    let fence = MemoryFence::new();
    fence
        .check_and_advance("resource", a.token())
        .await
        .expect("the first token passes the fence");
    let waiter = {
        let (store, config) = (store.clone(), config.clone());
        tokio::spawn(async move {
            let b = Lease::builder(store, "owner", config)
                .value(b"b")
                .acquire(ttl * 10)
                .await
                .expect("the waiter acquires after the pause");
            (Instant::now(), b)
        })
    };
    // When the holder hears of its loss, timed as it happens.
    let signal = a.cancellation();
    let lost = tokio::spawn(async move {
        signal.cancelled().await;
        Instant::now()
    });
    let start = Instant::now();
    pause().expect("pause the store");
    tokio::time::sleep(ttl * 2).await;
    resume().expect("resume the store");
    let lost_at = lost.await.expect("the loss is heard");
    let (acquired_at, b) = waiter.await.expect("the waiter's task");
    assert!(!a.is_held());
    // The lost signal could only fire from the holder's own clock while
    // the store was frozen; the waiter acquired after the resume.
    assert!(
        lost_at < acquired_at,
        "lost {:?} after the new holder acquired {:?}",
        lost_at - start,
        acquired_at - start
    );
    assert!(b.token() > a.token());
    fence
        .check_and_advance("resource", b.token())
        .await
        .expect("the new token passes the fence");
    assert!(matches!(
        fence.check_and_advance("resource", a.token()).await,
        Err(LeaseError::StaleToken { .. })
    ));
    b.release().await.expect("release");
}

/// Two stores on one server with prefixes `app-a/` and `app-b/`: the same
/// key written through each stays apart, and each lists only its own.
///
/// # Panics
///
/// When a store sees the other's key, or fails.
pub async fn prefixes_keep_stores_apart(a: &dyn CasStore, b: &dyn CasStore) {
    use weft_lease::Swap;
    let ttl = Duration::from_secs(30);
    assert!(matches!(
        a.create("k", b"a".to_vec(), ttl)
            .await
            .expect("create in a"),
        Swap::Done { .. }
    ));
    assert!(matches!(
        b.create("k", b"b".to_vec(), ttl)
            .await
            .expect("create in b"),
        Swap::Done { .. }
    ));
    let in_a = a.get("k").await.expect("get in a").expect("a's key");
    assert_eq!(in_a.value, b"a");
    assert_eq!(b.list("").await.expect("list b").len(), 1);
}
