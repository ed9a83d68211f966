//! Partition ownership over the in-memory store on paused tokio time: five
//! members join, drain, crash and are paused (their store calls stopped
//! past the lease TTL) at seeded moments, while an independent check
//! records, from each partition lease's own signals, who held what when.
//! No partition ever has two holders at once; at the end the partitions
//! are spread over the live members as the assignment says.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use weft_lease::{CasStore, LeaseConfig, MemoryStore};
use weft_members::{
    Member, MembersError, Ownership, OwnershipConfig, Registration, WatchConfig, Watcher,
};
use weft_test::faults::{FaultPlan, FaultyStore};

const TTL: Duration = Duration::from_secs(2);
const PARTITIONS: u32 = 12;

/// Who held a partition, from when to when (the lease's lost signal, or
/// still held: `None`).
type Intervals = Arc<Mutex<BTreeMap<u32, Vec<(String, Instant, Option<Instant>)>>>>;

struct Node {
    store: Arc<FaultyStore>,
    registration: Option<Registration>,
    ownership: Option<Ownership>,
}

async fn node(shared: &Arc<MemoryStore>, name: &str, log: &Intervals) -> Node {
    let store = Arc::new(FaultyStore::new(shared.clone(), FaultPlan::default()));
    let as_dyn: Arc<dyn CasStore> = store.clone();
    let me = Member::new(name, format!("{name}:1")).unwrap();
    let registration =
        Registration::register(as_dyn.clone(), "svc/", me, LeaseConfig::new(TTL), TTL * 2)
            .await
            .unwrap();
    let watcher = Watcher::new(as_dyn.clone(), "svc/", WatchConfig::new(TTL).unwrap()).unwrap();
    let config = OwnershipConfig::new(PARTITIONS, LeaseConfig::new(TTL)).unwrap();
    let ownership = Ownership::start(as_dyn, "svc-parts/", name, watcher, config).unwrap();
    watch_holdings(name, &ownership, log);
    Node {
        store,
        registration: Some(registration),
        ownership: Some(ownership),
    }
}

/// Records each partition the member takes, and when its lease says it is
/// no longer held.
fn watch_holdings(name: &str, ownership: &Ownership, log: &Intervals) {
    let mut owned = ownership.owned();
    let name = name.to_string();
    let log = log.clone();
    // The guards come from the ownership: ask for each new partition's.
    let lookup = OwnershipGuards::new(ownership);
    tokio::spawn(async move {
        let mut seen: BTreeMap<u32, weft_lease::Version> = BTreeMap::new();
        loop {
            let now = owned.borrow_and_update().clone();
            for (&p, &token) in &now.partitions {
                if seen.get(&p) == Some(&token) {
                    continue;
                }
                seen.insert(p, token);
                let Some(guard) = lookup.guard(p) else {
                    continue;
                };
                let start = Instant::now();
                let index = {
                    let mut l = log.lock().unwrap();
                    let list = l.entry(p).or_default();
                    list.push((name.clone(), start, None));
                    list.len() - 1
                };
                let log = log.clone();
                tokio::spawn(async move {
                    guard.cancelled().await;
                    log.lock().unwrap().get_mut(&p).unwrap()[index].2 = Some(Instant::now());
                });
            }
            seen.retain(|p, _| now.partitions.contains_key(p));
            if owned.changed().await.is_err() {
                return;
            }
        }
    });
}

/// A handle on an ownership's guards that outlives a borrow of it.
struct OwnershipGuards(tokio::sync::watch::Receiver<BTreeMap<u32, weft_lease::LeaseGuard>>);

impl OwnershipGuards {
    fn new(ownership: &Ownership) -> Self {
        OwnershipGuards(ownership.guards())
    }

    fn guard(&self, p: u32) -> Option<weft_lease::LeaseGuard> {
        self.0.borrow().get(&p).cloned()
    }
}

/// SplitMix64 for the seeded events.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(weft_core::mix::GAMMA);
        weft_core::mix::mix64(self.0) % n
    }
}

fn check_no_overlap(log: &Intervals) -> usize {
    let log = log.lock().unwrap();
    let mut handoffs = 0;
    for (p, list) in log.iter() {
        let mut list = list.clone();
        list.sort_by_key(|(_, start, _)| *start);
        for pair in list.windows(2) {
            let (a, _, a_end) = &pair[0];
            let (b, b_start, _) = &pair[1];
            let a_end = a_end
                .unwrap_or_else(|| panic!("partition {p}: {a} still holds it when {b} took it"));
            assert!(
                *b_start >= a_end,
                "partition {p}: {b} took it at {b_start:?} while {a} held it until {a_end:?}"
            );
            handoffs += 1;
        }
    }
    handoffs
}

#[tokio::test(start_paused = true)]
async fn partitions_have_one_owner_at_a_time_through_joins_drains_crashes_and_pauses() {
    for seed in 0..4u64 {
        let shared = Arc::new(MemoryStore::new());
        let log: Intervals = Arc::default();
        let mut rng = Rng(0x0a55_1900 + seed);
        let mut nodes = Vec::new();
        for i in 0..5 {
            nodes.push(node(&shared, &format!("m-{i}"), &log).await);
        }
        let mut lives = 5;
        let (mut pauses, mut crashes, mut drains) = (0, 0, 0);
        let chaos_until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < chaos_until {
            tokio::time::sleep(Duration::from_millis(500 + rng.below(2500))).await;
            let k = rng.below(nodes.len() as u64) as usize;
            let what = rng.below(3);
            match what {
                0 => {
                    // Paused past the TTL: its leases are lost by their own
                    // clock, then it resumes.
                    nodes[k].store.set_paused(true);
                    tokio::time::sleep(TTL * 2).await;
                    nodes[k].store.set_paused(false);
                    pauses += 1;
                }
                1 => {
                    // Crashed: its calls never return; a new life replaces it.
                    nodes[k].store.set_paused(true);
                    let dead = std::mem::replace(
                        &mut nodes[k],
                        node(&shared, &format!("m-{lives}"), &log).await,
                    );
                    lives += 1;
                    std::mem::forget(dead.registration);
                    std::mem::forget(dead.ownership);
                    crashes += 1;
                }
                _ => {
                    // Drained: partitions released, record removed.
                    if let Some(o) = nodes[k].ownership.take() {
                        tokio::time::timeout(Duration::from_secs(30), o.stop())
                            .await
                            .expect("stop");
                    }
                    if let Some(r) = nodes[k].registration.take() {
                        tokio::time::timeout(Duration::from_secs(30), r.deregister())
                            .await
                            .expect("deregister")
                            .unwrap();
                    }
                    nodes[k] = node(&shared, &format!("m-{lives}"), &log).await;
                    lives += 1;
                    drains += 1;
                }
            }
        }
        // Settle: every partition held by the member the assignment names.
        let settled = Instant::now();
        let deadline = settled + TTL * 10;
        loop {
            let mut held = 0;
            for n in &nodes {
                held += n
                    .ownership
                    .as_ref()
                    .unwrap()
                    .owned()
                    .borrow()
                    .partitions
                    .len();
            }
            let counts: Vec<usize> = nodes
                .iter()
                .map(|n| {
                    n.ownership
                        .as_ref()
                        .unwrap()
                        .owned()
                        .borrow()
                        .partitions
                        .len()
                })
                .collect();
            if held == PARTITIONS as usize
                && counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "seed {seed}: not settled: {counts:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let handoffs = check_no_overlap(&log);
        println!(
            "seed {seed}: {PARTITIONS} partitions, 5 members, {pauses} pauses, {crashes} crashes, {drains} drains, \
             {handoffs} handoffs, settled {:?} after the chaos, overlaps 0",
            settled.elapsed()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn ownership_settings_and_prefixes_are_checked() {
    let store: Arc<dyn CasStore> = Arc::new(MemoryStore::new());
    let watcher = || Watcher::new(store.clone(), "svc/", WatchConfig::new(TTL).unwrap()).unwrap();
    let config = OwnershipConfig::new(4, LeaseConfig::new(TTL)).unwrap();
    let what = |r: Result<Ownership, MembersError>| match r {
        Err(MembersError::Invalid { what, .. }) => what,
        other => panic!("{other:?}"),
    };
    let start = |prefix: &str, name: &str| {
        what(Ownership::start(
            store.clone(),
            prefix,
            name,
            watcher(),
            config.clone(),
        ))
    };
    assert_eq!(start("svc/", "a"), "ownership prefix");
    assert_eq!(start("svc/parts/", "a"), "ownership prefix");
    assert_eq!(start("parts", "a"), "prefix");
    assert_eq!(start("parts/", ""), "name");
    assert!(OwnershipConfig::new(0, LeaseConfig::new(TTL)).is_err());
    assert!(OwnershipConfig::new(u32::MAX, LeaseConfig::new(TTL)).is_err());
    assert!(config.clone().every(Duration::ZERO).is_err());
    assert!(config.clone().every(Duration::MAX).is_err());
    let bad_lease = OwnershipConfig::new(4, LeaseConfig::new(Duration::ZERO)).unwrap();
    assert_eq!(
        what(Ownership::start(
            store.clone(),
            "parts/",
            "a",
            watcher(),
            bad_lease
        )),
        "partition lease"
    );
}
