//! `weft bench-hash`: lookup cost, balance, movement, build time and memory
//! per sharding function, against the floor of one key hash plus a
//! multiply-shift, all in one run.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use weft_core::{ShardId, Sharder, key_hash};
use weft_shard::analysis::{Change, balance, movement};
use weft_shard::compat::{
    Distribution, EnvoyHost, EnvoyMaglev, EnvoyRing, EnvoyRingHashFn, Groupcache, Haproxy,
    HaproxyServer, NginxHash, NginxHashMode, NginxServer, Twemproxy, TwemproxyHash,
    TwemproxyServer,
};
use weft_shard::{Jump, LevelJump, Maglev, Members, Memento, Modulo, Rendezvous, Ring};

use crate::args::Args;
use crate::svg::{Panel, Series, render};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algo {
    Floor,
    Modulo,
    Jump,
    LevelJump,
    Memento,
    Rendezvous,
    Ring,
    Maglev,
    TwemproxyKetama,
    TwemproxyModula,
    HaproxyMap,
    HaproxyConsistent,
    Nginx,
    NginxConsistent,
    Groupcache,
    EnvoyRing,
    EnvoyMaglev,
}

/// Placements of real systems, each with its own key hash on the key's
/// bytes: measured only when asked for (`--algos compat` or by name).
const COMPAT: [Algo; 9] = [
    Algo::TwemproxyKetama,
    Algo::TwemproxyModula,
    Algo::HaproxyMap,
    Algo::HaproxyConsistent,
    Algo::Nginx,
    Algo::NginxConsistent,
    Algo::Groupcache,
    Algo::EnvoyRing,
    Algo::EnvoyMaglev,
];

const ALL: [Algo; 8] = [
    Algo::Floor,
    Algo::Modulo,
    Algo::Jump,
    Algo::LevelJump,
    Algo::Memento,
    Algo::Rendezvous,
    Algo::Ring,
    Algo::Maglev,
];

impl Algo {
    fn name(self) -> &'static str {
        match self {
            Algo::Floor => "floor",
            Algo::Modulo => "modulo",
            Algo::Jump => "jump",
            Algo::LevelJump => "level-jump",
            Algo::Memento => "memento",
            Algo::Rendezvous => "rendezvous",
            Algo::Ring => "ring",
            Algo::Maglev => "maglev",
            Algo::TwemproxyKetama => "twemproxy-ketama",
            Algo::TwemproxyModula => "twemproxy-modula",
            Algo::HaproxyMap => "haproxy-map",
            Algo::HaproxyConsistent => "haproxy-consistent",
            Algo::Nginx => "nginx",
            Algo::NginxConsistent => "nginx-consistent",
            Algo::Groupcache => "groupcache",
            Algo::EnvoyRing => "envoy-ring",
            Algo::EnvoyMaglev => "envoy-maglev",
        }
    }

    fn parse(s: &str) -> Result<Algo, String> {
        let s = if s == "default" { "level-jump" } else { s };
        ALL.into_iter()
            .chain(COMPAT)
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("unknown algorithm {s:?} in --algos"))
    }

    /// A real system's placement, hashing key bytes its own way.
    fn compat(self) -> bool {
        COMPAT.contains(&self)
    }

    /// Cost grows with n per lookup: sample fewer keys.
    fn linear(self) -> bool {
        self == Algo::Rendezvous
    }
}

/// One key hash and a multiply-shift: the least any function can cost.
struct Floor(u32);

impl Sharder for Floor {
    fn shard_count(&self) -> usize {
        self.0 as usize
    }
    fn shard_for_hash(&self, hash: u64) -> ShardId {
        ShardId::new(((u128::from(hash) * u128::from(self.0)) >> 64) as u32)
    }
}

fn names(n: u32) -> impl Iterator<Item = String> {
    (0..n).map(|i| format!("node-{i}"))
}

/// Where a function places a key's bytes: the member's index in the full
/// list.
type Place = Box<dyn Fn(&[u8]) -> u32>;

/// A built function: the member (by its index in the full list) it places
/// a key on, and its memory estimate (bytes per member, names excluded).
struct Built {
    place: Place,
    bytes_per_member: f64,
}

impl Built {
    /// A weft [`Sharder`] over weft's key hash.
    fn hashed(
        algo: Algo,
        sharder: impl Sharder + 'static,
        without: Option<u32>,
        bytes: f64,
    ) -> Built {
        Built {
            place: Box::new(move |k| {
                let id = sharder.shard_for_hash(key_hash(k));
                without.map_or(id.get(), |w| full_label(algo, id, w))
            }),
            bytes_per_member: bytes,
        }
    }
}

/// A real system's pool of `n` members, each named `node-i` (or at the
/// `i`-th address), placing key bytes as the system does; `without` is
/// what the system does when that member fails: twemproxy ejects it,
/// HAProxy and nginx mark it down (keeping every server's id and place),
/// groupcache's peer list and Envoy's healthy hosts drop it.
fn build_compat(algo: Algo, n: u32, without: Option<u32>) -> Result<Built, String> {
    let err = |e: weft_shard::ShardError| e.to_string();
    let marks_down = matches!(
        algo,
        Algo::HaproxyMap | Algo::HaproxyConsistent | Algo::Nginx | Algo::NginxConsistent
    );
    let kept: Vec<u32> = (0..n)
        .filter(|&i| marks_down || Some(i) != without)
        .collect();
    let address = |i: u32| format!("10.{}.{}.{}:6379", i >> 16, (i >> 8) & 255, i & 255);
    let labels = kept.clone();
    let by_name = |name: &str| -> u32 {
        name.strip_prefix("node-")
            .and_then(|i| i.parse().ok())
            .unwrap_or(u32::MAX)
    };
    Ok(match algo {
        Algo::TwemproxyKetama | Algo::TwemproxyModula => {
            let servers = kept
                .iter()
                .map(|&i| TwemproxyServer::new(&address(i), 1, Some(&format!("node-{i}"))))
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            let d = if algo == Algo::TwemproxyKetama {
                Distribution::Ketama
            } else {
                Distribution::Modula
            };
            let pool = Twemproxy::new(servers, d, TwemproxyHash::Fnv1a_64).map_err(err)?;
            Built {
                place: Box::new(move |k| by_name(pool.server_for(k).point_name())),
                bytes_per_member: if d == Distribution::Ketama {
                    160.0 * 8.0
                } else {
                    4.0
                },
            }
        }
        Algo::HaproxyMap | Algo::HaproxyConsistent => {
            let servers = kept
                .iter()
                .map(|&i| HaproxyServer::new(&format!("node-{i}"), &address(i), 1))
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            let line = if algo == Algo::HaproxyMap {
                "map-based"
            } else {
                "consistent"
            };
            let mut backend = Haproxy::new(servers, line.parse().map_err(err)?).map_err(err)?;
            if let Some(w) = without {
                backend = backend.with_down(&format!("node-{w}")).map_err(err)?;
            }
            Built {
                place: Box::new(move |k| {
                    backend
                        .server_for(k)
                        .map_or(u32::MAX, |s| by_name(s.name()))
                }),
                bytes_per_member: if algo == Algo::HaproxyMap {
                    4.0
                } else {
                    16.0 * 8.0
                },
            }
        }
        Algo::Nginx | Algo::NginxConsistent => {
            let servers = kept
                .iter()
                .map(|&i| NginxServer::new(&address(i), 1))
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            let mode = if algo == Algo::Nginx {
                NginxHashMode::Plain
            } else {
                NginxHashMode::Consistent
            };
            let mut upstream = NginxHash::new(servers, mode).map_err(err)?;
            if let Some(w) = without {
                upstream = upstream.with_down(&address(w)).map_err(err)?;
            }
            Built {
                place: Box::new(move |k| {
                    upstream
                        .shard_for(k)
                        .map_or(u32::MAX, |id| labels[id.index()])
                }),
                bytes_per_member: if algo == Algo::Nginx {
                    8.0
                } else {
                    160.0 * 8.0
                },
            }
        }
        Algo::Groupcache => {
            let pool = Groupcache::new(
                kept.iter().map(|i| format!("node-{i}")),
                Groupcache::DEFAULT_REPLICAS,
            )
            .map_err(err)?;
            Built {
                place: Box::new(move |k| by_name(pool.peer_for(k))),
                bytes_per_member: 50.0 * 8.0,
            }
        }
        Algo::EnvoyRing | Algo::EnvoyMaglev => {
            let hosts = kept
                .iter()
                .map(|&i| EnvoyHost::new(&address(i), 1))
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            if algo == Algo::EnvoyRing {
                let ring = EnvoyRing::new(
                    hosts,
                    EnvoyRing::DEFAULT_MIN_SIZE,
                    EnvoyRing::DEFAULT_MAX_SIZE,
                    EnvoyRingHashFn::XxHash,
                )
                .map_err(err)?;
                let bytes = ring.len() as f64 * 16.0 / kept.len() as f64;
                Built {
                    place: Box::new(move |k| {
                        labels[ring
                            .shard_for_request_hash(weft_shard::compat::xxhash64(k, 0))
                            .index()]
                    }),
                    bytes_per_member: bytes,
                }
            } else {
                let table =
                    EnvoyMaglev::new(hosts, EnvoyMaglev::DEFAULT_TABLE_SIZE).map_err(err)?;
                Built {
                    place: Box::new(move |k| {
                        labels[table
                            .shard_for_request_hash(weft_shard::compat::xxhash64(k, 0))
                            .index()]
                    }),
                    bytes_per_member: EnvoyMaglev::DEFAULT_TABLE_SIZE as f64 * 4.0
                        / kept.len() as f64,
                }
            }
        }
        _ => return Err(format!("{} is not a compatible placement", algo.name())),
    })
}

fn build(algo: Algo, n: u32, without: Option<u32>) -> Result<Built, String> {
    if algo.compat() {
        return build_compat(algo, n, without);
    }
    let err = |e: weft_shard::ShardError| e.to_string();
    let list = || -> Result<Members, String> {
        Members::named(
            names(n)
                .enumerate()
                .filter(|(i, _)| Some(*i as u32) != without)
                .map(|(_, s)| s),
        )
        .map_err(|e| e.to_string())
    };
    let n_live = n - u32::from(without.is_some());
    Ok(match algo {
        Algo::Floor => Built::hashed(algo, Floor(n_live), without, 0.0),
        Algo::Modulo => Built::hashed(algo, Modulo::new(n_live).map_err(err)?, without, 0.0),
        Algo::Jump => Built::hashed(algo, Jump::new(n_live).map_err(err)?, without, 0.0),
        Algo::LevelJump => Built::hashed(algo, LevelJump::new(n_live).map_err(err)?, without, 0.0),
        Algo::Memento => {
            let mut set = Memento::new(names(n)).map_err(err)?;
            if let Some(w) = without {
                set.remove(&format!("node-{w}")).map_err(err)?;
            }
            Built::hashed(algo, set, without, 16.0)
        }
        Algo::Rendezvous => Built::hashed(algo, Rendezvous::new(list()?), without, 16.0),
        Algo::Ring => {
            let ring = Ring::new(list()?, Ring::DEFAULT_VNODES).map_err(err)?;
            let bytes = ring.point_count() as f64 * 12.0 / f64::from(n_live);
            Built::hashed(algo, ring, without, bytes)
        }
        Algo::Maglev => {
            let m = Maglev::new(list()?, Maglev::DEFAULT_TABLE_SIZE).map_err(err)?;
            let bytes = m.table_size() as f64 * 4.0 / f64::from(n_live);
            Built::hashed(algo, m, without, bytes)
        }
        _ => return Err(format!("{} is not a weft function", algo.name())),
    })
}

/// The label of a member id in a function built `without` member `w`: its
/// index in the full list (member-set functions drop `w` from the list;
/// Memento keeps slot ids; numbered functions drop the last).
fn full_label(algo: Algo, id: ShardId, without: u32) -> u32 {
    match algo {
        Algo::Rendezvous | Algo::Ring | Algo::Maglev if id.get() >= without => id.get() + 1,
        _ => id.get(),
    }
}

struct Row {
    algo: Algo,
    n: u32,
    keys: usize,
    ns: f64,
    max_over_mean: f64,
    cv_over_random: f64,
    add: Option<(f64, u64)>,
    remove: Option<(f64, u64)>,
    build: Duration,
    bytes_per_member: f64,
}

fn measure(algo: Algo, n: u32, keys: &[[u8; 16]]) -> Result<Row, String> {
    let keys = if algo.linear() {
        &keys[..keys.len().min((200_000_000 / n as usize).max(2_000))]
    } else {
        keys
    };
    let started = Instant::now();
    let built = build(algo, n, None)?;
    let build_time = started.elapsed();
    let f = &built.place;

    // Lookup cost, key hashing included.
    let started = Instant::now();
    let mut acc = 0u32;
    for k in keys {
        acc = acc.wrapping_add(f(black_box(k)));
    }
    black_box(acc);
    let ns = started.elapsed().as_nanos() as f64 / keys.len() as f64;

    // Movement is counted over key indices, so each function places the
    // key's bytes its own way.
    let at = |i: u64| &keys[i as usize][..];
    let hashes: Vec<u64> = (0..keys.len() as u64).collect();
    let mut counts = vec![0u64; n as usize];
    for &i in &hashes {
        let label = f(at(i));
        let slot = counts
            .get_mut(label as usize)
            .ok_or_else(|| format!("{} left a key unplaced", algo.name()))?;
        *slot += 1;
    }
    let b = balance(&counts);

    let (add, remove) = if algo == Algo::Floor {
        (None, None)
    } else {
        let grown = match algo {
            Algo::Memento => {
                let mut set = Memento::new(names(n)).map_err(|e| e.to_string())?;
                set.add(format!("node-{n}")).map_err(|e| e.to_string())?;
                Built::hashed(algo, set, None, 0.0).place
            }
            _ => build(algo, n + 1, None)?.place,
        };
        let added = movement(
            &hashes,
            |i| f(at(i)),
            |i| grown(at(i)),
            Change::Added {
                label: n,
                ideal_share: 1.0 / f64::from(n + 1),
            },
        );
        let removed = if n < 2 {
            None
        } else {
            // Numbered functions can only lose the last shard; member sets
            // lose one from the middle.
            let victim = match algo {
                Algo::Modulo | Algo::Jump | Algo::LevelJump => n - 1,
                _ => n / 2,
            };
            let shrunk = build(algo, n, Some(victim))?.place;
            let m = movement(
                &hashes,
                |i| f(at(i)),
                |i| shrunk(at(i)),
                Change::Removed { label: victim },
            );
            Some((m.ratio, m.stray))
        };
        (Some((added.ratio, added.stray)), removed)
    };
    Ok(Row {
        algo,
        n,
        keys: keys.len(),
        ns,
        max_over_mean: b.max_over_mean,
        cv_over_random: b.cv_over_random,
        add,
        remove,
        build: build_time,
        bytes_per_member: built.bytes_per_member,
    })
}

pub(crate) fn run(argv: &[String]) -> Result<(), String> {
    let args = Args::parse(argv, &["algos", "shards", "keys", "svg"])?;
    if let Some(extra) = args.positional.first() {
        return Err(format!("bench-hash takes no arguments, got {extra:?}"));
    }
    let mut algos: Vec<Algo> = match args.list::<String>("algos")? {
        Some(list) => {
            let mut algos = Vec::new();
            for s in &list {
                match s.as_str() {
                    "compat" => algos.extend(COMPAT),
                    _ => algos.push(Algo::parse(s)?),
                }
            }
            algos
        }
        None => ALL.to_vec(),
    };
    // The floor is always measured, first, as the baseline of the run.
    algos.retain(|&a| a != Algo::Floor);
    algos.insert(0, Algo::Floor);
    let shard_counts = args
        .list::<u32>("shards")
        .map_err(|_| "--shards takes shard counts from 1 to 1000000, comma-separated".to_string())?
        .unwrap_or_else(|| vec![10, 100, 1000, 10_000]);
    if let Some(bad) = shard_counts.iter().find(|&&n| n == 0 || n > 1_000_000) {
        return Err(format!("--shards {bad} is outside 1..=1000000"));
    }
    let key_count = args
        .parsed::<usize>("keys")
        .map_err(|_| "--keys takes a whole number from 1000 to 50000000".to_string())?
        .unwrap_or(200_000);
    if !(1_000..=50_000_000).contains(&key_count) {
        return Err(format!("--keys {key_count} is outside 1000..=50000000"));
    }
    let keys: Vec<[u8; 16]> = (0..key_count as u64)
        .map(|i| {
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&i.to_le_bytes());
            k[8..].copy_from_slice(
                &(i ^ 0x5bd1_e995)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .to_le_bytes(),
            );
            k
        })
        .collect();

    let started = Instant::now();
    let total = algos.len() * shard_counts.len();
    let mut rows = Vec::with_capacity(total);
    for &n in &shard_counts {
        for &algo in &algos {
            if started.elapsed() > Duration::from_secs(1) {
                eprint!(
                    "\rbench-hash: {}/{total} {} n={n}          ",
                    rows.len() + 1,
                    algo.name()
                );
            }
            rows.push(measure(algo, n, &keys)?);
        }
    }
    if started.elapsed() > Duration::from_secs(1) {
        eprintln!(
            "\rbench-hash: done in {:.1} s                          ",
            started.elapsed().as_secs_f64()
        );
    }
    print_table(&rows, key_count);
    if let Some(path) = args.get("svg") {
        let svg = chart(&rows, &algos);
        std::fs::write(path, svg).map_err(|e| format!("cannot write --svg {path}: {e}"))?;
    }
    Ok(())
}

fn print_table(rows: &[Row], key_count: usize) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(
        out,
        "{key_count} keys of 16 bytes, hashed with weft's key hash (included in ns/lookup; \
         the real systems' placements hash the key's bytes their own way); \
         floor = key hash + multiply-shift, measured first in this run.\n\
         Movement is ÷ the ideal (1/(n+1) on add; the removed member's share on remove); \
         stray = keys moved between members that stayed.\n"
    );
    let _ = writeln!(
        out,
        "| algorithm | n | keys | ns/lookup | × floor | max/mean | CV ÷ random | add moved ÷ ideal | add stray | remove moved ÷ ideal | remove stray | build | bytes/member |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let floor = rows
            .iter()
            .find(|x| x.n == r.n && x.algo == Algo::Floor)
            .map_or(f64::NAN, |x| x.ns);
        let pair = |p: Option<(f64, u64)>| match p {
            Some((ratio, stray)) => (format!("{ratio:.3}"), stray.to_string()),
            None => ("—".into(), "—".into()),
        };
        let (add, add_stray) = pair(r.add);
        let (rem, rem_stray) = pair(r.remove);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.2} | {:.3} | {:.2} | {add} | {add_stray} | {rem} | {rem_stray} | {} | {:.0} |",
            r.algo.name(),
            r.n,
            r.keys,
            r.ns,
            r.ns / floor,
            r.max_over_mean,
            r.cv_over_random,
            format_duration(r.build),
            r.bytes_per_member,
        );
    }
}

fn format_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}

fn chart(rows: &[Row], algos: &[Algo]) -> String {
    let series = |f: &dyn Fn(&Row) -> Option<f64>| -> Vec<Series> {
        algos
            .iter()
            .map(|&a| Series {
                name: a.name().to_string(),
                points: rows
                    .iter()
                    .filter(|r| r.algo == a)
                    .filter_map(|r| f(r).map(|y| (f64::from(r.n), y)))
                    .collect(),
            })
            .collect()
    };
    render(&[
        Panel {
            title: "Lookup cost (key hash included)".into(),
            y_label: "ns per lookup (log)".into(),
            log_y: true,
            series: series(&|r| Some(r.ns)),
        },
        Panel {
            title: "Balance".into(),
            y_label: "CV ÷ random placement".into(),
            log_y: true,
            series: series(&|r| Some(r.cv_over_random)),
        },
        Panel {
            title: "Keys moved when a member joins".into(),
            y_label: "moved ÷ ideal (log)".into(),
            log_y: true,
            series: series(&|r| r.add.map(|a| a.0)),
        },
    ])
}
