//! The book's sharded photo pipeline (Designing Distributed Systems,
//! ch. 11) as separate processes on one local Redis: a producer uploads
//! photos to a stream, a sharder stage writes each to the stream of its
//! shard, workers in two processes resize every shard's photos, and a final
//! reduce counts the thumbnails per shard and per worker.
//!
//! ```text
//!  producer ─▶ {photos}:uploads ─sharder─▶ {photos}:shard-0..2 ─2 workers─▶ {photos}:thumbs ─▶ reduce
//! ```
//!
//! Run: `cargo run --example photo_pipeline --features full`. It starts its
//! own `redis-server` on a free loopback port (Debian package
//! `redis-server`), or uses `REDIS_URL` if set. The example re-executes
//! itself for each process.

#[path = "common/redis_server.rs"]
mod redis_server;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use weft::flow::queue::{QueueConfig, Source};
use weft::flow_redis::{
    Retention, StageOutput, StreamConfig, StreamSink, StreamSource, StreamStage,
};
use weft::shard::LevelJump;
use weft::{Cause, ShardExt};

const UPLOADS: &str = "{photos}:uploads";
const THUMBS: &str = "{photos}:thumbs";
const SHARDS: u32 = 3;
const PHOTOS: u64 = 300;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Thumb {
    photo: String,
    shard: u32,
    worker: String,
}

fn config() -> StreamConfig {
    // Processes end once their input has been quiet for three seconds.
    StreamConfig::new()
        .close_when_idle(Duration::from_secs(3))
        .and_then(|c| c.claim_idle(Duration::from_secs(5)))
        .expect("valid stream settings")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, url, rest @ ..] = &args[..] {
        return child(role, url, rest).await;
    }
    let (url, redis) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let (url, child, dir) = redis_server::start("photo-pipeline").await?;
            (url, Some((child, dir)))
        }
    };
    let result = parent(&url).await;
    // Stop the server this example started, by its own handle, and remove
    // its dir.
    if let Some((mut redis, dir)) = redis {
        let _ = redis.kill();
        let _ = redis.wait();
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

async fn parent(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    println!("redis at {url}");
    let me = std::env::current_exe()?;
    let spawn = |role: &str, extra: &str| -> std::io::Result<Child> {
        Command::new(&me)
            .args([role, url, extra])
            .stdin(Stdio::null())
            .spawn()
    };
    let mut kids = vec![
        spawn("producer", "")?,
        spawn("sharder", "")?,
        spawn("worker", "worker-a")?,
        spawn("worker", "worker-b")?,
    ];
    for kid in &mut kids {
        kid.wait()?;
    }
    // The final reduce: every thumbnail, counted per shard and per worker.
    let thumbs: StreamSource<Thumb> =
        StreamSource::connect(url, THUMBS, "reduce", config()).await?;
    let (mut per_shard, mut per_worker) = (BTreeMap::new(), BTreeMap::new());
    let mut total = 0;
    while let Some(item) = thumbs.next().await {
        *per_shard.entry(item.payload.shard).or_insert(0) += 1;
        *per_worker.entry(item.payload.worker.clone()).or_insert(0) += 1;
        total += 1;
        thumbs.ack(item.id).await;
    }
    println!("\nreduce: {total} thumbnails for {PHOTOS} photos");
    for (shard, n) in &per_shard {
        println!("  shard {shard}: {n}");
    }
    for (worker, n) in &per_worker {
        println!("  {worker}: {n}");
    }
    if total != PHOTOS {
        return Err(format!("{total} thumbnails for {PHOTOS} photos").into());
    }
    Ok(())
}

async fn child(role: &str, url: &str, rest: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    match role {
        "producer" => {
            let uploads: StreamSink<String> =
                StreamSink::connect(url, UPLOADS, Retention::All).await?;
            let photos: Vec<String> = (0..PHOTOS).map(|i| format!("photo-{i}.jpg")).collect();
            uploads.append(&photos).await?;
            println!("producer: uploaded {PHOTOS} photos to {UPLOADS}");
        }
        "sharder" => {
            let shards = LevelJump::new(SHARDS)?;
            let out = StageOutput::sharded(
                "{photos}:shard",
                shards,
                |p: &String| p.clone(),
                Retention::All,
            )?;
            let streams = out.streams().join(", ");
            let input: StreamSource<String> =
                StreamSource::connect(url, UPLOADS, "sharders", config()).await?;
            let route = |photo: String| async move { Ok::<_, Cause>(vec![photo]) };
            let status = StreamStage::spawn(input, out, route, QueueConfig::fixed(8)?)?
                .wait()
                .await?;
            println!("sharder: {} photos into {streams}", status.done);
        }
        "worker" => {
            let name = rest.first().cloned().unwrap_or_default();
            let shards = LevelJump::new(SHARDS)?;
            let mut stages = Vec::new();
            for shard in 0..SHARDS {
                let input: StreamSource<String> = StreamSource::connect(
                    url,
                    &format!("{{photos}}:shard-{shard}"),
                    "resizers",
                    config(),
                )
                .await?;
                let out = StageOutput::<Thumb>::new(THUMBS, Retention::All)?;
                let worker_name = name.clone();
                let resize = move |photo: String| {
                    let worker = worker_name.clone();
                    async move {
                        tokio::time::sleep(Duration::from_millis(5)).await; // the resize
                        let shard = shards.shard_for(&photo).get();
                        Ok::<_, Cause>(vec![Thumb {
                            photo,
                            shard,
                            worker,
                        }])
                    }
                };
                stages.push(StreamStage::spawn(input, out, resize, QueueConfig::fixed(4)?)?.wait());
            }
            let mut done = 0;
            for status in wait_all(stages).await {
                done += status?.done;
            }
            println!("{name}: resized {done} photos");
        }
        other => return Err(format!("unknown role {other}").into()),
    }
    Ok(())
}

/// Waits for every stage (they run meanwhile: each was spawned).
async fn wait_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::with_capacity(futures.len());
    for f in futures {
        out.push(f.await);
    }
    out
}
