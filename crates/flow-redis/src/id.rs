//! A stream entry's id: two integers, `ms-seq`.

use std::fmt;
use std::str::FromStr;

use weft_flow::queue::ItemId;

use crate::StreamError;

/// The id of a Redis stream entry: the millisecond time of its append and
/// a sequence number within that millisecond (`1700000000000-3`), ordered
/// as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// The id `ms-seq`.
    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Reads `ms-seq` (or `ms`, sequence 0) as Redis writes them.
impl FromStr for StreamId {
    type Err = StreamError;
    fn from_str(s: &str) -> Result<Self, StreamError> {
        let bad = || StreamError::BadReply {
            what: "stream entry id",
            reply: s.to_string(),
        };
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        Ok(StreamId {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

impl ItemId for StreamId {
    fn seed(&self) -> u64 {
        self.ms.rotate_left(20) ^ self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_and_write_as_redis_does_and_order_like_it() {
        let id: StreamId = "1700000000000-3".parse().unwrap();
        assert_eq!(id, StreamId::new(1_700_000_000_000, 3));
        assert_eq!(id.to_string(), "1700000000000-3");
        assert_eq!("5".parse::<StreamId>().unwrap(), StreamId::new(5, 0));
        assert!(StreamId::new(1, 9) < StreamId::new(2, 0));
        let max = format!("{}-{}", u64::MAX, u64::MAX);
        assert_eq!(max.parse::<StreamId>().unwrap().to_string(), max);
        for bad in ["", "-", "1-", "a-1", "1-2-3", "18446744073709551616-0"] {
            assert!(bad.parse::<StreamId>().is_err(), "{bad}");
        }
    }
}
