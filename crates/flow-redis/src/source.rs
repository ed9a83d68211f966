//! A work-queue source over a Redis stream's consumer group.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Value;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weft_core::{Backoff, Classify, ErrorClass};
use weft_flow::queue::{Item, Source};

use crate::codec::{Codec, Json};
use crate::config::{StartAt, StreamConfig, slot_prefix};
use crate::reply::{self, Entry};
use crate::scripts::Scripts;
use crate::{StreamError, StreamId};

/// How long connecting and a non-blocking command may take.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The most acknowledgements sent in one script call.
const ACK_BATCH: usize = 1024;
/// Commit batches in flight at once, each with its own receipt.
const LANES: usize = 2;

/// Counters of what a source has done, for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SourceStats {
    /// Entries handed to workers (new and reclaimed).
    pub delivered: u64,
    /// Entries taken over from consumers that left them idle.
    pub reclaimed: u64,
    /// Acknowledgements applied.
    pub acked: u64,
    /// Acknowledgements refused: the entry had been taken over.
    pub refused: u64,
    /// Entries this source moved to the dead-letter stream (delivered too
    /// often, or a payload that does not decode).
    pub dead_lettered: u64,
}

/// A [`Source`] of work items from a Redis stream, shared by every
/// process whose source names the same stream and group: each entry goes
/// to one consumer at a time, an entry a consumer left unacknowledged for
/// [`claim_idle`](StreamConfig::claim_idle) is taken over by another, and
/// an acknowledgement applies only if this consumer still holds the entry
/// at the delivery it was given (so a consumer paused past the idle time
/// cannot acknowledge what another has taken over: the queue then
/// discards its late result).
///
/// ```text
///  XADD ──▶ stream ──XREADGROUP──▶ this consumer ──fenced ack──▶ done
///              │                       │ idle > claim_idle
///              │                       ▼
///              └────XCLAIM (idle)──▶ another consumer (delivery n + 1)
///                  n > max_deliveries ──▶ <stream>:dead
/// ```
///
/// Entries hold their payload in one field (default `d`), encoded by the
/// [`Codec`] (JSON by default); an entry whose payload does not decode is
/// moved to the dead-letter stream with its raw fields, as permanent.
/// Acknowledgements from all workers are sent together, one script call
/// per batch, two batches in flight at a time.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use weft_flow::queue::{QueueConfig, WorkQueue};
/// use weft_flow_redis::{StreamConfig, StreamSource};
///
/// let source: StreamSource<String> =
///     StreamSource::connect("redis://127.0.0.1:6379", "photos", "resizers", StreamConfig::new())
///         .await?;
/// let worker = |name: String| async move { Ok::<_, weft_core::Cause>(name.len()) };
/// let queue = WorkQueue::spawn(Arc::new(source), worker, QueueConfig::fixed(8)?);
/// # let _ = queue; Ok(()) }
/// ```
pub struct StreamSource<T, C = Json> {
    inner: Arc<Inner<T, C>>,
    fetcher: JoinHandle<()>,
}

struct Inner<T, C> {
    url: String,
    stream: String,
    dead: String,
    /// Each commit lane's receipt.
    receipts: [String; LANES],
    /// This consumer's fence record (see the scripts module).
    fence: String,
    /// Whether a read has succeeded (until then, a read makes the fence
    /// record if there is none).
    read_once: AtomicBool,
    group: String,
    consumer: String,
    config: StreamConfig,
    codec: C,
    scripts: Scripts,
    conn: ConnectionManager,
    buffer: Mutex<VecDeque<Item<T, StreamId>>>,
    /// Delivery count of each entry this source holds, by id.
    held: Mutex<HashMap<StreamId, u64>>,
    in_hand: AtomicUsize,
    closed: AtomicBool,
    ready: Notify,
    room: Notify,
    acks: Mutex<AckQueue>,
    /// Numbers commit batches, for the receipt a retry reads.
    batches: AtomicU64,
    output: std::sync::OnceLock<Output>,
    backlog: AtomicUsize,
    counters: Arc<Counters>,
    _payload: PhantomData<fn() -> T>,
}

/// What a source has done, shared with its [`SourceCounters`].
#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    reclaimed: AtomicU64,
    acked: AtomicU64,
    refused: AtomicU64,
    dead_lettered: AtomicU64,
}

/// A handle on a source's counters that outlives handing the source to a
/// queue or a stage.
#[derive(Debug, Clone)]
pub struct SourceCounters(Arc<Counters>);

impl SourceCounters {
    /// What the source has done so far.
    pub fn stats(&self) -> SourceStats {
        let c = &self.0;
        SourceStats {
            delivered: c.delivered.load(Ordering::Relaxed),
            reclaimed: c.reclaimed.load(Ordering::Relaxed),
            acked: c.acked.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
        }
    }
}

struct AckQueue {
    pending: Vec<Pending>,
    /// Lanes with no batch in flight.
    free: Vec<usize>,
}

/// One commit waiting for its batch.
pub(crate) struct Pending {
    id: StreamId,
    deliveries: u64,
    op: Commit,
    done: oneshot::Sender<bool>,
}

/// What committing an entry does besides acknowledging it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Commit {
    /// Nothing else.
    Ack,
    /// Appends these payloads, each to the output stream of its index.
    Outputs(Vec<(u32, Vec<u8>)>),
    /// Appends a dead letter for the entry.
    Dead { reason: String, class: ErrorClass },
}

/// Where a stage's outputs go.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    /// The output streams, by index.
    pub(crate) streams: Vec<String>,
    pub(crate) field: String,
    pub(crate) trim: (&'static str, &'static str, String),
}

impl<T> StreamSource<T, Json>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    /// Connects to `url`, creates the group on `stream` if it is missing
    /// (creating the stream too), and starts reading; payloads are JSON.
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for an empty stream or group name,
    /// [`StreamError::Redis`] if Redis cannot be reached or refuses the
    /// group (a key of another type under the stream's name).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: creating a group twice is harmless.
    pub async fn connect(
        url: &str,
        stream: &str,
        group: &str,
        config: StreamConfig,
    ) -> Result<Self, StreamError> {
        StreamSource::with_codec(url, stream, group, config, Json).await
    }
}

impl<T, C> StreamSource<T, C>
where
    T: Send + 'static,
    C: Codec<T>,
{
    /// As [`connect`](StreamSource::connect), with payloads through
    /// `codec`.
    ///
    /// # Errors
    ///
    /// As [`connect`](StreamSource::connect).
    ///
    /// # Cancel safety
    ///
    /// As [`connect`](StreamSource::connect).
    pub async fn with_codec(
        url: &str,
        stream: &str,
        group: &str,
        config: StreamConfig,
        codec: C,
    ) -> Result<Self, StreamError> {
        if stream.is_empty() {
            return Err(StreamError::invalid("stream", stream, "a non-empty name"));
        }
        if group.is_empty() {
            return Err(StreamError::invalid("group", group, "a non-empty name"));
        }
        let (conn, node) = connect_for(url, stream, TIMEOUT).await?;
        // Reads wait up to `block` on their own connection, so that
        // acknowledgements never queue behind them.
        let reader = connect(&node, config.block + TIMEOUT).await?;
        let url = node.as_str();
        let start = match config.start {
            StartAt::Beginning => "0",
            StartAt::New => "$",
        };
        let created: Result<Value, _> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream)
            .arg(group)
            .arg(start)
            .arg("MKSTREAM")
            .query_async(&mut conn.clone())
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(StreamError::redis(url, e)),
        }
        let consumer = config.consumer.clone().unwrap_or_else(unique_name);
        let dead = config
            .dead_stream
            .clone()
            .unwrap_or_else(|| format!("{}:dead", slot_prefix(stream)));
        let inner = Arc::new(Inner {
            url: url.to_string(),
            stream: stream.to_string(),
            receipts: std::array::from_fn(|lane| {
                format!("{}:receipts:{consumer}:{lane}", slot_prefix(stream))
            }),
            fence: format!("{}{consumer}", fence_prefix(stream)),
            read_once: AtomicBool::new(false),
            dead,
            group: group.to_string(),
            consumer,
            config,
            codec,
            scripts: Scripts::new(),
            conn,
            buffer: Mutex::new(VecDeque::new()),
            held: Mutex::new(HashMap::new()),
            in_hand: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            ready: Notify::new(),
            room: Notify::new(),
            acks: Mutex::new(AckQueue {
                pending: Vec::new(),
                free: (0..LANES).rev().collect(),
            }),
            // From the clock, so that a consumer name reused after a restart
            // never meets its earlier life's receipt under the same number.
            batches: AtomicU64::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64),
            ),
            output: std::sync::OnceLock::new(),
            backlog: AtomicUsize::new(0),
            counters: Arc::default(),
            _payload: PhantomData,
        });
        let fetcher = tokio::spawn(inner.clone().fetch(reader));
        Ok(StreamSource { inner, fetcher })
    }

    /// This source's consumer name in the group.
    pub fn consumer(&self) -> &str {
        &self.inner.consumer
    }

    /// The dead-letter stream.
    pub fn dead_stream(&self) -> &str {
        &self.inner.dead
    }

    /// What this source has done so far.
    pub fn stats(&self) -> SourceStats {
        self.counters().stats()
    }

    /// A handle on this source's counters, to read them after the source
    /// went to a queue or a stage.
    pub fn counters(&self) -> SourceCounters {
        SourceCounters(self.inner.counters.clone())
    }

    /// Routes a stage's outputs to `output`; `false` if outputs already
    /// go elsewhere.
    pub(crate) fn set_output(&self, output: Output) -> bool {
        self.inner.output.set(output).is_ok()
    }

    /// Commits entry `id`: acknowledges it and does `op` in the same step,
    /// if this source still holds it at the delivery it handed out;
    /// `false` otherwise (the caller's result must be discarded).
    pub(crate) async fn commit(&self, id: StreamId, op: Commit) -> bool {
        let inner = &self.inner;
        let deliveries = lock(&inner.held).remove(&id);
        // Only a closed source's takers wait for the entries in hand to
        // come back: wake them then, not on every commit.
        if inner.in_hand.fetch_sub(1, Ordering::AcqRel) == 1 && inner.closed.load(Ordering::Acquire)
        {
            inner.ready.notify_waiters();
        }
        let Some(deliveries) = deliveries else {
            return false;
        };
        let (done, rx) = oneshot::channel();
        let start = {
            let mut q = lock(&inner.acks);
            q.pending.push(Pending {
                id,
                deliveries,
                op,
                done,
            });
            q.free.pop()
        };
        if let Some(lane) = start {
            tokio::spawn(inner.clone().flush_acks(lane));
        }
        rx.await.unwrap_or(false)
    }

    /// Up to `max` entries (at least one) from the buffer, waiting while
    /// it is empty; none once the source is closed and nothing it handed
    /// out can come back.
    async fn take(&self, max: usize) -> Vec<Item<T, StreamId>> {
        let inner = &self.inner;
        loop {
            let ready = inner.ready.notified();
            let taken: Vec<Item<T, StreamId>> = {
                let mut buffer = inner.lock_buffer();
                let n = max.max(1).min(buffer.len());
                buffer.drain(..n).collect()
            };
            if !taken.is_empty() {
                inner.in_hand.fetch_add(taken.len(), Ordering::AcqRel);
                inner.room.notify_one();
                return taken;
            }
            if inner.closed.load(Ordering::Acquire)
                && inner.in_hand.load(Ordering::Acquire) == 0
                && inner.lock_buffer().is_empty()
            {
                inner.ready.notify_waiters();
                return taken;
            }
            ready.await;
        }
    }

    /// Stops reading: entries not handed out stay in the stream for other
    /// consumers (or are reclaimed), and the source ends once the entries
    /// it handed out are acknowledged or given back.
    pub fn close(&self) {
        self.inner.close();
    }
}

impl<T, C> Drop for StreamSource<T, C> {
    fn drop(&mut self) {
        self.fetcher.abort();
    }
}

impl<T, C> std::fmt::Debug for StreamSource<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSource")
            .field("url", &self.inner.url)
            .field("stream", &self.inner.stream)
            .field("group", &self.inner.group)
            .field("consumer", &self.inner.consumer)
            .finish_non_exhaustive()
    }
}

impl<T, C> Source<T> for StreamSource<T, C>
where
    T: Send + 'static,
    C: Codec<T>,
{
    type Id = StreamId;

    async fn next(&self) -> Option<Item<T, StreamId>> {
        self.take(1).await.pop()
    }

    async fn next_batch(&self, max: usize) -> Vec<Item<T, StreamId>> {
        self.take(max).await
    }

    async fn ack(&self, id: StreamId) -> bool {
        self.commit(id, Commit::Ack).await
    }

    /// All at once: the commits of a batch share the script calls of the
    /// commit lanes.
    async fn ack_batch(&self, ids: Vec<StreamId>) -> Vec<bool> {
        futures::future::join_all(ids.into_iter().map(|id| self.commit(id, Commit::Ack))).await
    }

    async fn nack(&self, item: Item<T, StreamId>) {
        let inner = &self.inner;
        inner.lock_buffer().push_front(item);
        inner.in_hand.fetch_sub(1, Ordering::AcqRel);
        inner.ready.notify_one();
    }

    fn arrived(&self) -> u64 {
        self.inner.counters.delivered.load(Ordering::Relaxed)
    }

    fn backlog(&self) -> Option<usize> {
        Some(self.inner.backlog.load(Ordering::Relaxed) + self.inner.lock_buffer().len())
    }
}

impl<T, C> Inner<T, C>
where
    T: Send + 'static,
    C: Codec<T>,
{
    fn lock_buffer(&self) -> std::sync::MutexGuard<'_, VecDeque<Item<T, StreamId>>> {
        lock(&self.buffer)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.ready.notify_waiters();
        self.room.notify_waiters();
    }

    /// Reads new entries and reclaims idle ones into the buffer, holding
    /// at most one batch no worker has taken, until the source closes.
    async fn fetch(self: Arc<Self>, mut reader: ConnectionManager) {
        // Scans a quarter of the idle time apart: an orphaned entry is
        // taken over within 1.25 × the idle time.
        let claim_every = (self.config.claim_idle / 4).max(Duration::from_millis(1));
        let reclaims = self.config.claim_idle < weft_core::time::FOREVER;
        let mut last_claim: Option<Instant> = None;
        let mut cursor = "-".to_string();
        let mut quiet_since = Instant::now();
        let retry = Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1))
            .and_then(|b| b.with_jitter(0.5))
            .unwrap_or(Backoff::constant(Duration::from_millis(100)));
        let mut failures = 0u32;
        while !self.closed.load(Ordering::Acquire) {
            let room = self.room.notified();
            if self.lock_buffer().len() >= self.config.batch {
                room.await;
                continue;
            }
            let mut got = 0;
            let result: Result<(), StreamError> = async {
                if reclaims && last_claim.is_none_or(|t| t.elapsed() >= claim_every) {
                    let (next, n) = self.reclaim(&cursor).await?;
                    cursor = next;
                    got += n;
                    last_claim = Some(Instant::now());
                    self.refresh_backlog().await?;
                }
                got += self.read_new(&mut reader).await?;
                Ok(())
            }
            .await;
            match result {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(stream = %self.stream, error = %e, "stream read failed; retrying");
                    tokio::time::sleep(retry.delay(failures, self.stream.len() as u64)).await;
                }
            }
            if got > 0 {
                quiet_since = Instant::now();
            } else if let Some(idle) = self.config.close_when_idle
                && quiet_since.elapsed() >= idle
            {
                self.close();
            }
        }
    }

    /// `XREADGROUP … >`: new entries, delivery 1, counted in the fence
    /// record in the same transaction; if there are none, waits up to
    /// `block` for the stream to grow.
    async fn read_new(&self, reader: &mut ConnectionManager) -> Result<usize, StreamError> {
        let init = if self.read_once.load(Ordering::Relaxed) {
            "0"
        } else {
            "1"
        };
        let mut tx = redis::pipe();
        tx.atomic()
            .cmd("EVAL")
            .arg(&self.scripts.read_before)
            .arg(2)
            .arg(&self.stream)
            .arg(&self.fence)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(init)
            .ignore()
            .cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(self.config.batch)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(">")
            .cmd("EVAL")
            .arg(&self.scripts.read_after)
            .arg(2)
            .arg(&self.stream)
            .arg(&self.fence)
            .arg(&self.group)
            .arg(&self.consumer);
        let (reply, last): (Value, String) = tx
            .query_async(reader)
            .await
            .map_err(|e| StreamError::redis(&self.url, e))?;
        self.read_once.store(true, Ordering::Relaxed);
        let entries = reply::read_group(&reply)?;
        let n = entries.len();
        for entry in entries {
            self.take(entry, 1).await?;
        }
        if n == 0 && !self.closed.load(Ordering::Acquire) {
            // Nothing new: wait for an entry after the stream's last one
            // (XREAD delivers nothing to the group).
            let from = if last.is_empty() { "$" } else { last.as_str() };
            let _: Value = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1)
                .arg("BLOCK")
                .arg(self.config.block.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.stream)
                .arg(from)
                .query_async(reader)
                .await
                .map_err(|e| StreamError::redis(&self.url, e))?;
        }
        Ok(n)
    }

    /// Claims entries left idle at other consumers; returns the next
    /// cursor and the entries taken.
    async fn reclaim(&self, cursor: &str) -> Result<(String, usize), StreamError> {
        let idle = u64::try_from(self.config.claim_idle.as_millis()).unwrap_or(u64::MAX);
        let reply: Value = self
            .scripts
            .reclaim
            .key(&self.stream)
            .key(&self.dead)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(idle)
            .arg(cursor)
            .arg(self.config.batch)
            .arg(self.config.max_deliveries)
            .arg(fence_prefix(&self.stream))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| StreamError::redis(&self.url, e))?;
        let reply::Reclaimed {
            cursor: next,
            claimed,
            dead,
        } = reply::reclaimed(&reply)?;
        self.counters
            .dead_lettered
            .fetch_add(dead, Ordering::Relaxed);
        let n = claimed.len();
        for (entry, deliveries) in claimed {
            self.counters.reclaimed.fetch_add(1, Ordering::Relaxed);
            self.take(entry, deliveries).await?;
        }
        Ok((next, n))
    }

    /// Decodes an entry into the buffer, or dead-letters it.
    async fn take(&self, entry: Entry, deliveries: u64) -> Result<(), StreamError> {
        let decoded = match entry.field(&self.config.field) {
            Some(bytes) => self.codec.decode(bytes),
            None => Err(format!("no field {:?}", self.config.field)),
        };
        match decoded {
            Ok(payload) => {
                lock(&self.held).insert(entry.id, deliveries);
                self.lock_buffer().push_back(Item {
                    id: entry.id,
                    payload,
                });
                self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                self.ready.notify_one();
                Ok(())
            }
            Err(why) => {
                let moved: i64 = self
                    .scripts
                    .dead_letter
                    .key(&self.stream)
                    .key(&self.dead)
                    .key(&self.fence)
                    .arg(&self.group)
                    .arg(&self.consumer)
                    .arg(entry.id.to_string())
                    .arg(deliveries)
                    .arg(format!("payload does not decode: {why}"))
                    .arg("permanent")
                    .invoke_async(&mut self.conn.clone())
                    .await
                    .map_err(|e| StreamError::redis(&self.url, e))?;
                if moved == 1 {
                    self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                }
                tracing::warn!(stream = %self.stream, id = %entry.id, %why, "undecodable entry dead-lettered");
                Ok(())
            }
        }
    }

    /// The group's entries not yet read plus those pending at consumers
    /// (`XINFO GROUPS`: lag and pending).
    async fn refresh_backlog(&self) -> Result<(), StreamError> {
        let reply: Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.stream)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| StreamError::redis(&self.url, e))?;
        if let Some(n) = reply::group_backlog(&reply, &self.group) {
            let ours = lock(&self.held).len() as u64;
            let backlog = n.saturating_sub(ours);
            self.backlog.store(
                usize::try_from(backlog).unwrap_or(usize::MAX),
                Ordering::Relaxed,
            );
        }
        Ok(())
    }

    /// Sends the waiting acknowledgements, a batch at a time, until none
    /// wait.
    async fn flush_acks(self: Arc<Self>, lane: usize) {
        loop {
            let batch = {
                let mut q = lock(&self.acks);
                if q.pending.is_empty() {
                    q.free.push(lane);
                    return;
                }
                let take = q.pending.len().min(ACK_BATCH);
                q.pending.drain(..take).collect::<Vec<_>>()
            };
            // A lane's batches go one at a time, and each is settled (or
            // given up) before the next: the next one's receipt replaces it.
            let number = self.batches.fetch_add(1, Ordering::Relaxed);
            let results = self.commit_batch(&batch, number, lane).await;
            for (pending, ok) in batch.into_iter().zip(results) {
                if ok {
                    self.counters.acked.fetch_add(1, Ordering::Relaxed);
                    if matches!(pending.op, Commit::Dead { .. }) {
                        self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    self.counters.refused.fetch_add(1, Ordering::Relaxed);
                }
                let _ = pending.done.send(ok);
            }
        }
    }

    /// One batch through the commit script, retried with the same batch
    /// `number` while its outcome is unknown, up to the ack timeout.
    async fn commit_batch(&self, batch: &[Pending], number: u64, lane: usize) -> Vec<bool> {
        let deadline = Instant::now() + weft_core::time::capped(self.config.ack_timeout);
        let retry = Backoff::exponential(Duration::from_millis(5), Duration::from_millis(500))
            .and_then(|b| b.with_jitter(0.5))
            .unwrap_or(Backoff::constant(Duration::from_millis(50)));
        // The entries in the script's three runs: plain acknowledgements,
        // dead letters, outputs.
        let order = runs(batch);
        let count = |kind: u8| batch.iter().filter(|p| rank(&p.op) == kind).count();
        let (acks, deads) = (count(0), count(1));
        let mut tries = 0u32;
        loop {
            tries += 1;
            let no_output = Output {
                streams: Vec::new(),
                field: String::new(),
                trim: ("", "", String::new()),
            };
            let output = self.output.get().unwrap_or(&no_output);
            let mut call = self.scripts.commit.key(&self.stream);
            call.key(&self.receipts[lane])
                .key(&self.dead)
                .key(&self.fence);
            for stream in &output.streams {
                call.key(stream);
            }
            call.arg(&self.group)
                .arg(&self.consumer)
                .arg(number)
                .arg(&output.field)
                .arg(output.trim.0)
                .arg(output.trim.1)
                .arg(&output.trim.2);
            // The batch's id range, for the one pending-entries read.
            let lo = batch.iter().map(|p| p.id).min().unwrap_or_default();
            let hi = batch.iter().map(|p| p.id).max().unwrap_or_default();
            call.arg(lo.to_string()).arg(hi.to_string());
            call.arg(acks).arg(deads);
            let paired = output.streams.len() > 1;
            for &i in &order {
                let p = &batch[i];
                call.arg(p.id.to_string()).arg(p.deliveries);
                match &p.op {
                    Commit::Ack => {}
                    Commit::Dead { reason, class } => {
                        let class = match class {
                            ErrorClass::Transient => "transient",
                            ErrorClass::Permanent => "permanent",
                        };
                        call.arg(reason).arg(class);
                    }
                    Commit::Outputs(payloads) => {
                        call.arg(payloads.len());
                        for (target, payload) in payloads {
                            if paired {
                                call.arg(*target);
                            }
                            call.arg(payload.as_slice());
                        }
                    }
                }
            }
            let reply: Result<Vec<u8>, _> = call.invoke_async(&mut self.conn.clone()).await;
            match reply {
                Ok(flags) if flags.len() == batch.len() => {
                    let mut results = vec![false; batch.len()];
                    for (&i, flag) in order.iter().zip(flags) {
                        results[i] = flag == b'1';
                    }
                    return results;
                }
                Ok(flags) => {
                    tracing::error!(
                        sent = batch.len(),
                        got = flags.len(),
                        "commit answered the wrong count"
                    );
                    return vec![false; batch.len()];
                }
                Err(e) => {
                    if e.class() == ErrorClass::Permanent || Instant::now() >= deadline {
                        tracing::error!(stream = %self.stream, error = %e, "acknowledgement not settled; results discarded");
                        return vec![false; batch.len()];
                    }
                    tokio::time::sleep(retry.delay(tries, batch.len() as u64)).await;
                }
            }
        }
    }
}

/// The names of a stream's fence records, less the consumer's name.
fn fence_prefix(stream: &str) -> String {
    format!("{}:fence:", slot_prefix(stream))
}

/// The run of the commit script an entry goes in.
fn rank(op: &Commit) -> u8 {
    match op {
        Commit::Ack => 0,
        Commit::Dead { .. } => 1,
        Commit::Outputs(_) => 2,
    }
}

/// The batch's indices in the commit script's order: plain
/// acknowledgements, then dead letters, then outputs.
fn runs(batch: &[Pending]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by_key(|&i| rank(&batch[i].op));
    order
}

fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection to the node that serves `key`: on Redis Cluster the master
/// owning `key`'s hash slot (every key a stream's scripts touch is in that
/// slot), else `url`'s server. Returns the connection and the node's URL.
pub(crate) async fn connect_for(
    url: &str,
    key: &str,
    response: Duration,
) -> Result<(ConnectionManager, String), StreamError> {
    let mut seed = connect(url, response).await?;
    let slot: Result<i64, _> = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut seed)
        .await;
    let Ok(slot) = slot else {
        // "cluster support disabled": one server.
        return Ok((seed, url.to_string()));
    };
    let ranges: Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut seed)
        .await
        .map_err(|e| StreamError::redis(url, e))?;
    let owner = reply::slot_owner(&ranges, slot).ok_or_else(|| StreamError::BadReply {
        what: "CLUSTER SLOTS (no master for the stream's slot)",
        reply: format!("{ranges:?}"),
    })?;
    let node = node_url(url, &owner);
    if node == url {
        return Ok((seed, node));
    }
    Ok((connect(&node, response).await?, node))
}

/// `url` with its host and port replaced by `host_port` (credentials and
/// options kept).
fn node_url(url: &str, host_port: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
    let (auth, rest) = match rest.rsplit_once('@') {
        Some((auth, rest)) => (format!("{auth}@"), rest),
        None => (String::new(), rest),
    };
    let tail = rest.find('/').map_or("", |i| &rest[i..]);
    format!("{scheme}://{auth}{host_port}{tail}")
}

pub(crate) async fn connect(
    url: &str,
    response: Duration,
) -> Result<ConnectionManager, StreamError> {
    let client = redis::Client::open(url).map_err(|e| StreamError::redis(url, e))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(response))
        .set_number_of_retries(2);
    tokio::time::timeout(
        TIMEOUT * 4,
        client.get_connection_manager_with_config(config),
    )
    .await
    .map_err(|_| StreamError::Redis {
        url: url.to_string(),
        reason: format!("no answer within {:?}", TIMEOUT * 4),
        cause: weft_core::Cause::transient("connect timed out"),
    })?
    .map_err(|e| StreamError::redis(url, e))
}

/// A consumer or producer name no other shares: the process id, the time
/// and a counter.
pub(crate) fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!(
        "weft-{}-{:x}-{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_url_keeps_credentials_and_options() {
        assert_eq!(
            node_url("redis://:pw@10.0.0.1:6379/0", "10.0.0.2:7000"),
            "redis://:pw@10.0.0.2:7000/0"
        );
        assert_eq!(node_url("redis://h:1", "h:2"), "redis://h:2");
        assert_eq!(node_url("rediss://u:p@h:1", "g:3"), "rediss://u:p@g:3");
    }

    /// A batch whose first try applied but whose reply was lost is retried:
    /// the retry must report the entries the first try acknowledged (the
    /// receipt), not refuse them because they are no longer pending.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retried_batch_reports_what_its_lost_first_try_acknowledged() {
        let Some(redis) = weft_test::redis().await else {
            return;
        };
        let client = redis::Client::open(redis.url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        for i in 0..3 {
            let _: String = redis::cmd("XADD")
                .arg("r")
                .arg("*")
                .arg("d")
                .arg(i)
                .query_async(&mut c)
                .await
                .unwrap();
        }
        let config = StreamConfig::new()
            .block(Duration::from_millis(20))
            .unwrap();
        let source: StreamSource<u64> = StreamSource::connect(&redis.url(), "r", "g", config)
            .await
            .unwrap();
        let mut batch = Vec::new();
        for _ in 0..3 {
            let item = source.next().await.unwrap();
            let deliveries = lock(&source.inner.held)[&item.id];
            batch.push(Pending {
                id: item.id,
                deliveries,
                op: Commit::Ack,
                done: oneshot::channel().0,
            });
        }
        // Another client takes the third entry over: refused both times.
        let _: Value = redis::cmd("XCLAIM")
            .arg("r")
            .arg("g")
            .arg("other")
            .arg(0)
            .arg(batch[2].id.to_string())
            .query_async(&mut c)
            .await
            .unwrap();
        let inner = &source.inner;
        assert_eq!(inner.commit_batch(&batch, 1, 0).await, [true, true, false]);
        // The retry of that batch (the same number) reads its receipt.
        assert_eq!(inner.commit_batch(&batch, 1, 0).await, [true, true, false]);
        // The next batch replaces the receipt: the same ids are no longer ours.
        assert_eq!(inner.commit_batch(&batch[..2], 2, 0).await, [false, false]);
    }
}
