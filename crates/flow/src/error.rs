//! The error type of weft-flow.

use weft_core::{Cause, Classify, ErrorClass};

/// Why a flow or a work queue failed or was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// A setting that cannot work: which one, the value given, and what it
    /// must be.
    #[error("invalid {setting} {value}: {expected}")]
    Invalid {
        /// The setting (e.g. "capacity", "max workers").
        setting: &'static str,
        /// The value given.
        value: String,
        /// What it must be.
        expected: String,
    },
    /// A sharder returned a shard id outside the bound it declared.
    #[error("the sharder returned shard {id}, outside its id bound {bound}")]
    ShardOutOfBounds {
        /// The id returned.
        id: u32,
        /// The bound it declared ([`weft_core::Sharder::id_bound`]).
        bound: usize,
    },
    /// A source was closed while a flow was still feeding it.
    #[error(
        "the source was closed while it was fed: {fed} items fed, the rest of the flow was not"
    )]
    SourceClosed {
        /// Items fed before it closed.
        fed: u64,
    },
    /// An upstream stage or source failed; the cause keeps its class (a
    /// permanent failure upstream stays permanent).
    #[error("upstream failed: {0}")]
    Upstream(#[source] Cause),
    /// A stage was cancelled before its input completed.
    #[error("cancelled")]
    Cancelled,
}

impl Classify for FlowError {
    fn class(&self) -> ErrorClass {
        match self {
            FlowError::Upstream(cause) => cause.class(),
            FlowError::Cancelled => ErrorClass::Transient,
            FlowError::Invalid { .. }
            | FlowError::ShardOutOfBounds { .. }
            | FlowError::SourceClosed { .. } => ErrorClass::Permanent,
        }
    }
}

impl FlowError {
    /// An [`Invalid`](FlowError::Invalid) setting.
    pub(crate) fn invalid(
        setting: &'static str,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> FlowError {
        FlowError::Invalid {
            setting,
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

/// A task of the flow that panicked or was cancelled: permanent for a
/// panic (it would panic again), transient for a cancellation.
pub(crate) fn task_failed(e: tokio::task::JoinError) -> FlowError {
    let class = if e.is_panic() {
        ErrorClass::Permanent
    } else {
        ErrorClass::Transient
    };
    FlowError::Upstream(Cause::with_class(e, class))
}
