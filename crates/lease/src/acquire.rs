//! Taking a key: one create, the waiting loop with its hard deadline, and
//! the bookkeeping that recognises a create whose outcome was unknown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use weft_core::time::capped;
use weft_core::{Backoff, key_hash};

use crate::{CasStore, Entry, LeaseError, StoreError, Swap, Version, WatchEvent};

/// How one create attempt went.
pub(crate) enum Attempt {
    /// We hold the key at this version.
    Won(Version),
    /// Someone holds it: the entry, if the store said.
    Taken(Option<Entry>),
    /// The key is free but our create did not apply: try again now.
    Retry,
    /// The create's outcome is unknown and the key is free for now: the
    /// create may still apply later (a stalled store that resumes).
    Unknown,
}

/// One create; an indeterminate outcome is resolved by reading whether our
/// value is there.
pub(crate) async fn attempt_create(
    store: &dyn CasStore,
    key: &str,
    value: &[u8],
    ttl: Duration,
) -> Result<Attempt, LeaseError> {
    match store.create(key, value.to_vec(), ttl).await {
        Ok(Swap::Done { version }) => Ok(Attempt::Won(version)),
        Ok(Swap::Conflict { current: Some(e) }) => Ok(Attempt::Taken(Some(e))),
        Ok(Swap::Conflict { current: None }) => Ok(Attempt::Retry),
        Err(StoreError::Indeterminate { .. }) => match store.get(key).await? {
            Some(entry) if entry.value == value => Ok(Attempt::Won(entry.version)),
            Some(entry) => Ok(Attempt::Taken(Some(entry))),
            None => Ok(Attempt::Unknown),
        },
        Err(e) => Err(e.into()),
    }
}

/// One create, without waiting. With `owner`, a create whose outcome is
/// unknown is left to the background resolution (and to the process's next
/// acquisition of the key and value), as a waiting acquisition's is.
pub(crate) async fn try_create(
    store: &dyn CasStore,
    owner: Option<&Arc<dyn CasStore>>,
    key: &str,
    value: &[u8],
    ttl: Duration,
    sent: Duration,
) -> Result<Option<Version>, LeaseError> {
    Ok(match attempt_create(store, key, value, ttl).await? {
        Attempt::Won(version) => Some(version),
        Attempt::Unknown => {
            if let Some(owner) = owner {
                let id = (store_address(store), key.to_string(), value.to_vec());
                resolve_abandoned_create(owner.clone(), id, sent, ttl);
            }
            None
        }
        Attempt::Taken(_) | Attempt::Retry => None,
    })
}

/// Identifies what this process acquires or holds: the store (by address),
/// the key and the value.
type ClaimId = (usize, String, Vec<u8>);

/// Acquisitions in progress and leases alive in this process, counted by
/// [`ClaimId`]: the clean-up of an abandoned create deletes nothing that
/// one of them may hold.
static CLAIMS: std::sync::Mutex<std::collections::BTreeMap<ClaimId, usize>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn claims() -> std::sync::MutexGuard<'static, std::collections::BTreeMap<ClaimId, usize>> {
    CLAIMS.lock().unwrap_or_else(|e| e.into_inner())
}

/// This process acquires or holds `key` with `value` on a store while the
/// claim lives (an acquisition, then the lease it became).
#[derive(Debug)]
pub(crate) struct Claim(ClaimId);

impl Claim {
    pub(crate) fn new(store: &dyn CasStore, key: &str, value: &[u8]) -> Claim {
        let id = (store_address(store), key.to_string(), value.to_vec());
        *claims().entry(id.clone()).or_insert(0) += 1;
        Claim(id)
    }
}

impl Claim {
    /// Whether this is the only claim on its key and value in the process.
    fn is_alone(&self) -> bool {
        claims().get(&self.0).is_some_and(|&n| n == 1)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claims = claims();
        if let Some(n) = claims.get_mut(&self.0) {
            *n -= 1;
            if *n == 0 {
                claims.remove(&self.0);
            }
        }
    }
}

fn store_address(store: &dyn CasStore) -> usize {
    (store as *const dyn CasStore).cast::<()>() as usize
}

/// Creates abandoned by acquisitions that gave up with the outcome
/// unknown, by [`ClaimId`], with the lease-clock time the first was sent:
/// the next acquisition of the same key and value by this process takes
/// the record over and recognises the create if it applied late.
static ABANDONED: std::sync::Mutex<std::collections::BTreeMap<ClaimId, Duration>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn abandoned() -> std::sync::MutexGuard<'static, std::collections::BTreeMap<ClaimId, Duration>> {
    ABANDONED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resolves a create abandoned with its outcome unknown, as an
/// indeterminate write is resolved: by reading. If the key holds this
/// value and nothing in this process acquires or holds it (then it can
/// only be the abandoned create, applied late), it is deleted, so that the
/// key is not held for a TTL by nobody. An acquisition of the same key and
/// value that starts meanwhile takes the create over instead. Tries a few
/// times over a TTL, in the background.
fn resolve_abandoned_create(store: Arc<dyn CasStore>, id: ClaimId, sent: Duration, ttl: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    abandoned().insert(id.clone(), sent);
    runtime.spawn(async move {
        let step = capped(ttl) / 4;
        for _ in 0..4 {
            tokio::time::sleep(step).await;
            if !abandoned().contains_key(&id) {
                return; // an acquisition took it over
            }
            let Ok(Ok(entry)) = tokio::time::timeout(step, store.get(&id.1)).await else {
                continue;
            };
            match entry {
                // Read first, then look at the claims: a lease of this
                // process that the read saw was claimed before it existed.
                Some(e) if e.value == id.2 && !claims().contains_key(&id) => {
                    let deleted = tokio::time::timeout(step, store.delete(&id.1, e.version)).await;
                    if matches!(deleted, Ok(Ok(_))) {
                        abandoned().remove(&id);
                        return;
                    }
                }
                Some(e) if e.value == id.2 => return, // this process took it over
                Some(_) | None => {}
            }
        }
        abandoned().remove(&id);
    });
}

/// Creates `key`, waiting (watch or poll) while it exists, until `wait`.
/// Returns the version, the `clock` time at which the successful create
/// was sent, and the claim that marks the key as this process's.
///
/// `wait` is a hard bound: a store call still in flight at the deadline is
/// abandoned. A create whose outcome is unknown (timed out, or abandoned)
/// may apply later; a later attempt (of this acquisition, or of the next
/// one with the same key and value in this process) that finds the key
/// holding this value adopts it, taking the send time of the earliest such
/// create so that the safe period is never overstated, while enough of a
/// TTL is left, and deletes it otherwise. Left over at the end, it is
/// resolved in the background when `owner` is given (see
/// `resolve_abandoned_create`); otherwise it expires after its TTL.
pub(crate) async fn acquire_key(
    store: &dyn CasStore,
    owner: Option<&Arc<dyn CasStore>>,
    key: &str,
    value: &[u8],
    ttl: Duration,
    wait: Duration,
    clock: &dyn crate::LeaseClock,
) -> Result<(Version, Duration, Claim), LeaseError> {
    // Waiting needs tokio's timers; fail plainly where there is no runtime.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(LeaseError::Store(StoreError::NoRuntime {
            store: format!("lease on {key:?}"),
        }));
    }
    let claim = Claim::new(store, key, value);
    // The send time of the first create whose outcome is still unknown,
    // taken over from an earlier acquisition if one left such a create.
    let mut unknown = abandoned().remove(&claim.0);
    let creating = Creating {
        store,
        key,
        value,
        ttl,
        clock,
        claim: &claim,
    };
    let result = create_until(creating, wait, &mut unknown).await;
    match (result, unknown) {
        (Ok((version, sent)), _) => Ok((version, sent, claim)),
        (Err(e), None) => Err(e),
        (Err(e), Some(sent)) => {
            let id = claim.0.clone();
            drop(claim);
            if let Some(owner) = owner {
                resolve_abandoned_create(owner.clone(), id, sent, ttl);
            }
            Err(e)
        }
    }
}

/// What one acquisition creates, and with what.
#[derive(Clone, Copy)]
struct Creating<'a> {
    store: &'a dyn CasStore,
    key: &'a str,
    value: &'a [u8],
    ttl: Duration,
    clock: &'a dyn crate::LeaseClock,
    claim: &'a Claim,
}

/// The loop of [`acquire_key`]; `unknown` holds the send time of the first
/// create whose outcome is unknown when it returns.
async fn create_until(
    creating: Creating<'_>,
    wait: Duration,
    unknown: &mut Option<Duration>,
) -> Result<(Version, Duration), LeaseError> {
    let Creating {
        store,
        key,
        value,
        ttl,
        clock,
        claim,
    } = creating;
    let start = Instant::now();
    let deadline = start + capped(wait);
    let timeout = || LeaseError::Timeout {
        key: key.to_string(),
        waited: start.elapsed(),
    };
    loop {
        // Subscribe before trying, so a release between the failed create
        // and the wait is not missed.
        let mut watch = store.watch(key);
        let sent = clock.now();
        let attempt =
            tokio::time::timeout_at(deadline, attempt_create(store, key, value, ttl)).await;
        let Ok(attempt) = attempt else {
            // Abandoned at the deadline: its create may still apply.
            unknown.get_or_insert(sent);
            return Err(timeout());
        };
        match attempt {
            Ok(Attempt::Won(version)) => {
                let sent = unknown.take().unwrap_or(sent);
                return Ok((version, sent));
            }
            Ok(Attempt::Unknown) => {
                // Give a create that is on its way a moment to land, then
                // look again (and adopt it if it did).
                unknown.get_or_insert(sent);
                let next = (Instant::now() + poll_interval(key)).min(deadline);
                tokio::time::sleep_until(next).await;
                if Instant::now() >= deadline {
                    return Err(timeout());
                }
                continue;
            }
            Ok(Attempt::Taken(Some(entry)))
                if entry.value == value && unknown.is_some() && claim.is_alone() =>
            {
                // Our own earlier create, applied late: nothing else in
                // this process acquires or holds the key with this value.
                let first = unknown.unwrap_or(sent);
                if clock.now().saturating_sub(first) < ttl / 2 {
                    *unknown = None;
                    return Ok((entry.version, first));
                }
                // Too little of its TTL may be left to hold it: free it.
                let delete = store.delete(key, entry.version);
                match tokio::time::timeout_at(deadline, delete).await {
                    Err(_) => return Err(timeout()),
                    Ok(Ok(Swap::Done { .. })) => *unknown = None,
                    // Changed meanwhile, or not deleted: look again soon.
                    Ok(Ok(Swap::Conflict { .. }) | Err(_)) => {
                        let next = (Instant::now() + poll_interval(key)).min(deadline);
                        tokio::time::sleep_until(next).await;
                    }
                }
                continue;
            }
            Ok(Attempt::Taken(_)) => {}
            Ok(Attempt::Retry) if Instant::now() < deadline => continue,
            Ok(Attempt::Retry) => return Err(timeout()),
            // A store that is down for now: keep trying until the deadline,
            // then report what failed.
            Err(LeaseError::Store(e)) if weft_core::Classify::is_transient(&e) => {
                let next = Instant::now() + poll_interval(key);
                if next >= deadline {
                    return Err(LeaseError::Store(e));
                }
                tokio::time::sleep_until(next).await;
                continue;
            }
            Err(e) => return Err(e),
        }
        match watch.as_mut() {
            Some(events) => loop {
                tokio::select! {
                    event = events.next() => match event {
                        Some(WatchEvent::Deleted { .. } | WatchEvent::Expired { .. }) | None => break,
                        Some(WatchEvent::Put(_)) => {}
                    },
                    () = tokio::time::sleep_until(deadline) => return Err(timeout()),
                }
            },
            None => {
                let next = (Instant::now() + poll_interval(key)).min(deadline);
                tokio::time::sleep_until(next).await;
                if Instant::now() >= deadline {
                    return Err(timeout());
                }
            }
        }
    }
}

static JITTER: AtomicU64 = AtomicU64::new(0);

/// The next poll interval of a waiter without a watch: 30 ms ± 2/3 (10 to
/// 50 ms), varied per call so that waiters spread.
pub(crate) fn poll_interval(key: &str) -> Duration {
    let n = JITTER.fetch_add(1, Ordering::Relaxed);
    // invariant: 2/3 is a valid jitter fraction.
    let poll = Backoff::constant(Duration::from_millis(30))
        .with_jitter(2.0 / 3.0)
        .expect("a fraction in [0, 1]");
    poll.delay(1, key_hash(&(key, n)))
}
