use std::fmt;
use std::marker::PhantomData;

use super::Combine;

/// Counts inputs of any type.
///
/// The count is a `u64` and saturates at `u64::MAX`, a number of inputs no
/// run reaches.
///
/// # Examples
///
/// ```
/// use weft_core::{Combine, Count};
///
/// let count = Count::new();
/// assert_eq!(count.extract(count.fold(["a", "b", "c"])), 3);
/// ```
pub struct Count<T>(PhantomData<fn(T)>);

impl<T> Count<T> {
    /// A counter.
    pub fn new() -> Self {
        Count(PhantomData)
    }
}

impl<T> Default for Count<T> {
    fn default() -> Self {
        Count::new()
    }
}

impl<T> Clone for Count<T> {
    fn clone(&self) -> Self {
        Count::new()
    }
}

impl<T> fmt::Debug for Count<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Count")
    }
}

impl<T> Combine for Count<T> {
    type Input = T;
    type Acc = u64;
    type Output = u64;

    fn create(&self) -> u64 {
        0
    }
    fn add(&self, acc: &mut u64, _input: T) {
        *acc = acc.saturating_add(1);
    }
    fn merge(&self, acc: &mut u64, other: u64) {
        *acc = acc.saturating_add(other);
    }
    fn extract(&self, acc: u64) -> u64 {
        acc
    }
}
