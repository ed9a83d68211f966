//! The Redis store against a real redis-server started by the harness.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use weft_lease::{CasStore, Lease, LeaseConfig, StoreError};
use weft_lease_redis::RedisStore;
use weft_test::cas;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_passes_the_conformance_suite() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let store = RedisStore::connect(&redis.url(), "app1/").await.unwrap();
    cas::conformance(
        Arc::new(store),
        cas::Options {
            expiry_slack: Duration::from_millis(100),
            prefix: "conformance",
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_never_touches_keys_outside_its_prefix() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let a = RedisStore::connect(&redis.url(), "app-a/").await.unwrap();
    let b = RedisStore::connect(&redis.url(), "app-b/").await.unwrap();
    weft_test::scenario::prefixes_keep_stores_apart(&a, &b).await;
}

/// The store pauses (SIGSTOP) for longer than the TTL: the holder's lost
/// signal fires before anyone else acquires, and the old holder's fenced
/// write is rejected afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_paused_past_the_ttl_loses_the_lease_before_anyone_acquires() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let store: Arc<dyn CasStore> =
        Arc::new(RedisStore::connect(&redis.url(), "pause/").await.unwrap());
    weft_test::scenario::paused_past_the_ttl(
        store,
        Duration::from_millis(1000),
        || redis.pause(),
        || redis.resume(),
    )
    .await;
}

/// Kill and restart a persistent Redis: the holder detects the loss, and
/// versions keep increasing after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_increase_across_a_restart_of_a_persistent_redis() {
    let redis = match weft_test::Redis::start_persistent().await {
        Ok(r) => r,
        Err(e) => {
            let _ = weft_test::redis().await; // the harness's missing-server policy
            eprintln!("skipped: {e}");
            return;
        }
    };
    let mut redis = redis;
    let store: Arc<dyn CasStore> =
        Arc::new(RedisStore::connect(&redis.url(), "restart/").await.unwrap());
    let config = LeaseConfig::new(Duration::from_millis(1500));
    let a = Lease::builder(store.clone(), "owner", config.clone())
        .value(b"a")
        .acquire(Duration::from_secs(1))
        .await
        .unwrap();
    redis.kill();
    tokio::time::timeout(Duration::from_secs(3), a.lost())
        .await
        .expect("the holder noticed the loss in time");
    redis.restart().await.unwrap();
    // The restarted server replayed its append-only file: the old key may
    // still be there until its TTL runs out; wait for the lease.
    let b = Lease::builder(store.clone(), "owner", config)
        .value(b"b")
        .acquire(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        b.token() > a.token(),
        "token {} after restart is not above {}",
        b.token(),
        a.token()
    );
    b.release().await.unwrap();
}

#[tokio::test]
async fn bad_endpoints_are_typed_errors_naming_them() {
    let start = Instant::now();
    // A port with nothing listening.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{free}");
    let err = RedisStore::connect(&url, "x/").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable { ref store, .. } if *store == url),
        "{err}"
    );
    // The client's own error is kept as the source, classified transient.
    let cause = err
        .cause()
        .expect("a refused connection keeps the client's error");
    assert!(
        cause.downcast_ref::<redis::RedisError>().is_some(),
        "{cause:?}"
    );
    assert!(weft_core::Classify::is_transient(cause));
    assert!(std::error::Error::source(&err).is_some());
    assert!(start.elapsed() < Duration::from_secs(6), "bounded wait");
    // Tried again until the wait is over, not refused in a few ms.
    let tried = Instant::now();
    let again = RedisStore::connect_within(&url, "x/", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Unavailable { .. }), "{again}");
    assert!(tried.elapsed() >= Duration::from_millis(300));
    let err = RedisStore::connect("redis//nonsense", "x/")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Other { .. }) && err.to_string().contains("redis//nonsense"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_over_the_limit_are_rejected() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let store = RedisStore::connect(&redis.url(), "limits/").await.unwrap();
    let big = vec![0u8; store.limits().max_value_len + 1];
    assert!(matches!(
        store.create("k", big, Duration::from_secs(5)).await,
        Err(StoreError::ValueTooLarge { .. })
    ));
}
