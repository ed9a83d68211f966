//! Items that failed for good.

use super::Item;

/// An item that failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter<T> {
    /// The item.
    pub item: Item<T>,
    /// The last error (or the panic).
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
}
