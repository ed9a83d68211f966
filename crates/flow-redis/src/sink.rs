//! Writing a flow's items to a stream, or to one stream per shard.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use redis::Value;
use redis::aio::ConnectionManager;
use tokio::sync::Mutex;
use tokio::time::Instant;
use weft_core::{Backoff, Classify, ErrorClass, ShardKey, Sharder, key_hash};
use weft_flow::Flow;

use crate::codec::{Codec, Json};
use crate::config::slot_prefix;
use crate::scripts::Scripts;
use crate::source::{connect_for, unique_name};
use crate::{StreamError, StreamId};

/// Redis's largest bulk string (`proto-max-bulk-len`'s default).
pub const MAX_PAYLOAD: usize = 512 << 20;
/// Entries appended by one script call.
const APPEND_BATCH: usize = 512;
/// How long connecting and one append may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// How much of a stream Redis keeps (`XADD`'s trimming), applied on every
/// append.
///
/// Trimming drops the oldest entries **whether or not every group has
/// read or acknowledged them**: a consumer group slower than the
/// retention loses the entries trimmed before it read them (they never
/// reach a worker), and entries trimmed while pending are reported
/// deleted by the next reclaim. Size the retention for the slowest
/// consumer's worst lag, or trim by hand after checking the groups' lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retention {
    /// Keep everything (the default): the stream grows until trimmed by
    /// hand.
    #[default]
    All,
    /// Keep about the last `n` entries (`MAXLEN ~ n`: Redis trims whole
    /// nodes, so a few more may stay).
    MaxLen(u64),
    /// Keep entries younger than this (`MINID ~ now − age`).
    MaxAge(Duration),
}

impl Retention {
    /// `XADD`'s trimming arguments: mode (`''` for none), `~`, bound.
    pub(crate) fn xadd_args(self) -> (&'static str, &'static str, String) {
        match self {
            Retention::All => ("", "", String::new()),
            Retention::MaxLen(n) => ("MAXLEN", "~", n.to_string()),
            Retention::MaxAge(age) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let age = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
                ("MINID", "~", now.saturating_sub(age).to_string())
            }
        }
    }
}

/// Appends a flow's items to one stream, exactly once per item even when
/// an append is retried after an unknown outcome.
///
/// Each sink is a producer with an id of its own; its items carry
/// sequence numbers, and one script appends an item only if the stream's
/// producer record has not seen its number, then records the last one.
/// So a retry after a timeout (the first try may have applied) appends
/// nothing twice. Items are appended in batches, one script call each.
///
/// The record lives in `<stream>:producers` (same hash slot), one field
/// per producer, expiring a week after that producer's last append.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use weft_flow::{Flow, FlowConfig};
/// use weft_flow_redis::{Retention, StreamSink};
///
/// let sink: StreamSink<String> =
///     StreamSink::connect("redis://127.0.0.1:6379", "photos", Retention::MaxLen(1_000_000)).await?;
/// let names = Flow::from_iter(["a.jpg", "b.jpg"].map(String::from), FlowConfig::default());
/// assert_eq!(sink.write(names).await?, 2);
/// # Ok(()) }
/// ```
pub struct StreamSink<T, C = Json> {
    url: String,
    stream: String,
    producers: String,
    producer: String,
    field: String,
    retention: Retention,
    codec: C,
    conn: ConnectionManager,
    scripts: Scripts,
    /// Serialises appends, so that sequence numbers reach the script in
    /// order; holds the next one.
    next_seq: Mutex<u64>,
    appended: AtomicU64,
    timeout: Duration,
    max_payload: usize,
    _payload: std::marker::PhantomData<fn(T)>,
}

impl<T> StreamSink<T, Json>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync,
{
    /// A sink to `stream` at `url`, payloads as JSON in the field `d`.
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for an empty stream name or a zero
    /// retention; [`StreamError::Redis`] if Redis cannot be reached.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: connecting changes nothing.
    pub async fn connect(
        url: &str,
        stream: &str,
        retention: Retention,
    ) -> Result<Self, StreamError> {
        StreamSink::with_codec(url, stream, retention, Json).await
    }
}

impl<T, C> StreamSink<T, C>
where
    T: Send + Sync,
    C: Codec<T>,
{
    /// As [`connect`](StreamSink::connect), with payloads through `codec`.
    ///
    /// # Errors
    ///
    /// As [`connect`](StreamSink::connect).
    ///
    /// # Cancel safety
    ///
    /// As [`connect`](StreamSink::connect).
    pub async fn with_codec(
        url: &str,
        stream: &str,
        retention: Retention,
        codec: C,
    ) -> Result<Self, StreamError> {
        if stream.is_empty() {
            return Err(StreamError::invalid("stream", stream, "a non-empty name"));
        }
        match retention {
            Retention::MaxLen(0) => {
                return Err(StreamError::invalid(
                    "retention",
                    retention,
                    "at least one entry kept",
                ));
            }
            Retention::MaxAge(age) if age < Duration::from_millis(1) => {
                return Err(StreamError::invalid(
                    "retention",
                    retention,
                    "an age of at least 1ms",
                ));
            }
            _ => {}
        }
        let (conn, node) = connect_for(url, stream, TIMEOUT).await?;
        Ok(StreamSink {
            url: node,
            stream: stream.to_string(),
            producers: format!("{}:producers", slot_prefix(stream)),
            producer: unique_name(),
            field: "d".into(),
            retention,
            codec,
            conn,
            scripts: Scripts::new(),
            next_seq: Mutex::new(1),
            appended: AtomicU64::new(0),
            timeout: Duration::from_secs(30),
            max_payload: MAX_PAYLOAD,
            _payload: std::marker::PhantomData,
        })
    }

    /// Names this sink's producer (default: a name unique to the sink).
    /// A producer that restarts under the same name and sends the same
    /// items again in the same order (replaying its own input) appends
    /// only those its earlier life did not: the producer record keeps the
    /// numbers already appended. Two live sinks must not share a name.
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for an empty name.
    pub fn producer(mut self, name: impl Into<String>) -> Result<Self, StreamError> {
        let name = name.into();
        if name.is_empty() {
            return Err(StreamError::invalid("producer", name, "a non-empty name"));
        }
        self.producer = name;
        Ok(self)
    }

    /// Refuses payloads above `bytes` (default [`MAX_PAYLOAD`], Redis's
    /// bulk string limit; lower it to the server's `proto-max-bulk-len`).
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for zero or above [`MAX_PAYLOAD`].
    pub fn max_payload(mut self, bytes: usize) -> Result<Self, StreamError> {
        if bytes == 0 || bytes > MAX_PAYLOAD {
            return Err(StreamError::invalid(
                "max payload",
                bytes,
                format!("1 to {MAX_PAYLOAD} bytes"),
            ));
        }
        self.max_payload = bytes;
        Ok(self)
    }

    /// The stream written to.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Entries appended so far.
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    /// Appends `items` in order; returns their entry ids (`None` for an
    /// item a retried try found appended already by a try whose reply was
    /// lost: it is in the stream, once).
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for an item that does not encode or is
    /// above the [payload limit](StreamSink::max_payload) (nothing of the
    /// call is appended then);
    /// [`StreamError::Redis`] when Redis stayed unreachable for the append
    /// timeout (30 s), or refused the append. Items of an earlier batch of
    /// the call stay appended.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a dropped call may have appended some batches, and
    /// the next call's numbers follow the dropped ones, so nothing is
    /// appended twice but the dropped items may be missing.
    pub async fn append(&self, items: &[T]) -> Result<Vec<Option<StreamId>>, StreamError> {
        let payloads = items
            .iter()
            .map(|item| {
                let bytes = self
                    .codec
                    .encode(item)
                    .map_err(|why| StreamError::invalid("payload", why, "an encodable item"))?;
                if bytes.len() > self.max_payload {
                    return Err(StreamError::invalid(
                        "payload size",
                        bytes.len(),
                        format!("at most {} bytes (the sink's limit)", self.max_payload),
                    ));
                }
                Ok(bytes)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut seq = self.next_seq.lock().await;
        let mut ids = Vec::with_capacity(payloads.len());
        for chunk in payloads.chunks(APPEND_BATCH) {
            let first = *seq;
            *seq += chunk.len() as u64;
            ids.extend(self.append_batch(first, chunk).await?);
        }
        self.appended.fetch_add(ids.len() as u64, Ordering::Relaxed);
        Ok(ids)
    }

    /// Appends every item of `flow`, batch by batch; returns how many.
    ///
    /// # Errors
    ///
    /// As [`append`](StreamSink::append), and
    /// [`StreamError::Upstream`] if the flow failed (what came before the
    /// failure is appended).
    ///
    /// # Cancel safety
    ///
    /// As [`append`](StreamSink::append).
    pub async fn write(&self, flow: Flow<T>) -> Result<u64, StreamError>
    where
        T: 'static,
    {
        let mut batches = flow.into_batches();
        let mut n = 0u64;
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| StreamError::Upstream(weft_core::Cause::new(e)))?;
            n += self.append(&batch).await?.len() as u64;
        }
        Ok(n)
    }

    /// One script call, retried while its outcome is unknown: the
    /// producer record makes a retry append only what the first try did
    /// not.
    async fn append_batch(
        &self,
        first: u64,
        chunk: &[Vec<u8>],
    ) -> Result<Vec<Option<StreamId>>, StreamError> {
        let deadline = Instant::now() + self.timeout;
        let retry = Backoff::exponential(Duration::from_millis(5), Duration::from_millis(500))
            .and_then(|b| b.with_jitter(0.5))
            .unwrap_or(Backoff::constant(Duration::from_millis(50)));
        let (mode, approx, bound) = self.retention.xadd_args();
        let mut tries = 0u32;
        loop {
            tries += 1;
            let mut call = self.scripts.append.key(&self.stream);
            call.key(&self.producers)
                .arg(&self.producer)
                .arg(first)
                .arg(&self.field)
                .arg(mode)
                .arg(approx)
                .arg(&bound);
            for payload in chunk {
                call.arg(payload.as_slice());
            }
            let reply: Result<Value, _> = call.invoke_async(&mut self.conn.clone()).await;
            match reply {
                Ok(Value::Array(ids)) if ids.len() == chunk.len() => {
                    // Nil for an entry a lost earlier try appended: it is
                    // there, once, under an id this call did not see.
                    return ids
                        .iter()
                        .map(|v| match v {
                            Value::Nil => Ok(None),
                            Value::BulkString(b) => std::str::from_utf8(b)
                                .map_err(|_| StreamError::BadReply {
                                    what: "entry id",
                                    reply: format!("{b:?}"),
                                })?
                                .parse()
                                .map(Some),
                            other => Err(StreamError::BadReply {
                                what: "entry id",
                                reply: format!("{other:?}"),
                            }),
                        })
                        .collect();
                }
                Ok(other) => {
                    return Err(StreamError::BadReply {
                        what: "append reply",
                        reply: format!("{other:?}"),
                    });
                }
                Err(e) => {
                    if e.class() == ErrorClass::Permanent || Instant::now() >= deadline {
                        return Err(StreamError::redis(&self.url, e));
                    }
                    tokio::time::sleep(retry.delay(tries, first)).await;
                }
            }
        }
    }
}

impl<T, C> std::fmt::Debug for StreamSink<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSink")
            .field("url", &self.url)
            .field("stream", &self.stream)
            .field("producer", &self.producer)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

/// Writes each item to the stream of its shard: one stream per shard id of
/// any weft [`Sharder`], named `<prefix>-<id>` (the book's `photos-0`,
/// `photos-1`, …), each through its own [`StreamSink`].
///
/// On Redis Cluster each shard's stream lands in its own hash slot (its
/// consumers' keys follow it), so shards spread over the masters; nothing
/// is atomic across two shards' streams.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use weft_flow::{Flow, FlowConfig};
/// use weft_flow_redis::{Retention, ShardedSink};
/// use weft_shard::LevelJump;
///
/// let sink = ShardedSink::<String, _>::connect(
///     "redis://127.0.0.1:6379",
///     "photos",
///     LevelJump::new(3)?,
///     Retention::All,
/// )
/// .await?;
/// let photos = Flow::from_iter(["a.jpg", "b.jpg", "c.jpg"].map(String::from), FlowConfig::default());
/// sink.write(photos, |name: &String| name.clone()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ShardedSink<T, S, C = Json> {
    sinks: Vec<Option<StreamSink<T, C>>>,
    sharder: S,
}

impl<T, S> ShardedSink<T, S, Json>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync,
    S: Sharder,
{
    /// One sink per shard id the sharder can return now, to streams
    /// `<prefix>-<id>`.
    ///
    /// # Errors
    ///
    /// As [`StreamSink::connect`], and [`StreamError::Invalid`] for an
    /// empty prefix.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: connecting changes nothing.
    pub async fn connect(
        url: &str,
        prefix: &str,
        sharder: S,
        retention: Retention,
    ) -> Result<Self, StreamError> {
        if prefix.is_empty() {
            return Err(StreamError::invalid("prefix", prefix, "a non-empty name"));
        }
        let mut sinks = Vec::with_capacity(sharder.id_bound());
        for id in 0..sharder.id_bound() {
            let shard = weft_core::ShardId::new(id as u32);
            sinks.push(if sharder.contains(shard) {
                Some(StreamSink::connect(url, &format!("{prefix}-{id}"), retention).await?)
            } else {
                None
            });
        }
        Ok(ShardedSink { sinks, sharder })
    }
}

impl<T, S, C> ShardedSink<T, S, C>
where
    T: Send + Sync + 'static,
    S: Sharder,
    C: Codec<T>,
{
    /// The stream of shard `id`, if the sharder has it.
    pub fn stream_of(&self, id: weft_core::ShardId) -> Option<&str> {
        self.sinks.get(id.index())?.as_ref().map(StreamSink::stream)
    }

    /// Appends every item of `flow` to its shard's stream, routed by
    /// `key(&item)` through weft's key hash; returns how many.
    ///
    /// # Errors
    ///
    /// As [`StreamSink::write`].
    ///
    /// # Cancel safety
    ///
    /// As [`StreamSink::append`].
    pub async fn write<K, F>(&self, flow: Flow<T>, key: F) -> Result<u64, StreamError>
    where
        K: ShardKey,
        F: Fn(&T) -> K,
    {
        let mut batches = flow.into_batches();
        let mut n = 0u64;
        let mut by_shard: Vec<Vec<T>> = (0..self.sinks.len()).map(|_| Vec::new()).collect();
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| StreamError::Upstream(weft_core::Cause::new(e)))?;
            for item in batch {
                let shard = self.sharder.shard_for_hash(key_hash(&key(&item)));
                match by_shard.get_mut(shard.index()) {
                    Some(items) if self.sinks[shard.index()].is_some() => items.push(item),
                    _ => {
                        return Err(StreamError::invalid(
                            "shard",
                            shard,
                            format!(
                                "one the sharder had when the sink was made (ids below {}, no holes)",
                                self.sinks.len()
                            ),
                        ));
                    }
                }
            }
            let writes = self
                .sinks
                .iter()
                .zip(by_shard.iter_mut())
                .filter(|(_, items)| !items.is_empty())
                .map(|(sink, items)| {
                    let items = std::mem::take(items);
                    async move {
                        match sink {
                            Some(sink) => sink.append(&items).await.map(|ids| ids.len() as u64),
                            // invariant: items are only routed to shards with a sink.
                            None => Ok(0),
                        }
                    }
                });
            for appended in futures::future::join_all(writes).await {
                n += appended?;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch whose first try applied but whose reply was lost is sent
    /// again with the same numbers: nothing is appended twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retried_append_appends_nothing_twice() {
        let Some(redis) = weft_test::redis().await else {
            return;
        };
        let sink: StreamSink<u64> = StreamSink::connect(&redis.url(), "x", Retention::All)
            .await
            .unwrap();
        let payloads: Vec<Vec<u8>> = (0..3).map(|i: u64| i.to_string().into_bytes()).collect();
        let first = sink.append_batch(1, &payloads).await.unwrap();
        assert!(first.iter().all(Option::is_some));
        let again = sink.append_batch(1, &payloads).await.unwrap();
        assert_eq!(again, [None, None, None]);
        // A retry that overlaps a later batch appends only the new part.
        let more: Vec<Vec<u8>> = (3..5).map(|i: u64| i.to_string().into_bytes()).collect();
        let overlap = [payloads[2].clone(), more[0].clone(), more[1].clone()];
        let part = sink.append_batch(3, &overlap).await.unwrap();
        assert_eq!(part.iter().filter(|id| id.is_some()).count(), 2);
        let client = redis::Client::open(redis.url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let n: u64 = redis::cmd("XLEN")
            .arg("x")
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(n, 5);
    }
}
