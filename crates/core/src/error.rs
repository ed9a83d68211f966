//! The one error type of weft-core and the error classification every weft
//! crate shares.

use std::fmt;

/// Whether an error is worth retrying.
///
/// The patterns act on this: scatter/gather moves a transient failure to
/// another replica and fails the shard on a permanent one; the work queue
/// retries transient failures with backoff and dead-letters permanent ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The same request may succeed later or elsewhere: a timeout, a lost
    /// connection, an overloaded or restarting server.
    Transient,
    /// Retrying cannot help: bad input, a rejected request, a broken
    /// invariant.
    Permanent,
}

/// Says whether an error is transient or permanent.
///
/// Every weft crate's error type implements it, and so can an application's
/// own errors, so that one retry / hedge / dead-letter decision serves all of
/// them.
///
/// # Examples
///
/// ```
/// use weft_core::{Classify, ErrorClass};
///
/// #[derive(Debug)]
/// enum LeafError { Timeout, NotFound }
///
/// impl Classify for LeafError {
///     fn class(&self) -> ErrorClass {
///         match self {
///             LeafError::Timeout => ErrorClass::Transient,
///             LeafError::NotFound => ErrorClass::Permanent,
///         }
///     }
/// }
///
/// assert!(LeafError::Timeout.is_transient());
/// assert!(!LeafError::NotFound.is_transient());
/// ```
pub trait Classify {
    /// The class of this error.
    fn class(&self) -> ErrorClass;

    /// Whether the failed operation may succeed if tried again.
    fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }
}

impl<E: Classify + ?Sized> Classify for &E {
    fn class(&self) -> ErrorClass {
        (**self).class()
    }
}

impl<E: Classify + ?Sized> Classify for Box<E> {
    fn class(&self) -> ErrorClass {
        (**self).class()
    }
}

impl<E: Classify + ?Sized> Classify for std::sync::Arc<E> {
    fn class(&self) -> ErrorClass {
        (**self).class()
    }
}

/// The error of work that cannot fail.
impl Classify for std::convert::Infallible {
    fn class(&self) -> ErrorClass {
        match *self {}
    }
}

/// I/O errors that describe a moment (a timeout, a reset or refused
/// connection, an interrupted call) are transient; the rest are permanent.
impl Classify for std::io::Error {
    fn class(&self) -> ErrorClass {
        use std::io::ErrorKind as K;
        match self.kind() {
            K::TimedOut
            | K::Interrupted
            | K::WouldBlock
            | K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown
            | K::ResourceBusy => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }
}

/// An error from weft-core: always bad input, so always permanent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A composite key was built with no parts.
    #[error("composite key has no parts: a key needs at least one part")]
    EmptyCompositeKey,
    /// Histogram bucket boundaries were rejected.
    #[error("histogram boundaries rejected: {0}")]
    HistogramBounds(BoundsProblem),
    /// Two histograms with different boundaries were merged.
    #[error("cannot merge histograms with different boundaries ({left} and {right} boundaries)")]
    HistogramMismatch {
        /// Boundary count of the accumulator merged into.
        left: usize,
        /// Boundary count of the other accumulator.
        right: usize,
    },
    /// A quantile outside `0.0..=1.0` (or NaN) was asked for.
    #[error("quantile {0} is outside 0.0..=1.0")]
    QuantileOutOfRange(f64),
    /// `TopK` was asked to keep zero items.
    #[error("top-k with k = 0 keeps nothing: k must be at least 1")]
    TopKZero,
    /// An integer sum does not fit the output type.
    #[error("sum {sum} does not fit in {ty}")]
    SumOverflow {
        /// The exact sum, as a decimal string.
        sum: String,
        /// The output type.
        ty: &'static str,
    },
    /// More distinct replicas were asked for than there are shards.
    #[error("asked for {requested} distinct replicas but only {available} shards exist")]
    NotEnoughShards {
        /// Replicas requested.
        requested: usize,
        /// Shards available.
        available: usize,
    },
    /// A replica set of zero shards was asked for.
    #[error("asked for 0 replicas: a replica set needs at least one shard")]
    ZeroReplicas,
    /// A health policy's thresholds were rejected.
    #[error("health policy rejected: {0}")]
    HealthPolicy(&'static str),
    /// A value that must be a number was NaN.
    #[error("{0} is NaN: it must be a number")]
    NotANumber(&'static str),
    /// A duration's text that could not be read.
    #[error("cannot read duration {input:?}: {reason}")]
    BadDuration {
        /// The text.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A backoff schedule or retry policy was rejected.
    #[error("retry schedule rejected: {0}")]
    Backoff(String),
}

/// What is wrong with a list of histogram boundaries.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BoundsProblem {
    /// The list is empty.
    Empty,
    /// The boundary at `index` is NaN or infinite.
    NotFinite {
        /// Position in the list.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// The boundary at `index` is not greater than the one before it.
    NotIncreasing {
        /// Position in the list.
        index: usize,
        /// The boundary before it.
        previous: f64,
        /// The value found.
        value: f64,
    },
    /// A bucket count list does not have one more entry than the boundaries.
    CountLength {
        /// Boundaries given.
        bounds: usize,
        /// Counts given.
        counts: usize,
    },
    /// More boundaries than a histogram may have.
    TooMany {
        /// Boundaries asked for.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Recorded extremes that no values could have produced: a minimum above
    /// the maximum, one without the other, a NaN, or extremes of no values.
    Extremes {
        /// The recorded minimum.
        min: Option<f64>,
        /// The recorded maximum.
        max: Option<f64>,
    },
}

impl fmt::Display for BoundsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoundsProblem::Empty => f.write_str("no boundaries given"),
            BoundsProblem::NotFinite { index, value } => {
                write!(f, "boundary {index} is {value}, not a finite number")
            }
            BoundsProblem::NotIncreasing {
                index,
                previous,
                value,
            } => write!(
                f,
                "boundary {index} ({value}) is not greater than boundary {} ({previous})",
                index - 1
            ),
            BoundsProblem::CountLength { bounds, counts } => write!(
                f,
                "{bounds} boundaries need {} bucket counts, got {counts}",
                bounds.saturating_add(1)
            ),
            BoundsProblem::TooMany { count, max } => {
                write!(f, "{count} boundaries is above the limit of {max}")
            }
            BoundsProblem::Extremes { min, max } => write!(
                f,
                "recorded minimum {min:?} and maximum {max:?} do not fit the counts"
            ),
        }
    }
}

impl Classify for CoreError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_timeouts_are_transient_and_invalid_input_is_permanent() {
        let timeout = std::io::Error::from(std::io::ErrorKind::TimedOut);
        let invalid = std::io::Error::from(std::io::ErrorKind::InvalidInput);
        assert!(timeout.is_transient());
        assert_eq!(invalid.class(), ErrorClass::Permanent);
        assert!(Box::new(timeout).is_transient());
    }

    #[test]
    fn core_errors_are_permanent_and_name_the_problem() {
        let e = CoreError::HistogramBounds(BoundsProblem::NotIncreasing {
            index: 2,
            previous: 5.0,
            value: 5.0,
        });
        assert!(!e.is_transient());
        assert_eq!(
            e.to_string(),
            "histogram boundaries rejected: boundary 2 (5) is not greater than boundary 1 (5)"
        );
        assert!(CoreError::TopKZero.to_string().contains("k = 0"));
    }
}
