//! The error type of weft-flow-redis.

use redis::RedisError;
use weft_core::{Cause, Classify, ErrorClass};

/// Why a stream operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// A setting that cannot work, named with its value.
    #[error("{setting} is {value}: it must be {expected}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What it must be.
        expected: String,
    },
    /// Redis could not be reached or failed the command; transient when
    /// the client says so (a refused or dropped connection, a timeout).
    #[error("redis at {url}: {reason}")]
    Redis {
        /// The server.
        url: String,
        /// What failed.
        reason: String,
        /// The client's error.
        #[source]
        cause: Cause,
    },
    /// The flow written to a sink failed; what came before is written.
    #[error("the flow written to the stream failed: {0}")]
    Upstream(#[source] Cause),
    /// A reply that is not what the command returns.
    #[error("unexpected {what} from redis: {reply}")]
    BadReply {
        /// What was read.
        what: &'static str,
        /// The reply, as text.
        reply: String,
    },
}

impl StreamError {
    pub(crate) fn invalid(
        setting: &'static str,
        value: impl std::fmt::Debug,
        expected: impl Into<String>,
    ) -> Self {
        StreamError::Invalid {
            setting,
            value: format!("{value:?}"),
            expected: expected.into(),
        }
    }

    pub(crate) fn redis(url: &str, e: RedisError) -> Self {
        StreamError::Redis {
            url: url.to_string(),
            reason: e.to_string(),
            cause: Cause::new(e),
        }
    }
}

impl Classify for StreamError {
    fn class(&self) -> ErrorClass {
        match self {
            StreamError::Redis { cause, .. } | StreamError::Upstream(cause) => cause.class(),
            _ => ErrorClass::Permanent,
        }
    }
}
