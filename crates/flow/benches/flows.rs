//! Flow throughput against per-item baselines built from tokio mpsc in the
//! same run: one channel hop; a four-stage map → filter → split(2) → merge
//! pipeline with a task and a channel per stage; copy to 3 through three
//! channels; a work queue of 2 workers on a shared channel. Every row checks
//! the count and checksum of what came out.
//!
//! `cargo bench -p weft-flow --bench flows`; results in docs/flows.md.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Mutex, mpsc};
use weft_flow::queue::{Autoscaler, MemorySource, QueueConfig, WorkQueue};
use weft_flow::{Flow, FlowConfig, Unmatched};

const N: u64 = 1_000_000;
const QUEUE_N: u64 = 200_000;

fn expected(n: u64, f: impl Fn(u64) -> Option<u64>) -> (u64, u64) {
    (0..n).filter_map(f).fold((0, 0), |mut t, x| {
        tally_add(&mut t, x);
        t
    })
}

/// Count and wrapping sum of what came out: what every row checks.
fn tally_add(t: &mut (u64, u64), x: u64) {
    t.0 += 1;
    t.1 = t.1.wrapping_add(x);
}

async fn tally_rx(mut rx: mpsc::Receiver<u64>) -> (u64, u64) {
    let mut t = (0, 0);
    while let Some(x) = rx.recv().await {
        tally_add(&mut t, x);
    }
    t
}

async fn tally_flow(flow: Flow<u64>) -> (u64, u64) {
    let mut t = (0, 0);
    flow.for_each(|x| tally_add(&mut t, x)).await.unwrap();
    t
}

/// The tallies of several reader tasks, added up.
async fn tally_tasks(tasks: Vec<tokio::task::JoinHandle<(u64, u64)>>) -> (u64, u64) {
    let mut total = (0, 0u64);
    for task in tasks {
        let (c, s) = task.await.unwrap();
        total = (total.0 + c, total.1.wrapping_add(s));
    }
    total
}

fn row(name: &str, n: u64, secs: f64, got: (u64, u64), want: (u64, u64), base: Option<f64>) -> f64 {
    assert_eq!(got, want, "{name}: count/checksum mismatch");
    let rate = n as f64 / secs;
    let vs = base.map_or("—".into(), |b| format!("{:.1}×", rate / b));
    println!(
        "| {name} | {:.2} M items/s | {} / {:#x} | {vs} |",
        rate / 1e6,
        got.0,
        got.1
    );
    rate
}

async fn baseline_hop() -> (u64, u64) {
    let (tx, rx) = mpsc::channel::<u64>(1024);
    tokio::spawn(async move {
        for i in 0..N {
            tx.send(i).await.unwrap();
        }
    });
    tally_rx(rx).await
}

async fn baseline_pipeline() -> (u64, u64) {
    let (t0, mut r0) = mpsc::channel::<u64>(1024);
    let (t1, mut r1) = mpsc::channel::<u64>(1024);
    let (t2, mut r2) = mpsc::channel::<u64>(1024);
    let (ta, mut ra) = mpsc::channel::<u64>(1024);
    let (tb, mut rb) = mpsc::channel::<u64>(1024);
    let (t3, r3) = mpsc::channel::<u64>(1024);
    tokio::spawn(async move {
        for i in 0..N {
            t0.send(i).await.unwrap();
        }
    });
    tokio::spawn(async move {
        while let Some(x) = r0.recv().await {
            t1.send(x * 3).await.unwrap();
        }
    });
    tokio::spawn(async move {
        while let Some(x) = r1.recv().await {
            if x % 2 == 0 {
                t2.send(x).await.unwrap();
            }
        }
    });
    tokio::spawn(async move {
        while let Some(x) = r2.recv().await {
            if x % 4 == 0 {
                ta.send(x).await.unwrap()
            } else {
                tb.send(x).await.unwrap()
            }
        }
    });
    tokio::spawn(async move {
        let (mut a_open, mut b_open) = (true, true);
        while a_open || b_open {
            tokio::select! {
                x = ra.recv(), if a_open => match x { Some(x) => t3.send(x).await.unwrap(), None => a_open = false },
                x = rb.recv(), if b_open => match x { Some(x) => t3.send(x).await.unwrap(), None => b_open = false },
            }
        }
    });
    tally_rx(r3).await
}

async fn weft_pipeline() -> (u64, u64) {
    let routes: Vec<weft_flow::Route<u64>> = vec![Box::new(|x| x % 4 == 0)];
    let split = Flow::from_iter(0..N, FlowConfig::default())
        .map(|x| x * 3)
        .filter(|x| x % 2 == 0)
        .split(routes, Unmatched::ToOutput)
        .unwrap();
    let mut inputs = split.outputs;
    inputs.extend(split.unmatched);
    tally_flow(Flow::merge(inputs).unwrap()).await
}

async fn baseline_copy() -> (u64, u64) {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| mpsc::channel::<u64>(1024)).unzip();
    tokio::spawn(async move {
        for i in 0..N {
            for tx in &txs {
                tx.send(i).await.unwrap();
            }
        }
    });
    tally_tasks(
        rxs.into_iter()
            .map(|rx| tokio::spawn(tally_rx(rx)))
            .collect(),
    )
    .await
}

async fn weft_copy(config: FlowConfig) -> (u64, u64) {
    let outs = Flow::from_iter(0..N, config).copy(3).unwrap();
    tally_tasks(
        outs.into_iter()
            .map(|f| tokio::spawn(tally_flow(f)))
            .collect(),
    )
    .await
}

async fn baseline_queue() -> (u64, u64) {
    let (tx, rx) = mpsc::channel::<u64>(1024);
    let rx = Arc::new(Mutex::new(rx));
    let (out_tx, out_rx) = mpsc::channel::<u64>(1024);
    tokio::spawn(async move {
        for i in 0..QUEUE_N {
            tx.send(i).await.unwrap();
        }
    });
    for _ in 0..2 {
        let (rx, out_tx) = (rx.clone(), out_tx.clone());
        tokio::spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                match next {
                    Some(x) => out_tx.send(x + 1).await.unwrap(),
                    None => break,
                }
            }
        });
    }
    drop(out_tx);
    tally_rx(out_rx).await
}

async fn weft_queue() -> (u64, u64) {
    let source = Arc::new(MemorySource::from_items(0..QUEUE_N));
    let config = QueueConfig::new(Autoscaler::new(2, 2, 1.0, 1).unwrap(), 64).unwrap();
    let WorkQueue {
        output, control, ..
    } = WorkQueue::spawn(
        source,
        |x: u64| async move { Ok::<_, Infallible>(x + 1) },
        config,
    );
    let t = tally_flow(output.map(|(_, x)| x)).await;
    control.wait().await.unwrap();
    t
}

/// The fastest of three runs: seconds and (count, checksum).
async fn best_of_3<F, Fut>(run: F) -> (f64, (u64, u64))
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (u64, u64)>,
{
    let mut best: Option<(f64, (u64, u64))> = None;
    for _ in 0..3 {
        let r = timed(run()).await;
        if best.is_none_or(|b| r.0 < b.0) {
            best = Some(r);
        }
    }
    best.expect("three runs")
}

async fn timed<F: std::future::Future<Output = (u64, u64)>>(f: F) -> (f64, (u64, u64)) {
    let t = Instant::now();
    let r = f.await;
    (t.elapsed().as_secs_f64(), r)
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // `cargo bench -p weft-flow --bench flows -- queue` runs one group.
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let want_group = |g: &str| only.as_deref().is_none_or(|o| g.contains(o));
    rt.block_on(async {
        println!("Items per second, best of 3 runs each; 2 worker threads.\n");
        println!("| flow | throughput | count / checksum | vs per-item baseline |");
        println!("|---|---:|---:|---:|");
        if want_group("hop") {
            let (t, got) = best_of_3(baseline_hop).await;
            row(
                "baseline: one mpsc hop, per item",
                N,
                t,
                got,
                expected(N, Some),
                None,
            );
        }
        if want_group("pipeline") {
            let want = expected(N, |x| Some(x * 3).filter(|y| y % 2 == 0));
            let (t, got) = best_of_3(baseline_pipeline).await;
            let base = row(
                "baseline: map → filter → split(2) → merge, task + channel per stage, per item",
                N,
                t,
                got,
                want,
                None,
            );
            let (t, got) = best_of_3(weft_pipeline).await;
            row("weft: the same four stages", N, t, got, want, Some(base));
        }
        if want_group("copy") {
            let one = expected(N, Some);
            let want = (one.0 * 3, one.1.wrapping_mul(3));
            let (t, got) = best_of_3(baseline_copy).await;
            let base = row(
                "baseline: copy to 3 through 3 mpsc channels, per item",
                N,
                t,
                got,
                want,
                None,
            );
            for (name, config) in [
                (
                    "weft: copy(3), default edges (1024 items, batches of 512)",
                    FlowConfig::default(),
                ),
                (
                    "weft: copy(3), edges of 4096 items, batches of 1024",
                    FlowConfig::new(4096, 1024).unwrap(),
                ),
            ] {
                let (t, got) = best_of_3(|| weft_copy(config)).await;
                row(name, N, t, got, want, Some(base));
            }
        }
        if want_group("queue") {
            let want = expected(QUEUE_N, |x| Some(x + 1));
            let (t, got) = best_of_3(baseline_queue).await;
            let base = row(
                "baseline: 2 workers on a shared mpsc channel, per item",
                QUEUE_N,
                t,
                got,
                want,
                None,
            );
            let (t, got) = best_of_3(weft_queue).await;
            row(
                "weft: work queue, 2 workers (retries, dead letters, done-tracking on)",
                QUEUE_N,
                t,
                got,
                want,
                Some(base),
            );
        }
    });
}
