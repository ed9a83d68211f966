//! The stream source against a real Redis: exactly-once processing across
//! consumers, fenced acknowledgement after a takeover, dead letters, an
//! acknowledgement that survives a paused server, and bad input.
//!
//! Needs `redis-server` (Debian package `redis-server`); skipped loudly
//! without it, and failed under `CI=true`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use redis::aio::MultiplexedConnection;
use weft_core::ErrorClass;
use weft_flow::queue::{QueueConfig, Source, WorkQueue};
use weft_flow_redis::{Raw, StreamConfig, StreamError, StreamId, StreamSource};

mod common;
use common::{conn, entries};

const WAIT: Duration = Duration::from_secs(20);

async fn add(c: &mut MultiplexedConnection, stream: &str, field: &str, value: &[u8]) -> String {
    redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg(field)
        .arg(value)
        .query_async(c)
        .await
        .unwrap()
}

async fn pending(c: &mut MultiplexedConnection, stream: &str, group: &str) -> i64 {
    let v: Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query_async(c)
        .await
        .unwrap();
    match v {
        Value::Array(parts) => match &parts[0] {
            Value::Int(n) => *n,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn quick() -> StreamConfig {
    StreamConfig::new()
        .block(Duration::from_millis(20))
        .unwrap()
        .close_when_idle(Duration::from_millis(500))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_in_two_consumers_process_every_entry_exactly_once() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let mut c = conn(&redis.url()).await;
    let n = 3000u64;
    for i in 0..n {
        add(&mut c, "jobs", "d", i.to_string().as_bytes()).await;
    }
    let mut runs = Vec::new();
    for _ in 0..2 {
        let source: StreamSource<u64> =
            StreamSource::connect(&redis.url(), "jobs", "workers", quick().batch(64).unwrap())
                .await
                .unwrap();
        let source = Arc::new(source);
        let worker = |x: u64| async move { Ok::<_, weft_core::Cause>(x * 2) };
        let queue = WorkQueue::spawn(source.clone(), worker, QueueConfig::fixed(4).unwrap());
        runs.push((source, tokio::spawn(queue.collect_all())));
    }
    let mut seen = HashMap::new();
    let mut acked = 0;
    for (source, run) in runs {
        let done = tokio::time::timeout(WAIT, run)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(done.dead_letters.is_empty());
        for (id, out) in done.output {
            assert!(seen.insert(id, out).is_none(), "{id} twice");
        }
        acked += source.stats().acked;
    }
    assert_eq!(seen.len() as u64, n);
    let mut values: Vec<u64> = seen.values().map(|v| v / 2).collect();
    values.sort_unstable();
    assert_eq!(values, (0..n).collect::<Vec<_>>());
    assert_eq!(acked, n);
    assert_eq!(pending(&mut c, "jobs", "workers").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_consumers_late_ack_is_refused_after_another_took_the_entry_over() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let mut c = conn(&redis.url()).await;
    let id: StreamId = add(&mut c, "s", "d", b"7").await.parse().unwrap();
    let config = StreamConfig::new()
        .block(Duration::from_millis(20))
        .unwrap()
        .claim_idle(Duration::from_millis(200))
        .unwrap();
    let a: StreamSource<u64> = StreamSource::connect(&redis.url(), "s", "g", config.clone())
        .await
        .unwrap();
    let taken = tokio::time::timeout(WAIT, a.next()).await.unwrap().unwrap();
    assert_eq!((taken.id, taken.payload), (id, 7));
    // `a` now sits on the entry past the idle time, as a paused process
    // would; `b` takes it over.
    let b: StreamSource<u64> = StreamSource::connect(&redis.url(), "s", "g", config)
        .await
        .unwrap();
    let again = tokio::time::timeout(WAIT, b.next()).await.unwrap().unwrap();
    assert_eq!(again.id, id);
    assert!(!a.ack(id).await, "the late acknowledgement was applied");
    assert!(b.ack(id).await);
    assert_eq!(pending(&mut c, "s", "g").await, 0);
    assert_eq!(
        (a.stats().refused, b.stats().reclaimed, b.stats().acked),
        (1, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_delivered_too_often_or_undecodable_go_to_the_dead_letters() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let mut c = conn(&redis.url()).await;
    let poison: StreamId = add(&mut c, "t", "d", b"1").await.parse().unwrap();
    let junk: StreamId = add(&mut c, "t", "d", b"\xffnot json")
        .await
        .parse()
        .unwrap();
    add(&mut c, "t", "other", b"2").await;
    let config = StreamConfig::new()
        .block(Duration::from_millis(20))
        .unwrap()
        .claim_idle(Duration::from_millis(100))
        .unwrap()
        .max_deliveries(1)
        .unwrap();
    let a: StreamSource<u64> = StreamSource::connect(&redis.url(), "t", "g", config.clone())
        .await
        .unwrap();
    let taken = tokio::time::timeout(WAIT, a.next()).await.unwrap().unwrap();
    assert_eq!(taken.id, poison);
    // Never acknowledged: the next delivery would be the second.
    let b: StreamSource<u64> = StreamSource::connect(&redis.url(), "t", "g", config)
        .await
        .unwrap();
    let dead = tokio::time::timeout(WAIT, async {
        loop {
            let d = entries(&mut c, b.dead_stream()).await;
            if d.len() == 3 {
                break d;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    let by_id: HashMap<String, &HashMap<String, Vec<u8>>> = dead
        .iter()
        .map(|d| (String::from_utf8(d["id"].clone()).unwrap(), d))
        .collect();
    let j = by_id[&junk.to_string()];
    assert_eq!(j["class"], b"permanent");
    assert_eq!(j["d"], b"\xffnot json");
    assert!(String::from_utf8_lossy(&j["reason"]).contains("does not decode"));
    let p = by_id[&poison.to_string()];
    assert_eq!(p["class"], b"transient");
    assert_eq!(p["deliveries"], b"2");
    assert!(String::from_utf8_lossy(&p["reason"]).contains("delivered 2 times"));
    assert_eq!(
        by_id.len(),
        3,
        "the entry without a payload field is dead too"
    );
    assert!(!a.ack(poison).await);
    assert_eq!(pending(&mut c, "t", "g").await, 0);
    assert_eq!(a.stats().dead_lettered + b.stats().dead_lettered, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_sent_to_a_paused_server_is_settled_once_it_resumes() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let mut c = conn(&redis.url()).await;
    let id: StreamId = add(&mut c, "u", "d", b"x").await.parse().unwrap();
    let source: StreamSource<Vec<u8>, Raw> = StreamSource::with_codec(
        &redis.url(),
        "u",
        "g",
        StreamConfig::new()
            .block(Duration::from_millis(20))
            .unwrap(),
        Raw,
    )
    .await
    .unwrap();
    let source = Arc::new(source);
    let item = tokio::time::timeout(WAIT, source.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.payload, b"x");
    redis.pause().unwrap();
    let acking = tokio::spawn({
        let source = source.clone();
        async move { source.ack(id).await }
    });
    // Longer than the client's response timeout: the first try's reply is
    // lost while the script waits in the paused server's socket.
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.resume().unwrap();
    assert!(tokio::time::timeout(WAIT, acking).await.unwrap().unwrap());
    assert_eq!(pending(&mut c, "u", "g").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_wrong_keys_and_a_missing_server_are_typed_errors() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let config = StreamConfig::new;
    let err = |r: Result<StreamSource<u64>, StreamError>| r.unwrap_err();
    let e = err(StreamSource::connect(&redis.url(), "", "g", config()).await);
    assert!(
        matches!(
            e,
            StreamError::Invalid {
                setting: "stream",
                ..
            }
        ),
        "{e}"
    );
    let e = err(StreamSource::connect(&redis.url(), "s", "", config()).await);
    assert!(
        matches!(
            e,
            StreamError::Invalid {
                setting: "group",
                ..
            }
        ),
        "{e}"
    );
    let mut c = conn(&redis.url()).await;
    common::set_plain(&mut c, "plain").await;
    let e = err(StreamSource::connect(&redis.url(), "plain", "g", config()).await);
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
    assert_eq!(weft_core::Classify::class(&e), ErrorClass::Permanent);
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let e = err(StreamSource::connect(&dead, "s", "g", config()).await);
    assert!(matches!(e, StreamError::Redis { .. }), "{e}");
    assert_eq!(weft_core::Classify::class(&e), ErrorClass::Transient);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphaned_entry_is_taken_over_within_twice_the_idle_time() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let mut c = conn(&redis.url()).await;
    let id: StreamId = add(&mut c, "o", "d", b"1").await.parse().unwrap();
    let idle = Duration::from_millis(400);
    let config = StreamConfig::new()
        .block(Duration::from_millis(20))
        .unwrap()
        .claim_idle(idle)
        .unwrap();
    let crashed: StreamSource<u64> = StreamSource::connect(&redis.url(), "o", "g", config.clone())
        .await
        .unwrap();
    let taken = tokio::time::timeout(WAIT, crashed.next())
        .await
        .unwrap()
        .unwrap();
    let orphaned = std::time::Instant::now();
    drop(crashed); // its reader stops: the entry is orphaned, unacknowledged
    let survivor: StreamSource<u64> = StreamSource::connect(&redis.url(), "o", "g", config)
        .await
        .unwrap();
    let again = tokio::time::timeout(WAIT, survivor.next())
        .await
        .unwrap()
        .unwrap();
    let took = orphaned.elapsed();
    assert_eq!((taken.id, again.id), (id, id));
    println!("orphaned entry taken over after {took:?} (claim idle {idle:?})");
    assert!(
        took <= idle * 2,
        "taken over after {took:?}, more than twice {idle:?}"
    );
    assert!(survivor.ack(id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_exists_keeps_its_own_position() {
    let Some(redis) = weft_test::redis().await else {
        return;
    };
    let mut c = conn(&redis.url()).await;
    add(&mut c, "e", "d", b"1").await;
    let new_only = StreamConfig::new()
        .block(Duration::from_millis(20))
        .unwrap()
        .start(weft_flow_redis::StartAt::New)
        .close_when_idle(Duration::from_millis(300))
        .unwrap();
    let first: StreamSource<u64> = StreamSource::connect(&redis.url(), "e", "g", new_only)
        .await
        .unwrap();
    add(&mut c, "e", "d", b"2").await;
    // Asking for the beginning of a group created at `$`: the group's own
    // position wins, so entry 1 (before the group) is not delivered.
    let from_start = StreamConfig::new()
        .block(Duration::from_millis(20))
        .unwrap()
        .close_when_idle(Duration::from_millis(300))
        .unwrap();
    let second: StreamSource<u64> = StreamSource::connect(&redis.url(), "e", "g", from_start)
        .await
        .unwrap();
    let mut got = Vec::new();
    for source in [&first, &second] {
        while let Some(item) = source.next().await {
            got.push(item.payload);
            assert!(source.ack(item.id).await);
        }
    }
    assert_eq!(got, [2]);
}
