//! Scatter/gather over real HTTP servers on loopback: 4 shards × 2
//! replicas of a search service. One replica is slow some of the time, and
//! one is killed mid-run; the root fans out with a deadline, hedging and a
//! top-k merge, and prints p50/p99 with hedging off and on.
//!
//! `cargo run --example http_search --features hyper`

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use weft::scatter::{Hedging, LeafContext, Plan, Scatter, ScatterConfig, Topology};
use weft::{Cause, Flatten, ResultExt, TopK};

const SHARDS: usize = 4;
const REPLICAS: usize = 2;
/// Replica 1 (shard 0's second) takes 60 ms on one request in five.
const SLOW: usize = 1;
/// Replica 6 (shard 3's first) is killed halfway through each run.
const KILLED: usize = 6;

/// One search server: answers `GET /?q=term` with its shard's best five
/// hits, one `score doc` per line, after 2 ms (60 ms one time in five for
/// the slow one).
async fn serve(listener: TcpListener, shard: usize, slow: bool) {
    let served = Arc::new(AtomicU64::new(0));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let served = served.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let n = served.fetch_add(1, Ordering::Relaxed);
                async move {
                    let term = req
                        .uri()
                        .query()
                        .unwrap_or("")
                        .trim_start_matches("q=")
                        .to_string();
                    let pause = if slow && n.is_multiple_of(5) { 60 } else { 2 };
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    let mut hits: Vec<(u64, String)> = (0..50u64)
                        .map(|i| {
                            let doc = shard as u64 + SHARDS as u64 * i;
                            (
                                weft::key_hash(&(term.as_str(), doc)) % 1000,
                                format!("doc-{doc}"),
                            )
                        })
                        .collect();
                    hits.sort_unstable_by(|a, b| b.cmp(a));
                    let body: String = hits
                        .iter()
                        .take(5)
                        .map(|(s, d)| format!("{s} {d}\n"))
                        .collect();
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The leaf: one HTTP request to the replica the root chose. A refused
/// connection is transient (the root fails over); a bad answer permanent.
async fn search(addr: SocketAddr, term: &str) -> Result<Vec<(u64, String)>, Cause> {
    let stream = TcpStream::connect(addr).await.classified()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .classified()?;
    tokio::spawn(conn);
    let req = Request::get(format!("/?q={term}"))
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .permanent()?;
    let body = sender.send_request(req).await.classified()?.into_body();
    let bytes = body.collect().await.classified()?.to_bytes();
    let text = std::str::from_utf8(&bytes).permanent()?;
    text.lines()
        .map(|line| {
            let (score, doc) = line
                .split_once(' ')
                .ok_or_else(|| Cause::permanent("bad hit line"))?;
            Ok((score.parse().permanent()?, doc.to_string()))
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let topology = Topology::sharded(SHARDS, REPLICAS)?;
    println!("{SHARDS} shards × {REPLICAS} replicas of an HTTP search service on loopback\n");
    println!("| hedging | queries | p50 | p99 | complete | hedges | failovers |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut last_report = None;
    for hedging in [
        Hedging::off(),
        Hedging::adaptive().fallback(Duration::from_millis(8), 50),
    ] {
        // Fresh servers per run, so both runs see the same faults.
        let mut addrs = vec![SocketAddr::from(([127, 0, 0, 1], 0)); topology.replica_count()];
        let mut servers = Vec::new();
        for shard in 0..SHARDS {
            for &replica in topology.replicas_of(weft::ShardId::new(shard as u32)) {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                addrs[replica] = listener.local_addr()?;
                servers.push((
                    replica,
                    tokio::spawn(serve(listener, shard, replica == SLOW)),
                ));
            }
        }
        let addrs = Arc::new(addrs);
        let leaf = {
            let addrs = addrs.clone();
            move |term: String, cx: LeafContext| {
                let addr = addrs[cx.replica];
                async move { search(addr, &term).await }
            }
        };
        let config = ScatterConfig::new(Duration::from_millis(250))
            .hedging(hedging)
            .max_extra_load(0.2);
        let root = Scatter::new(topology.clone(), leaf, config)?;
        let top = Flatten::new(TopK::by_key(5, |hit: &(u64, String)| hit.0)?);
        let (queries, mut latencies) = (400, Vec::new());
        let (mut complete, mut hedges, mut failovers) = (0, 0, 0);
        for q in 0..queries {
            if q == queries / 2 {
                // Kill one replica: its port refuses connections from now on.
                if let Some((_, server)) = servers.iter().find(|(r, _)| *r == KILLED) {
                    server.abort();
                }
            }
            let start = Instant::now();
            let g = root
                .gather(Plan::broadcast(SHARDS, format!("term{q}")), &top)
                .await?;
            latencies.push(start.elapsed());
            complete += usize::from(g.report.complete());
            hedges += g.report.hedges();
            failovers += g.report.failovers();
            last_report = Some(g.report);
        }
        latencies.sort_unstable();
        println!(
            "| {} | {queries} | {:.1} ms | {:.1} ms | {complete} | {hedges} | {failovers} |",
            if hedging.is_enabled() {
                "adaptive"
            } else {
                "off"
            },
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        );
        for (_, server) in servers {
            server.abort();
        }
    }
    if let Some(report) = last_report {
        println!(
            "\nthe last report, as JSON:\n{}",
            serde_json::to_string(&report)?
        );
    }
    Ok(())
}
