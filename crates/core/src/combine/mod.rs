//! Associative merges: one accumulator trait for gathering answers and
//! reducing streams.
//!
//! [`Combine`] follows Beam's `CombineFn`: create an accumulator, add inputs
//! to it, merge accumulators, extract the output. Because merging is
//! associative and commutative, work can be split anywhere and combined in
//! any order: the scatter/gather root folds leaf answers as they arrive, and
//! the flow reduce runs partial accumulators in parallel and merges them as a
//! tree. Provided: [`Count`], [`Sum`], [`Histogram`], [`TopK`] (by any
//! `Ord` key, [`Score`] for floats), [`Min`], [`Max`], per key
//! ([`CountBy`], [`MergeBy`]) and over lists ([`Flatten`]).

mod by_key;
mod count;
mod histogram;
mod min_max;
mod score;
mod sum;
mod top_k;

pub use by_key::{CountBy, Flatten, MergeBy};
pub use count::Count;
pub use histogram::{Buckets, Histogram, HistogramAcc};
pub use min_max::{Max, Min};
pub use score::Score;
pub use sum::{FloatSum, Sum};
pub use top_k::TopK;

/// An associative, commutative merge of inputs into one output.
///
/// # Implementing Combine
///
/// For any inputs, any split of them into parts, each part folded from
/// [`create`](Combine::create) with [`add`](Combine::add), and the parts
/// merged with [`merge`](Combine::merge) in any grouping and order, the
/// extracted output equals that of one sequential fold. `create()` is the
/// identity of `merge`. Ties must be broken by the values, never by arrival
/// order, or a scatter/gather root would answer differently from run to run.
/// The property tests in `crates/core/tests/combine.rs` check the provided
/// combiners this way; a new combiner should be added to them.
///
/// Accumulators are only merged with accumulators of an equal combiner
/// (same histogram boundaries, same `k`).
///
/// # Examples
///
/// ```
/// use weft_core::{Combine, Sum};
///
/// let sum = Sum::<u32>::new();
/// let mut left = sum.fold([1, 2, 3]);
/// let right = sum.fold([10, 20]);
/// sum.merge(&mut left, right);
/// assert_eq!(sum.extract(left), Ok(36));
/// ```
pub trait Combine {
    /// One input value.
    type Input;
    /// The running state.
    type Acc;
    /// The final answer.
    type Output;

    /// An empty accumulator (the identity of `merge`).
    fn create(&self) -> Self::Acc;

    /// Adds one input.
    fn add(&self, acc: &mut Self::Acc, input: Self::Input);

    /// Merges `other` into `acc`.
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);

    /// The answer for everything added to `acc`.
    fn extract(&self, acc: Self::Acc) -> Self::Output;

    /// A new accumulator holding every input of `inputs`.
    fn fold<I: IntoIterator<Item = Self::Input>>(&self, inputs: I) -> Self::Acc
    where
        Self: Sized,
    {
        let mut acc = self.create();
        for input in inputs {
            self.add(&mut acc, input);
        }
        acc
    }
}

impl<C: Combine + ?Sized> Combine for &C {
    type Input = C::Input;
    type Acc = C::Acc;
    type Output = C::Output;

    fn create(&self) -> Self::Acc {
        (**self).create()
    }
    fn add(&self, acc: &mut Self::Acc, input: Self::Input) {
        (**self).add(acc, input)
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        (**self).merge(acc, other)
    }
    fn extract(&self, acc: Self::Acc) -> Self::Output {
        (**self).extract(acc)
    }
}
