//! Member health: healthy, suspect or down, and the transitions between them.
//!
//! ```text
//!            failures >= suspect_after          failures >= down_after
//!  Healthy ─────────────────────────▶ Suspect ─────────────────────────▶ Down
//!     ▲                                │  ▲                                │
//!     └──── successes >= recover_after ┘  └──────── one success (probe) ───┘
//! ```
//!
//! Failures and successes count consecutively: a success resets the failure
//! count and a failure resets the success count. A member that comes back
//! from `Down` stays `Suspect` (on probation) until `recover_after`
//! consecutive successes. The tracker holds counts only, no clock: callers
//! decide what a failure is (an error, a timeout, a missed heartbeat) and
//! when to probe a down member.

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// The health of one member (a shard, a replica, a flow output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Serving normally.
    Healthy,
    /// Recently failing, or back from down and on probation: still usable,
    /// but less preferred.
    Suspect,
    /// Not to be used until a probe succeeds.
    Down,
}

impl Health {
    /// A byte for an atomic cell: 0 healthy, 1 suspect, 2 down. Pinned, so
    /// that `from_u8(h.as_u8()) == h`.
    pub const fn as_u8(self) -> u8 {
        match self {
            Health::Healthy => 0,
            Health::Suspect => 1,
            Health::Down => 2,
        }
    }

    /// The health a byte from [`as_u8`](Health::as_u8) stands for; any
    /// other byte reads as down, the cautious answer.
    pub const fn from_u8(byte: u8) -> Health {
        match byte {
            0 => Health::Healthy,
            1 => Health::Suspect,
            _ => Health::Down,
        }
    }

    /// Whether requests may be sent to the member (`Healthy` or `Suspect`).
    pub fn is_usable(self) -> bool {
        !matches!(self, Health::Down)
    }
}

/// The thresholds of a [`HealthTracker`].
///
/// With serde: `{"suspect_after": 1, "down_after": 3, "recover_after": 2}`,
/// validated as [`HealthPolicy::new`] validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HealthSpec")]
pub struct HealthPolicy {
    suspect_after: u32,
    down_after: u32,
    recover_after: u32,
}

impl HealthPolicy {
    /// Suspect after `suspect_after` consecutive failures, down after
    /// `down_after`, healthy again after `recover_after` consecutive
    /// successes.
    ///
    /// # Errors
    ///
    /// [`CoreError::HealthPolicy`] if a threshold is zero or `down_after` is
    /// below `suspect_after`.
    pub fn new(suspect_after: u32, down_after: u32, recover_after: u32) -> Result<Self, CoreError> {
        if suspect_after == 0 || down_after == 0 || recover_after == 0 {
            return Err(CoreError::HealthPolicy(
                "thresholds must be at least 1 (a zero threshold would change state with no evidence)",
            ));
        }
        if down_after < suspect_after {
            return Err(CoreError::HealthPolicy(
                "down_after must not be below suspect_after",
            ));
        }
        Ok(HealthPolicy {
            suspect_after,
            down_after,
            recover_after,
        })
    }
}

impl HealthPolicy {
    /// Consecutive failures that make a member suspect.
    pub fn suspect_after(&self) -> u32 {
        self.suspect_after
    }

    /// Consecutive failures that make a member down.
    pub fn down_after(&self) -> u32 {
        self.down_after
    }

    /// Consecutive successes that make a member healthy again.
    pub fn recover_after(&self) -> u32 {
        self.recover_after
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthSpec {
    suspect_after: u32,
    down_after: u32,
    recover_after: u32,
}

impl TryFrom<HealthSpec> for HealthPolicy {
    type Error = CoreError;
    fn try_from(s: HealthSpec) -> Result<HealthPolicy, CoreError> {
        HealthPolicy::new(s.suspect_after, s.down_after, s.recover_after)
    }
}

impl Default for HealthPolicy {
    /// Suspect after 1 failure, down after 3, healthy after 2 successes.
    fn default() -> Self {
        HealthPolicy {
            suspect_after: 1,
            down_after: 3,
            recover_after: 2,
        }
    }
}

/// A change of health reported by [`HealthTracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The health before.
    pub from: Health,
    /// The health after.
    pub to: Health,
}

/// Tracks one member's health from the outcomes of its requests.
///
/// # Examples
///
/// ```
/// use weft_core::{Health, HealthPolicy, HealthTracker};
///
/// let mut replica = HealthTracker::new(HealthPolicy::new(1, 2, 2)?);
/// replica.record_failure();
/// assert_eq!(replica.health(), Health::Suspect);
/// replica.record_failure();
/// assert_eq!(replica.health(), Health::Down);
/// replica.record_success(); // the probe
/// assert_eq!(replica.health(), Health::Suspect);
/// replica.record_success();
/// assert_eq!(replica.health(), Health::Healthy);
/// # Ok::<(), weft_core::CoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthTracker {
    policy: HealthPolicy,
    health: Health,
    failures: u32,
    successes: u32,
}

impl HealthTracker {
    /// A healthy member under `policy`.
    pub fn new(policy: HealthPolicy) -> Self {
        HealthTracker {
            policy,
            health: Health::Healthy,
            failures: 0,
            successes: 0,
        }
    }

    /// The current health.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Records a successful request or probe.
    pub fn record_success(&mut self) -> Option<Transition> {
        self.failures = 0;
        self.successes = self.successes.saturating_add(1);
        let next = match self.health {
            Health::Down => Health::Suspect,
            Health::Suspect if self.successes >= self.policy.recover_after => Health::Healthy,
            other => other,
        };
        self.move_to(next)
    }

    /// Records a failed request or probe.
    pub fn record_failure(&mut self) -> Option<Transition> {
        self.successes = 0;
        self.failures = self.failures.saturating_add(1);
        let next = if self.failures >= self.policy.down_after {
            Health::Down
        } else if self.failures >= self.policy.suspect_after && self.health == Health::Healthy {
            Health::Suspect
        } else {
            self.health
        };
        self.move_to(next)
    }

    /// Marks the member down at once (e.g. it was removed or announced it is
    /// draining).
    pub fn mark_down(&mut self) -> Option<Transition> {
        self.successes = 0;
        self.move_to(Health::Down)
    }

    fn move_to(&mut self, to: Health) -> Option<Transition> {
        let from = self.health;
        if from == to {
            return None;
        }
        self.health = to;
        if to == Health::Suspect && from == Health::Down {
            // The probe that lifted it counts towards recovery.
            self.successes = 1;
        }
        Some(Transition { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_through_serde_and_bad_ones_are_refused() {
        let p = HealthPolicy::new(2, 5, 3).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"suspect_after":2,"down_after":5,"recover_after":3}"#
        );
        assert_eq!(serde_json::from_str::<HealthPolicy>(&json).unwrap(), p);
        let refused = |json: &str| {
            serde_json::from_str::<HealthPolicy>(json)
                .unwrap_err()
                .to_string()
        };
        assert!(
            refused(r#"{"suspect_after":0,"down_after":5,"recover_after":3}"#)
                .contains("at least 1")
        );
        assert!(
            refused(r#"{"suspect_after":4,"down_after":2,"recover_after":3}"#)
                .contains("down_after")
        );
        assert!(refused(r#"{"suspect_after":1,"down_after":2}"#).contains("recover_after"));
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let mut t = HealthTracker::new(HealthPolicy::new(2, 3, 1).unwrap());
        t.record_failure();
        t.record_success();
        t.record_failure();
        assert_eq!(t.health(), Health::Healthy, "failures were not consecutive");
        assert_eq!(
            t.record_failure(),
            Some(Transition {
                from: Health::Healthy,
                to: Health::Suspect
            })
        );
    }

    #[test]
    fn a_down_member_needs_a_probe_then_recover_after_successes() {
        let mut t = HealthTracker::new(HealthPolicy::new(1, 1, 3).unwrap());
        t.record_failure();
        assert_eq!(t.health(), Health::Down);
        assert!(!t.health().is_usable());
        t.record_success();
        assert_eq!(t.health(), Health::Suspect);
        t.record_success();
        assert_eq!(t.health(), Health::Suspect);
        t.record_success();
        assert_eq!(t.health(), Health::Healthy);
    }

    #[test]
    fn a_failure_on_probation_counts_from_zero() {
        let mut t = HealthTracker::new(HealthPolicy::new(1, 2, 2).unwrap());
        t.mark_down();
        t.record_success();
        t.record_failure();
        assert_eq!(t.health(), Health::Suspect);
        t.record_failure();
        assert_eq!(t.health(), Health::Down);
    }

    #[test]
    fn policies_with_zero_or_inverted_thresholds_are_rejected() {
        assert!(HealthPolicy::new(0, 1, 1).is_err());
        assert!(HealthPolicy::new(1, 1, 0).is_err());
        assert!(HealthPolicy::new(3, 2, 1).is_err());
    }
}
