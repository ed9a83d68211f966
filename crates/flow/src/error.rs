//! The error type of weft-flow.

use weft_core::{Classify, ErrorClass};

/// Why a flow or a work queue failed or was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// A configuration that cannot work, named.
    #[error("flow configuration rejected: {0}")]
    Config(String),
    /// An upstream stage or source failed.
    #[error("upstream failed: {0}")]
    Upstream(String),
    /// A stage was cancelled before its input completed.
    #[error("cancelled")]
    Cancelled,
}

impl Classify for FlowError {
    fn class(&self) -> ErrorClass {
        match self {
            FlowError::Upstream(_) | FlowError::Cancelled => ErrorClass::Transient,
            FlowError::Config(_) => ErrorClass::Permanent,
        }
    }
}
