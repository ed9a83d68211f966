//! A process's registration: its record under a prefix, held by a renewed
//! lease, made again if the lease is lost, removed on drain.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use weft_core::Backoff;
use weft_lease::{CasStore, Lease, LeaseConfig, LeaseError, Swap, Version};

use crate::{Member, MembersError};

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Registered {
    /// The record is in the store under this lease token.
    Held(Version),
    /// The lease was lost; registering again.
    Lost,
    /// Deregistered: the record is gone, for good.
    Drained,
}

/// A member's registration under a prefix of a [`CasStore`]: the key
/// `<prefix><name>` holding the member's record, under a weft [`Lease`]
/// renewed in the background.
///
/// - The record disappears when the process dies (the lease's TTL) and at
///   once on [`deregister`](Registration::deregister).
/// - A lost lease (the store unreachable past the lease's safety time, the
///   key deleted) is registered again as soon as the store allows, under a
///   new, higher token that watchers see ([`state`](Registration::state)
///   says which).
/// - One name, one record: a second process registering a name that is
///   held gets [`MembersError::NameTaken`] once its wait runs out.
///
/// ```text
///  register ──create──▶ <prefix><name> (lease) ──renew…
///                              │ lost
///                              ▼
///                  delete own stale key, create again (new token)
///  deregister ──delete──▶ gone
/// ```
#[derive(Debug)]
pub struct Registration {
    shared: Arc<Shared>,
    keeper: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn CasStore>,
    prefix: String,
    key: String,
    member: Member,
    config: LeaseConfig,
    lease: Mutex<Option<Lease>>,
    state: watch::Sender<Registered>,
}

impl Registration {
    /// Registers `member` under `prefix` (which ends with `/`), waiting up
    /// to `wait` for the name to be free: a process restarted after a
    /// crash waits out its earlier life's record, up to a lease TTL, so
    /// give it a little more than the TTL.
    ///
    /// # Errors
    ///
    /// [`MembersError::Invalid`] for a prefix that is empty or does not end
    /// with `/`, a record over the store's value limit, or a lease setting
    /// the store cannot keep; [`MembersError::NameTaken`] if the name was
    /// still held when the wait ran out; [`MembersError::Lease`] if the
    /// store failed.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropped mid-way, a record may be left to expire
    /// with its lease's TTL.
    pub async fn register(
        store: Arc<dyn CasStore>,
        prefix: &str,
        member: Member,
        config: LeaseConfig,
        wait: Duration,
    ) -> Result<Registration, MembersError> {
        check_prefix(prefix)?;
        member.validate()?;
        let key = format!("{prefix}{}", member.name());
        let value = member.encode();
        let limits = store.limits();
        if value.len() > limits.max_value_len {
            return Err(MembersError::invalid(
                "member record",
                format!("{} bytes", value.len()),
                format!(
                    "at most the store's {} bytes (smaller metadata)",
                    limits.max_value_len
                ),
            ));
        }
        if key.len() > limits.max_key_len {
            return Err(MembersError::invalid(
                "key",
                &key,
                format!("at most the store's {} bytes", limits.max_key_len),
            ));
        }
        let lease = Lease::builder(store.clone(), key.clone(), config.clone())
            .value(value)
            .acquire(wait)
            .await
            .map_err(|e| taken_or(e, prefix, &member))?;
        let (state, _) = watch::channel(Registered::Held(lease.token()));
        let shared = Arc::new(Shared {
            store,
            prefix: prefix.to_string(),
            key,
            member,
            config,
            lease: Mutex::new(Some(lease)),
            state,
        });
        let keeper = tokio::spawn(shared.clone().keep());
        Ok(Registration { shared, keeper })
    }

    /// The registered member.
    pub fn member(&self) -> &Member {
        &self.shared.member
    }

    /// The prefix it is registered under.
    pub fn prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// The record's key.
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// Where the registration stands now.
    pub fn state(&self) -> Registered {
        *self.shared.state.borrow()
    }

    /// Every change of [`state`](Registration::state).
    pub fn watch_state(&self) -> watch::Receiver<Registered> {
        self.shared.state.subscribe()
    }

    /// Removes the record now (a graceful drain: watchers see the member
    /// leave at once where the store watches, else at their next poll,
    /// without waiting for the TTL).
    ///
    /// # Errors
    ///
    /// [`MembersError::Lease`] if the store failed; the record then
    /// expires with its TTL.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropped mid-way, the record may stay until its TTL.
    pub async fn deregister(self) -> Result<(), MembersError> {
        self.keeper.abort();
        let _ = self.shared.state.send(Registered::Drained);
        let lease = lock(&self.shared.lease).take();
        match lease {
            Some(lease) => lease.release().await.map_err(|source| MembersError::Lease {
                name: self.shared.member.name().to_string(),
                source,
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Registration {
    /// Stops renewing. The lease's own drop deletes the record in the
    /// background, as a best effort; if that cannot run, the record
    /// expires with its TTL. [`deregister`](Registration::deregister)
    /// removes it and says whether it did.
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

impl Shared {
    /// Waits for the lease to be lost, then registers again, until
    /// deregistered.
    async fn keep(self: Arc<Self>) {
        let retry = Backoff::exponential(Duration::from_millis(50), self.config.ttl())
            .and_then(|b| b.with_jitter(0.5))
            .unwrap_or(Backoff::constant(Duration::from_millis(100)));
        loop {
            let guard = lock(&self.lease).as_ref().map(Lease::cancellation);
            let Some(guard) = guard else { return };
            guard.cancelled().await;
            let old = guard.token;
            let _ = self.state.send(Registered::Lost);
            tracing::warn!(key = %self.key, token = %old.0, "registration lost; registering again");
            let mut tries = 0u32;
            let lease = loop {
                tries = tries.saturating_add(1);
                // The lost lease's own key, if still there, is ours to drop:
                // a lease only says lost before the store expires the key.
                if let Ok(Some(entry)) = self.store.get(&self.key).await
                    && entry.version == old
                {
                    let _: Result<Swap, _> = self.store.delete(&self.key, old).await;
                }
                let attempt =
                    Lease::builder(self.store.clone(), self.key.clone(), self.config.clone())
                        .value(self.member.encode())
                        .try_acquire()
                        .await;
                match attempt {
                    Ok(Some(lease)) => break lease,
                    Ok(None) => {
                        tracing::warn!(key = %self.key, "name held by another registration; waiting");
                    }
                    Err(e) => {
                        tracing::warn!(key = %self.key, error = %e, "registering again failed")
                    }
                }
                tokio::time::sleep(retry.delay(tries, old.0)).await;
            };
            let _ = self.state.send(Registered::Held(lease.token()));
            *lock(&self.lease) = Some(lease);
        }
    }
}

/// A lease that timed out waiting is a name held by another.
fn taken_or(e: LeaseError, prefix: &str, member: &Member) -> MembersError {
    match e {
        LeaseError::Timeout { .. } => MembersError::NameTaken {
            prefix: prefix.to_string(),
            name: member.name().to_string(),
        },
        LeaseError::Invalid {
            setting,
            value,
            expected,
        } => MembersError::Invalid {
            what: setting,
            value,
            expected,
        },
        source => MembersError::Lease {
            name: member.name().to_string(),
            source,
        },
    }
}

/// A prefix is a key prefix ending with `/`, so that names (which have no
/// `/`) never make one prefix a prefix of another's keys.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), MembersError> {
    if prefix.is_empty() || !prefix.ends_with('/') {
        return Err(MembersError::invalid(
            "prefix",
            prefix,
            "a non-empty key prefix ending with '/'",
        ));
    }
    Ok(())
}

fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
