use std::collections::BTreeMap;
use std::fmt;

use super::{Combine, Count};

/// Combines inputs per key with another combiner: `(key, input)` in, one
/// output per key out, in key order.
///
/// # Examples
///
/// ```
/// use weft_core::{Combine, MergeBy, Sum};
///
/// // Bytes per host, merged from two shards' partial answers.
/// let per_host = MergeBy::new(Sum::<u64>::new());
/// let mut acc = per_host.fold([("a", 10), ("b", 5)]);
/// per_host.merge(&mut acc, per_host.fold([("a", 1)]));
/// let out = per_host.extract(acc);
/// assert_eq!(out["a"], Ok(11));
/// assert_eq!(out["b"], Ok(5));
/// ```
#[derive(Clone)]
pub struct MergeBy<K, C> {
    inner: C,
    _key: std::marker::PhantomData<fn(K)>,
}

impl<K, C> MergeBy<K, C> {
    /// Combines each key's inputs with `inner`.
    pub fn new(inner: C) -> Self {
        MergeBy {
            inner,
            _key: std::marker::PhantomData,
        }
    }
}

impl<K, C: fmt::Debug> fmt::Debug for MergeBy<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MergeBy").field(&self.inner).finish()
    }
}

impl<K: Ord, C: Combine> Combine for MergeBy<K, C> {
    type Input = (K, C::Input);
    type Acc = BTreeMap<K, C::Acc>;
    type Output = BTreeMap<K, C::Output>;

    fn create(&self) -> Self::Acc {
        BTreeMap::new()
    }

    fn add(&self, acc: &mut Self::Acc, (key, input): Self::Input) {
        let slot = acc.entry(key).or_insert_with(|| self.inner.create());
        self.inner.add(slot, input);
    }

    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        for (key, theirs) in other {
            match acc.get_mut(&key) {
                Some(mine) => self.inner.merge(mine, theirs),
                None => {
                    acc.insert(key, theirs);
                }
            }
        }
    }

    fn extract(&self, acc: Self::Acc) -> Self::Output {
        acc.into_iter()
            .map(|(key, a)| (key, self.inner.extract(a)))
            .collect()
    }
}

/// Counts inputs per key: a word count, hits per tenant.
///
/// # Examples
///
/// ```
/// use weft_core::{Combine, CountBy};
///
/// let words = CountBy::new();
/// let mut acc = words.fold(["to", "be", "or"]);
/// words.merge(&mut acc, words.fold(["not", "to", "be"]));
/// let counts = words.extract(acc);
/// assert_eq!(counts["to"], 2);
/// assert_eq!(counts["or"], 1);
/// ```
#[derive(Clone)]
pub struct CountBy<K>(MergeBy<K, Count<()>>);

impl<K> CountBy<K> {
    /// A counter per key.
    pub fn new() -> Self {
        CountBy(MergeBy::new(Count::new()))
    }
}

impl<K> Default for CountBy<K> {
    fn default() -> Self {
        CountBy::new()
    }
}

impl<K> fmt::Debug for CountBy<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CountBy")
    }
}

impl<K: Ord> Combine for CountBy<K> {
    type Input = K;
    type Acc = BTreeMap<K, u64>;
    type Output = BTreeMap<K, u64>;

    fn create(&self) -> Self::Acc {
        BTreeMap::new()
    }
    fn add(&self, acc: &mut Self::Acc, key: K) {
        self.0.add(acc, (key, ()));
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        self.0.merge(acc, other);
    }
    fn extract(&self, acc: Self::Acc) -> Self::Output {
        acc
    }
}

/// Feeds every item of each input (a list a leaf returned) to another
/// combiner: `Flatten::new(TopK::by_key(..))` keeps the best of all the
/// leaves' lists.
///
/// # Examples
///
/// ```
/// use weft_core::{Combine, Flatten, TopK};
///
/// let best = Flatten::new(TopK::largest(2)?);
/// let mut acc = best.fold([vec![3, 9], vec![]]);
/// best.merge(&mut acc, best.fold([vec![7, 1]]));
/// assert_eq!(best.extract(acc), [9, 7]);
/// # Ok::<(), weft_core::CoreError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Flatten<C>(C);

impl<C> Flatten<C> {
    /// Flattens each input into `inner`.
    pub fn new(inner: C) -> Self {
        Flatten(inner)
    }
}

impl<C: Combine> Combine for Flatten<C> {
    type Input = Vec<C::Input>;
    type Acc = C::Acc;
    type Output = C::Output;

    fn create(&self) -> C::Acc {
        self.0.create()
    }
    fn add(&self, acc: &mut C::Acc, input: Vec<C::Input>) {
        for item in input {
            self.0.add(acc, item);
        }
    }
    fn merge(&self, acc: &mut C::Acc, other: C::Acc) {
        self.0.merge(acc, other);
    }
    fn extract(&self, acc: C::Acc) -> C::Output {
        self.0.extract(acc)
    }
}
