//! The error type of weft-flow.

use weft_core::{Cause, Classify, ErrorClass};

/// Why a flow or a work queue failed or was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// A configuration that cannot work, named.
    #[error("flow configuration rejected: {0}")]
    Config(String),
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
            FlowError::Config(_) => ErrorClass::Permanent,
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
