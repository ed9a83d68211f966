//! Registration, watching and a live sharder over the in-memory store, on
//! paused tokio time: one record per name, re-registration after a lost
//! lease, drain and death, the hold window, ejection, ids that stay with
//! names, movement, and bad input.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use weft_lease::{CasStore, LeaseConfig, Limits, MemoryStore, Swap};
use weft_members::{
    LiveSharder, Member, MemberSet, MembersError, Registered, Registration, WatchConfig, Watcher,
};
use weft_shard::{Rendezvous, Ring};

const TTL: Duration = Duration::from_secs(3);

fn store() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new())
}

fn member(i: usize) -> Member {
    Member::new(format!("m-{i}"), format!("10.0.0.{i}:7000")).unwrap()
}

async fn register(store: &Arc<MemoryStore>, m: Member) -> Registration {
    Registration::register(store.clone(), "svc/", m, LeaseConfig::new(TTL), TTL)
        .await
        .unwrap()
}

fn names(set: &MemberSet) -> Vec<&str> {
    set.members().iter().map(|l| l.member.name()).collect()
}

/// The owner of each of `n` keys.
fn owners<P: weft_shard::Placement>(sharder: &LiveSharder<P>, n: usize) -> Vec<String> {
    (0..n)
        .map(|k| {
            sharder
                .route(&format!("key-{k}"), |l| l.member.name().to_string())
                .unwrap()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn one_name_has_one_record_and_a_second_claim_is_refused() {
    let store = store();
    let _first = register(&store, member(1)).await;
    let second = Registration::register(
        store.clone(),
        "svc/",
        Member::new("m-1", "10.9.9.9:1").unwrap(),
        LeaseConfig::new(TTL),
        Duration::from_secs(1),
    )
    .await;
    assert!(
        matches!(&second, Err(MembersError::NameTaken { name, .. }) if name == "m-1"),
        "{second:?}"
    );
    let listed = store.list("svc/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        Member::new("m-1", "10.0.0.1:7000").unwrap(),
        serde_json::from_slice(&listed[0].1.value).unwrap()
    );
}

#[tokio::test(start_paused = true)]
async fn a_restarted_process_waits_out_its_earlier_record() {
    let store = store();
    // The earlier life's record, left by a process that died.
    let earlier = Member::new("m-1", "10.0.0.1:7000").unwrap();
    let created = store
        .create("svc/m-1", serde_json::to_vec(&earlier).unwrap(), TTL)
        .await
        .unwrap();
    assert!(matches!(created, Swap::Done { .. }));
    let started = tokio::time::Instant::now();
    let reg = Registration::register(
        store.clone(),
        "svc/",
        member(1),
        LeaseConfig::new(TTL),
        TTL * 2,
    )
    .await
    .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= TTL,
        "registered after {waited:?}, before the old record expired"
    );
    assert!(matches!(reg.state(), Registered::Held(_)));
}

#[tokio::test(start_paused = true)]
async fn a_lost_lease_registers_again_under_a_higher_token_that_watchers_see() {
    let store = store();
    let reg = register(&store, member(1)).await;
    let Registered::Held(first) = reg.state() else {
        panic!("{:?}", reg.state())
    };
    let mut watcher = Watcher::new(store.clone(), "svc/", WatchConfig::new(TTL).unwrap()).unwrap();
    assert_eq!(
        watcher.next().await.unwrap().get("m-1").unwrap().token,
        first
    );
    // The record vanishes under the lease (an operator, a store failover).
    let gone = store.delete("svc/m-1", first).await.unwrap();
    assert!(matches!(gone, Swap::Done { .. }));
    let mut state = reg.watch_state();
    let again = tokio::time::timeout(TTL * 3, async {
        loop {
            state.changed().await.unwrap();
            if let Registered::Held(t) = *state.borrow() {
                return t;
            }
        }
    })
    .await
    .expect("registered again within three TTLs");
    assert!(again > first, "token {again:?} after {first:?}");
    let seen = loop {
        let set = watcher.next().await.unwrap();
        if let Some(live) = set.get("m-1") {
            break live.token;
        }
    };
    assert_eq!(seen, again);
}

#[tokio::test(start_paused = true)]
async fn a_drained_member_leaves_at_once_and_a_dead_one_after_its_ttl() {
    let store = store();
    let a = register(&store, member(1)).await;
    let b = register(&store, member(2)).await;
    let mut watcher = Watcher::new(store.clone(), "svc/", WatchConfig::new(TTL).unwrap()).unwrap();
    assert_eq!(names(&watcher.next().await.unwrap()), ["m-1", "m-2"]);
    let drained = tokio::time::Instant::now();
    a.deregister().await.unwrap();
    assert_eq!(names(&watcher.next().await.unwrap()), ["m-2"]);
    assert!(
        drained.elapsed() <= Duration::from_millis(250),
        "{:?}",
        drained.elapsed()
    );
    // A process that dies mid-flight: its renewals stop, the record stays
    // until its TTL.
    let dead = store
        .create("svc/m-3", serde_json::to_vec(&member(3)).unwrap(), TTL)
        .await
        .unwrap();
    assert!(matches!(dead, Swap::Done { .. }));
    let died = tokio::time::Instant::now();
    assert_eq!(names(&watcher.next().await.unwrap()), ["m-2", "m-3"]);
    assert_eq!(names(&watcher.next().await.unwrap()), ["m-2"]);
    let gone_after = died.elapsed();
    assert!(
        gone_after >= TTL && gone_after <= TTL + Duration::from_millis(250),
        "{gone_after:?}"
    );
    drop(b);
}

#[tokio::test(start_paused = true)]
async fn a_flap_shorter_than_the_hold_window_moves_no_key_and_a_longer_one_does() {
    let store = store();
    let mut regs: Vec<Option<Registration>> = Vec::new();
    for i in 0..5 {
        regs.push(Some(register(&store, member(i)).await));
    }
    let hold = Duration::from_secs(2);
    let config = WatchConfig::new(TTL).unwrap().hold(hold).unwrap();
    let mut watcher = Watcher::new(store.clone(), "svc/", config).unwrap();
    let sharder = LiveSharder::<Ring>::new();
    sharder.apply(&watcher.next().await.unwrap()).unwrap();
    let before = owners(&sharder, 2000);
    // m-3 restarts within the window: it leaves and comes back.
    regs[3].take().unwrap().deregister().await.unwrap();
    tokio::time::sleep(hold / 2).await;
    regs[3] = Some(register(&store, member(3)).await);
    let set = watcher.next().await.unwrap();
    assert_eq!(
        names(&set).len(),
        5,
        "the member left within its hold window"
    );
    sharder.apply(&set).unwrap();
    assert_eq!(
        owners(&sharder, 2000),
        before,
        "a key moved in a short flap"
    );
    // m-4 goes for good: it leaves once the window has passed.
    let left = tokio::time::Instant::now();
    regs[4].take().unwrap().deregister().await.unwrap();
    let set = watcher.next().await.unwrap();
    assert!(left.elapsed() >= hold, "removed after {:?}", left.elapsed());
    assert_eq!(names(&set), ["m-0", "m-1", "m-2", "m-3"]);
    sharder.apply(&set).unwrap();
    let after = owners(&sharder, 2000);
    for (b, a) in before.iter().zip(&after) {
        assert!(b == a || b == "m-4", "a key of {b} moved to {a}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_ejected_member_leaves_at_once_and_only_its_keys_move() {
    let store = store();
    let mut regs = Vec::new();
    for i in 0..10 {
        regs.push(register(&store, member(i)).await);
    }
    let mut watcher = Watcher::new(store.clone(), "svc/", WatchConfig::new(TTL).unwrap()).unwrap();
    // Ring and rendezvous move only the ejected member's keys; Maglev's
    // table moves a few others too (minimal disruption, not none).
    let sharder = LiveSharder::<Ring>::new();
    sharder.apply(&watcher.next().await.unwrap()).unwrap();
    let id_of = |name: &str| sharder.routes().unwrap().named().id_of(name);
    let ids: Vec<_> = (0..10).map(|i| id_of(&format!("m-{i}"))).collect();
    let before = owners(&sharder, 5000);
    watcher.eject("m-6");
    let set = watcher.next().await.unwrap();
    assert!(set.get("m-6").is_none());
    sharder.apply(&set).unwrap();
    let after = owners(&sharder, 5000);
    let mut moved = 0;
    for (b, a) in before.iter().zip(&after) {
        if b != a {
            assert_eq!(b, "m-6", "a key of {b} moved to {a}");
            moved += 1;
        }
    }
    assert!(moved > 0);
    // Ids stay with names.
    for i in (0..10).filter(|&i| i != 6) {
        assert_eq!(id_of(&format!("m-{i}")), ids[i], "m-{i}'s id changed");
    }
    watcher.readmit("m-6");
    sharder.apply(&watcher.next().await.unwrap()).unwrap();
    assert_eq!(id_of("m-6"), ids[6], "m-6 did not get its id back");
    assert_eq!(owners(&sharder, 5000), before);
}

#[tokio::test(start_paused = true)]
async fn a_join_moves_about_the_joiners_share_and_every_sharder_on_a_set_agrees() {
    let store = store();
    let mut regs = Vec::new();
    for i in 0..9 {
        regs.push(register(&store, member(i)).await);
    }
    let mut watcher = Watcher::new(store.clone(), "svc/", WatchConfig::new(TTL).unwrap()).unwrap();
    let first = watcher.next().await.unwrap();
    let sharder = LiveSharder::<Rendezvous>::new();
    sharder.apply(&first).unwrap();
    let n = 20_000;
    let before = owners(&sharder, n);
    regs.push(register(&store, member(9)).await);
    let second = watcher.next().await.unwrap();
    sharder.apply(&second).unwrap();
    let after = owners(&sharder, n);
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    for (b, a) in before.iter().zip(&after) {
        assert!(
            b == a || a == "m-9",
            "a key moved from {b} to {a}, not to the joiner"
        );
    }
    let ideal = n as f64 / 10.0;
    assert!(
        (moved as f64) <= 1.1 * ideal,
        "moved {moved} keys, ideal {ideal}"
    );
    // Another process that builds from the same set, without the history,
    // routes every key alike.
    let fresh = LiveSharder::<Rendezvous>::new();
    fresh.apply(&second).unwrap();
    assert_eq!(owners(&fresh, n), after);
    // And an older set is not applied over a newer one.
    sharder.apply(&first).unwrap();
    assert_eq!(sharder.routes().unwrap().set().epoch(), second.epoch());
}

#[tokio::test(start_paused = true)]
async fn bad_settings_and_records_are_typed_errors() {
    let store = store();
    let what = |r: Result<Registration, MembersError>| match r {
        Err(MembersError::Invalid { what, .. }) => what,
        other => panic!("{other:?}"),
    };
    let reg = |prefix: &'static str, m: Member| {
        let store = store.clone();
        async move { Registration::register(store, prefix, m, LeaseConfig::new(TTL), TTL).await }
    };
    assert_eq!(what(reg("", member(1)).await), "prefix");
    assert_eq!(what(reg("svc", member(1)).await), "prefix");
    // Metadata over the store's value limit.
    let small = Arc::new(
        MemoryStore::with_limits(Limits {
            max_value_len: 256,
            ..MemoryStore::new().limits()
        })
        .unwrap(),
    );
    let big = member(1).with_meta("blob", "x".repeat(300)).unwrap();
    let r = Registration::register(small, "svc/", big, LeaseConfig::new(TTL), TTL).await;
    assert_eq!(what(r), "member record");
    // A lease the store cannot keep.
    let r = Registration::register(
        store.clone(),
        "svc/",
        member(1),
        LeaseConfig::new(Duration::ZERO),
        TTL,
    )
    .await;
    assert!(matches!(r, Err(MembersError::Invalid { .. })), "{r:?}");
    // Watch settings.
    let setting = |r: Result<WatchConfig, MembersError>| match r {
        Err(MembersError::Invalid { what, .. }) => what,
        other => panic!("{other:?}"),
    };
    assert_eq!(setting(WatchConfig::new(Duration::ZERO)), "lease TTL");
    let c = WatchConfig::new(TTL).unwrap();
    assert_eq!(setting(c.clone().hold(TTL * 2)), "hold window");
    assert_eq!(setting(c.clone().hold(Duration::MAX)), "hold window");
    assert_eq!(setting(c.clone().poll(Duration::ZERO)), "poll period");
    assert_eq!(setting(c.clone().poll(Duration::MAX)), "poll period");
    assert!(c.clone().hold(TTL).is_ok());
    assert!(matches!(
        Watcher::new(store.clone(), "svc", c.clone()),
        Err(MembersError::Invalid { what: "prefix", .. })
    ));
    // A prefix nested in the watched one.
    let _nested = Registration::register(
        store.clone(),
        "svc/a/",
        member(1),
        LeaseConfig::new(TTL),
        TTL,
    )
    .await
    .unwrap();
    let mut watcher = Watcher::new(store.clone(), "svc/", c).unwrap();
    let overlap = watcher.next().await;
    assert!(
        matches!(&overlap, Err(MembersError::Overlap { key, .. }) if key == "svc/a/m-1"),
        "{overlap:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn records_that_are_not_members_are_skipped_and_an_empty_set_has_no_routes() {
    let store = store();
    let junk = store
        .create("svc/junk", b"not json".to_vec(), TTL)
        .await
        .unwrap();
    assert!(matches!(junk, Swap::Done { .. }));
    // A record whose name differs from its key.
    let liar = store
        .create("svc/m-7", serde_json::to_vec(&member(8)).unwrap(), TTL)
        .await
        .unwrap();
    assert!(matches!(liar, Swap::Done { .. }));
    let mut watcher = Watcher::new(store.clone(), "svc/", WatchConfig::new(TTL).unwrap()).unwrap();
    let set = watcher.next().await.unwrap();
    assert!(set.is_empty(), "{:?}", names(&set));
    let sharder = LiveSharder::<Ring>::new();
    sharder.apply(&set).unwrap();
    assert_eq!(sharder.route("k", |_| ()), None);
    let mut counts = HashMap::new();
    let _reg = register(&store, member(1)).await;
    sharder.apply(&watcher.next().await.unwrap()).unwrap();
    for k in 0..100 {
        let owner = sharder.route(&k, |l| l.member.name().to_string()).unwrap();
        *counts.entry(owner).or_insert(0) += 1;
    }
    assert_eq!(counts.get("m-1"), Some(&100));
}

/// A store whose lists follow a script (each call the next listing, the
/// last one again after the end); nothing else is used by a watcher.
#[derive(Debug)]
struct Scripted {
    lists: std::sync::Mutex<std::collections::VecDeque<Listing>>,
}

/// Names and tokens, or a failed list.
type Listing = Result<Vec<(String, u64)>, ()>;

#[weft_lease::async_trait]
impl CasStore for Scripted {
    fn limits(&self) -> Limits {
        MemoryStore::new().limits()
    }
    async fn get(&self, _: &str) -> Result<Option<weft_lease::Entry>, weft_lease::StoreError> {
        unreachable!("a watcher only lists")
    }
    async fn create(
        &self,
        _: &str,
        _: Vec<u8>,
        _: Duration,
    ) -> Result<Swap, weft_lease::StoreError> {
        unreachable!("a watcher only lists")
    }
    async fn compare_and_swap(
        &self,
        _: &str,
        _: weft_lease::Version,
        _: Vec<u8>,
        _: Duration,
    ) -> Result<Swap, weft_lease::StoreError> {
        unreachable!("a watcher only lists")
    }
    async fn delete(
        &self,
        _: &str,
        _: weft_lease::Version,
    ) -> Result<Swap, weft_lease::StoreError> {
        unreachable!("a watcher only lists")
    }
    async fn refresh(
        &self,
        _: &str,
        _: weft_lease::Version,
        _: Duration,
    ) -> Result<Swap, weft_lease::StoreError> {
        unreachable!("a watcher only lists")
    }
    async fn list(
        &self,
        _: &str,
    ) -> Result<Vec<(String, weft_lease::Entry)>, weft_lease::StoreError> {
        let mut lists = self.lists.lock().unwrap();
        let next = if lists.len() > 1 {
            lists.pop_front().unwrap()
        } else {
            lists.front().cloned().unwrap()
        };
        let listing = next.map_err(|()| weft_lease::StoreError::Unavailable {
            store: "scripted".into(),
            reason: "down for a moment".into(),
            cause: None,
        })?;
        Ok(listing
            .into_iter()
            .map(|(name, version)| {
                let record = Member::new(name.clone(), format!("{name}:{version}")).unwrap();
                let entry = weft_lease::Entry {
                    value: serde_json::to_vec(&record).unwrap(),
                    version: weft_lease::Version(version),
                    created: weft_lease::Version(version),
                };
                (format!("svc/{name}"), entry)
            })
            .collect())
    }
}

#[tokio::test(start_paused = true)]
async fn a_watcher_never_goes_back_to_an_older_registration_and_rides_out_store_failures() {
    let listing = |v: &[(&str, u64)]| Ok(v.iter().map(|(n, t)| (n.to_string(), *t)).collect());
    let store = Arc::new(Scripted {
        lists: std::sync::Mutex::new(
            [
                listing(&[("a", 5), ("b", 3)]),
                // A lagging read shows a's earlier registration.
                listing(&[("a", 2), ("b", 3)]),
                Err(()),
                Err(()),
                listing(&[("a", 6), ("b", 3)]),
            ]
            .into(),
        ),
    });
    let mut watcher = Watcher::new(store, "svc/", WatchConfig::new(TTL).unwrap()).unwrap();
    let first = watcher.next().await.unwrap();
    assert_eq!(first.get("a").unwrap().token.0, 5);
    let second = watcher.next().await.unwrap();
    assert!(second.epoch() > first.epoch());
    let a = second.get("a").unwrap();
    assert_eq!(
        (a.token.0, a.member.address()),
        (6, "a:6"),
        "went back to an older record"
    );
    assert_eq!(second.get("b").unwrap().token.0, 3);
}

#[test]
fn a_reader_follows_every_set_its_sharder_applies() {
    let live = |name: &str| weft_members::Live {
        member: Member::new(name, "h:1").unwrap(),
        token: weft_lease::Version(1),
    };
    let sharder = LiveSharder::<Rendezvous>::new();
    let mut reader = sharder.reader();
    assert_eq!(reader.route("k", |_| ()), None, "routes before any set");
    sharder
        .apply(&MemberSet::of(1, vec![live("a")]).unwrap())
        .unwrap();
    assert_eq!(
        reader
            .route("k", |l| l.member.name().to_string())
            .as_deref(),
        Some("a")
    );
    sharder
        .apply(&MemberSet::of(2, vec![live("b")]).unwrap())
        .unwrap();
    for k in 0..100 {
        assert_eq!(
            reader.route(&k, |l| l.member.name().to_string()).as_deref(),
            Some("b"),
            "the reader kept an old set"
        );
    }
    sharder.apply(&MemberSet::of(3, vec![]).unwrap()).unwrap();
    assert_eq!(reader.route("k", |_| ()), None);
}

#[tokio::test(start_paused = true)]
async fn a_lease_and_hold_window_of_duration_max_keep_a_departed_member_without_overflow() {
    let store = store();
    let reg = register(&store, member(1)).await;
    let config = WatchConfig::new(Duration::MAX)
        .unwrap()
        .hold(Duration::MAX)
        .unwrap();
    let mut watcher = Watcher::new(store.clone(), "svc/", config.clone()).unwrap();
    assert_eq!(names(&watcher.next().await.unwrap()), ["m-1"]);
    // A poll period of Duration::MAX looks once.
    let mut once =
        Watcher::new(store.clone(), "svc/", config.poll(Duration::MAX).unwrap()).unwrap();
    assert_eq!(names(&once.next().await.unwrap()), ["m-1"]);
    reg.deregister().await.unwrap();
    // Held for ever: no new set, and no panic adding the window to now.
    let next = tokio::time::timeout(Duration::from_secs(3600), watcher.next()).await;
    assert!(
        next.is_err(),
        "a member held for Duration::MAX left: {next:?}"
    );
}
