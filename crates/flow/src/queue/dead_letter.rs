//! Items that failed for good.

use weft_core::ErrorClass;

use super::Item;

/// An item that failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter<T, I = u64> {
    /// The item.
    pub item: Item<T, I>,
    /// The last error (or the panic).
    pub error: String,
    /// The last error's class: permanent, or transient when the retries
    /// ran out (a panic is permanent).
    pub class: ErrorClass,
    /// Attempts made.
    pub attempts: u32,
    /// Whether the retries ran out (the last error was transient); `false`
    /// for a permanent error or a panic, which are not retried.
    pub retries_exhausted: bool,
}
