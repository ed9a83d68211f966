//! Memento over the live set, its placement kept in the store: processes
//! on one generation route alike whatever order they saw changes in, a
//! removal moves only the leaver's keys, a lagging or ejecting process
//! removes nobody, a rejoin undoes the removal, and bad input.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use weft_lease::{CasStore, LeaseConfig, MemoryStore, Version};
use weft_members::{
    Live, Member, MemberSet, MembersError, Registration, SharedMemento, WatchConfig, Watcher,
};

const TTL: Duration = Duration::from_secs(3);
const KEYS: usize = 20_000;

struct Fleet {
    store: Arc<MemoryStore>,
    regs: HashMap<String, Registration>,
}

impl Fleet {
    async fn new(n: usize) -> Fleet {
        let store = Arc::new(MemoryStore::new());
        let mut fleet = Fleet {
            store,
            regs: HashMap::new(),
        };
        for i in 0..n {
            fleet.join(&format!("m{i}")).await;
        }
        fleet
    }

    async fn join(&mut self, name: &str) {
        let me = Member::new(name, format!("{name}:11211")).unwrap();
        let reg = Registration::register(
            self.store.clone(),
            "svc/",
            me,
            LeaseConfig::new(TTL),
            TTL * 2,
        )
        .await
        .unwrap();
        self.regs.insert(name.to_string(), reg);
    }

    async fn leave(&mut self, name: &str) {
        self.regs.remove(name).unwrap().deregister().await.unwrap();
    }

    fn placement(&self) -> SharedMemento {
        SharedMemento::new(self.store.clone(), "svc/", "svc.placement").unwrap()
    }

    fn watcher(&self) -> Watcher {
        Watcher::new(self.store.clone(), "svc/", WatchConfig::new(TTL).unwrap()).unwrap()
    }
}

/// The set a watcher yields once it has `n` members.
async fn set_of(watcher: &mut Watcher, n: usize) -> MemberSet {
    loop {
        let set = watcher.next().await.unwrap();
        if set.len() == n {
            return set;
        }
    }
}

fn owners(p: &SharedMemento) -> Vec<String> {
    (0..KEYS)
        .map(|k| {
            p.route(&format!("key-{k}"), |name, _| name.to_string())
                .unwrap()
        })
        .collect()
}

/// A set of these names as a (lagging) watcher might hold it.
fn set_named(epoch: u64, names: &[&str]) -> MemberSet {
    let lives = names
        .iter()
        .map(|n| Live {
            member: Member::new(*n, format!("{n}:11211")).unwrap(),
            token: Version(1),
        })
        .collect();
    MemberSet::of(epoch, lives).unwrap()
}

#[tokio::test(start_paused = true)]
async fn processes_agree_whatever_order_they_saw_and_a_removal_moves_only_its_keys() {
    let mut fleet = Fleet::new(8).await;
    let (a, b) = (fleet.placement(), fleet.placement());
    let (mut wa, mut wb) = (fleet.watcher(), fleet.watcher());
    a.apply(&set_of(&mut wa, 8).await).await.unwrap();
    b.apply(&set_of(&mut wb, 8).await).await.unwrap();
    let (ra, rb) = (a.routes().unwrap(), b.routes().unwrap());
    assert!(ra.generation() > 0);
    assert_eq!(ra.generation(), rb.generation());
    let before = owners(&a);
    assert_eq!(before, owners(&b));

    // m3 leaves: only its keys move, spread over the rest.
    fleet.leave("m3").await;
    a.apply(&set_of(&mut wa, 7).await).await.unwrap();
    let after = owners(&a);
    let moved: Vec<usize> = (0..KEYS).filter(|&k| before[k] != after[k]).collect();
    assert!(
        moved.iter().all(|&k| before[k] == "m3"),
        "a key of a member that stayed moved"
    );
    assert_eq!(moved.len(), before.iter().filter(|o| *o == "m3").count());
    let ideal = KEYS as f64 / 8.0;
    assert!(
        (moved.len() as f64) <= 1.1 * ideal,
        "{} keys moved, ideal {ideal}",
        moved.len()
    );

    // m1 and m5 leave. A sees both at once; B sees m5 first, then m1 (a
    // different order of removals, which alone would place keys apart).
    fleet.leave("m5").await;
    fleet.leave("m1").await;
    a.apply(&set_of(&mut wa, 5).await).await.unwrap();
    let lagging = set_named(100, &["m0", "m1", "m2", "m4", "m6", "m7"]);
    b.apply(&lagging).await.unwrap();
    b.apply(&set_of(&mut wb, 5).await).await.unwrap();
    assert_eq!(
        a.routes().unwrap().generation(),
        b.routes().unwrap().generation()
    );
    assert_eq!(
        owners(&a),
        owners(&b),
        "two processes on one generation disagree"
    );
    // The lagging set re-added nobody: m1's record is gone.
    assert!(owners(&b).iter().all(|o| o != "m1" && o != "m5"));
}

#[tokio::test(start_paused = true)]
async fn a_lagging_or_ejecting_process_removes_nobody_and_a_rejoin_undoes_a_removal() {
    let mut fleet = Fleet::new(6).await;
    let p = fleet.placement();
    let mut w = fleet.watcher();
    p.apply(&set_of(&mut w, 6).await).await.unwrap();
    let start = owners(&p);
    let generation = p.routes().unwrap().generation();

    // A set that lacks m4 while m4 is registered (a lagging watcher).
    p.apply(&set_named(50, &["m0", "m1", "m2", "m3", "m5"]))
        .await
        .unwrap();
    assert_eq!(
        p.routes().unwrap().generation(),
        generation,
        "a live member was removed"
    );
    assert_eq!(owners(&p), start);

    // Ejected here: still placed; its keys route to it with no live member.
    w.eject("m2");
    p.apply(&set_of(&mut w, 5).await).await.unwrap();
    assert_eq!(
        owners(&p),
        start,
        "an ejection moved keys of the shared placement"
    );
    let k = start.iter().position(|o| o == "m2").unwrap();
    let live = p.route(&format!("key-{k}"), |name, live| {
        (name.to_string(), live.is_some())
    });
    assert_eq!(live, Some(("m2".to_string(), false)));
    w.readmit("m2");

    // m0 leaves and comes back: every key is where it started.
    fleet.leave("m0").await;
    p.apply(&set_of(&mut w, 5).await).await.unwrap();
    assert_ne!(owners(&p), start);
    fleet.join("m0").await;
    p.apply(&set_of(&mut w, 6).await).await.unwrap();
    assert_eq!(owners(&p), start, "a rejoin did not undo the removal");

    // All leave: no route, and a new fleet starts afresh.
    for i in 0..6 {
        fleet.leave(&format!("m{i}")).await;
    }
    p.apply(&set_of(&mut w, 0).await).await.unwrap();
    assert_eq!(p.route("key-1", |n, _| n.to_string()), None);
    fleet.join("z").await;
    p.apply(&set_of(&mut w, 1).await).await.unwrap();
    assert_eq!(p.route("key-1", |n, _| n.to_string()).as_deref(), Some("z"));
}

#[tokio::test(start_paused = true)]
async fn a_follower_picks_up_a_change_another_process_wrote() {
    let mut fleet = Fleet::new(4).await;
    let (a, b) = (fleet.placement(), fleet.placement());
    let mut wa = fleet.watcher();
    a.apply(&set_of(&mut wa, 4).await).await.unwrap();
    let b = Arc::new(b);
    let follower = {
        let b = b.clone();
        let mut wb = fleet.watcher();
        tokio::spawn(async move { b.follow(&mut wb).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(owners(&a), owners(&b));
    fleet.leave("m2").await;
    a.apply(&set_of(&mut wa, 3).await).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        b.routes().unwrap().generation(),
        a.routes().unwrap().generation()
    );
    assert_eq!(owners(&a), owners(&b));
    follower.abort();
}

#[tokio::test(start_paused = true)]
async fn bad_keys_prefixes_and_records_are_typed_errors() {
    let store = Arc::new(MemoryStore::new());
    for (prefix, key) in [
        ("svc/", "svc/placement"),
        ("svc/", ""),
        ("svc", "p"),
        ("", "p"),
    ] {
        assert!(
            matches!(
                SharedMemento::new(store.clone(), prefix, key),
                Err(MembersError::Invalid { .. })
            ),
            "{prefix:?} {key:?}"
        );
    }
    store
        .create("p", b"not a placement".to_vec(), TTL)
        .await
        .unwrap();
    let p = SharedMemento::new(store.clone(), "svc/", "p").unwrap();
    assert!(matches!(
        p.apply(&set_named(1, &["a"])).await,
        Err(MembersError::Invalid {
            what: "placement record",
            ..
        })
    ));
    assert!(p.route("k", |n, _| n.to_string()).is_none());
}
