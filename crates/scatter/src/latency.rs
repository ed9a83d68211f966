//! A sliding-window latency histogram at microsecond resolution, lock-free.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Values below this many µs get a bucket each.
const LINEAR: u64 = 64;
/// Sub-buckets per power of two above that: about 3 % resolution.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Powers of two covered above LINEAR: up to 2^38 µs (3 days).
const OCTAVES: u64 = 32;
const BUCKETS: usize = (LINEAR + OCTAVES * SUB) as usize;

fn bucket_of(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros() as u64; // >= 6
    let octave = (exp - 6).min(OCTAVES - 1);
    let sub = (us >> (exp - SUB_BITS as u64)) & (SUB - 1);
    (LINEAR + octave * SUB + sub) as usize
}

/// The upper edge (µs) of a bucket: a conservative estimate of its values.
fn bucket_upper(b: usize) -> u64 {
    let b = b as u64;
    if b < LINEAR {
        return b + 1;
    }
    let octave = (b - LINEAR) / SUB;
    let sub = (b - LINEAR) % SUB;
    let exp = octave + 6;
    (1u64 << exp) + ((sub + 1) << (exp - SUB_BITS as u64))
}

/// Two windows of counts; samples go to the current one, percentiles read
/// both, and when the current one has seen `window` samples the older one
/// is cleared and becomes current. So a percentile always reflects between
/// `window` and `2·window` recent samples.
pub(crate) struct LatencyWindow {
    counts: [Box<[AtomicU32]>; 2],
    seen: [AtomicU64; 2],
    current: AtomicUsize,
    window: u64,
}

impl std::fmt::Debug for LatencyWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyWindow")
            .field("samples", &self.samples())
            .field("window", &self.window)
            .finish()
    }
}

impl LatencyWindow {
    pub(crate) fn new(window: u64) -> Self {
        let fresh = || {
            (0..BUCKETS)
                .map(|_| AtomicU32::new(0))
                .collect::<Box<[_]>>()
        };
        LatencyWindow {
            counts: [fresh(), fresh()],
            seen: [AtomicU64::new(0), AtomicU64::new(0)],
            current: AtomicUsize::new(0),
            window: window.max(1),
        }
    }

    pub(crate) fn record(&self, latency: Duration) {
        let us = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        let cur = self.current.load(Ordering::Relaxed);
        self.counts[cur][bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        let n = self.seen[cur].fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.window {
            // Rotate: clear the other window and make it current. Samples
            // racing with the clear may be lost; the estimate is statistical.
            let other = 1 - cur;
            for c in self.counts[other].iter() {
                c.store(0, Ordering::Relaxed);
            }
            self.seen[other].store(0, Ordering::Relaxed);
            self.current.store(other, Ordering::Relaxed);
        }
    }

    pub(crate) fn samples(&self) -> u64 {
        self.seen[0].load(Ordering::Relaxed) + self.seen[1].load(Ordering::Relaxed)
    }

    /// The `p`-th percentile (0 < p < 100) of recent samples, as the upper
    /// edge of its bucket; `None` with fewer than `min_samples`.
    pub(crate) fn percentile(&self, p: f64, min_samples: u64) -> Option<Duration> {
        // The sample counters stand for the bucket total (they can differ
        // by the few samples racing a rotation).
        let total = self.samples();
        if total == 0 || total < min_samples {
            return None;
        }
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut below = 0u64;
        for b in 0..BUCKETS {
            below += u64::from(self.counts[0][b].load(Ordering::Relaxed))
                + u64::from(self.counts[1][b].load(Ordering::Relaxed));
            if below >= rank {
                return Some(Duration::from_micros(bucket_upper(b)));
            }
        }
        Some(Duration::from_micros(bucket_upper(BUCKETS - 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotone_and_within_three_percent() {
        let mut last = 0;
        for us in (0..2_000_000u64).step_by(97) {
            let b = bucket_of(us);
            assert!(b >= last);
            last = b;
            let upper = bucket_upper(b);
            assert!(upper > us, "{us} -> bucket {b} upper {upper}");
            assert!(
                upper as f64 <= (us as f64 * 1.032).max(us as f64 + 1.0),
                "{us}: {upper}"
            );
        }
    }

    #[test]
    fn percentile_tracks_microsecond_latencies_and_slides() {
        let w = LatencyWindow::new(1000);
        assert_eq!(w.percentile(95.0, 10), None);
        for i in 1..=1000u64 {
            w.record(Duration::from_micros(i));
        }
        let p95 = w.percentile(95.0, 10).unwrap().as_micros() as u64;
        assert!((950..=985).contains(&p95), "{p95}");
        // Two windows later, old samples are gone.
        for _ in 0..2000 {
            w.record(Duration::from_micros(10));
        }
        assert_eq!(w.percentile(99.0, 10), Some(Duration::from_micros(11)));
    }
}
