//! The work-queue shards of a Redis-streams pipeline, owned through the
//! live member set: each shard stream is read by one worker at a time,
//! and a worker's shards move to the others when it dies.
//!
//! Three worker processes register under `workers/` on Redis and share
//! six shard streams (`{jobs}:shard-0..5`) through `Ownership`: a sticky,
//! balanced assignment, one lease per shard. A worker runs a stream stage
//! on each shard it holds and stops it the moment its lease says the shard
//! is no longer safely its own. The producer has put 600 jobs on the
//! shards; after two seconds worker-b is killed (SIGKILL), its shards wait
//! out its lease, move to the two others, and their pending jobs are taken
//! over. Every job is done exactly once; the table shows who did which
//! shard's jobs, under which lease token.
//!
//! Run: `cargo run --example owned_shards --features full`. It starts its
//! own `redis-server` on a free loopback port (Debian package
//! `redis-server`), or uses `REDIS_URL` if set. The example re-executes
//! itself for the workers.

#[path = "common/redis_server.rs"]
mod redis_server;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft::Cause;
use weft::flow::queue::{QueueConfig, Source};
use weft::flow_redis::{
    Retention, StageOutput, StreamConfig, StreamSink, StreamSource, StreamStage,
};
use weft::lease::{CasStore, LeaseConfig};
use weft::lease_redis::RedisStore;
use weft::members::{Member, Ownership, OwnershipConfig, Registration, WatchConfig, Watcher};

const SHARDS: u32 = 6;
const JOBS: u32 = 600;
const TTL: Duration = Duration::from_secs(2);
const DONE: &str = "{jobs}:done";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Done {
    job: u32,
    shard: u32,
    worker: String,
    token: u64,
}

fn shard_stream(shard: u32) -> String {
    format!("{{jobs}}:shard-{shard}")
}

fn config() -> Result<StreamConfig, Box<dyn std::error::Error>> {
    // A dead worker's pending jobs are taken over after a second.
    Ok(StreamConfig::new().claim_idle(Duration::from_secs(1))?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, url, name] = &args[..]
        && role == "worker"
    {
        return worker(url, name).await;
    }
    let (url, redis) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let (url, child, dir) = redis_server::start("owned-shards").await?;
            (url, Some((child, dir)))
        }
    };
    let result = parent(&url).await;
    // Stop the server this example started, by its own handle.
    if let Some((mut redis, dir)) = redis {
        let _ = redis.kill();
        let _ = redis.wait();
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// A worker: registers, holds its share of the shards, and runs a stage
/// on each shard for as long as it safely holds it.
async fn worker(url: &str, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store: Arc<dyn CasStore> = Arc::new(RedisStore::connect(url, "owned-shards/").await?);
    let me = Member::new(name, name)?;
    let _registration = Registration::register(
        store.clone(),
        "workers/",
        me,
        LeaseConfig::new(TTL),
        TTL * 3,
    )
    .await?;
    let watcher = Watcher::new(store.clone(), "workers/", WatchConfig::new(TTL)?)?;
    let shares = OwnershipConfig::new(SHARDS, LeaseConfig::new(TTL))?;
    let ownership = Ownership::start(store, "shards/", name, watcher, shares)?;
    let mut guards = ownership.guards();
    let mut running: BTreeMap<u32, u64> = BTreeMap::new();
    loop {
        let held = guards.borrow_and_update().clone();
        running.retain(|shard, token| held.get(shard).is_some_and(|g| g.token.0 == *token));
        for (shard, guard) in held {
            if running.contains_key(&shard) {
                continue;
            }
            let token = guard.token.0;
            running.insert(shard, token);
            println!("{name}: holds shard {shard} (token {token})");
            let input: StreamSource<u32> =
                StreamSource::connect(url, &shard_stream(shard), "workers", config()?).await?;
            let output = StageOutput::<Done>::new(DONE, Retention::All)?;
            let worker = name.to_string();
            let job = move |job: u32| {
                let worker = worker.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(40)).await; // the work
                    Ok::<_, Cause>(vec![Done {
                        job,
                        shard,
                        worker,
                        token,
                    }])
                }
            };
            let stage = StreamStage::spawn(input, output, job, QueueConfig::fixed(1)?)?;
            let name = name.to_string();
            tokio::spawn(async move {
                // The lease says the shard may be another's from now on.
                guard.cancelled().await;
                stage.control().cancel();
                let _ = stage.wait().await;
                println!("{name}: let go of shard {shard}");
            });
        }
        guards.changed().await?;
    }
}

async fn parent(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    println!("redis at {url}");
    // The producer: JOBS jobs, job j on shard j mod SHARDS.
    for shard in 0..SHARDS {
        let sink: StreamSink<u32> =
            StreamSink::connect(url, &shard_stream(shard), Retention::All).await?;
        let jobs: Vec<u32> = (0..JOBS).filter(|j| j % SHARDS == shard).collect();
        sink.append(&jobs).await?;
    }
    println!("producer: {JOBS} jobs on {SHARDS} shard streams\n");
    let me = std::env::current_exe()?;
    let spawn = |name: &str| -> std::io::Result<Child> {
        Command::new(&me)
            .args(["worker", url, name])
            .stdin(Stdio::null())
            .spawn()
    };
    let mut workers: BTreeMap<&str, Child> = BTreeMap::new();
    for name in ["worker-a", "worker-b", "worker-c"] {
        workers.insert(name, spawn(name)?);
    }
    // Read what is done, kill worker-b after two seconds, stop when all is.
    let done: StreamSource<Done> = StreamSource::connect(url, DONE, "audit", config()?).await?;
    let started = Instant::now();
    let mut killed = false;
    let mut seen: BTreeMap<u32, Done> = BTreeMap::new();
    let mut duplicates = 0;
    while seen.len() < JOBS as usize && started.elapsed() < Duration::from_secs(60) {
        if !killed && started.elapsed() > Duration::from_secs(2) {
            if let Some(b) = workers.get_mut("worker-b") {
                let _ = b.kill();
                let _ = b.wait();
            }
            killed = true;
            println!("\n-- worker-b killed after {} jobs --\n", seen.len());
        }
        let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(200), done.next()).await
        else {
            continue;
        };
        let d = item.payload.clone();
        done.ack(item.id).await;
        if seen.insert(d.job, d).is_some() {
            duplicates += 1;
        }
    }
    for (_, mut w) in workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    // Per shard: who did its jobs, under which token.
    println!("\nshard  done by (worker, lease token: jobs)");
    for shard in 0..SHARDS {
        let mut by: BTreeMap<(String, u64), usize> = BTreeMap::new();
        for d in seen.values().filter(|d| d.shard == shard) {
            *by.entry((d.worker.clone(), d.token)).or_default() += 1;
        }
        let parts: Vec<String> = by
            .iter()
            .map(|((w, t), n)| format!("{w} (token {t}): {n}"))
            .collect();
        println!("{shard:>5}  {}", parts.join(", "));
    }
    println!(
        "\n{} of {JOBS} jobs done, {duplicates} done twice",
        seen.len()
    );
    if seen.len() != JOBS as usize || duplicates > 0 {
        return Err(format!("{} of {JOBS} jobs done, {duplicates} twice", seen.len()).into());
    }
    Ok(())
}
