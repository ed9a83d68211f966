//! Membership and partition ownership across OS processes on a real etcd,
//! and on a real Redis:
//! five member processes register, watch and share 12 partitions while
//! the test SIGKILLs (and restarts, under the same name) or SIGSTOPs
//! (past the lease TTL) one of them at seeded moments.
//!
//! Each child logs, on its own, what it believes: each partition it holds
//! (its token, from when, and until when its lease says it is safe), each
//! member set its watcher yields, and each generation of a shared Memento
//! it routes by. The test then checks, from those logs alone: no partition
//! had two holders at once; every watcher ends on the final member set; a
//! restart within the hold window moved no key; each change of names moved
//! at most 1.1 × the ideal share of keys (rendezvous); processes on one
//! Memento generation routed alike. It reports how soon watchers saw each
//! registration (p50, p99, max). `WEFT_MEMBERS_SEEDS=N` runs N seeds.
//!
//! The test re-executes its own binary for the children (`member_child`,
//! which does nothing unless `WEFT_MEMBER_NAME` is set).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use weft_lease::{CasStore, LeaseConfig};
use weft_lease_etcd::EtcdStore;
use weft_lease_redis::RedisStore;
use weft_members::{
    Live, LiveSharder, Member, MemberSet, Ownership, OwnershipConfig, Registration, SharedMemento,
    WatchConfig, Watcher,
};
use weft_shard::{Maglev, Rendezvous};
use weft_test::children::{Signal, signal};

const TTL: Duration = Duration::from_secs(2);
/// The logged watchers' hold window: a killed process restarts and takes
/// its name back well within it.
const HOLD: Duration = Duration::from_millis(500);
/// Keys routed through each logged set, for movement.
const KEYS: usize = 10_000;
const PARTITIONS: u32 = 12;
const MEMBERS: usize = 5;
/// Registrations this soon after the start (ms) are start-up, measured
/// apart.
const WARM_UP: u64 = 2000;

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Appends one line to the log (one write each: a killed child loses at
/// most the line it was writing).
fn log(path: &Path, line: String) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// A member process: registers, follows the set, holds its partitions,
/// and logs what it believes.
#[test]
fn member_child() {
    let Ok(name) = std::env::var("WEFT_MEMBER_NAME") else {
        return;
    };
    let endpoint = std::env::var("WEFT_MEMBERS_STORE").unwrap();
    let path = PathBuf::from(std::env::var("WEFT_MEMBERS_LOG").unwrap());
    let rt = weft_test::children::runtime();
    rt.block_on(async move {
        let store: Arc<dyn CasStore> = loop {
            let connected: Result<Arc<dyn CasStore>, _> = if endpoint.starts_with("redis://") {
                RedisStore::connect(&endpoint, "weft/")
                    .await
                    .map(|s| Arc::new(s) as _)
            } else {
                EtcdStore::connect_with_min_ttl(&[&endpoint], "weft/", Duration::from_secs(1))
                    .await
                    .map(|s| Arc::new(s) as _)
            };
            match connected {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let me = Member::new(&name, format!("{name}:1")).unwrap();
        let registration = loop {
            let r = Registration::register(
                store.clone(),
                "svc/",
                me.clone(),
                LeaseConfig::new(TTL),
                TTL * 3,
            )
            .await;
            match r {
                Ok(r) => break r,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        if let weft_members::Registered::Held(token) = registration.state() {
            log(&path, format!("reg {name} {} {}", token.0, wall_ms()));
        }
        let watcher = Watcher::new(store.clone(), "svc/", WatchConfig::new(TTL).unwrap()).unwrap();
        let config = OwnershipConfig::new(PARTITIONS, LeaseConfig::new(TTL)).unwrap();
        let ownership = Ownership::start(store.clone(), "parts/", &name, watcher, config).unwrap();
        // What the watcher yields, for convergence.
        let config = WatchConfig::new(TTL).unwrap().hold(HOLD).unwrap();
        let mut sets = Watcher::new(store.clone(), "svc/", config.clone()).unwrap();
        let set_log = path.clone();
        tokio::spawn(async move {
            while let Ok(set) = sets.next().await {
                let members: Vec<String> = set
                    .members()
                    .iter()
                    .map(|l| format!("{}:{}", l.member.name(), l.token.0))
                    .collect();
                log(&set_log, format!("set {} {}", wall_ms(), members.join(",")));
            }
        });
        // A shared Memento placement: each generation it routes by, with a
        // fingerprint of where 1000 keys go.
        let placement =
            Arc::new(SharedMemento::new(store.clone(), "svc/", "svc.placement").unwrap());
        let mut placement_watcher = Watcher::new(store.clone(), "svc/", config).unwrap();
        let follower = placement.clone();
        tokio::spawn(async move {
            let _ = follower.follow(&mut placement_watcher).await;
        });
        let gen_log = path.clone();
        tokio::spawn(async move {
            let mut last = None;
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let Some(routes) = placement.routes() else {
                    continue;
                };
                if last == Some(routes.generation()) {
                    continue;
                }
                last = Some(routes.generation());
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for k in 0..1000 {
                    let owner = routes
                        .route(&format!("key-{k}"))
                        .map_or("", |(name, _)| name);
                    for b in owner.bytes().chain([0]) {
                        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                    }
                }
                log(
                    &gen_log,
                    format!("gen {} {} {h:x}", wall_ms(), routes.generation()),
                );
            }
        });
        // Each partition held: start, then every 20 ms how long it is safe,
        // and its end the moment the lease says so.
        let mut guards = ownership.guards();
        let mut watching: BTreeMap<u32, weft_lease::Version> = BTreeMap::new();
        loop {
            let now: Vec<(u32, weft_lease::LeaseGuard)> = guards
                .borrow_and_update()
                .iter()
                .map(|(p, g)| (*p, g.clone()))
                .collect();
            for (p, guard) in now {
                if watching.get(&p) == Some(&guard.token) {
                    continue;
                }
                watching.insert(p, guard.token);
                let path = path.clone();
                tokio::spawn(async move {
                    let token = guard.token.0;
                    let t = wall_ms();
                    log(
                        &path,
                        format!(
                            "hold {p} {token} {t} {}",
                            t + guard.remaining().as_millis() as u64
                        ),
                    );
                    loop {
                        tokio::select! {
                            () = guard.cancelled() => break,
                            () = tokio::time::sleep(Duration::from_millis(20)) => {}
                        }
                        let left = guard.remaining();
                        if left.is_zero() {
                            break;
                        }
                        let t = wall_ms();
                        log(
                            &path,
                            format!("hold {p} {token} {t} {}", t + left.as_millis() as u64),
                        );
                    }
                    log(&path, format!("end {p} {token} {}", wall_ms()));
                });
            }
            if guards.changed().await.is_err() {
                break;
            }
            let held = guards.borrow().clone();
            watching.retain(|p, t| held.get(p).is_some_and(|g| g.token == *t));
        }
        drop(registration);
    });
}

struct Kid {
    name: String,
    /// Its log's name, `name-life`.
    life: String,
    child: Child,
    paused: Option<Instant>,
}

/// A child is stopped with its test, also when the test fails midway
/// (SIGKILL ends a stopped process too).
impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(name: &str, endpoint: &str, dir: &Path, life: usize) -> Kid {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["member_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("WEFT_MEMBER_NAME", name)
        .env("WEFT_MEMBERS_STORE", endpoint)
        .env("WEFT_MEMBERS_LOG", dir.join(format!("{name}-{life}.log")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Kid {
        name: name.to_string(),
        life: format!("{name}-{life}"),
        child,
        paused: None,
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

/// Every line of every log in `dir`, with the process's life (`name-life`).
fn lines(dir: &Path) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let name = file.trim_end_matches(".log").to_string();
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            out.push((name.clone(), line.split(' ').map(str::to_string).collect()));
        }
    }
    out
}

/// A holding being read: holder, first and last safe moment, end, last
/// said.
type Span = (String, u64, u64, Option<u64>, u64);

/// Each holding `(partition, token)`: its holder, the span it believed it
/// held the partition (from its start to the earlier of its end and the
/// last safe moment it logged), and when it last said so (0 once ended).
fn holdings(all: &[(String, Vec<String>)]) -> BTreeMap<(u32, u64), (String, u64, u64, u64)> {
    let mut spans: BTreeMap<(u32, u64), Span> = BTreeMap::new();
    for (name, f) in all {
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        match f[0].as_str() {
            "hold" => {
                let (Some(p), Some(token), Some(t), Some(until)) = (num(1), num(2), num(3), num(4))
                else {
                    continue;
                };
                let e = spans
                    .entry((p as u32, token))
                    .or_insert((name.clone(), t, until, None, t));
                e.1 = e.1.min(t);
                e.2 = e.2.max(until);
                e.4 = e.4.max(t);
            }
            "end" => {
                let (Some(p), Some(token), Some(t)) = (num(1), num(2), num(3)) else {
                    continue;
                };
                if let Some(e) = spans.get_mut(&(p as u32, token)) {
                    e.3 = Some(e.3.map_or(t, |x: u64| x.min(t)));
                }
            }
            _ => {}
        }
    }
    spans
        .into_iter()
        .map(|(k, (name, start, until, end, seen))| {
            let end = end.map_or(until, |e| e.min(until));
            (k, (name, start, end, if end < until { 0 } else { seen }))
        })
        .collect()
}

fn seeds() -> u64 {
    std::env::var("WEFT_MEMBERS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Both engines, one after the other (ten member processes at once would
/// load this 2-core machine past what the test measures).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_have_one_owner_across_killed_and_paused_processes_on_etcd_and_redis() {
    for seed in 0..seeds() {
        let Some(etcd) = weft_test::etcd().await else {
            return;
        };
        run("etcd", &etcd.endpoint(), 0x3e3b_e500 + seed).await;
        drop(etcd);
        let Some(redis) = weft_test::redis().await else {
            return;
        };
        run("redis", &redis.url(), 0x3e3b_e500 + seed).await;
    }
}

/// The member name of a life (`m3-7` → `m3`).
fn member_of(life: &str) -> &str {
    life.rsplit_once('-').map_or(life, |(name, _)| name)
}

/// The last set each process's watcher yielded, for the processes alive
/// now (the last life of each name).
fn last_sets(all: &[(String, Vec<String>)]) -> BTreeMap<String, String> {
    let mut newest: BTreeMap<String, (usize, u64, String)> = BTreeMap::new();
    for (life, f) in all {
        if f[0] != "set" {
            continue;
        }
        let name = member_of(life);
        let n = life.rsplit_once('-').map_or("0", |(_, n)| n);
        let n: usize = n.parse().unwrap_or(0);
        let t: u64 = f[1].parse().unwrap_or(0);
        let members = f.get(2).cloned().unwrap_or_default();
        let e = newest
            .entry(name.to_string())
            .or_insert((n, t, members.clone()));
        if (n, t) >= (e.0, e.1) {
            *e = (n, t, members);
        }
    }
    newest.into_iter().map(|(k, (_, _, m))| (k, m)).collect()
}

async fn run(engine: &str, endpoint: &str, seed: u64) {
    let dir = std::env::temp_dir().join(format!(
        "weft-members-{engine}-{}-{seed:x}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng(seed);
    let began = wall_ms();
    let mut life = 0;
    let mut kids: Vec<Kid> = (0..MEMBERS)
        .map(|i| {
            life += 1;
            spawn(&format!("m{i}"), endpoint, &dir, life)
        })
        .collect();
    let (mut kills, mut pauses) = (0, 0);
    // Each kill: the name, and when.
    let mut killed: Vec<(String, u64)> = Vec::new();
    // Each life's pauses, as wall-clock spans.
    let mut stopped: Vec<(String, u64, u64)> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(800 + rng.below(1200))).await;
        let k = rng.below(kids.len() as u64) as usize;
        let kid = &mut kids[k];
        if let Some(since) = kid.paused {
            if since.elapsed() >= TTL + TTL / 2 {
                signal(&kid.child, Signal::CONT);
                kid.paused = None;
                stopped.push((
                    kid.life.clone(),
                    wall_ms() - since.elapsed().as_millis() as u64,
                    wall_ms(),
                ));
            }
        } else if rng.below(2) == 0 {
            let _ = kid.child.kill();
            let _ = kid.child.wait();
            life += 1;
            let name = kid.name.clone();
            killed.push((name.clone(), wall_ms()));
            *kid = spawn(&name, endpoint, &dir, life);
            kills += 1;
        } else {
            signal(&kid.child, Signal::STOP);
            kid.paused = Some(Instant::now());
            pauses += 1;
        }
    }
    for kid in kids.iter_mut() {
        if let Some(since) = kid.paused.take() {
            signal(&kid.child, Signal::CONT);
            stopped.push((
                kid.life.clone(),
                wall_ms() - since.elapsed().as_millis() as u64,
                wall_ms(),
            ));
        }
    }
    let chaos_over = wall_ms();
    // Settle: every partition held now, counts within one.
    let deadline = Instant::now() + Duration::from_secs(30);
    let settled = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = wall_ms();
        let all = lines(&dir);
        let mut counts: BTreeMap<String, usize> =
            kids.iter().map(|k| (k.name.clone(), 0)).collect();
        let mut held = 0;
        for ((_, _), (name, _, end, seen)) in holdings(&all) {
            // Held now by a live process: still logging, not ended.
            if end > now && seen + 200 >= now {
                held += 1;
                *counts.entry(member_of(&name).to_string()).or_default() += 1;
            }
        }
        let (lo, hi) = (
            counts.values().min().copied(),
            counts.values().max().copied(),
        );
        let converged = last_sets(&all)
            .values()
            .all(|m| m.split(',').count() == MEMBERS);
        if converged && held == PARTITIONS as usize && hi.zip(lo).is_some_and(|(h, l)| h - l <= 1) {
            break now - chaos_over;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed:#x}: not settled: {held} held, {counts:?}"
        );
    };
    for kid in &mut kids {
        let _ = kid.child.kill();
        let _ = kid.child.wait();
    }
    let all = lines(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    // No partition with two holders at once.
    let spans = holdings(&all);
    let mut by_partition: BTreeMap<u32, Vec<(u64, u64, String, u64)>> = BTreeMap::new();
    for ((p, token), (name, start, end, _)) in &spans {
        by_partition
            .entry(*p)
            .or_default()
            .push((*start, *end, name.clone(), *token));
    }
    let mut handoffs = 0;
    for (p, list) in &mut by_partition {
        list.sort();
        for pair in list.windows(2) {
            let (_, a_end, a, a_token) = &pair[0];
            let (b_start, _, b, b_token) = &pair[1];
            assert!(
                b_start >= a_end,
                "seed {seed:#x}: partition {p}: {b} (token {b_token}) from {b_start} while {a} (token {a_token}) held it until {a_end}"
            );
            handoffs += 1;
        }
    }
    // Convergence: how soon after each registration each other watcher's
    // set held it, for watchers that were watching already and ran
    // (unstopped, alive) until they saw it.
    let mut delays = Vec::new();
    let mut startup = 0;
    let regs: Vec<(String, String, u64)> = all
        .iter()
        .filter(|(_, f)| f[0] == "reg")
        .filter_map(|(_, f)| Some((f[1].clone(), f[2].clone(), f[3].parse().ok()?)))
        .collect();
    let sets: Vec<(String, u64, String)> = all
        .iter()
        .filter(|(_, f)| f[0] == "set")
        .filter_map(|(who, f)| {
            Some((
                who.clone(),
                f[1].parse().ok()?,
                f.get(2).cloned().unwrap_or_default(),
            ))
        })
        .collect();
    for (name, token, at) in &regs {
        let entry = format!("{name}:{token}");
        let mut first: BTreeMap<&str, u64> = BTreeMap::new();
        // The first set that held it, even one logged before the `reg`
        // line (which is written once `register` has returned, a round
        // trip after the record appeared): that watcher saw it at once.
        for (who, t, members) in &sets {
            if member_of(who) != name && members.split(',').any(|m| m == entry) {
                let e = first.entry(who.as_str()).or_insert(*t);
                *e = (*e).min(*t);
            }
        }
        for (who, t) in first {
            let watching = sets.iter().any(|(w, s, _)| w == who && s <= at);
            let ran = !stopped
                .iter()
                .any(|(l, a, b)| l == who && *a <= t && *b >= *at);
            // The first registrations, while five processes and the store
            // start together, are reported apart.
            let delay = t.saturating_sub(*at);
            if watching && ran && *at < began + WARM_UP {
                startup = startup.max(delay);
            } else if watching && ran {
                if delay > 1000 {
                    println!(
                        "slow: {who} saw {entry} {delay} ms after its registration, {} ms into the run",
                        at.saturating_sub(began)
                    );
                }
                delays.push(delay);
            }
        }
    }
    delays.sort_unstable();
    let pct = |q: f64| {
        delays
            .get(((delays.len() as f64 * q) as usize).min(delays.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    // Every live watcher's last set holds all five members.
    for (who, members) in &last_sets(&all) {
        assert_eq!(
            members.split(',').count(),
            MEMBERS,
            "seed {seed:#x}: {who} ended on {members}"
        );
    }
    let movement = movement(&sets);
    // Every process on a placement generation routed every key alike.
    let mut generations: BTreeMap<u64, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (who, f) in &all {
        if f[0] == "gen"
            && let (Some(g), Some(fp)) = (f.get(2).and_then(|g| g.parse().ok()), f.get(3))
        {
            generations
                .entry(g)
                .or_default()
                .entry(fp.clone())
                .or_default()
                .push(who.clone());
        }
    }
    for (g, fingerprints) in &generations {
        assert_eq!(
            fingerprints.len(),
            1,
            "seed {seed:#x}: processes on placement generation {g} routed apart: {fingerprints:?}"
        );
    }
    let shared = generations
        .values()
        .filter(|f| f.values().flatten().count() > 1)
        .count();
    let flaps = flaps(&sets, &regs, &killed, &stopped, seed);
    println!(
        "members on {engine}, seed {seed:#x}: {MEMBERS} processes, {PARTITIONS} partitions, {kills} kills, {pauses} pauses, \
         {handoffs} handoffs, overlaps 0, settled {settled} ms after the chaos; \
         watchers saw a registration after p50 {} ms, p99 {} ms, max {} ms ({} pairs; at start-up, max {startup} ms); \
         {} set changes moved ≤ {:.3} × the ideal share (rendezvous; Maglev ≤ {:.3}); \
         {flaps} restarts within the hold window moved no key; \
         {} shared Memento generations, {shared} held by several processes, each routed alike",
        pct(0.5),
        pct(0.99),
        delays.last().copied().unwrap_or(0),
        delays.len(),
        movement.changes,
        movement.rendezvous,
        movement.maglev,
        generations.len(),
    );
    assert!(
        movement.rendezvous <= 1.1,
        "seed {seed:#x}: a set change moved {:.3} × the ideal share",
        movement.rendezvous
    );
    // The goal is a p99 under 1 s (reported above); the test fails only
    // past three TTLs.
    assert!(
        u128::from(pct(0.99)) < 3 * TTL.as_millis(),
        "seed {seed:#x}: p99 convergence {} ms",
        pct(0.99)
    );
}

/// The worst key movement of any change a watcher saw, ÷ the ideal.
struct Movement {
    changes: usize,
    rendezvous: f64,
    maglev: f64,
}

/// Each key's owner under placement `P` for a set of names.
fn owners<P: weft_shard::Placement>(names: &[&str]) -> Vec<String> {
    let sharder = LiveSharder::<P>::new();
    let lives = names
        .iter()
        .map(|n| Live {
            member: Member::new(*n, "h:1").unwrap(),
            token: weft_lease::Version(1),
        })
        .collect();
    sharder.apply(&MemberSet::of(1, lives).unwrap()).unwrap();
    (0..KEYS)
        .map(|k| {
            sharder
                .route(&format!("key-{k}"), |l| l.member.name().to_string())
                .unwrap()
        })
        .collect()
}

/// For every change of names between two sets one watcher yielded in a
/// row: keys moved ÷ the ideal (each leaver's share of the set before,
/// each joiner's of the set after).
fn movement(sets: &[(String, u64, String)]) -> Movement {
    let mut by_watcher: BTreeMap<&str, Vec<(u64, Vec<&str>)>> = BTreeMap::new();
    for (who, t, members) in sets {
        let names = members
            .split(',')
            .filter(|m| !m.is_empty())
            .filter_map(|m| m.split(':').next())
            .collect();
        by_watcher.entry(who).or_default().push((*t, names));
    }
    // Owners per set of names, under rendezvous and Maglev.
    let mut cache: BTreeMap<Vec<&str>, [Vec<String>; 2]> = BTreeMap::new();
    let mut worst = Movement {
        changes: 0,
        rendezvous: 0.0,
        maglev: 0.0,
    };
    for list in by_watcher.values_mut() {
        list.sort();
        for pair in list.windows(2) {
            let (a, b) = (&pair[0].1, &pair[1].1);
            if a == b || a.is_empty() || b.is_empty() {
                continue;
            }
            let left = a.iter().filter(|n| !b.contains(n)).count();
            let joined = b.iter().filter(|n| !a.contains(n)).count();
            let ideal =
                KEYS as f64 * (left as f64 / a.len() as f64 + joined as f64 / b.len() as f64);
            for names in [a, b] {
                cache
                    .entry(names.clone())
                    .or_insert_with(|| [owners::<Rendezvous>(names), owners::<Maglev>(names)]);
            }
            let moved = |i: usize| {
                let (x, y) = (&cache[a][i], &cache[b][i]);
                x.iter().zip(y).filter(|(p, q)| p != q).count() as f64 / ideal
            };
            worst.changes += 1;
            worst.rendezvous = worst.rendezvous.max(moved(0));
            worst.maglev = worst.maglev.max(moved(1));
        }
    }
    worst
}

/// Checks that a killed process that took its name back moved no key: a
/// watcher that held the name before the kill holds it in every set until
/// the new registration (the record was gone for less than the hold
/// window). Returns how many restarts were checked.
fn flaps(
    sets: &[(String, u64, String)],
    regs: &[(String, String, u64)],
    killed: &[(String, u64)],
    stopped: &[(String, u64, u64)],
    seed: u64,
) -> usize {
    let has = |members: &str, name: &str| {
        members
            .split(',')
            .any(|m| m.split(':').next() == Some(name))
    };
    let mut checked = 0;
    for (name, at) in killed {
        let Some(back) = regs
            .iter()
            .filter(|(n, _, t)| n == name && t > at)
            .map(|(_, _, t)| *t)
            .min()
        else {
            continue;
        };
        // Not a flap if the new life was paused before it registered, or
        // if the name was killed again first.
        if stopped
            .iter()
            .any(|(life, a, _)| member_of(life) == name && *a > *at && *a <= back)
            || killed.iter().any(|(n, t)| n == name && t > at && *t < back)
        {
            continue;
        }
        checked += 1;
        let watchers: Vec<&str> = sets
            .iter()
            .filter(|(who, t, m)| member_of(who) != name && t <= at && has(m, name))
            .map(|(who, _, _)| who.as_str())
            .collect();
        for (who, t, members) in sets {
            if watchers.contains(&who.as_str()) && t > at && *t <= back {
                assert!(
                    has(members, name),
                    "seed {seed:#x}: {who} dropped {name} {} ms after its kill, though it \
                     registered again {} ms after it (hold window {HOLD:?})",
                    t - at,
                    back - at
                );
            }
        }
    }
    checked
}
