//! How a stream source reads, reclaims and acknowledges.

use std::time::Duration;

use crate::StreamError;

/// Where a new consumer group starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// Every entry already in the stream (`0`): the default, so that
    /// nothing appended before the first worker started is missed.
    #[default]
    Beginning,
    /// Only entries appended after the group is created (`$`).
    New,
}

/// A stream source's settings.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft_flow_redis::StreamConfig;
///
/// let config = StreamConfig::new()
///     .batch(128)?
///     .claim_idle(Duration::from_secs(10))?
///     .max_deliveries(3)?;
/// # let _ = config;
/// # Ok::<(), weft_flow_redis::StreamError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    pub(crate) batch: usize,
    pub(crate) block: Duration,
    pub(crate) claim_idle: Duration,
    pub(crate) max_deliveries: u32,
    pub(crate) field: String,
    pub(crate) dead_stream: Option<String>,
    pub(crate) consumer: Option<String>,
    pub(crate) start: StartAt,
    pub(crate) ack_timeout: Duration,
    pub(crate) close_when_idle: Option<Duration>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig::new()
    }
}

impl StreamConfig {
    /// The most entries one read takes.
    pub const MAX_BATCH: usize = 10_000;

    /// Defaults: batches of 256, reads that wait up to 100 ms for new
    /// entries, entries idle 30 s at another consumer reclaimed, an entry
    /// delivered more than 5 times dead-lettered, payloads in the field
    /// `d`, dead letters in `<stream>:dead`, a consumer name unique to
    /// this source, a new group reading from the beginning, and 30 s for
    /// an acknowledgement whose outcome is unknown to be settled.
    pub fn new() -> Self {
        StreamConfig {
            batch: 256,
            block: Duration::from_millis(100),
            claim_idle: Duration::from_secs(30),
            max_deliveries: 5,
            field: "d".into(),
            dead_stream: None,
            consumer: None,
            start: StartAt::Beginning,
            ack_timeout: Duration::from_secs(30),
            close_when_idle: None,
        }
    }

    /// Entries per read (and per reclaim), 1 to
    /// [`MAX_BATCH`](StreamConfig::MAX_BATCH); the source holds at most
    /// one batch that no worker has taken.
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] outside that range.
    pub fn batch(mut self, n: usize) -> Result<Self, StreamError> {
        if n == 0 || n > StreamConfig::MAX_BATCH {
            return Err(StreamError::invalid(
                "batch",
                n,
                format!("1 to {}", StreamConfig::MAX_BATCH),
            ));
        }
        self.batch = n;
        Ok(self)
    }

    /// How long a read waits for new entries (`BLOCK`), 1 ms to 60 s.
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] outside that range (Redis reads `BLOCK 0`
    /// as "forever").
    pub fn block(mut self, wait: Duration) -> Result<Self, StreamError> {
        if wait < Duration::from_millis(1) || wait > Duration::from_secs(60) {
            return Err(StreamError::invalid("block", wait, "1ms to 60s"));
        }
        self.block = wait;
        Ok(self)
    }

    /// How long an entry must sit unacknowledged at a consumer before
    /// another takes it over (`XPENDING IDLE` and `XCLAIM`). Longer than
    /// the longest processing of one entry, or entries still being
    /// processed are taken over (their late acknowledgement is then
    /// refused, so nothing is duplicated, but work is repeated).
    /// `Duration::MAX` never reclaims.
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] under 1 ms: every entry would be taken
    /// over at once.
    pub fn claim_idle(mut self, idle: Duration) -> Result<Self, StreamError> {
        if idle < Duration::from_millis(1) {
            return Err(StreamError::invalid(
                "claim idle time",
                idle,
                "at least 1ms: every entry would be taken over as soon as it is read",
            ));
        }
        self.claim_idle = idle;
        Ok(self)
    }

    /// Deliveries after which an entry goes to the dead-letter stream
    /// instead of to a worker.
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for zero.
    pub fn max_deliveries(mut self, n: u32) -> Result<Self, StreamError> {
        if n == 0 {
            return Err(StreamError::invalid("max deliveries", 0, "at least 1"));
        }
        self.max_deliveries = n;
        Ok(self)
    }

    /// The entry field that holds the payload (default `d`).
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for an empty name.
    pub fn field(mut self, name: impl Into<String>) -> Result<Self, StreamError> {
        let name = name.into();
        if name.is_empty() {
            return Err(StreamError::invalid("field", name, "a non-empty name"));
        }
        self.field = name;
        Ok(self)
    }

    /// The stream dead letters go to (default `<stream>:dead`, in the
    /// stream's hash slot).
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for an empty name.
    pub fn dead_stream(mut self, name: impl Into<String>) -> Result<Self, StreamError> {
        let name = name.into();
        if name.is_empty() {
            return Err(StreamError::invalid(
                "dead stream",
                name,
                "a non-empty name",
            ));
        }
        self.dead_stream = Some(name);
        Ok(self)
    }

    /// This source's consumer name in the group (default: unique per
    /// source). Two live sources must not share one: Redis would treat
    /// them as one consumer, and their acknowledgements as each other's.
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for an empty name.
    pub fn consumer(mut self, name: impl Into<String>) -> Result<Self, StreamError> {
        let name = name.into();
        if name.is_empty() {
            return Err(StreamError::invalid("consumer", name, "a non-empty name"));
        }
        self.consumer = Some(name);
        Ok(self)
    }

    /// Where a group this source creates starts. A group that exists
    /// already keeps its own position.
    #[must_use]
    pub fn start(mut self, start: StartAt) -> Self {
        self.start = start;
        self
    }

    /// How long an acknowledgement whose outcome is unknown (Redis down,
    /// a timeout) is retried before the result is given up (default 30 s);
    /// then the entry is either acknowledged or reclaimed later, and the
    /// queue counts the result as discarded.
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for zero.
    pub fn ack_timeout(mut self, timeout: Duration) -> Result<Self, StreamError> {
        if timeout.is_zero() {
            return Err(StreamError::invalid("ack timeout", timeout, "above zero"));
        }
        self.ack_timeout = timeout;
        Ok(self)
    }

    /// Ends the source (its queue drains and stops) once no entry has
    /// arrived or been reclaimed for `idle`: for batch jobs and tests. By
    /// default a source waits for entries forever.
    ///
    /// # Errors
    ///
    /// [`StreamError::Invalid`] for zero.
    pub fn close_when_idle(mut self, idle: Duration) -> Result<Self, StreamError> {
        if idle.is_zero() {
            return Err(StreamError::invalid(
                "close-when-idle time",
                idle,
                "above zero",
            ));
        }
        self.close_when_idle = Some(idle);
        Ok(self)
    }
}

/// `name` as the first part of a key in the same Redis Cluster hash slot
/// as the key `name`: `name` itself when it has a hash tag, else `{name}`.
pub(crate) fn slot_prefix(name: &str) -> String {
    let tagged = name
        .find('{')
        .and_then(|open| name[open + 1..].find('}').map(|len| len > 0))
        .unwrap_or(false);
    if tagged {
        name.to_string()
    } else {
        format!("{{{name}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_beside_a_stream_share_its_hash_slot() {
        assert_eq!(slot_prefix("photos"), "{photos}");
        assert_eq!(slot_prefix("{photos}-1"), "{photos}-1");
        assert_eq!(slot_prefix("a{}b"), "{a{}b}");
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let c = StreamConfig::new();
        let setting = |r: Result<StreamConfig, StreamError>| match r {
            Err(StreamError::Invalid { setting, .. }) => setting,
            other => panic!("{other:?}"),
        };
        assert_eq!(setting(c.clone().batch(0)), "batch");
        assert_eq!(setting(c.clone().batch(usize::MAX)), "batch");
        assert_eq!(setting(c.clone().block(Duration::ZERO)), "block");
        assert_eq!(setting(c.clone().block(Duration::MAX)), "block");
        assert_eq!(
            setting(c.clone().claim_idle(Duration::ZERO)),
            "claim idle time"
        );
        assert_eq!(setting(c.clone().max_deliveries(0)), "max deliveries");
        assert_eq!(setting(c.clone().field("")), "field");
        assert_eq!(setting(c.clone().consumer("")), "consumer");
        assert_eq!(setting(c.clone().dead_stream("")), "dead stream");
        assert_eq!(
            setting(c.clone().ack_timeout(Duration::ZERO)),
            "ack timeout"
        );
        assert_eq!(
            setting(c.clone().close_when_idle(Duration::ZERO)),
            "close-when-idle time"
        );
        assert!(c.claim_idle(Duration::MAX).is_ok());
    }
}
