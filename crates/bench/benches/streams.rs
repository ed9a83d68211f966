//! One stage between two Redis streams, items per second: weft's
//! `StreamStage` (fenced, exactly-once commits, batched) next to raw
//! `redis` crate loops doing the same XREADGROUP / XADD / XACK work in the
//! same run: with the same batch size (the broker's limit here), and one
//! entry per round trip.
//!
//! `cargo bench -p weft-bench --bench streams`; results in
//! docs/flows-redis.md. Release build, Redis started on loopback.

use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::MultiplexedConnection;
use weft_flow::queue::QueueConfig;
use weft_flow_redis::{
    Retention, StageOutput, StreamConfig, StreamSink, StreamSource, StreamStage,
};

const N: u64 = 50_000;
const BATCH: usize = 256;

async fn conn(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn fill(url: &str, stream: &str, n: u64) {
    let sink: StreamSink<u64> = StreamSink::connect(url, stream, Retention::All)
        .await
        .unwrap();
    let all: Vec<u64> = (0..n).collect();
    sink.append(&all).await.unwrap();
}

async fn group(c: &mut MultiplexedConnection, stream: &str) {
    let _: Value = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg("g")
        .arg("0")
        .query_async(c)
        .await
        .unwrap();
}

async fn xlen(c: &mut MultiplexedConnection, stream: &str) -> u64 {
    redis::cmd("XLEN").arg(stream).query_async(c).await.unwrap()
}

/// The ids and payloads of an XREADGROUP reply.
fn entries(v: &Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Value::Array(streams) = v else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in streams {
        let Value::Array(pair) = s else { continue };
        let Value::Array(list) = &pair[1] else {
            continue;
        };
        for e in list {
            let Value::Array(parts) = e else { continue };
            let (Value::BulkString(id), Value::Array(fields)) = (&parts[0], &parts[1]) else {
                continue;
            };
            if let Value::BulkString(d) = &fields[1] {
                out.push((id.clone(), d.clone()));
            }
        }
    }
    out
}

/// Reads batches of `count`, appends each payload to `out` and
/// acknowledges the batch: one XREADGROUP round trip and one pipelined
/// XADD×n + XACK round trip per batch.
async fn raw(url: &str, input: &str, output: &str, count: usize) -> Duration {
    let mut c = conn(url).await;
    group(&mut c, input).await;
    let start = Instant::now();
    let mut moved = 0u64;
    while moved < N {
        let v: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("raw")
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(input)
            .arg(">")
            .query_async(&mut c)
            .await
            .unwrap();
        let batch = entries(&v);

        let mut pipe = redis::pipe();
        for (_, d) in &batch {
            pipe.cmd("XADD")
                .arg(output)
                .arg("*")
                .arg("d")
                .arg(d.as_slice())
                .ignore();
        }
        let mut ack = redis::cmd("XACK");
        ack.arg(input).arg("g");
        for (id, _) in &batch {
            ack.arg(id.as_slice());
        }
        pipe.add_command(ack).ignore();
        let () = pipe.query_async(&mut c).await.unwrap();
        moved += batch.len() as u64;
    }
    start.elapsed()
}

async fn weft(url: &str, input: &str, output: &str, workers: usize) -> Duration {
    let config = StreamConfig::new()
        .batch(BATCH)
        .unwrap()
        .block(Duration::from_millis(5))
        .unwrap();
    let source: StreamSource<u64> = StreamSource::connect(url, input, "g", config)
        .await
        .unwrap();
    let counters = source.counters();
    let out = StageOutput::<u64>::new(output, Retention::All).unwrap();
    let worker = |x: u64| async move { Ok::<_, weft_core::Cause>(vec![x]) };
    let start = Instant::now();
    let stage =
        StreamStage::spawn(source, out, worker, QueueConfig::fixed(workers).unwrap()).unwrap();
    while counters.stats().acked < N {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let took = start.elapsed();
    stage.control().cancel();
    took
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let redis = weft_test::Redis::start()
        .await
        .expect("redis (apt-get install redis-server)");
    let url = redis.url();
    let mut c = conn(&url).await;
    println!(
        "{N} entries through one stage (read a batch, append each payload to another stream, acknowledge), loopback Redis, batches of {BATCH}.\n"
    );
    println!("| run | loop | items/s | weft ÷ it |");
    println!("|---|---|---:|---:|");
    for run in 0..3 {
        let tag = |s: &str| format!("{{b{run}}}:{s}");
        fill(&url, &tag("raw-in"), N).await;
        fill(&url, &tag("one-in"), 5_000).await;
        fill(&url, &tag("weft-in"), N).await;
        fill(&url, &tag("weft1-in"), N).await;
        fill(&url, &tag("weft256-in"), N).await;
        let raw_batched = raw(&url, &tag("raw-in"), &tag("raw-out"), BATCH).await;
        assert_eq!(xlen(&mut c, &tag("raw-out")).await, N);
        // One entry per round trip, on a tenth of the entries.
        let mut one = conn(&url).await;
        group(&mut one, &tag("one-in")).await;
        let start = Instant::now();
        for _ in 0..5_000 {
            let v: Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg("g")
                .arg("one")
                .arg("COUNT")
                .arg(1)
                .arg("STREAMS")
                .arg(tag("one-in"))
                .arg(">")
                .query_async(&mut one)
                .await
                .unwrap();
            for (id, d) in entries(&v) {
                let _: String = redis::cmd("XADD")
                    .arg(tag("one-out"))
                    .arg("*")
                    .arg("d")
                    .arg(d)
                    .query_async(&mut one)
                    .await
                    .unwrap();
                let _: i64 = redis::cmd("XACK")
                    .arg(tag("one-in"))
                    .arg("g")
                    .arg(id)
                    .query_async(&mut one)
                    .await
                    .unwrap();
            }
        }
        let one_rate = 5_000.0 / start.elapsed().as_secs_f64();
        let weft4 = weft(&url, &tag("weft-in"), &tag("weft-out"), 4).await;
        let weft1 = weft(&url, &tag("weft1-in"), &tag("weft1-out"), 1).await;
        let weft256 = weft(&url, &tag("weft256-in"), &tag("weft256-out"), 256).await;
        let rate = |d: Duration| N as f64 / d.as_secs_f64();
        let (raw_rate, w4, w1, w256) = (rate(raw_batched), rate(weft4), rate(weft1), rate(weft256));
        println!(
            "| {run} | raw, batched ({BATCH}) | {raw_rate:.0} | {:.2} |",
            w4 / raw_rate
        );
        println!(
            "| {run} | raw, one entry per round trip | {one_rate:.0} | {:.1} |",
            w4 / one_rate
        );
        println!("| {run} | weft StreamStage, 4 workers | {w4:.0} | — |");
        println!(
            "| {run} | weft StreamStage, 1 worker | {w1:.0} | {:.2} of 4 |",
            w1 / w4
        );
        println!(
            "| {run} | weft StreamStage, 256 workers | {w256:.0} | {:.2} of raw batched, {:.1} of one per round trip |",
            w256 / raw_rate,
            w256 / one_rate
        );
    }
}
