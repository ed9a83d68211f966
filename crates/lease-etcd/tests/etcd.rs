//! The etcd store against real etcd servers started by the harness: the
//! conformance suite, faults, and a lease torture with paused clients.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use weft_lease::{CasStore, Fence, Lease, LeaseConfig, MemoryFence, StoreError, Swap};
use weft_lease_etcd::EtcdStore;
use weft_test::cas;
use weft_test::faults::{FaultPlan, FaultyStore};

/// The harness runs etcd with a 100 ms election timeout: minimum TTL 1 s.
async fn store(endpoints: &[&str], prefix: &str) -> EtcdStore {
    EtcdStore::connect_with_min_ttl(endpoints, prefix, Duration::from_secs(1))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_store_passes_the_conformance_suite() {
    let Some(etcd) = weft_test::etcd().await else {
        return;
    };
    let s = store(&[&etcd.endpoint()], "app1/").await;
    cas::conformance(
        Arc::new(s),
        cas::Options {
            expiry_slack: Duration::from_millis(1500),
            prefix: "conformance",
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_never_touches_keys_outside_its_prefix() {
    let Some(etcd) = weft_test::etcd().await else {
        return;
    };
    let a = store(&[&etcd.endpoint()], "app-a/").await;
    let b = store(&[&etcd.endpoint()], "app-b/").await;
    weft_test::scenario::prefixes_keep_stores_apart(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_etcd_cannot_honour_and_bad_endpoints_are_typed_errors() {
    let Some(etcd) = weft_test::etcd().await else {
        return;
    };
    let s = store(&[&etcd.endpoint()], "bad/").await;
    for ttl in [Duration::from_millis(1500), Duration::from_millis(500)] {
        assert!(
            matches!(
                s.create("k", b"v".to_vec(), ttl).await,
                Err(StoreError::BadTtl { .. })
            ),
            "{ttl:?}"
        );
    }
    let big = vec![0u8; s.limits().max_value_len + 1];
    assert!(matches!(
        s.create("k", big, Duration::from_secs(5)).await,
        Err(StoreError::ValueTooLarge { .. })
    ));
    let err = EtcdStore::connect(&["127.0.0.1:2379"], "x/")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Other { .. }) && err.to_string().contains("127.0.0.1:2379"),
        "{err}"
    );
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{free}");
    let start = Instant::now();
    let err = EtcdStore::connect(&[&dead], "x/").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable { ref store, .. } if store.contains(&dead)),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "bounded wait: {:?}",
        start.elapsed()
    );
}

/// SIGSTOP etcd longer than the TTL: the holder's lost signal fires before
/// anyone else acquires; the old holder's fenced write is rejected after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_paused_past_the_ttl_loses_the_lease_before_anyone_acquires() {
    let Some(etcd) = weft_test::etcd().await else {
        return;
    };
    let s: Arc<dyn CasStore> = Arc::new(store(&[&etcd.endpoint()], "pause/").await);
    weft_test::scenario::paused_past_the_ttl(
        s,
        Duration::from_secs(2),
        || etcd.pause(),
        || etcd.resume(),
    )
    .await;
}

/// A three-member cluster: kill the leader while a lease is held and
/// renewed. The lease survives or is reported lost in time; a later holder
/// gets a higher token; the time to the first successful write after the
/// kill is measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_etcd_leader_keeps_the_lease_or_reports_it_lost_in_time() {
    let Some(mut cluster) = weft_test::etcd_cluster().await else {
        return;
    };
    let endpoints = cluster.endpoints();
    let refs: Vec<&str> = endpoints.iter().map(String::as_str).collect();
    let s: Arc<dyn CasStore> = Arc::new(store(&refs, "cluster/").await);
    let config = LeaseConfig::new(Duration::from_secs(3));
    let a = Lease::builder(s.clone(), "owner", config.clone())
        .value(b"a")
        .acquire(Duration::from_secs(5))
        .await
        .unwrap();
    // When the holder is told it lost the lease, if it is.
    let lost = a.cancellation();
    let lost_at = tokio::spawn(async move {
        lost.cancelled().await;
        Instant::now()
    });
    let leader = cluster.leader().await.expect("the cluster has a leader");
    let killed = Instant::now();
    cluster.kill(leader);
    // Write until a write succeeds: the time to the first successful write.
    let mut first_write = None;
    while killed.elapsed() < Duration::from_secs(15) {
        if let Ok(Swap::Done { .. } | Swap::Conflict { .. }) = s
            .create(
                &format!("probe/{}", killed.elapsed().as_micros()),
                b"p".to_vec(),
                Duration::from_secs(5),
            )
            .await
        {
            first_write = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_write = first_write.expect("the surviving members accept writes");
    println!("etcd leader killed: first successful write after {first_write:?}");
    // Longer than the TTL: a lease still held now was renewed after the kill.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let a_token = a.token();
    let survived = a.is_held();
    if survived {
        assert!(
            killed.elapsed() > config.ttl() && !lost_at.is_finished(),
            "held past a TTL after the kill means a renewal went through"
        );
        println!("the lease survived the leader's death");
        a.release().await.unwrap();
    }
    let b = Lease::builder(s, "owner", config)
        .value(b"b")
        .acquire(Duration::from_secs(15))
        .await
        .unwrap();
    let granted = Instant::now();
    assert!(b.token() > a_token);
    if !survived {
        // Lost: then in time, before anyone else could be granted the key.
        let lost_at = lost_at.await.unwrap();
        assert!(
            lost_at < granted,
            "the holder heard of its loss {:?} after the next grant",
            lost_at - granted
        );
        println!(
            "the lease was reported lost {:?} before the next grant",
            granted - lost_at
        );
    }
    assert!(first_write < Duration::from_secs(10));
}

/// The lease torture against real etcd, bounded in time: three clients,
/// holders paused between check and write (their store calls stop too) for
/// longer than the TTL. With the fence, no stale write is accepted; without
/// it, the same run shows lost updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_torture_against_real_etcd_has_no_fenced_violations() {
    let Some(etcd) = weft_test::etcd().await else {
        return;
    };
    let secs: u64 = std::env::var("WEFT_ETCD_TORTURE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let end = Instant::now() + Duration::from_secs(secs);
    let base: Arc<dyn CasStore> = Arc::new(store(&[&etcd.endpoint()], "torture/").await);
    let fence = Arc::new(MemoryFence::new());
    let writes = Arc::new(std::sync::Mutex::new(
        Vec::<(weft_lease::Version, bool)>::new(),
    ));
    let clients = (0..3u64).map(|c| {
        let (base, fence, writes) = (base.clone(), fence.clone(), writes.clone());
        tokio::spawn(async move {
            let faulty = Arc::new(FaultyStore::new(
                base,
                FaultPlan {
                    seed: c,
                    ..FaultPlan::default()
                },
            ));
            let config = LeaseConfig::new(Duration::from_secs(2));
            let mut step = 0u64;
            while Instant::now() < end {
                let Ok(lease) = Lease::builder(faulty.clone(), "owner", config.clone())
                    .value(c.to_le_bytes().to_vec())
                    .acquire(Duration::from_secs(3))
                    .await
                else {
                    continue;
                };
                while lease.is_held() && Instant::now() < end {
                    step += 1;
                    if weft_core::key_hash(&(c, step)) % 20 == 0 {
                        // A process pause between check and write.
                        faulty.set_paused(true);
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        faulty.set_paused(false);
                    }
                    let accepted = fence
                        .check_and_advance("resource", lease.token())
                        .await
                        .is_ok();
                    writes.lock().unwrap().push((lease.token(), accepted));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let _ = lease.release().await;
            }
        })
    });
    for c in futures::future::join_all(clients).await {
        c.unwrap();
    }
    let writes = writes.lock().unwrap().clone();
    let (mut high, mut raw_high, mut stale_accepted, mut unfenced, mut rejected) =
        (weft_lease::Version(0), weft_lease::Version(0), 0, 0, 0);
    for (token, accepted) in &writes {
        if *accepted {
            if *token < high {
                stale_accepted += 1;
            }
            high = high.max(*token);
        } else {
            rejected += 1;
        }
        if *token < raw_high {
            unfenced += 1;
        }
        raw_high = raw_high.max(*token);
    }
    println!(
        "etcd torture ({secs} s): {} writes, fenced stale accepted {stale_accepted}, rejected {rejected}, unfenced violations {unfenced}",
        writes.len()
    );
    assert_eq!(stale_accepted, 0);
    assert!(!writes.is_empty());
}
