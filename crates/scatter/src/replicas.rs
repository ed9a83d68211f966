//! Replica health, load and choice.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use weft_core::time::micros;
use weft_core::{Health, HealthPolicy, HealthTracker};

use weft_core::mix::{GAMMA, mix64};

#[derive(Debug)]
struct Replica {
    tracker: Mutex<HealthTracker>,
    /// A failure was recorded since the last success: the tracker has
    /// counts a success must reset.
    dirty: std::sync::atomic::AtomicBool,
    /// `Health` as 0/1/2, readable without the lock.
    health: AtomicU8,
    outstanding: AtomicU32,
    /// When it went down or was last probed, in µs since the epoch.
    probe_after_us: AtomicU64,
}

/// The replicas of a root: health from outcomes, outstanding requests, and
/// the choice of a replica for an attempt.
#[derive(Debug)]
pub(crate) struct Replicas {
    list: Vec<Replica>,
    epoch: Instant,
    probation: Duration,
    rng: AtomicU64,
}

impl Replicas {
    pub(crate) fn new(count: usize, policy: HealthPolicy, probation: Duration, seed: u64) -> Self {
        Replicas {
            list: (0..count)
                .map(|_| Replica {
                    tracker: Mutex::new(HealthTracker::new(policy)),
                    dirty: std::sync::atomic::AtomicBool::new(false),
                    health: AtomicU8::new(0),
                    outstanding: AtomicU32::new(0),
                    probe_after_us: AtomicU64::new(0),
                })
                .collect(),
            epoch: Instant::now(),
            probation,
            rng: AtomicU64::new(seed),
        }
    }

    pub(crate) fn health(&self, r: usize) -> Health {
        Health::from_u8(self.list[r].health.load(Ordering::Relaxed))
    }

    fn us(&self, at: Instant) -> u64 {
        micros(at.saturating_duration_since(self.epoch))
    }

    /// 0 = in the pool (healthy, suspect, or down with a probe due);
    /// 1 = down, used only when nothing else is left.
    ///
    /// Suspect replicas keep their share of traffic: that is how they earn
    /// the successes that make them healthy again, and how a second failure
    /// finds them out.
    fn rank(&self, r: usize, at: Instant) -> u8 {
        match self.health(r) {
            Health::Healthy | Health::Suspect => 0,
            Health::Down if self.list[r].probe_after_us.load(Ordering::Relaxed) <= self.us(at) => 0,
            Health::Down => 1,
        }
    }

    fn random(&self) -> u64 {
        mix64(self.rng.fetch_add(GAMMA, Ordering::Relaxed))
    }

    /// Chooses a replica of `candidates` not in `tried`: replicas that are
    /// not down first, then the fewer outstanding requests of two random
    /// choices (power of two choices).
    pub(crate) fn pick(&self, candidates: &[usize], tried: &[usize], at: Instant) -> Option<usize> {
        let now = at;
        // The common case: a first attempt and two replicas in the pool.
        if tried.is_empty() && !candidates.is_empty() {
            let x = self.random();
            let n = candidates.len() as u64;
            let a = candidates[(x % n) as usize];
            let b = candidates[((x >> 32) % n) as usize];
            if self.rank(a, now) == 0 && self.rank(b, now) == 0 {
                let load = |r: usize| self.list[r].outstanding.load(Ordering::Relaxed);
                let pick = if load(b) < load(a) { b } else { a };
                self.note_probe(pick, now);
                return Some(pick);
            }
        }
        let open = || candidates.iter().copied().filter(|r| !tried.contains(r));
        let best = open().map(|r| self.rank(r, now)).min()?;
        let pool = || open().filter(|&r| self.rank(r, now) == best);
        let n = pool().count();
        let pick = if n == 1 {
            pool().next()
        } else {
            let x = self.random();
            let a = (x % n as u64) as usize;
            let mut b = ((x >> 32) % (n as u64 - 1)) as usize;
            if b >= a {
                b += 1;
            }
            let (ra, rb) = (pool().nth(a)?, pool().nth(b)?);
            let load = |r: usize| self.list[r].outstanding.load(Ordering::Relaxed);
            Some(if load(rb) < load(ra) { rb } else { ra })
        }?;
        self.note_probe(pick, now);
        Some(pick)
    }

    /// A down replica chosen is a probe: one per probation period.
    fn note_probe(&self, pick: usize, at: Instant) {
        if self.health(pick) == Health::Down {
            let next = self.us(at).saturating_add(micros(self.probation));
            self.list[pick]
                .probe_after_us
                .store(next, Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn started(&self, r: usize) {
        self.list[r].outstanding.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn finished(&self, r: usize) {
        self.list[r].outstanding.fetch_sub(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn success(&self, r: usize) {
        self.update(r, true);
    }

    pub(crate) fn failure(&self, r: usize) {
        self.update(r, false);
    }

    #[inline]
    fn update(&self, r: usize, ok: bool) {
        let replica = &self.list[r];
        // The common case, a success on a healthy replica with no failure
        // since its last success, changes nothing: skip the lock.
        if ok
            && replica.health.load(Ordering::Relaxed) == 0
            && !replica.dirty.load(Ordering::Relaxed)
        {
            return;
        }
        self.record(r, ok);
    }

    #[cold]
    fn record(&self, r: usize, ok: bool) {
        let replica = &self.list[r];
        let Ok(mut tracker) = replica.tracker.lock() else {
            return;
        };
        replica.dirty.store(!ok, Ordering::Relaxed);
        let change = if ok {
            tracker.record_success()
        } else {
            tracker.record_failure()
        };
        if let Some(t) = change {
            replica.health.store(t.to.as_u8(), Ordering::Relaxed);
            if t.to == Health::Down {
                let next = self
                    .us(Instant::now())
                    .saturating_add(micros(self.probation));
                replica.probe_after_us.store(next, Ordering::Relaxed);
                tracing::debug!(replica = r, "replica put on probation");
            } else if t.from == Health::Down {
                tracing::debug!(
                    replica = r,
                    "probe succeeded: replica back on probation-suspect"
                );
            } else if t.to == Health::Healthy {
                tracing::debug!(replica = r, "replica healthy again");
            }
        }
    }
}
