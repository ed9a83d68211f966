//! Chaos with separate OS processes on one Redis: a producer, a sharder
//! stage and three worker processes, each SIGKILLed and restarted or
//! SIGSTOPped past the claim idle time at seeded random moments, and Redis
//! itself killed and restarted once (AOF, `appendfsync always`).
//!
//! ```text
//!  producer ──▶ {c}:in ──sharder stage──▶ {c}:shard-0..2 ──3 workers──▶ {c}:out
//!                  └─ {c}:in:dead                  └─ {c}:shard-i:dead
//! ```
//!
//! Checked: every input's output is in `{c}:out` exactly once, or the
//! input is in a dead-letter stream with its reason; nothing else; paused
//! consumers' late commits are refused (over several seeds: one run's
//! pauses may catch no consumer mid-commit); no entry waits more than twice
//! the claim idle time while another consumer of its group is up to take
//! it over (sampled from `XPENDING` all through the run). The figures are
//! printed.
//! `WEFT_STREAM_SEEDS=N` runs N seeds (default 1, the short CI run).
//!
//! The test re-executes its own binary for the children (`chaos_child`,
//! which does nothing unless `WEFT_CHAOS_ROLE` is set).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use weft_core::Cause;
use weft_flow::queue::QueueConfig;
use weft_flow_redis::{
    Retention, StageOutput, StreamConfig, StreamSink, StreamSource, StreamStage,
};
use weft_shard::LevelJump;
use weft_test::children::{Signal, signal};

mod common;

/// Field `name` of every entry of `stream`, `None` while Redis is away.
async fn field(c: &mut MultiplexedConnection, stream: &str, name: &str) -> Option<Vec<Vec<u8>>> {
    let entries = common::try_entries(c, stream).await?;
    Some(
        entries
            .into_iter()
            .filter_map(|mut e| e.remove(name))
            .collect(),
    )
}

const IN: &str = "{c}:in";
const SHARDS: u32 = 3;
const OUT: &str = "{c}:out";
const CLAIM_IDLE: Duration = Duration::from_millis(400);
/// Inputs that fail for good (dead-lettered by the workers).
fn poison(x: u64) -> bool {
    x % 211 == 7
}

/// The consumer name of each child's life (`role-index-life`), which the
/// test uses to tell who holds a pending entry.
fn source_config() -> StreamConfig {
    let name = std::env::var("WEFT_CHAOS_CONSUMER").unwrap_or_else(|_| "chaos".into());
    StreamConfig::new()
        .consumer(name)
        .unwrap()
        .block(Duration::from_millis(50))
        .unwrap()
        .claim_idle(CLAIM_IDLE)
        .unwrap()
        .max_deliveries(20)
        .unwrap()
        .batch(32)
        .unwrap()
        .ack_timeout(Duration::from_secs(60))
        .unwrap()
}

/// A child process: its role, what it runs, and the stats file it keeps.
#[test]
fn chaos_child() {
    let Ok(role) = std::env::var("WEFT_CHAOS_ROLE") else {
        return;
    };
    let url = std::env::var("WEFT_CHAOS_URL").unwrap();
    let n: u64 = std::env::var("WEFT_CHAOS_N").unwrap().parse().unwrap();
    let stats = PathBuf::from(std::env::var("WEFT_CHAOS_STATS").unwrap());
    let rt = weft_test::children::runtime();
    rt.block_on(async move {
        match role.as_str() {
            "producer" => {
                // A stable producer name: a restart replays 0..n, and only
                // what the killed life did not append is appended.
                let sink = loop {
                    match StreamSink::<u64>::connect(&url, IN, Retention::All).await {
                        Ok(s) => break s.producer("chaos-producer").unwrap(),
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                };
                let items: Vec<u64> = (0..n).collect();
                for chunk in items.chunks(50) {
                    while sink.append(chunk).await.is_err() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            "sharder" => {
                // One stream per shard, each output committed with its input.
                let shards = LevelJump::new(SHARDS).unwrap();
                let out = StageOutput::sharded("{c}:shard", shards, |x: &u64| *x, Retention::All)
                    .unwrap();
                let worker = |x: u64| async move { Ok::<_, Cause>(vec![x]) };
                run_stage(&url, IN, out, "sharders", worker, &stats).await;
            }
            "worker" => {
                // Every worker process consumes every shard's stream, in one
                // group per stream: any of them takes over any shard.
                let stages = (0..SHARDS).map(|shard| {
                    let worker = |x: u64| async move {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        if poison(x) {
                            return Err(Cause::permanent(format!("input {x} is poison")));
                        }
                        Ok(vec![x])
                    };
                    let out = StageOutput::new(OUT, Retention::All).unwrap();
                    let input = format!("{{c}}:shard-{shard}");
                    let stats = stats.with_extension(format!("{shard}.stats"));
                    let url = url.clone();
                    async move { run_stage(&url, &input, out, "workers", worker, &stats).await }
                });
                futures::future::join_all(stages).await;
            }
            other => panic!("unknown role {other}"),
        }
    });
}

/// Runs a stage until killed, writing its source's stats every 100 ms.
async fn run_stage<I, O, W>(
    url: &str,
    input: &str,
    out: StageOutput<O>,
    group: &str,
    worker: W,
    stats: &Path,
) where
    I: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    O: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    W: weft_flow::queue::Worker<I, weft_flow_redis::StreamId, Output = Vec<O>>,
{
    let source = loop {
        match StreamSource::<I>::connect(url, input, group, source_config()).await {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let stats_of = source.counters();
    let stats = stats.to_path_buf();
    tokio::spawn(async move {
        loop {
            let s = stats_of.stats();
            let line = format!(
                "{} {} {} {}\n",
                s.delivered, s.reclaimed, s.acked, s.refused
            );
            let _ = std::fs::write(&stats, line);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let stage = StreamStage::spawn(source, out, worker, QueueConfig::fixed(4).unwrap()).unwrap();
    let _ = stage.wait().await;
}

struct Kid {
    role: &'static str,
    index: usize,
    /// Its consumer name in its groups.
    name: String,
    child: Child,
    /// When it was stopped, while it is.
    paused: Option<Instant>,
    /// Since when it has run unstopped (its start, or its last resume).
    up_since: Instant,
}

/// A child is stopped with its test, also when the test fails midway
/// (SIGKILL ends a stopped process too).
impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a pause lasts at least: past the claim idle time, so that the
/// paused consumer's entries are taken over and its commits on waking are
/// refused.
const PAUSE: Duration = Duration::from_millis(1000);

fn spawn(role: &'static str, index: usize, url: &str, n: u64, dir: &Path, life: usize) -> Kid {
    let name = format!("{role}-{index}-{life}");
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["chaos_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("WEFT_CHAOS_ROLE", role)
        .env("WEFT_CHAOS_URL", url)
        .env("WEFT_CHAOS_N", n.to_string())
        .env("WEFT_CHAOS_CONSUMER", &name)
        .env(
            "WEFT_CHAOS_STATS",
            dir.join(format!("{role}-{index}-{life}.stats")),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Kid {
        role,
        index,
        name,
        child,
        paused: None,
        up_since: Instant::now(),
    }
}

/// The groups of the run, by stream, with the role that consumes each.
fn groups() -> Vec<(String, &'static str, &'static str)> {
    std::iter::once((IN.to_string(), "sharders", "sharder"))
        .chain((0..SHARDS).map(|i| (format!("{{c}}:shard-{i}"), "workers", "worker")))
        .collect()
}

/// The longest any pending entry has waited (ms) while another consumer
/// of its group was up to take it over: from the latest of its delivery,
/// the moment such a consumer came up (started or resumed) and Redis's
/// last start. `None` while Redis is away.
async fn longest_wait(
    c: &mut MultiplexedConnection,
    kids: &[Kid],
    redis_up: Instant,
) -> Option<u64> {
    let now = Instant::now();
    let mut longest = Duration::ZERO;
    for (stream, group, role) in groups() {
        let reply: redis::Value = redis::cmd("XPENDING")
            .arg(&stream)
            .arg(group)
            .arg("-")
            .arg("+")
            .arg(100_000)
            .query_async(c)
            .await
            .ok()?;
        let redis::Value::Array(entries) = reply else {
            continue;
        };
        for entry in entries {
            let redis::Value::Array(parts) = entry else {
                continue;
            };
            let (Some(redis::Value::BulkString(holder)), Some(redis::Value::Int(idle))) =
                (parts.get(1), parts.get(2))
            else {
                continue;
            };
            let idle = Duration::from_millis(u64::try_from(*idle).unwrap_or(0));
            let delivered = now.checked_sub(idle).unwrap_or(now);
            let taker_up = kids
                .iter()
                .filter(|k| {
                    k.role == role && k.name.as_bytes() != holder.as_slice() && k.paused.is_none()
                })
                .map(|k| k.up_since)
                .min();
            if let Some(up) = taker_up {
                let from = delivered.max(up).max(redis_up);
                longest = longest.max(now.saturating_duration_since(from));
            }
        }
    }
    Some(longest.as_millis() as u64)
}

/// SplitMix64: the seeded choices of a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(weft_core::mix::GAMMA);
        weft_core::mix::mix64(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Every input accounted for: `(outputs by input, dead inputs with reasons)`.
async fn accounted(
    c: &mut MultiplexedConnection,
) -> Option<(HashMap<u64, usize>, Vec<(u64, String)>)> {
    let mut outs = HashMap::new();
    for v in field(c, OUT, "d").await? {
        let x: u64 = serde_json::from_slice(&v).ok()?;
        *outs.entry(x).or_insert(0) += 1;
    }
    let mut dead = Vec::new();
    let streams = std::iter::once("{c}:in:dead".to_string())
        .chain((0..SHARDS).map(|i| format!("{{c}}:shard-{i}:dead")));
    for stream in streams {
        let stream = stream.as_str();
        let payloads = field(c, stream, "d").await?;
        let reasons = field(c, stream, "reason").await?;
        for (p, r) in payloads.iter().zip(reasons) {
            let x = serde_json::from_slice::<u64>(p).ok()?;
            dead.push((x, String::from_utf8_lossy(&r).into_owned()));
        }
    }
    Some((outs, dead))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_sharder_and_workers_survive_kills_pauses_and_a_redis_restart() {
    let seeds: u64 = std::env::var("WEFT_STREAM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let (mut pauses, mut refused) = (0, 0);
    for seed in 0..seeds {
        let Some(mut redis) = require_redis().await else {
            return;
        };
        let (p, r) = run(&mut redis, 0x5eed_0000 + seed).await;
        pauses += p;
        refused += r;
    }
    // A run's paused consumers may be killed before they wake, or hold
    // nothing when stopped (one CI run saw 9 pauses and no late commit);
    // over several runs, late commits must have come and been refused. The
    // refusal itself is pinned without chance in tests/source.rs,
    // tests/stage.rs and tests/fence.rs.
    if seeds >= 2 {
        assert!(
            pauses == 0 || refused > 0,
            "pauses but no late commit refused over {seeds} runs"
        );
    } else if refused == 0 {
        println!(
            "this run's {pauses} pauses caught no consumer mid-commit; WEFT_STREAM_SEEDS=4 checks that late commits are refused"
        );
    }
}

async fn require_redis() -> Option<weft_test::Redis> {
    match weft_test::Redis::start_persistent().await {
        Ok(r) => Some(r),
        Err(e @ weft_test::HarnessError::NotInstalled { .. }) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true and the Redis test server is missing: {e}"
            );
            eprintln!("\n!!!! SKIPPED: this test needs redis-server: {e} !!!!\n");
            None
        }
        Err(e) => panic!("redis did not start: {e}"),
    }
}

/// One seeded run; returns the pauses made and the commits refused.
async fn run(redis: &mut weft_test::Redis, seed: u64) -> (u64, u64) {
    let n = 2000u64;
    let url = redis.url();
    let dir = tempfile_dir();
    let mut rng = Rng(seed);
    let mut lives = 0usize;
    let mut kids = vec![spawn("producer", 0, &url, n, &dir, lives)];
    lives += 1;
    kids.push(spawn("sharder", 0, &url, n, &dir, lives));
    for i in 0..3 {
        lives += 1;
        kids.push(spawn("worker", i, &url, n, &dir, lives));
    }
    let (mut kills, mut pauses, mut restarted) = (0, 0u64, false);
    let mut redis_up = Instant::now();
    let mut waited = 0u64;
    let mut sample = common::try_conn(&url).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(180);
    let chaos_for = Duration::from_secs(10);
    let outcome = loop {
        tokio::time::sleep(Duration::from_millis(100 + rng.below(200))).await;
        match sample.as_mut() {
            Some(c) => match longest_wait(c, &kids, redis_up).await {
                Some(w) => waited = waited.max(w),
                None => sample = None,
            },
            None => sample = common::try_conn(&url).await,
        }
        let now = Instant::now();
        if now < started + chaos_for {
            let k = rng.below(kids.len() as u64) as usize;
            let kid = &mut kids[k];
            if let Some(since) = kid.paused {
                if since.elapsed() >= PAUSE {
                    signal(&kid.child, Signal::CONT);
                    kid.paused = None;
                    kid.up_since = Instant::now();
                }
            } else if rng.below(2) == 0 {
                let _ = kid.child.kill();
                let _ = kid.child.wait();
                lives += 1;
                *kid = spawn(kid.role, kid.index, &url, n, &dir, lives);
                kills += 1;
            } else {
                // Paused past the claim idle time: its entries are taken
                // over, and its commits on waking are refused.
                signal(&kid.child, Signal::STOP);
                kid.paused = Some(now);
                pauses += 1;
            }
            if !restarted && now > started + chaos_for / 2 {
                redis.kill();
                tokio::time::sleep(Duration::from_millis(200)).await;
                redis.restart().await.unwrap();
                redis_up = Instant::now();
                restarted = true;
            }
        } else {
            for kid in kids.iter_mut().filter(|k| k.paused.is_some()) {
                signal(&kid.child, Signal::CONT);
                kid.paused = None;
                kid.up_since = Instant::now();
            }
            if let Some(mut c) = common::try_conn(&url).await
                && let Some((outs, dead)) = accounted(&mut c).await
                && outs.len() + dead.len() >= (n as usize)
            {
                break Some((
                    outs,
                    dead,
                    now.saturating_duration_since(started + chaos_for),
                ));
            }
        }
        if now > deadline {
            break None;
        }
    };
    for kid in &mut kids {
        signal(&kid.child, Signal::CONT);
        let _ = kid.child.kill();
        let _ = kid.child.wait();
    }
    // Figures from the children's last stats (a killed child's last write).
    let (mut delivered, mut reclaimed, mut acked, mut refused) = (0u64, 0u64, 0u64, 0u64);
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let f: Vec<u64> = text
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if let [d, r, a, x] = f[..] {
            delivered += d;
            reclaimed += r;
            acked += a;
            refused += x;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (outs, dead, settled) = outcome.unwrap_or_else(|| {
        panic!("seed {seed:#x}: not every input was accounted for within the deadline")
    });
    // Every input once: an output, or a dead letter with a reason.
    let mut dead_by_input: HashMap<u64, Vec<String>> = HashMap::new();
    for (x, reason) in &dead {
        dead_by_input.entry(*x).or_default().push(reason.clone());
    }
    let mut duplicated = 0;
    let mut lost = 0;
    for x in 0..n {
        let o = outs.get(&x).copied().unwrap_or(0);
        let d = dead_by_input.get(&x).map_or(0, Vec::len);
        match o + d {
            1 => {}
            0 => lost += 1,
            _ => duplicated += 1,
        }
        if poison(x) {
            assert_eq!(o, 0, "seed {seed:#x}: poison input {x} has an output");
        }
    }
    assert!(outs.keys().all(|&x| x < n), "an output for no input");
    assert!(
        dead.iter().all(|(_, r)| !r.is_empty()),
        "a dead letter without a reason"
    );
    println!(
        "chaos seed {seed:#x}: {n} items, {kills} kills, {pauses} pauses, redis restarted {}, \
         {delivered} deliveries, {reclaimed} reclaims, {acked} commits, {refused} refused commits, \
         {} dead letters, all settled {settled:?} after the chaos, longest wait with a taker up {waited} ms \
         (claim idle {} ms), lost {lost}, duplicated {duplicated}",
        u8::from(restarted),
        dead.len(),
        CLAIM_IDLE.as_millis()
    );
    assert_eq!((lost, duplicated), (0, 0), "seed {seed:#x}");
    assert!(
        u128::from(waited) <= 2 * CLAIM_IDLE.as_millis(),
        "seed {seed:#x}: an entry waited {waited} ms with another consumer up, over twice the claim idle time"
    );
    assert!(
        pauses == 0 || reclaimed > 0,
        "seed {seed:#x}: pauses but no reclaims"
    );
    (pauses, refused)
}

fn tempfile_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("weft-chaos-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
