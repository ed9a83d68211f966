//! The flow: a stream of item batches between stages, with sources, fused
//! per-item stages and sinks.

use futures::stream::{BoxStream, StreamExt};

use crate::FlowError;
use crate::batch::Batch;
use crate::edge::{EdgeRx, EdgeTx, Msg, Probe, edge, unbox};

/// Buffer and batch sizes of a flow.
///
/// With serde: `{"capacity": 1024, "batch": 512}`, either optional (the
/// default's), validated as [`FlowConfig::new`] validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "FlowConfigFile", into = "FlowConfigFile")]
pub struct FlowConfig {
    pub(crate) capacity: usize,
    pub(crate) batch: usize,
}

impl FlowConfig {
    /// The largest edge capacity, in items (2³⁰): an edge's buffer is
    /// memory.
    pub const MAX_CAPACITY: usize = 1 << 30;

    /// Edges hold up to `capacity` items; items move in batches of up to
    /// `batch`.
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] if either is zero, `batch` exceeds
    /// `capacity`, or `capacity` is above
    /// [`MAX_CAPACITY`](FlowConfig::MAX_CAPACITY).
    pub fn new(capacity: usize, batch: usize) -> Result<Self, FlowError> {
        if capacity == 0 {
            return Err(FlowError::invalid(
                "capacity",
                capacity,
                "an edge holds at least one item",
            ));
        }
        if capacity > FlowConfig::MAX_CAPACITY {
            return Err(FlowError::invalid(
                "capacity",
                capacity,
                format!("at most {} items per edge", FlowConfig::MAX_CAPACITY),
            ));
        }
        if batch == 0 || batch > capacity {
            return Err(FlowError::invalid(
                "batch size",
                batch,
                format!("1 to {capacity} (the capacity)"),
            ));
        }
        Ok(FlowConfig { capacity, batch })
    }

    /// The capacity of each edge, in items.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The batch size.
    pub fn batch(&self) -> usize {
        self.batch
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlowConfigFile {
    capacity: Option<usize>,
    batch: Option<usize>,
}

/// The file form of a [`FlowConfig`].
impl TryFrom<FlowConfigFile> for FlowConfig {
    type Error = FlowError;
    fn try_from(f: FlowConfigFile) -> Result<FlowConfig, FlowError> {
        let d = FlowConfig::default();
        FlowConfig::new(f.capacity.unwrap_or(d.capacity), f.batch.unwrap_or(d.batch))
    }
}

impl From<FlowConfig> for FlowConfigFile {
    fn from(c: FlowConfig) -> FlowConfigFile {
        FlowConfigFile {
            capacity: Some(c.capacity),
            batch: Some(c.batch),
        }
    }
}

impl Default for FlowConfig {
    /// 1024 items per edge, batches of 512: the capacity bounds memory, and
    /// half of it per batch keeps two batches in flight, so a writer fills
    /// one while the reader drains the other.
    fn default() -> Self {
        FlowConfig {
            capacity: 1024,
            batch: 512,
        }
    }
}

/// A stream of items flowing between stages.
///
/// Items move in batches; per-item stages ([`map`](Flow::map),
/// [`filter`](Flow::filter), [`inspect`](Flow::inspect)) fuse into the
/// stage that pulls them (no task, no channel), and fan-out stages
/// ([`copy`](Flow::copy), [`split`](Flow::split), [`shard`](Flow::shard))
/// run one task that pushes into bounded edges.
///
/// # Backpressure
///
/// Every edge holds at most the configured capacity, counted in items; a
/// stage that cannot push waits, and so does everything upstream of it.
/// Completion flows as the end of the stream; a failure flows as an error
/// item and ends the stream.
pub struct Flow<T> {
    pub(crate) stream: BoxStream<'static, Msg<T>>,
    pub(crate) config: FlowConfig,
    pub(crate) probe: Option<Probe>,
}

impl<T> std::fmt::Debug for Flow<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("config", &self.config)
            .field("buffered", &self.buffered())
            .finish_non_exhaustive()
    }
}

/// Feeds items into a flow made by [`channel`]. Dropping every sender
/// completes the flow.
#[derive(Debug)]
pub struct FlowSender<T> {
    tx: EdgeTx<T>,
}

impl<T> Clone for FlowSender<T> {
    fn clone(&self) -> Self {
        FlowSender {
            tx: self.tx.clone(),
        }
    }
}

impl<T> FlowSender<T> {
    /// Sends one item, waiting while the flow's first edge is full.
    /// `false` if the flow was dropped.
    ///
    /// # Cancel safety
    ///
    /// If dropped while waiting, the item was not sent.
    pub async fn send(&self, item: T) -> bool {
        self.tx.send_one(item).await
    }

    /// Sends a batch of items.
    ///
    /// # Cancel safety
    ///
    /// If dropped while waiting, part of the batch may have been sent.
    pub async fn send_batch(&self, items: Vec<T>) -> bool {
        self.tx.send(items).await
    }

    /// Ends the flow with a failure.
    pub fn fail(&self, error: FlowError) {
        self.tx.fail(Box::new(error));
    }
}

/// A flow fed by hand: items sent on the [`FlowSender`] come out of the
/// [`Flow`].
pub fn channel<T: Send + 'static>(config: FlowConfig) -> (FlowSender<T>, Flow<T>) {
    let (tx, rx) = edge(config);
    (FlowSender { tx }, Flow::from_edge(rx, config))
}

impl<T> Flow<T> {
    /// Items buffered on the edge feeding this flow, if it is fed by one
    /// (a channel, a fan-out stage, a queue's output).
    pub fn buffered(&self) -> Option<usize> {
        self.probe.as_ref().map(Probe::held)
    }
}

impl<T: Send + 'static> Flow<T> {
    pub(crate) fn from_edge(rx: EdgeRx<T>, config: FlowConfig) -> Self {
        let probe = Some(rx.probe());
        Flow {
            stream: rx.boxed(),
            config,
            probe,
        }
    }

    /// A flow of `items`, in batches.
    pub fn from_iter<I>(items: I, config: FlowConfig) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        Flow {
            stream: Chunks {
                items: items.into_iter(),
                batch: config.batch,
            }
            .boxed(),
            config,
            probe: None,
        }
    }

    /// A flow of the items of `stream`; an `Err` item ends the flow with
    /// that failure, as [`FlowError::Upstream`] keeping the error (its
    /// class and its `source()`).
    pub fn from_stream<S, E>(stream: S, config: FlowConfig) -> Self
    where
        S: futures::Stream<Item = Result<T, E>> + Send + 'static,
        E: std::error::Error + weft_core::Classify + Send + Sync + 'static,
    {
        let batch = config.batch;
        Flow {
            stream: stream
                .ready_chunks(batch)
                .flat_map(|chunk| {
                    let mut out: Vec<Msg<T>> = Vec::new();
                    let mut items = Vec::with_capacity(chunk.len());
                    for r in chunk {
                        match r {
                            Ok(item) => items.push(item),
                            Err(e) => {
                                out.push(Ok(Batch::Owned(std::mem::take(&mut items))));
                                out.push(Err(Box::new(FlowError::Upstream(
                                    weft_core::Cause::new(e),
                                ))));
                            }
                        }
                    }
                    out.push(Ok(Batch::Owned(items)));
                    futures::stream::iter(
                        out.into_iter()
                            .filter(|m| !matches!(m, Ok(v) if v.is_empty())),
                    )
                })
                .boxed(),
            config,
            probe: None,
        }
    }

    /// The flow's configuration.
    pub fn config(&self) -> FlowConfig {
        self.config
    }

    /// Applies `f` to each item, in the pulling stage (fused: no task).
    pub fn map<U, F>(self, mut f: F) -> Flow<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> U + Send + 'static,
    {
        Flow {
            stream: self
                .stream
                .map(move |m| m.map(|batch| batch.map(&mut f)))
                .boxed(),
            config: self.config,
            probe: self.probe,
        }
    }

    /// Replaces each item with the items `f` returns for it (fused: no
    /// task).
    pub fn flat_map<U, I, F>(self, mut f: F) -> Flow<U>
    where
        U: Send + 'static,
        I: IntoIterator<Item = U>,
        F: FnMut(T) -> I + Send + 'static,
    {
        Flow {
            stream: self
                .stream
                .map(move |m| {
                    m.map(|batch| {
                        let mut out = Vec::new();
                        batch.into_iter().for_each(|item| out.extend(f(item)));
                        Batch::Owned(out)
                    })
                })
                .boxed(),
            config: self.config,
            probe: self.probe,
        }
    }

    /// Keeps the items for which `keep` is true (fused: no task).
    pub fn filter<F>(self, mut keep: F) -> Flow<T>
    where
        F: FnMut(&T) -> bool + Send + 'static,
    {
        Flow {
            stream: self
                .stream
                .filter_map(move |m| {
                    let out = match m {
                        Ok(batch) => {
                            let mut items = batch.into_vec();
                            items.retain(|x| keep(x));
                            (!items.is_empty()).then_some(Ok(Batch::Owned(items)))
                        }
                        Err(e) => Some(Err(e)),
                    };
                    futures::future::ready(out)
                })
                .boxed(),
            config: self.config,
            probe: self.probe,
        }
    }

    /// Calls `f` on each item as it passes (fused: no task).
    pub fn inspect<F>(self, mut f: F) -> Flow<T>
    where
        F: FnMut(&T) + Send + 'static,
    {
        self.map(move |x| {
            f(&x);
            x
        })
    }

    /// Collects every item.
    ///
    /// # Errors
    ///
    /// The failure that ended the flow, if any.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the flow: upstream stages see their output
    /// closed and stop.
    pub async fn collect(self) -> Result<Vec<T>, FlowError> {
        let mut out = Vec::new();
        let mut s = self.stream;
        while let Some(m) = s.next().await {
            unbox(m)?.append_to(&mut out);
        }
        Ok(out)
    }

    /// Collects every item of every flow, reading them all at once: the
    /// shape that cannot deadlock for the outputs of one stage (a copier,
    /// splitter or sharder waits for room on each of its outputs, so
    /// reading them one after another stops once an unread edge fills).
    ///
    /// # Errors
    ///
    /// The first failure that ended one of the flows.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops every flow.
    pub async fn collect_all(flows: Vec<Flow<T>>) -> Result<Vec<Vec<T>>, FlowError> {
        futures::future::try_join_all(flows.into_iter().map(Flow::collect)).await
    }

    /// Calls `f` on every item, batch by batch.
    ///
    /// # Errors
    ///
    /// The failure that ended the flow, if any.
    ///
    /// # Cancel safety
    ///
    /// As [`collect`](Flow::collect).
    pub async fn for_each<F>(self, mut f: F) -> Result<(), FlowError>
    where
        F: FnMut(T),
    {
        let mut s = self.stream;
        while let Some(m) = s.next().await {
            unbox(m)?.into_iter().for_each(&mut f);
        }
        Ok(())
    }

    /// Calls `f` on each batch of items in place: the sink that never
    /// copies an item, even from a [`copy`](Flow::copy) output whose
    /// batches the other outputs still hold. The loop over a batch is the
    /// caller's, so it runs as tight as the caller writes it.
    ///
    /// ```
    /// use weft_flow::{Flow, FlowConfig};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let [a, b] = Flow::from_iter(1..=100u64, FlowConfig::default()).copy_n()?;
    /// let (mut sum_a, mut sum_b) = (0, 0);
    /// let (ra, rb) = tokio::join!(
    ///     a.for_each_batch(|items| sum_a += items.iter().sum::<u64>()),
    ///     b.for_each_batch(|items| sum_b += items.iter().sum::<u64>()),
    /// );
    /// ra?;
    /// rb?;
    /// assert_eq!((sum_a, sum_b), (5050, 5050));
    /// # Ok::<(), weft_flow::FlowError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// The failure that ended the flow, if any.
    ///
    /// # Cancel safety
    ///
    /// As [`collect`](Flow::collect).
    pub async fn for_each_batch<F>(self, mut f: F) -> Result<(), FlowError>
    where
        F: FnMut(&[T]),
    {
        let mut s = self.stream;
        while let Some(m) = s.next().await {
            let batch = unbox(m)?;
            f(batch.as_slice());
        }
        Ok(())
    }

    /// The items as a stream of the batches they move in (one `Err` at the
    /// end if the flow failed): for a sink that writes a batch at a time.
    pub fn into_batches(self) -> BoxStream<'static, Result<Vec<T>, FlowError>> {
        self.stream.map(|m| unbox(m).map(Batch::into_vec)).boxed()
    }

    /// The items as a stream (one `Err` at the end if the flow failed).
    pub fn into_stream(self) -> BoxStream<'static, Result<T, FlowError>> {
        self.stream
            .flat_map(|m| match m {
                Ok(batch) => futures::stream::iter(batch.into_iter().map(Ok).collect::<Vec<_>>()),
                Err(e) => futures::stream::iter(vec![Err(*e)]),
            })
            .boxed()
    }

    /// Moves every item into a new edge read by a task of its own: a stage
    /// boundary, so that the stages before and after run in parallel.
    pub fn boundary(self) -> Flow<T> {
        let config = self.config;
        let (tx, rx) = edge(config);
        tokio::spawn(pump(self.stream, tx));
        Flow::from_edge(rx, config)
    }
}

/// The batches of an iterator, as a stream that is always ready.
struct Chunks<I> {
    items: I,
    batch: usize,
}

/// The iterator is never polled in place: it is an iterator.
impl<I> Unpin for Chunks<I> {}

impl<I: Iterator> futures::Stream for Chunks<I> {
    type Item = Msg<I::Item>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let batch = self.batch;
        let chunk: Vec<I::Item> = self.items.by_ref().take(batch).collect();
        std::task::Poll::Ready((!chunk.is_empty()).then_some(Ok(Batch::Owned(chunk))))
    }
}

/// Forwards a stream into an edge until it ends or the receiver is gone.
pub(crate) async fn pump<T>(mut stream: BoxStream<'static, Msg<T>>, tx: EdgeTx<T>) {
    while let Some(m) = stream.next().await {
        match m {
            Ok(batch) => {
                if !tx.send_batch(batch).await {
                    return;
                }
            }
            Err(e) => {
                tx.fail(e);
                return;
            }
        }
    }
}
