//! The sharded sink and stages on a real Redis Cluster of three masters:
//! one stream per shard, spread over the masters, consumers on every
//! master, and one master stopped (SIGSTOP) for longer than the claim
//! idle time: nothing lost or duplicated.
//!
//! Needs `redis-server` and `redis-cli` (Debian `redis-server`,
//! `redis-tools`); skipped loudly without them, failed under `CI=true`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use weft_core::Cause;
use weft_flow::queue::QueueConfig;
use weft_flow::{Flow, FlowConfig};
use weft_flow_redis::{
    Retention, ShardedSink, StageOutput, StreamConfig, StreamSource, StreamStage,
};
use weft_shard::LevelJump;

mod common;

const SHARDS: u32 = 6;

/// The payloads of `stream` at `url`.
async fn values(url: &str, stream: &str) -> Vec<u64> {
    let mut c = common::conn(url).await;
    common::field(&mut c, stream, "d")
        .await
        .iter()
        .map(|d| serde_json::from_slice(d).unwrap())
        .collect()
}
const CLAIM_IDLE: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_streams_spread_over_masters_and_survive_a_stopped_master() {
    let Some(cluster) = weft_test::redis_cluster(3).await else {
        return;
    };
    let seed = cluster.nodes()[0].url();
    let n = 3000u64;
    let sink = ShardedSink::<u64, _>::connect(
        &seed,
        "photos",
        LevelJump::new(SHARDS).unwrap(),
        Retention::All,
    )
    .await
    .unwrap();
    let flow = Flow::from_iter(0..n, FlowConfig::new(512, 256).unwrap());
    assert_eq!(sink.write(flow, |x: &u64| *x).await.unwrap(), n);
    // The shards' streams live on more than one master.
    let mut owners = HashMap::new();
    for id in 0..SHARDS {
        let stream = format!("photos-{id}");
        owners.insert(stream.clone(), cluster.owner_of(&stream).await.unwrap());
    }
    let masters: HashSet<usize> = owners.values().copied().collect();
    assert!(masters.len() >= 2, "every shard on one master: {owners:?}");
    // Two consumers per shard stream (so every master has consumers),
    // each a stage to an output in its input's slot.
    let config = StreamConfig::new()
        .block(Duration::from_millis(20))
        .unwrap()
        .claim_idle(CLAIM_IDLE)
        .unwrap()
        .close_when_idle(Duration::from_secs(3))
        .unwrap();
    let mut stages = Vec::new();
    for id in 0..SHARDS {
        for _ in 0..2 {
            let input = format!("photos-{id}");
            let source: StreamSource<u64> =
                StreamSource::connect(&seed, &input, "resizers", config.clone())
                    .await
                    .unwrap();
            let out = StageOutput::<u64>::new(&format!("{{photos-{id}}}:thumbs"), Retention::All)
                .unwrap();
            let worker = |x: u64| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok::<_, Cause>(vec![x])
            };
            stages.push(
                StreamStage::spawn(source, out, worker, QueueConfig::fixed(8).unwrap()).unwrap(),
            );
        }
    }
    // One master stopped for longer than the claim idle time, mid-run.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped = *owners.values().next().unwrap();
    cluster.nodes()[stopped].pause().unwrap();
    tokio::time::sleep(CLAIM_IDLE * 3).await;
    cluster.nodes()[stopped].resume().unwrap();
    let mut refused = 0;
    for stage in stages {
        let status = tokio::time::timeout(Duration::from_secs(60), stage.wait())
            .await
            .unwrap()
            .unwrap();
        refused += status.discarded;
    }
    // Every input once, in its shard's output.
    let mut seen = HashMap::new();
    for id in 0..SHARDS {
        let node = &cluster.nodes()[owners[&format!("photos-{id}")]];
        for x in values(&node.url(), &format!("{{photos-{id}}}:thumbs")).await {
            *seen.entry(x).or_insert(0) += 1;
        }
    }
    let lost = (0..n).filter(|x| !seen.contains_key(x)).count();
    let duplicated = seen.values().filter(|&&c| c > 1).count();
    println!(
        "cluster: {n} items over {SHARDS} shard streams on {} masters, master {stopped} stopped for {:?}, {refused} refused commits, lost {lost}, duplicated {duplicated}",
        masters.len(),
        CLAIM_IDLE * 3
    );
    assert_eq!((lost, duplicated), (0, 0));
}
