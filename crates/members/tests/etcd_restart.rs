//! A watcher on a real etcd that is killed and restarted: its prefix watch
//! ends, it catches up by polling, never goes back to an older
//! registration, and is back on the watch afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_lease::{CasStore, LeaseConfig};
use weft_lease_etcd::EtcdStore;
use weft_members::{Member, MemberSet, Registration, WatchConfig, Watcher};

const TTL: Duration = Duration::from_secs(4);

async fn store(endpoint: &str) -> Arc<dyn CasStore> {
    let store = EtcdStore::connect_with_min_ttl(&[endpoint], "restart/", Duration::from_secs(1))
        .await
        .unwrap();
    Arc::new(store)
}

/// Yields sets until one has `name`, checking that no name's token goes
/// down; how long it took.
async fn until_has(watcher: &mut Watcher, name: &str, tokens: &mut Vec<(String, u64)>) -> Duration {
    let started = Instant::now();
    let deadline = Duration::from_secs(20);
    loop {
        let set: MemberSet = tokio::time::timeout(deadline, watcher.next())
            .await
            .expect("the watcher caught up")
            .unwrap();
        for live in set.members() {
            let (n, t) = (live.member.name().to_string(), live.token.0);
            if let Some((_, before)) = tokens.iter().find(|(m, _)| *m == n) {
                assert!(t >= *before, "{n} went back from token {before} to {t}");
            }
            tokens.retain(|(m, _)| *m != n);
            tokens.push((n, t));
        }
        if set.get(name).is_some() {
            return started.elapsed();
        }
    }
}

async fn register(store: Arc<dyn CasStore>, name: &str) -> Registration {
    let me = Member::new(name, format!("{name}:1")).unwrap();
    Registration::register(store, "svc/", me, LeaseConfig::new(TTL), TTL * 3)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_catches_up_after_etcd_restarts_and_is_back_on_the_watch() {
    let Some(mut etcd) = weft_test::etcd().await else {
        return;
    };
    let endpoint = etcd.endpoint();
    let (members, watching) = (store(&endpoint).await, store(&endpoint).await);
    // Polling every TTL: a change seen much sooner came through the watch.
    let config = WatchConfig::new(TTL).unwrap().poll(TTL).unwrap();
    let mut watcher = Watcher::new(watching, "svc/", config).unwrap();
    let mut tokens = Vec::new();
    let _a = register(members.clone(), "a").await;
    until_has(&mut watcher, "a", &mut tokens).await;
    let _b = register(members.clone(), "b").await;
    let on_watch = until_has(&mut watcher, "b", &mut tokens).await;
    assert!(
        on_watch < Duration::from_millis(500),
        "b seen after {on_watch:?}"
    );

    etcd.restart().await.unwrap();
    let _c = register(members.clone(), "c").await;
    let caught_up = until_has(&mut watcher, "c", &mut tokens).await;
    println!("after the restart, c seen after {caught_up:?}");
    // The watch is opened again within 250 ms of its end, not a poll
    // period (4 s here) later.
    assert!(
        caught_up < Duration::from_secs(2),
        "c seen after {caught_up:?}"
    );
    // Back on the watch: a later join comes well before the next poll.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _d = register(members.clone(), "d").await;
    let again = until_has(&mut watcher, "d", &mut tokens).await;
    println!("then d seen after {again:?}");
    assert!(
        again < Duration::from_millis(500),
        "d seen after {again:?}: not back on the watch"
    );
    for name in ["a", "b", "c", "d"] {
        assert!(
            tokens.iter().any(|(n, _)| n == name),
            "{name} missing: {tokens:?}"
        );
    }
}
