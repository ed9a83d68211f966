//! Consume, transform, produce: a work queue from one stream to another
//! whose outputs are appended in the step that acknowledges their input.

use std::collections::HashMap;
use std::future::Future;

use std::sync::{Arc, Mutex};

use weft_core::{Cause, Classify, ErrorClass, ShardKey, Sharder, key_hash};
use weft_flow::queue::{
    Control, Item, QueueConfig, Source, Status, WorkContext, WorkQueue, Worker,
};

use crate::codec::{Codec, Json};
use crate::sink::{MAX_PAYLOAD, Retention};
use crate::source::{Commit, Output};
use crate::{StreamError, StreamId, StreamSource};

/// Where a stage's outputs go: one stream, or one stream per shard of a
/// weft [`Sharder`]; their retention; and the codec of the payloads.
pub struct StageOutput<O, C = Json> {
    streams: Vec<String>,
    route: Option<Router<O>>,
    retention: Retention,
    codec: C,
}

/// The output stream's index of an output.
type Router<O> = Arc<dyn Fn(&O) -> usize + Send + Sync>;

impl<O, C: std::fmt::Debug> std::fmt::Debug for StageOutput<O, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageOutput")
            .field("streams", &self.streams)
            .field("sharded", &self.route.is_some())
            .field("retention", &self.retention)
            .field("codec", &self.codec)
            .finish()
    }
}

impl<O> StageOutput<O, Json> {
    /// Outputs to `stream` as JSON.
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for an empty name.
    pub fn new(stream: &str, retention: Retention) -> Result<Self, StreamError> {
        StageOutput::with_codec(stream, retention, Json)
    }

    /// Outputs as JSON, each to the stream of its shard: `key(&output)`
    /// through weft's key hash and `sharder` picks shard `id`, whose
    /// stream is `<prefix>-<id>`. All of them are written in the commit of
    /// the input, so on Redis Cluster they must share the input's hash
    /// slot: give `prefix` the input's hash tag (`{photos}:shard`).
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for an empty prefix.
    pub fn sharded<S, K, F>(
        prefix: &str,
        sharder: S,
        key: F,
        retention: Retention,
    ) -> Result<Self, StreamError>
    where
        S: Sharder + Send + Sync + 'static,
        K: ShardKey,
        F: Fn(&O) -> K + Send + Sync + 'static,
    {
        if prefix.is_empty() {
            return Err(StreamError::invalid(
                "output prefix",
                prefix,
                "a non-empty name",
            ));
        }
        let streams = (0..sharder.id_bound())
            .map(|id| format!("{prefix}-{id}"))
            .collect();
        let route: Router<O> =
            Arc::new(move |o: &O| sharder.shard_for_hash(key_hash(&key(o))).index());
        Ok(StageOutput {
            streams,
            route: Some(route),
            retention,
            codec: Json,
        })
    }
}

impl<O, C> StageOutput<O, C> {
    /// Outputs to `stream` through `codec`.
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for an empty name.
    pub fn with_codec(stream: &str, retention: Retention, codec: C) -> Result<Self, StreamError> {
        if stream.is_empty() {
            return Err(StreamError::invalid(
                "output stream",
                stream,
                "a non-empty name",
            ));
        }
        Ok(StageOutput {
            streams: vec![stream.to_string()],
            route: None,
            retention,
            codec,
        })
    }

    /// The output streams, by shard id (one for an unsharded output).
    pub fn streams(&self) -> &[String] {
        &self.streams
    }
}

/// A stage between two streams: a [`WorkQueue`] over a [`StreamSource`]
/// whose worker turns each input into any number of outputs, committed
/// exactly once.
///
/// The queue acknowledges an input only after its worker succeeded (or
/// failed for good), and here the acknowledgement is the commit: one
/// script checks that this consumer still holds the input at this
/// delivery, appends the outputs to the output stream (or the dead letter
/// to the dead-letter stream), acknowledges the input, and keeps a
/// receipt for a retry. So across crashes (nothing was appended: the input
/// is processed again), pauses (the late commit is refused: another
/// consumer's commit counts) and retries after an unknown outcome (the
/// receipt says it applied), each input's outputs appear once.
///
/// On Redis Cluster the script touches the input stream, the output
/// stream, the dead-letter stream, the receipts and the fence record: all
/// must be in one hash slot, so name both streams with the same hash tag
/// (`{photos}:raw`, `{photos}:thumbs`). Two stages on different slots are
/// each exactly once; nothing spans slots atomically.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use weft_flow::queue::QueueConfig;
/// use weft_flow_redis::{Retention, StageOutput, StreamConfig, StreamSource, StreamStage};
///
/// let input: StreamSource<String> =
///     StreamSource::connect("redis://127.0.0.1:6379", "{photos}:raw", "thumbs", StreamConfig::new())
///         .await?;
/// let output = StageOutput::new("{photos}:thumbs", Retention::MaxLen(1_000_000))?;
/// let worker = |name: String| async move { Ok::<_, weft_core::Cause>(vec![format!("{name}.thumb")]) };
/// let stage = StreamStage::spawn(input, output, worker, QueueConfig::fixed(8)?)?;
/// # let _ = stage; Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct StreamStage;

impl StreamStage {
    /// Starts the stage: `worker` on every input of `source`, its outputs
    /// to `output`, failures to the input's dead-letter stream. Both are in
    /// Redis once committed, so the stage reads its queue's local output
    /// and dead letters itself (a queue whose outputs nobody reads stops
    /// once its edges fill); the returned stage is its control.
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] if `source` already feeds another stage.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn<I, O, W, CI, CO>(
        source: StreamSource<I, CI>,
        output: StageOutput<O, CO>,
        worker: W,
        config: QueueConfig,
    ) -> Result<RunningStage, StreamError>
    where
        I: Clone + Send + Sync + 'static,
        O: Send + 'static,
        W: Worker<I, StreamId, Output = Vec<O>>,
        CI: Codec<I>,
        CO: Codec<O>,
    {
        let routed = source.set_output(Output {
            streams: output.streams.clone(),
            field: "d".into(),
            trim: output.retention.xadd_args(),
        });
        if !routed {
            return Err(StreamError::invalid(
                "source",
                source.consumer(),
                "a source that feeds no other stage",
            ));
        }
        let stash = Arc::new(Mutex::new(HashMap::new()));
        let source = StageSource {
            inner: source,
            stash: stash.clone(),
        };
        let worker = StageWorker {
            worker,
            codec: output.codec,
            route: output.route,
            streams: output.streams.len(),
            stash,
        };
        let WorkQueue {
            output,
            dead_letters,
            control,
        } = WorkQueue::spawn(Arc::new(source), worker, config);
        let drained = tokio::spawn(async move {
            let (out, dead) = futures::join!(output.for_each(drop), dead_letters.for_each(drop));
            out.and(dead)
        });
        Ok(RunningStage { control, drained })
    }
}

/// A running [`StreamStage`]: its queue's control.
#[derive(Debug)]
pub struct RunningStage {
    control: Control<StreamId>,
    drained: tokio::task::JoinHandle<Result<(), weft_flow::FlowError>>,
}

impl RunningStage {
    /// The queue's control: status, drain, cancel.
    pub fn control(&self) -> &Control<StreamId> {
        &self.control
    }

    /// Waits until the stage stops (its source ended, or after a drain or
    /// cancel) and returns the final status: `done` inputs committed
    /// (`dead` of them as dead letters), `discarded` commits refused
    /// because another consumer had taken the input over.
    ///
    /// # Errors
    ///
    /// [`weft_flow::FlowError`] if the queue's manager or its drain failed.
    ///
    /// # Cancel safety
    ///
    /// As [`Control::wait`].
    pub async fn wait(self) -> Result<Status, weft_flow::FlowError> {
        let status = self.control.wait().await?;
        self.drained
            .await
            .map_err(|e| weft_flow::FlowError::Upstream(Cause::permanent(e.to_string())))??;
        Ok(status)
    }
}

/// What the worker left for an input's commit.
enum Stashed {
    /// An attempt started and has not returned (if the queue commits now,
    /// it panicked or timed out).
    Attempting,
    Outputs(Vec<(u32, Vec<u8>)>),
    Dead {
        reason: String,
        class: ErrorClass,
    },
}

type Stash = Arc<Mutex<HashMap<StreamId, Stashed>>>;

fn lock(stash: &Stash) -> std::sync::MutexGuard<'_, HashMap<StreamId, Stashed>> {
    stash.lock().unwrap_or_else(|e| e.into_inner())
}

struct StageSource<I, C> {
    inner: StreamSource<I, C>,
    stash: Stash,
}

impl<I, C> Source<I> for StageSource<I, C>
where
    I: Send + 'static,
    C: Codec<I>,
{
    type Id = StreamId;

    async fn next(&self) -> Option<Item<I, StreamId>> {
        self.inner.next().await
    }

    async fn next_batch(&self, max: usize) -> Vec<Item<I, StreamId>> {
        self.inner.next_batch(max).await
    }

    async fn ack(&self, id: StreamId) -> bool {
        let stashed = lock(&self.stash).remove(&id);
        let op = match stashed {
            // Already done in this queue (its done set skipped the work).
            None => Commit::Ack,
            Some(Stashed::Outputs(payloads)) => Commit::Outputs(payloads),
            Some(Stashed::Dead { reason, class }) => Commit::Dead { reason, class },
            Some(Stashed::Attempting) => Commit::Dead {
                reason: "the worker panicked, or its last attempt timed out (the queue's dead letter says which)".into(),
                class: ErrorClass::Permanent,
            },
        };
        self.inner.commit(id, op).await
    }

    /// All at once: the commits of a batch share the script calls of the
    /// commit lanes.
    async fn ack_batch(&self, ids: Vec<StreamId>) -> Vec<bool> {
        futures::future::join_all(ids.into_iter().map(|id| self.ack(id))).await
    }

    async fn nack(&self, item: Item<I, StreamId>) {
        lock(&self.stash).remove(&item.id);
        self.inner.nack(item).await;
    }

    fn arrived(&self) -> u64 {
        self.inner.arrived()
    }

    fn backlog(&self) -> Option<usize> {
        self.inner.backlog()
    }
}

struct StageWorker<W, O, C> {
    worker: W,
    codec: C,
    route: Option<Router<O>>,
    streams: usize,
    stash: Stash,
}

impl<I, O, W, C> Worker<I, StreamId> for StageWorker<W, O, C>
where
    I: Send + 'static,
    O: Send + 'static,
    W: Worker<I, StreamId, Output = Vec<O>>,
    C: Codec<O>,
{
    type Output = usize;
    type Error = Cause;

    fn process(
        &self,
        item: I,
        cx: WorkContext<StreamId>,
    ) -> impl Future<Output = Result<usize, Cause>> + Send {
        let id = cx.id;
        let last = cx.is_last_attempt();
        lock(&self.stash).insert(id, Stashed::Attempting);
        let call = self.worker.process(item, cx);
        async move {
            let dead = |reason: String, class: ErrorClass| {
                if class == ErrorClass::Permanent || last {
                    lock(&self.stash).insert(
                        id,
                        Stashed::Dead {
                            reason: reason.clone(),
                            class,
                        },
                    );
                }
                Cause::message(reason, class)
            };
            match call.await {
                Ok(outputs) => {
                    let mut payloads = Vec::with_capacity(outputs.len());
                    let mut total = 0usize;
                    for o in &outputs {
                        let target = self.route.as_ref().map_or(0, |route| route(o));
                        if target >= self.streams {
                            return Err(dead(
                                format!(
                                    "the sharder chose shard {target}, beyond its {} output streams",
                                    self.streams
                                ),
                                ErrorClass::Permanent,
                            ));
                        }
                        let bytes = self.codec.encode(o).map_err(|why| {
                            dead(
                                format!("output does not encode: {why}"),
                                ErrorClass::Permanent,
                            )
                        })?;
                        total = total.saturating_add(bytes.len());
                        payloads.push((target as u32, bytes));
                    }
                    if total > MAX_PAYLOAD {
                        return Err(dead(
                            format!(
                                "outputs of {total} bytes are above the {MAX_PAYLOAD}-byte limit of one commit"
                            ),
                            ErrorClass::Permanent,
                        ));
                    }
                    let n = payloads.len();
                    lock(&self.stash).insert(id, Stashed::Outputs(payloads));
                    Ok(n)
                }
                Err(e) => Err(dead(e.to_string(), e.class())),
            }
        }
    }
}
