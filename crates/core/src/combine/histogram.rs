use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Combine;
use crate::{BoundsProblem, CoreError};

/// Counts values into fixed buckets; mergeable, serialisable, and able to
/// estimate percentiles.
///
/// `n` strictly increasing, finite boundaries `b₀ < b₁ < … < bₙ₋₁` make
/// `n + 1` buckets: `(-∞, b₀)`, `[b₀, b₁)`, …, `[bₙ₋₁, +∞)`. Infinite values
/// land in the outer buckets; NaN is counted apart (never dropped silently).
/// Fixed boundaries are what make histograms from different leaves or
/// workers mergeable by adding counts.
///
/// The output is a [`Buckets`] snapshot, or an error if accumulators with
/// different boundaries were merged.
///
/// # Examples
///
/// ```
/// use weft_core::{Combine, Histogram};
///
/// let latency_ms = Histogram::new([1.0, 2.0, 5.0, 10.0, 20.0, 50.0])?;
/// let mut a = latency_ms.fold([0.5, 1.5, 3.0, 4.0]);
/// let b = latency_ms.fold([12.0, 30.0, 80.0]);
/// latency_ms.merge(&mut a, b);
/// let buckets = latency_ms.extract(a)?;
/// assert_eq!(buckets.count(), 7);
/// assert_eq!(buckets.counts(), [1, 1, 2, 0, 1, 1, 1]);
/// let p50 = buckets.quantile(0.5)?.unwrap();
/// assert!((2.0..=5.0).contains(&p50));
/// # Ok::<(), weft_core::CoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: Arc<[f64]>,
}

impl Histogram {
    /// The most boundaries a histogram may have: every accumulator holds a
    /// count per bucket.
    pub const MAX_BOUNDS: usize = 1 << 16;

    /// A histogram with the given bucket boundaries.
    ///
    /// # Errors
    ///
    /// [`CoreError::HistogramBounds`] if the list is empty, longer than
    /// [`MAX_BOUNDS`](Histogram::MAX_BOUNDS), holds a NaN or an infinity, or
    /// is not strictly increasing.
    pub fn new(bounds: impl Into<Vec<f64>>) -> Result<Self, CoreError> {
        let bounds = bounds.into();
        check_bounds(&bounds)?;
        Ok(Histogram {
            bounds: bounds.into(),
        })
    }

    /// `count` boundaries growing geometrically: `start`, `start·factor`, …
    ///
    /// # Errors
    ///
    /// [`CoreError::HistogramBounds`] if the boundaries are not finite and
    /// strictly increasing: `count` of zero, `start` not positive, `factor`
    /// not above 1, growth past `f64::MAX`, or `count` above
    /// [`MAX_BOUNDS`](Histogram::MAX_BOUNDS) (checked before allocating).
    pub fn exponential(start: f64, factor: f64, count: usize) -> Result<Self, CoreError> {
        check_len(count)?;
        Histogram::new(
            std::iter::successors(Some(start), |b| Some(b * factor))
                .take(count)
                .collect::<Vec<_>>(),
        )
    }

    /// The boundaries.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }
}

fn check_len(count: usize) -> Result<(), CoreError> {
    if count > Histogram::MAX_BOUNDS {
        return Err(CoreError::HistogramBounds(BoundsProblem::TooMany {
            count,
            max: Histogram::MAX_BOUNDS,
        }));
    }
    Ok(())
}

fn check_bounds(bounds: &[f64]) -> Result<(), CoreError> {
    if bounds.is_empty() {
        return Err(CoreError::HistogramBounds(BoundsProblem::Empty));
    }
    check_len(bounds.len())?;
    for (index, &value) in bounds.iter().enumerate() {
        if !value.is_finite() {
            return Err(CoreError::HistogramBounds(BoundsProblem::NotFinite {
                index,
                value,
            }));
        }
        if index > 0 && value <= bounds[index - 1] {
            return Err(CoreError::HistogramBounds(BoundsProblem::NotIncreasing {
                index,
                previous: bounds[index - 1],
                value,
            }));
        }
    }
    Ok(())
}

/// The accumulator of [`Histogram`].
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramAcc {
    buckets: Buckets,
    /// Error from merging an accumulator with other boundaries; reported by
    /// `extract` rather than dropped.
    mismatch: Option<CoreError>,
}

impl Combine for Histogram {
    type Input = f64;
    type Acc = HistogramAcc;
    type Output = Result<Buckets, CoreError>;

    fn create(&self) -> HistogramAcc {
        HistogramAcc {
            buckets: Buckets {
                counts: vec![0; self.bounds.len() + 1],
                bounds: self.bounds.clone(),
                nan: 0,
                min: None,
                max: None,
            },
            mismatch: None,
        }
    }

    fn add(&self, acc: &mut HistogramAcc, value: f64) {
        acc.buckets.record(value);
    }

    fn merge(&self, acc: &mut HistogramAcc, other: HistogramAcc) {
        if let Err(e) = acc.buckets.merge(&other.buckets) {
            acc.mismatch.get_or_insert(e);
        }
        if let Some(e) = other.mismatch {
            acc.mismatch.get_or_insert(e);
        }
    }

    fn extract(&self, acc: HistogramAcc) -> Result<Buckets, CoreError> {
        match acc.mismatch {
            Some(e) => Err(e),
            None => Ok(acc.buckets),
        }
    }
}

/// Bucket counts over fixed boundaries: the output of [`Histogram`], and a
/// value that can be sent, stored and merged on its own.
///
/// Deserialising validates it: boundaries as in [`Histogram::new`], one
/// more count than boundaries, and extremes that fit the counts (both or
/// neither, the minimum not above the maximum).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BucketsRepr", into = "BucketsRepr")]
pub struct Buckets {
    bounds: Arc<[f64]>,
    counts: Vec<u64>,
    nan: u64,
    min: Option<f64>,
    max: Option<f64>,
}

#[derive(Serialize, Deserialize)]
struct BucketsRepr {
    bounds: Vec<f64>,
    counts: Vec<u64>,
    #[serde(default)]
    nan: u64,
    min: Option<f64>,
    max: Option<f64>,
}

impl TryFrom<BucketsRepr> for Buckets {
    type Error = CoreError;

    fn try_from(r: BucketsRepr) -> Result<Self, CoreError> {
        check_bounds(&r.bounds)?;
        if r.counts.len() != r.bounds.len() + 1 {
            return Err(CoreError::HistogramBounds(BoundsProblem::CountLength {
                bounds: r.bounds.len(),
                counts: r.counts.len(),
            }));
        }
        let values = r.counts.iter().fold(0u64, |a, &c| a.saturating_add(c));
        let consistent = match (r.min, r.max) {
            (None, None) => values == 0,
            (Some(min), Some(max)) => values > 0 && min <= max,
            _ => false,
        };
        if !consistent {
            return Err(CoreError::HistogramBounds(BoundsProblem::Extremes {
                min: r.min,
                max: r.max,
            }));
        }
        Ok(Buckets {
            bounds: r.bounds.into(),
            counts: r.counts,
            nan: r.nan,
            min: r.min,
            max: r.max,
        })
    }
}

impl From<Buckets> for BucketsRepr {
    fn from(b: Buckets) -> Self {
        BucketsRepr {
            bounds: b.bounds.to_vec(),
            counts: b.counts,
            nan: b.nan,
            min: b.min,
            max: b.max,
        }
    }
}

impl Buckets {
    fn record(&mut self, value: f64) {
        if value.is_nan() {
            self.nan = self.nan.saturating_add(1);
            return;
        }
        let index = self.bounds.partition_point(|&b| b <= value);
        // invariant: counts has bounds.len() + 1 entries and partition_point
        // returns at most bounds.len().
        self.counts[index] = self.counts[index].saturating_add(1);
        self.min = Some(self.min.map_or(value, |m| m.min(value)));
        self.max = Some(self.max.map_or(value, |m| m.max(value)));
    }

    /// Adds `other`'s counts to these.
    ///
    /// # Errors
    ///
    /// [`CoreError::HistogramMismatch`] if the boundaries differ; nothing is
    /// changed then.
    pub fn merge(&mut self, other: &Buckets) -> Result<(), CoreError> {
        if self.bounds != other.bounds {
            return Err(CoreError::HistogramMismatch {
                left: self.bounds.len(),
                right: other.bounds.len(),
            });
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine = mine.saturating_add(*theirs);
        }
        self.nan = self.nan.saturating_add(other.nan);
        self.min = min_opt(self.min, other.min, f64::min);
        self.max = min_opt(self.max, other.max, f64::max);
        Ok(())
    }

    /// The boundaries.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// Count per bucket, `bounds().len() + 1` of them, lowest bucket first.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Number of values counted in buckets (NaN excluded).
    pub fn count(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &c| a.saturating_add(c))
    }

    /// Number of NaN values seen.
    pub fn nan_count(&self) -> u64 {
        self.nan
    }

    /// The smallest value seen, if any.
    pub fn min(&self) -> Option<f64> {
        self.min
    }

    /// The largest value seen, if any.
    pub fn max(&self) -> Option<f64> {
        self.max
    }

    /// Estimates the `q`-quantile (`0.5` for the median, `0.99` for p99).
    ///
    /// The value is interpolated linearly inside the bucket holding the
    /// quantile's rank, with the outer buckets bounded by the observed
    /// minimum and maximum; so the estimate is off by at most that bucket's
    /// width. `q = 0` and `q = 1` give the exact minimum and maximum.
    /// `None` when no value was counted.
    ///
    /// # Errors
    ///
    /// [`CoreError::QuantileOutOfRange`] if `q` is not in `0.0..=1.0`.
    pub fn quantile(&self, q: f64) -> Result<Option<f64>, CoreError> {
        if !(0.0..=1.0).contains(&q) {
            return Err(CoreError::QuantileOutOfRange(q));
        }
        let (Some(min), Some(max)) = (self.min, self.max) else {
            return Ok(None);
        };
        if q == 0.0 {
            return Ok(Some(min));
        }
        if q == 1.0 {
            return Ok(Some(max));
        }
        let total = self.count() as f64;
        let rank = (q * total).ceil().max(1.0);
        let mut below = 0.0;
        for (i, &c) in self.counts.iter().enumerate() {
            let c = c as f64;
            if c > 0.0 && below + c >= rank {
                let lower = if i == 0 {
                    min
                } else {
                    self.bounds[i - 1].max(min)
                };
                let upper = if i == self.bounds.len() {
                    max
                } else {
                    self.bounds[i].min(max)
                };
                if !lower.is_finite() || !upper.is_finite() {
                    return Ok(Some(if lower.is_finite() { upper } else { lower }));
                }
                let fraction = (rank - below) / c;
                return Ok(Some(lower + (upper - lower) * fraction));
            }
            below += c;
        }
        Ok(Some(max))
    }
}

fn min_opt(a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_boundaries_are_rejected_by_name() {
        assert_eq!(
            Histogram::new(Vec::new()),
            Err(CoreError::HistogramBounds(BoundsProblem::Empty))
        );
        assert!(matches!(
            Histogram::new([1.0, f64::NAN]),
            Err(CoreError::HistogramBounds(BoundsProblem::NotFinite {
                index: 1,
                ..
            }))
        ));
        assert!(matches!(
            Histogram::new([1.0, f64::INFINITY]),
            Err(CoreError::HistogramBounds(BoundsProblem::NotFinite {
                index: 1,
                ..
            }))
        ));
        assert!(matches!(
            Histogram::new([1.0, 2.0, 2.0]),
            Err(CoreError::HistogramBounds(BoundsProblem::NotIncreasing {
                index: 2,
                ..
            }))
        ));
        assert!(Histogram::exponential(0.0, 2.0, 4).is_err());
        assert!(Histogram::exponential(1.0, 1.0, 4).is_err());
        assert!(Histogram::exponential(1.0, 2.0, 0).is_err());
        assert_eq!(
            Histogram::exponential(1.0, 2.0, 4).unwrap().bounds(),
            [1.0, 2.0, 4.0, 8.0]
        );
    }

    #[test]
    fn values_land_in_half_open_buckets_and_nan_is_counted_apart() {
        let h = Histogram::new([0.0, 10.0]).unwrap();
        let b = h
            .extract(h.fold([-1.0, 0.0, 9.99, 10.0, f64::INFINITY, f64::NAN]))
            .unwrap();
        assert_eq!(b.counts(), [1, 2, 2]);
        assert_eq!(b.nan_count(), 1);
        assert_eq!(b.max(), Some(f64::INFINITY));
    }

    #[test]
    fn merging_different_boundaries_is_an_error_not_a_loss() {
        let a = Histogram::new([1.0]).unwrap();
        let b = Histogram::new([1.0, 2.0]).unwrap();
        let mut acc = a.fold([0.5]);
        a.merge(&mut acc, b.fold([1.5]));
        assert_eq!(
            a.extract(acc),
            Err(CoreError::HistogramMismatch { left: 1, right: 2 })
        );
    }

    #[test]
    fn quantiles_stay_inside_the_bucket_that_holds_them() {
        let h = Histogram::new([10.0, 20.0, 30.0]).unwrap();
        let values: Vec<f64> = (0..100).map(|i| i as f64 * 0.4).collect(); // 0 .. 39.6
        let b = h.extract(h.fold(values.clone())).unwrap();
        for q in [0.1, 0.25, 0.5, 0.9, 0.99] {
            let est = b.quantile(q).unwrap().unwrap();
            let exact = values[((q * 100.0).ceil() as usize).max(1) - 1];
            assert!((est - exact).abs() <= 10.0, "q {q}: {est} vs {exact}");
        }
        assert_eq!(b.quantile(0.0).unwrap(), Some(0.0));
        assert_eq!(b.quantile(1.0).unwrap(), Some(39.6));
        assert_eq!(b.quantile(1.5), Err(CoreError::QuantileOutOfRange(1.5)));
        assert!(b.quantile(f64::NAN).is_err());
        let empty = h.extract(h.create()).unwrap();
        assert_eq!(empty.quantile(0.5).unwrap(), None);
    }

    #[test]
    fn buckets_round_trip_through_json_and_reject_bad_input() {
        let h = Histogram::new([1.0, 2.0]).unwrap();
        let b = h.extract(h.fold([0.5, 1.5, 2.5, 2.5])).unwrap();
        let json = serde_json::to_string(&b).unwrap();
        let back: Buckets = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
        let bad = r#"{"bounds":[2.0,1.0],"counts":[0,0,0],"min":null,"max":null}"#;
        let err = serde_json::from_str::<Buckets>(bad).unwrap_err();
        assert!(err.to_string().contains("not greater than"), "{err}");
        let short = r#"{"bounds":[1.0],"counts":[0],"min":null,"max":null}"#;
        let err = serde_json::from_str::<Buckets>(short).unwrap_err();
        assert!(err.to_string().contains("need 2 bucket counts"), "{err}");
        for extremes in [
            r#""min":5.0,"max":1.0"#,
            r#""min":1.0,"max":null"#,
            r#""min":null,"max":null"#,
        ] {
            let json = format!(r#"{{"bounds":[1.0,2.0],"counts":[1,0,1],{extremes}}}"#);
            let err = serde_json::from_str::<Buckets>(&json).unwrap_err();
            assert!(err.to_string().contains("do not fit"), "{extremes}: {err}");
        }
        let empty_with_extremes = r#"{"bounds":[1.0],"counts":[0,0],"min":1.0,"max":1.0}"#;
        assert!(serde_json::from_str::<Buckets>(empty_with_extremes).is_err());
        let nan_only = r#"{"bounds":[1.0],"counts":[0,0],"nan":3,"min":null,"max":null}"#;
        assert!(serde_json::from_str::<Buckets>(nan_only).is_ok());
    }

    #[test]
    fn bucket_counts_beyond_the_limit_are_refused_before_allocating() {
        for count in [Histogram::MAX_BOUNDS + 1, usize::MAX] {
            let err = Histogram::exponential(1.0, 2.0, count).unwrap_err();
            assert!(err.to_string().contains("limit"), "{err}");
            let err = Histogram::exponential(1.0, 1.000_000_1, count).unwrap_err();
            assert!(err.to_string().contains("limit"), "{err}");
        }
        assert!(Histogram::exponential(1.0, 1.001, Histogram::MAX_BOUNDS).is_ok());
        // Growth past f64::MAX is its own error, not a hang.
        assert!(Histogram::exponential(1.0, 2.0, 2000).is_err());
    }
}
