use std::cmp::Ordering;
use std::fmt;

use super::Combine;
use crate::CoreError;

/// The `k` highest-ranked inputs, best first.
///
/// Inputs rank by `key` descending; inputs with equal keys rank by the
/// inputs' own order, greater first. Ranking never depends on arrival, so
/// every split and merge order gives the same answer: the root of a
/// scatter/gather returns the same top-k whichever leaf answers first.
///
/// # Examples
///
/// ```
/// use weft_core::{Combine, TopK};
///
/// // The three best-scoring documents; equal scores fall back to the id.
/// let top = TopK::by_key(3, |hit: &(u32, &str)| hit.0)?;
/// let mut acc = top.fold([(7, "b"), (9, "a"), (7, "c")]);
/// top.merge(&mut acc, top.fold([(1, "z"), (8, "d")]));
/// assert_eq!(top.extract(acc), [(9, "a"), (8, "d"), (7, "c")]);
///
/// assert!(TopK::<u32, u32, _>::by_key(0, |x: &u32| *x).is_err());
/// # Ok::<(), weft_core::CoreError>(())
/// ```
#[derive(Clone)]
pub struct TopK<T, K, F> {
    k: usize,
    key: F,
    _marker: std::marker::PhantomData<fn(&T) -> K>,
}

impl<T: Ord, K: Ord, F: Fn(&T) -> K> TopK<T, K, F> {
    /// Keeps the `k` inputs with the greatest `key`.
    ///
    /// # Errors
    ///
    /// [`CoreError::TopKZero`] if `k` is zero.
    pub fn by_key(k: usize, key: F) -> Result<Self, CoreError> {
        if k == 0 {
            return Err(CoreError::TopKZero);
        }
        Ok(TopK {
            k,
            key,
            _marker: std::marker::PhantomData,
        })
    }

    fn rank(&self, a: &T, b: &T) -> Ordering {
        // Best first: greater key, then greater item.
        (self.key)(b).cmp(&(self.key)(a)).then_with(|| b.cmp(a))
    }
}

impl<T: Ord> TopK<T, (), fn(&T)> {
    /// Keeps the `k` greatest inputs.
    ///
    /// # Errors
    ///
    /// [`CoreError::TopKZero`] if `k` is zero.
    pub fn largest(k: usize) -> Result<Self, CoreError> {
        TopK::by_key(k, |_: &T| ())
    }
}

impl<T, K, F> TopK<T, K, F> {
    /// How many inputs are kept.
    pub fn k(&self) -> usize {
        self.k
    }
}

impl<T, K, F> fmt::Debug for TopK<T, K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopK")
            .field("k", &self.k)
            .finish_non_exhaustive()
    }
}

impl<T: Ord, K: Ord, F: Fn(&T) -> K> Combine for TopK<T, K, F> {
    type Input = T;
    /// The best inputs so far, best first, at most `k`.
    type Acc = Vec<T>;
    type Output = Vec<T>;

    fn create(&self) -> Vec<T> {
        Vec::new()
    }

    fn add(&self, acc: &mut Vec<T>, input: T) {
        let at = acc.partition_point(|kept| self.rank(kept, &input) != Ordering::Greater);
        if at < self.k {
            if acc.len() == self.k {
                acc.pop();
            }
            acc.insert(at, input);
        }
    }

    fn merge(&self, acc: &mut Vec<T>, other: Vec<T>) {
        let mine = std::mem::take(acc);
        acc.reserve(self.k.min(mine.len() + other.len()));
        let (mut a, mut b) = (mine.into_iter().peekable(), other.into_iter().peekable());
        while acc.len() < self.k {
            let take_a = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => self.rank(x, y) != Ordering::Greater,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_a { a.next() } else { b.next() };
            acc.extend(next);
        }
    }

    fn extract(&self, acc: Vec<T>) -> Vec<T> {
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_on_the_key_fall_back_to_the_item_whatever_the_arrival_order() {
        let top = TopK::by_key(2, |x: &(u8, char)| x.0).unwrap();
        let forward = top.extract(top.fold([(5, 'a'), (5, 'b'), (5, 'c')]));
        let backward = top.extract(top.fold([(5, 'c'), (5, 'b'), (5, 'a')]));
        assert_eq!(forward, [(5, 'c'), (5, 'b')]);
        assert_eq!(forward, backward);
    }

    #[test]
    fn largest_keeps_the_k_greatest() {
        let top = TopK::largest(3).unwrap();
        assert_eq!(top.extract(top.fold([4, 9, 1, 9, 7, 2])), [9, 9, 7]);
        assert_eq!(
            TopK::<u8, (), fn(&u8)>::largest(0).unwrap_err(),
            CoreError::TopKZero
        );
    }
}
