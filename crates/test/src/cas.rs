//! The `CasStore` conformance suite: the rules written on the trait, checked.
//!
//! Every store runs [`conformance`] (or each check as its own test). The
//! checks use keys under a fresh prefix and time through tokio, so they run
//! on paused time for in-memory stores and on real time for servers.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use weft_lease::{CasStore, PrefixEvent, StoreError, Swap, Version, WatchEvent};

/// How long the store may take past a TTL to expire a key (etcd's lessor
/// checks about every 500 ms; an in-memory store needs none).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Allowed lateness of an expiry beyond the TTL and the granularity.
    pub expiry_slack: Duration,
    /// A prefix that keeps runs apart.
    pub prefix: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            expiry_slack: Duration::ZERO,
            prefix: "conformance",
        }
    }
}

fn done(s: Swap) -> Version {
    match s {
        Swap::Done { version } => version,
        Swap::Conflict { current } => {
            panic!("expected the write to apply, got a conflict with {current:?}")
        }
    }
}

/// A TTL the store honours that is long enough not to expire mid-check.
fn long_ttl(store: &dyn CasStore) -> Duration {
    let l = store.limits();
    round_up(l.min_ttl.max(Duration::from_secs(60)), l.ttl_granularity).min(l.max_ttl)
}

/// The shortest TTL worth testing expiry with: the store's minimum, but at
/// least 200 ms so that real network delays do not blur it.
fn short_ttl(store: &dyn CasStore) -> Duration {
    let l = store.limits();
    round_up(l.min_ttl.max(Duration::from_millis(200)), l.ttl_granularity).min(l.max_ttl)
}

fn round_up(d: Duration, step: Duration) -> Duration {
    if step.is_zero() {
        return d;
    }
    let n = d.as_nanos().div_ceil(step.as_nanos());
    Duration::from_nanos((n * step.as_nanos()) as u64)
}

/// Runs every check.
///
/// # Panics
///
/// On the first rule the store breaks, naming it.
pub async fn conformance(store: Arc<dyn CasStore>, options: Options) {
    create_races_have_one_winner(store.clone(), options).await;
    swaps_are_linearizable(store.clone(), options).await;
    versions_increase_across_writes_deletes_and_expiry(store.clone(), options).await;
    ttl_is_honoured_within_granularity(store.clone(), options).await;
    refresh_keeps_the_version_and_extends_the_ttl(store.clone(), options).await;
    list_orders_by_creation(store.clone(), options).await;
    watch_delivers_every_change_in_order(store.clone(), options).await;
    prefix_watch_delivers_every_change_under_it(store.clone(), options).await;
    bad_input_is_rejected(store, options).await;
}

/// Among concurrent creators of an absent key exactly one wins.
///
/// # Panics
///
/// If zero or several creators win.
pub async fn create_races_have_one_winner(store: Arc<dyn CasStore>, o: Options) {
    let ttl = long_ttl(store.as_ref());
    for round in 0..5 {
        let key = format!("{}/race/{round}", o.prefix);
        let attempts = (0..16).map(|i| {
            let (store, key) = (store.clone(), key.clone());
            async move { store.create(&key, format!("c{i}").into_bytes(), ttl).await }
        });
        let results = futures::future::join_all(attempts).await;
        let winners = results
            .iter()
            .filter(|r| matches!(r, Ok(Swap::Done { .. })))
            .count();
        assert_eq!(
            winners, 1,
            "create race {round}: {winners} winners: {results:?}"
        );
    }
}

/// Concurrent read-modify-write increments through swaps lose nothing.
///
/// # Panics
///
/// If an increment is lost or a version repeats.
pub async fn swaps_are_linearizable(store: Arc<dyn CasStore>, o: Options) {
    let ttl = long_ttl(store.as_ref());
    let key = format!("{}/counter", o.prefix);
    done(store.create(&key, b"0".to_vec(), ttl).await.unwrap());
    let workers = (0..8).map(|_| {
        let (store, key) = (store.clone(), key.clone());
        async move {
            let mut versions = Vec::new();
            for _ in 0..10 {
                loop {
                    let cur = store.get(&key).await.unwrap().expect("counter exists");
                    let n: u64 = String::from_utf8(cur.value).unwrap().parse().unwrap();
                    let next = (n + 1).to_string().into_bytes();
                    if let Swap::Done { version } = store
                        .compare_and_swap(&key, cur.version, next, ttl)
                        .await
                        .unwrap()
                    {
                        assert!(
                            version > cur.version,
                            "swap version {version} not above {}",
                            cur.version
                        );
                        versions.push(version);
                        break;
                    }
                }
            }
            versions
        }
    });
    let mut all: Vec<Version> = futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "two swaps got the same version");
    let last = store.get(&key).await.unwrap().unwrap();
    assert_eq!(last.value, b"80".to_vec(), "increments were lost");
}

/// Versions strictly increase across create, swap, delete, re-create and
/// expiry.
///
/// # Panics
///
/// If a version does not increase.
pub async fn versions_increase_across_writes_deletes_and_expiry(
    store: Arc<dyn CasStore>,
    o: Options,
) {
    let ttl = long_ttl(store.as_ref());
    let key = format!("{}/versions", o.prefix);
    let v1 = done(store.create(&key, b"a".to_vec(), ttl).await.unwrap());
    let v2 = done(
        store
            .compare_and_swap(&key, v1, b"b".to_vec(), ttl)
            .await
            .unwrap(),
    );
    assert!(v2 > v1, "swap {v2} after create {v1}");
    let v3 = done(store.delete(&key, v2).await.unwrap());
    assert!(v3 > v2, "delete {v3} after swap {v2}");
    let v4 = done(store.create(&key, b"c".to_vec(), ttl).await.unwrap());
    assert!(v4 > v3, "re-create {v4} after delete {v3}");
    // Expiry, then re-create.
    let short = short_ttl(store.as_ref());
    let v5 = done(
        store
            .compare_and_swap(&key, v4, b"d".to_vec(), short)
            .await
            .unwrap(),
    );
    tokio::time::sleep(short + store.limits().ttl_granularity + o.expiry_slack).await;
    assert!(
        store.get(&key).await.unwrap().is_none(),
        "key outlived its TTL"
    );
    let v6 = done(store.create(&key, b"e".to_vec(), ttl).await.unwrap());
    assert!(v6 > v5, "create {v6} after expiry of {v5}");
    // A stale version is a conflict that reports the current entry.
    match store
        .compare_and_swap(&key, v5, b"x".to_vec(), ttl)
        .await
        .unwrap()
    {
        Swap::Conflict { current: Some(e) } => assert_eq!(e.version, v6),
        other => panic!("stale swap applied or lost the current entry: {other:?}"),
    }
    assert!(matches!(
        store.delete(&key, v1).await.unwrap(),
        Swap::Conflict { .. }
    ));
}

/// A key lives at least its TTL and is gone within the granularity (plus
/// the store's slack) after.
///
/// # Panics
///
/// If the key expires early or lingers.
pub async fn ttl_is_honoured_within_granularity(store: Arc<dyn CasStore>, o: Options) {
    let l = store.limits();
    let ttl = short_ttl(store.as_ref());
    let key = format!("{}/ttl", o.prefix);
    done(store.create(&key, b"t".to_vec(), ttl).await.unwrap());
    tokio::time::sleep(ttl.saturating_sub(l.ttl_granularity).mul_f64(0.9)).await;
    assert!(
        store.get(&key).await.unwrap().is_some(),
        "key expired before its TTL"
    );
    tokio::time::sleep(l.ttl_granularity * 2 + ttl.mul_f64(0.1) + o.expiry_slack).await;
    assert!(
        store.get(&key).await.unwrap().is_none(),
        "key outlived its TTL"
    );
}

/// A refresh keeps value and version and pushes the expiry back.
///
/// # Panics
///
/// If the version changes or the key expires on the old schedule.
pub async fn refresh_keeps_the_version_and_extends_the_ttl(store: Arc<dyn CasStore>, o: Options) {
    let ttl = short_ttl(store.as_ref());
    let key = format!("{}/refresh", o.prefix);
    let v = done(store.create(&key, b"r".to_vec(), ttl).await.unwrap());
    for _ in 0..3 {
        tokio::time::sleep(ttl / 2).await;
        assert_eq!(done(store.refresh(&key, v, ttl).await.unwrap()), v);
    }
    let e = store
        .get(&key)
        .await
        .unwrap()
        .expect("refreshed key alive past its first TTL");
    assert_eq!((e.version, e.value), (v, b"r".to_vec()));
    assert!(matches!(
        store.refresh(&key, Version(v.0 + 1000), ttl).await.unwrap(),
        Swap::Conflict { .. }
    ));
}

/// `list` returns the prefix's keys, oldest creation first.
///
/// # Panics
///
/// If keys are missing, foreign, or out of order.
pub async fn list_orders_by_creation(store: Arc<dyn CasStore>, o: Options) {
    let ttl = long_ttl(store.as_ref());
    let prefix = format!("{}/list/", o.prefix);
    for name in ["c", "a", "b"] {
        done(
            store
                .create(&format!("{prefix}{name}"), name.as_bytes().to_vec(), ttl)
                .await
                .unwrap(),
        );
    }
    done(
        store
            .create(&format!("{}/listed-not", o.prefix), b"x".to_vec(), ttl)
            .await
            .unwrap(),
    );
    // A swap must not move a key in creation order.
    let first = store.get(&format!("{prefix}c")).await.unwrap().unwrap();
    done(
        store
            .compare_and_swap(&format!("{prefix}c"), first.version, b"c2".to_vec(), ttl)
            .await
            .unwrap(),
    );
    let keys: Vec<String> = store
        .list(&prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        [
            format!("{prefix}c"),
            format!("{prefix}a"),
            format!("{prefix}b")
        ]
    );
}

/// A prefix watch opens with `Watching`, then sees every change of every
/// key under the prefix, in order, and nothing outside it.
///
/// # Panics
///
/// If the opening is missing, or an event is missing, out of order or
/// from outside the prefix.
pub async fn prefix_watch_delivers_every_change_under_it(store: Arc<dyn CasStore>, o: Options) {
    let prefix = format!("{}/pw/", o.prefix);
    let Some(mut events) = store.watch_prefix(&prefix) else {
        return; // stores without a prefix watch are polled
    };
    let opened = tokio::time::timeout(Duration::from_secs(10), events.next()).await;
    assert!(
        matches!(opened, Ok(Some(PrefixEvent::Watching))),
        "a prefix watch must open with Watching, got {opened:?}"
    );
    let l = store.limits();
    let long = long_ttl(store.as_ref());
    let short = short_ttl(store.as_ref());
    let (a, b, c) = (
        format!("{prefix}a"),
        format!("{prefix}b"),
        format!("{prefix}c"),
    );
    let va1 = done(store.create(&a, b"1".to_vec(), long).await.unwrap());
    // Outside the prefix, and a key that only shares its first letters.
    done(
        store
            .create(&format!("{}/pwx", o.prefix), b"x".to_vec(), long)
            .await
            .unwrap(),
    );
    let vb1 = done(store.create(&b, b"2".to_vec(), long).await.unwrap());
    let va2 = done(
        store
            .compare_and_swap(&a, va1, b"3".to_vec(), long)
            .await
            .unwrap(),
    );
    let vb2 = done(store.delete(&b, vb1).await.unwrap());
    let vc1 = done(store.create(&c, b"4".to_vec(), short).await.unwrap());
    let mut seen: Vec<(String, WatchEvent)> = Vec::new();
    let deadline = short * 3 + l.ttl_granularity * 2 + o.expiry_slack + Duration::from_secs(1);
    let _ = tokio::time::timeout(deadline, async {
        while let Some(e) = events.next().await {
            match e {
                PrefixEvent::Changed { key, event } => {
                    let last = key == c && !matches!(event, WatchEvent::Put(_));
                    seen.push((key, event));
                    if last {
                        break;
                    }
                }
                PrefixEvent::Watching => panic!("Watching came twice"),
            }
        }
    })
    .await;
    let brief: Vec<(&str, &str, Version)> = seen
        .iter()
        .map(|(k, e)| match e {
            WatchEvent::Put(entry) => (k.as_str(), "put", entry.version),
            WatchEvent::Deleted { version } | WatchEvent::Expired { version } => {
                (k.as_str(), "gone", *version)
            }
        })
        .collect();
    assert_eq!(brief.len(), 6, "events: {seen:?}");
    assert_eq!(
        &brief[..5],
        &[
            (a.as_str(), "put", va1),
            (b.as_str(), "put", vb1),
            (a.as_str(), "put", va2),
            (b.as_str(), "gone", vb2),
            (c.as_str(), "put", vc1),
        ]
    );
    assert_eq!(
        (brief[5].0, brief[5].1),
        (c.as_str(), "gone"),
        "the expiry of {c}"
    );
    assert!(
        brief[5].2 > vc1,
        "the expiry consumed a version after {vc1}"
    );
    assert!(
        matches!(&seen[0].1, WatchEvent::Put(e) if e.value == b"1"),
        "a put carries its value"
    );
}

/// A watch sees every change of its key, in order.
///
/// # Panics
///
/// If an event is missing or out of order.
pub async fn watch_delivers_every_change_in_order(store: Arc<dyn CasStore>, o: Options) {
    let key = format!("{}/watched", o.prefix);
    let Some(mut events) = store.watch(&key) else {
        return; // stores without watch are polled by the lease layer
    };
    let l = store.limits();
    let long = long_ttl(store.as_ref());
    let short = short_ttl(store.as_ref());
    let v1 = done(store.create(&key, b"1".to_vec(), long).await.unwrap());
    let v2 = done(
        store
            .compare_and_swap(&key, v1, b"2".to_vec(), long)
            .await
            .unwrap(),
    );
    let v3 = done(store.delete(&key, v2).await.unwrap());
    let v4 = done(store.create(&key, b"4".to_vec(), short).await.unwrap());
    let mut seen: Vec<WatchEvent> = Vec::new();
    let deadline = short * 3 + l.ttl_granularity * 2 + o.expiry_slack + Duration::from_secs(1);
    let _ = tokio::time::timeout(deadline, async {
        while let Some(e) = events.next().await {
            // A store may open the watch with a deletion of the absent key.
            if seen.is_empty() && matches!(e, WatchEvent::Deleted { version } if version < v1) {
                continue;
            }
            // Some stores (etcd) report an expiry as a deletion.
            let expired = matches!(e, WatchEvent::Expired { .. })
                || (seen.len() == 4 && matches!(e, WatchEvent::Deleted { .. }));
            seen.push(e);
            if expired {
                break;
            }
        }
    })
    .await;
    let versions: Vec<Version> = seen
        .iter()
        .map(|e| match e {
            WatchEvent::Put(entry) => entry.version,
            WatchEvent::Deleted { version } | WatchEvent::Expired { version } => *version,
        })
        .collect();
    assert_eq!(seen.len(), 5, "events: {seen:?}");
    assert!(matches!(seen[0], WatchEvent::Put(ref e) if e.version == v1 && e.value == b"1"));
    assert!(matches!(seen[1], WatchEvent::Put(ref e) if e.version == v2));
    assert!(matches!(seen[2], WatchEvent::Deleted { version } if version == v3));
    assert!(matches!(seen[3], WatchEvent::Put(ref e) if e.version == v4));
    assert!(matches!(
        seen[4],
        WatchEvent::Expired { .. } | WatchEvent::Deleted { .. }
    ));
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions out of order: {versions:?}"
    );
}

/// Empty keys, oversized values and TTLs the store cannot honour are typed
/// errors, never applied.
///
/// # Panics
///
/// If bad input is accepted.
pub async fn bad_input_is_rejected(store: Arc<dyn CasStore>, o: Options) {
    let l = store.limits();
    let ttl = long_ttl(store.as_ref());
    assert_eq!(
        store.create("", b"x".to_vec(), ttl).await,
        Err(StoreError::EmptyKey)
    );
    let big = vec![0u8; l.max_value_len + 1];
    assert!(matches!(
        store.create(&format!("{}/big", o.prefix), big, ttl).await,
        Err(StoreError::ValueTooLarge { .. })
    ));
    assert!(matches!(
        store
            .create(&format!("{}/zero", o.prefix), b"x".to_vec(), Duration::ZERO)
            .await,
        Err(StoreError::BadTtl { .. })
    ));
    if l.ttl_granularity > Duration::from_millis(1) {
        let odd = l.min_ttl + l.ttl_granularity / 2;
        assert!(
            matches!(
                store
                    .create(&format!("{}/odd", o.prefix), b"x".to_vec(), odd)
                    .await,
                Err(StoreError::BadTtl { .. })
            ),
            "a TTL off the store's granularity must be rejected, not rounded"
        );
    }
    assert!(
        store
            .get(&format!("{}/zero", o.prefix))
            .await
            .unwrap()
            .is_none()
    );
}
