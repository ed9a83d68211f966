//! Consume–transform–produce against a real Redis: each input's outputs
//! appear once in the output stream (or the input in the dead letters),
//! across two consumers and a takeover of a slow one.
//!
//! Needs `redis-server`; skipped loudly without it, failed under `CI=true`.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use weft_core::{Cause, ResultExt};
use weft_flow::queue::QueueConfig;
use weft_flow_redis::{
    Retention, StageOutput, StreamConfig, StreamSink, StreamSource, StreamStage,
};

mod common;
use common::conn;

/// Field `field` of every entry of `stream`, as text.
async fn values(c: &mut MultiplexedConnection, stream: &str, field: &str) -> Vec<String> {
    common::field(c, stream, field)
        .await
        .into_iter()
        .map(|v| String::from_utf8(v).unwrap())
        .collect()
}

const WAIT: Duration = Duration::from_secs(30);

fn config() -> StreamConfig {
    StreamConfig::new()
        .block(Duration::from_millis(20))
        .unwrap()
        .close_when_idle(Duration::from_millis(800))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_append_each_inputs_outputs_once_and_dead_letter_the_failures() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let url = redis.url();
    let input: StreamSink<u64> = StreamSink::connect(&url, "{p}:in", Retention::All)
        .await
        .unwrap();
    // More than an edge holds (1024) per consumer: the stage reads its
    // queue's local outputs itself, or it would stop once they filled.
    let n = 3000u64;
    input.append(&(0..n).collect::<Vec<_>>()).await.unwrap();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let source: StreamSource<u64> = StreamSource::connect(&url, "{p}:in", "stage", config())
            .await
            .unwrap();
        let output = StageOutput::<u64>::new("{p}:out", Retention::All).unwrap();
        let worker = |x: u64| async move {
            if x.is_multiple_of(97) {
                return Err(Cause::permanent(format!("{x} is poison")));
            }
            Ok(vec![x * 10, x * 10 + 1])
        };
        let stage =
            StreamStage::spawn(source, output, worker, QueueConfig::fixed(4).unwrap()).unwrap();
        runs.push(tokio::spawn(stage.wait()));
    }
    let mut dead_here = 0;
    for run in runs {
        let done = tokio::time::timeout(WAIT, run)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        dead_here += done.dead as usize;
    }
    let mut c = conn(&url).await;
    let mut outs: Vec<u64> = values(&mut c, "{p}:out", "d")
        .await
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    outs.sort_unstable();
    let want: Vec<u64> = (0..n)
        .filter(|x| !x.is_multiple_of(97))
        .flat_map(|x| [x * 10, x * 10 + 1])
        .collect();
    assert_eq!(outs, want);
    let mut dead: Vec<String> = values(&mut c, "{p}:in:dead", "reason").await;
    dead.sort();
    let mut want_dead: Vec<String> = (0..n)
        .filter(|x| x.is_multiple_of(97))
        .map(|x| format!("{x} is poison"))
        .collect();
    want_dead.sort();
    assert_eq!(dead, want_dead);
    assert_eq!(dead_here, want_dead.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumers_late_commit_appends_nothing() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let url = redis.url();
    let input: StreamSink<u64> = StreamSink::connect(&url, "{q}:in", Retention::All)
        .await
        .unwrap();
    input.append(&[1]).await.unwrap();
    let idle = config().claim_idle(Duration::from_millis(200)).unwrap();
    // The slow consumer never takes entries over itself, so the entry does
    // not go back and forth while both hold it.
    let never = config().claim_idle(Duration::MAX).unwrap();
    let slow: StreamSource<u64> = StreamSource::connect(&url, "{q}:in", "stage", never)
        .await
        .unwrap();
    // Slower than the claim idle time: another consumer takes the entry
    // over while this one still works on it.
    let worker = |x: u64| async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Ok::<_, Cause>(vec![x + 100])
    };
    let output = StageOutput::<u64>::new("{q}:out", Retention::All).unwrap();
    let a = StreamStage::spawn(slow, output, worker, QueueConfig::fixed(1).unwrap()).unwrap();
    let a = tokio::spawn(a.wait());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fast: StreamSource<u64> = StreamSource::connect(&url, "{q}:in", "stage", idle)
        .await
        .unwrap();
    let output = StageOutput::<u64>::new("{q}:out", Retention::All).unwrap();
    // The takeover holds the entry until the slow consumer has tried to
    // commit: that commit must be refused while another consumer holds it.
    let (a_done_tx, a_done_rx) = tokio::sync::watch::channel(false);
    let takeover = move |x: u64| {
        let mut a_done = a_done_rx.clone();
        async move {
            let _ = a_done.wait_for(|done| *done).await;
            Ok::<_, std::io::Error>(vec![x + 100]).transient()
        }
    };
    let b = StreamStage::spawn(fast, output, takeover, QueueConfig::fixed(1).unwrap()).unwrap();
    let b = tokio::spawn(b.wait());
    let a = tokio::time::timeout(WAIT, a)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    a_done_tx.send(true).unwrap();
    let b = tokio::time::timeout(WAIT, b)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((a.done, a.discarded), (0, 1), "the late commit was applied");
    assert_eq!((b.done, b.discarded), (1, 0), "the takeover did not commit");
    let mut c = conn(&url).await;
    assert_eq!(values(&mut c, "{q}:out", "d").await, ["101"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_stage_commits_each_output_to_its_shards_stream() {
    use weft_core::ShardExt;
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let url = redis.url();
    let input: StreamSink<u64> = StreamSink::connect(&url, "{s}:in", Retention::All)
        .await
        .unwrap();
    input.append(&(0..900).collect::<Vec<_>>()).await.unwrap();
    let shards = weft_shard::LevelJump::new(3).unwrap();
    let output =
        StageOutput::<u64>::sharded("{s}:shard", shards, |x: &u64| *x, Retention::All).unwrap();
    assert_eq!(
        output.streams(),
        ["{s}:shard-0", "{s}:shard-1", "{s}:shard-2"]
    );
    let source: StreamSource<u64> = StreamSource::connect(&url, "{s}:in", "sharder", config())
        .await
        .unwrap();
    let sharder = |x: u64| async move { Ok::<_, Cause>(vec![x]) };
    let status = StreamStage::spawn(source, output, sharder, QueueConfig::fixed(16).unwrap())
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(status.done, 900);
    let mut c = conn(&url).await;
    let mut total = 0;
    for id in 0..3u32 {
        let mut got: Vec<u64> = values(&mut c, &format!("{{s}}:shard-{id}"), "d")
            .await
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        got.sort_unstable();
        let want: Vec<u64> = (0..900u64)
            .filter(|x| shards.shard_for(x).get() == id)
            .collect();
        assert_eq!(got, want, "shard {id}");
        total += got.len();
    }
    assert_eq!(total, 900);
}
