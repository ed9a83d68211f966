use std::cmp::Ordering;
use std::fmt;

/// A float score with a total order, so that float-scored hits rank and
/// tie-break deterministically: `TopK::by_key(k, |hit: &(Score, Doc)| hit.0)`.
///
/// Orders as [`f64::total_cmp`]: `-∞ < … < -0.0 < +0.0 < … < +∞`, with NaN
/// beyond the infinities (a positive NaN ranks best). Build scores with
/// [`Score::new`] to refuse NaN.
///
/// # Examples
///
/// ```
/// use weft_core::{Combine, Score, TopK};
///
/// let top = TopK::by_key(2, |hit: &(Score, &str)| hit.0)?;
/// let hits = [(Score::new(0.5)?, "b"), (Score::new(0.93)?, "a"), (Score::new(0.5)?, "c")];
/// assert_eq!(top.extract(top.fold(hits)), [(Score(0.93), "a"), (Score(0.5), "c")]);
/// assert!(Score::new(f64::NAN).is_err());
/// # Ok::<(), weft_core::CoreError>(())
/// ```
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Score(pub f64);

impl Score {
    /// A score, refusing NaN (which would rank above every number).
    ///
    /// # Errors
    ///
    /// [`CoreError::NotANumber`](crate::CoreError::NotANumber) for NaN.
    pub fn new(value: f64) -> Result<Score, crate::CoreError> {
        if value.is_nan() {
            return Err(crate::CoreError::NotANumber("score"));
        }
        Ok(Score(value))
    }
}

impl PartialEq for Score {
    fn eq(&self, other: &Score) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl std::hash::Hash for Score {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
