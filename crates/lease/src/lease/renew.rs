//! The renewal loop: renew every interval (jittered), timing each renewal
//! from when it was sent; declare the lease at risk on a failed renewal and
//! lost when the safe period ends.

use std::sync::Arc;
use std::time::Duration;

use weft_core::{Backoff, Classify, key_hash};

use super::Shared;
use crate::{LeaseState, Swap};

/// The renewal loop.
pub(super) async fn renew(shared: Arc<Shared>, first_sent: Duration) {
    let cfg = shared.config.clone();
    let clock = cfg.clock.clone();
    let interval = cfg.interval();
    let op_timeout = cfg.op_timeout.unwrap_or(interval);
    // Renewals every interval, spread by the jitter; a renewal that failed
    // transiently is tried again after a quarter of the interval.
    let renewals = cfg.renewals();
    let at_risk = Backoff::constant(interval / 4);
    let seed = key_hash(&(shared.key.as_str(), shared.token.0));
    let mut round = 0u32;
    let mut next = first_sent.saturating_add(renewals.delay(round, seed));
    loop {
        let now = clock.now();
        let safe = shared.safe_until();
        if now >= safe {
            tracing::debug!(key = %shared.key, "lease lost: safe period over");
            shared.set(LeaseState::Lost);
            return;
        }
        if now < next {
            let wake = next.min(safe) - now;
            tokio::select! {
                () = tokio::time::sleep(wake) => {}
                () = shared.stop.cancelled() => return,
            }
            continue;
        }
        round += 1;
        let sent = clock.now();
        let until_lost = shared.safe_until().saturating_sub(sent);
        let refresh = shared.store.refresh(&shared.key, shared.token, cfg.ttl);
        let outcome = tokio::select! {
            r = tokio::time::timeout(op_timeout, refresh) => r,
            () = tokio::time::sleep(until_lost) => continue, // the top of the loop declares it lost
            () = shared.stop.cancelled() => return,
        };
        match outcome {
            Ok(Ok(Swap::Done { .. })) => {
                shared.extend(sent);
                shared.set(LeaseState::Held);
                next = sent.saturating_add(renewals.delay(round, seed));
            }
            Ok(Ok(Swap::Conflict { .. })) => {
                tracing::debug!(key = %shared.key, "lease lost: the store no longer holds it");
                shared.set(LeaseState::Lost);
                return;
            }
            Ok(Err(e)) if e.is_transient() => {
                shared.set(LeaseState::AtRisk);
                next = clock.now().saturating_add(at_risk.delay(round, seed));
            }
            Ok(Err(e)) => {
                tracing::debug!(key = %shared.key, error = %e, "lease lost: renewal failed permanently");
                shared.set(LeaseState::Lost);
                return;
            }
            Err(_) => {
                shared.set(LeaseState::AtRisk);
                next = clock.now().saturating_add(at_risk.delay(round, seed));
            }
        }
    }
}
