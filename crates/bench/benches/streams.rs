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
/// Entries through the one-per-round-trip loop (a tenth: it is slow).
const ONE_N: u64 = 5_000;
/// Entries through a stage of 4 and of 1 worker (a fifth).
const FEW_N: u64 = 10_000;
/// Rounds of every loop.
const ROUNDS: usize = 5;

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

/// This process's CPU seconds so far (user + system), from /proc.
fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

/// The server's CPU seconds so far (user + system).
async fn server_cpu(c: &mut MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(c).await.unwrap();
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| *k == "used_cpu_user" || *k == "used_cpu_sys")
        .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
        .sum()
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

async fn weft(url: &str, input: &str, output: &str, workers: usize, n: u64) -> Duration {
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
    while counters.stats().acked < n {
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
    println!(
        "| run | loop | items/s | server CPU µs/item | client CPU µs/item | weft (256 workers) ÷ it |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for run in 0..ROUNDS {
        let tag = |s: &str| format!("{{b{run}}}:{s}");
        fill(&url, &tag("raw-in"), N).await;
        fill(&url, &tag("one-in"), ONE_N).await;
        fill(&url, &tag("weft256-in"), N).await;
        for w in [4, 1] {
            fill(&url, &tag(&format!("weft{w}-in")), FEW_N).await;
        }
        // The two loops compared run back to back, in turns first, so that
        // a machine slowing down or speeding up weighs on both alike.
        let raw_loop = async |c: &mut MultiplexedConnection| {
            let cost = measure(c, N, raw(&url, &tag("raw-in"), &tag("raw-out"), BATCH)).await;
            assert_eq!(xlen(c, &tag("raw-out")).await, N);
            cost
        };
        let weft_loop = async |c: &mut MultiplexedConnection| {
            let (input, output) = (tag("weft256-in"), tag("weft256-out"));
            let cost = measure(c, N, weft(&url, &input, &output, 256, N)).await;
            assert_eq!(xlen(c, &output).await, N);
            cost
        };
        let (raw_batched, best) = if run % 2 == 0 {
            let r = raw_loop(&mut c).await;
            (r, weft_loop(&mut c).await)
        } else {
            let w = weft_loop(&mut c).await;
            (raw_loop(&mut c).await, w)
        };
        ratios.push(best.rate / raw_batched.rate);
        let one = measure(
            &mut c,
            ONE_N,
            one_per_round_trip(&url, &tag("one-in"), &tag("one-out")),
        )
        .await;
        assert_eq!(xlen(&mut c, &tag("one-out")).await, ONE_N);
        let mut few = Vec::new();
        for w in [4, 1] {
            let (input, output) = (tag(&format!("weft{w}-in")), tag(&format!("weft{w}-out")));
            let cost = measure(&mut c, FEW_N, weft(&url, &input, &output, w, FEW_N)).await;
            assert_eq!(xlen(&mut c, &output).await, FEW_N);
            few.push((w, cost));
        }
        let row = |what: &str, cost: &Cost| {
            println!(
                "| {run} | {what} | {:.0} | {:.2} | {:.2} | {:.2} |",
                cost.rate,
                cost.server_us,
                cost.client_us,
                best.rate / cost.rate
            );
        };
        row(&format!("raw, batched ({BATCH})"), &raw_batched);
        row("raw, one entry per round trip", &one);
        row("weft StreamStage, 256 workers", &best);
        for (w, cost) in &few {
            row(
                &format!(
                    "weft StreamStage, {w} worker{}",
                    if *w == 1 { "" } else { "s" }
                ),
                cost,
            );
        }
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "\nweft (256 workers) ÷ raw batched, over {ROUNDS} rounds: median {:.2}, range {:.2}–{:.2}",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
}

/// What one loop cost: items per second, and CPU per item on each side.
struct Cost {
    rate: f64,
    server_us: f64,
    client_us: f64,
}

/// Runs `work` (which moves `n` items) and reads both sides' CPU time
/// around it.
async fn measure(
    c: &mut MultiplexedConnection,
    n: u64,
    work: impl std::future::Future<Output = Duration>,
) -> Cost {
    let (server, client) = (server_cpu(c).await, own_cpu());
    let took = work.await;
    let per_item = |seconds: f64| seconds * 1e6 / n as f64;
    Cost {
        rate: n as f64 / took.as_secs_f64(),
        server_us: per_item(server_cpu(c).await - server),
        client_us: per_item(own_cpu() - client),
    }
}

/// One XREADGROUP of one entry, one XADD, one XACK: three round trips per
/// entry.
async fn one_per_round_trip(url: &str, input: &str, output: &str) -> Duration {
    let mut one = conn(url).await;
    group(&mut one, input).await;
    let start = Instant::now();
    for _ in 0..ONE_N {
        let v: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("one")
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg(input)
            .arg(">")
            .query_async(&mut one)
            .await
            .unwrap();
        for (id, d) in entries(&v) {
            let _: String = redis::cmd("XADD")
                .arg(output)
                .arg("*")
                .arg("d")
                .arg(d)
                .query_async(&mut one)
                .await
                .unwrap();
            let _: i64 = redis::cmd("XACK")
                .arg(input)
                .arg("g")
                .arg(id)
                .query_async(&mut one)
                .await
                .unwrap();
        }
    }
    start.elapsed()
}
