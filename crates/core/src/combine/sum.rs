use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::Combine;
use crate::CoreError;

/// Sums integers exactly, or `f64`s with a correctly rounded result.
///
/// # Overflow
///
/// Integer inputs (`u8` … `u64`, `i8` … `i64`) are summed in an `i128`,
/// which cannot overflow before 2⁶³ inputs, so partial sums never lose
/// anything whatever the order. [`extract`](Combine::extract) returns
/// [`CoreError::SumOverflow`] (carrying the exact sum) when the total does not
/// fit the input type, instead of wrapping or saturating.
///
/// # Floating point
///
/// `Sum<f64>` keeps the sum as a list of non-overlapping partials
/// (Shewchuk's exact summation, as in Python's `math.fsum`) and rounds once
/// at the end, so the result is the correctly rounded exact sum: the same
/// for every split and merge order, which a plain `+` fold is not
/// (`1e100 + 1.0 - 1e100` is `0.0` in one order and `1.0` in another). An
/// infinite or NaN input makes the result infinite or NaN as IEEE-754 says.
/// Finite inputs never overflow on the way (large inputs are kept scaled
/// by 2⁻⁶⁴): `[MAX, MAX, -MAX]` is `MAX` in every order, and only an exact
/// sum beyond the `f64` range gives ±infinity.
///
/// # Examples
///
/// ```
/// use weft_core::{Combine, Sum};
///
/// let sum = Sum::<f64>::new();
/// assert_eq!(sum.extract(sum.fold([1e100, 1.0, -1e100])), 1.0);
///
/// let bytes = Sum::<u8>::new();
/// assert!(bytes.extract(bytes.fold([200, 100])).is_err());
/// ```
pub struct Sum<T>(PhantomData<fn(T) -> T>);

impl<T> Sum<T> {
    /// A summer.
    pub fn new() -> Self {
        Sum(PhantomData)
    }
}

impl<T> Default for Sum<T> {
    fn default() -> Self {
        Sum::new()
    }
}

impl<T> Clone for Sum<T> {
    fn clone(&self) -> Self {
        Sum::new()
    }
}

impl<T> fmt::Debug for Sum<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sum<{}>", std::any::type_name::<T>())
    }
}

macro_rules! int_sum {
    ($($ty:ty),*) => {$(
        impl Combine for Sum<$ty> {
            type Input = $ty;
            type Acc = i128;
            type Output = Result<$ty, CoreError>;

            fn create(&self) -> i128 {
                0
            }
            fn add(&self, acc: &mut i128, input: $ty) {
                // Cannot overflow: |input| < 2^64 and fewer than 2^63 inputs.
                *acc = acc.wrapping_add(i128::from(input));
            }
            fn merge(&self, acc: &mut i128, other: i128) {
                *acc = acc.wrapping_add(other);
            }
            fn extract(&self, acc: i128) -> Result<$ty, CoreError> {
                <$ty>::try_from(acc).map_err(|_| CoreError::SumOverflow {
                    sum: acc.to_string(),
                    ty: stringify!($ty),
                })
            }
        }
    )*};
}
int_sum!(u8, u16, u32, u64, i8, i16, i32, i64);

/// The accumulator of `Sum<f64>`: the exact sum of its inputs, held as
/// non-overlapping partials in increasing magnitude.
///
/// So that no intermediate sum can overflow, inputs of magnitude at least
/// 2⁻⁹⁵⁸ are kept scaled by 2⁻⁶⁴ (exact: they stay normal numbers), and
/// smaller ones apart, unscaled; the two meet only in [`Combine::extract`].
/// The exact sum, and so the result, is the same in every order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FloatSum {
    /// Partials of the inputs of magnitude ≥ 2⁻⁹⁵⁸, each scaled by 2⁻⁶⁴.
    partials: Vec<f64>,
    /// Partials of the smaller inputs, unscaled.
    #[serde(default)]
    tiny: Vec<f64>,
    /// Sum of the non-finite inputs (0.0 while there are none).
    special: f64,
}

/// 2⁶⁴ and its inverse: the scale of the large partials.
const SCALE_UP: f64 = 18_446_744_073_709_551_616.0;
const SCALE_DOWN: f64 = 1.0 / SCALE_UP;
/// The smallest input kept scaled: scaled down it is still a normal number.
const SCALED_FROM: f64 = f64::MIN_POSITIVE * SCALE_UP;

/// Adds `x` exactly to non-overlapping `partials` (Shewchuk's grow step);
/// returns the part that left the f64 range, if any.
fn grow(partials: &mut Vec<f64>, mut x: f64) -> Option<f64> {
    let mut kept = 0;
    for i in 0..partials.len() {
        let mut y = partials[i];
        if x.abs() < y.abs() {
            std::mem::swap(&mut x, &mut y);
        }
        let hi = x + y;
        let lo = y - (hi - x);
        if lo != 0.0 {
            partials[kept] = lo;
            kept += 1;
        }
        x = hi;
    }
    partials.truncate(kept);
    if x.is_finite() {
        partials.push(x);
        None
    } else {
        Some(x)
    }
}

/// The correctly rounded value of non-overlapping partials in increasing
/// magnitude.
fn round(p: &[f64]) -> f64 {
    let Some(mut n) = p.len().checked_sub(1) else {
        return 0.0;
    };
    let mut hi = p[n];
    let mut lo = 0.0;
    while n > 0 {
        let x = hi;
        n -= 1;
        let y = p[n];
        hi = x + y;
        lo = y - (hi - x);
        if lo != 0.0 {
            break;
        }
    }
    // Round half-even correctly when the rest of the partials would tip a
    // tie: the step Python's fsum takes.
    if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
        let y = lo * 2.0;
        let x = hi + y;
        if y == x - hi {
            hi = x;
        }
    }
    hi
}

impl FloatSum {
    fn add(&mut self, x: f64) {
        if !x.is_finite() {
            self.special += x;
            return;
        }
        let overflow = if x.abs() >= SCALED_FROM {
            grow(&mut self.partials, x * SCALE_DOWN)
        } else {
            grow(&mut self.tiny, x)
        };
        // Only after about 2⁶³ inputs near f64::MAX.
        if let Some(inf) = overflow {
            self.special += inf;
        }
    }

    fn merge(&mut self, other: FloatSum) {
        for p in other.partials {
            if let Some(inf) = grow(&mut self.partials, p) {
                self.special += inf;
            }
        }
        for p in other.tiny {
            if let Some(inf) = grow(&mut self.tiny, p) {
                self.special += inf;
            }
        }
        self.special += other.special;
    }

    fn value(&self) -> f64 {
        if self.special != 0.0 || self.special.is_nan() {
            return self.special;
        }
        if self.partials.is_empty() {
            return round(&self.tiny);
        }
        // Back to scale: a partial beyond the range means the sum is too
        // (the largest partial carries the sum, the rest is below its ulp).
        let mut all = Vec::with_capacity(self.partials.len() + self.tiny.len());
        for &p in &self.partials {
            let up = p * SCALE_UP;
            if !up.is_finite() {
                return up;
            }
            all.push(up);
        }
        for &t in &self.tiny {
            if let Some(inf) = grow(&mut all, t) {
                return inf;
            }
        }
        round(&all)
    }
}

impl Combine for Sum<f64> {
    type Input = f64;
    type Acc = FloatSum;
    type Output = f64;

    fn create(&self) -> FloatSum {
        FloatSum::default()
    }
    fn add(&self, acc: &mut FloatSum, input: f64) {
        acc.add(input);
    }
    fn merge(&self, acc: &mut FloatSum, other: FloatSum) {
        acc.merge(other);
    }
    fn extract(&self, acc: FloatSum) -> f64 {
        acc.value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_overflow_is_reported_with_the_exact_sum() {
        let s = Sum::<i8>::new();
        assert_eq!(
            s.extract(s.fold([100, 100])),
            Err(CoreError::SumOverflow {
                sum: "200".into(),
                ty: "i8"
            })
        );
        // Intermediate excursions beyond the type are fine.
        assert_eq!(s.extract(s.fold([100, 100, -120])), Ok(80));
        let u = Sum::<u64>::new();
        assert_eq!(
            u.extract(u.fold([u64::MAX, 1, 0])).unwrap_err().to_string(),
            "sum 18446744073709551616 does not fit in u64"
        );
    }

    #[test]
    fn float_sum_is_correctly_rounded() {
        let s = Sum::<f64>::new();
        assert_eq!(s.extract(s.fold([0.1; 10])), 1.0);
        assert_eq!(s.extract(s.fold([1e308, 1.0, -1e308])), 1.0);
        assert_eq!(s.extract(s.fold([])), 0.0);
        assert!(
            s.extract(s.fold([f64::INFINITY, f64::NEG_INFINITY, 1.0]))
                .is_nan()
        );
        assert_eq!(s.extract(s.fold([f64::INFINITY, 5.0])), f64::INFINITY);
    }

    #[test]
    fn float_sums_past_the_range_are_exact_or_infinite_in_every_order() {
        let s = Sum::<f64>::new();
        let m = f64::MAX;
        for order in [[m, m, -m], [m, -m, m], [-m, m, m]] {
            assert_eq!(s.extract(s.fold(order)), m, "{order:?}");
        }
        // Split and merged in either order, too.
        let (mut a, b) = (s.fold([m, m]), s.fold([-m]));
        s.merge(&mut a, b);
        assert_eq!(s.extract(a), m);
        assert_eq!(s.extract(s.fold([m, m])), f64::INFINITY);
        assert_eq!(s.extract(s.fold([-m, -m, 1.0])), f64::NEG_INFINITY);
        // Tiny and huge meet exactly at the end.
        let tiny = f64::from_bits(1); // the smallest subnormal
        assert_eq!(s.extract(s.fold([m, tiny, -m])), tiny);
        assert_eq!(s.extract(s.fold([tiny, 1e-300, -1e-300])), tiny);
        assert_eq!(s.extract(s.fold([1e308, 1e308, -1e308, tiny])), 1e308);
    }
}
