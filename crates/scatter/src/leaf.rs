//! Leaves: any async function of a sub-request and a [`LeafContext`].

use std::fmt::Display;
use std::future::Future;

use tokio::time::Instant;
use weft_core::{Classify, ShardId};

/// What a leaf call knows about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafContext {
    /// The shard this call answers for.
    pub shard: ShardId,
    /// The replica it is sent to (an index into the topology's replicas).
    pub replica: usize,
    /// 1 for the first attempt at this shard, 2 for the next (a hedge or a
    /// retry), and so on.
    pub attempt: u32,
    /// Whether this attempt is a hedge (sent while another is in flight).
    pub hedge: bool,
    /// When the whole call gives up; pass it on to the leaf's own I/O.
    pub deadline: Instant,
}

impl LeafContext {
    /// Time left before the call's deadline.
    pub fn remaining(&self) -> std::time::Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// A leaf: answers one sub-request for one shard from one replica.
///
/// Implemented for every `Fn(Req, LeafContext) -> impl Future<Output =
/// Result<T, E>>` whose error says whether it is transient
/// ([`Classify`]); with the `tower` feature, `ServiceLeaf` adapts a
/// `tower::Service`.
///
/// # Cancel safety
///
/// The root drops a leaf's future when another replica answered first, when
/// the attempt timed out, when the deadline passed, or when the caller
/// dropped the call. Leaves must tolerate being dropped at any await point.
pub trait Leaf<Req> {
    /// A successful answer.
    type Response;
    /// A failure, transient or permanent.
    type Error: Classify + Display;
    /// The call in flight.
    type Future: Future<Output = Result<Self::Response, Self::Error>>;

    /// Sends `request` to the replica in `cx`.
    fn call(&self, request: Req, cx: LeafContext) -> Self::Future;
}

impl<Req, F, Fut, T, E> Leaf<Req> for F
where
    F: Fn(Req, LeafContext) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classify + Display,
{
    type Response = T;
    type Error = E;
    type Future = Fut;

    fn call(&self, request: Req, cx: LeafContext) -> Fut {
        self(request, cx)
    }
}

#[cfg(feature = "tower")]
pub use service::{ServiceError, ServiceLeaf};

#[cfg(feature = "tower")]
mod service {
    use std::fmt;
    use std::future::Future;
    use std::pin::Pin;

    use tower::{Service, ServiceExt};
    use weft_core::{Classify, ErrorClass};

    use super::{Leaf, LeafContext};

    /// A leaf from a `tower::Service` (feature `tower`): each call clones
    /// the service, waits until it is ready and calls it.
    ///
    /// `classify` says which of the service's errors are transient.
    pub struct ServiceLeaf<S, C> {
        service: S,
        classify: C,
    }

    impl<S, C> ServiceLeaf<S, C> {
        /// Wraps `service`; `classify` sorts its errors.
        pub fn new(service: S, classify: C) -> Self {
            ServiceLeaf { service, classify }
        }
    }

    impl<S, C> fmt::Debug for ServiceLeaf<S, C> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("ServiceLeaf").finish_non_exhaustive()
        }
    }

    /// A `tower::Service` error, with its class.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ServiceError {
        /// The error's message.
        pub message: String,
        /// Whether it is transient.
        pub class: ErrorClass,
    }

    impl fmt::Display for ServiceError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.message)
        }
    }

    impl std::error::Error for ServiceError {}

    impl Classify for ServiceError {
        fn class(&self) -> ErrorClass {
            self.class
        }
    }

    impl<S, C, Req> Leaf<Req> for ServiceLeaf<S, C>
    where
        S: Service<Req> + Clone + Send + 'static,
        S::Future: Send,
        S::Response: Send + 'static,
        S::Error: fmt::Display + Send + 'static,
        Req: Send + 'static,
        C: Fn(&S::Error) -> ErrorClass + Clone + Send + Sync + 'static,
    {
        type Response = S::Response;
        type Error = ServiceError;
        type Future = Pin<Box<dyn Future<Output = Result<S::Response, ServiceError>> + Send>>;

        fn call(&self, request: Req, _cx: LeafContext) -> Self::Future {
            let service = self.service.clone();
            let classify = self.classify.clone();
            Box::pin(async move {
                let wrap = |e: S::Error| ServiceError {
                    message: e.to_string(),
                    class: classify(&e),
                };
                let mut ready = service.ready_oneshot().await.map_err(wrap)?;
                ready.call(request).await.map_err(wrap)
            })
        }
    }
}
