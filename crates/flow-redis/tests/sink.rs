//! The stream sinks against a real Redis: flows appended in order and once
//! (also across a paused server), retention, one stream per shard, bad
//! input.
//!
//! Needs `redis-server`; skipped loudly without it, failed under `CI=true`.

use std::time::Duration;

use weft_core::{ShardExt, Sharder};
use weft_flow::{Flow, FlowConfig};
use weft_flow_redis::{
    Retention, ShardedSink, StreamConfig, StreamError, StreamSink, StreamSource,
};
use weft_shard::LevelJump;

mod common;
use common::{conn, len};

async fn read_all(url: &str, stream: &str) -> Vec<u64> {
    let source: StreamSource<u64> = StreamSource::connect(
        url,
        stream,
        "check",
        StreamConfig::new()
            .block(Duration::from_millis(20))
            .unwrap()
            .close_when_idle(Duration::from_millis(300))
            .unwrap(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    while let Some(item) = weft_flow::queue::Source::next(&source).await {
        out.push(item.payload);
        assert!(weft_flow::queue::Source::ack(&source, item.id).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_is_appended_once_in_order() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let sink: StreamSink<u64> = StreamSink::connect(&redis.url(), "out", Retention::All)
        .await
        .unwrap();
    let flow = Flow::from_iter(0..2000u64, FlowConfig::new(256, 100).unwrap());
    assert_eq!(sink.write(flow).await.unwrap(), 2000);
    assert_eq!(
        read_all(&redis.url(), "out").await,
        (0..2000).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_sent_to_a_paused_server_lands_exactly_once() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let sink: StreamSink<u64> = StreamSink::connect(&redis.url(), "p", Retention::All)
        .await
        .unwrap();
    sink.append(&[1, 2]).await.unwrap();
    redis.pause().unwrap();
    let appending = tokio::spawn(async move {
        let ids = sink.append(&[3, 4, 5]).await;
        (sink, ids)
    });
    // Longer than the client's response timeout: the first try's reply is
    // lost; the retry must not append again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.resume().unwrap();
    let (sink, ids) = tokio::time::timeout(Duration::from_secs(20), appending)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids.unwrap().len(), 3);
    sink.append(&[6]).await.unwrap();
    assert_eq!(read_all(&redis.url(), "p").await, [1, 2, 3, 4, 5, 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_about_the_last_entries() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let sink: StreamSink<u64> = StreamSink::connect(&redis.url(), "r", Retention::MaxLen(100))
        .await
        .unwrap();
    let all: Vec<u64> = (0..5000).collect();
    sink.append(&all).await.unwrap();
    let mut c = conn(&redis.url()).await;
    let n = len(&mut c, "r").await;
    // `~`: Redis trims whole nodes (100 entries by default).
    assert!((100..=300).contains(&n), "{n} entries kept");
    let kept = read_all(&redis.url(), "r").await;
    assert_eq!(kept.last(), Some(&4999));
    let aged: StreamSink<u64> = StreamSink::connect(
        &redis.url(),
        "a",
        Retention::MaxAge(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    aged.append(&all[..10]).await.unwrap();
    assert_eq!(len(&mut c, "a").await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_item_goes_to_its_shards_stream() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let shards = LevelJump::new(3).unwrap();
    let sink = ShardedSink::<u64, _>::connect(&redis.url(), "photos", shards, Retention::All)
        .await
        .unwrap();
    let flow = Flow::from_iter(0..900u64, FlowConfig::new(128, 64).unwrap());
    assert_eq!(sink.write(flow, |x: &u64| *x).await.unwrap(), 900);
    let mut total = 0;
    for id in 0..3u32 {
        let stream = sink.stream_of(weft_core::ShardId::new(id)).unwrap();
        assert_eq!(stream, format!("photos-{id}"));
        let got = read_all(&redis.url(), stream).await;
        let want: Vec<u64> = (0..900u64)
            .filter(|x| shards.shard_for(x).get() == id)
            .collect();
        assert_eq!(got, want, "{stream}");
        total += got.len();
    }
    assert_eq!(total, 900);
    assert_eq!(shards.shard_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sinks_are_typed_errors() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let setting = |r: Result<StreamSink<u64>, StreamError>| match r {
        Err(StreamError::Invalid { setting, .. }) => setting,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        setting(StreamSink::connect(&redis.url(), "", Retention::All).await),
        "stream"
    );
    assert_eq!(
        setting(StreamSink::connect(&redis.url(), "s", Retention::MaxLen(0)).await),
        "retention"
    );
    assert_eq!(
        setting(StreamSink::connect(&redis.url(), "s", Retention::MaxAge(Duration::ZERO)).await),
        "retention"
    );
    let mut c = conn(&redis.url()).await;
    common::set_plain(&mut c, "plain").await;
    let sink: StreamSink<u64> = StreamSink::connect(&redis.url(), "plain", Retention::All)
        .await
        .unwrap();
    let e = sink.append(&[1]).await.unwrap_err();
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
    // A map with non-string keys does not encode as JSON: nothing is appended.
    let maps: StreamSink<std::collections::HashMap<(u8, u8), u8>> =
        StreamSink::connect(&redis.url(), "m", Retention::All)
            .await
            .unwrap();
    let bad = std::collections::HashMap::from([((1, 2), 3)]);
    let e = maps.append(&[bad]).await.unwrap_err();
    assert!(
        matches!(
            e,
            StreamError::Invalid {
                setting: "payload",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(len(&mut c, "m").await, 0);
}
