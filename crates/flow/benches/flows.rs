//! Flow throughput against the strongest plain baselines in the same run.
//!
//! Each group runs its baselines first, then weft's rows, and prints every
//! weft row's rate divided by each baseline's:
//!
//! - `hop`: one channel hop, per item (tokio mpsc, flume) and carrying
//!   batches of the flow's batch size (tokio mpsc of `Vec`s), read by the
//!   caller's thread and by a task;
//! - `copy`: copy to 3, per item and as one shared `Arc` batch sent to
//!   three channels;
//! - in `hop` and `copy`, a bare channel as well: a lock around a queue
//!   with one waker a side and nothing else (no order among senders, no
//!   capacity in items, no failure to pass on), the floor any channel with
//!   those duties sits above;
//! - `pipeline`: map → filter → split(2) → merge as a task per stage with
//!   per-item and with batched channels, and as one fused loop in one task
//!   (the upper bound: no hop at all);
//! - `queue`: 2 workers with a trivial worker on flume, per item and in
//!   batches, and the work queue with 1 and 2 workers.
//!
//! Every row checks the count and checksum of what came out.
//!
//! `cargo bench -p weft-flow --bench flows` (or `-- hop`, `-- copy`,
//! `-- pipeline`, `-- queue` for one group); results in docs/flows.md.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Mutex, mpsc};
use weft_flow::queue::{MemorySource, QueueConfig, WorkQueue};
use weft_flow::{Flow, FlowConfig, Unmatched};

/// Items per row for the batched shapes.
const N: u64 = 10_000_000;
/// Items per row for per-item shapes (rates are per item, so a shorter
/// run measures the same thing).
const N_ITEM: u64 = 2_000_000;
/// Items per work-queue row.
const QUEUE_N: u64 = 1_000_000;
/// Items per work-queue row whose worker works about a microsecond.
const QUEUE_CPU_N: u64 = 200_000;
/// The batch size of every batched baseline: the flow's default.
const BATCH: usize = 512;
/// Batches in flight on a batched baseline's channel: the flow's default
/// capacity (1024 items) in batches.
const BATCHES: usize = 2;
/// Batches in flight on a deep edge: 64 (32 768 items).
const DEEP: usize = 64;

type Tally = (u64, u64);

fn expected(n: u64, f: impl Fn(u64) -> Option<u64>) -> Tally {
    (0..n).filter_map(f).fold((0, 0), |mut t, x| {
        tally_add(&mut t, x);
        t
    })
}

/// Count and wrapping sum of what came out: what every row checks.
fn tally_add(t: &mut Tally, x: u64) {
    t.0 += 1;
    t.1 = t.1.wrapping_add(x);
}

fn tally_sum(a: Tally, b: Tally) -> Tally {
    (a.0 + b.0, a.1.wrapping_add(b.1))
}

async fn tally_rx(mut rx: mpsc::Receiver<u64>) -> Tally {
    let mut t = (0, 0);
    while let Some(x) = rx.recv().await {
        tally_add(&mut t, x);
    }
    t
}

async fn tally_batches(mut rx: mpsc::Receiver<Vec<u64>>) -> Tally {
    let mut t = (0, 0);
    while let Some(batch) = rx.recv().await {
        batch.into_iter().for_each(|x| tally_add(&mut t, x));
    }
    t
}

async fn tally_flow(flow: Flow<u64>) -> Tally {
    let mut t = (0, 0);
    flow.for_each(|x| tally_add(&mut t, x)).await.unwrap();
    t
}

async fn tally_flow_in_place(flow: Flow<u64>) -> Tally {
    let mut t = (0, 0);
    flow.for_each_batch(|items| items.iter().for_each(|&x| tally_add(&mut t, x)))
        .await
        .unwrap();
    t
}

/// The tallies of several reader tasks, added up.
async fn tally_tasks(tasks: Vec<tokio::task::JoinHandle<Tally>>) -> Tally {
    let mut total = (0, 0u64);
    for task in tasks {
        total = tally_sum(total, task.await.unwrap());
    }
    total
}

/// The bare channel: a lock around a queue of at most `capacity` values,
/// one waker for the reader and one for the (single) sender.
mod bare {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};

    struct State<T> {
        queue: VecDeque<T>,
        reader: Option<Waker>,
        sender: Option<Waker>,
        closed: bool,
    }

    pub(crate) struct Bare<T> {
        state: Mutex<State<T>>,
        capacity: usize,
    }

    pub(crate) fn channel<T>(capacity: usize) -> Arc<Bare<T>> {
        Arc::new(Bare {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                reader: None,
                sender: None,
                closed: false,
            }),
            capacity,
        })
    }

    impl<T> Bare<T> {
        pub(crate) async fn send(&self, value: T) {
            let mut value = Some(value);
            std::future::poll_fn(|cx| {
                let mut st = self.state.lock().unwrap();
                if st.queue.len() < self.capacity {
                    st.queue.extend(value.take());
                    let reader = st.reader.take();
                    drop(st);
                    reader.into_iter().for_each(Waker::wake);
                    Poll::Ready(())
                } else {
                    st.sender = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await
        }

        pub(crate) fn close(&self) {
            let mut st = self.state.lock().unwrap();
            st.closed = true;
            let reader = st.reader.take();
            drop(st);
            reader.into_iter().for_each(Waker::wake);
        }

        pub(crate) async fn recv(&self) -> Option<T> {
            std::future::poll_fn(|cx| {
                // Yields now and then, as tokio's channels and weft's edges do.
                let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
                let mut st = self.state.lock().unwrap();
                if let Some(value) = st.queue.pop_front() {
                    let sender = st.sender.take();
                    drop(st);
                    sender.into_iter().for_each(Waker::wake);
                    coop.made_progress();
                    Poll::Ready(Some(value))
                } else if st.closed {
                    coop.made_progress();
                    Poll::Ready(None)
                } else {
                    st.reader = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await
        }
    }
}

/// Sends `0..n` in batches of [`BATCH`], built as `Flow::from_iter` builds
/// them.
async fn send_batches(n: u64, tx: mpsc::Sender<Vec<u64>>) {
    let mut items = 0..n;
    loop {
        let batch: Vec<u64> = items.by_ref().take(BATCH).collect();
        if batch.is_empty() || tx.send(batch).await.is_err() {
            return;
        }
    }
}

// ---- one hop ----

async fn hop_mpsc(n: u64) -> Tally {
    let (tx, rx) = mpsc::channel::<u64>(1024);
    tokio::spawn(async move {
        for i in 0..n {
            tx.send(i).await.unwrap();
        }
    });
    tally_rx(rx).await
}

async fn hop_flume(n: u64) -> Tally {
    let (tx, rx) = flume::bounded::<u64>(1024);
    tokio::spawn(async move {
        for i in 0..n {
            tx.send_async(i).await.unwrap();
        }
    });
    let mut t = (0, 0);
    while let Ok(x) = rx.recv_async().await {
        tally_add(&mut t, x);
    }
    t
}

async fn hop_mpsc_batches(n: u64, batches: usize) -> Tally {
    let (tx, rx) = mpsc::channel::<Vec<u64>>(batches);
    tokio::spawn(send_batches(n, tx));
    tally_batches(rx).await
}

async fn hop_bare_batches(n: u64, batches: usize) -> Tally {
    let rx = bare::channel::<Vec<u64>>(batches);
    let tx = rx.clone();
    tokio::spawn(async move {
        let mut items = 0..n;
        loop {
            let batch: Vec<u64> = items.by_ref().take(BATCH).collect();
            if batch.is_empty() {
                tx.close();
                return;
            }
            tx.send(batch).await;
        }
    });
    let mut t = (0, 0);
    while let Some(batch) = rx.recv().await {
        batch.into_iter().for_each(|x| tally_add(&mut t, x));
    }
    t
}

/// A row's work with its reader in a task of the runtime, as a flow's
/// stages are, instead of the caller's thread.
async fn in_task<F: Future<Output = Tally> + Send + 'static>(row: F) -> Tally {
    tokio::spawn(row).await.expect("the row's task")
}

/// Edges of `batches` batches of [`BATCH`].
fn edges_of(batches: usize) -> FlowConfig {
    FlowConfig::new(batches * BATCH, BATCH).expect("a valid flow configuration")
}

async fn hop_weft_boundary(n: u64, batches: usize) -> Tally {
    tally_flow(Flow::from_iter(0..n, edges_of(batches)).boundary()).await
}

async fn hop_weft_send(n: u64) -> Tally {
    let (tx, flow) = weft_flow::channel(FlowConfig::default());
    tokio::spawn(async move {
        for i in 0..n {
            assert!(tx.send(i).await);
        }
    });
    tally_flow(flow).await
}

async fn hop_weft_send_batch(n: u64) -> Tally {
    let (tx, flow) = weft_flow::channel(FlowConfig::default());
    tokio::spawn(async move {
        let mut items = 0..n;
        loop {
            let batch: Vec<u64> = items.by_ref().take(BATCH).collect();
            if batch.is_empty() {
                return;
            }
            assert!(tx.send_batch(batch).await);
        }
    });
    tally_flow(flow).await
}

// ---- copy to 3 ----

async fn copy_mpsc(n: u64) -> Tally {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| mpsc::channel::<u64>(1024)).unzip();
    tokio::spawn(async move {
        for i in 0..n {
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

/// `0..n` in shared batches of [`BATCH`], as a copier's producer sends
/// them.
fn shared_batches(n: u64) -> impl Iterator<Item = Arc<Vec<u64>>> + Send {
    let mut items = 0..n;
    std::iter::from_fn(move || {
        let batch: Vec<u64> = items.by_ref().take(BATCH).collect();
        (!batch.is_empty()).then(|| Arc::new(batch))
    })
}

/// Tallies each reader of shared batches in a task of its own: `next`
/// reads one reader's next batch.
async fn tally_shared<R, F, Fut>(readers: Vec<R>, next: F) -> Tally
where
    R: Send + 'static,
    F: Fn(R) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Option<(Arc<Vec<u64>>, R)>> + Send,
{
    let task = move |mut reader: R| async move {
        let mut t = (0, 0);
        while let Some((batch, rest)) = next(reader).await {
            batch.iter().for_each(|&x| tally_add(&mut t, x));
            reader = rest;
        }
        t
    };
    tally_tasks(readers.into_iter().map(|r| tokio::spawn(task(r))).collect()).await
}

async fn copy_shared_arc(n: u64, batches: usize) -> Tally {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..3)
        .map(|_| mpsc::channel::<Arc<Vec<u64>>>(batches))
        .unzip();
    tokio::spawn(async move {
        for batch in shared_batches(n) {
            for tx in &txs {
                tx.send(batch.clone()).await.unwrap();
            }
        }
    });
    tally_shared(
        rxs,
        |mut rx| async move { rx.recv().await.map(|b| (b, rx)) },
    )
    .await
}

async fn copy_bare(n: u64, batches: usize) -> Tally {
    let rxs: Vec<_> = (0..3)
        .map(|_| bare::channel::<Arc<Vec<u64>>>(batches))
        .collect();
    let txs = rxs.clone();
    tokio::spawn(async move {
        for batch in shared_batches(n) {
            for tx in &txs {
                tx.send(batch.clone()).await;
            }
        }
        txs.iter().for_each(|tx| tx.close());
    });
    tally_shared(rxs, |rx| async move { rx.recv().await.map(|b| (b, rx)) }).await
}

/// Copy to 3, read in place (`for_each_batch`) or owning each item
/// (`for_each`: every output but the last to take a batch copies it).
async fn copy_weft(n: u64, batches: usize, in_place: bool) -> Tally {
    let outs = Flow::from_iter(0..n, edges_of(batches)).copy(3).unwrap();
    tally_tasks(
        outs.into_iter()
            .map(|f| {
                if in_place {
                    tokio::spawn(tally_flow_in_place(f))
                } else {
                    tokio::spawn(tally_flow(f))
                }
            })
            .collect(),
    )
    .await
}

// ---- map → filter → split(2) → merge ----

fn pipeline_want(n: u64) -> Tally {
    expected(n, |x| Some(x * 3).filter(|y| y % 2 == 0))
}

async fn pipeline_mpsc(n: u64) -> Tally {
    let (t0, mut r0) = mpsc::channel::<u64>(1024);
    let (t1, mut r1) = mpsc::channel::<u64>(1024);
    let (t2, mut r2) = mpsc::channel::<u64>(1024);
    let (ta, ra) = mpsc::channel::<u64>(1024);
    let (tb, rb) = mpsc::channel::<u64>(1024);
    let (t3, r3) = mpsc::channel::<u64>(1024);
    tokio::spawn(async move {
        for i in 0..n {
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
    tokio::spawn(merge2(ra, rb, t3));
    tally_rx(r3).await
}

/// The merger stage of a baseline: both inputs to one output, until both
/// end.
async fn merge2<T: Send>(mut a: mpsc::Receiver<T>, mut b: mpsc::Receiver<T>, out: mpsc::Sender<T>) {
    let (mut a_open, mut b_open) = (true, true);
    while a_open || b_open {
        tokio::select! {
            x = a.recv(), if a_open => match x { Some(x) => out.send(x).await.unwrap(), None => a_open = false },
            x = b.recv(), if b_open => match x { Some(x) => out.send(x).await.unwrap(), None => b_open = false },
        }
    }
}

async fn pipeline_mpsc_batches(n: u64) -> Tally {
    let (t0, mut r0) = mpsc::channel::<Vec<u64>>(BATCHES);
    let (t1, mut r1) = mpsc::channel::<Vec<u64>>(BATCHES);
    let (t2, mut r2) = mpsc::channel::<Vec<u64>>(BATCHES);
    let (ta, ra) = mpsc::channel::<Vec<u64>>(BATCHES);
    let (tb, rb) = mpsc::channel::<Vec<u64>>(BATCHES);
    let (t3, r3) = mpsc::channel::<Vec<u64>>(BATCHES);
    tokio::spawn(send_batches(n, t0));
    tokio::spawn(async move {
        while let Some(mut batch) = r0.recv().await {
            batch.iter_mut().for_each(|x| *x *= 3);
            t1.send(batch).await.unwrap();
        }
    });
    tokio::spawn(async move {
        while let Some(mut batch) = r1.recv().await {
            batch.retain(|x| x % 2 == 0);
            if !batch.is_empty() {
                t2.send(batch).await.unwrap();
            }
        }
    });
    tokio::spawn(async move {
        while let Some(batch) = r2.recv().await {
            let (a, b): (Vec<u64>, Vec<u64>) = batch.into_iter().partition(|x| x % 4 == 0);
            if !a.is_empty() {
                ta.send(a).await.unwrap();
            }
            if !b.is_empty() {
                tb.send(b).await.unwrap();
            }
        }
    });
    tokio::spawn(merge2(ra, rb, t3));
    tally_batches(r3).await
}

/// The whole chain as one loop in one task: no hop, the upper bound.
async fn pipeline_fused(n: u64) -> Tally {
    let (mut a, mut b) = ((0, 0), (0, 0));
    for x in 0..n {
        let x = x * 3;
        if x % 2 == 0 {
            if x % 4 == 0 {
                tally_add(&mut a, x);
            } else {
                tally_add(&mut b, x);
            }
        }
    }
    tally_sum(a, b)
}

async fn pipeline_weft(n: u64) -> Tally {
    let routes: Vec<weft_flow::Route<u64>> = vec![Box::new(|x| x % 4 == 0)];
    let split = Flow::from_iter(0..n, FlowConfig::default())
        .map(|x| x * 3)
        .filter(|x| x % 2 == 0)
        .split(routes, Unmatched::ToOutput)
        .unwrap();
    let mut inputs = split.outputs;
    inputs.extend(split.unmatched);
    tally_flow(Flow::merge(inputs).unwrap()).await
}

// ---- work queue, trivial worker ----

/// A trivial worker's work.
fn plus_one(x: u64) -> u64 {
    x + 1
}

/// About a microsecond of work on one core: a chain of 256 rounds of a
/// 64-bit mix, which the compiler cannot fold.
fn spin(x: u64) -> u64 {
    let mut h = x;
    for _ in 0..256 {
        h = (h ^ (h >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    std::hint::black_box(h)
}

async fn queue_flume(n: u64, workers: usize, work: fn(u64) -> u64) -> Tally {
    let (tx, rx) = flume::bounded::<u64>(1024);
    let (out_tx, out_rx) = flume::bounded::<u64>(1024);
    tokio::spawn(async move {
        for i in 0..n {
            tx.send_async(i).await.unwrap();
        }
    });
    for _ in 0..workers {
        let (rx, out_tx) = (rx.clone(), out_tx.clone());
        tokio::spawn(async move {
            while let Ok(x) = rx.recv_async().await {
                out_tx.send_async(work(x)).await.unwrap();
            }
        });
    }
    drop(out_tx);
    let mut t = (0, 0);
    while let Ok(x) = out_rx.recv_async().await {
        tally_add(&mut t, x);
    }
    t
}

async fn queue_flume_batches(n: u64, workers: usize) -> Tally {
    let (tx, rx) = flume::bounded::<Vec<u64>>(BATCHES);
    let (out_tx, out_rx) = flume::bounded::<Vec<u64>>(BATCHES);
    tokio::spawn(async move {
        let mut items = 0..n;
        loop {
            let batch: Vec<u64> = items.by_ref().take(BATCH).collect();
            if batch.is_empty() {
                return;
            }
            tx.send_async(batch).await.unwrap();
        }
    });
    for _ in 0..workers {
        let (rx, out_tx) = (rx.clone(), out_tx.clone());
        tokio::spawn(async move {
            while let Ok(mut batch) = rx.recv_async().await {
                batch.iter_mut().for_each(|x| *x += 1);
                out_tx.send_async(batch).await.unwrap();
            }
        });
    }
    drop(out_tx);
    let mut t = (0, 0);
    while let Ok(batch) = out_rx.recv_async().await {
        batch.into_iter().for_each(|x| tally_add(&mut t, x));
    }
    t
}

/// The per-item shared-channel baseline of earlier runs: a tokio mpsc
/// receiver behind a lock.
async fn queue_mpsc(n: u64, workers: usize) -> Tally {
    let (tx, rx) = mpsc::channel::<u64>(1024);
    let rx = Arc::new(Mutex::new(rx));
    let (out_tx, out_rx) = mpsc::channel::<u64>(1024);
    tokio::spawn(async move {
        for i in 0..n {
            tx.send(i).await.unwrap();
        }
    });
    for _ in 0..workers {
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

async fn queue_weft(n: u64, workers: usize, work: fn(u64) -> u64) -> Tally {
    let source = Arc::new(MemorySource::from_items(0..n));
    let config = QueueConfig::fixed(workers).unwrap();
    let WorkQueue {
        output, control, ..
    } = WorkQueue::spawn(
        source,
        move |x: u64| async move { Ok::<_, Infallible>(work(x)) },
        config,
    );
    let t = tally_flow(output.map(|(_, x)| x)).await;
    control.wait().await.unwrap();
    t
}

// ---- the harness ----

type Run = Box<dyn Fn(u64) -> futures::future::BoxFuture<'static, Tally>>;

/// A row of a group: its name, whether it is weft's (divided by the
/// baselines) or a baseline, how many items it moves and what must come
/// out.
struct Row {
    name: &'static str,
    weft: bool,
    n: u64,
    want: Tally,
    run: Run,
    /// Seconds of each round.
    times: Vec<f64>,
}

impl Row {
    /// Items per second in its fastest round and in its median one.
    fn rates(&self) -> (f64, f64) {
        let mut t = self.times.clone();
        t.sort_by(f64::total_cmp);
        let n = self.n as f64;
        match (t.first(), t.get(t.len() / 2)) {
            (Some(best), Some(median)) => (n / best, n / median),
            _ => (0.0, 0.0),
        }
    }
}

/// One group's table. Its rows are run in turn, `runs` rounds of every
/// row, so that a baseline and weft's rows meet the same moments of a
/// noisy machine; each row reports its fastest and its median round.
struct Group {
    title: &'static str,
    rows: Vec<Row>,
}

impl Group {
    fn new(title: &'static str) -> Group {
        Group {
            title,
            rows: Vec::new(),
        }
    }

    fn row<F, Fut>(mut self, weft: bool, name: &'static str, n: u64, want: Tally, run: F) -> Group
    where
        F: Fn(u64) -> Fut + 'static,
        Fut: Future<Output = Tally> + Send + 'static,
    {
        self.rows.push(Row {
            name,
            weft,
            n,
            want,
            run: Box::new(move |n| Box::pin(run(n))),
            times: Vec::new(),
        });
        self
    }

    fn baseline<F, Fut>(self, name: &'static str, n: u64, want: Tally, run: F) -> Group
    where
        F: Fn(u64) -> Fut + 'static,
        Fut: Future<Output = Tally> + Send + 'static,
    {
        self.row(false, name, n, want, run)
    }

    fn weft<F, Fut>(self, name: &'static str, n: u64, want: Tally, run: F) -> Group
    where
        F: Fn(u64) -> Fut + 'static,
        Fut: Future<Output = Tally> + Send + 'static,
    {
        self.row(true, name, n, want, run)
    }

    async fn run(mut self, runs: usize) {
        // `WEFT_BENCH_ROWS=work` keeps only the rows whose group title and
        // name, as `title / name`, hold it, or one of its `|`-separated
        // parts (for a profiler: `deep edges / copy(3), read in place` is
        // one row).
        if let Ok(only) = std::env::var("WEFT_BENCH_ROWS") {
            let title = self.title;
            self.rows.retain(|r| {
                let row = format!("{title} / {}", r.name);
                only.split('|').any(|o| row.contains(o))
            });
        }
        for _ in 0..runs {
            for row in &mut self.rows {
                let t = Instant::now();
                let got = (row.run)(row.n).await;
                let secs = t.elapsed().as_secs_f64();
                assert_eq!(got, row.want, "{}: count/checksum mismatch", row.name);
                row.times.push(secs);
            }
        }
        println!("\n### {}\n", self.title);
        println!(
            "| row | items | M items/s, best | median | weft ÷ each baseline, best / median |"
        );
        println!("|---|---:|---:|---:|---|");
        let baselines: Vec<(&str, (f64, f64))> = self
            .rows
            .iter()
            .filter(|r| !r.weft)
            .map(|r| (r.name, r.rates()))
            .collect();
        for row in &self.rows {
            let (best, median) = row.rates();
            let ratios = if row.weft {
                baselines
                    .iter()
                    .map(|(b, (bb, bm))| format!("{:.2} / {:.2} ({b})", best / bb, median / bm))
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                "—".into()
            };
            let name = if row.weft {
                format!("**weft: {}**", row.name)
            } else {
                format!("baseline: {}", row.name)
            };
            println!(
                "| {name} | {} | {:.2} | {:.2} | {ratios} |",
                row.n,
                best / 1e6,
                median / 1e6
            );
        }
    }
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
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let want_group = |g: &str| only.as_deref().is_none_or(|o| g.contains(o));
    let runs: usize = std::env::var("WEFT_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    println!(
        "Items per second, the best and the median of {runs} interleaved rounds \
         (WEFT_BENCH_RUNS); \
         2 worker threads."
    );
    let one = |n| expected(n, Some);
    let three = |n| {
        let t = expected(n, Some);
        (t.0 * 3, t.1.wrapping_mul(3))
    };
    let trivial = expected(QUEUE_N, |x| Some(x + 1));
    rt.block_on(async {
        if want_group("hop") {
            Group::new("One hop, edges of 1024 items (2 batches of 512)")
                .baseline("tokio mpsc of 2 batches of 512", N, one(N), |n| {
                    hop_mpsc_batches(n, BATCHES)
                })
                .weft("from_iter → boundary → for_each", N, one(N), |n| {
                    hop_weft_boundary(n, BATCHES)
                })
                .weft("channel, send_batch of 512", N, one(N), hop_weft_send_batch)
                .run(runs)
                .await;
            Group::new("One hop, edges of 1024 items (2 batches of 512), read by a task")
                .baseline("tokio mpsc of 2 batches of 512", N, one(N), |n| {
                    in_task(hop_mpsc_batches(n, BATCHES))
                })
                .baseline("bare channel of 2 batches of 512", N, one(N), |n| {
                    in_task(hop_bare_batches(n, BATCHES))
                })
                .weft("from_iter → boundary → for_each", N, one(N), |n| {
                    in_task(hop_weft_boundary(n, BATCHES))
                })
                .weft("channel, send_batch of 512", N, one(N), |n| {
                    in_task(hop_weft_send_batch(n))
                })
                .run(runs)
                .await;
            Group::new("One hop, deep edges of 32768 items (64 batches of 512)")
                .baseline("tokio mpsc of 64 batches of 512", N, one(N), |n| {
                    hop_mpsc_batches(n, DEEP)
                })
                .weft("from_iter → boundary → for_each", N, one(N), |n| {
                    hop_weft_boundary(n, DEEP)
                })
                .run(runs)
                .await;
            Group::new("One hop, one send per item, 1024 items")
                .baseline("tokio mpsc, per item", N_ITEM, one(N_ITEM), hop_mpsc)
                .baseline("flume, per item", N_ITEM, one(N_ITEM), hop_flume)
                .weft("channel, send per item", N_ITEM, one(N_ITEM), hop_weft_send)
                .run(runs)
                .await;
        }
        if want_group("copy") {
            Group::new("Copy to 3, edges of 1024 items (2 batches of 512)")
                .baseline(
                    "one shared Arc batch of 512 to 3 tokio mpsc of 2 batches",
                    N,
                    three(N),
                    |n| copy_shared_arc(n, BATCHES),
                )
                .baseline(
                    "one shared Arc batch of 512 to 3 bare channels of 2 batches",
                    N,
                    three(N),
                    |n| copy_bare(n, BATCHES),
                )
                .baseline("3 tokio mpsc, per item", N_ITEM, three(N_ITEM), copy_mpsc)
                .weft("copy(3), read in place", N, three(N), |n| {
                    copy_weft(n, BATCHES, true)
                })
                .weft("copy(3), each item owned", N, three(N), |n| {
                    copy_weft(n, BATCHES, false)
                })
                .run(runs)
                .await;
            Group::new("Copy to 3, deep edges of 32768 items (64 batches of 512)")
                .baseline(
                    "one shared Arc batch of 512 to 3 tokio mpsc of 64 batches",
                    N,
                    three(N),
                    |n| copy_shared_arc(n, DEEP),
                )
                .weft("copy(3), read in place", N, three(N), |n| {
                    copy_weft(n, DEEP, true)
                })
                .weft("copy(3), each item owned", N, three(N), |n| {
                    copy_weft(n, DEEP, false)
                })
                .run(runs)
                .await;
        }
        if want_group("pipeline") {
            Group::new("map → filter → split(2) → merge, edges of 1024 items")
                .baseline(
                    "one fused loop, one task",
                    N,
                    pipeline_want(N),
                    pipeline_fused,
                )
                .baseline(
                    "task per stage, batches of 512",
                    N,
                    pipeline_want(N),
                    pipeline_mpsc_batches,
                )
                .baseline(
                    "task per stage, per item",
                    N_ITEM,
                    pipeline_want(N_ITEM),
                    pipeline_mpsc,
                )
                .weft(
                    "fused stages + split + merge",
                    N,
                    pipeline_want(N),
                    pipeline_weft,
                )
                .run(runs)
                .await;
        }
        if want_group("queue") {
            Group::new("Work queue, trivial worker")
                .baseline("flume, 2 workers, batches of 512", QUEUE_N, trivial, |n| {
                    queue_flume_batches(n, 2)
                })
                .baseline("flume, 2 workers, per item", QUEUE_N, trivial, |n| {
                    queue_flume(n, 2, plus_one)
                })
                .baseline("flume, 1 worker, per item", QUEUE_N, trivial, |n| {
                    queue_flume(n, 1, plus_one)
                })
                .baseline(
                    "tokio mpsc behind a lock, 2 workers",
                    QUEUE_N,
                    trivial,
                    |n| queue_mpsc(n, 2),
                )
                .weft("work queue, 2 workers", QUEUE_N, trivial, |n| {
                    queue_weft(n, 2, plus_one)
                })
                .weft("work queue, 1 worker", QUEUE_N, trivial, |n| {
                    queue_weft(n, 1, plus_one)
                })
                .run(runs)
                .await;
        }
        if want_group("queue") {
            let want = expected(QUEUE_CPU_N, |x| Some(spin(x)));
            Group::new("Work queue, about 1 µs of work per item: 1 → 2 workers")
                .baseline("flume, 1 worker", QUEUE_CPU_N, want, |n| {
                    queue_flume(n, 1, spin)
                })
                .baseline("flume, 2 workers", QUEUE_CPU_N, want, |n| {
                    queue_flume(n, 2, spin)
                })
                .weft("work queue, 1 worker", QUEUE_CPU_N, want, |n| {
                    queue_weft(n, 1, spin)
                })
                .weft("work queue, 2 workers", QUEUE_CPU_N, want, |n| {
                    queue_weft(n, 2, spin)
                })
                .run(runs)
                .await;
        }
    });
}
