//! The compare-and-swap store every lease primitive stands on.

use std::fmt;
use std::time::Duration;

use futures::stream::BoxStream;
use weft_core::{Cause, Classify, ErrorClass};

/// A key's version: strictly increasing across every write, delete and
/// expiry of the key, and never reused, so the version a holder got is its
/// fencing token.
///
/// # Carrying a token in a request
///
/// Send it as the decimal number in the header [`Version::HEADER`]
/// (`weft-fencing-token: 42`), or in a JSON body as a number (`serde`
/// writes it as one); parse it back with [`str::parse`], which also takes
/// the `v42` that [`Display`](fmt::Display) prints.
///
/// ```
/// use weft_lease::Version;
///
/// let token = Version(42);
/// let header = (Version::HEADER, token.0.to_string());
/// assert_eq!(header.1.parse::<Version>(), Ok(token));
/// assert_eq!("v42".parse::<Version>(), Ok(token));
/// assert!("-1".parse::<Version>().is_err());
/// ```
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Version(pub u64);

impl Version {
    /// The HTTP or gRPC-metadata header that carries a fencing token.
    pub const HEADER: &'static str = "weft-fencing-token";
}

/// A fencing token that is not a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fencing token {0:?} is not a version: expected a decimal number, optionally after 'v'")]
pub struct BadVersion(pub String);

impl std::str::FromStr for Version {
    type Err = BadVersion;
    fn from_str(s: &str) -> Result<Self, BadVersion> {
        let digits = s.trim().strip_prefix('v').unwrap_or(s.trim());
        digits
            .parse::<u64>()
            .map(Version)
            .map_err(|_| BadVersion(s.to_string()))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// A stored value with its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value.
    pub value: Vec<u8>,
    /// The version of the last write (create, swap).
    pub version: Version,
    /// The version at which the key was created; kept by swaps and
    /// refreshes, so it orders keys by creation (election queues).
    pub created: Version,
}

/// The outcome of a conditional write. Losing a race is a value, not an
/// error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    /// The write applied; the key now has `version`.
    Done {
        /// The key's new version (for a delete, the version the deletion
        /// consumed).
        version: Version,
    },
    /// The condition failed; `current` is what the key holds now (`None`
    /// if absent).
    Conflict {
        /// The key's current entry.
        current: Option<Entry>,
    },
}

/// What a store can honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// TTLs must be a multiple of this (etcd: 1 s; Redis: 1 ms).
    pub ttl_granularity: Duration,
    /// The shortest TTL the store honours.
    pub min_ttl: Duration,
    /// The longest TTL.
    pub max_ttl: Duration,
    /// The longest key, in bytes.
    pub max_key_len: usize,
    /// The largest value, in bytes.
    pub max_value_len: usize,
}

impl Limits {
    /// Checks that these limits can be met at all: a minimum TTL above zero
    /// and not above the maximum, and room for a key of at least one byte.
    ///
    /// # Errors
    ///
    /// [`StoreError::BadLimits`] naming the problem.
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |reason: String| Err(StoreError::BadLimits(reason));
        if self.min_ttl.is_zero() {
            return bad("the minimum TTL is zero: a key must live for some time".into());
        }
        if self.min_ttl > self.max_ttl {
            return bad(format!(
                "the minimum TTL {:?} is above the maximum {:?}",
                self.min_ttl, self.max_ttl
            ));
        }
        if self.max_key_len == 0 {
            return bad("the key limit is zero bytes: no key fits".into());
        }
        Ok(())
    }

    /// Checks a key, value and TTL against these limits.
    ///
    /// # Errors
    ///
    /// The [`StoreError`] naming the first violation.
    pub fn check(
        &self,
        key: &str,
        value: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        if key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        if key.len() > self.max_key_len {
            return Err(StoreError::KeyTooLarge {
                len: key.len(),
                max: self.max_key_len,
            });
        }
        if let Some(v) = value
            && v.len() > self.max_value_len
        {
            return Err(StoreError::ValueTooLarge {
                len: v.len(),
                max: self.max_value_len,
            });
        }
        if let Some(ttl) = ttl {
            let granular = self.ttl_granularity.is_zero()
                || ttl.as_nanos() % self.ttl_granularity.as_nanos() == 0;
            if ttl < self.min_ttl || ttl > self.max_ttl || !granular {
                return Err(StoreError::BadTtl {
                    ttl,
                    min: self.min_ttl,
                    max: self.max_ttl,
                    granularity: self.ttl_granularity,
                });
            }
        }
        Ok(())
    }
}

/// A change to a watched key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was created or written.
    Put(Entry),
    /// The key was deleted; the deletion consumed `version`.
    Deleted {
        /// The version the deletion consumed.
        version: Version,
    },
    /// The key's TTL ran out; the expiry consumed `version`.
    Expired {
        /// The version the expiry consumed.
        version: Version,
    },
}

/// What a [prefix watch](CasStore::watch_prefix) reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixEvent {
    /// The watch is in place: every change from here on is reported. Read
    /// the prefix ([`CasStore::list`]) after this to start from a known
    /// state; a change between that read and this event is reported too.
    Watching,
    /// A key under the prefix changed.
    Changed {
        /// The key, as the caller names it (without a store's namespace).
        key: String,
        /// What happened to it.
        event: WatchEvent,
    },
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or refused for now (transient).
    #[error("store {store} unavailable: {reason}")]
    Unavailable {
        /// The store (its address or name).
        store: String,
        /// What went wrong.
        reason: String,
        /// The backend's own error, when there is one.
        #[source]
        cause: Option<Cause>,
    },
    /// A write timed out: it may or may not have applied. Resolve by
    /// reading.
    #[error("store {store}: outcome of the write to {key:?} is unknown ({reason})")]
    Indeterminate {
        /// The store.
        store: String,
        /// The key written.
        key: String,
        /// What went wrong.
        reason: String,
        /// The backend's own error, when there is one.
        #[source]
        cause: Option<Cause>,
    },
    /// An empty key.
    #[error("key is empty")]
    EmptyKey,
    /// A key longer than the store allows.
    #[error("key is {len} bytes, over the store's limit of {max}")]
    KeyTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value larger than the store allows.
    #[error("value is {len} bytes, over the store's limit of {max}")]
    ValueTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A TTL the store cannot honour.
    #[error(
        "TTL {ttl:?} cannot be honoured: the store needs {min:?}..={max:?} in steps of {granularity:?}"
    )]
    BadTtl {
        /// The TTL asked for.
        ttl: Duration,
        /// The store's minimum.
        min: Duration,
        /// The store's maximum.
        max: Duration,
        /// The store's granularity.
        granularity: Duration,
    },
    /// A key outside the store's configured prefix.
    #[error("key {key:?} is outside the store's prefix {prefix:?}")]
    OutsidePrefix {
        /// The key.
        key: String,
        /// The prefix.
        prefix: String,
    },
    /// A store configured with limits no operation can meet.
    #[error("store limits are inconsistent: {0}")]
    BadLimits(String),
    /// The store needs a runtime that is not running (a tokio runtime for
    /// its timers), detected before anything was changed.
    #[error("store {store} needs a tokio runtime, and none is running on this thread")]
    NoRuntime {
        /// The store.
        store: String,
    },
    /// Any other permanent failure.
    #[error("store {store}: {reason}")]
    Other {
        /// The store.
        store: String,
        /// What went wrong.
        reason: String,
        /// The backend's own error, when there is one.
        #[source]
        cause: Option<Cause>,
    },
}

impl StoreError {
    /// The backend's own error behind this one, if it kept one (also
    /// [`source`](std::error::Error::source)); downcast it to the client
    /// library's type with [`Cause::downcast_ref`].
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            StoreError::Unavailable { cause, .. }
            | StoreError::Indeterminate { cause, .. }
            | StoreError::Other { cause, .. } => cause.as_ref(),
            _ => None,
        }
    }
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            StoreError::Unavailable { .. } | StoreError::Indeterminate { .. } => {
                ErrorClass::Transient
            }
            _ => ErrorClass::Permanent,
        }
    }
}

/// A compare-and-swap store with TTLs: the substrate of locks, leases and
/// elections. Object-safe: pick one at run time as `Arc<dyn CasStore>`.
///
/// # Implementing CasStore
///
/// An implementation must keep these rules; `weft_test::cas::conformance`
/// checks them and every store must pass it:
///
/// 1. **Versions strictly increase** for a key across every write, delete
///    and expiry, and are never reused, also across a restart of a durable
///    store. The version returned by a create or swap is the holder's
///    fencing token. (A store-wide revision, like etcd's, satisfies this.)
/// 2. **Create is exclusive**: among concurrent creators of an absent key,
///    exactly one gets [`Swap::Done`]; the others get [`Swap::Conflict`].
/// 3. **Swaps are linearizable**: a swap, delete or refresh applies only if
///    the key's current version equals `expected`, atomically.
/// 4. **TTLs are the store's**: a key written with a TTL disappears (as an
///    expiry, consuming a version) no earlier than the TTL after the write
///    or refresh that set it, and within the store's stated granularity
///    after; the store rejects a TTL it cannot honour ([`StoreError::BadTtl`])
///    rather than round it.
/// 5. **Watch delivers every change in order**, when supported (a key's
///    watch, and a prefix's, which opens with [`PrefixEvent::Watching`]). A store
///    may start a watch with a deletion event when the key is absent as the
///    watch begins (a store whose watch starts asynchronously does so, so
///    that a deletion just before the start is not missed): treat watch
///    events as prompts to re-read, not as the only record.
/// 6. A failure that may have applied (a timeout) is
///    [`StoreError::Indeterminate`], never a guess.
/// 7. **Cancel safety**: every method is one request, and a caller may drop
///    its future at any point. A dropped write applied or not, as after
///    [`StoreError::Indeterminate`]; the store keeps no half state that a
///    later call could see.
///
/// Keys are UTF-8 strings; values are bytes.
#[async_trait::async_trait]
pub trait CasStore: Send + Sync + fmt::Debug {
    /// What the store can honour.
    fn limits(&self) -> Limits;

    /// The key's entry, `None` if absent (or expired).
    ///
    /// # Errors
    ///
    /// A transient or permanent [`StoreError`].
    ///
    /// # Cancel safety
    ///
    /// A read: cancel safe.
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError>;

    /// Creates the key if it is absent.
    ///
    /// # Errors
    ///
    /// A [`StoreError`]; an existing key is [`Swap::Conflict`], not an error.
    ///
    /// # Cancel safety
    ///
    /// If dropped, the write applied or not (rule 7): read to tell.
    async fn create(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<Swap, StoreError>;

    /// Replaces the value if the key's version is `expected`; resets the TTL.
    ///
    /// # Errors
    ///
    /// A [`StoreError`]; a version mismatch is [`Swap::Conflict`].
    ///
    /// # Cancel safety
    ///
    /// If dropped, the write applied or not (rule 7): read to tell.
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Version,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<Swap, StoreError>;

    /// Deletes the key if its version is `expected`.
    ///
    /// # Errors
    ///
    /// A [`StoreError`]; a version mismatch is [`Swap::Conflict`].
    ///
    /// # Cancel safety
    ///
    /// If dropped, the write applied or not (rule 7): read to tell.
    async fn delete(&self, key: &str, expected: Version) -> Result<Swap, StoreError>;

    /// Resets the key's TTL if its version is `expected`, keeping its value
    /// and version (a lease renewal keeps its fencing token).
    ///
    /// # Errors
    ///
    /// A [`StoreError`]; a version mismatch is [`Swap::Conflict`].
    ///
    /// # Cancel safety
    ///
    /// If dropped, the write applied or not (rule 7): read to tell.
    async fn refresh(
        &self,
        key: &str,
        expected: Version,
        ttl: Duration,
    ) -> Result<Swap, StoreError>;

    /// The entries whose keys start with `prefix`, ordered by creation
    /// version (oldest first).
    ///
    /// # Errors
    ///
    /// A [`StoreError`].
    ///
    /// # Cancel safety
    ///
    /// A read: cancel safe.
    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, StoreError>;

    /// A stream of every change to `key`, in order, if the store can watch;
    /// `None` if callers must poll.
    fn watch(&self, key: &str) -> Option<BoxStream<'static, WatchEvent>> {
        let _ = key;
        None
    }

    /// A stream of every change to the keys under `prefix`, in order, if
    /// the store can watch a prefix; `None` if callers must poll
    /// [`list`](CasStore::list). It opens with [`PrefixEvent::Watching`]
    /// once the watch is in place, and ends if the store can no longer
    /// watch (a lost connection): open a new one, and re-read, to go on.
    fn watch_prefix(&self, prefix: &str) -> Option<BoxStream<'static, PrefixEvent>> {
        let _ = prefix;
        None
    }
}
