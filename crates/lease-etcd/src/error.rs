//! etcd's gRPC failures as store errors: unavailable, refused, or of
//! unknown outcome (a write that may have applied).

use tonic::{Code, Status};
use weft_core::{Cause, ErrorClass};
use weft_lease::StoreError;

use crate::EtcdStore;

impl EtcdStore {
    pub(crate) fn error(&self, e: &Status) -> StoreError {
        StoreError::Unavailable {
            store: self.endpoints.clone(),
            reason: describe(e),
            cause: Some(status_cause(e, ErrorClass::Transient)),
        }
    }

    /// Whether the request never reached a server (so retrying is safe).
    pub(crate) fn not_sent(e: &Status) -> bool {
        // A channel that could not connect fails the call with Unavailable
        // and the connection error as its source; a request that was sent
        // and then timed out or broke is Cancelled, Unknown or
        // DeadlineExceeded.
        e.code() == Code::Unavailable && {
            let message = describe(e);
            message.contains("connect") || message.contains("refused")
        }
    }

    /// A write's failure: unknown outcome unless it never left.
    pub(crate) fn write_error(&self, key: &str, e: &Status) -> StoreError {
        if EtcdStore::not_sent(e) {
            return self.error(e);
        }
        if e.code() == Code::InvalidArgument {
            return StoreError::Other {
                store: self.endpoints.clone(),
                reason: e.message().to_string(),
                cause: Some(status_cause(e, ErrorClass::Permanent)),
            };
        }
        StoreError::Indeterminate {
            store: self.endpoints.clone(),
            key: key.to_string(),
            reason: describe(e),
            cause: Some(status_cause(e, ErrorClass::Transient)),
        }
    }
}

/// A gRPC status kept as a store error's cause.
pub(crate) fn status_cause(e: &Status, class: ErrorClass) -> Cause {
    Cause::with_class(e.clone(), class)
}

/// A status with its source chain, which names the connection error.
pub(crate) fn describe(e: &Status) -> String {
    let mut message = format!("{}: {}", e.code(), e.message());
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
